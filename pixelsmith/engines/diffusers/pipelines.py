"""SD3 and SDXL pipelines assembled per call around the shared components, plus the steps recipes share.

A pipeline object is a thin wrapper (it registers references to components), so
building one per call costs nothing and never holds a stale component: the store
decides what stays loaded. Text embeddings are cached per prompt, so a repeated
prompt skips the three text encoders.
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import threading
from typing import Any

from PIL import Image

from pixelsmith.engines.diffusers import components as C
from pixelsmith.engines.diffusers._lazy import torch
from pixelsmith.engines.recipe import Context

PARTS = (
    "transformer",
    "vae",
    "text_encoder",
    "text_encoder_2",
    "text_encoder_3",
    "tokenizer",
    "tokenizer_2",
    "tokenizer_3",
)
XL_PARTS = ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")

# Denoising steps and guidance per checkpoint, as their model cards recommend.
DEFAULTS = {
    "sd3.5-large": (28, 4.0),
    "sd3.5-large-turbo": (4, 1.0),
    "sd3.5-medium": (40, 4.5),
    # SDXL base: its card gives no numbers; 30 Euler steps and CFG 7 are the common settings (diffusers'
    # own default is 50 steps, CFG 5). The inpainting card: 20 steps ("15 to 30 work well"), CFG 8.
    "sdxl-base": (30, 7.0),
    "sdxl-inpaint": (20, 8.0),
}


def steps_for(base: str, steps: int | None = None) -> int:
    """Steps for ``base``; $PIXELSMITH_DIFFUSION_STEPS overrides (previews, tests)."""
    override = os.environ.get("PIXELSMITH_DIFFUSION_STEPS")
    if override:
        return int(override)
    return steps or DEFAULTS.get(base, (28, 4.0))[0]


_CLASSES_LOCK = threading.Lock()


_LOCAL = threading.local()


def is_xl(base: str) -> bool:
    """An SDXL checkpoint (UNet pipelines) rather than an SD3 one (MMDiT pipelines)."""
    from pixelsmith.models.hub import KIND

    return KIND.get(base) in ("sdxl", "sdxl-unet")


def plan_for(base: str, controlnet: str | None = None) -> Any:
    """The memory plan (planner.py) for these models on this device, with the settings' overrides."""
    from pixelsmith.engines.diffusers import planner

    return planner.for_models([base, *([controlnet] if controlnet else [])])


def run_metadata(base: str) -> dict[str, Any]:
    """What a response says about what made it: family, checkpoint (hub repository) and the memory plan."""
    from pixelsmith.engines.diffusers.families import FAMILY_OF
    from pixelsmith.models import get_model

    source = get_model(base).source
    out: dict[str, Any] = {
        "model": base,
        "family": FAMILY_OF.get(base, base),
        "checkpoint": getattr(source, "repo_id", base),
    }
    used = getattr(_LOCAL, "plan", None)
    if used is not None:
        out.update(used.metadata())
    return out


def build(kind: str, base: str, controlnet: str | None = None) -> Any:
    """kind: txt2img | img2img | inpaint | control (| control-img2img on SDXL); loaded and placed as the
    memory plan says. An SDXL ``base`` builds the StableDiffusionXL* pipeline of the same kind."""
    plan = plan_for(base, controlnet)
    _LOCAL.plan = plan
    if is_xl(base):
        return _build_xl(kind, base, controlnet, plan)
    with _CLASSES_LOCK:  # diffusers' lazy attributes fail (AttributeError) when threads resolve them first at once
        import diffusers

        cls = {
            "txt2img": diffusers.StableDiffusion3Pipeline,
            "img2img": diffusers.StableDiffusion3Img2ImgPipeline,
            "inpaint": diffusers.StableDiffusion3InpaintPipeline,
            "control": diffusers.StableDiffusion3ControlNetPipeline,
        }[kind]
    resident = plan.placement in ("gpu", "cpu")
    parts = {
        p: None
        if plan.drop_t5 and p in ("text_encoder_3", "tokenizer_3")
        else C.sd3_part(base, p, on_device=resident, quantize=plan.quantize if p == "transformer" else "none")
        for p in PARTS
    }
    extra = {"controlnet": C.controlnet(controlnet, on_device=resident)} if kind == "control" and controlnet else {}
    pipe: Any = cls(scheduler=C.scheduler(base), **parts, **extra)
    return _placed(pipe, plan)


