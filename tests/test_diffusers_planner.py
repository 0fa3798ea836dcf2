"""The memory planner's decisions for common GPUs and CPU-only, from the real configs' parameter counts.

The counts in planner.PARAMS are checked here against the components built from
tests/data/configs on the meta device (no memory allocated), so a wrong number
in the table, or a wrong config, fails.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from pixelsmith.engines.diffusers import planner
from pixelsmith.engines.diffusers.planner import GB, Device, plan

CONFIGS = pathlib.Path(__file__).parent / "data" / "configs"
GIB = 2**30
LARGE = ["sd3.5-large"]
SKETCH = ["sd3.5-large", "sd3.5-large-controlnet-canny"]
STYLE = ["sd3.5-large", "sd3.5-large-ip-adapter", "siglip-so400m"]
MEDIUM = ["sd3.5-medium"]
BOTH = ["int8", "nf4"]


def gpu(gib: int, ram_gb: int = 64) -> Device:
    """A card sold as ``gib`` GB, with the engine's default 90% budget."""
    return Device("cuda", int(gib * GIB * 0.9), ram_gb * GB, f"{gib} GB")


def _json(rel: str) -> dict:
    return json.loads((CONFIGS / rel).read_text())


def test_parameter_counts_match_the_configs_built_on_meta():
    import diffusers
    import torch
    import transformers

    def n(module) -> int:
        """Parameters + persistent buffers: the tensors a weight file holds (tied weights once)."""
        saved = set(module.state_dict())
        buffers = sum(b.numel() for k, b in module.named_buffers() if k in saved)
        return sum(p.numel() for p in module.parameters()) + buffers

    with torch.device("meta"):
        for base in ("sd3.5-large", "sd3.5-medium", "sd3.5-large-turbo"):
            tr = diffusers.SD3Transformer2DModel.from_config(_json(f"{base}/transformer/config.json"))
            assert n(tr) == planner.PARAMS[base]["transformer"], base
            vae = diffusers.AutoencoderKL.from_config(_json(f"{base}/vae/config.json"))
            assert n(vae) == planner.PARAMS[base]["vae"]
            for part, cls in (
                ("text_encoder", transformers.CLIPTextModelWithProjection),
                ("text_encoder_2", transformers.CLIPTextModelWithProjection),
                ("text_encoder_3", transformers.T5EncoderModel),
            ):
                built = cls(transformers.AutoConfig.from_pretrained(CONFIGS / base / part))
                assert n(built) == planner.PARAMS[base][part]
        for kind in ("canny", "depth", "blur"):
            name = f"sd3.5-large-controlnet-{kind}"
            net = diffusers.SD3ControlNetModel.from_config(_json(f"{name}/config.json"))
            assert n(net) == planner.PARAMS[name]["controlnet"]
        vision = transformers.AutoConfig.from_pretrained(CONFIGS / "siglip-so400m").vision_config
        siglip = transformers.SiglipVisionModel(vision)
        assert n(siglip) == planner.PARAMS["siglip-so400m"]["image_encoder"]
        for name, cls, part in (
            ("owlv2-base", transformers.Owlv2ForObjectDetection, "detector"),
            ("depth-anything-v2-small", transformers.DepthAnythingForDepthEstimation, "depth"),
            ("swin2sr-x4", transformers.Swin2SRForImageSuperResolution, "upscaler"),
        ):
            assert n(cls(transformers.AutoConfig.from_pretrained(CONFIGS / name))) == planner.PARAMS[name][part], name
    # Published sizes, as a sanity check of the reconstructed configs.
    assert 8.1e9 < planner.PARAMS["sd3.5-large"]["transformer"] < 8.2e9  # "8.1B"
    assert 2.4e9 < planner.PARAMS["sd3.5-medium"]["transformer"] < 2.5e9  # "2.5B"
    assert 4.7e9 < planner.PARAMS["sd3.5-large"]["text_encoder_3"] < 4.8e9


def test_bytes_per_component():
    assert planner.component_bytes("sd3.5-large", "transformer", "bfloat16") == 2 * 8_146_280_768
    assert planner.component_bytes("sd3.5-large", "transformer", "int8") == 8_146_280_768
    assert planner.component_bytes("sd3.5-large", "transformer", "nf4") < 4.6 * GB


