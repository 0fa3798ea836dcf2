"""The diffusers engine's models: Hugging Face repositories, pinned by revision.

One entry per model in the shared catalogue (``pixelsmith.models``); ``LAYOUT``
says what a folder holding it must contain, so an import (``--from PATH``) is
checked before it is marked installed. Which tool uses which model is declared
by the recipes (``@recipe(TOOL, models=[...])``), not here.
"""

from __future__ import annotations

from pixelsmith.models.catalog import CATALOG, HubRepo, ModelSpec, register

_SD3_PATTERNS = (
    "model_index.json",
    "scheduler/*",
    "text_encoder/*",
    "text_encoder_2/*",
    "text_encoder_3/*",
    "tokenizer/*",
    "tokenizer_2/*",
    "tokenizer_3/*",
    "transformer/*",
    "vae/*",
)
# SDXL: only the fp16 weight files (the repositories also hold fp32 copies and single-file checkpoints,
# which would double the download); the loaders pick the fp16 variant when it is what is on disk.
_SDXL_PATTERNS = (
    "model_index.json",
    "scheduler/*",
    "text_encoder/config.json",
    "text_encoder/model.fp16.safetensors",
    "text_encoder_2/config.json",
    "text_encoder_2/model.fp16.safetensors",
    "tokenizer/*",
    "tokenizer_2/*",
    "unet/config.json",
    "unet/diffusion_pytorch_model.fp16.safetensors",
    "vae/config.json",
    "vae/diffusion_pytorch_model.fp16.safetensors",
)
_OPENRAIL = "CreativeML OpenRAIL++-M (use-based restrictions; commercial use allowed; not gated)"
_SAI = "Stability AI Community License (free under USD 1M annual revenue; accept the terms on the hub first)"
_HF = ("config.json", "*.safetensors", "*.json", "*.txt", "*.model")