def _placed(pipe: Any, plan: Any) -> Any:
    pipe.set_progress_bar_config(disable=True)
    if plan.placement == "model-offload":
        pipe.enable_model_cpu_offload(device=C.device())
    elif plan.placement == "sequential-offload":
        pipe.enable_sequential_cpu_offload(device=C.device())
    return pipe


def _build_xl(kind: str, base: str, controlnet: str | None, plan: Any) -> Any:
    with _CLASSES_LOCK:
        import diffusers

        cls = {
            "txt2img": diffusers.StableDiffusionXLPipeline,
            "img2img": diffusers.StableDiffusionXLImg2ImgPipeline,
            "inpaint": diffusers.StableDiffusionXLInpaintPipeline,
            "control": diffusers.StableDiffusionXLControlNetPipeline,
            "control-img2img": diffusers.StableDiffusionXLControlNetImg2ImgPipeline,
        }[kind]
    resident = plan.placement in ("gpu", "cpu")
    parts = {
        p: C.xl_part(base, p, on_device=resident, quantize=plan.quantize if p == "unet" else "none") for p in XL_PARTS
    }
    vae = parts["vae"]
    if getattr(plan, "vae_tiling", False):
        # Offloading plans decode in 512² tiles (25% overlap): about a quarter of a 1024² decode's activations
        # alive at once (planner.TILED_DECODE_GB); diffusers blends the seams.
        vae.enable_tiling()
        vae.tile_sample_min_size, vae.tile_latent_min_size = 512, 512 // (2 ** (len(vae.config.block_out_channels) - 1))
    elif getattr(vae, "use_tiling", False):
        vae.disable_tiling()
    if kind.startswith("control") and not controlnet:
        raise ValueError(f"{kind} needs a ControlNet")
    extra = {"controlnet": C.controlnet(controlnet, on_device=resident)} if controlnet else {}
    pipe: Any = cls(scheduler=C.scheduler(base), add_watermarker=False, **parts, **extra)
    return _placed(pipe, plan)


def denoiser(pipe: Any) -> Any:
    """The pipeline's denoising network: the SD3 MMDiT transformer or the SDXL UNet."""
    net = getattr(pipe, "transformer", None)
    return net if net is not None else pipe.unet


def granularity(pipe: Any) -> int:
    """Pixel sizes must be multiples of this: VAE downsampling x transformer patch (SD3), VAE downsampling x the
    UNet's downsamplings (SDXL: 8 x 4 = 32, so no skip connection is cropped); the ControlNet pipelines want 8."""
    net = denoiser(pipe)
    patch = getattr(net.config, "patch_size", None)
    if patch is None:  # a UNet: 2 ** (its down blocks - 1) halvings
        patch = 2 ** (len(net.config.block_out_channels) - 1)
    return math.lcm(8, pipe.vae_scale_factor * patch)


def native_side(pipe: Any) -> int:
    """The model's native square side in pixels (1024 for SD3.5 and SDXL)."""
    return denoiser(pipe).config.sample_size * pipe.vae_scale_factor


# SD3.5's native sizes for the nine aspect ratios (about 1 MP, multiples of 64), at native side 1024; SDXL was
# trained on the same buckets (its paper's appendix lists these nine among its aspect-ratio buckets).
NATIVE_SIZES = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "21:9": (1536, 640),
    "3:2": (1216, 832),
    "5:4": (1152, 896),
    "4:5": (896, 1152),
    "2:3": (832, 1216),
    "9:16": (768, 1344),
    "9:21": (640, 1536),
}


def size_for_aspect(pipe: Any, aspect_ratio: str) -> tuple[int, int]:
    """The model's native size for an aspect ratio (scaled for models whose native side is not 1024)."""
    w, h = NATIVE_SIZES[aspect_ratio]
    return scaled(pipe, w, h, native_side(pipe) / 1024)


def scaled(pipe: Any, w: float, h: float, k: float = 1.0) -> tuple[int, int]:
    g = granularity(pipe)
    return max(g, int(round(w * k / g)) * g), max(g, int(round(h * k / g)) * g)


def working_size(pipe: Any, width: int, height: int) -> tuple[int, int]:
    """The size to diffuse an image at: the model's native area, the image's aspect ratio."""
    k = native_side(pipe) / math.sqrt(width * height)
    return scaled(pipe, width, height, k)


def generator(seed: int, offset: int = 0) -> torch.Generator:
    # A CPU generator gives the same noise on every device, so a seed means one image.
    return torch.Generator("cpu").manual_seed((seed + offset) % (2**63))


# --- text embeddings, cached ---------------------------------------------------------------------

