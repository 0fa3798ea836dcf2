"""Edit masks: white = edit, black = keep.

A mask is carried as float32 HxW in 0..1. ``region`` is where pixels may
change at all (mask > 0); compositing guarantees everything else is untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image

from pixelsmith.errors import InvalidRequest
from pixelsmith.lazy import cv2  # the tool list imports this module: OpenCV only when a mask is grown

if TYPE_CHECKING:  # numpy is imported inside the functions: listing the tools imports no numpy
    import numpy as np


def mask_for(image: Image.Image, mask: Image.Image | None, *, field: str = "mask") -> np.ndarray:
    """The explicit mask (resized to the image) wins; else the image's alpha (transparent = edit)."""
    import numpy as np

    if mask is not None:
        gray = mask.convert("L") if mask.mode != "RGBA" else _rgba_mask_to_l(mask)
        if gray.size != image.size:
            gray = gray.resize(image.size, Image.Resampling.BILINEAR)
        return np.asarray(gray, dtype=np.float32) / 255.0
    if image.mode == "RGBA":
        alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0
        return 1.0 - alpha
    raise InvalidRequest.one(field, "is required when the image has no alpha channel", "mask_required")


def _rgba_mask_to_l(mask: Image.Image) -> Image.Image:
    # A mask drawn on a transparent layer: paint where it is opaque and bright.
    import numpy as np

    arr = np.asarray(mask, dtype=np.float32)
    lum = arr[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return Image.fromarray(np.clip(lum * arr[..., 3] / 255.0, 0, 255).astype(np.uint8), "L")


def grow_mask(mask: np.ndarray, pixels: float) -> np.ndarray:
    """Grow the mask outward by ``pixels`` and feather the grown band (Stability's grow_mask).

    The original masked area stays at full strength; the new band falls off
    smoothly, so a seam never shows a hard edge.
    """
    import numpy as np

    n = int(round(pixels))
    hard = (mask >= 0.5).astype(np.uint8)
    if n <= 0:
        return np.clip(mask, 0, 1).astype(np.float32)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * n + 1, 2 * n + 1))
    grown = cv2.dilate(hard, kernel)
    # Distance inside the grown band from its outer edge, scaled to 0..1.
    dist = cv2.distanceTransform(grown, cv2.DIST_L2, 5)
    soft = np.clip(dist / max(n, 1), 0.0, 1.0)
    soft = np.maximum(soft, np.clip(mask, 0, 1))
    soft[hard.astype(bool)] = 1.0
    return soft.astype(np.float32)


def binary(mask: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    return mask >= threshold


def coverage(mask: np.ndarray) -> float:
    """Fraction of the image the mask touches."""
    return float((mask > 0).mean())
