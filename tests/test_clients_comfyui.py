"""Clients no one here wrote: requests shaped exactly as ComfyUI's Stability API nodes build them.

ComfyUI (``comfy_api_nodes``, started with ``--comfy-api-base http://HOST:PORT``) calls
``/proxy/stability/v2beta/...`` through aiohttp: ``Accept: application/json``; a multipart body whose text fields
are ``str(value)`` with ``None`` fields left out, and the image as a part named ``image`` (file name ``image``,
type ``application/octet-stream``); the JSON reply's ``image`` (sync) or, when it polls ``GET .../results/{id}``,
``result`` holds the base64 image. The helpers below build those requests the same way, with aiohttp.

Also here: the validation messages every front door gives (no pydantic ``Value error, `` prefix).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from typing import Any

import aiohttp
import boto3
import pytest
import requests
from botocore.config import Config
from PIL import Image

from pixelsmith.api.testing import shared_server

PROXY = "/proxy/stability/v2beta"


@pytest.fixture(scope="module")
def server():
    return shared_server("open")  # loopback: auth off


def png(width: int = 48, height: int = 40) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (180, 60, 40)).save(buf, "PNG")
    return buf.getvalue()


def comfyui_call(
    base: str, method: str, path: str, data: dict[str, Any] | None = None, image: bytes | None = None
) -> tuple[int, dict[str, str], Any]:
    """One request as ComfyUI's ApiClient sends it; returns (status, headers, parsed JSON or text)."""

    async def call() -> tuple[int, dict[str, str], Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        kwargs: dict[str, Any] = {}
        if image is not None or data:
            headers.pop("Content-Type")  # multipart: aiohttp sets it with the boundary
            form = aiohttp.FormData(default_to_multipart=True)
            for name, value in (data or {}).items():
                if value is not None:  # ComfyUI leaves None fields out
                    form.add_field(name, str(value))
            if image is not None:
                form.add_field("image", image, filename="image", content_type="application/octet-stream")
            kwargs["data"] = form
        async with aiohttp.ClientSession() as session:
            async with session.request(method, base + path, headers=headers, **kwargs) as resp:
                try:
                    body: Any = await resp.json()  # aiohttp checks the type is application/json
                except aiohttp.ContentTypeError:
                    body = await resp.text()
                return resp.status, dict(resp.headers), body

    return asyncio.run(call())


def test_fast_upscale_node_through_the_proxy_prefix(server, embedded_models):
    # StabilityUpscaleFastNode: no text fields, just the image
    status, headers, body = comfyui_call(server.url, "POST", f"{PROXY}/stable-image/upscale/fast", image=png())
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json")
    assert body["finish_reason"] == "SUCCESS" and isinstance(body["seed"], int)
    assert Image.open(io.BytesIO(base64.b64decode(body["image"]))).size == (192, 160)
    # the same route without the prefix answers the same way (an alias, not a copy)
    plain = requests.post(server.url + "/v2beta/stable-image/upscale/fast", files={"image": png()})
    assert plain.status_code == 200 and plain.headers["content-type"] == "image/png"


def test_fields_as_strings_and_errors_in_rest_shape_through_the_prefix(server, embedded_models):
    # StabilityUpscaleConservativeNode's fields: floats and ints as str(), negative_prompt None -> left out
    fields = {"prompt": "a harbour", "negative_prompt": None, "creativity": 0.9, "seed": 0, "output_format": "png"}
    status, _, body = comfyui_call(server.url, "POST", f"{PROXY}/stable-image/upscale/conservative", fields, png())
    assert status == 400 and body["name"] == "bad_request" and set(body) == {"id", "name", "errors"}
    assert any(e.startswith("creativity:") for e in body["errors"]), body  # "0.9" parsed, then checked
    # StabilityUpscaleCreativeNode (asynchronous): the diffusers weights are not installed in the test set-up,
    # so it is refused at once, in the REST error shape ComfyUI reads `name`/`errors` from
    fields = {"prompt": "x", "creativity": 0.3, "style_preset": None, "seed": 0, "output_format": "png"}
    status, _, body = comfyui_call(server.url, "POST", f"{PROXY}/stable-image/upscale/creative", fields, png())
    assert status >= 400 and body["name"] and body["errors"], body
    status, _, body = comfyui_call(server.url, "GET", f"{PROXY}/results/{'0' * 64}")
    assert status == 404 and body["name"] == "generation_not_found"


def test_poll_reply_carries_the_image_under_result_and_image(server, embedded_models):
    service = server.app.state.service  # an asynchronous generation (creative upscale needs diffusion weights)
    fields = {"image": png(32, 32), "output_format": "webp"}
    gen_id = asyncio.run_coroutine_threadsafe(service.submit("fast-upscale", fields, None), server.app.state.loop)
    gen_id = gen_id.result(60)
    deadline = time.monotonic() + 120
    while True:
        status, headers, body = comfyui_call(server.url, "GET", f"{PROXY}/results/{gen_id}")
        if status != 202 or time.monotonic() > deadline:
            break
        assert body == {"id": gen_id, "status": "in-progress"}  # ComfyUI: no finish_reason yet -> keep polling
        time.sleep(0.2)
    assert status == 200, body
    assert headers["Content-Type"] == "application/json; type=image/webp"
    assert body["result"] == body["image"] and body["finish_reason"] == "SUCCESS" and "seed" in body
    assert Image.open(io.BytesIO(base64.b64decode(body["result"]))).size == (128, 128)
    # the plain path's JSON reply is the same; with Accept: image/* it is the raw image, as before
    plain = requests.get(f"{server.url}/v2beta/results/{gen_id}", headers={"accept": "application/json"}).json()
    assert plain == body
    raw = requests.get(f"{server.url}/v2beta/results/{gen_id}", headers={"accept": "image/*"})
    assert raw.headers["content-type"] == "image/webp" and raw.content == base64.b64decode(body["image"])


# -- one message for a rule across fields, in every front door -------------------------------------------------
NO_MARGIN = "at least one of left, right, up, down must be non-zero"


def test_rest_validation_message_is_clean(server):
    r = requests.post(server.url + "/v2beta/stable-image/edit/outpaint", files={"image": png(64, 64)})
    assert r.status_code == 400, r.text
    assert NO_MARGIN in " ".join(r.json()["errors"]) and "Value error" not in r.text


def test_bedrock_validation_message_is_clean(server):
    bedrock = boto3.client(
        "bedrock-runtime",
        endpoint_url=server.url,
        region_name="us-west-2",
        aws_access_key_id="AKIAANYTHING",
        aws_secret_access_key="anything",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=60),
    )
    body = json.dumps({"image": base64.b64encode(png(64, 64)).decode()})
    with pytest.raises(bedrock.exceptions.ValidationException) as caught:
        bedrock.invoke_model(modelId="us.stability.stable-outpaint-v1:0", body=body)
    message = str(caught.value)
    assert NO_MARGIN in message and "Value error" not in message
