import sys

from tgt_keras.cli import main

sys.exit(main())
