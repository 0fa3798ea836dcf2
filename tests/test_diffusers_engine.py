"""The diffusers engine end to end on tiny random-weight models built here (no network).

Every recipe runs for real: the tiny SD3 pipeline, ControlNets, IP-Adapter,
OWLv2, SAM, Depth Anything and Swin2SR are built with the real classes, saved
with save_pretrained, installed through ``pixelsmith models pull --from`` and
loaded by the engine. Outputs are noise-like: these tests check wiring, sizes,
seeds, masks and that each conditioning input really reaches the model.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from diffusers_helpers import SAMPLES, box_mask, photo, pixels, run, sample, tiny_models  # noqa: F401  (fixtures)
from PIL import Image

from pixelsmith import core
from pixelsmith.errors import ToolUnavailable

EMBEDDED = ("realesrgan-x4plus", "isnet-general", "realesr-animevideov3-x4")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """The tiny SD3-family diffusers models (imported with pull --from) and the embedded ones."""
    from pixelsmith.engines.diffusers import tiny

    with tiny_models(tmp_path_factory, tiny.SD3_NAMES, link=EMBEDDED) as installed:
        yield installed


# --- missing weights ---------------------------------------------------------------------------------


def test_without_weights_the_error_names_the_pull_command(tmp_path, monkeypatch, photo):
    monkeypatch.setenv("PIXELSMITH_MODELS", str(tmp_path))
    with pytest.raises(ToolUnavailable) as err:
        core.run("generate", {"prompt": "a cat"}, engine="diffusers")
    assert "sd3.5-large" in str(err.value) and "pixelsmith models pull sd3.5-large" in str(err.value)
    with pytest.raises(ToolUnavailable) as err:
        core.run("sketch", {"image": photo, "prompt": "a house"}, engine="diffusers")
    assert "pixelsmith models pull sd3.5-large sd3.5-large-controlnet-canny" in str(err.value)


def test_engine_choice_follows_what_is_installed(engine, tmp_path, monkeypatch):
    from pixelsmith.tools import get_tool

    # With the tiny diffusion weights installed, diffusers recipes win by priority...
    for name in ("generate", "inpaint", "search-and-replace", "style-transfer", "creative-upscale"):
        assert core.choose(get_tool(name), None).engine == "diffusers", name
    # ...except where the embedded specialist is better (ISNet matte, compact Real-ESRGAN).
    if (engine["root"] / "isnet-general").exists():
        assert core.choose(get_tool("remove-background"), None).engine == "embedded"
    # Without diffusion weights the embedded engine serves what it can.
    monkeypatch.setenv("PIXELSMITH_MODELS", str(tmp_path))
    for tool in ("inpaint", "erase"):
        recipe, _ = core.availability(get_tool(tool))
        assert recipe is None or recipe.engine == "embedded"


# --- every recipe, end to end ----------------------------------------------------------------------


def expected_working_size(w: int, h: int) -> tuple[int, int]:
    """The tiny model's native area (64x64 px) at the input's aspect ratio, in multiples of 8."""
    k = 64 / (w * h) ** 0.5
    return max(8, round(w * k / 8) * 8), max(8, round(h * k / 8) * 8)


def test_generate_text_to_image_sizes_format_and_seed(engine):
    a = run("generate", prompt="a red cat", seed=7, aspect_ratio="16:9", output_format="jpeg")
    # 16:9 is 1344x768 at SD3.5's native 1024; the tiny model's native side is 64.
    assert a.image.size == (80, 48) and a.format == "jpeg" and a.data[:3] == b"\xff\xd8\xff"
    b = run("generate", prompt="a red cat", seed=7, aspect_ratio="16:9", output_format="jpeg")
    c = run("generate", prompt="a red cat", seed=8, aspect_ratio="16:9", output_format="jpeg")
    assert a.data == b.data, "same seed and request must give the same image"
    assert not np.array_equal(pixels(a.image), pixels(c.image))
    d = run("generate", prompt="a blue dog", seed=7, aspect_ratio="16:9", output_format="jpeg")
    assert not np.array_equal(pixels(a.image), pixels(d.image)), "the prompt must reach the model"
    assert a.engine == "diffusers" and a.metadata["model"] == "sd3.5-large"


def test_generate_image_to_image_uses_the_image(engine, photo):
    other = sample("style_guide_input.jpg", (96, 64))
    a = run("generate", prompt="a cat", image=photo, strength=0.5, seed=3, output_format="webp")
    b = run("generate", prompt="a cat", image=other, strength=0.5, seed=3, output_format="webp")
    assert a.data[8:12] == b"WEBP" and a.image.size == expected_working_size(96, 64)
    assert not np.array_equal(pixels(a.image), pixels(b.image))


@pytest.mark.parametrize("tool", ["inpaint", "erase"])
def test_masked_edits_keep_every_pixel_outside_the_mask(engine, photo, box_mask, tool):
    fields = {"image": photo, "mask": box_mask, "seed": 5, "grow_mask": 2}
    if tool == "inpaint":
        fields["prompt"] = "a dog"
    out = run(tool, **fields)
    assert out.image.size == photo.size
    from pixelsmith.imaging.masks import grow_mask, mask_for

    region = grow_mask(mask_for(photo, box_mask), 2) > 0
    before, after = pixels(photo), pixels(out.image)
    assert np.array_equal(before[~region], after[~region]), "pixels outside the mask changed"
    assert np.abs(before[region].astype(int) - after[region]).mean() > 1, "the masked area was not repainted"
    again = run(tool, **fields)
    assert again.data == out.data


def test_outpaint_extends_and_keeps_the_original(engine, photo):
    out = run("outpaint", image=photo, left=16, down=8, prompt="sky", seed=2, creativity=0.3)
    assert out.image.size == (96 + 16, 64 + 8)
    inner = pixels(out.image)[0:64, 16 : 16 + 96]
    # Only a thin seam band along the new edges may change; the rest of the original is intact.
    assert np.array_equal(inner[:56, 8:], pixels(photo)[:56, 8:])


@pytest.mark.parametrize(
    "tool,field", [("search-and-replace", "search_prompt"), ("search-and-recolor", "select_prompt")]
)
def test_grounded_edits_change_only_the_found_object(engine, photo, tool, field):
    out = run(tool, image=photo, prompt="a pink hat", **{field: "hat"}, seed=4, grow_mask=1)
    assert out.image.size == photo.size and out.metadata["boxes"]
    changed = np.any(pixels(out.image) != pixels(photo), axis=-1)
    assert changed.any()
    # Every changed pixel lies inside one of the (grown) grounded boxes.
    inside = np.zeros(changed.shape, bool)
    for x0, y0, x1, y1 in out.metadata["boxes"]:
        pad = 0.05 * max(x1 - x0, y1 - y0) + 4
        inside[int(max(0, y0 - pad)) : int(y1 + pad) + 1, int(max(0, x0 - pad)) : int(x1 + pad) + 1] = True
    assert not changed[~inside].any()


@pytest.mark.parametrize(
    "tool,field", [("search-and-replace", "search_prompt"), ("search-and-recolor", "select_prompt")]
)
def test_a_request_mask_replaces_the_search(engine, photo, tool, field):
    """The mask extension (the studio's click-to-select): no grounding runs, only the mask's area changes."""
    mask = Image.new("L", photo.size, 0)
    mask.paste(255, (10, 10, 40, 40))
    out = run(tool, image=photo, prompt="a pink hat", **{field: "hat"}, mask=mask, seed=4, grow_mask=1)
    assert out.metadata["boxes"] == []  # nothing was searched
    changed = np.any(pixels(out.image) != pixels(photo), axis=-1)
    assert changed.any()
    inside = np.zeros(changed.shape, bool)
    inside[4:47, 4:47] = True  # the mask, grown and feathered by a few pixels
    assert not changed[~inside].any()


def test_recolor_target_colour_comes_from_the_prompt():
    from pixelsmith.engines.diffusers.recipes.search_and_recolor import recolour, target_colour

    assert target_colour("a pink jacket") == (255, 192, 203)
    assert target_colour("Light Blue car") == (173, 216, 230)
    assert target_colour("something nice") is None
    img = sample("search_and_recolor_input.png", (64, 64))
    mask = np.zeros((64, 64), np.float32)
    mask[16:48, 16:48] = 1
    out = np.asarray(recolour(img, mask, (255, 0, 0))).astype(int)
    assert np.array_equal(out[:16], np.asarray(img)[:16])
    region = out[20:44, 20:44]
    assert region[..., 0].mean() > region[..., 1].mean() + 20  # it is red now


@pytest.mark.parametrize("tool", ["sketch", "structure"])
def test_control_tools_feed_the_control_image(engine, tool):
    a_img = sample("sketch_reference.png", (96, 64))
    b_img = sample("structure_reference.jpg", (96, 64))
    a = run(tool, image=a_img, prompt="a house", seed=1, control_strength=0.9)
    b = run(tool, image=b_img, prompt="a house", seed=1, control_strength=0.9)
    weak = run(tool, image=a_img, prompt="a house", seed=1, control_strength=0.0)
    assert a.image.size == (96, 64), "control tools answer at the input's size"
    assert not np.array_equal(pixels(a.image), pixels(b.image)), "a different control image must change the output"
    assert not np.array_equal(pixels(a.image), pixels(weak.image)), "control_strength must matter"
    assert run(tool, image=a_img, prompt="a house", seed=1, control_strength=0.9).data == a.data


def test_style_guide_uses_the_reference_through_the_ip_adapter(engine, photo):
    before = run("generate", prompt="a house", seed=9)
    other = sample("style_transfer_style_image.jpg", (96, 64))
    a = run("style-guide", image=photo, prompt="a house", seed=9, fidelity=0.9, aspect_ratio="1:1")
    b = run("style-guide", image=other, prompt="a house", seed=9, fidelity=0.9, aspect_ratio="1:1")
    assert a.image.size == (64, 64) and a.metadata["ip_adapter"] == "sd3.5-large-ip-adapter"
    assert not np.array_equal(pixels(a.image), pixels(b.image)), "the reference image must reach the model"
    assert not np.array_equal(pixels(a.image), pixels(before.image))
    # The adapter is detached afterwards: the shared transformer generates exactly as before.
    after = run("generate", prompt="a house", seed=9)
    assert after.data == before.data


def test_style_transfer_uses_style_and_init_images(engine):
    init = sample("style_transfer_input.jpg", (96, 64))
    style_a = sample("style_transfer_style_image.jpg", (64, 64))
    style_b = sample("style_guide_input.jpg", (64, 64))
    a = run("style-transfer", init_image=init, style_image=style_a, seed=2)
    b = run("style-transfer", init_image=init, style_image=style_b, seed=2)
    c = run("style-transfer", init_image=init.transpose(Image.Transpose.FLIP_TOP_BOTTOM), style_image=style_a, seed=2)
    assert a.image.size == expected_working_size(96, 64)
    assert not np.array_equal(pixels(a.image), pixels(b.image))
    assert not np.array_equal(pixels(a.image), pixels(c.image))
    assert run("style-transfer", init_image=init, style_image=style_a, seed=2).data == a.data


def test_creative_upscale_tiles_to_the_long_side(engine, photo, monkeypatch):
    from pixelsmith.engines.diffusers.recipes import creative_upscale as cu

    assert cu.output_size(683, 1024) == (2732, 4096)
    monkeypatch.setattr(cu, "LONG_SIDE", 160)  # 4K of tiny tiles would be slow; the rule is checked above
    out = run("creative-upscale", image=photo, prompt="a house", seed=3)
    assert out.image.size == (160, 107)
    assert run("creative-upscale", image=photo, prompt="a house", seed=3).data == out.data


def test_conservative_upscale_esrgan_then_refine(engine, monkeypatch):
    from pixelsmith.engines.diffusers.recipes import conservative_upscale as cons

    w, h = cons.output_size(683, 1024)
    assert abs(w * h - 4_194_304) < 4000 and abs(w / h - 683 / 1024) < 0.01
    if not (engine["root"] / cons.ESRGAN).exists():
        pytest.skip("embedded Real-ESRGAN weights not fetched (pixelsmith models fetch)")
    from pixelsmith.tools import conservative_upscale as spec

    monkeypatch.setattr(spec, "TARGET_PIXELS", 96 * 96)
    img = sample("upscale_input.jpg", (64, 64))
    out = run("conservative-upscale", image=img, prompt="a tower", seed=1, creativity=0.2)
    assert out.image.size == (96, 96)
    # The refinement ran (random tiny weights cannot show fidelity; real weights are judged in bench/quality).
    plain = np.asarray(img.resize((96, 96), Image.Resampling.LANCZOS), float)
    assert np.abs(np.asarray(out.image, float) - plain).mean() > 1
    assert out.metadata["strength"] == 0.1


def test_fast_upscale_and_remove_background_on_transformers_models(engine, photo):
    up = run("fast-upscale", image=photo)
    assert up.image.size == (384, 256) and up.metadata["model"] == "swin2sr-x4"
    cut = run("remove-background", image=photo, output_format="png")
    assert cut.image.mode == "RGBA" and cut.image.size == photo.size
    assert Image.open(io.BytesIO(cut.data)).mode == "RGBA"


def test_concurrent_generate_requests_are_batched(engine, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from pixelsmith.engines.diffusers.batching import BATCHER

    alone = [run("generate", prompt=p, seed=s) for p, s in (("a red cat", 11), ("a blue sky", 12))]
    monkeypatch.setenv("PIXELSMITH_BATCH_WINDOW_MS", "400")
    with ThreadPoolExecutor(2) as pool:
        together = list(
            pool.map(lambda ps: run("generate", prompt=ps[0], seed=ps[1]), (("a red cat", 11), ("a blue sky", 12)))
        )
    assert [o.metadata["batch_size"] for o in together] == [2, 2] and BATCHER.batches[-1] == 2
    for one, batched in zip(alone, together):  # each keeps its own seed and prompt
        assert np.abs(pixels(one.image).astype(int) - pixels(batched.image)).max() <= 2


def test_prompt_encoding_never_runs_on_two_threads_at_once(engine, monkeypatch):
    """Fast tokenizers are not thread-safe (their padding state is shared): three threads encoding at once gave
    a tensor-size mismatch, hence a 500 in a Ray Serve batch. The encoder is entered by one thread at a time
    (a 50 ms sleep inside it would let any overlap show), and one prompt asked for by three threads at once is
    encoded once."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from pixelsmith.engines.diffusers import pipelines as P

    pipe = P.build("txt2img", "sd3.5-large")
    real = type(pipe).encode_prompt
    inside, most, calls = 0, 0, []
    count = threading.Lock()

    def spy(self, *args, **kwargs):
        nonlocal inside, most
        with count:
            inside += 1
            most = max(most, inside)
            calls.append(kwargs["prompt"])
        time.sleep(0.05)
        try:
            return real(self, *args, **kwargs)
        finally:
            with count:
                inside -= 1

    monkeypatch.setattr(type(pipe), "encode_prompt", spy)
    monkeypatch.setattr(P, "_EMBEDS", type(P._EMBEDS)())
    prompts = ["a red cat", "a red cat", "a red cat", "a blue sky", "a green hill", "a grey sea"]
    start = threading.Barrier(len(prompts))

    def encode(prompt: str) -> dict:
        start.wait()
        return P.prompt_kwargs(pipe, "sd3.5-large", prompt, None, 4.5)

    with ThreadPoolExecutor(len(prompts)) as pool:
        results = list(pool.map(encode, prompts))
    assert most == 1
    assert sorted(calls) == ["a blue sky", "a green hill", "a grey sea", "a red cat"]
    assert results[0]["prompt_embeds"] is results[1]["prompt_embeds"] is results[2]["prompt_embeds"]
    assert all(r["prompt_embeds"].shape == results[0]["prompt_embeds"].shape for r in results)


# --- sharing and memory ------------------------------------------------------------------------------


def test_components_are_loaded_once_and_shared(engine, photo, box_mask):
    from pixelsmith.engines.diffusers import components

    run("generate", prompt="a cat", seed=1)
    loads = components.STORE.loads
    run("inpaint", image=photo, mask=box_mask, prompt="a cat", seed=1)
    run("generate", prompt="a dog", image=photo, seed=1)
    assert components.STORE.loads == loads, "generate, inpaint and img2img must share the loaded components"
    assert components.STORE.keys().count(("sd3.5-large", "transformer")) == 1


def test_store_evicts_least_recently_used_under_a_budget(monkeypatch):
    import torch

    from pixelsmith.engines.diffusers.components import ComponentStore

    monkeypatch.setenv("PIXELSMITH_DEVICE", "cpu")
    monkeypatch.setenv("PIXELSMITH_GPU_MEMORY", str(2.5 * 4 * 100 * 100 / 1e9))  # room for two 100x100 fp32
    store = ComponentStore()
    make = lambda: torch.nn.Linear(100, 100, bias=False)  # noqa: E731
    a = store.get(("m", "a"), make)
    store.get(("m", "b"), make)
    assert store.get(("m", "a"), make) is a  # a is now the most recent
    store.get(("m", "c"), make)  # over budget: b (least recent) goes
    assert store.keys() == [("m", "a"), ("m", "c")]
    monkeypatch.setenv("PIXELSMITH_OFFLOAD", "1")
    store.get(("m", "d"), make)  # with offload the evicted one stays, off the device
    assert ("m", "a") in store.keys() and store.resident_bytes() <= 2.5 * 4 * 100 * 100


def test_native_sizes_follow_the_reference_at_sd35_scale():
    from pixelsmith.engines.diffusers import pipelines as P

    class Fake:  # the attributes of a real SD3.5 pipeline that sizing reads
        vae_scale_factor = 8

        class transformer:
            class config:
                sample_size, patch_size = 128, 2

    assert P.size_for_aspect(Fake, "1:1") == (1024, 1024)
    assert P.size_for_aspect(Fake, "21:9") == (1536, 640)
    for ratio in P.NATIVE_SIZES:
        w, h = P.size_for_aspect(Fake, ratio)
        assert w % 16 == 0 and h % 16 == 0 and 0.85e6 < w * h < 1.1e6
    w, h = P.working_size(Fake, 683, 1024)
    assert abs(w * h - 1024 * 1024) / (1024 * 1024) < 0.05


def test_style_presets_cover_the_enum():
    from typing import get_args

    from pixelsmith.engines.diffusers.recipes._common import STYLE_PRESETS, styled
    from pixelsmith.tools.base import StylePreset

    assert set(STYLE_PRESETS) == set(get_args(StylePreset))
    prompt, negative = styled("a cat", "dogs", "anime")
    assert "a cat" in prompt and "anime" in prompt and negative.startswith("dogs, ")
    assert styled("a cat", None, None) == ("a cat", "")


def test_tile_blend_is_seamless_for_an_identity_step():
    from pixelsmith.engines.diffusers.recipes._common import tiled, tiles

    img = sample("upscale_input.jpg", (150, 100))
    plan = tiles(img.size, 64, 8)
    assert plan[0][:2] == (0, 0) and plan[-1][2:] == (150, 100)
    same = tiled(img, 64, 8, lambda tile, i: tile)
    assert np.abs(pixels(same).astype(int) - pixels(img)).max() <= 1
