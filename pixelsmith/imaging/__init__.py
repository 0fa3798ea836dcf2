"""Imaging core shared by every tool: decode, size rules, masks, composite, encode."""

from pixelsmith.imaging.composite import composite, flatten
from pixelsmith.imaging.decode import b64decode_field, decode_image
from pixelsmith.imaging.encode import MIME, encode, mime_for
from pixelsmith.imaging.masks import grow_mask, mask_for
from pixelsmith.imaging.rules import ImageRule

__all__ = [
    "ImageRule",
    "MIME",
    "b64decode_field",
    "composite",
    "decode_image",
    "encode",
    "flatten",
    "grow_mask",
    "mask_for",
    "mime_for",
]