# Folder kinds: what must be present (relative paths; any one of each tuple).
LAYOUT: dict[str, tuple[tuple[str, ...], ...]] = {
    "sd3": (("model_index.json",), ("transformer/config.json",), ("vae/config.json",), ("text_encoder/config.json",)),
    "controlnet": (("config.json",), ("diffusion_pytorch_model.safetensors",)),
    "ip-adapter": (("ip-adapter.safetensors", "ip-adapter.bin"),),
    "transformers": (("config.json",), ("model.safetensors", "pytorch_model.bin")),
    "sdxl": (
        ("model_index.json",),
        ("unet/config.json",),
        ("unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.safetensors"),
        ("vae/config.json",),
        ("text_encoder/config.json",),
        ("text_encoder_2/config.json",),
        ("tokenizer/tokenizer_config.json",),
        ("tokenizer_2/tokenizer_config.json",),
    ),
    # A UNet-only checkpoint (SDXL inpainting): VAE, text encoders and tokenizers come from SHARES[name].
    "sdxl-unet": (
        ("unet/config.json",),
        ("unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.safetensors"),
    ),
    "sdxl-controlnet": (
        ("config.json",),
        ("diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.safetensors"),
    ),
    "sdxl-ip-adapter": (
        ("sdxl_models/ip-adapter_sdxl_vit-h.safetensors",),
        ("models/image_encoder/config.json",),
        ("models/image_encoder/model.safetensors", "models/image_encoder/pytorch_model.bin"),
    ),
    "vae": (("config.json",), ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors")),
}
# Checkpoints that hold only their own denoiser and use another checkpoint's VAE and text encoders.
SHARES: dict[str, str] = {"sdxl-inpaint": "sdxl-base"}
KIND: dict[str, str] = {}


def _add(
    name: str,
    kind: str,
    summary: str,
    licence: str,
    repo: str,
    revision: str,
    patterns: tuple[str, ...],
    size: int,
    gated: bool = False,
    notice: str = "",
) -> None:
    KIND[name] = kind
    if name in CATALOG:
        return
    register(
        ModelSpec(
            name=name,
            engine="diffusers",
            summary=summary,
            licence=licence,
            source=HubRepo(repo, revision, patterns, gated),
            size=size,
            notice=notice,
        )
    )


# The SD3.5 family shares one pipeline layout; components (VAE, text encoders) are shared in memory.
_add(
    "sd3.5-large",
    "sd3",
    "Stable Diffusion 3.5 Large (8B MMDiT), 1024² native; generate, edits, control, upscales",
    _SAI,
    "stabilityai/stable-diffusion-3.5-large",
    "main",
    _SD3_PATTERNS,
    27_900_000_000,
    gated=True,
)
_add(
    "sd3.5-large-turbo",
    "sd3",
    "Stable Diffusion 3.5 Large Turbo (distilled, 4 steps, no CFG); generate core/flash",
    _SAI,
    "stabilityai/stable-diffusion-3.5-large-turbo",
    "main",
    _SD3_PATTERNS,
    27_900_000_000,
    gated=True,
)
_add(
    "sd3.5-medium",
    "sd3",
    "Stable Diffusion 3.5 Medium (2.5B MMDiT-X); generate model=sd3.5-medium",
    _SAI,
    "stabilityai/stable-diffusion-3.5-medium",
    "main",
    _SD3_PATTERNS,
    16_500_000_000,
    gated=True,
)
for _kind, _use in (("canny", "sketch (edges)"), ("depth", "structure (depth)"), ("blur", "upscales (tile)")):
    _add(
        f"sd3.5-large-controlnet-{_kind}",
        "controlnet",
        f"SD3.5 Large ControlNet {_kind}; {_use}",
        _SAI,
        f"stabilityai/stable-diffusion-3.5-large-controlnet-{_kind}",
        "main",
        ("config.json", "diffusion_pytorch_model.safetensors"),
        8_610_000_000,
        gated=True,
    )
_add(
    "sd3.5-large-ip-adapter",
    "ip-adapter",
    "InstantX SD3.5 Large IP-Adapter (diffusers format); style guide/transfer",
    _SAI,
    "guiyrt/InstantX-SD3.5-Large-IP-Adapter-diffusers",
    "main",
    ("ip-adapter.safetensors",),
    1_900_000_000,
    notice="IP-Adapter for SD3.5 Large by the InstantX team.",
)
_add(
    "siglip-so400m",
    "transformers",
    "SigLIP so400m/14 @384 image encoder (the IP-Adapter's image tower)",
    "Apache-2.0",
    "google/siglip-so400m-patch14-384",
    "main",
    _HF,
    3_500_000_000,
)
_add(
    "owlv2-base",
    "transformers",
    "OWLv2 base/16 open-vocabulary detector: boxes for search prompts",
    "Apache-2.0",
    "google/owlv2-base-patch16-ensemble",
    "main",
    _HF,
    620_000_000,
)
_add(
    "sam-vit-base",
    "transformers",
    "Segment Anything ViT-B: box prompt -> pixel mask",
    "Apache-2.0",
    "facebook/sam-vit-base",
    "main",
    _HF,
    375_000_000,
)
_add(
    "depth-anything-v2-small",
    "transformers",
    "Depth Anything V2 Small: depth maps for structure control",
    "Apache-2.0",
    "depth-anything/Depth-Anything-V2-Small-hf",
    "main",
    _HF,
    100_000_000,
)
_add(
    "swin2sr-x4",
    "transformers",
    "Swin2SR real-world x4 super-resolution (transformers)",
    "Apache-2.0",
    "caidas/swin2SR-realworld-sr-x4-64-bsrgan-psnr",
    "main",
    _HF,
    48_000_000,
)

# SDXL 1.0: the second family (not gated, OpenRAIL++); chosen per tool when SD3.5 is absent or does not fit
# the device (pixelsmith/engines/diffusers/families.py). Licences as the repositories' model cards state them.
_add(
    "sdxl-base",
    "sdxl",
    "Stable Diffusion XL 1.0 base (2.6B UNet), 1024² native; every generative tool when SD3.5 is absent",
    _OPENRAIL,
    "stabilityai/stable-diffusion-xl-base-1.0",
    "main",
    _SDXL_PATTERNS,
    6_940_000_000,
)
_add(
    "sdxl-inpaint",
    "sdxl-unet",
    "SD-XL Inpainting 0.1 UNet (9 input channels); inpaint, erase, outpaint, search-and-replace/recolor",
    _OPENRAIL,
    "diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
    "main",
    ("model_index.json", "scheduler/*", "unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors"),
    5_140_000_000,
)
for _kind, _use in (("canny", "sketch (edges)"), ("depth", "structure, style-transfer (depth)")):
    _add(
        f"sdxl-controlnet-{_kind}",
        "sdxl-controlnet",
        f"SDXL ControlNet {_kind} (diffusers); {_use}",
        _OPENRAIL,
        f"diffusers/controlnet-{_kind}-sdxl-1.0",
        "main",
        ("config.json", "diffusion_pytorch_model.fp16.safetensors"),
        2_500_000_000,
    )
_add(
    "sdxl-controlnet-tile",
    "sdxl-controlnet",
    "xinsir SDXL tile ControlNet; creative and conservative upscale",
    "Apache-2.0 (as its model card states)",
    "xinsir/controlnet-tile-sdxl-1.0",
    "main",
    ("config.json", "diffusion_pytorch_model.safetensors"),
    2_500_000_000,
    notice="Tile ControlNet for SDXL by xinsir (Qi Xin).",
)
_add(
    "sdxl-ip-adapter",
    "sdxl-ip-adapter",
    "IP-Adapter for SDXL (ViT-H variant) with its OpenCLIP ViT-H/14 image encoder; style guide/transfer",
    "Apache-2.0",
    "h94/IP-Adapter",
    "main",
    (
        "sdxl_models/ip-adapter_sdxl_vit-h.safetensors",
        "models/image_encoder/config.json",
        "models/image_encoder/model.safetensors",
    ),
    3_230_000_000,
    notice="IP-Adapter by Hu Ye et al. (Tencent AI Lab), Apache-2.0.",
)
_add(
    "sdxl-vae-fp16-fix",
    "vae",
    "SDXL VAE fine-tuned not to overflow in float16 (used instead of the base VAE when the dtype is float16)",
    "MIT",
    "madebyollin/sdxl-vae-fp16-fix",
    "main",
    ("config.json", "diffusion_pytorch_model.safetensors"),
    335_000_000,
    notice="SDXL-VAE-FP16-Fix by Ollin Boer Bohan, MIT.",
)

# generate's model= roles -> the installed checkpoints that can play them, best first.
ROLE_MODELS: dict[str, tuple[str, ...]] = {
    "sd3.5-large": ("sd3.5-large",),
    "ultra": ("sd3.5-large",),
    "sd3.5-large-turbo": ("sd3.5-large-turbo", "sd3.5-large"),
    "sd3.5-flash": ("sd3.5-large-turbo", "sd3.5-medium", "sd3.5-large"),
    "core": ("sd3.5-large-turbo", "sd3.5-medium", "sd3.5-large"),
    "sd3.5-medium": ("sd3.5-medium", "sd3.5-large"),
}
