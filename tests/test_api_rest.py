"""Stability REST v2beta through `requests` multipart against a live server on loopback."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import struct
import tempfile
import time
import zlib

import pytest
import requests
from PIL import Image

from pixelsmith.api import Settings
from pixelsmith.api.testing import LiveServer, shared_server
from pixelsmith.tools import all_tools

FAST = "/v2beta/stable-image/upscale/fast"


@pytest.fixture(scope="module")
def server():
    return shared_server("open")


def png(width: int = 32, height: int = 32, color=(200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header declaring a huge image, with one tiny IDAT: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def assert_rest_error(r: requests.Response, status: int, name: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"id", "name", "errors"}, body
    assert body["errors"] and all(isinstance(e, str) for e in body["errors"])
    assert "Traceback" not in r.text
    if name:
        assert body["name"] == name, body
    return body


def test_raw_image_response(server):
    r = requests.post(
        server.url + FAST,
        headers={"accept": "image/*"},
        files={"image": ("in.png", png(32, 48))},
        data={"output_format": "webp"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/webp"
    assert r.headers["finish-reason"] == "SUCCESS" and r.headers["seed"] == "0" and len(r.headers["x-request-id"]) == 32
    image = Image.open(io.BytesIO(r.content))
    assert (image.format, image.size) == ("WEBP", (128, 192))


def test_json_response_and_ignored_fields(server):
    r = requests.post(
        server.url + FAST,
        headers={"accept": "application/json"},
        files={"image": png()},
        data={"output_format": "jpeg", "prompt": "ignored", "style_preset": "anime"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json; type=image/jpeg"
    assert "seed" not in r.headers and "finish-reason" not in r.headers
    body = r.json()
    assert set(body) == {"image", "seed", "finish_reason"} and body["finish_reason"] == "SUCCESS"
    assert Image.open(io.BytesIO(base64.b64decode(body["image"]))).size == (128, 128)
    assert r.headers["x-pixelsmith-ignored-fields"] == "prompt,style_preset"


def test_request_id_is_echoed(server):
    r = requests.post(server.url + FAST, files={"image": b"junk"}, headers={"x-request-id": "trace-1234567890"})
    assert r.headers["x-request-id"] == "trace-1234567890"
    assert r.json()["id"] == "trace-1234567890"


def _malformed_multipart(url: str) -> requests.Response:
    body = b'--XYZ\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nabc'  # never closed
    return requests.post(url, data=body, headers={"content-type": "multipart/form-data; boundary=XYZ"})


def _no_boundary(url: str) -> requests.Response:
    return requests.post(url, data=b"abc", headers={"content-type": "multipart/form-data"})


def test_bad_input_corpus(server):
    """Each bad input: a 4xx in Stability's shape, and the server stays healthy."""
    url = server.url + FAST
    truncated = png(64, 64)[:60]
    cases = [
        ("garbage", lambda: requests.post(url, files={"image": b"\x00garbage" * 100}), "image: is not a PNG"),
        ("truncated", lambda: requests.post(url, files={"image": truncated}), "image:"),
        ("bomb header", lambda: requests.post(url, files={"image": bomb_png()}), "image:"),
        ("empty file", lambda: requests.post(url, files={"image": b""}), "image: is empty"),
        ("bad base64 text", lambda: requests.post(url, data={"image": "%%%not-base64"}), "image: is not valid base64"),
        ("too small", lambda: requests.post(url, files={"image": png(8, 8)}), "image: image is 8x8"),
        ("too large for the tool", lambda: requests.post(url, files={"image": png(1600, 64)}), "image_too_large"),
        ("missing image", lambda: requests.post(url, files={"none": ""}), "image: is required"),
        ("only unknown fields", lambda: requests.post(url, data={"foo": "bar"}), "image: is required"),
        (
            "bad enum",
            lambda: requests.post(url, files={"image": png()}, data={"output_format": "tiff"}),
            "output_format",
        ),
        (
            "out of range",
            lambda: requests.post(
                server.url + "/v2beta/stable-image/edit/outpaint", files={"image": png(64, 64)}, data={"left": "5000"}
            ),
            "left",
        ),
        (
            "not a number",
            lambda: requests.post(
                server.url + "/v2beta/stable-image/edit/outpaint", files={"image": png(64, 64)}, data={"left": "ten"}
            ),
            "left",
        ),
        ("malformed multipart", lambda: _malformed_multipart(url), "image"),  # the torn part is dropped
        ("multipart without boundary", lambda: _no_boundary(url), "body"),
        ("wrong content type", lambda: requests.post(url, json={"image": "x"}), "content-type"),
        ("no body", lambda: requests.post(url), "content-type"),
    ]
    for name, send, needle in cases:
        r = send()
        body = assert_rest_error(r, 400, "bad_request")
        text = " ".join(body["errors"])
        if needle == "image_too_large":
            assert "pixels" in text, (name, text)
        else:
            assert needle in text, (name, text)
        assert requests.get(server.url + "/healthz").json() == {"status": "ok"}


