"""SDXL 1.0 at its real sizes on the meta device (no weights, no memory), from tests/data/configs/sdxl-*.

The same kind of proof as test_diffusers_meta.py for SD3.5: the UNet, VAE, both text encoders, the
9-channel inpainting UNet, the canny/depth/tile ControlNets and the ViT-H IP-Adapter are built from their
(reconstructed) configs and run forward at 1024² and the nine aspect ratios, so the shapes each SDXL recipe
puts together are checked: cross-attention width = CLIP-L + bigG hidden states, the add-embedding input =
six time ids x 256 + bigG's pooled projection, ControlNet residuals = the UNet's skip connections, the
IP-Adapter's image tokens = cross-attention width, and the inpaint UNet's 4 + 4 + 1 input channels.
"""

from __future__ import annotations

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
TOKENS = 77


empty = meta_empty
pytestmark = pytest.mark.usefixtures("quiet_diffusers")


@pytest.fixture(scope="module")
def unet():
    with META:
        return diffusers.UNet2DConditionModel.from_config(cfg("sdxl-base/unet/config.json")).to(BF16).eval()


@pytest.fixture(scope="module")
def vae():
    with META:
        return diffusers.AutoencoderKL.from_config(cfg("sdxl-base/vae/config.json")).to(BF16).eval()


@pytest.fixture(scope="module")
def shallow():
    """The real config with one transformer layer per block instead of 1/2/10: the same widths, levels and
    downsamplings (what sizes depend on), ~4x less work for the many-size sweeps; full depth runs elsewhere."""
    conf = {**cfg("sdxl-base/unet/config.json"), "transformer_layers_per_block": [1, 1, 1]}
    with META:
        return diffusers.UNet2DConditionModel.from_config(conf).to(BF16).eval()


def stand_in(unet, vae) -> SimpleNamespace:
    return SimpleNamespace(unet=unet, vae=vae, vae_scale_factor=2 ** (len(vae.config.block_out_channels) - 1))


def cond(b: int) -> dict:
    """What StableDiffusionXLPipeline passes besides the latents: both encoders' hidden states concatenated,
    bigG's pooled projection and the six micro-conditioning numbers (original size, crop, target size)."""
    return dict(
        encoder_hidden_states=empty(b, TOKENS, 768 + 1280),
        added_cond_kwargs={"text_embeds": empty(b, 1280), "time_ids": empty(b, 6)},
    )


def forward(unet, latents, **kwargs):
    b = latents.shape[0]
    with torch.inference_mode():
        return unet(latents, torch.empty(b, device=META), **cond(b), return_dict=False, **kwargs)[0]


def test_text_encoders_give_the_unet_its_conditioning(unet):
    base = CONFIGS / "sdxl-base"
    with META:
        clip_l = transformers.CLIPTextModel(transformers.AutoConfig.from_pretrained(base / "text_encoder"))
        clip_g = transformers.CLIPTextModelWithProjection(
            transformers.AutoConfig.from_pretrained(base / "text_encoder_2")
        )
    ids = torch.zeros(2, TOKENS, dtype=torch.long, device=META)
    with torch.inference_mode():
        out_l = clip_l(ids, output_hidden_states=True)
        out_g = clip_g(ids, output_hidden_states=True)
    # encode_prompt: penultimate hidden states of both, concatenated; pooled = bigG's projection.
    hidden = torch.cat([out_l.hidden_states[-2], out_g.hidden_states[-2]], dim=-1)
    assert hidden.shape == (2, TOKENS, unet.config.cross_attention_dim) == (2, 77, 2048)
    assert out_g.text_embeds.shape == (2, 1280)
    c = unet.config
    assert c.projection_class_embeddings_input_dim == 6 * c.addition_time_embed_dim + 1280 == 2816
    assert unet.add_embedding.linear_1.in_features == 2816
    for tok in ("tokenizer", "tokenizer_2"):
        assert cfg(f"sdxl-base/{tok}/tokenizer_config.json")["model_max_length"] == TOKENS
    # OpenCLIP's tokenizer pads with "!" (id 0), CLIP-L's with <|endoftext|>: the real repos differ here.
    assert cfg("sdxl-base/tokenizer_2/special_tokens_map.json")["pad_token"] == "!"


