"""Small image filters in numpy, each the same arithmetic as the OpenCV call it names.

fast-upscale needs five OpenCV calls on a photo (a grey conversion, a 3x3 dilate and erode, an area
reduction, a Gaussian blur and a bicubic enlargement); importing OpenCV for them cost ~22 ms of CPU and
~20 MiB of memory on every `pixelsmith run fast-upscale`, more than the filters themselves on a small image
(docs/performance.md, start-up). These give the same results (the grey and the 3x3 spread bit-identical; the
float filters to float32 rounding), checked against OpenCV in tests/test_filters.py.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported inside the functions: the tool list imports no numpy
    import numpy as np

CUBIC_A = -0.75  # OpenCV's bicubic (PIL uses -0.5)
STRIP_ROWS = 64  # source rows per step of cubic_add's second pass: bounds its temporaries


def grey601(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> uint8 luma, ``cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)``: BT.601 in 15-bit fixed point
    (OpenCV 4's coefficients; equal to OpenCV on all 2^24 colours)."""
    import numpy as np

    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    return ((r * 9798 + g * 19235 + b * 3735 + (1 << 14)) >> 15).astype(np.uint8)


def spread3(grey: np.ndarray) -> np.ndarray:
    """Max minus min over each pixel's 3x3 neighbourhood (int16): ``cv2.dilate(y, box) - cv2.erode(y, box)``.

    OpenCV leaves pixels outside the image out of both; repeating the edge pixels gives the same extremes.
    """
    import numpy as np

    p = np.pad(grey, 1, mode="edge")
    h, w = grey.shape
    views = [p[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)]
    return np.maximum.reduce(views).astype(np.int16) - np.minimum.reduce(views)


def area_reduce(image: np.ndarray, factor: int) -> np.ndarray:
    """float32 (H, W, C) -> the mean of each ``factor`` x ``factor`` block: ``cv2.resize(..., INTER_AREA)`` when
    H and W are multiples of ``factor``. Summed as strided views (2.3x faster than a reshaped mean)."""
    h, w = image.shape[:2]
    if h % factor or w % factor:
        raise ValueError(f"{w}x{h} is not a multiple of {factor}")
    acc = image[::factor, ::factor].copy()
    for dy in range(factor):
        for dx in range(factor):
            if dy or dx:
                acc += image[dy::factor, dx::factor]
    acc *= 1.0 / (factor * factor)
    return acc


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """float32 (H, W, C) blurred like ``cv2.GaussianBlur(image, (0, 0), sigma)``: a separable kernel of
    ``round(8 sigma + 1) | 1`` taps (OpenCV's size for float images), mirrored borders (BORDER_REFLECT_101)."""
    import numpy as np

    n = int(math.floor(sigma * 8 + 1 + 0.5)) | 1
    r = n // 2
    x = np.arange(n, dtype=np.float64) - r
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    h, w = image.shape[:2]
    p = np.pad(image, ((r, r), (0, 0), (0, 0)), mode="reflect")
    rows = k[0] * p[:h]
    for i in range(1, n):
        rows += k[i] * p[i : i + h]
    p = np.pad(rows, ((0, 0), (r, r), (0, 0)), mode="reflect")
    out = k[0] * p[:, :w]
    for i in range(1, n):
        out += k[i] * p[:, i : i + w]
    return out


def _cubic_phases(factor: int) -> list[tuple[int, np.ndarray]]:
    """Output ``j * factor + p`` of an integer enlargement reads sources ``j + s - 1 .. j + s + 2`` with the same
    4 weights for every ``j``: (s, weights) for each phase ``p``, OpenCV's half-pixel centres and a = -0.75."""
    import numpy as np

    a = CUBIC_A
    phases = []
    for p in range(factor):
        f = (p + 0.5) / factor - 0.5
        s = math.floor(f)
        d = np.abs(np.array([-1.0, 0.0, 1.0, 2.0]) - (f - s))  # distance of each tap
        near = ((a + 2) * d - (a + 3)) * d * d + 1
        far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
        phases.append((s, np.where(d <= 1, near, far).astype(np.float32)))
    return phases


def cubic_add(target: np.ndarray, small: np.ndarray, factor: int) -> None:
    """``target += cv2.resize(small, target's size, interpolation=INTER_CUBIC)`` for an integer ``factor``
    (float32 (H, W, C), H and W ``factor`` times small's; borders repeat the edge pixels, as OpenCV's do).

    Separable, x then y, one phase at a time over strided slices, y in strips of :data:`STRIP_ROWS` source rows
    so the temporaries stay small: 0.27 s CPU for a 16 MP output (OpenCV 0.07 s; gathering the taps by index
    took 1.7 s).
    """
    import numpy as np

    h, w, c = small.shape
    if target.shape[:2] != (h * factor, w * factor):
        raise ValueError(f"target {target.shape[:2]} is not {factor}x {small.shape[:2]}")
    phases = _cubic_phases(factor)
    src = np.pad(small, ((0, 0), (2, 2), (0, 0)), mode="edge")
    wide = np.empty((h, w * factor, c), np.float32)
    for p, (s, wt) in enumerate(phases):
        acc = wt[0] * src[:, s + 1 : s + 1 + w]
        for m in range(1, 4):
            acc += wt[m] * src[:, s + m + 1 : s + m + 1 + w]
        wide[:, p::factor] = acc
    src = np.pad(wide, ((2, 2), (0, 0), (0, 0)), mode="edge")
    for j0 in range(0, h, STRIP_ROWS):
        j1 = min(h, j0 + STRIP_ROWS)
        for p, (s, wt) in enumerate(phases):
            acc = wt[0] * src[j0 + s + 1 : j1 + s + 1]
            for m in range(1, 4):
                acc += wt[m] * src[j0 + s + m + 1 : j1 + s + m + 1]
            target[j0 * factor + p : j1 * factor : factor] += acc
