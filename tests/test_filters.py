"""imaging.filters against the OpenCV calls they stand for (fast-upscale no longer imports OpenCV)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pixelsmith.imaging import filters

SHAPES = [(32, 32), (33, 47), (97, 131)]


@pytest.mark.parametrize("shape", SHAPES)
def test_grey_and_spread_are_opencvs(shape: tuple[int, int]) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
    grey = filters.grey601(rgb)
    assert (grey == cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)).all()
    box = np.ones((3, 3), np.uint8)
    assert (filters.spread3(grey) == cv2.dilate(grey, box).astype(np.int16) - cv2.erode(grey, box)).all()


def test_grey_is_opencvs_on_every_colour() -> None:
    v = np.arange(1 << 24, dtype=np.uint32)
    rgb = np.stack([(v >> 16) & 255, (v >> 8) & 255, v & 255], -1).astype(np.uint8).reshape(4096, 4096, 3)
    assert (filters.grey601(rgb) == cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)).all()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("factor", [2, 4])
def test_float_filters_match_opencv_to_rounding(shape: tuple[int, int], factor: int) -> None:
    rng = np.random.default_rng(2)
    h, w = shape
    small = rng.random((h, w, 3), dtype=np.float32) * 255
    for sigma in (0.75, 1.5, 3.0):
        ours = filters.gaussian_blur(small, sigma)
        assert np.abs(ours - cv2.GaussianBlur(small, (0, 0), sigma)).max() < 1e-3
    big = rng.random((h * factor, w * factor, 3), dtype=np.float32) * 255
    area = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
    assert np.abs(filters.area_reduce(big, factor) - area).max() < 1e-3
    target = big.copy()
    filters.cubic_add(target, small, factor)
    cubic = cv2.resize(small, (w * factor, h * factor), interpolation=cv2.INTER_CUBIC)
    assert np.abs(target - (big + cubic)).max() < 1e-3


def test_sizes_that_are_not_multiples_are_refused() -> None:
    with pytest.raises(ValueError):
        filters.area_reduce(np.zeros((10, 12, 3), np.float32), 4)
    with pytest.raises(ValueError):
        filters.cubic_add(np.zeros((40, 40, 3), np.float32), np.zeros((10, 11, 3), np.float32), 4)
