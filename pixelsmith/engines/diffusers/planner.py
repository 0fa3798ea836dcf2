"""Memory planner: how to load each tool's models on the device at hand (SD3.5 and SDXL families).

From the parameter count of every component (counted from the models' real
configs, see ``tests/data/configs/SOURCES.md``; ``tests/test_diffusers_planner.py``
rebuilds each component on the meta device and checks these numbers), the bytes
each component needs in bf16/fp16, int8 or NF4, and for a device (its free VRAM,
or CPU RAM) the first plan that fits, best first:

1. ``gpu``: every component resident on the GPU (fastest);
2. ``model-offload``: components wait in CPU RAM and move to the GPU one at a time
   (diffusers ``enable_model_cpu_offload``): peak = the largest component + work;
3. the same with a **quantized denoiser** (transformer or UNet, ``int8`` or ``nf4``) when
   it alone does not fit and a backend (torchao, bitsandbytes) is installed;
4. **dropping the T5 encoder** when it alone does not fit: SD3 runs on the two CLIP
   encoders, at lower prompt fidelity (the response metadata says so);
5. ``sequential-offload``: weights stream to the GPU layer by layer (fits almost
   anything; very slow).

On a CPU-only machine the plan is ``cpu`` (fp32; T5 dropped when RAM is short).
Settings override the choice: ``PIXELSMITH_PLAN`` (gpu | model-offload |
sequential-offload | cpu), ``PIXELSMITH_QUANTIZE`` (none | int8 | nf4),
``PIXELSMITH_DROP_T5`` (1/0). The numbers are estimates: weights exact from the
configs; working memory (activations, VAE decode, CUDA context) from the
constants below, chosen from published measurements of SD3.5 on diffusers, not
measured here (no GPU was available when this was written).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import asdict, dataclass, field
from typing import Any

GB = 1_000_000_000

# Tensor elements per component (parameters + persistent buffers such as the MMDiT position table: what
# the weight files hold), counted on the meta device from tests/data/configs (exact).
_CLIPS_T5_VAE = {
    "vae": 83_819_683,
    "text_encoder": 123_650_304,  # CLIP ViT-L/14 text
    "text_encoder_2": 694_659_840,  # OpenCLIP ViT-bigG/14 text
    "text_encoder_3": 4_762_310_656,  # T5 v1.1 XXL encoder
}
PARAMS: dict[str, dict[str, int]] = {
    "sd3.5-large": {"transformer": 8_146_280_768, **_CLIPS_T5_VAE},
    "sd3.5-large-turbo": {"transformer": 8_146_280_768, **_CLIPS_T5_VAE},
    "sd3.5-medium": {"transformer": 2_469_663_936, **_CLIPS_T5_VAE},
    "sd3.5-large-controlnet-canny": {"controlnet": 2_153_518_976},
    "sd3.5-large-controlnet-depth": {"controlnet": 2_153_518_976},
    "sd3.5-large-controlnet-blur": {"controlnet": 2_153_518_976},
    "sd3.5-large-ip-adapter": {"ip_adapter": 797_925_888},  # resampler + 38 joint-attention processors
    "siglip-so400m": {"image_encoder": 428_225_600},  # the vision tower only (SiglipVisionModel)
    "owlv2-base": {"detector": 154_966_792},
    "sam-vit-base": {"segmenter": 93_735_728},
    "depth-anything-v2-small": {"depth": 24_785_089},
    "swin2sr-x4": {"upscaler": 12_054_643},
    # SDXL 1.0 (tests/data/configs/sdxl-*): the UNet is the published 2,567,463,684.
    "sdxl-base": {
        "unet": 2_567_463_684,
        "vae": 83_653_863,
        "text_encoder": 123_060_480,  # CLIP ViT-L/14 text (CLIPTextModel: no projection)
        "text_encoder_2": 694_659_840,  # OpenCLIP ViT-bigG/14 text with projection
    },
    "sdxl-inpaint": {"unet": 2_567_478_084},  # 9 input channels; VAE and text encoders are sdxl-base's
    "sdxl-controlnet-canny": {"controlnet": 1_251_014_160},
    "sdxl-controlnet-depth": {"controlnet": 1_251_014_160},
    "sdxl-controlnet-tile": {"controlnet": 1_251_014_160},
    # image projection (1024 -> 4 x 2048 + LayerNorm) + 70 cross-attention to_k_ip/to_v_ip pairs; ViT-H/14 encoder
    "sdxl-ip-adapter": {"ip_adapter": 349_188_096, "image_encoder": 632_076_800},
    "sdxl-vae-fp16-fix": {"vae": 83_653_863},
}
BYTES_PER_PARAM = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0, "int8": 1.0, "nf4": 0.56}  # nf4: 4 bits + scales

# Working memory at 1024² (estimates, GB): CUDA context + allocator slack, the MMDiT's
# activations for a CFG batch of 2 with SDPA attention, the VAE decoding one 1024² image.
CONTEXT_GB = 0.8
ACTIVATIONS_GB = {"sd3.5-large": 2.0, "sd3.5-large-turbo": 1.2, "sd3.5-medium": 1.4}
# SDXL's UNet at 1024² (128² latents, CFG batch 2): its largest attention runs on 64² = 4096 tokens at 1280
# wide, far less than the MMDiT's 4096 image + 333 text tokens at 2432 through 38 blocks (estimate).
ACTIVATIONS_GB.update({"sdxl-base": 1.0, "sdxl-inpaint": 1.0})
VAE_DECODE_GB = 2.0
# Offloading SDXL plans decode in 512² tiles (pipelines._build_xl): about a quarter of the full decode's
# activations alive at once, plus the tile blending (estimate). Lets SDXL run on 8 GB cards unquantized.
TILED_DECODE_GB = 0.6
TILED_VAE_BASES = ("sdxl-base", "sdxl-inpaint")
DENOISERS = ("transformer", "unet")  # the part a quantized plan quantizes
PLANS = ("gpu", "model-offload", "sequential-offload", "cpu")


def component_bytes(model: str, part: str, dtype: str = "bfloat16") -> int:
    return int(params(model, part) * BYTES_PER_PARAM[dtype])


_SUBFOLDERS = ("transformer", "unet", "vae", "text_encoder", "text_encoder_2", "text_encoder_3")  # SD3/SDXL layout
_FOLDERS = {  # parts whose weights sit elsewhere than the model folder's top level or a same-named sub-folder
    ("sdxl-ip-adapter", "ip_adapter"): "sdxl_models",
    ("sdxl-ip-adapter", "image_encoder"): "models/image_encoder",
}


def params(model: str, part: str) -> int:
    """Parameters of a component: counted from the installed weights' safetensors headers when the model
    is installed (exact for what is on disk), else the count from the real configs (``PARAMS``)."""
    try:
        from pixelsmith.models import is_installed, model_path

        if is_installed(model):
            sub = _FOLDERS.get((model, part), part if part in _SUBFOLDERS else "")
            folder = model_path(model) / sub
            counted = safetensors_params(folder)
            if counted:
                return counted
    except Exception:  # an unknown model or an unreadable file: fall back to the table
        pass
    return PARAMS[model][part]


def read_header(path: os.PathLike[str] | str) -> dict[str, Any]:
    """The JSON header of a safetensors file (tensor name -> dtype, shape, data_offsets); no tensor is read."""
    import json
    import struct

    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > 100_000_000:
            raise ValueError(f"{path}: not a safetensors file (header length {length})")
        header: dict[str, Any] = json.loads(f.read(length))
    header.pop("__metadata__", None)
    return header


def safetensors_params(folder: os.PathLike[str] | str) -> int:
    """Total parameters in the ``*.safetensors`` files directly in ``folder`` (from their headers)."""
    import math
    import pathlib

    total = 0
    for file in sorted(pathlib.Path(folder).glob("*.safetensors")):
        total += sum(math.prod(t["shape"]) for t in read_header(file).values())
    return total


def quantizers() -> list[str]:
    """The transformer quantizations whose backend is installed (diffusers needs both on a CUDA GPU)."""
    found = []
    if importlib.util.find_spec("torchao") is not None:
        found.append("int8")
    if importlib.util.find_spec("bitsandbytes") is not None:
        found.append("nf4")
    return found


@dataclass
class Device:
    kind: str  # "cuda" | "mps" | "cpu"
    memory: int  # bytes usable for models on the compute device (VRAM; RAM for cpu)
    ram: int  # CPU RAM, where offloaded components wait
    name: str = ""


@dataclass
class Plan:
    placement: str  # one of PLANS
    dtype: str = "bfloat16"
    quantize: str = "none"  # the denoiser (transformer or UNet): none | int8 | nf4
    drop_t5: bool = False
    peak: int = 0  # expected peak device memory, bytes
    fits: bool = True
    components: dict[str, int] = field(default_factory=dict)  # "model/part" -> bytes as loaded
    notes: list[str] = field(default_factory=list)
    vae_tiling: bool = False  # decode in tiles (SDXL offloading plans)

    def metadata(self) -> dict[str, Any]:
        """What a response says about how it was made."""
        out: dict[str, Any] = {"plan": self.placement}
        if self.quantize != "none":
            out["quantized_transformer"] = self.quantize
        if self.drop_t5:
            out["t5_encoder"] = "dropped (lower prompt fidelity)"
        if self.vae_tiling:
            out["vae_decode"] = "tiled (512²)"
        return out

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["peak_gb"] = round(self.peak / GB, 2)
        return d


def _parts(models: list[str]) -> list[tuple[str, str]]:
    """(model, part) pairs to load; a UNet-only checkpoint (SDXL inpainting) replaces its base's UNet."""
    from pixelsmith.models.hub import SHARES

    replaced = {(SHARES[m], "unet") for m in models if m in SHARES}
    return [(m, p) for m in models if m in PARAMS for p in PARAMS[m] if (m, p) not in replaced]


