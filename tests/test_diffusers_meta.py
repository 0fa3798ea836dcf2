"""The real architectures at the service's real sizes, on the meta device (no weights, no memory).

Every component is built from its real config (tests/data/configs) with
``torch.device("meta")``: parameters have shapes but no storage, and a forward
pass computes only output shapes, so a 38-layer, 8 B-parameter MMDiT runs at
1024² in about a second on a CPU. These tests prove that the pieces each recipe
puts together fit: latent channels, patch sizes, joint-attention and pooled
dimensions, the text-embedding layout the SD3 pipeline builds, the SD3.5 Large
ControlNets feeding the Large transformer, the SigLIP so400m -> InstantX
IP-Adapter -> transformer path, inpaint masks at latent size, the creative-upscale
tiles, and the scheduler settings per checkpoint.

One step cannot run on meta tensors: copying weights (``load_state_dict``, used by
``SD3ControlNetModel._get_pos_embed_from_transformer`` to give the ControlNet the
transformer's position embedding) fails with "Cannot copy out of meta tensor".
That step is checked by comparing the two state dicts' keys and shapes instead, and
the forward shares the transformer's module, which is what the copy amounts to.
"""

from __future__ import annotations

import contextlib
import math
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

from diffusers_helpers import CONFIGS, cfg, meta_empty, quiet_diffusers  # noqa: E402,F401  (fixture)

from pixelsmith.engines.diffusers import pipelines as P  # noqa: E402
from pixelsmith.engines.diffusers.recipes import _common as K  # noqa: E402
from pixelsmith.engines.diffusers.recipes.creative_upscale import output_size  # noqa: E402

META = torch.device("meta")
BF16 = torch.bfloat16
CLIP_TOKENS, T5_TOKENS = 77, 256  # the SD3 pipeline's defaults (max_sequence_length=256)


empty = meta_empty
pytestmark = pytest.mark.usefixtures("quiet_diffusers")


@pytest.fixture(scope="module")
def large():
    with META:
        return diffusers.SD3Transformer2DModel.from_config(cfg("sd3.5-large/transformer/config.json")).to(BF16).eval()


@pytest.fixture(scope="module")
def medium():
    with META:
        return diffusers.SD3Transformer2DModel.from_config(cfg("sd3.5-medium/transformer/config.json")).to(BF16).eval()


@pytest.fixture(scope="module")
def vae():
    with META:
        return diffusers.AutoencoderKL.from_config(cfg("sd3.5-large/vae/config.json")).to(BF16).eval()


def stand_in(transformer, vae) -> SimpleNamespace:
    """What pipelines.py's size helpers read from a pipeline, with the real configs."""
    return SimpleNamespace(
        transformer=transformer, vae=vae, vae_scale_factor=2 ** (len(vae.config.block_out_channels) - 1)
    )


@contextlib.contextmanager
def shallow(transformer, keep: tuple[int, ...] = (0, -1)):
    """The same transformer with only some of its blocks (same widths, the first and the last, which
    differs: context_pre_only): the many-size sweeps stay fast; full depth runs once per model."""
    saved = transformer.transformer_blocks
    transformer.transformer_blocks = torch.nn.ModuleList([saved[i] for i in keep])
    try:
        yield transformer
    finally:
        transformer.transformer_blocks = saved


def forward(transformer, latents, controls=None, **kwargs):
    b = latents.shape[0]
    with torch.inference_mode():
        return transformer(
            hidden_states=latents,
            encoder_hidden_states=empty(b, CLIP_TOKENS + T5_TOKENS, transformer.config.joint_attention_dim),
            pooled_projections=empty(b, transformer.config.pooled_projection_dim),
            timestep=torch.empty(b, device=META),
            block_controlnet_hidden_states=controls,
            return_dict=False,
            **kwargs,
        )[0]


# --- text encoders -> the transformer's joint attention and pooled projection -----------------------


