"""erase with a stroke that spills onto a neighbouring object: the fill must not grow the neighbour.

Synthetic scenes with known truth: object A (the cat photo in a disk or the horse silhouette) pasted 6 px from
object B (a printed page, or a crop of the coffee photo) on a real textured background (scikit-image's grass,
gravel and brick photos); the stroke covers A with a loose margin and overlaps B by 10-20 px. Truth: the background
plate. "Leak" is the fraction of the hole's pixels that take B's colours (closer to one of B's two main
colours than to the plate there, by more than 10 Lab units).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

W, H = 320, 256


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def _backgrounds() -> dict[str, np.ndarray]:
    grey = {"grass": data.grass(), "gravel": data.gravel(), "brick": data.brick()}
    return {k: np.ascontiguousarray(np.repeat(v[:H, :W, None], 3, axis=2)) for k, v in grey.items()}


def scene(background: str = "gravel", neighbour: str = "page", overlap: int = 15, shape: str = "disk", seed: int = 0):
    """(image, hole, plate, b_mask, b_colours): A at the left, B to its right, the hole over A and ``overlap`` px
    of B."""
    rng = np.random.default_rng(seed)
    plate = _backgrounds()[background]
    img = plate.copy()
    # B: a block on the right; its left edge 6 px from A's right edge
    bx0 = 176 + int(rng.integers(-8, 9))
    by0, by1 = 30 + int(rng.integers(0, 20)), 220 + int(rng.integers(0, 20))
    b = np.zeros((H, W), bool)
    b[by0:by1, bx0 : W - 20] = True
    if neighbour == "page":  # a printed page: light paper with dark lines
        page = np.full((H, W, 3), (228, 226, 216), np.uint8)
        for y in range(by0 + 6, by1 - 4, 8):
            page[y : y + 2, bx0 + int(rng.integers(4, 20)) : W - 20 - int(rng.integers(4, 40))] = (45, 45, 60)
        img[b] = page[b]
    else:  # a crop of a real photo (the coffee cup and saucer)
        cup = cv2.resize(data.coffee()[60:360, 120:520], (W - 20 - bx0, by1 - by0), interpolation=cv2.INTER_AREA)
        img[by0:by1, bx0 : W - 20] = cup
    # A: the cat photo in a disk or the horse silhouette, ending 6 px left of B
    a = np.zeros((H, W), np.uint8)
    cy = (by0 + by1) // 2 + int(rng.integers(-10, 11))
    if shape == "disk":
        cv2.circle(a, (bx0 - 6 - 62, cy), 62, 1, -1)
    else:
        horse = cv2.resize((~data.horse()).astype(np.uint8), (150, 120), interpolation=cv2.INTER_NEAREST)
        a[cy - 60 : cy + 60, bx0 - 6 - 150 : bx0 - 6] = horse
    a = a.astype(bool)
    cat = cv2.resize(data.chelsea(), (W, H), interpolation=cv2.INTER_AREA)
    img[a] = cat[a]
    # the stroke: A with a loose margin, and a spill of ``overlap`` px into B
    stroke = cv2.dilate(a.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (13, 13)))
    cv2.ellipse(stroke, (int(bx0 + overlap - 40), cy), (40, 45), 0, 0, 360, 1, -1)
    hole = stroke.astype(bool)
    hole[:, bx0 + overlap :] = False  # the spill reaches exactly ``overlap`` px into B
    hole |= cv2.dilate(a.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    # B's two main colours (k-means in Lab), for the leak figure
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.1)
    cv2.setRNGSeed(1)
    _, _, centres = cv2.kmeans(_lab(img)[b & ~hole], 2, None, crit, 3, cv2.KMEANS_PP_CENTERS)
    return img, hole, plate, b, centres


def leak(result: np.ndarray, plate: np.ndarray, hole: np.ndarray, b_colours: np.ndarray) -> float:
    """Fraction of the hole's pixels whose colour is B's rather than the background's (see module docstring)."""
    res = _lab(cv2.GaussianBlur(result, (0, 0), 1.0))[hole]
    ref = _lab(cv2.GaussianBlur(plate, (0, 0), 3.0))[hole]
    to_b = np.min(np.linalg.norm(res[:, None, :] - b_colours[None], axis=2), axis=1)
    to_plate = np.linalg.norm(res - ref, axis=1)
    return float((to_b + 10.0 < to_plate).mean())


def hole_psnr(result: np.ndarray, plate: np.ndarray, hole: np.ndarray) -> float:
    mse = float(((result.astype(np.float32) - plate.astype(np.float32)) ** 2)[hole].mean())
    return 10 * np.log10(255.0**2 / max(mse, 1e-6))


CASES = [("gravel", "page", 15, "disk", 0), ("grass", "cup", 12, "horse", 1), ("brick", "page", 20, "horse", 2)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_the_fill_does_not_grow_the_neighbour_across_its_edge(case):
    from pixelsmith.engines.embedded.patchmatch import complete

    img, hole, plate, b, colours = scene(*case)
    assert (hole & b).sum() > 500  # the stroke really spills onto B
    aware = complete(img, hole, seed=3)
    plain = complete(img, hole, seed=3, edges=False)
    assert (aware[~hole] == img[~hole]).all()
    leak_aware, leak_plain = leak(aware, plate, hole, colours), leak(plain, plate, hole, colours)
    assert leak_plain > 0.04, leak_plain  # the case is a real one: without the edge rule B grows into the hole
    assert leak_aware < 0.35 * leak_plain and leak_aware < 0.03, (leak_aware, leak_plain)
    assert hole_psnr(aware, plate, hole) > hole_psnr(plain, plate, hole) + 0.3  # closer to the background plate


def test_no_neighbour_no_change():
    # A hole inside a texture with no object at its border: the rule finds nothing, the fill is unchanged.
    from pixelsmith.engines.embedded.patchmatch import complete, far_side

    img = _backgrounds()["gravel"]
    hole = np.zeros(img.shape[:2], bool)
    hole[90:160, 100:190] = True
    assert far_side(img, hole) is None
    assert (complete(img, hole, seed=2) == complete(img, hole, seed=2, edges=False)).all()
