"""Image-quality measures shared by the quality benchmarks and tests.

Plain PSNR rewards blur, so fills and upscales are judged on two axes:
fidelity at a coarse scale (PSNR after a Gaussian blur) and texture
(gradient energy relative to the truth's: ~0 for a blur, ~1 for a good result).
"""

from __future__ import annotations

import cv2
import numpy as np


def _f32(img) -> np.ndarray:
    return np.asarray(img, dtype=np.float32)[..., :3]


def coarse_psnr(a, b, sigma: float = 2.0, mask: np.ndarray | None = None) -> float:
    x, y = cv2.GaussianBlur(_f32(a), (0, 0), sigma), cv2.GaussianBlur(_f32(b), (0, 0), sigma)
    diff = (x - y) ** 2
    mse = float(diff[mask].mean()) if mask is not None else float(diff.mean())
    return 10 * np.log10(255.0**2 / max(mse, 1e-10))


def gradient_energy(img, mask: np.ndarray | None = None) -> float:
    gray = cv2.cvtColor(_f32(img), cv2.COLOR_RGB2GRAY)
    gx, gy = cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1)
    energy = gx**2 + gy**2
    return float(energy[mask].mean()) if mask is not None else float(energy.mean())


def texture_ratio(result, truth, mask: np.ndarray | None = None) -> float:
    return gradient_energy(result, mask) / max(gradient_energy(truth, mask), 1e-6)
