"""Tiny random-weight stand-ins for every model the diffusers engine uses.

Tests and ``bench/diffusion_gpu.py --smoke`` build these offline, in seconds,
with the same classes and folder layouts as the real hub repositories, so the
loading code, the recipes and the model manager run for real on a CPU. The
outputs are noise-like pictures: they prove wiring, sizes, seeds and masks,
never quality. Like diffusers' own test suite, nothing is downloaded: even the
tokenizers are built here from a small word list.
"""

from __future__ import annotations

import json
import pathlib

import torch

WORDS = (
    "a an the of on in with and to red blue green yellow pink white black orange purple cat dog man woman "
    "photo picture painting sketch drawing sky tree house car road city sea beach forest mountain jacket "
    "sweater hat shirt ball cup background clean empty detailed sharp high quality blurry ugly style "
    "bright dark night day sunset lamp object subject main person face"
).split()


def _word_tokenizer(bos: str | None, eos: str, pad: str, max_length: int):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = [t for t in (pad, bos, eos, "<unk>") if t]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(specials))}
    for w in WORDS:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    single = f"{bos} $A {eos}" if bos else f"$A {eos}"
    tok.post_processor = processors.TemplateProcessing(
        single=single, special_tokens=[(t, vocab[t]) for t in (bos, eos) if t]
    )
    return (
        PreTrainedTokenizerFast(
            tokenizer_object=tok,
            bos_token=bos,
            eos_token=eos,
            pad_token=pad,
            unk_token="<unk>",
            model_max_length=max_length,
        ),
        len(vocab),
        vocab,
    )


def clip_tokenizer():
    return _word_tokenizer("<|startoftext|>", "<|endoftext|>", "<|endoftext|>", 77)


def t5_tokenizer():
    return _word_tokenizer(None, "</s>", "<pad>", 256)


def _tiny_vae(**family):
    """A two-level, 8-channel AutoencoderKL; ``family`` sets what differs (latent channels, quant convs, factors)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        sample_size=64,
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 8),
        layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=2,
        **family,
    )


def _clip_config(vocab_size: int, eos_id: int):
    """The tiny CLIP text encoder's config, shared by the projected (SD3, SDXL's second) and plain encoders."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        projection_dim=32,
        bos_token_id=0,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
        max_position_embeddings=77,
        hidden_act="gelu",
    )


def _clip_text(vocab_size: int, eos_id: int, seed: int):
    from transformers import CLIPTextModelWithProjection

    torch.manual_seed(seed)
    return CLIPTextModelWithProjection(_clip_config(vocab_size, eos_id))


TRANSFORMER = dict(
    sample_size=32,
    patch_size=2,
    in_channels=16,
    num_layers=2,
    attention_head_dim=8,
    num_attention_heads=4,
    caption_projection_dim=32,
    joint_attention_dim=32,
    pooled_projection_dim=64,
    out_channels=16,
)


def build_sd3(path: str | pathlib.Path, seed: int = 0) -> pathlib.Path:
    """A Stable Diffusion 3 pipeline folder (model_index.json + subfolders), as the hub lays it out."""
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )
    from transformers import T5Config, T5EncoderModel

    path = pathlib.Path(path)
    tok, n_clip, vocab = clip_tokenizer()
    tok3, n_t5, _ = t5_tokenizer()
    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(**TRANSFORMER)
    torch.manual_seed(seed + 1)
    vae = _tiny_vae(
        latent_channels=16, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035
    )
    torch.manual_seed(seed + 2)
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=n_t5,
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            decoder_start_token_id=0,
            pad_token_id=0,
            eos_token_id=1,
        )
    )
    eos = vocab["<|endoftext|>"]
    pipe = StableDiffusion3Pipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        text_encoder=_clip_text(n_clip, eos, seed + 3),
        tokenizer=tok,
        text_encoder_2=_clip_text(n_clip, eos, seed + 4),
        tokenizer_2=clip_tokenizer()[0],
        text_encoder_3=t5,
        tokenizer_3=tok3,
    )
    pipe.save_pretrained(path)
    return path


def build_sd3_controlnet(path: str | pathlib.Path, seed: int = 0) -> pathlib.Path:
    """An SD3 ControlNet matching :data:`TRANSFORMER`, laid out like the SD3.5 Large ControlNet repos."""
    from diffusers import SD3ControlNetModel

    torch.manual_seed(seed)
    # The SD3.5 Large ControlNets (canny, depth, blur) have no position embedding or context
    # embedder of their own and keep the pooled projection: mirror that configuration.
    net = SD3ControlNetModel(
        **{
            **TRANSFORMER,
            "num_layers": 1,
            "joint_attention_dim": None,
            "pos_embed_type": None,
            "use_pos_embed": False,
            "force_zeros_for_pooled_projection": False,
            "pos_embed_max_size": None,
        }
    )
    # Random init leaves the zero-initialised output projections at zero, which would make the
    # control a no-op; give them small weights so a changed control image changes the result.
    with torch.no_grad():
        for block in net.controlnet_blocks:
            block.weight.normal_(0, 0.5)
        net.pos_embed_input.proj.weight.normal_(0, 0.5)
    net.save_pretrained(path)
    return pathlib.Path(path)


