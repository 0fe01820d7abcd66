"""Kept for imports written before the modality split: `ImageFormat` lives in
`tgt_keras.modalities.image_format`."""

from tgt_keras.modalities.image_format import ImageFormat, as_image_format, convert_images

__all__ = ["ImageFormat", "as_image_format", "convert_images"]
