"""The SDXL family end to end on tiny random-weight models (no network), and how a family is chosen.

Only the SDXL family's tiny models (plus the shared OWLv2, SAM and Depth Anything) are installed here, so
every generative tool must be served by SDXL: each recipe runs for real through the StableDiffusionXL*
pipelines, and the response names the family and the checkpoint. Outputs are noise-like: the tests check
wiring, sizes, seeds, masks and that each conditioning input really reaches the model.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pixelsmith import core
from pixelsmith.errors import ToolUnavailable

pytest.importorskip("diffusers")

from diffusers_helpers import SAMPLES, box_mask, photo, pixels, run, sample, tiny_models  # noqa: E402,F401  (fixtures)

BASE_REPO = "stabilityai/stable-diffusion-xl-base-1.0"
INPAINT_REPO = "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from pixelsmith.engines.diffusers import tiny

    with tiny_models(tmp_path_factory, tiny.SDXL_NAMES) as installed:
        yield installed


def differ(a, b) -> bool:
    return not np.array_equal(pixels(a.image), pixels(b.image))


def test_only_sdxl_installed_so_every_generative_tool_is_sdxl(engine):
    from pixelsmith.engines import ENGINES
    from pixelsmith.engines.diffusers.families import FamilyModels

    assert "sd3.5-large" not in engine["installed"] and "sdxl-base" in engine["installed"]
    from pixelsmith.models import is_installed

    for name, rec in ENGINES["diffusers"].recipes().items():
        if isinstance(rec.models, FamilyModels) and all(map(is_installed, rec.models.extra)):  # not Real-ESRGAN
            assert rec.models.family().name == "sdxl", name
            assert core.missing_for(rec) is None, name  # the core's availability check sees SDXL's models


def test_generate_sizes_seed_prompt_and_metadata(engine):
    a = run("generate", prompt="a red cat", seed=7, aspect_ratio="16:9")
    assert a.image.size == (80, 48)  # 1344x768 scaled to the tiny model's native 64 px side
    assert a.metadata["family"] == "sdxl" and a.metadata["checkpoint"] == BASE_REPO
    assert a.metadata["model"] == "sdxl-base" and a.metadata["plan"] == "cpu"
    assert run("generate", prompt="a red cat", seed=7, aspect_ratio="16:9").data == a.data
    assert differ(a, run("generate", prompt="a red cat", seed=8, aspect_ratio="16:9"))
    assert differ(a, run("generate", prompt="a blue dog", seed=7, aspect_ratio="16:9"))
    # model= roles of the SD3.5 family fall to SDXL base when only SDXL is installed.
    turbo = run("generate", prompt="a red cat", seed=7, aspect_ratio="16:9", model="sd3.5-large-turbo")
    assert turbo.metadata["checkpoint"] == BASE_REPO


def test_generate_image_to_image_uses_the_image(engine, photo):
    other = sample("style_guide_input.jpg", (96, 64))
    a = run("generate", prompt="a cat", image=photo, strength=0.5, seed=3)
    b = run("generate", prompt="a cat", image=other, strength=0.5, seed=3)
    assert a.image.size == (80, 56) and differ(a, b)


@pytest.mark.parametrize("tool", ["inpaint", "erase"])
def test_masked_edits_run_on_the_inpainting_unet_and_keep_the_outside(engine, photo, box_mask, tool):
    from pixelsmith.imaging.masks import grow_mask, mask_for

    fields = {"image": photo, "mask": box_mask, "seed": 5, "grow_mask": 2}
    if tool == "inpaint":
        fields["prompt"] = "a dog"
    out = run(tool, **fields)
    assert out.metadata["checkpoint"] == INPAINT_REPO and out.metadata["family"] == "sdxl"
    region = grow_mask(mask_for(photo, box_mask), 2) > 0
    before, after = pixels(photo), pixels(out.image)
    assert np.array_equal(before[~region], after[~region]), "pixels outside the mask changed"
    assert np.abs(before[region].astype(int) - after[region]).mean() > 1, "the masked area was not repainted"
    assert run(tool, **fields).data == out.data


def test_inpainting_shares_the_base_vae_and_text_encoders(engine, photo, box_mask):
    from pixelsmith.engines.diffusers import components

    run("generate", prompt="a cat", seed=1)
    run("inpaint", image=photo, mask=box_mask, prompt="a cat", seed=1)
    keys = components.STORE.keys()
    assert ("sdxl-base", "vae") in keys and ("sdxl-inpaint", "unet") in keys and ("sdxl-base", "unet") in keys
    assert not any(k[0] == "sdxl-inpaint" and k[1] in ("vae", "text_encoder", "text_encoder_2") for k in keys)
    loads = components.STORE.loads
    run("inpaint", image=photo, mask=box_mask, prompt="a dog", seed=2)
    run("generate", prompt="a dog", seed=2)
    assert components.STORE.loads == loads


def test_outpaint_and_search_tools(engine, photo):
    out = run("outpaint", image=photo, left=16, down=8, prompt="sky", seed=2, creativity=0.3)
    assert out.image.size == (112, 72) and out.metadata["checkpoint"] == INPAINT_REPO
    assert np.array_equal(pixels(out.image)[0:64, 16 + 8 : 16 + 88][8:-8], pixels(photo)[:, 8:88][8:-8])
    rep = run("search-and-replace", image=photo, search_prompt="cat", prompt="a dog", seed=2)
    assert rep.image.size == photo.size and rep.metadata["family"] == "sdxl"
    rec = run("search-and-recolor", image=photo, select_prompt="cat", prompt="a pink cat", seed=2)
    assert rec.metadata["target_rgb"] == [255, 192, 203] and rec.metadata["checkpoint"] == INPAINT_REPO


@pytest.mark.parametrize(
    "tool, controlnet", [("sketch", "sdxl-controlnet-canny"), ("structure", "sdxl-controlnet-depth")]
)
def test_controlnet_tools_follow_the_control_image(engine, photo, tool, controlnet):
    a = run(tool, image=photo, prompt="a house", seed=4, control_strength=0.9)
    b = run(
        tool, image=photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT), prompt="a house", seed=4, control_strength=0.9
    )
    assert a.image.size == photo.size and a.metadata["controlnet"] == controlnet
    assert a.metadata["checkpoint"] == BASE_REPO
    assert differ(a, b), "the control image must reach the ControlNet"
    weak = run(tool, image=photo, prompt="a house", seed=4, control_strength=0.0)
    assert differ(a, weak), "control_strength must scale the ControlNet's residuals"


def test_style_guide_sees_the_reference_through_the_ip_adapter(engine, photo):
    other = sample("style_guide_input.jpg", (96, 64))
    a = run("style-guide", image=photo, prompt="a house", seed=2, fidelity=0.9)
    b = run("style-guide", image=other, prompt="a house", seed=2, fidelity=0.9)
    none = run("style-guide", image=photo, prompt="a house", seed=2, fidelity=0.0)
    plain = run("generate", prompt="a house", seed=2, aspect_ratio="1:1")
    assert a.metadata["ip_adapter"] == "sdxl-ip-adapter" and differ(a, b)
    assert not differ(none, plain), "scale 0 must leave the UNet exactly as text-to-image has it"
    # The adapter is detached after the run: the shared UNet is plain again.
    assert run("generate", prompt="a house", seed=2, aspect_ratio="1:1").data == plain.data


def test_style_transfer_uses_both_images(engine, photo):
    style = sample("style_guide_input.jpg", (96, 64))
    a = run("style-transfer", init_image=photo, style_image=style, seed=2)
    b = run("style-transfer", init_image=photo, style_image=photo, seed=2)
    c = run("style-transfer", init_image=photo.transpose(Image.Transpose.FLIP_TOP_BOTTOM), style_image=style, seed=2)
    assert a.image.size == (80, 56) and a.metadata["family"] == "sdxl"
    assert differ(a, b) and differ(a, c)


def test_creative_upscale_on_the_tile_controlnet(engine, photo, monkeypatch):
    from pixelsmith.engines.diffusers.recipes import creative_upscale as cu

    monkeypatch.setattr(cu, "LONG_SIDE", 160)
    out = run("creative-upscale", image=photo, prompt="a house", seed=3)
    assert out.image.size == (160, 107) and out.metadata["controlnet"] == "sdxl-controlnet-tile"
    assert run("creative-upscale", image=photo, prompt="a house", seed=3).data == out.data


# --- choosing a family ------------------------------------------------------------------------------


def test_without_weights_the_error_names_both_families(tmp_path, monkeypatch, photo):
    monkeypatch.setenv("PIXELSMITH_MODELS", str(tmp_path))
    monkeypatch.delenv("PIXELSMITH_FAMILY", raising=False)
    with pytest.raises(ToolUnavailable) as err:
        core.run("generate", {"prompt": "a cat"}, engine="diffusers")
    text = str(err.value)
    assert "pixelsmith models pull sd3.5-large" in text and "pixelsmith models pull sdxl-base" in text
    with pytest.raises(ToolUnavailable) as err:
        core.run("sketch", {"image": photo, "prompt": "a house"}, engine="diffusers")
    text = str(err.value)
    assert "pull sd3.5-large sd3.5-large-controlnet-canny" in text and "pull sdxl-base sdxl-controlnet-canny" in text


def test_family_setting_forces_one(engine, monkeypatch):
    from pixelsmith.engines.diffusers import families

    opts = {"sd3.5": ("sd3.5-large",), "sdxl": ("sdxl-base",)}
    assert families.choose(opts) == "sdxl"  # only SDXL is installed here
    monkeypatch.setenv("PIXELSMITH_FAMILY", "sd3.5")
    assert families.choose(opts) == "sd3.5"
    with pytest.raises(ToolUnavailable, match="sd3.5-large"):  # forced, and absent: refused, naming it
        run("generate", prompt="a cat", seed=1)
    monkeypatch.setenv("PIXELSMITH_FAMILY", "sdxl")
    assert run("generate", prompt="a cat", seed=1).metadata["family"] == "sdxl"
    monkeypatch.setenv("PIXELSMITH_FAMILY", "sd1.5")
    with pytest.raises(ValueError, match="PIXELSMITH_FAMILY"):
        families.forced()
