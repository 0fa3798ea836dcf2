"""Memory: RSS of a server process before and after maximal fast-upscales (issue 17, hole 9).

Starts ``pixelsmith serve`` (auth and rate limit off), sends one small request (models load),
then N fast-upscales of distinct W x H images (default 1536x640: a 6144x2560 output, ~16 MP, the
tool's maximum), one after another, and reads the server's RSS from /proc after each. With
``--no-release`` the server runs with ``PIXELSMITH_RELEASE_MEMORY=0`` (no gc + malloc_trim after
large answers), to show what the release saves.

    .venv/bin/python bench/memory.py [--runs 3] [--size 1536x640] [--no-release]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time

import numpy as np
import requests
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from server_overhead import start_server, tiny_png  # noqa: E402 (bench/ is run as a folder)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def photo(width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((width, height), Image.BICUBIC)  # textured, compresses a little
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", default="1536x640")
    ap.add_argument("--port", type=int, default=8793)
    ap.add_argument("--no-release", action="store_true")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    if args.no_release:
        os.environ["PIXELSMITH_RELEASE_MEMORY"] = "0"
    proc = start_server(args.port)
    url = f"http://127.0.0.1:{args.port}/v2beta/stable-image/upscale/fast"
    try:
        r = requests.post(url, files={"image": ("s.png", tiny_png(), "image/png")}, headers={"accept": "image/*"})
        r.raise_for_status()
        time.sleep(1)
        idle = rss_mib(proc.pid)
        print(f"release={'off' if args.no_release else 'on'} size={width}x{height} idle RSS {idle:.0f} MiB")
        for n in range(args.runs):
            started = time.monotonic()
            r = requests.post(
                url, files={"image": ("p.png", photo(width, height, n), "image/png")}, headers={"accept": "image/*"}
            )
            r.raise_for_status()
            time.sleep(1)
            print(
                f"run {n + 1}: {time.monotonic() - started:.1f} s, output {len(r.content) / 2**20:.1f} MiB, "
                f"RSS after {rss_mib(proc.pid):.0f} MiB (+{rss_mib(proc.pid) - idle:.0f})"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
