"""style-transfer (embedded): Magenta's feed-forward network, through the public API, judged by measures.

palette = Hellinger distance of the CIELAB histograms to the style image's (lower = the style's colours);
structure = correlation of gradient magnitudes with the init image's (higher = composition kept). Both are
the ones bench/quality/style_transfer.py reports; docs/quality.md has the figures.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

import pixelsmith
from pixelsmith.engines.embedded.recipes.style_transfer import (
    OUTPUT_PIXELS,
    guided_upsample,
    network_size,
    output_size,
)

sys.path.insert(0, str(ROOT))
from bench.quality.style_transfer import foreign_share, palette_distance, reinhard, structure  # noqa: E402


@pytest.fixture(scope="module")
def images(samples):
    init = Image.open(samples / "style_transfer_input.jpg").convert("RGB")  # 768x1024 statue, warm beige
    style = Image.open(samples / "style_transfer_style_image.jpg").convert("RGB")  # blue light lines on black
    return init, style


def restyle(images, **fields):
    init, style = images
    return pixelsmith.run("style-transfer", init_image=init, style_image=style, seed=7, **fields)


@pytest.fixture(scope="module")
def default(embedded_models, images):
    return restyle(images)


def test_output_is_1mp_with_the_init_aspect(default, images):
    w, h = default.image.size
    assert abs(w * h - OUTPUT_PIXELS) / OUTPUT_PIXELS < 0.02
    assert abs(w / h - images[0].width / images[0].height) < 0.01
    assert w % 8 == 0 and h % 8 == 0
    assert default.seed == 7
    assert "prompt" in default.metadata["note"]
    assert default.metadata["network_size"] == list(network_size(*images[0].size, 0.9))


def test_the_palette_moves_to_the_style_and_the_structure_stays(default, images):
    init, style = images
    styled = palette_distance(default.image, style)
    # Closer to the style image's colours than the photo, and than a colour transfer of the photo (which only
    # matches channel means and spreads), while the statue's edges are still where they were.
    assert styled < palette_distance(init, style) - 0.15
    assert styled < palette_distance(reinhard(init, style), style) - 0.05
    assert structure(default.image, init) > 0.4
    # Not a colour filter: the texture is the network's (a colour transfer keeps the edges almost exactly).
    assert structure(default.image, init) < structure(reinhard(init, style), init) - 0.2
    # Colours that are in neither image (the optimisation recipe it replaced had 25 % of its pixels so): few.
    assert foreign_share(default.image, init, style) < 0.06


def test_style_strength_moves_the_palette_monotonically(default, images):
    style = images[1]
    half, none = restyle(images, style_strength=0.5), restyle(images, style_strength=0.0)
    d = [palette_distance(r.image, style) for r in (none, half, default)]
    assert d[0] > d[1] > d[2]
    s = [structure(r.image, images[0]) for r in (none, half, default)]
    assert s[0] > s[1] > s[2]  # the photo's own style keeps more of its edges


def test_composition_fidelity_keeps_more_structure(default, images):
    loose = restyle(images, composition_fidelity=0.0)
    assert loose.metadata["network_size"][1] == 256
    assert loose.image.size == default.image.size
    assert structure(loose.image, images[0]) < structure(default.image, images[0]) - 0.03


def test_change_strength_blends_back_to_the_init(default, images):
    init, style = images
    half, least = restyle(images, change_strength=0.45), restyle(images, change_strength=0.1)
    s = [structure(r.image, init) for r in (default, half, least)]
    p = [palette_distance(r.image, style) for r in (default, half, least)]
    assert s[0] < s[1] < s[2] and s[2] > 0.95
    assert p[0] < p[1] < p[2]


def test_same_request_same_image(embedded_models, images):
    a, b = restyle(images, composition_fidelity=0.0), restyle(images, composition_fidelity=0.0)
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_guided_upsample_restores_the_edges_that_lanczos_blurs(images):
    # A stylisation that is the identity: the guided upsample of the small image should bring back the large
    # image's edges, which Lanczos alone cannot.
    init = images[0]
    big = init.resize(output_size(*init.size), Image.Resampling.LANCZOS)
    small = init.resize(network_size(*init.size, 0.0), Image.Resampling.LANCZOS)
    guided = guided_upsample(small, small, big)
    lanczos = small.resize(big.size, Image.Resampling.LANCZOS)

    def err(img):
        return float(np.abs(np.asarray(img, np.float32) - np.asarray(big, np.float32)).mean())

    assert guided.size == big.size
    assert err(guided) < 0.8 * err(lanczos)


def test_the_network_runs_at_any_size(embedded_models, images):
    from pixelsmith.engines.embedded import session
    from pixelsmith.engines.sessions import Stylizer

    net = session("magenta-arbitrary-style", Stylizer)
    vector = net.style_vector(images[1])
    assert vector.shape == (1, 1, 1, 100)
    out = net.stylize(images[0].resize((130, 98)), vector)  # not 384x384, not multiples of 4
    assert out.size == (130, 98)
    assert math.isfinite(float(np.asarray(out).mean()))
