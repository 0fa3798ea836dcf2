"""erase on the embedded engine: real photos, real holes, the outside kept bit for bit."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import ROOT
from PIL import Image
from skimage import data

import pixelsmith
from pixelsmith.imaging.masks import grow_mask, mask_for


def _gradient_energy(rgb: np.ndarray) -> np.ndarray:
    lum = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.hypot(cv2.Sobel(lum, cv2.CV_32F, 1, 0), cv2.Sobel(lum, cv2.CV_32F, 0, 1))


def _run(image, mask=None, **fields):
    out = pixelsmith.run("erase", image=image, mask=mask, **fields)
    assert out.engine == "embedded"
    return out


@pytest.fixture(scope="module")
def brick():
    """A real brick wall (scikit-image), a 40x60 hole with a red object pasted into it."""
    truth = np.repeat(data.brick()[:256, :256, None], 3, axis=2)
    hole = np.zeros(truth.shape[:2], bool)
    hole[100:140, 90:150] = True
    pasted = truth.copy()
    pasted[hole] = (220, 30, 30)
    return truth, pasted, hole


@pytest.fixture(scope="module")
def brick_erased(brick):
    truth, pasted, hole = brick
    mask = Image.fromarray((hole * 255).astype(np.uint8))
    out = _run(Image.fromarray(pasted), mask, grow_mask=0, seed=11)
    return np.asarray(out.image.convert("RGB")), out


def test_hole_is_filled_with_texture_like_the_truth(brick, brick_erased):
    truth, pasted, hole = brick
    res, _ = brick_erased
    inner = cv2.erode(hole.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    # No trace of the red object, and the wall's brightness and contrast carry on.
    assert np.abs(res[hole].astype(int) - truth[hole].astype(int)).mean() < 40
    assert abs(res[hole].mean() - truth[hole].mean()) < 12
    assert 0.6 < res[hole].std() / truth[hole].std() < 1.5
    # Texture, not blur: a diffusion fill scores ~0.3 here, a mean fill 0.
    ratio = _gradient_energy(res)[inner].mean() / _gradient_energy(truth)[inner].mean()
    assert 0.6 < ratio < 1.5, ratio
    # Coarse fidelity: closer to the truth than a flat fill of the surrounding mean.
    blur = lambda a: cv2.GaussianBlur(a.astype(np.float32), (0, 0), 4)  # noqa: E731
    flat = truth.copy()
    flat[hole] = truth[~hole].mean(axis=0)
    err = lambda a: float(((blur(a) - blur(truth)) ** 2)[hole].mean())  # noqa: E731
    assert err(res) < err(flat)


def test_outside_the_mask_is_bit_identical(brick, brick_erased):
    _, pasted, hole = brick
    res, out = brick_erased
    assert (res[~hole] == pasted[~hole]).all()
    assert out.image.size == (256, 256) and out.metadata["erased_fraction"] == pytest.approx(hole.mean(), abs=1e-3)


def test_grow_mask_widens_the_changed_region_and_nothing_else_changes(brick):
    _, pasted, hole = brick
    mask = Image.fromarray((hole * 255).astype(np.uint8))
    res = np.asarray(_run(Image.fromarray(pasted), mask, grow_mask=12, seed=11).image.convert("RGB"))
    changed = (res != pasted).any(axis=2)
    grown = grow_mask(mask_for(Image.fromarray(pasted), mask), 12) > 0
    assert not changed[~grown].any()  # the outside of the *grown* mask is untouched
    assert changed[grown & ~hole].sum() > 200  # and the grown band was really reworked


def test_alpha_channel_is_the_mask_when_none_is_given():
    photo = np.asarray(Image.open(ROOT / "samples" / "erase_input_desk.png").convert("RGB").resize((256, 256)))
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    rgba[150:190, 60:200, :3] = (255, 0, 255)  # garbage colour under the transparent part
    rgba[150:190, 60:200, 3] = 0
    out = _run(Image.fromarray(rgba, "RGBA"), grow_mask=0, seed=5)
    res = np.asarray(out.image)
    assert out.image.mode == "RGB"
    hole = rgba[..., 3] == 0
    assert (res[~hole] == photo[~hole]).all()
    magenta = (res[..., 0] > 200) & (res[..., 1] < 60) & (res[..., 2] > 200)
    assert not magenta[hole].any()


def test_the_notebook_pencil_is_erased_into_wood():
    img = Image.open(ROOT / "samples" / "erase_input_desk.png").convert("RGB").resize((384, 384))
    mask = Image.open(ROOT / "samples" / "erase_desk_pencil_mask.png").convert("L").resize((384, 384))
    res = np.asarray(_run(img, mask, seed=2).image)
    hole = np.asarray(mask) > 127
    hsv = cv2.cvtColor(res, cv2.COLOR_RGB2HSV)
    teal = (hsv[..., 0] > 75) & (hsv[..., 0] < 100) & (hsv[..., 1] > 100)  # the pencil's colour
    assert teal[hole].mean() < 0.02
    ring = cv2.dilate(hole.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool) & ~cv2.dilate(
        hole.astype(np.uint8), np.ones((9, 9), np.uint8)
    ).astype(bool)
    assert np.abs(res[hole].mean(axis=0) - res[ring].mean(axis=0)).max() < 25  # wood-coloured


def test_same_seed_same_output_other_seed_other_output(brick):
    _, pasted, hole = brick
    img = Image.fromarray(pasted[:128, 64:192])
    mask = Image.fromarray((hole[:128, 64:192] * 255).astype(np.uint8))
    a = _run(img, mask, seed=123).data
    b = _run(img, mask, seed=123).data
    c = _run(img, mask, seed=124).data
    assert a == b and a != c


def test_cli_erase_with_mask(tmp_path, brick):
    _, pasted, hole = brick
    src, msk, dst = tmp_path / "in.png", tmp_path / "mask.png", tmp_path / "out.png"
    Image.fromarray(pasted).save(src)
    Image.fromarray((hole * 255).astype(np.uint8)).save(msk)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pixelsmith",
            "run",
            "erase",
            str(src),
            "--mask",
            str(msk),
            "--grow-mask",
            "0",
            "--seed",
            "9",
            "-o",
            str(dst),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr
    res = np.asarray(Image.open(io.BytesIO(dst.read_bytes())).convert("RGB"))
    assert res.shape == pasted.shape
    assert (res[~hole] == pasted[~hole]).all()
    assert not ((res[..., 0] > 200) & (res[..., 1] < 60))[hole].any()  # the red object is gone


def test_a_mask_over_everything_is_a_clear_422():
    from pixelsmith.errors import Unprocessable

    img = Image.open(ROOT / "samples" / "erase_input_desk.png").convert("RGB").resize((96, 96))
    mask = np.full((96, 96), 255, np.uint8)
    mask[:3, :3] = 0
    with pytest.raises(Unprocessable, match="too little of the image"):
        _run(img, Image.fromarray(mask), grow_mask=0)


@pytest.fixture(scope="module")
def brick_wall_large():
    """The whole 512x512 brick wall with two small holes far apart: each is completed on a crop."""
    truth = np.repeat(data.brick()[:, :, None], 3, axis=2)
    hole = np.zeros(truth.shape[:2], bool)
    hole[100:140, 90:150] = True
    hole[380:410, 360:400] = True
    pasted = truth.copy()
    pasted[hole] = (220, 30, 30)
    return truth, pasted, hole


def _figures(res: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> tuple[float, float]:
    inner = cv2.erode(hole.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    texture = float(_gradient_energy(res)[inner].mean() / _gradient_energy(truth)[inner].mean())
    blur = lambda a: cv2.GaussianBlur(a.astype(np.float32), (0, 0), 4)  # noqa: E731
    return texture, float(((blur(res) - blur(truth)) ** 2)[hole].mean())


def test_erase_on_a_crop_keeps_the_whole_canvas_quality(brick_wall_large):
    from pixelsmith.engines.embedded.patchmatch import complete, work_regions

    truth, pasted, hole = brick_wall_large
    boxes, labels = work_regions(hole)
    assert labels is not None and len(boxes) == 2  # two crops, together well under the canvas
    assert sum((b[0].stop - b[0].start) * (b[1].stop - b[1].start) for b in boxes) < 0.5 * hole.size
    flat = truth.copy()
    flat[hole] = truth[~hole].mean(axis=0)
    for seed in (11, 3):
        local = complete(pasted, hole, seed=seed)
        whole = complete(pasted, hole, seed=seed, local=False)
        assert (local[~hole] == pasted[~hole]).all()
        assert not ((local[..., 0] > 200) & (local[..., 1] < 60))[hole].any()  # the red objects are gone
        tex_local, err_local = _figures(local, truth, hole)
        tex_whole, err_whole = _figures(whole, truth, hole)
        assert 0.6 < tex_local < 1.5 and abs(tex_local - tex_whole) < 0.1, (tex_local, tex_whole)
        assert err_local < _figures(flat, truth, hole)[1] and err_local < 1.25 * err_whole, (err_local, err_whole)
