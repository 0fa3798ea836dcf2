"""style-transfer (embedded): Gatys optimisation over HED's VGG16, through the public API.

The service's schedule takes about a minute of CPU per image; these tests run the same pipeline with a short
schedule (few iterations at a small scale) and check what does not depend on the iteration count: the 1 MP
output with the init image's aspect ratio, a style loss that goes down, and seed determinism.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import pixelsmith
from pixelsmith.engines.embedded.recipes import style_transfer
from pixelsmith.engines.embedded.style import OUTPUT_PIXELS, Schedule


@pytest.fixture(scope="module")
def short_schedule():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(style_transfer, "SCHEDULE", Schedule(((80, 8),)))
        yield


@pytest.fixture(scope="module")
def images(samples):
    init = Image.open(samples / "style_transfer_input.jpg").convert("RGB")  # 768x1024
    style = Image.open(samples / "style_transfer_style_image.jpg").convert("RGB").resize((256, 171))
    return init, style


def restyle(images, seed: int, **fields):
    init, style = images
    return pixelsmith.run("style-transfer", init_image=init, style_image=style, seed=seed, **fields)


@pytest.fixture(scope="module")
def first(embedded_models, short_schedule, images):
    return restyle(images, seed=7)


def test_output_is_1mp_with_the_init_aspect(first, images):
    w, h = first.image.size
    assert abs(w * h - OUTPUT_PIXELS) / OUTPUT_PIXELS < 0.02
    assert abs(w / h - images[0].width / images[0].height) < 0.01
    assert first.seed == 7


def test_style_loss_goes_down_and_the_style_shows(first, images):
    losses = first.metadata["losses"]
    # Losses are normalised by the init image's own: init style = 1, init content = 0.
    assert losses["init_style"] == pytest.approx(1.0)
    assert losses["style"] < 0.7
    assert losses["content"] > 0.0
    assert "prompt" in first.metadata["note"]

    # The style image is dark blue; the statue photo is warm beige. The result moves towards blue.
    def blue_minus_red(img):
        arr = np.asarray(img.convert("RGB"), np.float64)
        return float(arr[..., 2].mean() - arr[..., 0].mean())

    assert blue_minus_red(first.image) > blue_minus_red(images[0]) + 10


def test_same_seed_same_image_other_seed_other_image(first, images):
    again = restyle(images, seed=7)
    assert np.array_equal(np.asarray(again.image), np.asarray(first.image))
    other = restyle(images, seed=8)
    assert np.abs(np.asarray(other.image, np.int16) - np.asarray(first.image, np.int16)).mean() > 1.0


def test_no_style_strength_keeps_the_init_image(embedded_models, short_schedule, images):
    out = restyle(images, seed=3, style_strength=0.0)
    init = images[0].resize(out.image.size, Image.Resampling.LANCZOS)
    diff = np.abs(np.asarray(out.image, np.int16) - np.asarray(init, np.int16))
    assert diff.mean() < 2.0
