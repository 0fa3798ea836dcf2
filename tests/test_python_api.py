"""``pixelsmith.run(image=...)``: a path, bytes, base64 text (or a data URL) or a PIL image, as the README says."""

from __future__ import annotations

import base64
import io
import pathlib

import numpy as np
import pytest
from conftest import png_bytes
from PIL import Image

import pixelsmith
from pixelsmith.errors import InvalidRequest


@pytest.fixture(scope="module")
def photo(tmp_path_factory, samples) -> pathlib.Path:
    """A real photo, cropped small (fast-upscale takes well under a second on it)."""
    path = tmp_path_factory.mktemp("api") / "photo.png"
    Image.open(samples / "remove_background_input.png").convert("RGB").crop((200, 200, 296, 272)).save(path)
    return path


@pytest.fixture(scope="module")
def expected(photo, embedded_models) -> np.ndarray:
    """What fast-upscale makes of the photo given as a PIL image (the reference for every other form)."""
    out = pixelsmith.run("fast-upscale", image=Image.open(photo))
    assert out.image.size == (384, 288)
    return np.asarray(out.image)


def b64(path: pathlib.Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


@pytest.mark.parametrize(
    "form",
    ["str path", "pathlib.Path", "bytes", "base64", "base64 with whitespace", "data URL", "PIL image"],
)
def test_every_documented_image_form_gives_the_same_result(form, photo, expected):
    value = {
        "str path": lambda: str(photo),
        "pathlib.Path": lambda: photo,
        "bytes": lambda: photo.read_bytes(),
        "base64": lambda: b64(photo),
        "base64 with whitespace": lambda: f"\n{b64(photo)}\n",
        "data URL": lambda: "data:image/png;base64," + b64(photo),
        "PIL image": lambda: Image.open(photo),
    }[form]()
    out = pixelsmith.run("fast-upscale", image=value, output_format="png")
    assert out.engine == "embedded" and out.format == "png"
    assert np.array_equal(np.asarray(out.image), expected)
    assert Image.open(io.BytesIO(out.data)).size == (384, 288)


def test_a_relative_path_is_a_path_too(photo, expected, monkeypatch):
    monkeypatch.chdir(photo.parent)
    assert np.array_equal(np.asarray(pixelsmith.run("fast-upscale", image=photo.name).image), expected)


@pytest.mark.parametrize(
    "text",
    ["no-such-photo.jpg", "/tmp/nowhere/photo.png", "abcd", "data:image/png;base64,!!!", ""],
)
def test_a_str_that_is_neither_a_file_nor_base64_names_the_field(text, embedded_models):
    with pytest.raises(InvalidRequest) as err:
        pixelsmith.run("fast-upscale", image=text)
    assert err.value.problems[0].field == "image"
    assert "neither an existing file nor base64" in err.value.message


def test_a_missing_pathlib_path_is_an_invalid_request_not_a_file_not_found_error(tmp_path, embedded_models):
    with pytest.raises(InvalidRequest) as err:
        pixelsmith.run("fast-upscale", image=tmp_path / "missing.png")
    assert err.value.problems[0].field == "image" and "cannot read file" in err.value.message


def test_base64_of_something_that_is_not_an_image_says_so(embedded_models):
    with pytest.raises(InvalidRequest) as err:
        pixelsmith.run("fast-upscale", image=base64.b64encode(b"hello, this is plain text, not a PNG").decode())
    assert err.value.problems[0].field == "image" and "not a PNG, JPEG or WebP" in err.value.message


def test_every_image_field_takes_the_same_forms(photo, monkeypatch, embedded_models):
    """Not only the primary image: style-transfer's style_image as a data URL, and as a str that is neither."""
    from pixelsmith import core

    seen = {}
    monkeypatch.setattr(core, "run", lambda tool, request, engine=None: seen.update(tool=tool, request=request))
    style = Image.open(photo).resize((64, 64))
    url = "data:image/png;base64," + base64.b64encode(png_bytes(style)).decode()
    pixelsmith.run("style-transfer", init_image=str(photo), style_image=url)
    assert seen["tool"] == "style-transfer"
    assert seen["request"].style_image.size == (64, 64) and seen["request"].init_image.size == (96, 72)
    with pytest.raises(InvalidRequest) as err:
        pixelsmith.run("style-transfer", init_image=str(photo), style_image="not-a-file.png")
    assert err.value.problems[0].field == "style_image"