_EMBEDS: collections.OrderedDict[tuple, tuple] = collections.OrderedDict()
_EMBEDS_LOCK = threading.Lock()
EMBED_CACHE_SIZE = 64


def _cached_embeds(key: tuple) -> tuple | None:
    with _EMBEDS_LOCK:
        hit = _EMBEDS.get(key)
        if hit is not None:
            _EMBEDS.move_to_end(key)
        return hit


def prompt_kwargs(pipe: Any, base: str, prompt: str, negative: str | None, cfg: float) -> dict[str, Any]:
    """prompt_embeds & co. for the pipeline call, from cache when the same prompt came before."""
    t5 = getattr(pipe, "text_encoder_3", None) is not None  # a drop-T5 plan embeds differently
    key = (base, prompt, negative or "", cfg > 1.0, t5, str(C.device()), str(C.dtype()))
    hit = _cached_embeds(key)
    if hit is None:
        # One encode at a time (the tokenizers are shared and not thread-safe, see C.TOKENIZER_LOCK); a
        # request that waited here for the same prompt finds it in the cache instead of encoding it again.
        with C.TOKENIZER_LOCK:
            hit = _cached_embeds(key)
            if hit is None:
                xl = getattr(pipe, "unet", None) is not None
                third = {} if xl else {"prompt_3": None}  # SDXL has two encoders
                with torch.inference_mode():
                    hit = pipe.encode_prompt(
                        prompt=prompt,
                        prompt_2=None,
                        # SDXL (force_zeros_for_empty_prompt in its model_index) was trained with zeros, not the
                        # embedding of "", as the unconditional input: None asks the pipeline for those zeros.
                        negative_prompt=(negative or None) if xl else (negative or ""),
                        do_classifier_free_guidance=cfg > 1.0,
                        device=C.device(),
                        **third,
                    )
                with _EMBEDS_LOCK:
                    _EMBEDS[key] = hit
                    while len(_EMBEDS) > EMBED_CACHE_SIZE:
                        _EMBEDS.popitem(last=False)
    pe, npe, ppe, nppe = hit
    out = {"prompt_embeds": pe, "pooled_prompt_embeds": ppe, "guidance_scale": cfg}
    if cfg > 1.0:
        out.update(negative_prompt_embeds=npe, negative_pooled_prompt_embeds=nppe)
    return out


# --- image-to-image on pipelines that have no strength argument (ControlNet) -----------------------


def img2img_start(
    pipe: Any, image: Image.Image, strength: float, steps: int, seed: int, size: tuple[int, int]
) -> dict[str, Any]:
    """``latents`` + ``sigmas`` that start a flow-matching run part-way, at ``strength``, from ``image``.

    Same arithmetic as StableDiffusion3Img2ImgPipeline (the schedule's tail from
    ``strength``, the image latents noised to that sigma) for pipelines that only
    take latents and sigmas, such as the SD3 ControlNet pipeline.
    """
    import numpy as np

    strength = min(max(strength, 0.0), 1.0)
    kept = max(1, min(steps, int(round(steps * strength))))
    full = np.linspace(1.0, 1.0 / steps, steps)
    sigmas = full[steps - kept :]
    shift = pipe.scheduler.config.shift
    s0 = shift * sigmas[0] / (1 + (shift - 1) * sigmas[0])
    init = encode_image(pipe, image.resize(size, Image.Resampling.LANCZOS))
    noise = torch.randn(init.shape, generator=generator(seed), dtype=torch.float32).to(init.device, init.dtype)
    latents = s0 * noise + (1.0 - s0) * init
    return {"latents": latents, "sigmas": list(map(float, sigmas)), "num_inference_steps": kept}


def encode_image(pipe: Any, image: Image.Image) -> torch.Tensor:
    vae = pipe.vae
    pixels = pipe.image_processor.preprocess(image.convert("RGB")).to(C.device(), vae.dtype)
    with torch.inference_mode():
        latent = vae.encode(pixels).latent_dist.mode()
    return (latent - (vae.config.shift_factor or 0.0)) * vae.config.scaling_factor


# --- IP-Adapter, attached to the shared transformer only for the run that uses it ------------------

_IP: dict[str, Any] = {}