def _working(models: list[str], tiled: bool = False) -> int:
    bases = [m for m in models if m in ACTIVATIONS_GB]
    act = max((ACTIVATIONS_GB[m] for m in bases), default=0.5)
    decode = TILED_DECODE_GB if tiled else VAE_DECODE_GB
    return int((CONTEXT_GB + max(act, decode if bases else 0.5)) * GB)


def _tiles(models: list[str]) -> bool:
    """Whether an offloading plan for these models decodes in tiles (the SDXL path does; SD3's does not)."""
    return any(m in TILED_VAE_BASES for m in models)


def _sizes(models: list[str], dtype: str, quantize: str, drop_t5: bool) -> dict[str, int]:
    out = {}
    for m, p in _parts(models):
        if drop_t5 and p == "text_encoder_3":
            continue
        d = quantize if (p in DENOISERS and quantize != "none") else dtype
        out[f"{m}/{p}"] = component_bytes(m, p, d)
    return out


def plan(
    models: list[str],
    device: Device,
    *,
    placement: str | None = None,
    quantize: str | None = None,
    drop_t5: bool | None = None,
    available_quantizers: list[str] | None = None,
) -> Plan:
    """The loading plan for a set of models (a tool's) on ``device``; keyword arguments force a choice."""
    work = _working(models)
    tiled = _tiles(models)
    offload_work = _working(models, tiled=tiled)
    has_t5 = any(p == "text_encoder_3" for _, p in _parts(models))
    if device.kind == "cpu" or placement == "cpu":
        options = [d for d in ((False, True) if drop_t5 is None else (drop_t5,)) if has_t5 or not d] or [False]
        for i, drop in enumerate(options):
            sizes = _sizes(models, "float32", "none", drop)
            peak = sum(sizes.values()) + work
            if peak <= device.memory or i == len(options) - 1:
                p = Plan("cpu", "float32", "none", drop, peak, peak <= device.memory, sizes)
                if drop:
                    p.notes.append("T5 dropped: the models do not fit in RAM with it")
                if not p.fits:
                    p.notes.append("does not fit in RAM: expect swapping or failure")
                return p
    dtype = "bfloat16" if device.kind == "cuda" else "float16"
    quants = quantizers() if available_quantizers is None else available_quantizers
    q_options = [quantize] if quantize is not None else ["none", *[q for q in ("int8", "nf4") if q in quants]]
    t5_options = [drop_t5] if drop_t5 is not None else [False, True]
    places = [placement] if placement is not None else ["gpu", "model-offload"]
    # Quality first: a full-precision transformer with T5 beats any quantized or T5-less plan; among
    # equals, the faster placement. Sequential offload is the last resort.
    for drop in t5_options:
        if drop and not has_t5:
            continue
        for q in q_options:
            for where in places:
                sizes = _sizes(models, dtype, q, drop)
                if where == "gpu":
                    peak = sum(sizes.values()) + work
                elif where == "model-offload":
                    peak = max(sizes.values(), default=0) + (offload_work if tiled else work)
                else:
                    continue
                if peak <= device.memory and (where == "gpu" or sum(sizes.values()) <= device.ram):
                    p = Plan(where, dtype, q, drop, peak, True, sizes, vae_tiling=tiled and where != "gpu")
                    if q != "none":
                        p.notes.append(f"denoiser quantized to {q} so that it fits")
                    if drop:
                        p.notes.append("T5 encoder dropped: it does not fit; prompts follow less closely")
                    return p
    if placement in ("gpu", "model-offload"):  # forced, and it does not fit: say so rather than switch
        sizes = _sizes(models, dtype, q_options[0], bool(t5_options[0]) and has_t5)
        peak = sum(sizes.values()) + work if placement == "gpu" else max(sizes.values(), default=0) + offload_work
        p = Plan(
            placement,
            dtype,
            q_options[0],
            bool(t5_options[0]) and has_t5,
            peak,
            False,
            sizes,
            vae_tiling=tiled and placement != "gpu",
        )
        p.notes.append(f"forced by PIXELSMITH_PLAN={placement}; expected not to fit the device")
        return p
    sizes = _sizes(models, dtype, q_options[-1], bool(t5_options[-1]) and has_t5)
    biggest = max(sizes.values(), default=0)
    # Sequential offload keeps about one transformer block (~1/38 of it) plus work on the device.
    peak = biggest // 24 + offload_work
    p = Plan(
        "sequential-offload",
        dtype,
        q_options[-1],
        bool(t5_options[-1]) and has_t5,
        peak,
        peak <= device.memory,
        sizes,
        vae_tiling=tiled,
    )
    p.notes.append("weights stream to the device layer by layer: very slow")
    if sum(sizes.values()) > device.ram:
        p.fits = False
        p.notes.append("the models do not fit in CPU RAM either")
    return p


