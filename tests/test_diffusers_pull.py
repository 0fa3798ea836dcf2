"""``pixelsmith models pull``: --from a local folder, HF_HUB_OFFLINE from a populated cache, hub verification.

No network: the hub path is exercised with huggingface_hub's two calls replaced
by a local stand-in that lays files out as snapshot_download would.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import shutil
import types

import pytest
from click.testing import CliRunner

from pixelsmith.cli.main import build


def cli(*args: str):
    return CliRunner().invoke(build(), list(args))


@pytest.fixture(scope="module")
def sam_folder(tmp_path_factory):
    from pixelsmith.engines.diffusers import tiny

    return tiny.build_sam(tmp_path_factory.mktemp("src") / "sam-vit-base")


@pytest.fixture
def models(tmp_path, monkeypatch):
    root = tmp_path / "models"
    monkeypatch.setenv("PIXELSMITH_MODELS", str(root))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return root


def test_resolve_names_tools_and_all():
    from pixelsmith.engines.diffusers.pull import PullError, resolve

    assert resolve(["search-and-replace"]) == ["sd3.5-large", "owlv2-base", "sam-vit-base"]
    assert resolve(["sketch", "sd3.5-large"]) == ["sd3.5-large", "sd3.5-large-controlnet-canny"]
    everything = resolve(["all"])
    assert {"sd3.5-large", "sd3.5-medium", "sam-vit-base", "sd3.5-large-ip-adapter"} <= set(everything)
    assert "isnet-general" not in everything  # embedded models come from `models fetch`
    with pytest.raises(PullError, match="neither a model nor a tool"):
        resolve(["no-such-thing"])


def test_pull_from_folder_with_the_cli(models, sam_folder):
    from pixelsmith.models import is_installed

    assert not is_installed("sam-vit-base")
    result = cli("models", "pull", "sam-vit-base", "--from", str(sam_folder))
    assert result.exit_code == 0, result.output
    assert is_installed("sam-vit-base")
    info = json.loads((models / "sam-vit-base" / ".complete").read_text())
    assert info["source"] == "folder" and (models / "sam-vit-base" / "config.json").is_file()
    listing = cli("models", "--json")
    row = next(r for r in json.loads(listing.output) if r["name"] == "sam-vit-base")
    assert row["installed"] and row["size_on_disk"] > 0
    assert {"search-and-replace", "search-and-recolor", "remove-background"} <= set(row["tools"])
    again = cli("models", "pull", "sam-vit-base", "--from", str(sam_folder))
    assert "already installed" in again.output


def test_pull_refuses_a_folder_of_the_wrong_kind(models, sam_folder):
    from pixelsmith.models import is_installed

    result = cli("models", "pull", "sd3.5-large", "--from", str(sam_folder))
    assert result.exit_code == 1
    assert "does not look like this model" in result.output and "model_index.json" in result.output
    assert not is_installed("sd3.5-large")


def _hub_cache(root: pathlib.Path, repo_id: str, src: pathlib.Path) -> pathlib.Path:
    """A Hugging Face cache holding one snapshot of repo_id (the layout snapshot_download leaves)."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    sha = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(src, repo / "snapshots" / sha)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    return repo / "snapshots" / sha


def test_offline_pull_uses_the_populated_hf_cache(models, sam_folder, tmp_path, monkeypatch):
    from pixelsmith.engines.diffusers import components
    from pixelsmith.engines.diffusers.pull import PullError, pull
    from pixelsmith.models import is_installed

    cache = tmp_path / "hf"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    with pytest.raises(PullError, match="not in the Hugging Face cache"):
        pull(["sam-vit-base"], log=lambda line: None)
    snapshot = _hub_cache(cache, "facebook/sam-vit-base", sam_folder)
    pull(["sam-vit-base"], log=lambda line: None)
    assert is_installed("sam-vit-base")
    weights = components.weights_dir("sam-vit-base")
    assert (weights / "config.json").is_symlink()  # linked, not copied
    assert (weights / "model.safetensors").resolve() == (snapshot / "model.safetensors").resolve()
    row = next(r for r in json.loads(cli("models", "--json").output) if r["name"] == "sam-vit-base")
    assert row["installed"] and row["size_on_disk"] >= (snapshot / "model.safetensors").stat().st_size
    # ...and the engine loads it from there.
    model = components.hf_model("sam-vit-base", "SamModel")
    assert model.config.vision_config.hidden_size == 32
    components.STORE.clear()


def test_hub_download_is_verified_against_published_sha256(models, sam_folder, monkeypatch):
    import huggingface_hub

    from pixelsmith.engines.diffusers.pull import PullError, pull
    from pixelsmith.models import is_installed

    files = {p.name: p for p in sam_folder.iterdir() if p.is_file()}
    digest = {n: hashlib.sha256(p.read_bytes()).hexdigest() for n, p in files.items()}
    tamper = {"on": True}

    class Api:
        def __init__(self, token=None):
            self.token = token

        def model_info(self, repo_id, revision=None, files_metadata=False):
            sibs = [
                types.SimpleNamespace(
                    rfilename=n, lfs=types.SimpleNamespace(sha256=d, size=0) if n.endswith(".safetensors") else None
                )
                for n, d in digest.items()
            ]
            return types.SimpleNamespace(sha="f" * 40, siblings=sibs)

    def snapshot_download(repo_id, revision=None, allow_patterns=None, local_dir=None, token=None):
        for name, path in files.items():
            shutil.copy(path, pathlib.Path(local_dir) / name)
        if tamper["on"]:
            (pathlib.Path(local_dir) / "model.safetensors").write_bytes(b"truncated")
        return local_dir

    monkeypatch.setattr(huggingface_hub, "HfApi", Api)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    (models / "sam-vit-base").mkdir(parents=True)
    with pytest.raises(PullError, match="sha256 mismatch for model.safetensors"):
        pull(["sam-vit-base"], token="hf_x", log=lambda line: None)
    assert not is_installed("sam-vit-base")
    tamper["on"] = False
    pull(["sam-vit-base"], token="hf_x", log=lambda line: None)
    assert is_installed("sam-vit-base")
    info = json.loads((models / "sam-vit-base" / ".complete").read_text())
    assert info == {**info, "source": "hub", "repo": "facebook/sam-vit-base", "revision": "f" * 40}
