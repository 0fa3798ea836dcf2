"""Server overhead per request: end-to-end latency minus the time spent inside the tool.

Starts ``pixelsmith serve`` on loopback (auth off, no rate limit), sends N
sequential requests of a tiny fast-upscale (32x32 -> 128x128) through each wire
format, and subtracts the server's ``x-pixelsmith-tool-seconds`` header (time in
``core.run``: the recipe plus encoding) from each client-measured latency. What is
left is HTTP, multipart/JSON parsing, input decoding, auth, limits and logging.

    .venv/bin/python bench/server_overhead.py [--requests 300]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import requests
from PIL import Image


def start_server(port: int, *extra: str) -> subprocess.Popen:
    try:
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        raise SystemExit(f"something already listens on port {port}; pass another --port")
    except requests.ConnectionError:
        pass
    env = {**os.environ, "PIXELSMITH_DATA": tempfile.mkdtemp(prefix="pixelsmith-bench-")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pixelsmith",
            "serve",
            "--port",
            str(port),
            "--rate",
            "0",
            "--log-level",
            "warning",
            *extra,
        ],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except requests.RequestException:  # not listening yet, or busy loading models
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not become ready")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tiny_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (90, 140, 30)).save(buf, "PNG")
    return buf.getvalue()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--port", type=int, default=8791)
    args = ap.parse_args()
    proc = start_server(args.port, "--preload")
    base = f"http://127.0.0.1:{args.port}"
    image = tiny_png()
    body = json.dumps({"image": base64.b64encode(image).decode(), "output_format": "png"})
    session = requests.Session()
    calls = {
        "rest raw (accept image/*)": lambda: session.post(
            base + "/v2beta/stable-image/upscale/fast", files={"image": image}, headers={"accept": "image/*"}
        ),
        "rest json (accept application/json)": lambda: session.post(
            base + "/v2beta/stable-image/upscale/fast", files={"image": image}, headers={"accept": "application/json"}
        ),
        "bedrock invoke (JSON, base64)": lambda: session.post(
            base + "/model/us.stability.stable-fast-upscale-v1%3A0/invoke", data=body
        ),
    }
    try:
        for name, call in calls.items():
            for _ in range(10):  # warm-up
                call()
            overhead, total = [], []
            for _ in range(args.requests):
                t = time.perf_counter()
                r = call()
                elapsed = time.perf_counter() - t
                assert r.status_code == 200, r.text
                total.append(elapsed)
                overhead.append(elapsed - float(r.headers["x-pixelsmith-tool-seconds"]))
            ms = [v * 1000 for v in overhead]
            print(
                f"{name:38s} n={len(ms)}  overhead p50 {statistics.median(ms):6.2f} ms  p90 "
                f"{percentile(ms, 0.9):6.2f} ms  p99 {percentile(ms, 0.99):6.2f} ms   (end-to-end p50 "
                f"{statistics.median(total) * 1000:6.2f} ms)"
            )
        # The stack alone, with no tool: requests that go through HTTP, auth, limits, multipart/JSON parsing and
        # validation but stop at a 400. Server CPU per request is immune to other processes' load.
        probes = {
            "rest 400 (multipart, bad image)": lambda: session.post(
                base + "/v2beta/stable-image/upscale/fast", files={"image": b"nope"}
            ),
            "bedrock 400 (JSON, unknown field)": lambda: session.post(
                base + "/model/us.stability.stable-fast-upscale-v1%3A0/invoke", data='{"x": 1}'
            ),
            "GET /healthz": lambda: session.get(base + "/healthz"),
        }
        for name, call in probes.items():
            for _ in range(10):
                call()
            cpu0, total = cpu_seconds(proc.pid), []
            for _ in range(args.requests):
                t = time.perf_counter()
                call()
                total.append((time.perf_counter() - t) * 1000)
            cpu = (cpu_seconds(proc.pid) - cpu0) / args.requests * 1000
            print(
                f"{name:38s} n={len(total)}  wall p50 {statistics.median(total):6.2f} ms  p99 "
                f"{percentile(total, 0.99):6.2f} ms   server CPU {cpu:5.2f} ms/request"
            )
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
