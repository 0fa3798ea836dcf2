"""Bad-input and abuse corpus (issue 17): every input is generated here, none is a committed binary.

Each case asserts the exact status and error shape on both wire formats —
Stability REST ``{id, name, errors[]}`` and Bedrock ``{"message"}`` with
``x-amzn-ErrorType`` — and that ``/healthz`` still answers afterwards. Tools that
would cost real CPU are replaced by an instant fake where only admission is
under test.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import secrets
import tempfile
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image

from pixelsmith import core
from pixelsmith.api import Settings
from pixelsmith.api.cost import TOOL_FACTORS, CostBudget, request_cost
from pixelsmith.api.limits import Gate
from pixelsmith.api.testing import LiveServer
from pixelsmith.errors import Busy, InvalidRequest, RateLimited, Unauthorized
from pixelsmith.imaging.decode import decode_image

FAST_REST = "/v2beta/stable-image/upscale/fast"
FAST_MODEL = "us.stability.stable-fast-upscale-v1:0"
REMBG_REST = "/v2beta/stable-image/edit/remove-background"


# -- generated inputs -----------------------------------------------------------
def png(width: int = 32, height: int = 32, color: tuple[int, int, int] = (10, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def truncated_jpeg() -> bytes:
    """A 1000x1000 JPEG header with its scan cut short at 691 bytes, ended by EOI (libjpeg pads it with grey)."""
    noise = np.random.default_rng(17).integers(0, 255, (1000, 1000, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "JPEG", quality=90)
    data = buf.getvalue()[:689] + b"\xff\xd9"
    assert len(data) == 691
    return data


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- shape assertions -----------------------------------------------------------
def assert_rest(resp: requests.Response, status: int, name: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"id", "name", "errors"}, body
    assert body["name"] == name, body
    assert body["errors"] and all(isinstance(e, str) and e for e in body["errors"]), body
    return body


def assert_bedrock(resp: requests.Response, status: int, error_type: str) -> str:
    assert resp.status_code == status, resp.text
    assert resp.headers["x-amzn-ErrorType"].split(":", 1)[0] == error_type, resp.headers
    body = resp.json()
    assert set(body) == {"message"} and isinstance(body["message"], str) and body["message"], body
    return body["message"]


def assert_healthy(server: LiveServer) -> None:
    resp = requests.get(server.url + "/healthz", timeout=10)
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}


def rest(server: LiveServer, path: str, image: bytes, **data: str) -> requests.Response:
    return requests.post(
        server.url + path,
        files={"image": ("in.png", image)},
        data={"output_format": "png", **data},
        headers={"accept": "image/*"},
        timeout=60,
    )


def bedrock(server: LiveServer, model: str, body: bytes | dict[str, Any], **headers: str) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(
        f"{server.url}/model/{model}/invoke",
        data=data,
        headers={"content-type": "application/json", **headers},
        timeout=60,
    )


@pytest.fixture(scope="module")
def server():
    with LiveServer(Settings(data_dir=tempfile.mkdtemp(prefix="pixelsmith-abuse-"), access_log=False)) as live:
        yield live


@pytest.fixture
def fake_tools(server, monkeypatch):
    """Tool runs answer at once (admission, not the tool, is under test); returns the calls made."""
    calls: list[str] = []

    def run_parsed(tool_name: str, request: Any, engine: str | None = None) -> core.Output:
        calls.append(tool_name)
        return core.Output(tool_name, "fake", Image.new("RGB", (1, 1)), png(1, 1), "png", 0)

    monkeypatch.setattr(server.app.state.service, "_run_parsed", run_parsed)
    monkeypatch.setattr(server.app.state.service, "budget", CostBudget(rate=0.5, burst=200.0))  # a full budget
    return calls


# -- 7. cheap to send, expensive to serve --------------------------------------
def test_truncated_jpeg_fails_the_decode():
    with pytest.raises(InvalidRequest) as err:
        decode_image(truncated_jpeg())
    assert err.value.problems[0].code == "corrupt_image"
    assert err.value.details == ["image: is truncated or corrupt"]


def test_complete_jpegs_still_decode_exactly():
    noise = np.random.default_rng(3).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    for options in ({}, {"progressive": True}, {"subsampling": 0}, {"optimize": True}):
        buf = io.BytesIO()
        Image.fromarray(noise).save(buf, "JPEG", quality=85, **options)
        data = buf.getvalue()
        reference = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        for payload in (data, data + b"trailing bytes after EOI"):
            assert (np.asarray(decode_image(payload)) == reference).all(), options


def test_truncated_jpeg_is_400_on_both_apis(server, fake_tools):
    data = truncated_jpeg()
    body = assert_rest(rest(server, FAST_REST, data), 400, "bad_request")
    assert body["errors"] == ["image: is truncated or corrupt"]
    message = assert_bedrock(bedrock(server, FAST_MODEL, {"image": b64(data)}), 400, "ValidationException")
    assert "image: is truncated or corrupt" in message
    assert fake_tools == []  # refused before any tool work
    assert_healthy(server)


def test_small_upload_is_counted_at_its_output_cost():
    data = png(1536, 640)
    assert len(data) < 5000  # cheap to send: a 4 KB PNG ...
    # ... expensive to serve: fast-upscale answers 6144x2560 (15.7 MP), weighed as such, not as 4 KB
    assert request_cost("fast-upscale", {"image": data}) == pytest.approx(6144 * 2560 / 1e6 * 2.0)
    assert request_cost("fast-upscale", {"image": b64(data)}) == pytest.approx(6144 * 2560 / 1e6 * 2.0)
    assert request_cost("fast-upscale", {"image": png(32, 32)}) < 0.1
    assert TOOL_FACTORS["conservative-upscale"] > TOOL_FACTORS["fast-upscale"]


def test_burst_of_maximal_requests_is_refused_past_the_cost_budget(server, fake_tools, monkeypatch):
    monkeypatch.setattr(server.app.state.service, "budget", CostBudget(rate=0.01, burst=100.0))
    big, small = png(1536, 640), png(32, 32)
    # 100 units hold three maximal fast-upscales (31.5 each), whatever the 150-request count limit says;
    # distinct images: an identical request would be answered from the finished run (PIXELSMITH_REUSE_S)
    for n in range(3):
        assert rest(server, FAST_REST, png(1536, 640, (n, 120, 200))).status_code == 200
    resp = rest(server, FAST_REST, png(1536, 640, (3, 120, 200)))
    body = assert_rest(resp, 429, "rate_limit_exceeded")
    assert "costs 31.5 units" in body["errors"][0]
    assert int(resp.headers["retry-after"]) > 60
    resp = bedrock(server, FAST_MODEL, {"image": b64(big)})
    assert_bedrock(resp, 429, "ThrottlingException")
    assert int(resp.headers["retry-after"]) > 60
    # small requests still fit in what is left
    assert rest(server, FAST_REST, small).status_code == 200
    assert bedrock(server, FAST_MODEL, {"image": b64(small)}).status_code == 200
    assert fake_tools == ["fast-upscale"] * 5
    # a request refused at validation (a bomb's header claims 16 MP of output) is refunded, and stays a 400
    budget = CostBudget(rate=0.01, burst=100.0)
    monkeypatch.setattr(server.app.state.service, "budget", budget)
    for _ in range(5):
        assert_rest(rest(server, FAST_REST, bomb_png()), 400, "bad_request")
    assert budget._buckets["ip:127.0.0.1"][0] == pytest.approx(100.0, abs=0.5)
    assert_healthy(server)


def test_queue_is_limited_in_cost_units():
    async def scenario() -> None:
        gate = Gate(concurrency=1, queue_size=64, queue_timeout=5, queue_cost=50.0)
        release = asyncio.Event()

        async def hold(cost: float) -> None:
            async with gate.slot(cost):
                await release.wait()

        running = asyncio.create_task(hold(30.0))
        await asyncio.sleep(0.05)
        queued = asyncio.create_task(hold(30.0))  # waits: the queue holds 30 of 50
        await asyncio.sleep(0.05)
        with pytest.raises(Busy) as err:
            async with gate.slot(30.0):  # 60 > 50: refused at once, with a retry hint
                pass
        assert err.value.retry_after >= 5 and "cost units" in err.value.message
        small = asyncio.create_task(hold(10.0))  # 40 <= 50: waits its turn
        await asyncio.sleep(0.05)
        assert gate.waiting == 2 and gate.waiting_cost == 40.0
        release.set()
        await asyncio.gather(running, queued, small)
        assert gate.waiting == 0 and gate.waiting_cost == 0.0

    asyncio.run(scenario())


def test_busy_carries_retry_after_in_both_shapes():
    from pixelsmith.api import bedrock as bedrock_api
    from pixelsmith.api import stability

    busy = Busy("queue full", retry_after=42.0)
    rest_resp = stability.error_response(busy, "rid", FAST_REST)
    assert rest_resp.status_code == 503 and rest_resp.headers["retry-after"] == "42"
    assert json.loads(rest_resp.body) == {"id": "rid", "name": "service_unavailable", "errors": ["queue full"]}
    br = bedrock_api.error_response(busy, "rid")
    assert br.status_code == 503 and br.headers["retry-after"] == "42"
    assert br.headers["x-amzn-ErrorType"].startswith("ServiceUnavailableException:")
    assert json.loads(br.body) == {"message": "queue full"}
    assert RateLimited("x", retry_after=3).retry_after == 3


# -- 8. deeply nested and malformed JSON ---------------------------------------
NESTED = b"[" * 100_000
NESTED_OBJECT = b'{"a":' * 100_000


def assert_jobs_error(resp: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error", "message", "details"} and body["error"] == code, body
    return body


@pytest.mark.parametrize("payload", [NESTED, NESTED_OBJECT, b"[" * 65 + b"]" * 65], ids=["list", "object", "65"])
def test_deeply_nested_json_is_400_on_bedrock_and_jobs(server, payload):
    message = assert_bedrock(bedrock(server, FAST_MODEL, payload), 400, "ValidationException")
    assert "nested too deeply" in message
    resp = requests.post(
        server.url + "/v1/jobs", data=payload, headers={"content-type": "application/json"}, timeout=30
    )
    body = assert_jobs_error(resp, 400, "bad_request")
    assert body["details"] == ["the body is nested too deeply (at most 64 levels)"]
    assert_healthy(server)


def test_nested_steps_in_a_multipart_job_are_400(server):
    resp = requests.post(
        server.url + "/v1/jobs", files={"files": ("a.png", png())}, data={"steps": "[" * 50_000}, timeout=30
    )
    body = assert_jobs_error(resp, 400, "bad_request")
    assert body["details"] == ["steps: the steps is nested too deeply (at most 64 levels)"]
    assert_healthy(server)


def test_parse_json_limits_depth_without_recursing():
    from pixelsmith.api.bodies import depth_of, parse_json

    assert parse_json(b'{"a": [1, {"b": 2}]}') == {"a": [1, {"b": 2}]}
    assert depth_of({"a": [1, {"b": 2}]}, 100) == 3 and depth_of(5, 10) == 0
    for bad, message in [
        (b"[" * 100_000, "the body is nested too deeply (at most 64 levels)"),
        (b"{nope", "the body is not valid JSON: Expecting property name enclosed in double quotes"),
        (b'"\xc3\x28"', "the body is not valid JSON"),
    ]:
        with pytest.raises(InvalidRequest) as err:
            parse_json(bad)
        assert err.value.details == [message] and err.value.problems[0].code == "bad_json"


def test_a_recursion_error_anywhere_is_400_in_the_callers_shape(tmp_path):
    from fastapi.testclient import TestClient

    from pixelsmith.api.app import create_app

    app = create_app(Settings(data_dir=str(tmp_path), access_log=False))

    def recurse() -> None:
        raise RecursionError("maximum recursion depth exceeded")

    app.add_api_route("/model/deep/invoke", recurse, methods=["POST"])
    app.add_api_route("/v1/deep", recurse, methods=["POST"])
    app.router.routes.insert(0, app.router.routes.pop())  # ahead of the real routes
    app.router.routes.insert(0, app.router.routes.pop(-1))
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.post("/v1/deep")
        assert resp.status_code == 400
        assert resp.json() == {
            "error": "bad_request",
            "message": "the request is nested too deeply",
            "details": ["the request is nested too deeply"],
        }
        resp = client.post("/model/deep/invoke")
        assert resp.status_code == 400 and resp.headers["x-amzn-ErrorType"].startswith("ValidationException:")
        assert "the request is nested too deeply" in resp.json()["message"]
        assert client.get("/healthz").status_code == 200


# -- 2. key floods: no memory growth, failed logins limited per address --------
@pytest.fixture(scope="module")
def auth_server():
    settings = Settings(
        data_dir=tempfile.mkdtemp(prefix="pixelsmith-abuse-auth-"), auth=True, access_log=False, auth_fail_burst=5
    )
    with LiveServer(settings) as live:
        yield live


def from_address(server: LiveServer, source: str, method: str, path: str, body: bytes, headers: dict[str, str]):
    """One request from another loopback address (127.0.0.0/8 all reaches the server on 127.0.0.1)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.settings.port, timeout=30, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def multipart(image: bytes) -> tuple[bytes, str]:
    boundary = "pixelsmithabuse"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_key_flood_does_not_grow_the_cache(auth_server):
    store = auth_server.app.state.keys
    real = store.create("flood-check")
    store.check_bearer(real.bearer)
    before = len(store._cache)
    for _ in range(100):  # long random ids, ids of our format that do not exist, and garbage secrets
        for token in (
            f"sk-{secrets.token_urlsafe(45_000)}.{secrets.token_urlsafe(30)}",
            f"sk-PSK{base64.b32encode(secrets.token_bytes(10)).decode()[:16]}.{'x' * 40}",
            f"sk-{real.key.id}.{secrets.token_urlsafe(2000)}",
        ):
            with pytest.raises(Unauthorized):
                store.check_bearer(token)
    assert len(store._cache) == before == 1


