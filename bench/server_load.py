"""Load: 32 concurrent clients on loopback for 60 s against an embedded tool.

Starts ``pixelsmith serve`` (auth off, rate limit off, default concurrency and
queue) and drives it with C client threads, each sending fast-upscale requests
(a 32x32 PNG; REST multipart, or Bedrock JSON with --api bedrock) back to back.
Reports throughput, latency p50/p99 and every non-200 answer (the goal is 0).

    .venv/bin/python bench/server_load.py [--clients 32] [--seconds 60] [--api rest|bedrock] [--workers 1]
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import threading
import time

import requests
from server_overhead import percentile, start_server, tiny_png  # noqa: E402 (bench/ is run as a folder)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--api", choices=("rest", "bedrock"), default="rest")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--port", type=int, default=8792)
    args = ap.parse_args()
    proc = start_server(args.port, "--preload", "--workers", str(args.workers), "--queue", str(args.clients * 2))
    base = f"http://127.0.0.1:{args.port}"
    image = tiny_png()
    body = json.dumps({"image": base64.b64encode(image).decode()})
    latencies: list[float] = []
    failures: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    stop_at = time.monotonic() + args.seconds

    def client() -> None:
        session = requests.Session()
        while time.monotonic() < stop_at:
            t = time.perf_counter()
            try:
                if args.api == "rest":
                    r = session.post(base + "/v2beta/stable-image/upscale/fast", files={"image": image}, timeout=300)
                else:
                    r = session.post(
                        base + "/model/us.stability.stable-fast-upscale-v1%3A0/invoke", data=body, timeout=300
                    )
                outcome = "ok" if r.status_code == 200 else f"HTTP {r.status_code}"
            except requests.RequestException as exc:
                outcome = type(exc).__name__
            elapsed = time.perf_counter() - t
            with lock:
                if outcome == "ok":
                    latencies.append(elapsed)
                else:
                    failures[outcome] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    metrics = requests.get(base + "/metrics").text
    proc.terminate()
    proc.wait(30)
    ms = [v * 1000 for v in latencies]
    print(f"{args.clients} clients, {args.api}, fast-upscale 32x32 -> 128x128, {wall:.1f} s, workers {args.workers}")
    print(f"ok {len(ms)}  errors {sum(failures.values())} {dict(failures) or ''}")
    if ms:
        print(
            f"throughput {len(ms) / wall:.2f} req/s   latency p50 {percentile(ms, 0.5):.0f} ms  "
            f"p99 {percentile(ms, 0.99):.0f} ms  max {max(ms):.0f} ms"
        )
    for line in metrics.splitlines():
        if line.startswith(("pixelsmith_tool_seconds_sum", "pixelsmith_tool_seconds_count")):
            print(line)


if __name__ == "__main__":
    main()
