"""The jobs API on the real server app, with two keys; and the in-process JobService."""
from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile

import pytest
import requests
from PIL import Image

pytest.importorskip("pixelsmith.api.app")

from pixelsmith.api.app import Settings  # noqa: E402
from pixelsmith.api.testing import LiveServer  # noqa: E402


def small_png(i: int) -> bytes:
    img = Image.new("RGB", (64, 64), (40 * i % 255, 120, 200))
    for x in range(0, 64, 8):
        img.paste((255, 255, 255), (x, 0, x + 4, 64))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedded_models):
    with LiveServer(Settings(data_dir=str(tmp_path_factory.mktemp("srv")), auth=True, access_log=False)) as srv:
        keys = srv.app.state.keys
        srv.a = {"authorization": f"Bearer {keys.create('a').bearer}"}
        srv.b = {"authorization": f"Bearer {keys.create('b').bearer}"}
        yield srv


def submit(server, headers, n: int, *, idem: str | None = None, steps='[{"tool": "fast-upscale"}]'):
    files = [("files", (f"pic{i}.png", small_png(i), "image/png")) for i in range(n)]
    extra = {"idempotency-key": idem} if idem else {}
    return requests.post(server.url + "/v1/jobs", headers={**headers, **extra}, files=files,
                         data={"steps": steps}, timeout=30)


def wait_finished(server, headers, job_id: str, timeout: float = 90) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = requests.get(f"{server.url}/v1/jobs/{job_id}", headers=headers, timeout=10).json()
        if body["state"] != "active":
            return body
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish: {body}")


def test_two_keys_idempotency_ownership_and_results(server):
    first = submit(server, server.a, 3, idem="batch-1")
    assert first.status_code == 201, first.text
    job = first.json()["id"]
    again = submit(server, server.a, 3, idem="batch-1")
    assert again.status_code == 200 and again.json()["id"] == job and again.json()["new"] is False
    other = submit(server, server.b, 1, idem="batch-1")  # the same key text from another API key: its own job
    assert other.status_code == 201 and other.json()["id"] != job

    assert requests.get(f"{server.url}/v1/jobs/{job}", headers=server.b, timeout=10).status_code == 404
    assert requests.get(f"{server.url}/v1/jobs/{job}/results", headers=server.b, timeout=10).status_code == 404
    assert requests.post(f"{server.url}/v1/jobs/{job}/cancel", headers=server.b, timeout=10).status_code == 404
    assert requests.get(f"{server.url}/v1/jobs/{job}", timeout=10).status_code == 401
    mine = requests.get(f"{server.url}/v1/jobs", headers=server.b, timeout=10).json()["jobs"]
    assert [j["id"] for j in mine] == [other.json()["id"]]

    status = wait_finished(server, server.a, job)
    assert status["state"] == "finished" and status["counts"]["done"] == 3 and status["rate"] > 0
    items = requests.get(f"{server.url}/v1/jobs/{job}/items", headers=server.a, timeout=10).json()["items"]
    assert [i["state"] for i in items] == ["done"] * 3 and all(i["attempts"] == 1 for i in items)
    listing = requests.get(f"{server.url}/v1/jobs/{job}/results", headers=server.a, timeout=10).json()["results"]
    sums = {r["name"]: r["checksum"] for r in listing}
    archive = requests.get(f"{server.url}/v1/jobs/{job}/results?format=zip", headers=server.a, timeout=30)
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zf:
        assert sorted(zf.namelist()) == sorted(sums)
        for name in zf.namelist():
            data = zf.read(name)
            assert hashlib.sha256(data).hexdigest() == sums[name]
            assert Image.open(io.BytesIO(data)).size == (256, 256)
    one = requests.get(server.url + listing[0]["url"], headers=server.a, timeout=10)
    assert one.headers["content-type"] == "image/png"
    assert hashlib.sha256(one.content).hexdigest() == one.headers["x-checksum-sha256"] == listing[0]["checksum"]


def test_bad_submissions_are_refused(server, tmp_path):
    bad_steps = submit(server, server.a, 1, steps='[{"tool": "fast-upscale", "colour": 1}]')
    assert bad_steps.status_code == 400 and "has no field colour" in bad_steps.json()["message"]
    (tmp_path / "secret.png").write_bytes(small_png(1))
    local = requests.post(server.url + "/v1/jobs", headers=server.a, timeout=10, json={
        "items": [{"input": str(tmp_path / "secret.png")}], "steps": [{"tool": "fast-upscale"}]})
    assert local.status_code == 403 and "PIXELSMITH_JOBS_ALLOW" in local.json()["message"]
    sneaky = requests.post(server.url + "/v1/jobs", headers=server.a, timeout=10, json={
        "items": [{"input": "inputs/*/*.png"}], "steps": [{"tool": "fast-upscale"}]})  # other jobs' uploads
    assert sneaky.status_code == 403
    mask = requests.post(server.url + "/v1/jobs", headers=server.a, timeout=10, files=[
        ("files", ("a.png", small_png(1), "image/png"))], data={"steps": json.dumps(
            [{"tool": "erase", "mask": str(tmp_path / "secret.png")}])})
    assert mask.status_code == 403
    escape = requests.post(server.url + "/v1/jobs", headers=server.a, timeout=10, files=[
        ("files", ("a.png", small_png(1), "image/png"))], data={"steps": '["fast-upscale"]', "name": "../../x.png"})
    assert escape.status_code == 403 and "outside" in escape.json()["message"]


def test_cancel_stops_the_queued_items(server):
    job = submit(server, server.a, 25).json()["id"]
    cancelled = requests.post(f"{server.url}/v1/jobs/{job}/cancel", headers=server.a, timeout=10).json()
    assert cancelled["cancelled"] >= 20 and cancelled["state"] == "cancelled"
    time.sleep(1.0)
    counts = requests.get(f"{server.url}/v1/jobs/{job}", headers=server.a, timeout=10).json()["counts"]
    assert counts["queued"] == 0 and counts["done"] + counts["running"] <= 5


def test_job_service_runs_one_request_for_async_results(tmp_path, embedded_models):
    from pixelsmith.jobs.service import JobService

    svc = JobService(tmp_path / "jobs").start()
    try:
        job = svc.submit_one("fast-upscale", {"image": small_png(2), "output_format": "webp"}, owner="k1")
        assert svc.result(job, owner="k2") is None  # another key's
        deadline = time.time() + 60
        while (res := svc.result(job, owner="k1")).status == "in-progress" and time.time() < deadline:
            time.sleep(0.2)
        assert res.status == "succeeded" and res.format == "webp" and res.tool == "fast-upscale"
        assert Image.open(io.BytesIO(res.data())).size == (256, 256)
        bad = svc.submit_one("fast-upscale", {"image": Image.new("RGB", (2000, 40))}, owner="k1")
        while (res := svc.result(bad, owner="k1")).status == "in-progress" and time.time() < deadline:
            time.sleep(0.2)
        assert res.status == "failed" and "image" in res.error["errors"][0]
    finally:
        svc.stop()
