"""Ray: a local two-node cluster on loopback (head + one worker node via `ray start`), a manifest
through Ray Data with a Ray worker killed mid-batch (exactly once, by checksums), and
`pixelsmith serve --ray` answering REST and Bedrock requests through Ray Serve. Run alone with `pytest -m ray`.

Hermetic: every Ray process the module starts listens on loopback only (checked while the cluster runs),
and after its teardown none of them is left (checked against the process list taken before)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import pathlib
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from PIL import Image

from pixelsmith.jobs.ray_local import (
    CLUSTER_ENV,
    LOOPBACK_ENV,
    LocalCluster,
    _cmdline,
    _environ,
    cluster_pids,
    is_loopback,
    listening,
    ray_pids,
)

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "PIXELSMITH_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def not_on_loopback(sockets: list[tuple[int, str, int]]) -> list[str]:
    return [f"{_cmdline(pid)[:100]} (pid {pid}) on {ip}:{port}" for pid, ip, port in sockets if not is_loopback(ip)]


def serve_log_errors(temp: str, limit: int = 6000) -> str:
    """The tracebacks and ERROR lines of the Serve logs (gateway and replicas), for a failed assertion's message:
    a 500 from the cluster says nothing by itself."""
    found = []
    for f in sorted(pathlib.Path(temp).glob("session_latest/logs/**/*")):
        if not f.is_file() or f.suffix not in (".log", ".err", ".out"):
            continue
        text = f.read_text(errors="replace")
        for m in re.finditer(r"(?m)^.*(ERROR|Traceback|Exception).*$", text):
            found.append(f"{f.name}: {text[m.start() : m.start() + 1500]}")
    return ("\n".join(found) or "(no ERROR or Traceback in the Serve logs)")[-limit:]


# Ray Serve 2.60 starts each replica's inter-deployment gRPC server on [::]:0 whatever the node address
# (ray/serve/_private/replica.py); nothing outside Ray can pin it. Only that listener of a replica is excused.
def serve_replica_grpc(pid: int) -> bool:
    return _cmdline(pid).startswith("ray::ServeReplica")


@pytest.fixture(scope="module")
def hermetic():
    """The Ray processes before the module; after the cluster's teardown no new one may be left, and none
    of the tests' processes may still listen anywhere. (Another LocalCluster's processes, named by their
    own marker, are someone else's run on this machine and are not counted.)"""
    before = ray_pids()
    started: dict[str, LocalCluster] = {}
    yield started
    cluster = started.get("cluster")
    ours = cluster.temp if cluster is not None else None

    def leftover() -> set[int]:
        return {p for p in ray_pids() - before if _environ(p).get(CLUSTER_ENV) in (None, ours)}

    deadline = time.time() + 30
    while leftover() and time.time() < deadline:
        time.sleep(0.5)
    left = leftover()
    assert not left, "Ray processes left after teardown:\n" + "\n".join(f"{p}: {_cmdline(p)[:160]}" for p in left)
    assert not listening(left)


@pytest.fixture(scope="module")
def cluster(hermetic, embedded_models, tmp_path_factory):
    """Head + one worker node. Their models folder holds the embedded weights and a tiny random-weight
    SD3.5 (CPU, 2 steps), so the diffusers deployment can serve generate without real weights."""
    from pixelsmith.config import models_dir
    from pixelsmith.engines.diffusers import tiny
    from pixelsmith.engines.diffusers.pull import pull
    from pixelsmith.models.catalog import CATALOG

    models, built = tmp_path_factory.mktemp("models"), tmp_path_factory.mktemp("tiny")
    for entry in models_dir().iterdir():
        if entry.name in CATALOG and CATALOG[entry.name].engine == "embedded":
            (models / entry.name).symlink_to(entry)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIXELSMITH_MODELS", str(models))
        tiny.build_all(built, names=["sd3.5-large"])
        pull(["sd3.5-large"], source=built, log=lambda line: None)
    ray_cluster = LocalCluster(worker_nodes=1, cpus_per_node=1)
    hermetic["cluster"] = ray_cluster
    ray_cluster.env.update(PIXELSMITH_MODELS=str(models), PIXELSMITH_DEVICE="cpu", PIXELSMITH_DIFFUSION_STEPS="2")
    # the drivers these tests start connect on loopback and are counted as the cluster's
    ENV.update({**LOOPBACK_ENV, CLUSTER_ENV: ray_cluster.temp})
    with ray_cluster as c:  # torn down by process group and pid in a finally
        sockets = c.listening()
        assert len({pid for pid, _, _ in sockets}) >= 4, sockets  # GCS, raylets, agents, client server...
        assert not not_on_loopback(sockets)
        yield c.address, c.temp
        assert not not_on_loopback(c.listening())  # and still so after the tests ran on it


def test_ray_data_batch_is_exactly_once_when_a_ray_worker_is_killed(cluster, tmp_path, samples):
    address, temp = cluster
    src = Image.open(samples / "remove_background_input.png").convert("RGB")
    for i in range(10):
        src.crop((i * 50, i * 40, i * 50 + 500, i * 40 + 500)).resize((128, 128)).save(tmp_path / f"r{i}.png")
    (tmp_path / "m.yaml").write_text(
        "output: out\nsteps: [{tool: fast-upscale, output_format: webp}]\nitems: ['r*.png']\n"
    )
    db = tmp_path / "out" / ".pixelsmith-batch.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pixelsmith", "batch", "m.yaml", "--ray", address, "--workers", "2", "--no-progress"],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
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
    pids = {json.loads(r[3])["ray_pid"] for r in rows}
    assert killed not in pids or len(pids) >= 2  # the work went on in another actor process


def png_bytes(size: tuple[int, int] = (64, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 90)).save(buf, "PNG")
    return buf.getvalue()


