"""Request models: one per tool, the reference's fields, ranges and defaults, and clear errors."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from pixelsmith.errors import ImageTooLarge, InvalidRequest
from pixelsmith.tools import all_tools, get_tool

ALL = {
    "erase",
    "remove-background",
    "search-and-recolor",
    "search-and-replace",
    "inpaint",
    "outpaint",
    "fast-upscale",
    "conservative-upscale",
    "creative-upscale",
    "sketch",
    "structure",
    "style-guide",
    "style-transfer",
    "generate",
}


def b64png(w=128, h=128, color=(120, 80, 40)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_all_fourteen_tools_are_registered_in_their_groups():
    tools = {t.name: t for t in all_tools()}
    assert set(tools) == ALL
    assert {t.group for t in tools.values()} == {"edit", "upscale", "control", "generate"}
    assert sum(t.group == "edit" for t in tools.values()) == 6
    for tool in tools.values():
        assert tool.rest_path.startswith("/v2beta/stable-image/")
        schema = tool.request.model_json_schema()
        for name in tool.request.image_fields():
            assert schema["properties"][name].get("format") == "binary" or "anyOf" in schema["properties"][name]


@pytest.mark.parametrize(
    "tool, field, default",
    [
        ("erase", "grow_mask", 5),
        ("inpaint", "grow_mask", 5),
        ("search-and-recolor", "grow_mask", 3),
        ("search-and-replace", "grow_mask", 3),
        ("outpaint", "creativity", 0.5),
        ("conservative-upscale", "creativity", 0.35),
        ("creative-upscale", "creativity", 0.3),
        ("sketch", "control_strength", 0.7),
        ("structure", "control_strength", 0.7),
        ("style-guide", "fidelity", 0.5),
        ("style-guide", "aspect_ratio", "1:1"),
        ("style-transfer", "style_strength", 1.0),
        ("style-transfer", "composition_fidelity", 0.9),
        ("style-transfer", "change_strength", 0.9),
        ("generate", "aspect_ratio", "1:1"),
        ("generate", "model", "sd3.5-large"),
        ("erase", "output_format", "png"),
    ],
)
def test_defaults_follow_the_reference(tool, field, default):
    assert get_tool(tool).request.model_fields[field].default == default


@pytest.mark.parametrize(
    "tool, fields, bad_field",
    [
        ("erase", {"grow_mask": 21}, "grow_mask"),
        ("inpaint", {"prompt": "x", "grow_mask": 101}, "grow_mask"),
        ("outpaint", {"left": 2001}, "left"),
        ("outpaint", {"creativity": 1.5, "left": 10}, "creativity"),
        ("conservative-upscale", {"prompt": "x", "creativity": 0.6}, "creativity"),
        ("creative-upscale", {"prompt": "x", "creativity": 0.05}, "creativity"),
        ("sketch", {"prompt": "x", "control_strength": -0.1}, "control_strength"),
        ("style-transfer", {"change_strength": 0.05}, "change_strength"),
        ("erase", {"seed": 4294967296}, "seed"),
        ("erase", {"output_format": "gif"}, "output_format"),
        ("sketch", {"prompt": "x", "style_preset": "watercolour"}, "style_preset"),
        ("generate", {"prompt": "x", "aspect_ratio": "4:3"}, "aspect_ratio"),
        ("generate", {"prompt": "x", "cfg_scale": 11}, "cfg_scale"),
    ],
)
def test_out_of_range_values_name_the_field(tool, fields, bad_field):
    spec = get_tool(tool)
    data = {name: b64png() for name in spec.request.image_fields() if spec.request.model_fields[name].is_required()}
    data.update(fields)
    with pytest.raises(InvalidRequest) as err:
        spec.parse(data)
    assert [p.field for p in err.value.problems] == [bad_field]


@pytest.mark.parametrize(
    "tool, missing",
    [
        ("erase", "image"),
        ("search-and-recolor", "select_prompt"),
        ("search-and-replace", "search_prompt"),
        ("inpaint", "prompt"),
        ("style-transfer", "style_image"),
        ("generate", "prompt"),
    ],
)
def test_missing_required_fields(tool, missing):
    spec = get_tool(tool)
    data = {
        "image": b64png(),
        "init_image": b64png(),
        "style_image": b64png(),
        "prompt": "p",
        "select_prompt": "s",
        "search_prompt": "s",
    }
    data = {k: v for k, v in data.items() if k in spec.request.model_fields and k != missing}
    with pytest.raises(InvalidRequest) as err:
        spec.parse(data)
    assert any(p.field == missing and "required" in p.message for p in err.value.problems)


def test_unknown_field_lists_the_accepted_fields_like_bedrock():
    with pytest.raises(InvalidRequest) as err:
        get_tool("sketch").parse({"image": b64png(), "prompt": "house", "text_prompts": ["x"]})
    msg = err.value.message
    assert "Invalid field 'text_prompts'" in msg
    assert "image, prompt, control_strength, negative_prompt, seed, output_format, style_preset" in msg


def test_wire_forms_are_accepted():
    # Multipart sends numbers as text; the notebook sends 1 and 1.0 for floats, seed 0, empty negative prompt.
    req = get_tool("outpaint").parse({"image": b64png(), "left": "512", "creativity": "0.5", "seed": "0"})
    assert req.left == 512 and req.creativity == 0.5
    req = get_tool("sketch").parse(
        {"image": b64png(), "prompt": "a house", "control_strength": 1, "negative_prompt": ""}
    )
    assert req.control_strength == 1.0
    req = get_tool("generate").parse({"prompt": "cat", "mode": "text-to-image", "strength": 1, "negative_prompt": ""})
    assert not req.image_to_image
    # The AWS erase sample's trailing comma sends the image as a one-item list.
    req = get_tool("erase").parse({"image": [b64png(200, 100)], "mask": b64png(200, 100, (255, 255, 255))})
    assert req.image.size == (200, 100)


def test_images_accept_bytes_pil_and_paths(tmp_path):
    img = Image.fromarray((np.random.default_rng(1).random((96, 128, 3)) * 255).astype(np.uint8))
    path = tmp_path / "x.png"
    img.save(path)
    for value in (img, path, path.read_bytes(), base64.b64encode(path.read_bytes()).decode()):
        req = get_tool("remove-background").parse({"image": value})
        assert req.image.size == (128, 96)
        assert (np.asarray(req.image) == np.asarray(img)).all()


def test_bad_image_values_are_field_errors():
    spec = get_tool("erase")
    with pytest.raises(InvalidRequest) as err:
        spec.parse({"image": "not base64!!"})
    assert err.value.problems[0].field == "image" and "base64" in err.value.problems[0].message
    with pytest.raises(InvalidRequest) as err:
        spec.parse({"image": base64.b64encode(b"hello world").decode()})
    assert "PNG, JPEG or WebP" in err.value.problems[0].message
    with pytest.raises(ImageTooLarge):
        get_tool("fast-upscale").parse({"image": b64png(2048, 1024)})
    with pytest.raises(InvalidRequest) as err:
        get_tool("sketch").parse({"image": b64png(800, 200), "prompt": "x"})  # 4:1 is outside 1:2.5..2.5:1
    assert err.value.problems[0].code == "bad_aspect_ratio"


def test_cross_field_rules():
    with pytest.raises(InvalidRequest) as err:
        get_tool("outpaint").parse({"image": b64png()})
    assert "at least one of left, right, up, down" in err.value.message
    with pytest.raises(InvalidRequest):
        get_tool("generate").parse({"prompt": "x", "mode": "image-to-image"})
    req = get_tool("generate").parse({"prompt": "x", "image": b64png()})
    assert req.image_to_image and req.effective_strength == 0.35
    assert get_tool("generate").parse({"prompt": "x", "model": "sd3.5-large-turbo"}).effective_cfg == 1.0


def test_remove_background_formats_union():
    # REST allows png/webp; Bedrock documents jpeg too: the union is accepted (docs/api-choices.md).
    for fmt in ("png", "webp", "jpeg"):
        assert get_tool("remove-background").parse({"image": b64png(), "output_format": fmt}).output_format == fmt


def test_registry_first_load_is_safe_from_many_threads():
    """A fresh process whose first tool lookups come from several threads at once (a server's
    first requests) finds every tool: nobody sees a half-filled registry."""
    import subprocess
    import sys

    code = (
        "import threading\n"
        "from pixelsmith.tools import get_tool\n"
        "names = ['erase', 'generate', 'fast-upscale', 'style-transfer'] * 4\n"
        "errors = []\n"
        "def look(n):\n"
        "    try: get_tool(n)\n"
        "    except Exception as exc: errors.append(repr(exc))\n"
        "ts = [threading.Thread(target=look, args=(n,)) for n in names]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "print('errors', errors)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "errors []" in out.stdout, out.stdout
