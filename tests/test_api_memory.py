"""Memory is given back after a large request (issue 17, hole 9): the server's resident size returns
to near its idle level once a large answer is sent (gc + glibc malloc_trim), instead of keeping the
request's peak. bench/memory.py measures three maximal fast-upscales in a server process."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import requests
from PIL import Image

pytest.importorskip("pixelsmith.api.app")

from pixelsmith.api.app import Settings  # noqa: E402
from pixelsmith.api.memory import LARGE_PIXELS, is_large, release_memory, rss_bytes  # noqa: E402
from pixelsmith.api.testing import LiveServer  # noqa: E402

FAST = "/v2beta/stable-image/upscale/fast"
MiB = 2**20


def photo(width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(small).resize((width, height), Image.BICUBIC).save(buf, "PNG")
    return buf.getvalue()


def test_what_counts_as_large_and_that_the_release_runs():
    class Out:
        def __init__(self, size):
            self.image = Image.new("L", size) if size else None
            self.data = b""

    assert is_large(Out((4096, 1024))) and not is_large(Out((1024, 1024)))
    assert LARGE_PIXELS == 4_000_000
    assert release_memory() is True  # glibc: malloc_trim ran


@pytest.mark.slow
def test_rss_returns_near_its_idle_level_after_a_large_request(tmp_path, embedded_models):
    with LiveServer(Settings(data_dir=str(tmp_path / "srv"), auth=False, access_log=False)) as srv:

        def upscale(image: bytes) -> requests.Response:
            r = requests.post(
                srv.url + FAST,
                files={"image": ("p.png", image, "image/png")},
                headers={"accept": "image/*"},
                timeout=600,
            )
            assert r.status_code == 200, r.text
            return r

        upscale(photo(64, 64, 0))  # the model loads: part of the idle size
        time.sleep(0.5)
        idle = rss_bytes()
        r = upscale(photo(1024, 512, 1))  # 4096x2048 out: 8 MP, half the tool's maximum
        assert Image.open(io.BytesIO(r.content)).size == (4096, 2048)
        del r
        time.sleep(1.0)  # the release runs just after the answer is sent
        grown = (rss_bytes() - idle) / MiB
        # generous: the point is that the request's peak (hundreds of MB more) is not kept
        assert grown < 250, f"RSS grew by {grown:.0f} MiB after one large request"
