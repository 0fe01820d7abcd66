"""Modalities: what an example is, for each kind of data the core trains on.

- `image`: float images of a declared `ImageFormat` (`ImageModality`).
- `text`: token ids over one shared `Vocabulary`, soft tokens for the gradient
  (`TextModality`, and the text pieces in `tgt_keras.modalities.text`).
Importing this package registers every modality with `tgt_keras.core.modality`.
"""

from tgt_keras.modalities.image import ImageModality
from tgt_keras.modalities.image_format import ImageFormat, as_image_format, convert_images
from tgt_keras.modalities.text.modality import TextModality

__all__ = ["ImageFormat", "ImageModality", "TextModality", "as_image_format", "convert_images"]