def test_text_encoders_build_the_embeddings_the_transformers_take(large, medium):
    """CLIP-L + bigG hidden states (768 + 1280), zero-padded to T5's 4096, then T5's tokens appended;
    pooled = CLIP-L + bigG projections (768 + 1280): the SD3 pipeline's layout, at real widths."""
    base = CONFIGS / "sd3.5-large"
    with META:
        clip_l = transformers.CLIPTextModelWithProjection(
            transformers.AutoConfig.from_pretrained(base / "text_encoder")
        )
        clip_g = transformers.CLIPTextModelWithProjection(
            transformers.AutoConfig.from_pretrained(base / "text_encoder_2")
        )
        t5 = transformers.T5EncoderModel(transformers.AutoConfig.from_pretrained(base / "text_encoder_3"))
    ids = torch.zeros(2, CLIP_TOKENS, dtype=torch.long, device=META)
    with torch.inference_mode():
        out_l = clip_l(ids, output_hidden_states=True)
        out_g = clip_g(ids, output_hidden_states=True)
        t5_out = t5(torch.zeros(2, T5_TOKENS, dtype=torch.long, device=META))[0]
    clip = torch.cat([out_l.hidden_states[-2], out_g.hidden_states[-2]], dim=-1)
    assert clip.shape == (2, CLIP_TOKENS, 768 + 1280)
    clip = torch.nn.functional.pad(clip, (0, t5_out.shape[-1] - clip.shape[-1]))
    joint = torch.cat([clip, t5_out], dim=-2)
    pooled = torch.cat([out_l.text_embeds, out_g.text_embeds], dim=-1)
    for tr in (large, medium):
        assert joint.shape == (2, CLIP_TOKENS + T5_TOKENS, tr.config.joint_attention_dim)
        assert pooled.shape == (2, tr.config.pooled_projection_dim)
        assert tr.context_embedder.in_features == joint.shape[-1]
    # Without T5 (the planner's drop-T5 plan) the pipeline zero-fills T5's part: same shapes.
    assert cfg("sd3.5-large/tokenizer_3/tokenizer_config.json")["model_max_length"] >= T5_TOKENS
    assert cfg("sd3.5-large/tokenizer/tokenizer_config.json")["model_max_length"] == CLIP_TOKENS


# --- transformer x VAE at the native size and the nine aspect ratios --------------------------------


def test_native_1024_full_depth(medium, vae):
    """Medium at full depth here; Large runs at full depth with its ControlNet below."""
    tr = medium
    pipe = stand_in(tr, vae)
    assert P.native_side(pipe) == 1024 and P.granularity(pipe) == 16
    assert vae.config.latent_channels == tr.config.in_channels == tr.config.out_channels == 16
    with torch.inference_mode():
        latents = vae.encode(empty(1, 3, 1024, 1024)).latent_dist.mode()
    assert latents.shape == (1, 16, 128, 128)
    out = forward(tr, torch.cat([latents, latents]))  # a CFG batch
    assert out.shape == (2, 16, 128, 128)
    with torch.inference_mode():
        image = vae.decode(out[:1], return_dict=False)[0]
    assert image.shape == (1, 3, 1024, 1024)


def test_turbo_is_the_large_architecture():
    assert cfg("sd3.5-large-turbo/transformer/config.json") == cfg("sd3.5-large/transformer/config.json")
    assert cfg("sd3.5-large-turbo/vae/config.json") == cfg("sd3.5-large/vae/config.json")


@pytest.mark.parametrize("which", ["large", "medium"])
def test_nine_aspect_ratios(which, request, vae):
    tr = request.getfixturevalue(which)
    pipe = stand_in(tr, vae)
    keep = (0, 13, -1) if which == "medium" else (0, -1)  # medium: block 0 has dual attention, 13 not
    with shallow(tr, keep):
        for ratio in P.NATIVE_SIZES:
            w, h = P.size_for_aspect(pipe, ratio)
            assert (w, h) == P.NATIVE_SIZES[ratio]
            assert abs(w * h / 1024**2 - 1) < 0.1 and w % 64 == 0 and h % 64 == 0
            lh, lw = h // pipe.vae_scale_factor, w // pipe.vae_scale_factor
            assert max(lh, lw) // tr.config.patch_size <= tr.config.pos_embed_max_size
            assert forward(tr, empty(1, 16, lh, lw)).shape == (1, 16, lh, lw), ratio