def test_pixelsmith_serve_on_ray_answers_rest_and_bedrock_with_auth(cluster, tmp_path):
    """`pixelsmith serve --ray ADDRESS` as a user runs it: the server app on Ray Serve, keys required."""
    address, temp = cluster
    data = tmp_path / "server"
    made = subprocess.run(
        [sys.executable, "-m", "pixelsmith", "keys", "create", "--json", "--data-dir", str(data)],
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
    )
    bearer = {"Authorization": f"Bearer {json.loads(made.stdout)['bearer']}"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    # no --engine: both groups, as installed. (Started as the suite runs: in the background of a CI step SIGINT
    # comes ignored, and the server must still stop on the Ctrl-C below.)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pixelsmith",
                "serve",
                "--ray",
                address,
                "--port",
                str(port),
                "--auth",
                "--data-dir",
                str(data),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            # a Serve batch of up to 3, held up to 5 s for the rest to come: one batch below
            env={**ENV, "PIXELSMITH_MAX_BATCH": "3", "PIXELSMITH_SERVE_BATCH_WAIT_S": "5"},
        )
    try:
        deadline = time.time() + 120
        while "pixelsmith serving on Ray Serve" not in log.read_text():
            assert proc.poll() is None and time.time() < deadline, log.read_text()
            time.sleep(0.5)
        assert f"serving on Ray Serve at {url}  auth ON" in log.read_text()
        assert "deployments: Gateway, tools-embedded, tools-diffusers" in log.read_text()
        replicas = [_cmdline(p) for p in cluster_pids(temp)]
        assert any("tools-embedded" in c for c in replicas) and any("Gateway" in c for c in replicas)
        serving = listening(cluster_pids(temp) | {proc.pid})  # the cluster, its Serve actors and the driver
        assert any(port == int(url.rsplit(":", 1)[1]) for _, _, port in serving)  # the HTTP proxy, on loopback
        assert not not_on_loopback([s for s in serving if not serve_replica_grpc(s[0])])

        # Stability REST v2beta, multipart
        image = png_bytes()
        refused = requests.post(url + "/v2beta/stable-image/upscale/fast", files={"image": image}, timeout=30)
        assert refused.status_code == 401 and refused.json()["name"] == "unauthorized"
        r = requests.post(
            url + "/v2beta/stable-image/upscale/fast",
            files={"image": image},
            data={"output_format": "png"},
            headers={**bearer, "Accept": "image/*"},
            timeout=60,
        )
        assert r.status_code == 200, r.text + "\n" + serve_log_errors(temp)
        assert r.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(r.content)).size == (256, 256)
        bad = requests.post(
            url + "/v2beta/stable-image/upscale/fast",
            data={"output_format": "png"},
            files={"other": b"x"},
            headers=bearer,
            timeout=30,
        )
        assert bad.status_code == 400 and bad.json()["name"] == "bad_request"

        # Amazon Bedrock InvokeModel, JSON
        invoke = url + "/model/us.stability.stable-fast-upscale-v1:0/invoke"
        body = json.dumps({"image": base64.b64encode(png_bytes((32, 48))).decode(), "output_format": "png"})
        r = requests.post(invoke, data=body, headers={**bearer, "Content-Type": "application/json"}, timeout=60)
        assert r.status_code == 200, r.text + "\n" + serve_log_errors(temp)
        out = r.json()
        assert out["finish_reasons"] == [None]
        assert Image.open(io.BytesIO(base64.b64decode(out["images"][0]))).size == (128, 192)
        r = requests.post(
            invoke,
            data=json.dumps({"output_format": "png"}),
            headers={**bearer, "Content-Type": "application/json"},
            timeout=30,
        )
        assert r.status_code == 400 and r.headers["x-amzn-ErrorType"].startswith("ValidationException")

        # Concurrent text-to-image requests to the diffusers deployment: one @serve.batch, one pipeline call.
        generate = url + "/model/stability.sd3-5-large-v1:0/invoke"

        def invoke_generate(seed: int) -> requests.Response:
            return requests.post(
                generate,
                data=json.dumps({"prompt": "a red cat", "seed": seed}),
                headers={**bearer, "Content-Type": "application/json"},
                timeout=150,
            )

        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(invoke_generate, (21, 22, 23)))
        for seed, r in zip((21, 22, 23), answers):
            assert r.status_code == 200, r.text + "\n" + serve_log_errors(temp)
            assert r.json()["seeds"] == [seed]
            assert Image.open(io.BytesIO(base64.b64decode(r.json()["images"][0]))).size == (64, 64)
        replica_logs = "".join(
            f.read_text(errors="replace")
            for f in pathlib.Path(temp).glob("session_latest/logs/serve/*tools-diffusers*")
        )
        assert "serve batch of 3 generate request(s); pipeline batch sizes [3]" in replica_logs

        # The gateway only routed: the tool ran (and loaded its model) in the tools-embedded replica.
        metrics = requests.get(url + "/metrics", timeout=30).text
        assert 'pixelsmith_tool_seconds_count{engine="embedded",tool="fast-upscale"} 2.0' in metrics
        assert "pixelsmith_model_load_seconds{" not in metrics
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: shuts Serve down on the cluster
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()  # (a failure above stays the one reported; the assertion below names this one)
            proc.wait()
    assert proc.returncode == 0 and "Ray Serve shut down" in log.read_text(), (
        f"exit code {proc.returncode} (-9: still running 90 s after Ctrl-C):\n{log.read_text()[-3000:]}"
    )
    for _ in range(60):  # the replicas exit shortly after
        if not any("tools-embedded" in _cmdline(p) for p in cluster_pids(temp)):
            break
        time.sleep(0.5)
    assert not any("tools-embedded" in _cmdline(p) for p in cluster_pids(temp))