@pytest.mark.parametrize(
    "gib, quants, expect",
    [
        (80, BOTH, ("gpu", "none", False)),
        (48, BOTH, ("gpu", "none", False)),
        (24, BOTH, ("model-offload", "none", False)),  # transformer 16.1 GB + work fits alone; all together does not
        (16, BOTH, ("model-offload", "int8", False)),  # bf16 transformer does not fit; int8 and T5 (9.5 GB) do
        (16, [], ("sequential-offload", "none", True)),  # no quantizer: 16.1 GB of bf16 weights > a 14.4 GB budget
        (12, BOTH, ("model-offload", "int8", True)),  # T5 alone (9.5 GB + work) is too big
        (8, BOTH, ("model-offload", "nf4", True)),
        (8, [], ("sequential-offload", "none", True)),
    ],
)
def test_sd35_large_generate(gib, quants, expect):
    p = plan(LARGE, gpu(gib), available_quantizers=quants)
    assert (p.placement, p.quantize, p.drop_t5) == expect
    assert p.fits and p.peak <= gpu(gib).memory


def test_controlnet_and_ip_adapter_tools_need_more():
    assert plan(SKETCH, gpu(48), available_quantizers=[]).placement == "gpu"
    assert plan(STYLE, gpu(48), available_quantizers=[]).placement == "gpu"
    p = plan(SKETCH, gpu(24), available_quantizers=[])
    assert p.placement == "model-offload" and "sd3.5-large-controlnet-canny/controlnet" in p.components
    assert plan(SKETCH, gpu(24), available_quantizers=[]).peak > plan(["swin2sr-x4"], gpu(24)).peak


def test_medium_fits_smaller_cards_without_quantization():
    assert plan(MEDIUM, gpu(24), available_quantizers=[]).placement == "gpu"
    p = plan(MEDIUM, gpu(12), available_quantizers=[])
    assert (p.placement, p.quantize, p.drop_t5) == ("gpu", "none", True)  # T5 alone (9.5 GB + work) is too big
    p8 = plan(MEDIUM, gpu(8), available_quantizers=BOTH)  # 4.9 GB bf16 + work is just over 7.7 GB
    assert (p8.placement, p8.quantize, p8.drop_t5) == ("gpu", "int8", True)


def test_cpu_only():
    big = plan(LARGE, Device("cpu", 64 * GB, 80 * GB))
    assert (big.placement, big.dtype, big.drop_t5, big.fits) == ("cpu", "float32", False, True)
    small = plan(LARGE, Device("cpu", 40 * GB, 48 * GB))
    assert small.drop_t5 and small.fits and "text_encoder_3" not in " ".join(small.components)
    tiny = plan(LARGE, Device("cpu", 8 * GB, 8 * GB))
    assert not tiny.fits and tiny.notes
    assert plan(["swin2sr-x4"], Device("cpu", 8 * GB, 8 * GB)).fits


def test_settings_override_the_choice(monkeypatch):
    monkeypatch.setenv("PIXELSMITH_PLAN", "sequential-offload")
    monkeypatch.setenv("PIXELSMITH_DROP_T5", "1")
    p = planner.for_models(LARGE, gpu(80))
    assert (p.placement, p.drop_t5) == ("sequential-offload", True)
    assert p.metadata() == {"plan": "sequential-offload", "t5_encoder": "dropped (lower prompt fidelity)"}
    monkeypatch.setenv("PIXELSMITH_PLAN", "gpu")
    monkeypatch.setenv("PIXELSMITH_DROP_T5", "0")
    forced = planner.for_models(LARGE, gpu(8))
    assert forced.placement == "gpu" and not forced.fits  # forced, and reported as not fitting
    monkeypatch.setenv("PIXELSMITH_PLAN", "warp-drive")
    with pytest.raises(ValueError, match="PIXELSMITH_PLAN"):
        planner.from_settings()


