"""GPU benchmark: plain diffusers vs pixelsmith's diffusers engine, SD3.5 Medium and Large and SDXL 1.0, same run.

The real architectures are built from their published configs with random
weights (speed does not depend on weight values; nothing is downloaded). For
each model: 1024x1024, 28 steps (--steps), bf16, batch 1 and 4, both paths with the
same seeds, measuring s/image, images/s, peak memory, the speed ratio, the
PSNR of pixelsmith's image against the plain one, and FLOP utilisation
(2 * transformer params * tokens per forward, CFG doubling the batch; for the SDXL
UNet, whose convolutions make that formula wrong, one forward counted by
torch.utils.flop_counter) against the GPU's dense bf16 peak. SDXL runs at CFG 7 with
its own EulerDiscreteScheduler settings (tests/data/configs/sdxl-base).

    python bench/diffusion_gpu.py            # full run on a GPU (aimed at < 10 min on an H100/H200; not yet run)
    python bench/diffusion_gpu.py --models medium --steps 28 --batches 1
    python bench/diffusion_gpu.py --models sdxl --steps 30
    python bench/diffusion_gpu.py --smoke              # tiny configs on CPU: checks the script runs

pixelsmith's path = the engine's own components store and pipelines with its GPU
levers (components.optimise: fused QKV, channels-last VAE, torch.compile when
--compile is given) and CPU-generator seeding. Prompts differ per iteration so
text-encoder caching does not flatter the engine; the cache's own effect is
printed separately.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

# The real configs (tests/data/configs, see SOURCES.md there): one source for the tests, the planner and this.
CONFIGS = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "configs")


def _config(*parts: str) -> dict:
    with open(os.path.join(CONFIGS, *parts)) as f:
        return {k: v for k, v in json.load(f).items() if not k.startswith("_")}


FOLDERS = {"large": "sd3.5-large", "medium": "sd3.5-medium"}
TRANSFORMERS = {k: _config(v, "transformer", "config.json") for k, v in FOLDERS.items()}
VAE = _config("sd3.5-large", "vae", "config.json")
_TEXT_KEYS = ("model_type", "architectures")
CLIP_L = {k: v for k, v in _config("sd3.5-large", "text_encoder", "config.json").items() if k not in _TEXT_KEYS}
CLIP_G = {k: v for k, v in _config("sd3.5-large", "text_encoder_2", "config.json").items() if k not in _TEXT_KEYS}
T5_XXL = {k: v for k, v in _config("sd3.5-large", "text_encoder_3", "config.json").items() if k not in _TEXT_KEYS}
T5_XXL["is_encoder_decoder"] = False
XL_UNET = _config("sdxl-base", "unet", "config.json")
XL_VAE = _config("sdxl-base", "vae", "config.json")
XL_CLIP_L = {k: v for k, v in _config("sdxl-base", "text_encoder", "config.json").items() if k not in _TEXT_KEYS}
XL_CLIP_G = {k: v for k, v in _config("sdxl-base", "text_encoder_2", "config.json").items() if k not in _TEXT_KEYS}
XL_SCHEDULER = _config("sdxl-base", "scheduler", "scheduler_config.json")
CFG = {"medium": 4.0, "large": 4.0, "sdxl": 7.0}

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "4090": 165.0}
PROMPTS = [
    "a lighthouse on a cliff at dawn",
    "a red fox in fresh snow",
    "a busy night market in the rain",
    "a bowl of ramen, studio photo",
    "an astronaut riding a horse",
    "a watercolor map of an island",
    "a glass teapot with blooming tea",
    "a vintage car on a desert road",
]


def build_xl_components(smoke: bool, device, dtype):
    """Random-weight SDXL base components (real configs, or the tiny SDXL pipeline in --smoke)."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from pixelsmith.engines.diffusers import tiny

    names = ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler")
    if smoke:
        folder = os.path.join(os.environ.get("TMPDIR", "/tmp"), "pixelsmith-smoke-sdxl")
        if not os.path.exists(os.path.join(folder, "model_index.json")):
            tiny.build_sdxl(folder)
        pipe = StableDiffusionXLPipeline.from_pretrained(folder)
        return {part: getattr(pipe, part) for part in names}
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            out = {
                "unet": UNet2DConditionModel.from_config(XL_UNET).eval(),
                "vae": AutoencoderKL.from_config(XL_VAE).eval(),
                "text_encoder": CLIPTextModel(CLIPTextConfig(**XL_CLIP_L)).eval(),
                "text_encoder_2": CLIPTextModelWithProjection(CLIPTextConfig(**XL_CLIP_G)).eval(),
            }
    finally:
        torch.set_default_dtype(previous)
    tok, _, _ = tiny.clip_tokenizer()
    out.update(
        tokenizer=tok, tokenizer_2=tiny.clip_tokenizer()[0], scheduler=EulerDiscreteScheduler.from_config(XL_SCHEDULER)
    )
    return out