def test_known_key_cache_is_a_bounded_lru(tmp_path):
    from pixelsmith.api.auth import KeyStore

    store = KeyStore(tmp_path)
    store.cache_size = 4
    made = [store.create(f"k{n}") for n in range(10)]
    for new in made:
        assert store.check_bearer(new.bearer).id == new.key.id
    assert list(store._cache) == [n.key.id for n in made[-4:]]


def test_failed_logins_past_the_limit_are_429_in_both_shapes(auth_server):
    good = auth_server.app.state.keys.create("good")
    flood = f"Bearer sk-{secrets.token_urlsafe(45_000)}.{'y' * 40}"
    body, ctype = multipart(png())
    statuses = []
    for _ in range(5):  # auth_fail_burst=5 failures are answered 401 ...
        status, headers, raw = from_address(
            auth_server, "127.0.0.3", "POST", FAST_REST, body, {"content-type": ctype, "authorization": flood}
        )
        statuses.append(status)
    assert statuses == [401] * 5
    # ... then every attempt from that address is 429, even with a good key: guessing is slow
    status, headers, raw = from_address(
        auth_server, "127.0.0.3", "POST", FAST_REST, body, {"content-type": ctype, "authorization": flood}
    )
    assert status == 429 and int(headers["retry-after"]) >= 1
    payload = json.loads(raw)
    assert set(payload) == {"id", "name", "errors"} and payload["name"] == "rate_limit_exceeded"
    assert payload["errors"] == [payload["errors"][0]] and "too many failed authentications" in payload["errors"][0]
    status, headers, raw = from_address(
        auth_server,
        "127.0.0.3",
        "POST",
        f"/model/{FAST_MODEL}/invoke",
        json.dumps({"image": b64(png())}).encode(),
        {"content-type": "application/json", "authorization": f"Bearer {good.bearer}"},
    )
    assert status == 429 and headers["x-amzn-errortype"].startswith("ThrottlingException:")
    assert set(json.loads(raw)) == {"message"} and int(headers["retry-after"]) >= 1
    # a valid key from another address still works
    status, headers, raw = from_address(
        auth_server,
        "127.0.0.2",
        "POST",
        f"/model/{FAST_MODEL}/invoke",
        json.dumps({"image": b64(png())}).encode(),
        {"content-type": "application/json", "authorization": f"Bearer {good.bearer}"},
    )
    assert status == 200, raw
    assert len(json.loads(raw)["images"]) == 1
    assert len(auth_server.app.state.keys._cache) <= 2  # only the real keys
    assert_healthy(auth_server)


