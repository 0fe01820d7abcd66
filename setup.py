"""Packaging for tgt_keras: Teacher Guided Training for Keras 3 / TensorFlow 2."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="tgt_keras",
    version="0.1.0",
    description=(
        "Teacher Guided Training (Zaheer et al., ICLR 2023): distil a pretrained teacher into a "
        "small student using the teacher's generator to explore the data manifold."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11,<3.14",
    packages=find_packages(include=["tgt_keras", "tgt_keras.*"]),
    install_requires=[
        # 2.20 and 2.21: 2.20 is the newest `tensorflow-tpu` on PyPI, 2.21 the newest
        # `tensorflow`. CI tests both (.ci/run); scripts/setup.sh --tf 2.20 builds the 2.20
        # environment. Keep SUPPORTED_TF in scripts/setup.sh and scripts/install_keeping_tf.py
        # in step (tests/test_notebook_runtime.py checks).
        "tensorflow>=2.20,<2.22",
        # keras-hub 0.32 requires keras>=3.15.
        "keras>=3.15,<4",
        # Needs tf-keras, which requires TensorFlow of its own minor version (pip picks it).
        "tensorflow-hub>=0.16.1,<0.17",
        "tensorflow-datasets>=4.9.9,<5",
        # tfds crashes at import time on TF 2.21 without it (see shared docs, offline-data.md).
        "importlib_resources>=6",
        # Each tensorflow-text X.Y requires TensorFlow X.Y (pip picks the matching one);
        # keras-hub 0.32 requires tensorflow-text>=2.20.1.
        "tensorflow-text>=2.20.1,<2.22",
        # Text models (BERT / MiniLM labelers, BART generators) and the safetensors weights of
        # the offline MiniLM preset.
        "keras-hub>=0.32,<0.33",
        "safetensors>=0.4,<1",
        "keras-tuner>=1.4.7,<2",
        "numpy>=1.26,<3",
        "tensorboard>=2.20,<3",
        "matplotlib>=3.8,<4",
        "tqdm>=4.66,<5",
        "pyyaml>=6,<7",
    ],
    extras_require={
        "test": ["pytest>=8,<10", "scikit-learn>=1.4,<2", "ruff>=0.6",
                 "nbclient>=0.10,<1", "nbformat>=5.10,<6", "ipykernel>=6.29,<8"],
    },
    entry_points={"console_scripts": ["tgt-keras=tgt_keras.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Framework :: TensorFlow",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