def test_native_1024_full_unet_and_vae(unet, vae):
    pipe = stand_in(unet, vae)
    assert P.native_side(pipe) == 1024 and P.granularity(pipe) == 32
    assert vae.config.latent_channels == unet.config.in_channels == unet.config.out_channels == 4
    with torch.inference_mode():
        latents = vae.encode(empty(1, 3, 1024, 1024)).latent_dist.mode()
    assert latents.shape == (1, 4, 128, 128)
    out = forward(unet, torch.cat([latents, latents]))  # a CFG batch
    assert out.shape == (2, 4, 128, 128)
    with torch.inference_mode():
        assert vae.decode(out[:1], return_dict=False)[0].shape == (1, 3, 1024, 1024)
    assert vae.config.scaling_factor == 0.13025 and vae.config.force_upcast is True
    fix = cfg("sdxl-vae-fp16-fix/config.json")
    assert {k: v for k, v in fix.items() if k not in ("force_upcast", "_diffusers_version")} == {
        k: v for k, v in cfg("sdxl-base/vae/config.json").items() if k not in ("force_upcast", "_diffusers_version")
    }  # the fp16 fix is a drop-in: same architecture, only its weights (and force_upcast) differ


def test_nine_aspect_ratios(unet, shallow, vae):
    pipe = stand_in(unet, vae)
    for ratio in P.NATIVE_SIZES:
        w, h = P.size_for_aspect(pipe, ratio)
        assert (w, h) == P.NATIVE_SIZES[ratio]
        assert w % P.granularity(pipe) == 0 and h % P.granularity(pipe) == 0
        lh, lw = h // 8, w // 8
        assert forward(shallow, empty(1, 4, lh, lw)).shape == (1, 4, lh, lw), ratio