def from_settings() -> dict[str, Any]:
    """The overrides set in the environment (PIXELSMITH_PLAN, PIXELSMITH_QUANTIZE, PIXELSMITH_DROP_T5)."""
    out: dict[str, Any] = {}
    placement = os.environ.get("PIXELSMITH_PLAN", "").strip()
    if placement and placement != "auto":
        if placement not in PLANS:
            raise ValueError(f"PIXELSMITH_PLAN={placement!r}: use one of auto, {', '.join(PLANS)}")
        out["placement"] = placement
    quant = os.environ.get("PIXELSMITH_QUANTIZE", "").strip()
    if quant and quant != "auto":
        if quant not in ("none", "int8", "nf4"):
            raise ValueError(f"PIXELSMITH_QUANTIZE={quant!r}: use auto, none, int8 or nf4")
        out["quantize"] = quant
    drop = os.environ.get("PIXELSMITH_DROP_T5", "").strip().lower()
    if drop in ("1", "true", "yes"):
        out["drop_t5"] = True
    elif drop in ("0", "false", "no"):
        out["drop_t5"] = False
    return out


def detect_device() -> Device:
    """The compute device the engine will use, with its memory (PIXELSMITH_GPU_MEMORY overrides VRAM)."""
    ram = _ram_bytes()
    try:
        from pixelsmith.engines.diffusers import components as C
        from pixelsmith.engines.diffusers._lazy import torch

        dev = C.device()
        if dev.type == "cuda":
            props = torch.cuda.get_device_properties(dev)
            return Device("cuda", C.budget_bytes(), ram, props.name)
        if dev.type == "mps":
            return Device("mps", int(ram * 0.6), ram, "Apple GPU")
    except Exception:
        pass
    return Device("cpu", int(ram * 0.8), ram, "CPU")


def _ram_bytes() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 16 * GB


def tool_models(tool: str) -> list[str]:
    """The models a tool's diffusers recipe loads."""
    from pixelsmith.engines import ENGINES
    from pixelsmith.tools import all_tools

    all_tools()
    recipe = ENGINES["diffusers"].recipe(tool)
    return list(recipe.models) if recipe is not None else []


def for_models(models: list[str], device: Device | None = None) -> Plan:
    """The plan the engine applies: automatic, with the settings' overrides."""
    return plan(models, device or detect_device(), **from_settings())
