"""The wheel as a pip user gets it: built from the tree, installed into a fresh venv with the pins as constraints.

Slow (about a minute: the venv's install comes from the pip cache and the local index); run with ``-m slow``.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request

import pytest
from conftest import ROOT
from PIL import Image

import pixelsmith


def test_version_is_declared_once_in_each_place():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == pixelsmith.__version__
    assert (ROOT / "pixelsmith" / "py.typed").is_file()  # listed as package data: it must exist


def test_extras_name_every_front_door_and_engine():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    names = lambda reqs: {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower() for r in reqs}  # noqa: E731
    assert {"fastapi", "uvicorn", "python-multipart", "prometheus-client"} <= names(extras["server"])
    assert {"torch", "diffusers", "transformers", "accelerate", "huggingface-hub", "safetensors"} <= names(
        extras["diffusers"]
    )
    assert "ray" in names(extras["ray"]) and {"torch", "onnx"} <= names(extras["segment"])
    # mediapipe itself is installed --no-deps; the extra lists what it really needs at run time
    assert "mediapipe" not in names(extras["people"]) and {"absl-py", "flatbuffers"} <= names(extras["people"])
    assert set(extras) - {"all", "dev"} <= set(re.findall(r"[a-z]+", extras["all"][0].split("[", 1)[1]))
    base = names(project["dependencies"])
    assert {"onnxruntime", "ncnn", "opencv-contrib-python-headless", "fsspec"} <= base
    assert not base & {"fastapi", "torch", "diffusers", "ray"}  # the base install stays the embedded engine's
    # every range is loose: exact pins live in requirements.txt only
    assert not [r for reqs in [project["dependencies"], *extras.values()] for r in reqs if "==" in r]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path):
    dist = tmp_path / "dist"
    # no PYTHONPATH: a source tree on it would be "pixelsmith, already installed" to the venv's pip
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run = lambda *args, env=clean, **kw: subprocess.run(  # noqa: E731
        [str(a) for a in args], capture_output=True, text=True, timeout=300, env=env, **kw
    )
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ROOT)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = dist.glob("pixelsmith-*.whl")
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv).returncode == 0
    py, cli = venv / "bin" / "python", venv / "bin" / "pixelsmith"
    # requirements.txt as constraints (pip refuses extras in a constraints file: ray[serve,data] -> ray)
    constraints = tmp_path / "constraints.txt"
    pins = (ROOT / "requirements.txt").read_text()
    constraints.write_text(re.sub(r"^([A-Za-z0-9_.-]+)\[[^\]]*\]", r"\1", pins, flags=re.M))
    installed = run(py, "-m", "pip", "install", "-q", f"{wheel}[server]", "-c", constraints)
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert (venv / "bin" / "pixelsmith").is_file(), installed.stdout[-3000:]

    home = pathlib.Path(os.environ.get("PIXELSMITH_HOME") or pathlib.Path.home() / ".cache" / "pixelsmith")
    env = {**clean, "PIXELSMITH_HOME": str(home), "COLUMNS": "120"}
    outside = tmp_path / "elsewhere"  # not the source tree: the installed package must be what runs
    outside.mkdir()
    kw = {"env": env, "cwd": outside}

    version = run(cli, "--version", **kw)
    assert version.returncode == 0 and version.stdout.strip() == f"pixelsmith {pixelsmith.__version__}"
    where = run(py, "-c", "import pixelsmith, pathlib; print(pathlib.Path(pixelsmith.__file__).parent)", **kw)
    package = pathlib.Path(where.stdout.strip())
    assert package.is_relative_to(venv) and (package / "py.typed").is_file()
    assert (package / "studio" / "static").is_dir()

    fetched = run(cli, "models", "fetch", **kw)  # the cache is populated: verify only, no download
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert "isnet-general: already installed" in fetched.stdout

    src = tmp_path / "small.png"
    Image.open(ROOT / "samples" / "remove_background_input.png").convert("RGB").resize((64, 48)).save(src)
    out = tmp_path / "big.png"
    ran = run(cli, "run", "fast-upscale", src, "-o", out, "--json", **kw)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["engine"] == "embedded" and Image.open(out).size == (256, 192)

    port = _free_port()
    server = subprocess.Popen(
        [str(cli), "serve", "--port", str(port), "--lazy", "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        **kw,
    )
    try:
        deadline, answer = time.time() + 60, None
        while time.time() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                    answer = (reply.status, reply.read())
                    break
            except OSError:
                time.sleep(0.3)
        assert answer is not None and answer[0] == 200, server.stderr.read().decode()[-3000:] if server.stderr else ""
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    assert server.poll() is not None  # no leftover process
