"""Soak: 32 clients on loopback for 60 s mixing good, bad and maximal requests (issue 17).

Starts ``pixelsmith serve`` (loopback, auth off, rate limit off, ``--concurrency 2``) and drives it
with C client threads. One client sends maximal fast-upscales back to back (1536x640 in, ~16 MP
out: at most one in flight, so they cannot take every slot); the others pick, at random (seeded),
a good request (REST and Bedrock fast-upscale of a fresh 32x32 PNG, an identical repeated one that is
joined or reused, ``GET /v1/jobs``) or a bad one from
a small abuse corpus (garbage, truncated and missing images, non-JSON and unknown-model Bedrock
calls, traversal, dot-segment URL, too many items, loopback webhook). Every answer is compared
with the status that kind must get; anything else (another status, a connection error, a
timeout) is an **unexpected error** (the goal is 0). A 429 (cost budget) or 503 ("busy") answer to a
good or maximal request is the server shedding load on purpose, and counted apart. A probe times
``/healthz`` every 0.2 s, and the server's RSS is
sampled every 0.5 s.

    .venv/bin/python bench/soak.py [--clients 32] [--seconds 60] [--seed 1]

Loopback only; every loop is bounded by the deadline and a per-client request cap.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import requests
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from server_overhead import percentile, start_server  # noqa: E402 (bench/ is run as a folder)

FAST = "/v2beta/stable-image/upscale/fast"
BEDROCK_FAST = "/model/stability.stable-fast-upscale-v1:0/invoke"
MAX_REQUESTS_PER_CLIENT = 100_000
TIMEOUT_S = 300


def png(width: int, height: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(small).resize((width, height), Image.BICUBIC).save(buf, "PNG")
    return buf.getvalue()


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


Request = Callable[[requests.Session, str], requests.Response]


def kinds() -> dict[str, tuple[str, int, Request]]:
    """name -> (good | bad | maximal, the status it must get, how to send it)."""
    import base64

    tiny = png(32, 32)
    big = png(1536, 640, 7)

    def fresh() -> bytes:  # a new image each time: a real run, not an answer reused from an identical one
        return png(32, 32, random.randrange(2**32))

    def rest(image: bytes | Callable[[], bytes] | None, **data: str) -> Request:
        def send(s: requests.Session, u: str) -> requests.Response:
            body = image() if callable(image) else image
            files = {"image": ("a.png", body, "image/png")} if body is not None else None
            return s.post(
                u + FAST,
                files=files,
                data=data or {"output_format": "png"},
                headers={"accept": "image/*"},
                timeout=TIMEOUT_S,
            )

        return send

    def bedrock(body: bytes, path: str = BEDROCK_FAST) -> Request:
        return lambda s, u: s.post(u + path, data=body, timeout=TIMEOUT_S)

    def jobs(doc: dict) -> Request:
        return lambda s, u: s.post(
            u + "/v1/jobs", data=json.dumps(doc), headers={"content-type": "application/json"}, timeout=TIMEOUT_S
        )

    return {
        "rest-good": ("good", 200, rest(fresh)),
        "rest-repeat": ("good", 200, rest(tiny)),  # identical requests: joined or reused (PIXELSMITH_REUSE_S)
        "bedrock-good": (
            "good",
            200,
            lambda s, u: bedrock(json.dumps({"image": base64.b64encode(fresh()).decode()}).encode())(s, u),
        ),
        "jobs-list": ("good", 200, lambda s, u: s.get(u + "/v1/jobs", timeout=TIMEOUT_S)),
        "rest-garbage-image": ("bad", 400, rest(os.urandom(2048))),
        "rest-truncated-png": ("bad", 400, rest(tiny[: len(tiny) // 2])),
        "rest-no-image": ("bad", 400, rest(None, output_format="png")),
        "rest-bad-field": ("bad", 400, rest(tiny, output_format="tiff")),
        "bedrock-not-json": ("bad", 400, bedrock(b"{not json")),
        "bedrock-bad-base64": ("bad", 400, bedrock(json.dumps({"image": "!!!not base64!!!"}).encode())),
        "bedrock-unknown-model": ("bad", 404, bedrock(b"{}", "/model/stability.nope-v9:0/invoke")),
        "jobs-traversal": ("bad", 403, jobs({"items": ["../../../../etc/passwd"], "steps": ["fast-upscale"]})),
        "jobs-dot-segment-url": (
            "bad",
            403,
            jobs({"items": ["http://127.0.0.1:9/pub/%2e%2e/x.png"], "steps": ["fast-upscale"]}),
        ),
        "jobs-too-many-items": ("bad", 400, jobs({"items": ["/x.png"] * 2001, "steps": ["fast-upscale"]})),
        "jobs-loopback-webhook": (
            "bad",
            403,
            jobs({"items": ["/x.png"], "steps": ["fast-upscale"], "webhook": "http://127.0.0.1:9/hook"}),
        ),
        "rest-maximal": ("maximal", 200, rest(big)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--port", type=int, default=8794)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    table = kinds()
    small = [k for k, (group, _, _) in table.items() if group != "maximal"]
    weights = [6 if table[k][0] == "good" else 1 for k in small]  # about half good, half bad

    proc = start_server(args.port, "--concurrency", "2")
    url = f"http://127.0.0.1:{args.port}"
    lock = threading.Lock()
    latencies: dict[str, list[float]] = collections.defaultdict(list)
    counts: collections.Counter[str] = collections.Counter()
    unexpected: collections.Counter[str] = collections.Counter()
    shed = collections.Counter[str]()
    health: list[float] = []
    rss: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rss.append(rss_mib(proc.pid))
            stop.wait(0.5)

    def probe() -> None:
        with requests.Session() as s:
            while not stop.is_set():
                t = time.perf_counter()
                try:
                    ok = s.get(url + "/healthz", timeout=60).status_code == 200
                except requests.RequestException:
                    ok = False
                health.append(time.perf_counter() - t)
                if not ok:
                    with lock:
                        unexpected["healthz: not 200"] += 1
                stop.wait(0.2)

    def client(n: int, deadline: float) -> None:
        rng = random.Random(args.seed * 1000 + n)
        with requests.Session() as s:
            for _ in range(MAX_REQUESTS_PER_CLIENT):
                if time.monotonic() >= deadline:
                    return
                name = "rest-maximal" if n == 0 else rng.choices(small, weights)[0]
                group, want, send = table[name]
                t = time.perf_counter()
                try:
                    status = send(s, url).status_code
                except requests.RequestException as exc:
                    status, why = -1, type(exc).__name__
                else:
                    why = str(status)
                took = time.perf_counter() - t
                with lock:
                    counts[name] += 1
                    latencies[group].append(took)
                    if status == want:
                        pass
                    elif status in (429, 503) and group != "bad":  # refused by a limit, with Retry-After
                        shed[name] += 1
                    else:
                        unexpected[f"{name}: {why} (wanted {want})"] += 1

    threading.Thread(target=sample, daemon=True).start()
    try:
        time.sleep(1.0)
        start_rss = rss_mib(proc.pid)
        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        started = time.monotonic()
        deadline = started + args.seconds
        threads = [threading.Thread(target=client, args=(n, deadline)) for n in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - started
        time.sleep(2.0)  # the last large answer's memory release
        stop.set()
        prober.join()
        end_rss = rss_mib(proc.pid)
    finally:
        stop.set()
        proc.terminate()
        proc.wait(timeout=30)

    total = sum(counts.values())
    print(f"soak: {args.clients} clients, {args.seconds:g} s asked, {wall:.1f} s wall, {total} requests")
    for name in table:
        print(f"  {name:24s} {counts[name]:6d}")
    for group in ("good", "bad", "maximal"):
        lat = sorted(latencies[group])
        if lat:
            print(
                f"  latency {group:8s} n={len(lat):5d} p50 {percentile(lat, 0.50) * 1000:8.1f} ms "
                f"p99 {percentile(lat, 0.99) * 1000:9.1f} ms max {lat[-1] * 1000:9.1f} ms"
            )
    print(
        f"  /healthz: {len(health)} probes, max {max(health) * 1000:.1f} ms, "
        f"p99 {percentile(health, 0.99) * 1000:.1f} ms"
    )
    print(f"  server RSS: start {start_rss:.0f} MiB, peak {max(rss):.0f} MiB, end {end_rss:.0f} MiB")
    print(f"  load shed (429/503 to good/maximal requests): {sum(shed.values())} {dict(shed) or ''}")
    print(f"  unexpected errors: {sum(unexpected.values())}")
    for what, n in unexpected.most_common():
        print(f"    {n:5d}  {what}")


if __name__ == "__main__":
    main()