def build_ip_adapter(path: str | pathlib.Path, seed: int = 0) -> pathlib.Path:
    """An SD3 IP-Adapter (InstantX layout: one weight file) for :data:`TRANSFORMER`."""
    from diffusers.models.attention_processor import SD3IPAdapterJointAttnProcessor2_0
    from diffusers.models.embeddings import IPAdapterTimeImageProjection
    from safetensors.torch import save_file

    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    inner = TRANSFORMER["attention_head_dim"] * TRANSFORMER["num_attention_heads"]
    # diffusers' loader assumes 4 resampler blocks and 64-wide heads; everything else is tiny.
    proj = IPAdapterTimeImageProjection(
        embed_dim=SIGLIP["hidden_size"],
        output_dim=inner,
        hidden_dim=64,
        depth=4,
        dim_head=64,
        heads=1,
        num_queries=4,
        timestep_in_dim=32,
    )
    tensors = {f"image_proj.{k}": v for k, v in proj.state_dict().items()}
    for i in range(TRANSFORMER["num_layers"]):
        proc = SD3IPAdapterJointAttnProcessor2_0(
            hidden_size=inner,
            ip_hidden_states_dim=inner,
            head_dim=TRANSFORMER["attention_head_dim"],
            timesteps_emb_dim=64,
        )
        with torch.no_grad():
            for p in proc.parameters():
                if p.dim() == 2:
                    p.normal_(0, 0.5)
        tensors.update({f"ip_adapter.{i}.{k}": v for k, v in proc.state_dict().items()})
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path / "ip-adapter.safetensors"))
    return path


SIGLIP = dict(
    hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=32, patch_size=8
)


def build_siglip(path: str | pathlib.Path, seed: int = 0) -> pathlib.Path:
    """The IP-Adapter's image encoder (SigLIP vision tower + its image processor)."""
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(seed)
    SiglipVisionModel(SiglipVisionConfig(**SIGLIP)).save_pretrained(path)
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return pathlib.Path(path)


def build_owlv2(path: str | pathlib.Path, seed: int = 0) -> pathlib.Path:
    """An OWLv2 open-vocabulary detector with its processor."""
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor

    tok, n, vocab = clip_tokenizer()
    torch.manual_seed(seed)
    cfg = Owlv2Config(
        text_config=dict(
            vocab_size=n,
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=16,
            bos_token_id=0,
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=64,
            patch_size=16,
        ),
        projection_dim=32,
    )
    Owlv2ForObjectDetection(cfg).save_pretrained(path)
    tok.model_max_length = 16
    tok.save_pretrained(path)
    Owlv2ImageProcessor(size={"height": 64, "width": 64}).save_pretrained(path)
    return pathlib.Path(path)


def build_sam(path: str | pathlib.Path, seed: int = 0) -> pathlib.Path:
    """A Segment Anything model and processor working at 64x64."""
    from transformers import SamConfig, SamImageProcessor, SamModel

    torch.manual_seed(seed)
    cfg = SamConfig(
        vision_config=dict(
            hidden_size=32,
            output_channels=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=64,
            patch_size=8,
            mlp_dim=37,
            global_attn_indexes=[1],
            window_size=4,
            num_pos_feats=8,
        ),
        prompt_encoder_config=dict(hidden_size=16, image_size=64, patch_size=8, mask_input_channels=4),
        mask_decoder_config=dict(
            hidden_size=16, mlp_dim=32, num_hidden_layers=2, num_attention_heads=2, iou_head_hidden_dim=16
        ),
    )
    SamModel(cfg).save_pretrained(path)
    SamImageProcessor(
        size={"longest_edge": 64},
        pad_size={"height": 64, "width": 64},
        mask_size={"longest_edge": 16},
        mask_pad_size={"height": 16, "width": 16},
    ).save_pretrained(path)
    return pathlib.Path(path)


