"""Auth (Bearer on both APIs, SigV4 verified with botocore's signer), rate limits and the concurrency gate."""

from __future__ import annotations

import base64
import io
import json
import tempfile
import threading

import boto3
import botocore.exceptions
import pytest
import requests
from botocore.config import Config
from click.testing import CliRunner
from PIL import Image

from pixelsmith.api import Settings
from pixelsmith.api.app import is_loopback
from pixelsmith.api.testing import LiveServer

FAST_REST = "/v2beta/stable-image/upscale/fast"
FAST_MODEL = "us.stability.stable-fast-upscale-v1:0"


def png(size: int = 32) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (10, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


BODY = json.dumps({"image": base64.b64encode(png()).decode(), "output_format": "png"})


@pytest.fixture(scope="module")
def server():
    with LiveServer(
        Settings(data_dir=tempfile.mkdtemp(prefix="pixelsmith-auth-"), auth=True, access_log=False)
    ) as live:
        yield live


def cli(*args: str) -> str:
    from pixelsmith.cli.main import build

    result = CliRunner().invoke(build(), list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def key(server):
    """A key made by the real CLI, in the server's data folder."""
    return json.loads(cli("keys", "create", "--name", "tests", "--json", "--data-dir", server.settings.data_dir))


def client(server, key_id: str, secret: str):
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=server.url,
        region_name="us-west-2",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}),
    )


def test_auth_defaults():
    assert Settings(host="127.0.0.1").auth_enabled is False
    assert Settings(host="::1").auth_enabled is False
    assert Settings(host="0.0.0.0").auth_enabled is True
    assert Settings(host="192.168.1.20").auth_enabled is True
    assert Settings(host="0.0.0.0", auth=False).auth_enabled is False
    assert is_loopback("localhost") and not is_loopback("example.com")


def test_keys_cli_lists_without_secrets(server, key):
    listing = json.loads(cli("keys", "list", "--json", "--data-dir", server.settings.data_dir))
    assert [k["id"] for k in listing] == [key["id"]] and listing[0]["state"] == "active"
    assert key["secret"] not in json.dumps(listing)
    db = (server.settings.data_path / "server.db").read_bytes()
    assert key["secret"].encode() not in db  # only a hash is stored


def test_rest_requires_a_bearer_key(server, key):
    url = server.url + FAST_REST
    for headers in ({}, {"authorization": "Bearer sk-nope.nope"}, {"authorization": "Basic abc"}):
        r = requests.post(url, files={"image": png()}, headers=headers)
        assert r.status_code == 401 and r.json()["name"] == "unauthorized", r.text
        assert set(r.json()) == {"id", "name", "errors"}
    r = requests.post(url, files={"image": png()}, headers={"authorization": f"Bearer {key['bearer']}"})
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (128, 128)


def test_bedrock_sigv4_with_a_key_pair(server, key):
    out = json.loads(
        client(server, key["id"], key["secret"]).invoke_model(modelId=FAST_MODEL, body=BODY)["body"].read()
    )
    assert Image.open(io.BytesIO(base64.b64decode(out["images"][0]))).size == (128, 128)


def test_bedrock_wrong_secret_and_unknown_key(server, key):
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client(server, key["id"], key["secret"][:-1] + "x").invoke_model(modelId=FAST_MODEL, body=BODY)
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client(server, "PSKUNKNOWNUNKNOWN123", "x" * 40).invoke_model(modelId=FAST_MODEL, body=BODY)
    assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_bedrock_bearer_and_missing_auth(server, key):
    url = f"{server.url}/model/{FAST_MODEL}/invoke"
    r = requests.post(
        url, data=BODY, headers={"Content-Type": "application/json", "Authorization": f"Bearer {key['bearer']}"}
    )
    assert r.status_code == 200 and r.json()["finish_reasons"] == [None]
    r = requests.post(url, data=BODY, headers={"Content-Type": "application/json"})
    assert r.status_code == 403 and r.headers["x-amzn-ErrorType"].startswith("AccessDeniedException:")
    assert "message" in r.json()


def test_revoked_key_is_refused(server):
    new = server.app.state.keys.create("short-lived")
    headers = {"authorization": f"Bearer {new.bearer}"}
    assert requests.get(f"{server.url}/v2beta/results/{'0' * 64}", headers=headers).status_code == 404
    server.app.state.keys.revoke(new.key.id)
    r = requests.get(f"{server.url}/v2beta/results/{'0' * 64}", headers=headers)
    assert r.status_code == 401 and "revoked" in r.json()["errors"][0]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client(server, new.key.id, new.secret).invoke_model(modelId=FAST_MODEL, body=BODY)
    assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_rate_limit_per_key(server):
    slow = json.loads(
        cli("keys", "create", "--rate", "0.01", "--burst", "2", "--json", "--data-dir", server.settings.data_dir)
    )
    url = f"{server.url}/v2beta/results/{'0' * 64}"
    headers = {"authorization": f"Bearer {slow['bearer']}"}
    assert [requests.get(url, headers=headers).status_code for _ in range(2)] == [404, 404]
    r = requests.get(url, headers=headers)
    assert r.status_code == 429 and r.json()["name"] == "rate_limit_exceeded" and int(r.headers["retry-after"]) >= 1
    with pytest.raises(client(server, slow["id"], slow["secret"]).exceptions.ThrottlingException) as info:
        client(server, slow["id"], slow["secret"]).invoke_model(modelId=FAST_MODEL, body=BODY)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    # other keys are not affected
    other = server.app.state.keys.create("other")
    assert requests.get(url, headers={"authorization": f"Bearer {other.bearer}"}).status_code == 404


def test_full_gate_answers_503_in_each_shape():
    """One slot, no queue: while a request runs, others are refused at once, never piled up."""
    settings = Settings(
        data_dir=tempfile.mkdtemp(prefix="pixelsmith-gate-"), concurrency=1, queue_size=0, access_log=False
    )
    with LiveServer(settings) as live:
        image = png(200)
        body = json.dumps({"image": base64.b64encode(image).decode()})
        results: list[tuple[str, requests.Response]] = []

        def call(api: str) -> None:
            if api == "rest":
                results.append((api, requests.post(live.url + FAST_REST, files={"image": image})))
            else:
                results.append((api, requests.post(f"{live.url}/model/{FAST_MODEL}/invoke", data=body)))

        threads = [threading.Thread(target=call, args=(api,)) for api in ("rest", "bedrock") * 3]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(r.status_code for _, r in results)
        assert codes.count(200) >= 1 and codes.count(503) >= 1 and set(codes) <= {200, 503}, codes
        for api, r in results:
            if r.status_code == 503 and api == "rest":
                assert r.json()["name"] == "service_unavailable" and r.headers["retry-after"]
            elif r.status_code == 503:
                assert r.headers["x-amzn-ErrorType"].startswith("ServiceUnavailableException:")
        assert requests.get(live.url + "/healthz").status_code == 200
        text = requests.get(live.url + "/metrics").text
        assert 'status="503"' in text and 'pixelsmith_rejected_total{reason="busy"}' in text
