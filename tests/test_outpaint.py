"""outpaint on the embedded engine: the canvas grows, the original stays, the new area continues it."""

from __future__ import annotations

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


def _gradient_energy(rgb: np.ndarray) -> np.ndarray:
    lum = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.hypot(cv2.Sobel(lum, cv2.CV_32F, 1, 0), cv2.Sobel(lum, cv2.CV_32F, 0, 1))


@pytest.fixture(scope="module")
def grass():
    """A real grass photo (scikit-image): the centre is the input, the full frame the truth."""
    truth = np.repeat(data.grass()[:200, :240, None], 3, axis=2)
    crop = np.ascontiguousarray(truth[20:180, 40:200])  # 160x160, margins 40 left/right, 20 up/down
    return truth, crop


@pytest.fixture(scope="module")
def grass_outpainted(grass):
    _, crop = grass
    out = pixelsmith.run("outpaint", image=Image.fromarray(crop), left=40, right=40, up=20, down=20, seed=3)
    return out


def test_output_size_and_original_region_preserved(grass, grass_outpainted):
    _, crop = grass
    out = grass_outpainted
    assert out.engine == "embedded"
    assert out.image.size == (160 + 80, 160 + 40)
    res = np.asarray(out.image.convert("RGB"))
    assert (res[20:180, 40:200] == crop).all()
    assert out.metadata["added"] == {"left": 40, "right": 40, "up": 20, "down": 20}


def test_new_area_continues_the_texture_and_is_not_a_mirror(grass, grass_outpainted):
    truth, crop = grass
    res = np.asarray(grass_outpainted.image.convert("RGB"))
    new = np.ones(truth.shape[:2], bool)
    new[20:180, 40:200] = False
    assert abs(res[new].mean() - truth[new].mean()) < 15
    ratio = _gradient_energy(res)[new].mean() / _gradient_energy(truth)[new].mean()
    assert 0.6 < ratio < 1.5, ratio  # edge replication smears to ~0.6 here only along one axis, blur gives ~0
    mirror = cv2.copyMakeBorder(crop, 20, 20, 40, 40, cv2.BORDER_REFLECT_101)
    smear = cv2.copyMakeBorder(crop, 20, 20, 40, 40, cv2.BORDER_REPLICATE)
    assert (res[new] == mirror[new]).all(axis=1).mean() < 0.2
    assert (res[new] == smear[new]).all(axis=1).mean() < 0.2


def test_structure_continues_across_the_seam():
    # Vertical stripes of a real photo's colours: extending up/down must continue the stripes.
    photo = np.asarray(Image.open(ROOT / "samples" / "outpaint_input.jpg").convert("RGB").resize((64, 96)))
    stripes = np.zeros((128, 128, 3), np.uint8)
    for x in range(0, 128, 16):
        stripes[:, x : x + 8] = photo[40, 30]  # tower brown
        stripes[:, x + 8 : x + 16] = photo[5, 5]  # sky
    out = pixelsmith.run("outpaint", image=Image.fromarray(stripes), up=48, down=48, seed=4)
    res = np.asarray(out.image).astype(int)
    new = np.concatenate([res[:40], res[-40:]])  # away from the seams
    expect = np.concatenate([stripes[:40], stripes[:40]]).astype(int)
    assert np.abs(new - expect).mean() < 12


def test_same_seed_same_output(grass):
    _, crop = grass
    img = Image.fromarray(crop[:96, :96])
    a = pixelsmith.run("outpaint", image=img, right=32, seed=77, creativity=0.8).data
    b = pixelsmith.run("outpaint", image=img, right=32, seed=77, creativity=0.8).data
    c = pixelsmith.run("outpaint", image=img, right=32, seed=78, creativity=0.8).data
    assert a == b and a != c


def test_cli_outpaint(tmp_path, grass):
    _, crop = grass
    src, dst = tmp_path / "in.png", tmp_path / "out.jpg"
    Image.fromarray(crop[:100, :120]).save(src)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pixelsmith",
            "run",
            "outpaint",
            str(src),
            "--left",
            "24",
            "--down",
            "16",
            "--seed",
            "5",
            "-o",
            str(dst),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr
    img = Image.open(dst)
    assert img.format == "JPEG" and img.size == (144, 116)


def test_very_large_canvases_are_synthesised_at_a_reduced_scale(grass):
    # The bound that keeps a 9 MP image with 2000 px margins in memory, exercised on a small case.
    from pixelsmith.engines.embedded.patchmatch import complete

    truth, crop = grass
    canvas = truth.copy()
    hole = np.ones(truth.shape[:2], bool)
    hole[20:180, 40:200] = False
    canvas[hole] = 0
    res = complete(canvas, hole, seed=1, max_canvas=12_000)
    assert (res[~hole] == canvas[~hole]).all()
    assert abs(res[hole].mean() - truth[hole].mean()) < 15 and res[hole].std() > 10
