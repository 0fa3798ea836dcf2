"""Ray: a local two-node cluster on loopback (head + one worker node via `ray start`), a manifest
through Ray Data with a Ray worker killed mid-batch (exactly once, by checksums), and one request
through Ray Serve. Run alone with `pytest -m ray`."""
from __future__ import annotations

import base64
import hashlib
import io
import os
import pathlib
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pytest
import requests
from PIL import Image

from pixelsmith.jobs.ray_local import _cmdline, cluster_pids, LocalCluster

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "PIXELSMITH_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(embedded_models):
    with LocalCluster(worker_nodes=1, cpus_per_node=1) as c:  # torn down by pid in a finally
        yield c.address, c.temp


def test_ray_data_batch_is_exactly_once_when_a_ray_worker_is_killed(cluster, tmp_path, samples):
    address, temp = cluster
    src = Image.open(samples / "remove_background_input.png").convert("RGB")
    for i in range(10):
        src.crop((i * 50, i * 40, i * 50 + 500, i * 40 + 500)).resize((128, 128)).save(tmp_path / f"r{i}.png")
    (tmp_path / "m.yaml").write_text("output: out\nsteps: [{tool: fast-upscale, output_format: webp}]\n"
                                     "items: ['r*.png']\n")
    db = tmp_path / "out" / ".pixelsmith-batch.db"
    proc = subprocess.Popen([sys.executable, "-m", "pixelsmith", "batch", "m.yaml", "--ray", address, "--workers",
                             "2", "--no-progress"], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    killed = None
    try:
        deadline = time.time() + 150
        while time.time() < deadline and killed is None and proc.poll() is None:
            time.sleep(0.2)
            actors = [p for p in cluster_pids(temp) if "ItemRunner" in _cmdline(p)]
            done = 0
            if db.exists():
                try:
                    done = sqlite3.connect(db).execute("SELECT count(*) FROM items WHERE state='done'").fetchone()[0]
                except sqlite3.OperationalError:
                    pass
            if actors and done >= 1:
                killed = actors[0]
                os.kill(killed, signal.SIGKILL)
        output, _ = proc.communicate(timeout=max(10, deadline - time.time()))
    finally:
        proc.kill()
    assert killed is not None, "no Ray actor was seen running the batch"
    assert proc.returncode == 0, output
    rows = sqlite3.connect(db).execute("SELECT key, state, checksum, result FROM items").fetchall()
    assert len(rows) == 10 and {r[1] for r in rows} == {"done"}
    for key, _state, checksum, _result in rows:
        data = pathlib.Path(key).read_bytes()
        assert hashlib.sha256(data).hexdigest() == checksum
        assert Image.open(io.BytesIO(data)).size == (512, 512)
    names = sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".pixelsmith-batch"))
    assert names == sorted(f"r{i}-fast-upscale.webp" for i in range(10))  # once each, no *.part
    pids = {__import__("json").loads(r[3])["ray_pid"] for r in rows}
    assert killed not in pids or len(pids) >= 2  # the work went on in another actor process


def test_ray_serve_answers_a_request(cluster, tmp_path):
    address, _temp = cluster
    port = free_port()
    code = ("from pixelsmith.jobs.ray_serve import serve_on_ray; "
            f"serve_on_ray({address!r}, '127.0.0.1', {port}, engines=['embedded'])")
    proc = subprocess.Popen([sys.executable, "-c", code], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/ray/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:  # the proxy is up before the app is
                pass
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(1)
        img = Image.new("RGB", (64, 64), (10, 200, 90))
        buf = io.BytesIO()
        img.save(buf, "PNG")
        resp = requests.post(f"http://127.0.0.1:{port}/ray/v1/run/fast-upscale", timeout=60,
                             json={"image": base64.b64encode(buf.getvalue()).decode(), "output_format": "png"})
        assert resp.status_code == 200, resp.text
        assert resp.headers["x-engine"] == "embedded"
        assert Image.open(io.BytesIO(resp.content)).size == (256, 256)
        bad = requests.post(f"http://127.0.0.1:{port}/ray/v1/run/fast-upscale", json={}, timeout=30)
        assert bad.status_code == 400
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