# -- 3. SigV4 binds the body ----------------------------------------------------
def signed(server: LiveServer, key: Any, body: bytes, content_sha256: str | None) -> dict[str, str]:
    """Headers of a request signed by botocore's own SigV4 signer (x-amz-content-sha256 signed when given)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {"content-type": "application/json"}
    if content_sha256 is not None:
        headers["X-Amz-Content-SHA256"] = content_sha256
    request = AWSRequest(method="POST", url=f"{server.url}/model/{FAST_MODEL}/invoke", data=body, headers=headers)
    SigV4Auth(Credentials(key.key.id, key.secret), "bedrock", "us-west-2").add_auth(request)
    return dict(request.headers.items())


def test_sigv4_signed_payload_hash_must_match_the_body(auth_server):
    import hashlib

    key = auth_server.app.state.keys.create("sigv4-body")
    body = json.dumps({"image": b64(png())}).encode()
    other = json.dumps({"image": b64(png(40, 40, (200, 0, 0)))}).encode()
    headers = signed(auth_server, key, body, hashlib.sha256(body).hexdigest())
    assert "x-amz-content-sha256" in headers["Authorization"]  # a signed header
    url = f"{auth_server.url}/model/{FAST_MODEL}/invoke"
    ok = requests.post(url, data=body, headers=headers, timeout=60)
    assert ok.status_code == 200, ok.text
    replay = requests.post(url, data=other, headers=headers, timeout=60)  # same signature, another body
    message = assert_bedrock(replay, 403, "InvalidSignatureException")
    assert message == "The provided 'x-amz-content-sha256' header does not match what was computed."
    # without the header botocore hashes the body itself: a replay fails the signature
    plain = signed(auth_server, key, body, None)
    assert requests.post(url, data=body, headers=plain, timeout=60).status_code == 200
    assert_bedrock(requests.post(url, data=other, headers=plain, timeout=60), 403, "InvalidSignatureException")
    assert_healthy(auth_server)


def test_unsigned_payload_is_refused_unless_the_operator_allows_it(auth_server, monkeypatch):
    key = auth_server.app.state.keys.create("sigv4-unsigned")
    body = json.dumps({"image": b64(png())}).encode()
    headers = signed(auth_server, key, body, "UNSIGNED-PAYLOAD")
    url = f"{auth_server.url}/model/{FAST_MODEL}/invoke"
    monkeypatch.delenv("PIXELSMITH_ALLOW_UNSIGNED_PAYLOAD", raising=False)
    message = assert_bedrock(
        requests.post(url, data=body, headers=headers, timeout=60), 403, "InvalidSignatureException"
    )
    assert message.startswith("UNSIGNED-PAYLOAD is not accepted by this server")
    assert Settings().allow_unsigned_payload is False
    monkeypatch.setattr(auth_server.app.state.settings, "allow_unsigned_payload", True)
    assert requests.post(url, data=body, headers=headers, timeout=60).status_code == 200
    monkeypatch.setattr(auth_server.app.state.settings, "allow_unsigned_payload", False)
    monkeypatch.setenv("PIXELSMITH_ALLOW_UNSIGNED_PAYLOAD", "1")
    assert requests.post(url, data=body, headers=headers, timeout=60).status_code == 200


# -- 5. output-name templates: the documented placeholders only ----------------
NAME_VALUES = {
    "stem": "cat",
    "name": "cat.png",
    "ext": "webp",
    "tool": "fast-upscale",
    "tools": "remove-background+fast-upscale",
    "index": 7,
    "item": "ten",
    "parent": "pets",
}
BAD_TEMPLATES = [
    ("{index:>50000000}", "unknown placeholder {index:>50000000}"),
    ("{stem.__class__}", "unknown placeholder {stem.__class__}"),
    ("{stem.nope}", "unknown placeholder {stem.nope}"),
    ("{unknown}", "unknown placeholder {unknown}"),
    ("{stem[0]}", "unknown placeholder {stem[0]}"),
    ("{stem!r}", "unknown placeholder {stem!r}"),
    ("{0}", "unknown placeholder {0}"),
    ("{}", "unknown placeholder {}"),
    ("{index:0100d}", "unknown placeholder {index:0100d}"),
    ("{stem", "unmatched '{'"),
    ("x" * 300 + ".{ext}", "makes a name over 255 bytes"),
    ("{stem}" * 100, "makes a name over 255 bytes"),
]


def test_name_templates_render_the_documented_placeholders():
    from pixelsmith.jobs.names import render

    assert render("{stem}-{tool}.{ext}", NAME_VALUES) == "cat-fast-upscale.webp"
    assert render("{index:04d}-{item}-{tools}.{ext}", NAME_VALUES) == "0007-ten-remove-background+fast-upscale.webp"
    assert render("{parent}/{name}", NAME_VALUES) == "pets/cat.png"
    assert render("{{literal}}-{index}", NAME_VALUES) == "{literal}-7"


@pytest.mark.parametrize("template,message", BAD_TEMPLATES, ids=[t[:20] for t, _ in BAD_TEMPLATES])
def test_name_template_injection_is_refused_naming_the_placeholder(template, message):
    from pixelsmith.jobs.manifest import ManifestError, Step, render_name

    with pytest.raises(ManifestError) as err:
        render_name(template, input_path="/in/pets/cat.png", steps=[Step("fast-upscale", {})], index=1, label="")
    assert message in err.value.message and err.value.status == 400
    assert len(err.value.message) < 400  # one line, never the 50 MB it would have made


@pytest.mark.parametrize("template", ["{index:>50000000}", "{stem.__class__}", "{stem.nope}", "{unknown}"])
def test_name_template_injection_is_400_on_the_jobs_api(server, template):
    resp = requests.post(
        server.url + "/v1/jobs",
        files={"files": ("cat.png", png())},
        data={"steps": json.dumps([{"tool": "fast-upscale"}]), "name": template},
        timeout=30,
    )
    body = assert_jobs_error(resp, 400, "bad_manifest")
    assert f"unknown placeholder {template}" in body["message"]
    assert_healthy(server)


@pytest.mark.parametrize("template", ["{index:>50000000}", "{stem.__class__}", "x" * 300])
def test_name_template_injection_in_the_cli_is_one_line_exit_2(tmp_path, template):
    from click.testing import CliRunner

    from pixelsmith.cli.main import build

    (tmp_path / "cat.png").write_bytes(png())
    manifest = tmp_path / "m.json"
    manifest.write_text(
        json.dumps(
            {
                "output": str(tmp_path / "out"),
                "name": template,
                "steps": [{"tool": "fast-upscale"}],
                "items": ["cat.png"],
            }
        )
    )
    result = CliRunner().invoke(build(), ["batch", str(manifest), "--no-progress"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    assert "output name template" in lines[0]


# -- 10. private data: the server's data dir 0700, its files 0600 ---------------
def mode(path: Any) -> int:
    import os

    return os.stat(path).st_mode & 0o777


def test_server_data_is_private_whatever_the_umask(tmp_path):
    import os
    import pathlib
    import time

    old = os.umask(0o022)
    try:
        data = tmp_path / "fresh" / "server"
        with LiveServer(Settings(data_dir=str(data), access_log=False)) as live:
            live.app.state.keys.create("mode-check")
            resp = requests.post(
                live.url + "/v1/jobs",
                files={"files": ("cat.png", png())},
                data={"steps": json.dumps([{"tool": "fast-upscale"}])},
                timeout=30,
            )
            assert resp.status_code == 201, resp.text
            job = resp.json()["id"]
            deadline = time.monotonic() + 60
            while requests.get(f"{live.url}/v1/jobs/{job}", timeout=10).json()["state"] == "active":
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert mode(data) == 0o700
        for name in ("server.db", "master.key"):
            assert mode(data / name) == 0o600, name
        files = [p for p in pathlib.Path(data).rglob("*")]
        assert any(p.name == "jobs.db" for p in files)
        assert any(p.name.endswith("cat.png") for p in files)  # the upload
        assert len([p for p in files if p.suffix == ".png"]) >= 2  # the upload and the job's output
        for p in files:
            if p.is_dir():
                assert mode(p) == 0o700, p
            elif p.is_file():
                assert mode(p) == 0o600, p
    finally:
        os.umask(old)


def test_outputs_in_a_users_own_folder_keep_the_umask(tmp_path):
    import os

    from pixelsmith.fsutil import atomic_write

    old = os.umask(0o027)
    try:
        folder = tmp_path / "mine"
        folder.mkdir(mode=0o755)
        os.chmod(folder, 0o755)
        atomic_write(folder / "sub" / "out.png", b"x")
        assert mode(folder / "sub" / "out.png") == 0o640 and mode(folder / "sub") == 0o750
        os.umask(0o022)
        atomic_write(folder / "out2.png", b"x")
        assert mode(folder / "out2.png") == 0o644
        atomic_write(folder / "secret.bin", b"x", private=True)
        assert mode(folder / "secret.bin") == 0o600
    finally:
        os.umask(old)


# -- 11. CLI errors are one line and a hint, never a traceback -----------------
def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    import os
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    full = {**os.environ, "PYTHONPATH": str(root), **(env or {})}
    full.pop("PIXELSMITH_DEBUG", None)
    done = subprocess.run(
        [sys.executable, "-m", "pixelsmith", *args], capture_output=True, text=True, env=full, timeout=120
    )
    return done.returncode, done.stderr


def batch_manifest(tmp_path: Any, output: str) -> str:
    (tmp_path / "cat.png").write_bytes(png())
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"output": output, "steps": [{"tool": "fast-upscale"}], "items": ["cat.png"]}))
    return str(manifest)


def assert_one_line(code: int, stderr: str, expected_code: int, *needles: str) -> None:
    lines = stderr.strip().splitlines()
    assert code == expected_code, stderr
    assert "Traceback" not in stderr and len(lines) == 2, stderr
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: "), stderr
    for needle in needles:
        assert needle in stderr, stderr


def test_batch_to_an_output_path_that_is_a_file(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    code, err = run_cli("batch", batch_manifest(tmp_path, str(tmp_path / "afile")), "--no-progress")
    assert_one_line(code, err, 1, "it is a file, not a folder", str(tmp_path / "afile"))
    code, err = run_cli("--debug", "batch", batch_manifest(tmp_path, str(tmp_path / "afile")), "--no-progress")
    assert code == 1 and "Traceback" in err  # --debug shows it


def test_batch_to_a_read_only_output_dir(tmp_path, monkeypatch):
    import os

    from click.testing import CliRunner

    from pixelsmith.cli.main import build

    readonly = tmp_path / "ro"
    readonly.mkdir()
    os.chmod(readonly, 0o555)
    if os.geteuid() == 0:  # root writes anywhere: make the write fail as it would for a user
        real = os.makedirs

        def makedirs(name: Any, *args: Any, **kwargs: Any) -> None:
            if str(name).startswith(str(readonly)):
                raise PermissionError(13, "Permission denied", str(name))
            real(name, *args, **kwargs)

        monkeypatch.setattr(os, "makedirs", makedirs)
        real_connect = __import__("sqlite3").connect

        def connect(path: Any, *args: Any, **kwargs: Any) -> Any:
            if str(path).startswith(str(readonly)):
                raise PermissionError(13, "Permission denied", str(path))
            return real_connect(path, *args, **kwargs)

        monkeypatch.setattr("sqlite3.connect", connect)
    result = CliRunner().invoke(build(), ["batch", batch_manifest(tmp_path, str(readonly)), "--no-progress"])
    os.chmod(readonly, 0o755)
    out = result.output
    assert result.exit_code == 1 and "Traceback" not in out, out
    assert "error: cannot write the batch's output at" in out and "Permission denied" in out and "hint: " in out


def test_models_pull_without_network_is_one_line(tmp_path):
    code, err = run_cli(
        "models",
        "pull",
        "sd3.5-medium",
        env={"HF_ENDPOINT": "http://127.0.0.1:9", "PIXELSMITH_MODELS": str(tmp_path), "HF_HUB_OFFLINE": "0"},
    )
    lines = [line for line in err.strip().splitlines() if not line.startswith("sd3.5-medium: downloading")]
    assert code == 1 and "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: sd3.5-medium: cannot download"), err
    assert "http://127.0.0.1:9" in lines[0] and "Connection refused" in lines[0] and "HF_HUB_OFFLINE=1" in lines[0]


def test_an_unexpected_cli_error_is_one_line_with_a_hint(monkeypatch):
    from click.testing import CliRunner

    from pixelsmith.cli.main import build

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setattr("pixelsmith.jobs.runner.run_batch", boom)
    result = CliRunner().invoke(build(), ["batch", "whatever.yaml"])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [
        "error: RuntimeError: something broke",
        "hint: run again with --debug (or PIXELSMITH_DEBUG=1) for the traceback",
    ]
    result = CliRunner().invoke(build(), ["--debug", "batch", "whatever.yaml"])
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)


# -- the corpus: bad images and bodies on both APIs -----------------------------
def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A 32x32 PNG whose header claims width x height (a decompression bomb's header, CRC fixed)."""
    import struct
    import zlib

    data = bytearray(png())
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13])))
    return bytes(data)


