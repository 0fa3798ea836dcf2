"""Phrase -> mask on the embedded engine: the vocabulary, garments on the notebook photo, COCO objects, salient."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from PIL import Image

from bench.quality.recolor import regions
from pixelsmith.engines.embedded.grounding import ground, resolve, vocabulary
from pixelsmith.errors import Unprocessable


@pytest.mark.parametrize(
    "phrase, kind",
    [
        ("jacket", "upper"),
        ("the man's jacket", "upper"),
        ("blue puffer jacket", "upper"),
        ("T-shirt", "upper"),
        ("jeans", "lower"),
        ("his trousers", "lower"),
        ("shoes", "shoes"),
        ("dress", "dress"),
        ("outfit", "clothes"),
        ("hair", "hair"),
        ("face", "face"),
        ("the woman", "person"),
        ("people", "person"),
        ("cat", "coco:cat"),
        ("kittens", "coco:cat"),
        ("coffee cups", "coco:cup"),
        ("mug", "coco:cup"),
        ("sofa", "coco:couch"),
        ("cell phone", "coco:cell phone"),
        ("the product", "salient"),
        ("main object", "salient"),
        ("subject", "salient"),
    ],
)
def test_vocabulary_resolves_synonyms_and_plurals(phrase, kind):
    assert resolve(phrase)[0] == kind


def test_unknown_phrases_resolve_to_nothing():
    assert resolve("unicorn") is None
    assert resolve("the glow of the sunset") is None


def test_vocabulary_lists_all_80_coco_classes_but_person():
    vocab = vocabulary()
    assert len(vocab["objects (COCO)"]) == 79
    assert "jacket" in vocab["garments"] and "hair" in vocab["people"]


def test_unknown_phrase_error_lists_vocabulary_and_names_diffusers():
    img = Image.new("RGB", (64, 64))
    with pytest.raises(Unprocessable) as caught:
        ground(img, "unicorn")
    msg = caught.value.message
    assert caught.value.status == 422
    assert "jacket" in msg and "toothbrush" in msg and "main object" in msg and "diffusers" in msg


@pytest.fixture(scope="module")
def notebook(samples) -> Image.Image:
    return Image.open(samples / "search_and_recolor_input.png").convert("RGB")


@pytest.fixture(scope="module")
def zones(notebook):
    return regions((notebook.height, notebook.width))


def _share(mask: np.ndarray, zone: np.ndarray) -> float:
    return float((mask[zone] >= 0.5).mean())


def test_jacket_mask_covers_the_jacket_not_the_face_straps_or_background(notebook, zones, embedded_models):
    found = ground(notebook, "jacket")
    assert found.kind == "upper"
    assert _share(found.mask, zones["jacket"]) > 0.97
    assert _share(found.mask, zones["face"]) == 0.0
    assert _share(found.mask, zones["hair"]) < 0.02
    assert _share(found.mask, zones["background"]) == 0.0
    assert _share(found.mask, zones["right_strap"]) < 0.15
    assert _share(found.mask, zones["left_strap"]) < 0.35
    assert 0.2 < float((found.mask >= 0.5).mean()) < 0.33  # the jacket fills about a quarter of the photo


def test_face_and_hair_masks_find_their_regions(notebook, zones, embedded_models):
    face = ground(notebook, "face").mask
    assert _share(face, zones["face"]) > 0.9
    assert _share(face, zones["jacket"]) == 0.0
    hair = ground(notebook, "hair").mask
    assert _share(hair, zones["hair"]) > 0.7
    assert _share(hair, zones["jacket"]) == 0.0
    assert _share(hair, zones["background"]) == 0.0


def test_trousers_are_not_the_jacket(notebook, zones, embedded_models):
    # Only a strip of black trousers shows under the jacket: whatever is found must not be the jacket.
    try:
        lower = ground(notebook, "trousers").mask
    except Unprocessable:
        return
    assert _share(lower, zones["jacket"]) < 0.02


def test_coco_cup_is_found_and_refined_inside_its_box(embedded_models):
    coffee = Image.fromarray(skimage.data.coffee())
    found = ground(coffee, "cup")
    box = found.metadata["boxes"][0]["box"]
    x0, y0, x1, y1 = box
    obj = found.mask >= 0.5
    assert obj[y0:y1, x0:x1].sum() > 0.95 * obj.sum()  # the mask stays in the detection's box
    assert obj[(y0 + y1) // 2, (x0 + x1) // 2]  # the cup's centre
    assert 0.3 < obj[y0:y1, x0:x1].mean() < 0.95  # a shape, not the whole box
    with pytest.raises(Unprocessable) as caught:
        ground(coffee, "dog")
    assert "cup" in caught.value.message  # what it did find


def test_salient_subject_is_the_cat(embedded_models):
    chelsea = Image.fromarray(skimage.data.chelsea())
    found = ground(chelsea, "the main subject")
    assert found.kind == "salient"
    obj = found.mask >= 0.5
    h, w = obj.shape
    assert obj[h // 2, w // 3]  # the cat's face
    assert not obj[:, -w // 15 :].any()  # the background along the right edge
    assert 0.5 < obj.mean() < 0.9


def test_a_cat_is_not_a_person(embedded_models):
    # The selfie segmenter alone fires on the cat; without a pose or a face there is no person.
    chelsea = Image.fromarray(skimage.data.chelsea())
    for phrase in ("person", "jacket"):
        with pytest.raises(Unprocessable) as caught:
            ground(chelsea, phrase)
        assert "no person" in caught.value.message