@contextlib.contextmanager
def ip_adapter(pipe: Any, adapter: str, encoder: str, scale: float):
    """Attach the IP-Adapter (and its SigLIP image encoder) for one run, then restore the transformer."""
    transformer = pipe.transformer
    saved = transformer.attn_processors
    loaded = _IP.get(adapter)
    if loaded is None or loaded[0] is not transformer:
        pipe.register_modules(
            image_encoder=C.hf_model(encoder, "SiglipVisionModel"),
            feature_extractor=C.hf_processor(encoder, "SiglipImageProcessor"),
        )
        folder = C.weights_dir(adapter)
        weight = "ip-adapter.safetensors" if (folder / "ip-adapter.safetensors").exists() else "ip-adapter.bin"
        pipe.load_ip_adapter(
            str(folder), weight_name=weight, image_encoder_folder=None, local_files_only=True, low_cpu_mem_usage=False
        )  # the meta-device path leaves the resampler unmaterialised
        transformer.image_proj.to(C.device(), transformer.dtype)
        for proc in transformer.attn_processors.values():  # built on the CPU in fp32 by the loader
            if isinstance(proc, torch.nn.Module):
                proc.to(C.device(), transformer.dtype)
        _IP[adapter] = (transformer, transformer.attn_processors, transformer.image_proj)
        loaded = _IP[adapter]
    else:
        pipe.register_modules(
            image_encoder=C.hf_model(encoder, "SiglipVisionModel"),
            feature_extractor=C.hf_processor(encoder, "SiglipImageProcessor"),
        )
        transformer.image_proj = loaded[2]  # first: its attention layers count among the processors
        transformer.set_attn_processor(dict(loaded[1]))
    pipe.set_ip_adapter_scale(scale)
    try:
        yield pipe
    finally:
        transformer.image_proj = None
        transformer.set_attn_processor(dict(saved))
        if hasattr(transformer, "encoder_hid_proj"):
            transformer.encoder_hid_proj = None


XL_IP_WEIGHT = "ip-adapter_sdxl_vit-h.safetensors"  # under sdxl_models/ in h94/IP-Adapter
XL_IP_ENCODER = "models/image_encoder"  # OpenCLIP ViT-H/14 (CLIPVisionModelWithProjection), same repository


def _xl_feature_extractor(adapter: str) -> Any:
    """CLIP preprocessing for the ViT-H encoder: the folder's own preprocessor_config.json when it has one,
    else transformers' CLIPImageProcessor defaults (224², CLIP mean/std), which is what diffusers uses."""
    from transformers import CLIPImageProcessor

    folder = C.weights_dir(adapter) / XL_IP_ENCODER
    if (folder / "preprocessor_config.json").exists():
        return C.hf_processor_at(adapter, "CLIPImageProcessor", XL_IP_ENCODER)
    return CLIPImageProcessor()


@contextlib.contextmanager
def ip_adapter_xl(pipe: Any, adapter: str, scale: float):
    """Attach the SDXL IP-Adapter (ViT-H) to the shared UNet for one run, then restore the UNet."""
    unet = pipe.unet
    saved = unet.attn_processors
    pipe.register_modules(
        image_encoder=C.hf_model(adapter, "CLIPVisionModelWithProjection", XL_IP_ENCODER),
        feature_extractor=_xl_feature_extractor(adapter),
    )
    loaded = _IP.get(adapter)
    if loaded is None or loaded[0] is not unet:
        pipe.load_ip_adapter(
            str(C.weights_dir(adapter)),
            subfolder="sdxl_models",
            weight_name=XL_IP_WEIGHT,
            image_encoder_folder=None,
            local_files_only=True,
            low_cpu_mem_usage=False,
        )
        unet.encoder_hid_proj.to(C.device(), unet.dtype)
        for proc in unet.attn_processors.values():  # built on the CPU in fp32 by the loader
            if isinstance(proc, torch.nn.Module):
                proc.to(C.device(), unet.dtype)
        _IP[adapter] = (unet, unet.attn_processors, unet.encoder_hid_proj)
        loaded = _IP[adapter]
    else:
        unet.encoder_hid_proj = loaded[2]
        unet.config.encoder_hid_dim_type = "ip_image_proj"
        unet.set_attn_processor(dict(loaded[1]))
    pipe.set_ip_adapter_scale(scale)
    try:
        yield pipe
    finally:  # as diffusers' unload_ip_adapter, keeping the loaded layers for the next run
        unet.encoder_hid_proj = None
        unet.config.encoder_hid_dim_type = None
        unet.set_attn_processor(dict(saved))


def progress_callback(ctx: Context | None, total: int, done_before: int = 0, grand_total: int | None = None):
    """A diffusers callback_on_step_end that reports steps to the request's progress hook."""
    if ctx is None or ctx.progress is None:
        return None

    report = ctx.progress

    def callback(pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        report(done_before + step + 1, grand_total or total)
        return kwargs

    return callback