def unet_flops(unet, size: int, device) -> int:
    """FLOPs of one UNet forward at batch 1 (counted by torch's FlopCounterMode on the real module)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    lat = size // 8
    dt = unet.dtype
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        unet(
            torch.randn(1, 4, lat, lat, device=device, dtype=dt),
            torch.tensor([500.0], device=device),
            encoder_hidden_states=torch.randn(1, 77, unet.config.cross_attention_dim, device=device, dtype=dt),
            added_cond_kwargs={
                "text_embeds": torch.randn(
                    1,
                    unet.config.projection_class_embeddings_input_dim - 6 * unet.config.addition_time_embed_dim,
                    device=device,
                    dtype=dt,
                ),
                "time_ids": torch.tensor([[size, size, 0, 0, size, size]], device=device, dtype=dt),
            },
        )
    return int(counter.get_total_flops())


def build_components(size: str, smoke: bool, device, dtype):
    """Random-weight SD3.5 components (real configs, or tiny ones in --smoke)."""
    if size == "sdxl":
        return build_xl_components(smoke, device, dtype)
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    from pixelsmith.engines.diffusers import tiny

    if smoke:
        out = {}
        folder = os.path.join(os.environ.get("TMPDIR", "/tmp"), "pixelsmith-smoke-sd3")
        if not os.path.exists(os.path.join(folder, "model_index.json")):
            tiny.build_sd3(folder)
        from diffusers import StableDiffusion3Pipeline

        pipe = StableDiffusion3Pipeline.from_pretrained(folder)
        for part in (
            "transformer",
            "vae",
            "text_encoder",
            "text_encoder_2",
            "text_encoder_3",
            "tokenizer",
            "tokenizer_2",
            "tokenizer_3",
        ):
            out[part] = getattr(pipe, part)
        out["scheduler"] = pipe.scheduler
        return out
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # allocate in bf16 straight away (8B fp32 would need 32 GB first)
    try:
        with torch.device(device):
            out = {
                "transformer": SD3Transformer2DModel.from_config(TRANSFORMERS[size]).eval(),
                "vae": AutoencoderKL.from_config(VAE).eval(),
                "text_encoder": CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_L)).eval(),
                "text_encoder_2": CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_G)).eval(),
                "text_encoder_3": T5EncoderModel(T5Config(**T5_XXL)).eval(),
            }
    finally:
        torch.set_default_dtype(previous)
    # Random weights can overflow bf16 through 38 blocks; shrink them so outputs stay finite (speed is unchanged).
    with torch.no_grad():
        for p in out["transformer"].parameters():
            if p.dim() >= 2:
                p.mul_(0.5)
    tok, _, _ = tiny.clip_tokenizer()
    tok3, _, _ = tiny.t5_tokenizer()
    out.update(
        tokenizer=tok,
        tokenizer_2=tiny.clip_tokenizer()[0],
        tokenizer_3=tok3,
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0),
    )
    return out


def params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def peak_tflops(device) -> float | None:
    import torch

    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


@contextlib.contextmanager
def measure(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    box = {}
    t0 = time.perf_counter()
    yield box
    if device.type == "cuda":
        torch.cuda.synchronize()
        box["peak_gb"] = torch.cuda.max_memory_allocated() / 1e9
    box["seconds"] = time.perf_counter() - t0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def run_plain(parts, prompts, steps, size, seed, device, cfg: float = 4.0):
    """Plain diffusers, out of the box: StableDiffusion3Pipeline / StableDiffusionXLPipeline(...) on the device."""
    import torch
    from diffusers import StableDiffusion3Pipeline, StableDiffusionXLPipeline

    if "unet" in parts:
        pipe = StableDiffusionXLPipeline(**parts, add_watermarker=False).to(device)
    else:
        pipe = StableDiffusion3Pipeline(**parts).to(device)
    pipe.set_progress_bar_config(disable=True)
    gens = [torch.Generator(device).manual_seed(seed + i) for i in range(len(prompts))]
    return pipe(
        prompt=prompts,
        num_inference_steps=steps,
        height=size,
        width=size,
        guidance_scale=cfg,
        generator=gens,
        output_type="np",
    ).images


def run_engine(base, prompts, steps, size, seed, device, cfg: float = 4.0):
    """pixelsmith: the engine's shared components, its pipeline assembly and prompt-embedding path."""
    import torch

    from pixelsmith.engines.diffusers import pipelines as P

    pipe = P.build("txt2img", base)
    # Per-request embeddings (cached by prompt in the engine), stacked into one batch.
    embeds = [P.prompt_kwargs(pipe, base, p, "", cfg) for p in prompts]
    kw = {k: torch.cat([e[k] for e in embeds]) for k in embeds[0] if k != "guidance_scale"}
    gens = [torch.Generator(device).manual_seed(seed + i) for i in range(len(prompts))]
    with torch.inference_mode():
        return pipe(
            num_inference_steps=steps,
            height=size,
            width=size,
            guidance_scale=cfg,
            generator=gens,
            output_type="np",
            **kw,
        ).images