def test_doctor_report_and_command(monkeypatch):
    import typer
    from typer.testing import CliRunner

    from pixelsmith.cli.doctor_cmd import doctor
    from pixelsmith.engines.diffusers import doctor as D

    rep = D.report(gpu(24))
    assert rep["device"]["kind"] == "cuda"
    assert {"generate", "sketch", "style-guide", "inpaint", "creative-upscale"} <= set(rep["tools"])
    gen = rep["tools"]["generate"]
    assert gen["models"][0] == "sd3.5-large" and gen["plan"] in planner.PLANS and gen["peak_gb"] > 10
    json.dumps(D.readyz_detail())  # JSON-able
    app = typer.Typer()
    app.command()(doctor)
    app.command("other")(lambda: None)
    out = CliRunner().invoke(app, ["doctor", "--memory-gb", "80"])
    assert out.exit_code == 0, out.output
    assert "generate" in out.output and "gpu" in out.output
    out = CliRunner().invoke(app, ["doctor", "--cpu", "--json"])
    assert json.loads(out.output)["device"]["kind"] == "cpu"


# --- SDXL ---------------------------------------------------------------------------------------------

XL = ["sdxl-base"]
XL_SKETCH = ["sdxl-base", "sdxl-controlnet-canny"]
XL_INPAINT = ["sdxl-base", "sdxl-inpaint"]


def test_sdxl_parameter_counts_match_the_configs_built_on_meta():
    import diffusers
    import torch
    import transformers

    def n(module) -> int:
        saved = set(module.state_dict())
        return sum(p.numel() for p in module.parameters()) + sum(
            b.numel() for k, b in module.named_buffers() if k in saved
        )

    with torch.device("meta"):
        unet = diffusers.UNet2DConditionModel.from_config(_json("sdxl-base/unet/config.json"))
        assert n(unet) == planner.PARAMS["sdxl-base"]["unet"] == 2_567_463_684  # the published SDXL UNet size
        inp = diffusers.UNet2DConditionModel.from_config(_json("sdxl-inpaint/unet/config.json"))
        assert n(inp) - n(unet) == 5 * 320 * 9 == planner.PARAMS["sdxl-inpaint"]["unet"] - 2_567_463_684
        assert (
            n(diffusers.AutoencoderKL.from_config(_json("sdxl-base/vae/config.json")))
            == planner.PARAMS["sdxl-base"]["vae"]
        )
        for part, cls in (
            ("text_encoder", transformers.CLIPTextModel),
            ("text_encoder_2", transformers.CLIPTextModelWithProjection),
        ):
            built = cls(transformers.AutoConfig.from_pretrained(CONFIGS / "sdxl-base" / part))
            assert n(built) == planner.PARAMS["sdxl-base"][part], part
        for kind in ("canny", "depth", "tile"):
            net = diffusers.ControlNetModel.from_config(_json(f"sdxl-controlnet-{kind}/config.json"))
            assert n(net) == planner.PARAMS[f"sdxl-controlnet-{kind}"]["controlnet"]
        vit = transformers.CLIPVisionModelWithProjection(
            transformers.AutoConfig.from_pretrained(CONFIGS / "sdxl-ip-adapter/models/image_encoder")
        )
        assert n(vit) == planner.PARAMS["sdxl-ip-adapter"]["image_encoder"]
    # Published file sizes as a sanity check: the fp16 UNet is 5.1 GB, each ControlNet's fp16 file 2.5 GB.
    assert 5.1e9 < planner.component_bytes("sdxl-base", "unet", "float16") < 5.2e9
    assert 2.4e9 < planner.component_bytes("sdxl-controlnet-canny", "controlnet", "float16") < 2.6e9


@pytest.mark.parametrize(
    "gib, expect",
    [
        (80, "gpu"),
        (48, "gpu"),
        (24, "gpu"),
        (16, "gpu"),
        (12, "gpu"),  # 6.9 GB of bf16 weights + 2.8 GB work
        (8, "model-offload"),  # the 5.1 GB UNet + work with a tiled VAE decode fits 7.7 GB
    ],
)
def test_sdxl_generate_plans(gib, expect):
    p = plan(XL, gpu(gib), available_quantizers=[])
    assert (p.placement, p.quantize, p.drop_t5, p.fits) == (expect, "none", False, True)
    assert p.vae_tiling == (expect != "gpu") and p.peak <= gpu(gib).memory
    assert ("vae_decode" in p.metadata()) == p.vae_tiling