def test_inpainting_unet_takes_latents_masked_latents_and_mask(vae):
    inp = cfg("sdxl-inpaint/unet/config.json")
    assert inp["in_channels"] == 9
    assert {k: v for k, v in inp.items() if k not in ("in_channels", "_diffusers_version")} == {
        k: v for k, v in cfg("sdxl-base/unet/config.json").items() if k not in ("in_channels", "_diffusers_version")
    }  # initialised from the base UNet: only conv_in is wider
    with META:
        net = diffusers.UNet2DConditionModel.from_config(inp).to(BF16).eval()
    assert net.conv_in.in_channels == 9
    for w, h in ((1216, 832),):
        with torch.inference_mode():
            latents = vae.encode(empty(1, 3, h, w)).latent_dist.mode()  # the noised image and the masked image
        mask = torch.nn.functional.interpolate(empty(1, 1, h, w), size=latents.shape[-2:])
        x = torch.cat([latents, mask, latents], dim=1)  # StableDiffusionXLInpaintPipeline's order
        assert x.shape[1] == 9
        assert forward(net, x).shape == latents.shape
    # The masked-edit crops (K.crop_box + working_size) land on the UNet's granularity at ~1 MP.
    import numpy as np

    pipe = stand_in(net, vae)
    m = np.zeros((2000, 3000), np.float32)
    m[0:200, :] = 1
    x0, y0, x1, y1 = K.crop_box(m, P.native_side(pipe) // 2)
    size = P.working_size(pipe, x1 - x0, y1 - y0)
    assert size[0] % 32 == 0 and size[1] % 32 == 0 and 0.8 < size[0] * size[1] / 1024**2 < 1.25


def test_the_three_controlnets_share_one_architecture():
    canny = cfg("sdxl-controlnet-canny/config.json")
    assert cfg("sdxl-controlnet-depth/config.json") == canny
    tile = {k: v for k, v in cfg("sdxl-controlnet-tile/config.json").items() if k != "_diffusers_version"}
    assert tile == {k: v for k, v in canny.items() if k != "_diffusers_version"}


def test_controlnet_feeds_the_unet_full_depth(unet):
    conf = cfg("sdxl-controlnet-canny/config.json")
    with META:
        net = diffusers.ControlNetModel.from_config(conf).to(BF16).eval()
    for key in ("block_out_channels", "transformer_layers_per_block", "attention_head_dim", "down_block_types"):
        assert list(net.config[key]) == list(unet.config[key]), key
    assert net.config.cross_attention_dim == unet.config.cross_attention_dim
    assert net.config.projection_class_embeddings_input_dim == unet.config.projection_class_embeddings_input_dim
    # The conditioning embedding halves the control image once per extra width: 3 times = the VAE's factor 8.
    assert 2 ** (len(conf["conditioning_embedding_out_channels"]) - 1) == 8
    x = empty(2, 4, 128, 128)
    with torch.inference_mode():
        down, mid = net(
            x,
            torch.empty(2, device=META),
            controlnet_cond=empty(2, 3, 1024, 1024),  # the control image in pixels
            conditioning_scale=0.9,
            return_dict=False,
            **cond(2),
        )
    assert len(down) == len(net.controlnet_down_blocks) == 9  # conv_in + 3 levels x (2 resnets + downsample) - 1
    out = forward(unet, x, down_block_additional_residuals=down, mid_block_additional_residual=mid)
    assert out.shape == x.shape and mid.shape == (2, 1280, 32, 32)


def test_ip_adapter_image_tokens_reach_the_unet(unet, monkeypatch):
    from diffusers.models.attention_processor import AttnProcessor2_0, IPAdapterAttnProcessor2_0
    from diffusers.models.embeddings import ImageProjection, MultiIPAdapterImageProjection

    from pixelsmith.engines.diffusers.tiny import xl_cross_attention_widths

    shapes = cfg("sdxl-ip-adapter/sdxl_models/ip-adapter_sdxl_vit-h.shapes.json")
    vision = transformers.AutoConfig.from_pretrained(CONFIGS / "sdxl-ip-adapter/models/image_encoder")
    ip = shapes["image_proj"]
    widths = xl_cross_attention_widths(cfg("sdxl-base/unet/config.json"))
    assert len(widths) == shapes["ip_adapter"]["layers"] == 70
    with META:
        encoder = transformers.CLIPVisionModelWithProjection(vision).to(BF16).eval()
        proj = ImageProjection(
            cross_attention_dim=ip["cross_attention_dim"],
            image_embed_dim=ip["image_embed_dim"],
            num_image_text_embeds=ip["num_image_text_embeds"],
        ).to(BF16)
        it = iter(widths)
        procs = {
            name: AttnProcessor2_0()
            if name.endswith("attn1.processor")
            else IPAdapterAttnProcessor2_0(hidden_size=next(it), cross_attention_dim=2048, num_tokens=(4,)).to(BF16)
            for name in unet.attn_processors
        }
    with torch.inference_mode():
        embeds = encoder(empty(1, 3, vision.image_size, vision.image_size)).image_embeds
    assert embeds.shape == (1, ip["image_embed_dim"]) == (1, vision.projection_dim)
    with torch.inference_mode():
        tokens = proj(embeds)
    assert tokens.shape == (1, 4, unet.config.cross_attention_dim)
    # Parameters the planner counts for the adapter: projection + 70 (to_k_ip, to_v_ip) pairs.
    from pixelsmith.engines.diffusers import planner

    pairs = sum(2 * w * 2048 for w in widths)
    assert sum(p.numel() for p in proj.parameters()) + pairs == planner.PARAMS["sdxl-ip-adapter"]["ip_adapter"]
    saved = unet.attn_processors
    unet.set_attn_processor(procs)
    unet.encoder_hid_proj = MultiIPAdapterImageProjection([proj])
    unet.config.encoder_hid_dim_type = "ip_image_proj"
    try:
        # The pipeline's prepare_ip_adapter_image_embeds: per adapter, (CFG batch, 1 image, embed dim).
        image_embeds = [embeds.repeat(2, 1)[:, None]]
        with torch.inference_mode():
            out = unet(
                empty(2, 4, 128, 128),
                torch.empty(2, device=META),
                encoder_hidden_states=empty(2, TOKENS, 2048),
                added_cond_kwargs={
                    "text_embeds": empty(2, 1280),
                    "time_ids": empty(2, 6),
                    "image_embeds": image_embeds,
                },
                return_dict=False,
            )[0]
        assert out.shape == (2, 4, 128, 128)
    finally:
        unet.encoder_hid_proj = None
        unet.config.encoder_hid_dim_type = None
        unet.set_attn_processor(saved)


@pytest.mark.parametrize("src", [(1024, 1024), (1000, 750)])
def test_creative_upscale_tiles_fit_the_unet(src, unet, shallow, vae):
    pipe = stand_in(unet, vae)
    side, g = P.native_side(pipe), P.granularity(pipe)
    big = output_size(*src)
    shapes = set()
    for x0, y0, x1, y1 in K.tiles(big, side, side // 8):
        size = (max(g, (x1 - x0) // g * g), max(g, (y1 - y0) // g * g))  # refine_tiles' rounding
        assert size[0] <= side and size[1] <= side
        shapes.add(size)
    for w, h in shapes:
        assert forward(shallow, empty(1, 4, h // 8, w // 8)).shape == (1, 4, h // 8, w // 8)


def test_scheduler_and_defaults(monkeypatch):
    monkeypatch.delenv("PIXELSMITH_DIFFUSION_STEPS", raising=False)
    conf = cfg("sdxl-base/scheduler/scheduler_config.json")
    assert conf["_class_name"] == "EulerDiscreteScheduler" and conf["prediction_type"] == "epsilon"
    sched = diffusers.EulerDiscreteScheduler.from_config(conf)
    steps = P.steps_for("sdxl-base")
    sched.set_timesteps(steps)
    assert len(sched.timesteps) == steps == 30 and K.cfg_for("sdxl-base") == 7.0
    assert (P.steps_for("sdxl-inpaint"), K.cfg_for("sdxl-inpaint")) == (20, 8.0)  # the inpainting card's numbers
    assert cfg("sdxl-base/model_index.json")["_class_name"] == "StableDiffusionXLPipeline"
