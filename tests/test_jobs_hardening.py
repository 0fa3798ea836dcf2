"""The jobs API under load it must shrug off: a huge manifest is refused by its item cap, a large
allowed one is expanded off the event loop (``/healthz`` keeps answering), and job listings never
show the server's own filesystem."""

from __future__ import annotations

import io
import json
import threading
import time

import pytest
import requests
from loopback_http import serve_files
from PIL import Image

pytest.importorskip("pixelsmith.api.app")

from pixelsmith.api.app import Settings  # noqa: E402
from pixelsmith.api.testing import LiveServer  # noqa: E402
from pixelsmith.jobs.api import DEFAULT_MAX_ITEMS, MAX_ITEMS_ENV, max_job_items  # noqa: E402


@pytest.fixture(scope="module")
def allowed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("allowed")
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buf, "PNG")
    (folder / "one.png").write_bytes(buf.getvalue())
    return folder


@pytest.fixture(scope="module")
def http_pub(allowed):
    """Loopback HTTP: /pub/ok.png (an allowed prefix), /private.png (outside it)."""
    files = {"/pub/ok.png": (allowed / "one.png").read_bytes(), "/private.png": b"private"}
    fetched: list[str] = []
    with serve_files(files, fetched=fetched) as url:
        yield url, fetched


@pytest.fixture(scope="module")
def server(tmp_path_factory, allowed, http_pub):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIXELSMITH_JOBS_ALLOW", f"{allowed},{http_pub[0]}/pub/")
        mp.delenv(MAX_ITEMS_ENV, raising=False)
        settings = Settings(data_dir=str(tmp_path_factory.mktemp("srv")), auth=False, access_log=False)
        with LiveServer(settings) as srv:
            srv.app.state.jobs.stop()  # no workers: these tests look at submissions, not at running them
            yield srv


def manifest(allowed, n: int) -> bytes:
    return json.dumps(
        {"items": [str(allowed / "one.png")] * n, "steps": [{"tool": "fast-upscale"}], "name": "{index}.png"}
    ).encode()


def post(server, body: bytes, timeout: float = 120) -> requests.Response:
    return requests.post(
        server.url + "/v1/jobs", data=body, headers={"content-type": "application/json"}, timeout=timeout
    )


def test_the_item_cap_defaults_to_the_low_thousands_and_is_configurable():
    assert max_job_items({}) == DEFAULT_MAX_ITEMS == 2000
    assert max_job_items({MAX_ITEMS_ENV: "50"}) == 50
    assert max_job_items({MAX_ITEMS_ENV: "lots"}) == DEFAULT_MAX_ITEMS


def test_a_manifest_over_the_item_cap_is_refused_naming_the_limit(server, allowed, monkeypatch):
    import pixelsmith.jobs.api as jobs_api

    expanded: list[int] = []
    real_expand = jobs_api.expand
    monkeypatch.setattr(jobs_api, "expand", lambda doc, *a, **k: expanded.append(1) or real_expand(doc, *a, **k))
    r = post(server, manifest(allowed, 100_000))
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "bad_request"
    assert body["details"] == [
        f"items: 100000 items is over this server's limit of 2000 per job ({MAX_ITEMS_ENV}); split the work into jobs"
    ]
    assert expanded == [], "refused before any expansion, not after it"
    assert requests.get(server.url + "/healthz", timeout=5).json() == {"status": "ok"}


def test_a_glob_that_names_more_files_than_the_cap_is_refused(server, allowed, monkeypatch):
    monkeypatch.setenv(MAX_ITEMS_ENV, "3")
    for n in range(4):
        (allowed / f"g{n}.png").write_bytes((allowed / "one.png").read_bytes())
    try:
        r = post(server, json.dumps({"items": [str(allowed / "g*.png")], "steps": ["fast-upscale"]}).encode())
    finally:
        for n in range(4):
            (allowed / f"g{n}.png").unlink()
    assert r.status_code == 400 and r.json()["details"] == [
        f"items: 4 items is over this server's limit of 3 per job ({MAX_ITEMS_ENV}); split the work into jobs"
    ]