def test_sdxl_tools_and_cpu():
    assert plan(XL_SKETCH, gpu(12), available_quantizers=[]).placement == "model-offload"  # + 2.5 GB ControlNet
    assert plan(XL_SKETCH, gpu(16), available_quantizers=[]).placement == "gpu"
    inpaint = plan(XL_INPAINT, gpu(12), available_quantizers=[])
    # The inpainting UNet replaces the base UNet: one UNet loaded, not two.
    assert "sdxl-base/unet" not in inpaint.components and "sdxl-inpaint/unet" in inpaint.components
    assert inpaint.placement == "gpu"
    cpu = plan(XL, Device("cpu", 32 * GB, 40 * GB))
    assert (cpu.placement, cpu.dtype, cpu.fits) == ("cpu", "float32", True) and 16 * GB < cpu.peak < 17 * GB
    assert not plan(XL, Device("cpu", 12 * GB, 16 * GB)).fits


def test_family_choice_by_plan(monkeypatch):
    """Both families installed: SD3.5 when its plan is full quality, else SDXL's full-quality plan."""
    from pixelsmith.engines.diffusers import families

    monkeypatch.delenv("PIXELSMITH_FAMILY", raising=False)
    for var in ("PIXELSMITH_PLAN", "PIXELSMITH_QUANTIZE", "PIXELSMITH_DROP_T5"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(families, "is_installed", lambda name: True)
    monkeypatch.setattr(planner, "quantizers", lambda: ["int8", "nf4"])
    opts = {"sd3.5": tuple(LARGE), "sdxl": tuple(XL)}
    assert families.choose(opts, gpu(48)) == "sd3.5"
    assert families.choose(opts, gpu(24)) == "sd3.5"  # model offload, but nothing degraded
    # 8 GB: SD3.5 Large needs nf4 and no T5 (or sequential offload); SDXL runs unquantized with offload.
    assert plan(LARGE, gpu(8), available_quantizers=BOTH).quantize == "nf4"
    assert families.choose(opts, gpu(8)) == "sdxl"
    assert families.choose(opts, gpu(16)) == "sdxl"  # SD3.5 Large would need an int8 transformer
    monkeypatch.setenv("PIXELSMITH_FAMILY", "sd3.5")
    assert families.choose(opts, gpu(8)) == "sd3.5"
    # Only one family installed: that one, whatever the device.
    monkeypatch.delenv("PIXELSMITH_FAMILY")
    monkeypatch.setattr(families, "is_installed", lambda name: name.startswith("sd3.5"))
    assert families.choose(opts, gpu(8)) == "sd3.5"


def test_doctor_shows_the_family_per_tool(monkeypatch):
    from pixelsmith.engines.diffusers import doctor as D
    from pixelsmith.engines.diffusers import families

    monkeypatch.delenv("PIXELSMITH_FAMILY", raising=False)
    monkeypatch.setattr(families, "is_installed", lambda name: True)
    rep = D.report(gpu(8))
    gen = rep["tools"]["generate"]
    assert gen["family"] == "sdxl" and gen["checkpoint"] == "stabilityai/stable-diffusion-xl-base-1.0"
    assert gen["plan"] == "model-offload" and set(gen["families"]) == {"sd3.5", "sdxl"}
    assert gen["families"]["sd3.5"]["quantize"] in ("nf4", "none")
    assert rep["tools"]["inpaint"]["checkpoint"] == "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"
    text = D.format_report(rep)
    assert "family" in text and "sdxl" in text
    # Nothing installed: SD3.5 is what the tools ask for, but the report says SDXL is the one to pull on 8 GB.
    monkeypatch.setattr(families, "is_installed", lambda name: False)
    bare = D.report(gpu(8))["tools"]["sketch"]
    assert (bare["family"], bare["best_fit"]) == ("sd3.5", "sdxl") and not bare["ready"]
    assert D.report(gpu(80))["tools"]["sketch"]["best_fit"] == "sd3.5"
    assert D.readyz_detail.__doc__ and "family" in D.readyz_detail()["tools"]["generate"]
