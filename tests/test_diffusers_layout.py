"""A folder laid out exactly like the hub snapshot, with the real configs and the real file names.

Weights are sparse files: each ``*.safetensors`` has a real header (every tensor's
name and shape, from the component built on the meta device from the real config)
and holes where the data would be, so a 16 GB transformer costs no disk. This runs
``pixelsmith models pull --from PATH`` and its layout checks on the real names, the
planner's header-based parameter count, and the tensor names and shapes a
``from_pretrained`` would match. Also: a forced drop-T5 plan on the tiny pipeline
and the response metadata that says so.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import struct

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

CONFIGS = pathlib.Path(__file__).parent / "data" / "configs"
SIZES = {torch.bfloat16: 2, torch.float16: 2, torch.float32: 4}
NAMES = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32"}


def write_sparse_safetensors(path: pathlib.Path, shapes: dict[str, tuple[int, ...]], dtype=torch.bfloat16) -> None:
    header, offset = {}, 0
    for name, shape in shapes.items():
        n = SIZES[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": NAMES[dtype], "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)  # a hole: no blocks allocated


def shards(folder: pathlib.Path, stem: str, shapes: dict, count: int, dtype=torch.bfloat16) -> None:
    """``stem``-0000i-of-0000n.safetensors + ``stem``.safetensors.index.json, as save_pretrained shards."""
    keys = list(shapes)
    per = -(-len(keys) // count)
    weight_map = {}
    for i in range(count):
        name = f"{stem}-{i + 1:05d}-of-{count:05d}.safetensors"
        part = {k: shapes[k] for k in keys[i * per : (i + 1) * per]}
        write_sparse_safetensors(folder / name, part, dtype)
        weight_map.update(dict.fromkeys(part, name))
    (folder / f"{stem}.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


def state_shapes(module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """sd3.5-large/ and sd3.5-large-controlnet-canny/ as their hub snapshots (configs real, weights holes)."""
    root = tmp_path_factory.mktemp("hub")
    large = root / "sd3.5-large"
    shutil.copytree(CONFIGS / "sd3.5-large", large)
    with torch.device("meta"):
        tr = diffusers.SD3Transformer2DModel.from_config(json.loads((large / "transformer/config.json").read_text()))
        vae = diffusers.AutoencoderKL.from_config(json.loads((large / "vae/config.json").read_text()))
        encoders = {
            p: cls(transformers.AutoConfig.from_pretrained(large / p))
            for p, cls in (
                ("text_encoder", transformers.CLIPTextModelWithProjection),
                ("text_encoder_2", transformers.CLIPTextModelWithProjection),
                ("text_encoder_3", transformers.T5EncoderModel),
            )
        }
        net = diffusers.SD3ControlNetModel.from_config(
            json.loads((CONFIGS / "sd3.5-large-controlnet-canny/config.json").read_text())
        )
    shapes = {"transformer": state_shapes(tr), "vae": state_shapes(vae)}
    shards(large / "transformer", "diffusion_pytorch_model", shapes["transformer"], 2)
    write_sparse_safetensors(large / "vae/diffusion_pytorch_model.safetensors", shapes["vae"])
    for p, m in encoders.items():
        shapes[p] = {k: v for k, v in state_shapes(m).items() if k != "encoder.embed_tokens.weight"}  # tied
        if p == "text_encoder_3":
            shards(large / p, "model", shapes[p], 2, torch.float16)
        else:
            write_sparse_safetensors(large / p / "model.safetensors", shapes[p], torch.float16)
    for tok in ("tokenizer", "tokenizer_2"):
        for f in ("merges.txt", "vocab.json", "special_tokens_map.json"):
            (large / tok / f).write_text("{}" if f.endswith(".json") else "#version: 0.2\n")
    for f in ("spiece.model", "tokenizer.json", "special_tokens_map.json"):
        (large / "tokenizer_3" / f).write_text("{}")
    canny = root / "sd3.5-large-controlnet-canny"
    shutil.copytree(CONFIGS / "sd3.5-large-controlnet-canny", canny)
    shapes["controlnet"] = state_shapes(net)
    write_sparse_safetensors(canny / "diffusion_pytorch_model.safetensors", shapes["controlnet"])
    blocks = sum(p.stat().st_blocks for p in root.rglob("*.safetensors"))
    if blocks * 512 > 50_000_000:
        pytest.skip("this file system does not keep sparse files sparse")
    return root, shapes


def test_pull_from_a_hub_layout_folder(hub, tmp_path, monkeypatch):
    from pixelsmith.engines.diffusers import planner
    from pixelsmith.engines.diffusers.pull import check_layout, pull
    from pixelsmith.models import is_installed, model_path

    root, shapes = hub
    monkeypatch.setenv("PIXELSMITH_MODELS", str(tmp_path / "models"))
    assert check_layout("sd3.5-large", root / "sd3.5-large") == []
    assert check_layout("sd3.5-large-controlnet-canny", root / "sd3.5-large-controlnet-canny") == []
    logs: list[str] = []
    done = pull(["sd3.5-large", "sd3.5-large-controlnet-canny"], source=root, log=logs.append)
    assert done == ["sd3.5-large", "sd3.5-large-controlnet-canny"] and all(map(is_installed, done))
    folder = model_path("sd3.5-large")
    assert (folder / "transformer/diffusion_pytorch_model-00002-of-00002.safetensors").is_file()
    assert (folder / "text_encoder_3/model.safetensors.index.json").is_file()
    # The planner counts the installed weights from their headers: the real configs' numbers.
    for part in ("transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3"):
        assert planner.params("sd3.5-large", part) == planner.PARAMS["sd3.5-large"][part], part
    assert planner.params("sd3.5-large-controlnet-canny", "controlnet") == 2_153_518_976
    # The headers hold exactly the tensors from_pretrained would match against the model built from the config.
    got: dict[str, list] = {}
    for f in (folder / "transformer").glob("*.safetensors"):
        got.update({k: v["shape"] for k, v in planner.read_header(f).items()})
    index = json.loads((folder / "transformer/diffusion_pytorch_model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == set(got) == set(shapes["transformer"])
    assert all(tuple(got[k]) == shapes["transformer"][k] for k in got)


def test_layout_check_names_what_is_missing(hub, tmp_path):
    from pixelsmith.engines.diffusers.pull import PullError, import_folder

    root, _ = hub
    broken = tmp_path / "sd3.5-large"
    # (configs only: copying the sparse weights would write them out in full)
    shutil.copytree(root / "sd3.5-large", broken, ignore=shutil.ignore_patterns("transformer", "*.safetensors"))
    with pytest.raises(PullError, match="transformer/config.json"):
        import_folder("sd3.5-large", tmp_path, log=lambda line: None)


def test_drop_t5_plan_on_the_tiny_pipeline(tmp_path, monkeypatch):
    from pixelsmith import core
    from pixelsmith.engines.diffusers import components, tiny
    from pixelsmith.engines.diffusers.pull import pull

    monkeypatch.setenv("PIXELSMITH_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("PIXELSMITH_DEVICE", "cpu")
    monkeypatch.setenv("PIXELSMITH_DIFFUSION_STEPS", "1")
    tiny.build_sd3(tmp_path / "src" / "sd3.5-large")
    pull(["sd3.5-large"], source=tmp_path / "src", log=lambda line: None)
    components.STORE.clear()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        kept = core.run("generate", {"prompt": "a red cat", "seed": 3, "aspect_ratio": "1:1"}, engine="diffusers")
        monkeypatch.setenv("PIXELSMITH_DROP_T5", "1")
        dropped = core.run("generate", {"prompt": "a red cat", "seed": 3, "aspect_ratio": "1:1"}, engine="diffusers")
    finally:
        torch.set_num_threads(threads)
        components.STORE.clear()
    assert kept.metadata["plan"] == "cpu" and "t5_encoder" not in kept.metadata
    assert kept.metadata["family"] == "sd3.5"
    assert kept.metadata["checkpoint"] == "stabilityai/stable-diffusion-3.5-large"
    assert dropped.metadata["t5_encoder"].startswith("dropped")
    assert kept.image.size == dropped.image.size
    assert kept.image.tobytes() != dropped.image.tobytes()  # T5's tokens really were left out
    assert os.environ.get("PIXELSMITH_DROP_T5") == "1"


# --- SDXL: the fp16-variant file names pixelsmith pulls ---------------------------------------------------


@pytest.fixture(scope="module")
def hub_xl(tmp_path_factory):
    """sdxl-base/, sdxl-inpaint/, sdxl-controlnet-canny/, sdxl-controlnet-tile/ and sdxl-ip-adapter/ as the hub
    lays them out with the patterns in models/hub.py (fp16 variants; xinsir's plain name), weights as holes."""
    root = tmp_path_factory.mktemp("hub-xl")
    shapes: dict[str, dict] = {}
    base = root / "sdxl-base"
    shutil.copytree(CONFIGS / "sdxl-base", base)
    with torch.device("meta"):
        unet = diffusers.UNet2DConditionModel.from_config(json.loads((base / "unet/config.json").read_text()))
        vae = diffusers.AutoencoderKL.from_config(json.loads((base / "vae/config.json").read_text()))
        te = transformers.CLIPTextModel(transformers.AutoConfig.from_pretrained(base / "text_encoder"))
        te2 = transformers.CLIPTextModelWithProjection(transformers.AutoConfig.from_pretrained(base / "text_encoder_2"))
        inp = diffusers.UNet2DConditionModel.from_config(
            json.loads((CONFIGS / "sdxl-inpaint/unet/config.json").read_text())
        )
        net = diffusers.ControlNetModel.from_config(
            json.loads((CONFIGS / "sdxl-controlnet-canny/config.json").read_text())
        )
        vit = transformers.CLIPVisionModelWithProjection(
            transformers.AutoConfig.from_pretrained(CONFIGS / "sdxl-ip-adapter/models/image_encoder")
        )
    shapes["unet"] = state_shapes(unet)
    write_sparse_safetensors(base / "unet/diffusion_pytorch_model.fp16.safetensors", shapes["unet"], torch.float16)
    write_sparse_safetensors(base / "vae/diffusion_pytorch_model.fp16.safetensors", state_shapes(vae), torch.float16)
    write_sparse_safetensors(base / "text_encoder/model.fp16.safetensors", state_shapes(te), torch.float16)
    write_sparse_safetensors(base / "text_encoder_2/model.fp16.safetensors", state_shapes(te2), torch.float16)
    for tok in ("tokenizer", "tokenizer_2"):
        (base / tok / "vocab.json").write_text("{}")
        (base / tok / "merges.txt").write_text("#version: 0.2\n")
    ipath = root / "sdxl-inpaint"
    shutil.copytree(CONFIGS / "sdxl-inpaint", ipath)
    write_sparse_safetensors(ipath / "unet/diffusion_pytorch_model.fp16.safetensors", state_shapes(inp), torch.float16)
    shapes["controlnet"] = state_shapes(net)
    for name, file in (
        ("sdxl-controlnet-canny", "diffusion_pytorch_model.fp16.safetensors"),
        ("sdxl-controlnet-tile", "diffusion_pytorch_model.safetensors"),
    ):
        shutil.copytree(CONFIGS / name, root / name)
        write_sparse_safetensors(root / name / file, shapes["controlnet"], torch.float16)
    ip = root / "sdxl-ip-adapter"
    shutil.copytree(CONFIGS / "sdxl-ip-adapter", ip)
    (ip / "sdxl_models/ip-adapter_sdxl_vit-h.shapes.json").unlink()
    from pixelsmith.engines.diffusers.tiny import xl_cross_attention_widths

    adapter = {"image_proj.proj.weight": (4 * 2048, 1024), "image_proj.proj.bias": (4 * 2048,)}
    adapter.update({"image_proj.norm.weight": (2048,), "image_proj.norm.bias": (2048,)})
    for i, width in enumerate(xl_cross_attention_widths(dict(unet.config))):
        for kv in ("to_k_ip", "to_v_ip"):
            adapter[f"ip_adapter.{1 + 2 * i}.{kv}.weight"] = (width, 2048)
    write_sparse_safetensors(ip / "sdxl_models/ip-adapter_sdxl_vit-h.safetensors", adapter, torch.float16)
    write_sparse_safetensors(ip / "models/image_encoder/model.safetensors", state_shapes(vit), torch.float16)
    blocks = sum(p.stat().st_blocks for p in root.rglob("*.safetensors"))
    if blocks * 512 > 50_000_000:
        pytest.skip("this file system does not keep sparse files sparse")
    return root, shapes


def test_pull_sdxl_from_a_hub_layout_folder(hub_xl, tmp_path, monkeypatch):
    from pixelsmith.engines.diffusers import components, planner
    from pixelsmith.engines.diffusers.pull import check_layout, pull
    from pixelsmith.models import is_installed, model_path
    from pixelsmith.models.hub import CATALOG

    root, shapes = hub_xl
    monkeypatch.setenv("PIXELSMITH_MODELS", str(tmp_path / "models"))
    names = ["sdxl-base", "sdxl-inpaint", "sdxl-controlnet-canny", "sdxl-controlnet-tile", "sdxl-ip-adapter"]
    for name in names:
        assert check_layout(name, root / name) == [], name
        # Every file the folder holds is one the catalogue's allow patterns would download, and vice versa.
        import fnmatch

        patterns = CATALOG[name].source.allow_patterns
        for f in (root / name).rglob("*"):
            rel = f.relative_to(root / name).as_posix()
            if f.is_file() and not rel.startswith("tokenizer"):
                assert any(fnmatch.fnmatch(rel, p) for p in patterns), (name, rel)
    assert pull(names, source=root, log=lambda line: None) == names and all(map(is_installed, names))
    # The planner counts the installed headers: the configs' numbers, fp16 variant names included.
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        assert planner.params("sdxl-base", part) == planner.PARAMS["sdxl-base"][part], part
    assert planner.params("sdxl-inpaint", "unet") == planner.PARAMS["sdxl-inpaint"]["unet"]
    assert planner.params("sdxl-controlnet-tile", "controlnet") == planner.PARAMS["sdxl-controlnet-tile"]["controlnet"]
    for part in ("ip_adapter", "image_encoder"):
        assert planner.params("sdxl-ip-adapter", part) == planner.PARAMS["sdxl-ip-adapter"][part], part
    # The loaders pick the fp16 variant where the hub names it so, and none for xinsir's plain file name.
    assert components._variant(model_path("sdxl-base") / "unet") == "fp16"
    assert components._variant(model_path("sdxl-controlnet-tile")) is None
    header = planner.read_header(model_path("sdxl-base") / "unet/diffusion_pytorch_model.fp16.safetensors")
    assert {k: tuple(v["shape"]) for k, v in header.items()} == shapes["unet"]


def test_sdxl_inpaint_layout_needs_its_unet(hub_xl, tmp_path):
    from pixelsmith.engines.diffusers.pull import PullError, import_folder

    root, _ = hub_xl
    broken = tmp_path / "sdxl-inpaint"
    shutil.copytree(root / "sdxl-inpaint", broken, ignore=shutil.ignore_patterns("*.safetensors"))
    with pytest.raises(PullError, match="unet/diffusion_pytorch_model.fp16.safetensors"):
        import_folder("sdxl-inpaint", tmp_path, log=lambda line: None)