IMAGES = {
    "garbage": secrets.token_bytes(4096),
    "empty": b"",
    "text": b"this is not an image",
    "truncated-png": png(64, 64, (1, 2, 3))[:-30],
    "truncated-jpeg": truncated_jpeg(),
    "bomb-png": bomb_png(),
    "gif": b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,"
    b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;",
}


@pytest.mark.parametrize("name", list(IMAGES))
def test_bad_images_are_400_on_both_apis(server, fake_tools, name):
    data = IMAGES[name]
    body = assert_rest(rest(server, FAST_REST, data), 400, "bad_request")
    assert body["errors"][0].startswith("image: ")
    message = assert_bedrock(bedrock(server, FAST_MODEL, {"image": b64(data)}), 400, "ValidationException")
    assert "image" in message
    assert fake_tools == []
    assert_healthy(server)


BEDROCK_BODIES = {
    "not-json": b"{image: nope",
    "array": b"[1, 2, 3]",
    "string": b'"image"',
    "null": b"null",
    "empty": b"",
    "bad-base64": json.dumps({"image": "@@@not base64@@@"}).encode(),
    "base64-of-garbage": json.dumps({"image": b64(b"\x00" * 100)}).encode(),
    "image-as-number": json.dumps({"image": 12345}).encode(),
    "unknown-field": json.dumps({"image": b64(png()), "evil": "x"}).encode(),
    "bad-format": json.dumps({"image": b64(png()), "output_format": "gif"}).encode(),
    "missing-image": json.dumps({"output_format": "png"}).encode(),
    "nested-field": json.dumps({"image": [[[[b64(png())]]]]}).encode(),
}


@pytest.mark.parametrize("name", list(BEDROCK_BODIES))
def test_malformed_bedrock_bodies_are_400(server, fake_tools, name):
    assert_bedrock(bedrock(server, FAST_MODEL, BEDROCK_BODIES[name]), 400, "ValidationException")
    assert fake_tools == []
    assert_healthy(server)


@pytest.mark.parametrize(
    "data",
    [{"output_format": "gif"}, {"output_format": "png" * 10_000}, {"model": "../../etc/passwd"}],
    ids=["format", "long-format", "model-traversal"],
)
def test_out_of_range_rest_fields_are_400(server, fake_tools, data):
    assert_rest(rest(server, FAST_REST, png(), **data), 400, "bad_request")
    assert fake_tools == []
    assert_healthy(server)


def test_rest_bodies_that_are_not_forms_are_400(server):
    for ctype, payload in [
        ("application/json", b"[" * 100_000),
        ("text/plain", b"hello"),
        ("multipart/form-data", b"x"),
    ]:
        resp = requests.post(server.url + FAST_REST, data=payload, headers={"content-type": ctype}, timeout=30)
        assert_rest(resp, 400, "bad_request")
    assert_healthy(server)