# --- SD3.5 Large ControlNets -> the Large transformer ------------------------------------------------


def test_the_three_controlnets_share_one_architecture():
    canny = cfg("sd3.5-large-controlnet-canny/config.json")
    assert cfg("sd3.5-large-controlnet-depth/config.json") == canny == cfg("sd3.5-large-controlnet-blur/config.json")


def test_controlnet_fits_the_large_transformer_full_depth(large, vae):
    conf = cfg("sd3.5-large-controlnet-canny/config.json")
    with META:
        net = diffusers.SD3ControlNetModel.from_config(conf).to(BF16).eval()
    # The pipeline gives these ControlNets (use_pos_embed=False) a copy of the transformer's position
    # embedding; copying weights does not work on meta, so compare what would be copied, then share it.
    assert conf["use_pos_embed"] is False and net.pos_embed is None
    from diffusers.models.embeddings import PatchEmbed

    with META:
        fresh = PatchEmbed(
            height=net.config.sample_size,
            width=net.config.sample_size,
            patch_size=net.config.patch_size,
            in_channels=net.config.in_channels,
            embed_dim=net.config.num_attention_heads * net.config.attention_head_dim,
            pos_embed_max_size=large.config.pos_embed_max_size,
        )
    src = {k: v.shape for k, v in large.pos_embed.state_dict().items()}
    assert {k: v.shape for k, v in fresh.state_dict().items()} == src
    net.pos_embed = large.pos_embed
    assert net.config.num_attention_heads * net.config.attention_head_dim == large.inner_dim
    assert net.config.pooled_projection_dim == large.config.pooled_projection_dim
    assert len(large.transformer_blocks) % len(net.transformer_blocks) == 0  # one control every 2 blocks
    size = (2, 16, 128, 128)  # a CFG batch at 1024²
    x = empty(*size)
    with torch.inference_mode():
        controls = net(
            hidden_states=x,
            controlnet_cond=empty(*size),  # the control image's VAE latents (16 channels)
            conditioning_scale=0.9,
            pooled_projections=empty(2, net.config.pooled_projection_dim),
            timestep=torch.empty(2, device=META),
            return_dict=False,
        )[0]
    tokens = (size[2] // 2) * (size[3] // 2)
    assert len(controls) == net.config.num_layers and controls[0].shape == (2, tokens, large.inner_dim)
    out = forward(large, x, controls)  # all 38 blocks, each odd one taking a control residual
    assert out.shape == size
    with torch.inference_mode():
        assert vae.decode(out[:1], return_dict=False)[0].shape == (1, 3, 1024, 1024)


# --- SigLIP so400m -> InstantX IP-Adapter -> the Large transformer -----------------------------------


def _sdpa_like_fused_kernels(real):
    """The meta kernel of scaled_dot_product_attention returns a (B, H, L, D)-contiguous tensor; the
    CPU/CUDA fused kernels return (B, L, H, D) memory, which the SD3 IP-Adapter processor relies on
    (``.transpose(1, 2).view(...)``). Give meta outputs the fused kernels' layout."""

    def sdpa(*args, **kwargs):
        out = real(*args, **kwargs)
        return out.transpose(1, 2).contiguous().transpose(1, 2) if out.device.type == "meta" else out

    return sdpa


def test_ip_adapter_embedding_sizes(large, monkeypatch):
    monkeypatch.setattr(
        torch.nn.functional,
        "scaled_dot_product_attention",
        _sdpa_like_fused_kernels(torch.nn.functional.scaled_dot_product_attention),
    )
    from diffusers.models.attention_processor import SD3IPAdapterJointAttnProcessor2_0
    from diffusers.models.embeddings import IPAdapterTimeImageProjection

    shapes = cfg("sd3.5-large-ip-adapter/ip-adapter.shapes.json")
    vision = transformers.AutoConfig.from_pretrained(CONFIGS / "siglip-so400m").vision_config
    pre = cfg("siglip-so400m/preprocessor_config.json")["size"]
    with META:
        siglip = transformers.SiglipVisionModel(vision).to(BF16).eval()
        proj = IPAdapterTimeImageProjection(**{k: v for k, v in shapes["image_proj"].items() if k != "class"}).to(BF16)
        a = shapes["attn_processor"]
        procs = {
            name: SD3IPAdapterJointAttnProcessor2_0(
                hidden_size=a["hidden_size"],
                ip_hidden_states_dim=a["ip_hidden_states_dim"],
                head_dim=a["head_dim"],
                timesteps_emb_dim=a["timesteps_emb_dim"],
            ).to(BF16)
            for name in large.attn_processors
        }
    assert a["layers"] == len(large.transformer_blocks) == len(procs)
    with torch.inference_mode():
        # the SD3 pipeline's encode_image: the penultimate hidden states
        embeds = siglip(empty(1, 3, pre["height"], pre["width"]), output_hidden_states=True).hidden_states[-2]
    assert embeds.shape == (1, (384 // 14) ** 2, 1152)
    assert shapes["image_proj"]["embed_dim"] == vision.hidden_size
    assert shapes["image_proj"]["output_dim"] == large.inner_dim == a["hidden_size"]
    saved = large.attn_processors
    large.set_attn_processor(procs)
    large.image_proj = proj
    try:
        with shallow(large):
            kwargs = {"ip_adapter_image_embeds": embeds.repeat(2, 1, 1)}
            out = forward(large, empty(2, 16, 128, 128), joint_attention_kwargs=kwargs)
        assert out.shape == (2, 16, 128, 128)
        with torch.inference_mode():
            tokens, temb = proj(embeds, torch.empty(1, device=META))
        assert tokens.shape == (1, shapes["image_proj"]["num_queries"], large.inner_dim)
        assert temb.shape[-1] == a["timesteps_emb_dim"]
    finally:
        large.image_proj = None
        large.set_attn_processor(saved)


# --- inpaint masks and the creative-upscale tiles ---------------------------------------------------


@pytest.mark.parametrize(
    "image, box",
    [((1024, 1024), (400, 400, 600, 600)), ((3000, 2000), (0, 0, 3000, 200)), ((640, 1536), (100, 700, 500, 1500))],
)
def test_inpaint_crops_fit(image, box, large, vae):
    import numpy as np

    pipe = stand_in(large, vae)
    w, h = image
    mask = np.zeros((h, w), np.float32)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = 1
    cx0, cy0, cx1, cy1 = K.crop_box(mask, P.native_side(pipe) // 2)
    assert cx0 <= x0 and cy0 <= y0 and cx1 >= x1 and cy1 >= y1
    size = P.working_size(pipe, cx1 - cx0, cy1 - cy0)
    g = P.granularity(pipe)
    assert size[0] % g == 0 and size[1] % g == 0 and 0.8 < size[0] * size[1] / 1024**2 < 1.25
    lh, lw = size[1] // 8, size[0] // 8
    # StableDiffusion3InpaintPipeline.prepare_mask_latents: the mask interpolated to latent size.
    m = torch.nn.functional.interpolate(empty(1, 1, size[1], size[0]), size=(lh, lw))
    with torch.inference_mode():
        latents = vae.encode(empty(1, 3, size[1], size[0])).latent_dist.mode()
    assert latents.shape == (1, 16, lh, lw) and m.shape[-2:] == latents.shape[-2:]
    assert large.config.in_channels == 16  # blended in latent space, not a 33-channel inpaint model
    with shallow(large):
        assert forward(large, latents).shape == latents.shape


@pytest.mark.parametrize("src", [(1024, 1024), (1000, 750), (640, 1536)])
def test_creative_upscale_tiles(src, large, vae):
    pipe = stand_in(large, vae)
    side, g = P.native_side(pipe), P.granularity(pipe)
    big = output_size(*src)
    assert max(big) == 4096
    plan = K.tiles(big, side, side // 8)
    shapes = set()
    for x0, y0, x1, y1 in plan:
        tw, th = x1 - x0, y1 - y0
        size = (max(g, tw // g * g), max(g, th // g * g))  # refine_tiles' rounding
        assert size[0] <= side and size[1] <= side
        shapes.add(size)
    covered = {(x, y) for x0, y0, x1, y1 in plan for x, y in ((x0, y0), (x1 - 1, y1 - 1))}
    assert (0, 0) in covered and (big[0] - 1, big[1] - 1) in covered
    with shallow(large):
        for w, h in shapes:
            assert forward(large, empty(1, 16, h // 8, w // 8)).shape == (1, 16, h // 8, w // 8)


# --- schedulers per checkpoint ----------------------------------------------------------------------


@pytest.mark.parametrize("base", ["sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium"])
def test_scheduler_settings(base, monkeypatch):
    monkeypatch.delenv("PIXELSMITH_DIFFUSION_STEPS", raising=False)
    conf = cfg(f"{base}/scheduler/scheduler_config.json")
    sched = diffusers.FlowMatchEulerDiscreteScheduler.from_config(conf)
    assert sched.config.shift == 3.0 and sched.config.num_train_timesteps == 1000
    steps = P.steps_for(base)
    assert steps == {"sd3.5-large": 28, "sd3.5-large-turbo": 4, "sd3.5-medium": 40}[base]
    assert K.cfg_for(base) == {"sd3.5-large": 4.0, "sd3.5-large-turbo": 1.0, "sd3.5-medium": 4.5}[base]
    sched.set_timesteps(steps)
    assert len(sched.timesteps) == steps and math.isclose(float(sched.sigmas[0]), 1.0)
    # img2img_start (the ControlNet pipelines' strength) reads the shift from this config.
    assert conf["shift"] == sched.config.shift


# --- the preprocessors' own models, at their real input sizes ---------------------------------------


def test_grounding_depth_and_upscaler_models_run_on_meta():
    owl_conf = transformers.AutoConfig.from_pretrained(CONFIGS / "owlv2-base")
    sam_conf = transformers.AutoConfig.from_pretrained(CONFIGS / "sam-vit-base")
    da_conf = transformers.AutoConfig.from_pretrained(CONFIGS / "depth-anything-v2-small")
    sr_conf = transformers.AutoConfig.from_pretrained(CONFIGS / "swin2sr-x4")
    with META:
        owl_vision = transformers.Owlv2VisionModel(owl_conf.vision_config).eval()
        sam = transformers.SamModel(sam_conf).eval()
        depth = transformers.DepthAnythingForDepthEstimation(da_conf).eval()
        sr = transformers.Swin2SRForImageSuperResolution(sr_conf).eval()
    with torch.inference_mode():
        owl = owl_vision(torch.empty(1, 3, 960, 960, device=META)).last_hidden_state
        assert owl.shape == (1, (960 // 16) ** 2 + 1, owl_conf.vision_config.hidden_size)
        emb = sam.get_image_embeddings(torch.empty(1, 3, 1024, 1024, device=META))
        assert emb.shape == (1, 256, 64, 64)
        d = depth(pixel_values=torch.empty(1, 3, 518, 686, device=META)).predicted_depth
        assert d.shape[-2:] == (518, 686)
        up = sr(torch.empty(1, 3, 64, 64, device=META)).reconstruction
        assert up.shape == (1, 3, 256, 256)