def test_body_over_10_mib_is_413_while_streaming(server):
    url = server.url + FAST
    sent = {"bytes": 0}

    def chunks():  # no Content-Length: the server has to count while the body streams in
        yield b'--X\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n\r\n'
        for _ in range(40):
            sent["bytes"] += 1024 * 1024
            yield b"\0" * (1024 * 1024)

    r = requests.post(url, data=chunks(), headers={"content-type": "multipart/form-data; boundary=X"})
    body = assert_rest_error(r, 413, "payload_too_large")
    assert body["errors"] == ["body: payloads cannot be larger than 10MiB in size"]
    big = b"\0" * (10 * 1024 * 1024 + 1)  # declared in Content-Length: refused before the app reads it
    assert_rest_error(requests.post(url, files={"image": big}), 413, "payload_too_large")
    assert requests.get(server.url + "/healthz").status_code == 200


def test_tools_without_an_engine_are_refused_clearly(server):
    r = requests.post(
        server.url + "/v2beta/stable-image/generate/ultra",
        files={"none": ""},
        data={"prompt": "a lighthouse", "output_format": "webp"},
    )
    body = assert_rest_error(r, 424, "model_not_installed")
    assert "generate cannot be served on this machine" in body["errors"][0]
    r = requests.post(
        server.url + "/v2beta/stable-image/generate/sd3", files={"none": ""}, data={"prompt": "x", "model": "core"}
    )
    assert "model: must be one of sd3.5-large" in assert_rest_error(r, 400, "bad_request")["errors"][0]
    r = requests.post(
        server.url + "/v2beta/stable-image/upscale/creative", files={"image": png(64, 64)}, data={"prompt": "x"}
    )  # asynchronous route: refused at once, no id handed out
    assert_rest_error(r, 424, "model_not_installed")