def build_depth_anything(path: str | pathlib.Path, seed: int = 0) -> pathlib.Path:
    """A Depth Anything (v2 layout) monocular depth estimator and its processor."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, DPTImageProcessor

    torch.manual_seed(seed)
    cfg = DepthAnythingConfig(
        backbone_config=dict(
            model_type="dinov2",
            hidden_size=16,
            num_hidden_layers=4,
            num_attention_heads=2,
            intermediate_size=32,
            image_size=28,
            patch_size=14,
            out_indices=[1, 2, 3, 4],
            reshape_hidden_states=False,
        ),
        reassemble_hidden_size=16,
        neck_hidden_sizes=[8, 8, 16, 16],
        fusion_hidden_size=8,
        head_hidden_size=8,
        reassemble_factors=[4, 2, 1, 0.5],
    )
    DepthAnythingForDepthEstimation(cfg).save_pretrained(path)
    DPTImageProcessor(
        size={"height": 28, "width": 28}, keep_aspect_ratio=True, ensure_multiple_of=14, do_pad=False
    ).save_pretrained(path)
    return pathlib.Path(path)


def build_swin2sr(path: str | pathlib.Path, seed: int = 0) -> pathlib.Path:
    """A x4 Swin2SR super-resolution model and its processor."""
    from transformers import Swin2SRConfig, Swin2SRForImageSuperResolution, Swin2SRImageProcessor

    torch.manual_seed(seed)
    cfg = Swin2SRConfig(
        image_size=32,
        patch_size=1,
        embed_dim=16,
        depths=[1],
        num_heads=[2],
        window_size=4,
        upscale=4,
        upsampler="pixelshuffle",
        img_range=1.0,
    )
    Swin2SRForImageSuperResolution(cfg).save_pretrained(path)
    Swin2SRImageProcessor(pad_size=4).save_pretrained(path)
    return pathlib.Path(path)


# --- SDXL ----------------------------------------------------------------------------------------------
# diffusers' own SDXL fast tests' dummy UNet: two levels, text_time conditioning, two text encoders whose
# hidden states concatenate to cross_attention_dim (32 + 32) and add-embedding input 6 x 8 (time ids) + 32
# (the second encoder's pooled projection). sample_size 32 with a 2-level VAE: native side 64 px, like the
# tiny SD3 pipeline.
UNET = dict(
    block_out_channels=(32, 64),
    layers_per_block=2,
    sample_size=32,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=(2, 4),
    use_linear_projection=True,
    addition_embed_type="text_time",
    addition_time_embed_dim=8,
    transformer_layers_per_block=(1, 2),
    projection_class_embeddings_input_dim=6 * 8 + 32,
    cross_attention_dim=64,
    norm_num_groups=1,
)


def _clip_text_plain(vocab_size: int, eos_id: int, seed: int):
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    return CLIPTextModel(_clip_config(vocab_size, eos_id))


def _xl_unet(seed: int, in_channels: int = 4):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(**{**UNET, "in_channels": in_channels})


def build_sdxl(path: str | pathlib.Path, seed: int = 0) -> pathlib.Path:
    """A Stable Diffusion XL pipeline folder (model_index.json + subfolders), as the hub lays it out."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    path = pathlib.Path(path)
    tok, n_clip, vocab = clip_tokenizer()
    eos = vocab["<|endoftext|>"]
    torch.manual_seed(seed + 1)
    vae = _tiny_vae(latent_channels=4, scaling_factor=0.13025)
    pipe = StableDiffusionXLPipeline(
        unet=_xl_unet(seed),
        vae=vae,
        # The base repository's scheduler settings (tests/data/configs/sdxl-base/scheduler).
        scheduler=EulerDiscreteScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            steps_offset=1,
            timestep_spacing="leading",
        ),
        text_encoder=_clip_text_plain(n_clip, eos, seed + 3),
        tokenizer=tok,
        text_encoder_2=_clip_text(n_clip, eos, seed + 4),
        tokenizer_2=clip_tokenizer()[0],
        add_watermarker=False,
    )
    pipe.save_pretrained(path)
    return path


def build_sdxl_inpaint(path: str | pathlib.Path, seed: int = 0) -> pathlib.Path:
    """The SD-XL inpainting checkpoint as pixelsmith pulls it: model_index, scheduler and a 9-channel UNet."""
    from diffusers import EulerDiscreteScheduler

    path = pathlib.Path(path)
    unet = _xl_unet(seed, in_channels=9)  # 4 noisy latents + 4 masked-image latents + 1 mask
    unet.save_pretrained(path / "unet")
    EulerDiscreteScheduler(beta_schedule="scaled_linear", steps_offset=1).save_pretrained(path / "scheduler")
    (path / "model_index.json").write_text(
        json.dumps({"_class_name": "StableDiffusionXLInpaintPipeline", "unet": ["diffusers", "UNet2DConditionModel"]})
    )
    return path