def test_a_large_allowed_manifest_does_not_block_healthz(server, allowed):
    worst = 0.0
    done = threading.Event()
    answers: list[int] = []

    def probe() -> None:
        nonlocal worst
        while not done.is_set():
            t = time.monotonic()
            answers.append(requests.get(server.url + "/healthz", timeout=60).status_code)
            worst = max(worst, time.monotonic() - t)
            time.sleep(0.02)

    prober = threading.Thread(target=probe)
    prober.start()
    time.sleep(0.2)
    started = time.monotonic()
    try:
        r = post(server, manifest(allowed, DEFAULT_MAX_ITEMS))
    finally:
        took = time.monotonic() - started
        done.set()
        prober.join()
    assert r.status_code == 201, r.text
    assert r.json()["total"] == DEFAULT_MAX_ITEMS
    assert set(answers) == {200} and len(answers) >= 3
    # functional, not a benchmark: the probe answers while the submission is being expanded
    assert worst < max(1.0, took / 3), (worst, took)


@pytest.mark.parametrize("tail", ["/pub/../private.png", "/pub/%2e%2e/private.png", "/pub/%2E%2e/private.png"])
def test_a_url_outside_the_allowed_prefix_through_dot_segments_is_refused(server, http_pub, tail):
    base, fetched = http_pub
    fetched.clear()
    url = base + tail
    r = post(server, json.dumps({"items": [url], "steps": ["fast-upscale"]}).encode())
    assert r.status_code == 403, r.text
    message = (
        f"input {url!r} has a dot segment or an encoded separator ('.', '..', '%2e%2e', '%2f' ...); "
        "give the path without it"
    )
    assert r.json() == {"error": "forbidden", "message": message, "details": [message]}
    assert fetched == []  # refused before anything was fetched


def test_an_allowed_url_is_accepted_in_any_spelling_of_its_prefix(server, http_pub):
    base, _ = http_pub
    port = base.rsplit(":", 1)[1]
    for url in (f"{base}/pub/ok.png", f"HTTP://127.0.0.1:{port}/pub/%6Fk.png"):
        r = post(server, json.dumps({"items": [url], "steps": ["fast-upscale"]}).encode())
        assert r.status_code == 201, r.text


# -- hole 10: listings show paths relative to the job, never the server's filesystem ----------------------


def test_jobs_and_items_never_show_the_servers_paths(server):
    svc = server.app.state.jobs
    root = str(svc.root)
    files = [("files", (f"pic{i}.png", (allowed_png := _png()), "image/png")) for i in range(2)]
    files.append(("mask", ("m.png", allowed_png, "image/png")))
    r = requests.post(
        server.url + "/v1/jobs", files=files, data={"steps": '[{"tool": "erase"}]', "name": "{index}.png"}, timeout=30
    )
    assert r.status_code == 201, r.text
    job = r.json()["id"]
    first, second = svc.store.items(job)
    assert first.input.startswith(root)  # stored as the server's paths...
    claim = svc.store.claim("w:1:x", job_id=job)
    assert claim is not None and claim.item_id == first.id
    svc.store.complete(first.id, "w:1:x", checksum="c", size=1, seconds=0.1)
    claim = svc.store.claim("w:1:x", job_id=job)
    svc.store.fail(second.id, "w:1:x", f"not found: {second.input}", transient=False)
    bodies = {
        "items": requests.get(f"{server.url}/v1/jobs/{job}/items", timeout=10).json(),
        "job": requests.get(f"{server.url}/v1/jobs/{job}", timeout=10).json(),
        "jobs": requests.get(f"{server.url}/v1/jobs", timeout=10).json(),
        "results": requests.get(f"{server.url}/v1/jobs/{job}/results", timeout=10).json(),
    }
    for what, body in bodies.items():
        assert root not in json.dumps(body) and str(server.settings.data_path) not in json.dumps(body), what
    a, b = bodies["items"]["items"]
    assert (a["input"], a["output"], a["steps"][0]["mask"]) == (
        "inputs/0000-pic0.png",
        "outputs/1.png",
        "inputs/field-mask.png",
    )
    assert b["error"] == "not found: inputs/0001-pic1.png"
    assert bodies["results"]["results"][0]["output"] == "outputs/1.png"


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, "PNG")
    return buf.getvalue()