def test_every_route_is_in_openapi(server):
    spec = requests.get(server.url + "/openapi.json").json()
    paths = set(spec["paths"])
    for tool in all_tools():
        if tool.name != "generate":
            assert tool.rest_path in paths
            schema = spec["paths"][tool.rest_path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
            assert set(schema["properties"]) == set(tool.request.model_fields)
    for extra in (
        "/v2beta/stable-image/generate/ultra",
        "/v2beta/stable-image/generate/core",
        "/v2beta/stable-image/generate/sd3",
        "/v2beta/results/{gen_id}",
        "/model/{model_id}/invoke",
        "/v2beta/stable-image/upscale/creative/result/{gen_id}",
        "/v1/tools",
        "/healthz",
        "/readyz",
    ):
        assert extra in paths
    assert requests.get(server.url + "/docs").status_code == 200


def test_tools_listing(server):
    from pixelsmith import core

    listing = requests.get(server.url + "/v1/tools").json()
    assert [t["name"] for t in listing] == [t.name for t in all_tools()]
    for entry in listing:
        recipe, missing = core.availability(next(t for t in all_tools() if t.name == entry["name"]))
        assert entry["ready"] == (recipe is not None)
        assert entry["schema"]["type"] == "object" and "properties" in entry["schema"]
        if not entry["ready"]:
            assert entry["missing"] == [m.line() for m in missing]


def test_metrics_count_requests(server):
    requests.post(server.url + FAST, files={"image": png()})
    text = requests.get(server.url + "/metrics").text
    assert (
        'pixelsmith_http_requests_total{api="rest",model="fast-upscale",route="/v2beta/stable-image/upscale/fast",'
        'status="200"}' in text
    )
    assert 'pixelsmith_tool_seconds_count{engine="embedded",tool="fast-upscale"}' in text
    assert 'pixelsmith_model_load_seconds{model="realesr-animevideov3-x4"}' in text
    for name in ("pixelsmith_http_in_flight", "pixelsmith_queue_depth", "pixelsmith_http_request_seconds_bucket"):
        assert name in text


def test_unknown_route_and_result_are_404_in_rest_shape(server):
    assert_rest_error(requests.post(server.url + "/v2beta/stable-image/edit/nothing"), 404, "not_found")
    missing = "0" * 64
    assert_rest_error(requests.get(f"{server.url}/v2beta/results/{missing}"), 404, "generation_not_found")
    assert_rest_error(
        requests.get(f"{server.url}/v2beta/stable-image/upscale/creative/result/{missing}"), 404, "generation_not_found"
    )


def _submit(server: LiveServer, tool: str, fields: dict) -> str:
    service = server.app.state.service
    return asyncio.run_coroutine_threadsafe(service.submit(tool, fields, None), server.app.state.loop).result(60)


def _poll(url: str, accept: str = "*/*", timeout: float = 120) -> requests.Response:
    deadline = time.monotonic() + timeout
    while True:
        r = requests.get(url, headers={"accept": accept})
        if r.status_code != 202 or time.monotonic() > deadline:
            return r
        time.sleep(0.1)


def test_async_results_poll_and_survive_a_restart():
    """An accepted generation answers 202, then 200; a restart resumes unfinished ones (the jobs store)."""
    data_dir = tempfile.mkdtemp(prefix="pixelsmith-results-")
    settings = dict(data_dir=data_dir, access_log=False)
    with LiveServer(Settings(**settings)) as first:
        done = _submit(first, "fast-upscale", {"image": png(32, 32), "output_format": "webp"})
        assert len(done) == 64
        r = _poll(f"{first.url}/v2beta/results/{done}", accept="application/json")
        assert r.status_code == 200 and r.headers["content-type"] == "application/json; type=image/webp"
        finished = base64.b64decode(r.json()["image"])
        # A generation accepted by a server whose workers stop before running it (its request is saved).
        first.app.state.jobs.stop()
        pending = _submit(first, "fast-upscale", {"image": png(40, 40), "output_format": "png"})
        r = requests.get(f"{first.url}/v2beta/results/{pending}")
        assert r.status_code == 202 and r.json() == {"id": pending, "status": "in-progress"}
    with LiveServer(Settings(**settings)) as second:
        r = _poll(f"{second.url}/v2beta/stable-image/upscale/creative/result/{done}")
        assert r.status_code == 200 and r.content == finished and r.headers["content-type"] == "image/webp"
        r = _poll(f"{second.url}/v2beta/results/{pending}")
        assert r.status_code == 200, r.text
        assert Image.open(io.BytesIO(r.content)).size == (160, 160)
        assert r.headers["seed"] == "0" and r.headers["finish-reason"] == "SUCCESS"


def test_async_results_through_the_jobs_service():
    """Async REST work lives in the jobs store and outlives the server; ids are exact (no forged suffix)."""
    data_dir = tempfile.mkdtemp(prefix="pixelsmith-jobs-results-")
    with LiveServer(Settings(data_dir=data_dir, access_log=False)) as first:
        gen_id = _submit(first, "fast-upscale", {"image": png(36, 36), "output_format": "jpeg"})
        assert len(gen_id) == 64
        r = _poll(f"{first.url}/v2beta/results/{gen_id}")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(r.content)).size == (144, 144)
        for bad in (gen_id[:32] + "0" * 32, gen_id[:63], "f" * 64):  # forged, truncated, unknown
            assert requests.get(f"{first.url}/v2beta/results/{bad}").status_code == 404
    with LiveServer(Settings(data_dir=data_dir, access_log=False)) as second:
        again = requests.get(f"{second.url}/v2beta/results/{gen_id}")
        assert again.status_code == 200 and again.content == r.content


def test_access_log_is_json_with_the_request_id():
    from pixelsmith.api.logging import setup

    stream = io.StringIO()
    setup(stream=stream)
    with LiveServer(Settings(data_dir=tempfile.mkdtemp(prefix="pixelsmith-log-"))) as live:
        r = requests.post(live.url + FAST, files={"image": b"not an image"}, data={"extra": "1"})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    entry = next(e for e in lines if e.get("request_id") == r.headers["x-request-id"])
    assert entry["status"] == 400 and entry["api"] == "rest" and entry["model"] == "fast-upscale"
    assert entry["path"] == FAST and entry["ignored_fields"] == ["extra"] and entry["seconds"] >= 0


def test_engine_header_forces_an_engine(server):
    ok = requests.post(server.url + FAST, headers={"x-pixelsmith-engine": "embedded"}, files={"image": png()})
    assert ok.status_code == 200, ok.text
    bad = requests.post(server.url + FAST, headers={"x-pixelsmith-engine": "warp-drive"}, files={"image": png()})
    body = assert_rest_error(bad, 400)
    assert "unknown engine" in body["errors"][0]
    # fast-upscale's diffusers recipe needs Swin2SR weights this machine has not pulled: refused, naming them.
    forced = requests.post(server.url + FAST, headers={"x-pixelsmith-engine": "diffusers"}, files={"image": png()})
    body = assert_rest_error(forced, 424)
    assert "pixelsmith models pull" in body["errors"][0]