def build_sdxl_controlnet(path: str | pathlib.Path, seed: int = 0) -> pathlib.Path:
    """An SDXL ControlNet matching :data:`UNET` (the diffusers and xinsir repositories' single-folder layout)."""
    from diffusers import ControlNetModel

    torch.manual_seed(seed)
    keys: tuple[str, ...] = ("block_out_channels", "layers_per_block", "in_channels", "down_block_types")
    keys += ("attention_head_dim",)
    keys += ("use_linear_projection", "addition_embed_type", "addition_time_embed_dim", "transformer_layers_per_block")
    keys += ("projection_class_embeddings_input_dim", "cross_attention_dim", "norm_num_groups")
    # One stride-2 step in the conditioning embedding: control pixels / 2 = the tiny VAE's latent size.
    net = ControlNetModel(**{k: UNET[k] for k in keys}, conditioning_embedding_out_channels=(16, 32))
    with torch.no_grad():  # the zero-initialised outputs would make the control a no-op (see build_sd3_controlnet)
        for block in [*net.controlnet_down_blocks, net.controlnet_mid_block, net.controlnet_cond_embedding.conv_out]:
            block.weight.normal_(0, 0.5)
    net.save_pretrained(path)
    return pathlib.Path(path)


CLIP_VISION = dict(
    hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=32, patch_size=8
)


def build_sdxl_ip_adapter(path: str | pathlib.Path, seed: int = 0) -> pathlib.Path:
    """h94/IP-Adapter's SDXL layout: ``sdxl_models/ip-adapter_sdxl_vit-h.safetensors`` (image projection + one
    to_k_ip/to_v_ip pair per cross-attention layer, keyed 1, 3, 5, ... as the diffusers loader reads them) and the
    CLIP vision encoder with projection in ``models/image_encoder``."""
    from safetensors.torch import save_file
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    path = pathlib.Path(path)
    torch.manual_seed(seed)
    enc_dir = path / "models" / "image_encoder"
    CLIPVisionModelWithProjection(CLIPVisionConfig(**CLIP_VISION, projection_dim=24)).save_pretrained(enc_dir)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(enc_dir)
    cross, tokens, embed = int(UNET["cross_attention_dim"]), 4, 24  # type: ignore[call-overload]
    g = torch.Generator().manual_seed(seed)
    tensors = {
        "image_proj.proj.weight": torch.randn(cross * tokens, embed, generator=g) * 0.5,
        "image_proj.proj.bias": torch.zeros(cross * tokens),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    for i, hidden in enumerate(xl_cross_attention_widths(UNET)):
        for kv in ("to_k_ip", "to_v_ip"):
            tensors[f"ip_adapter.{1 + 2 * i}.{kv}.weight"] = torch.randn(hidden, cross, generator=g) * 0.5
    (path / "sdxl_models").mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path / "sdxl_models" / "ip-adapter_sdxl_vit-h.safetensors"))
    return path


def xl_cross_attention_widths(unet_config: dict) -> list[int]:
    """The hidden width of each cross-attention (attn2) layer of a UNet, in ``attn_processors`` order."""
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        unet = UNet2DConditionModel(**unet_config)
    out = unet.config.block_out_channels
    widths = []
    for name in unet.attn_processors:
        if not name.endswith("attn2.processor"):
            continue
        if name.startswith("mid_block"):
            widths.append(out[-1])
        elif name.startswith("up_blocks"):
            widths.append(list(reversed(out))[int(name.split(".")[1])])
        else:
            widths.append(out[int(name.split(".")[1])])
    return widths


# Catalogue model name -> builder, for tests and the smoke benchmark.
BUILDERS = {
    "sd3.5-large": build_sd3,
    "sd3.5-large-controlnet-canny": build_sd3_controlnet,
    "sd3.5-large-controlnet-depth": build_sd3_controlnet,
    "sd3.5-large-controlnet-blur": build_sd3_controlnet,
    "sd3.5-large-ip-adapter": build_ip_adapter,
    "siglip-so400m": build_siglip,
    "owlv2-base": build_owlv2,
    "sam-vit-base": build_sam,
    "depth-anything-v2-small": build_depth_anything,
    "swin2sr-x4": build_swin2sr,
    "sdxl-base": build_sdxl,
    "sdxl-inpaint": build_sdxl_inpaint,
    "sdxl-controlnet-canny": build_sdxl_controlnet,
    "sdxl-controlnet-depth": build_sdxl_controlnet,
    "sdxl-controlnet-tile": build_sdxl_controlnet,
    "sdxl-ip-adapter": build_sdxl_ip_adapter,
}
SD3_NAMES = tuple(n for n in BUILDERS if not n.startswith("sdxl"))
SDXL_NAMES = tuple(n for n in BUILDERS if not n.startswith("sd3.5"))


def build_all(root: str | pathlib.Path, names=None) -> dict[str, pathlib.Path]:
    """Every tiny model (``names``: a subset, e.g. :data:`SDXL_NAMES` for the SDXL family and the shared ones)."""
    root = pathlib.Path(root)
    out = {}
    for i, name in enumerate(names or BUILDERS):
        out[name] = BUILDERS[name](root / name, seed=i * 10)
    (root / "tiny.json").write_text(json.dumps(sorted(out)))
    return out