def cache_note(base: str, device) -> None:
    """What the engine's prompt-embedding cache saves per request when a prompt repeats."""
    import torch

    from pixelsmith.engines.diffusers import pipelines as P

    pipe = P.build("txt2img", base)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    P.prompt_kwargs(pipe, base, "a cache probe prompt", "", 4.0)
    sync()
    t1 = time.perf_counter()
    P.prompt_kwargs(pipe, base, "a cache probe prompt", "", 4.0)
    sync()
    t2 = time.perf_counter()
    encoders = "CLIP-L + CLIP-G" + ("" if getattr(pipe, "unet", None) is not None else " + T5")
    print(f"text encoders ({encoders}): {t1 - t0:.3f} s new prompt, {t2 - t1:.4f} s cached")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["medium", "large", "sdxl"], choices=["medium", "large", "sdxl"])
    ap.add_argument("--steps", nargs="+", type=int, default=[28])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 4])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per setting (after one warm-up)")
    ap.add_argument("--compile", default="", help="torch.compile mode for the engine path (e.g. max-autotune)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="override the GPU's dense bf16 peak")
    ap.add_argument("--smoke", action="store_true", help="tiny configs on CPU, 64 px, 2 steps (checks the script)")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--table", default="diffusion_gpu.md", help="write the printed table here (markdown)")
    args = ap.parse_args()

    import torch

    if args.smoke:
        args.size, args.steps, args.repeats = 64, [2], 1
        args.models = args.models[:1]
        os.environ["PIXELSMITH_DEVICE"] = "cpu"
        torch.set_num_threads(1)
    elif not torch.cuda.is_available():
        sys.exit("no GPU: run with --smoke to check the script on a CPU")
    if args.compile:
        os.environ["PIXELSMITH_COMPILE"] = args.compile
    from pixelsmith.engines.diffusers import components as C

    device, dtype = C.device(), C.dtype()
    peak = args.peak_tflops or peak_tflops(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; dtype {dtype}; torch {torch.__version__}; size {args.size}; peak bf16 {peak} TFLOPS")
    rows = []
    for size_name in args.models:
        parts = build_components(size_name, args.smoke, device, dtype)
        xl = size_name == "sdxl"
        base = "bench-sdxl" if xl else f"bench-sd3.5-{size_name}"
        cfg = CFG[size_name]
        denoiser = parts["unet" if xl else "transformer"]
        n_params = params(denoiser)
        vae_scale = 2 ** (len(parts["vae"].config.block_out_channels) - 1)
        if xl:
            from pixelsmith.models.hub import KIND

            KIND[base] = "sdxl"  # the engine builds StableDiffusionXL* pipelines for this bench checkpoint
            forward_flops = unet_flops(denoiser, args.size, device)
        else:
            patch = denoiser.config.patch_size
            tokens = (args.size // (vae_scale * patch)) ** 2 + 77 + 256
            forward_flops = 2 * n_params * tokens  # per image per forward: 2·P·T
        settings = [(steps, batch) for steps in args.steps for batch in args.batches]
        results: dict[tuple, dict] = {}
        images: dict[tuple, np.ndarray] = {}
        # Plain diffusers first, for every setting: the engine's optimise() changes modules in place.
        for path in ("plain", "pixelsmith"):
            if path == "pixelsmith":
                C.STORE.clear()
                for part, value in parts.items():
                    if part == "scheduler":
                        C.STORE.put((base, "scheduler_config"), value.config)
                    else:
                        optimised = part in ("transformer", "unet", "vae")
                        C.STORE.put((base, part), C.optimise(value) if optimised else value)
                cache_note(base, device)
            for steps, batch in settings:
                prompts = PROMPTS[:batch]

                def once(offset: int):
                    ps = [f"{p}, take {offset}" for p in prompts]  # fresh prompts: no embedding-cache help
                    if path == "plain":
                        return run_plain(parts, ps, steps, args.size, 1234, device, cfg)
                    return run_engine(base, ps, steps, args.size, 1234, device, cfg)

                once(-1)  # warm-up (and compilation)
                times, peaks = [], []
                for r in range(args.repeats):
                    with measure(device) as m:
                        out = once(r)
                    times.append(m["seconds"])
                    peaks.append(m.get("peak_gb", 0.0))
                images[(path, steps, batch)] = (np.clip(np.nan_to_num(out), 0, 1) * 255).round().astype(np.uint8)
                per_image = min(times) / batch
                flops = forward_flops * 2 * steps  # per image: CFG = 2 forwards per step
                results.setdefault(
                    (steps, batch),
                    {"model": size_name, "steps": steps, "batch": batch, "params_b": round(n_params / 1e9, 2)},
                )[path] = {
                    "s_per_image": round(per_image, 3),
                    "images_per_s": round(1 / per_image, 3),
                    "peak_gb": round(max(peaks), 2),
                    "tflops": round(flops / per_image / 1e12, 1),
                    "utilisation": round(flops / per_image / 1e12 / peak, 3) if peak else None,
                    "finite": bool(np.isfinite(out).all()),
                }
        for steps, batch in settings:
            r = results[(steps, batch)]
            a, b = images[("plain", steps, batch)], images[("pixelsmith", steps, batch)]
            r["speedup"] = round(r["plain"]["s_per_image"] / r["pixelsmith"]["s_per_image"], 3)
            r["psnr_db"] = round(min(psnr(a[i], b[i]) for i in range(len(a))), 2)
            rows.append(r)
            print(json.dumps(r), flush=True)
        del parts
        C.STORE.clear()
    print_table(rows, name, args.table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "rows": rows}, f, indent=2)


def print_table(rows, device_name: str, path: str | None = None) -> None:
    lines = [
        f"| model | steps | batch | plain s/img | pixelsmith s/img | speed-up | plain img/s | pixelsmith img/s "
        f"| peak GB plain/pixelsmith | util plain/pixelsmith | PSNR dB |  ({device_name})",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p, e = r["plain"], r["pixelsmith"]
        util = f"{p['utilisation']}/{e['utilisation']}" if p["utilisation"] is not None else "-"
        lines.append(
            f"| {r['model']} | {r['steps']} | {r['batch']} | {p['s_per_image']} | {e['s_per_image']} | "
            f"{r.get('speedup')} | {p['images_per_s']} | {e['images_per_s']} | {p['peak_gb']}/{e['peak_gb']} | "
            f"{util} | {r.get('psnr_db')} |"
        )
    table = "\n".join(lines)
    print("\n" + table)
    if path:
        with open(path, "w") as f:
            f.write(table + "\n")
        print(f"table written to {path}")


if __name__ == "__main__":
    main()
