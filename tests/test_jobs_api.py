"""The jobs API on the real server app, with two keys; and the in-process JobService."""

from __future__ import annotations

import hashlib
import io
import json
import pathlib
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
        a, b = keys.create("a"), keys.create("b")
        srv.a = {"authorization": f"Bearer {a.bearer}"}
        srv.b = {"authorization": f"Bearer {b.bearer}"}
        srv.a_id = a.key.id
        yield srv


def submit(server, headers, n: int, *, idem: str | None = None, steps='[{"tool": "fast-upscale"}]'):
    files = [("files", (f"pic{i}.png", small_png(i), "image/png")) for i in range(n)]
    extra = {"idempotency-key": idem} if idem else {}
    return requests.post(
        server.url + "/v1/jobs", headers={**headers, **extra}, files=files, data={"steps": steps}, timeout=30
    )


def photo_png(width: int, height: int) -> bytes:
    """A textured image big enough for several upscale tiles (the embedded net's tile is 384 px)."""
    import numpy as np

    rng = np.random.default_rng(7)
    img = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def submit_run(server, headers, image: bytes, step: dict, **files) -> requests.Response:
    parts = [("files", ("photo.png", image, "image/png"))]
    parts += [(name, (f"{name}.png", data, "image/png")) for name, data in files.items()]
    return requests.post(
        server.url + "/v1/jobs",
        headers=headers,
        files=parts,
        timeout=30,
        data={"steps": json.dumps([step]), "kind": "run", "title": step["tool"]},
    )


def job_service(server):
    return server.app.state.jobs  # the one JobService behind /v1/jobs and async results


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
    local = requests.post(
        server.url + "/v1/jobs",
        headers=server.a,
        timeout=10,
        json={"items": [{"input": str(tmp_path / "secret.png")}], "steps": [{"tool": "fast-upscale"}]},
    )
    assert local.status_code == 403 and "PIXELSMITH_JOBS_ALLOW" in local.json()["message"]
    sneaky = requests.post(
        server.url + "/v1/jobs",
        headers=server.a,
        timeout=10,
        json={"items": [{"input": "inputs/*/*.png"}], "steps": [{"tool": "fast-upscale"}]},
    )  # other jobs' uploads
    assert sneaky.status_code == 403
    mask = requests.post(
        server.url + "/v1/jobs",
        headers=server.a,
        timeout=10,
        files=[("files", ("a.png", small_png(1), "image/png"))],
        data={"steps": json.dumps([{"tool": "erase", "mask": str(tmp_path / "secret.png")}])},
    )
    assert mask.status_code == 403
    escape = requests.post(
        server.url + "/v1/jobs",
        headers=server.a,
        timeout=10,
        files=[("files", ("a.png", small_png(1), "image/png"))],
        data={"steps": '["fast-upscale"]', "name": "../../x.png"},
    )
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


def test_a_run_records_its_progress_and_lists_with_its_item(server):
    image = photo_png(800, 500)  # 3 x 2 tiles of at most 384 px at least
    made = submit_run(server, server.a, image, {"tool": "fast-upscale", "output_format": "webp"})
    assert made.status_code == 201, made.text
    job = made.json()
    assert job["priority"] > 0 and job["meta"]["kind"] == "run" and job["meta"]["tool"] == "fast-upscale"
    seen = set()
    deadline = time.time() + 180
    while time.time() < deadline:  # progress while it runs, recorded by the worker from the recipe's reports
        item = requests.get(f"{server.url}/v1/jobs/{job['id']}/items", headers=server.a, timeout=10).json()["items"][0]
        if item["progress"]:
            seen.add((item["progress"]["done"], item["progress"]["total"], item["progress"]["unit"]))
        if item["state"] in ("done", "failed"):
            break
        time.sleep(0.2)
    assert item["state"] == "done", item
    total = item["progress"]["total"]
    assert total >= 6 and item["progress"] == {"done": total, "total": total, "unit": "tile"}
    assert {s[2] for s in seen} == {"tile"} and all(1 <= d <= total for d, _, _ in seen)
    assert item["result"]["steps"][-1]["seconds"] > 0 and item["seconds"] > 0
    # the history reads it back from the list: the item with its result URL and uploaded input
    runs = [
        j
        for j in requests.get(server.url + "/v1/jobs", headers=server.a, timeout=10).json()["jobs"]
        if j["id"] == job["id"]
    ]
    listed = runs[0]["item"]
    assert listed["url"] == f"/v1/jobs/{job['id']}/results/{item['id']}"
    assert listed["steps"] == [{"tool": "fast-upscale", "output_format": "webp"}]
    got = requests.get(server.url + listed["inputs"]["input"], headers=server.a, timeout=10)
    assert got.status_code == 200 and got.content == image and got.headers["content-type"] == "image/png"
    out = requests.get(server.url + listed["url"], headers=server.a, timeout=10)
    assert Image.open(io.BytesIO(out.content)).size == (3200, 2000)
    # a run is one image: more files are a batch
    two = requests.post(
        server.url + "/v1/jobs",
        headers=server.a,
        timeout=10,
        data={"steps": '[{"tool": "fast-upscale"}]', "kind": "run"},
        files=[("files", ("a.png", small_png(1), "image/png")), ("files", ("b.png", small_png(2), "image/png"))],
    )
    assert two.status_code == 400 and "one image" in two.json()["message"]
    odd = submit(server, server.a, 1, steps='[{"tool": "fast-upscale"}]')
    assert odd.json()["priority"] == 0
    strange = requests.post(
        server.url + "/v1/jobs",
        headers=server.a,
        timeout=10,
        data={"steps": '[{"tool": "fast-upscale"}]', "kind": "urgent"},
        files=[("files", ("a.png", small_png(1), "image/png"))],
    )
    assert strange.status_code == 400 and "kind" in strange.text


def test_a_run_goes_before_queued_batch_items_and_shows_its_place(server):
    batch = submit(server, server.a, 12).json()["id"]
    run = submit_run(server, server.a, small_png(5), {"tool": "fast-upscale"}).json()["id"]
    queued = requests.get(f"{server.url}/v1/jobs/{batch}/items?state=queued", headers=server.a, timeout=10).json()
    # the run waits for no batch item: only the one being worked on (if any) is before it
    status = requests.get(f"{server.url}/v1/jobs/{run}", headers=server.a, timeout=10).json()
    if status["counts"]["queued"]:
        assert status["queue"]["ahead"] == 0
        assert all(i["ahead"] >= 1 for i in queued["items"]), "queued batch items wait behind the run"
        aheads = [i["ahead"] for i in queued["items"]]
        assert aheads == sorted(aheads) and len(set(aheads)) == len(aheads)
    wait_finished(server, server.a, run)
    wait_finished(server, server.a, batch, timeout=180)
    run_item = requests.get(f"{server.url}/v1/jobs/{run}/items", headers=server.a, timeout=10).json()["items"][0]
    batch_items = requests.get(f"{server.url}/v1/jobs/{batch}/items", headers=server.a, timeout=10).json()["items"]
    later = [i for i in batch_items if i["started"] > run_item["started"]]
    assert len(later) >= 8, "the run was claimed before most of the batch submitted ahead of it"


def test_the_input_endpoint_serves_only_this_jobs_uploads_to_its_owner(server, tmp_path):
    from pixelsmith.jobs.manifest import Step, WorkItem

    image, mask = small_png(3), small_png(4)
    job = submit_run(server, server.a, image, {"tool": "erase", "grow_mask": 3}, mask=mask).json()
    item = requests.get(f"{server.url}/v1/jobs/{job['id']}/items", headers=server.a, timeout=10).json()["items"][0]
    assert sorted(item["inputs"]) == ["input", "mask"]
    assert requests.get(server.url + item["inputs"]["mask"], headers=server.a, timeout=10).content == mask
    assert requests.get(server.url + item["inputs"]["input"], headers=server.a, timeout=10).content == image
    # another key: as if the job did not exist
    assert requests.get(server.url + item["inputs"]["input"], headers=server.b, timeout=10).status_code == 404
    assert requests.get(server.url + item["inputs"]["input"], timeout=10).status_code == 401
    base = f"{server.url}/v1/jobs/{job['id']}/items/{item['id']}/inputs"
    for name in ("grow_mask", "output", "tool", "image"):  # not an uploaded image of this item
        assert requests.get(f"{base}/{name}", headers=server.a, timeout=10).status_code == 404, name
    # a job whose paths are not its own uploads (a manifest's files, another job's spool) serves none of them
    secret = tmp_path / "secret.png"
    secret.write_bytes(small_png(6))
    svc = job_service(server)
    spooled = svc.store.items(job["id"])[0].input  # the API shows it relative to the job; the store has the path
    assert item["input"] == "inputs/" + pathlib.Path(spooled).name and pathlib.Path(spooled).is_file()
    foreign, _ = svc.store.create_job(
        [WorkItem(str(tmp_path / "o.png"), str(secret), [Step("erase", {"mask": spooled})], str(tmp_path / "o.png"))],
        owner=server.a_id,
        title="foreign",
        meta={"kind": "run", "spool": "not-a-spool"},
    )
    svc.store.cancel(foreign)
    fitem = svc.store.items(foreign)[0]
    listed = requests.get(f"{server.url}/v1/jobs/{foreign}/items", headers=server.a, timeout=10).json()["items"][0]
    assert listed["inputs"] == {}
    for name in ("input", "mask"):
        got = requests.get(
            f"{server.url}/v1/jobs/{foreign}/items/{fitem.id}/inputs/{name}", headers=server.a, timeout=10
        )
        assert got.status_code == 404, name
    # and an item id from another job is not served through this one
    assert (
        requests.get(
            f"{server.url}/v1/jobs/{foreign}/items/{item['id']}/inputs/input", headers=server.a, timeout=10
        ).status_code
        == 404
    )


# --- runs without an input image (text-to-image) ---------------------------------------------------


@pytest.fixture
def models(tmp_path, monkeypatch):
    """A models folder of this test's own: the embedded weights linked in, no diffusion weights (yet)."""
    from pixelsmith.config import models_dir

    real = models_dir()
    root = tmp_path / "models"
    root.mkdir()
    for name in ("realesrgan-x4plus", "isnet-general", "realesr-animevideov3-x4"):
        if (real / name).exists():
            (root / name).symlink_to(real / name)
    monkeypatch.setenv("PIXELSMITH_MODELS", str(root))
    return root


def submit_text_run(server, headers, step: dict) -> requests.Response:
    """A run with no files at all: a plain form, as curl -d or a page's FormData without images sends it."""
    return requests.post(
        server.url + "/v1/jobs",
        headers=headers,
        timeout=30,
        data={"steps": json.dumps([step]), "kind": "run", "title": step["tool"]},
    )


def run_item(server, headers, job_id: str) -> dict:
    wait_finished(server, headers, job_id, timeout=180)
    return requests.get(f"{server.url}/v1/jobs/{job_id}/items", headers=headers, timeout=10).json()["items"][0]


def test_a_run_without_files_is_a_job_when_its_tool_needs_no_image(server, models):
    made = submit_text_run(server, server.a, {"tool": "generate", "prompt": "a red cat"})
    assert made.status_code == 201, made.text
    job = made.json()
    assert job["meta"]["kind"] == "run" and job["meta"]["tool"] == "generate" and job["priority"] > 0
    # no diffusion weights here: the item fails once (no retries: it would fail again) with the pull command
    item = run_item(server, server.a, job["id"])
    assert item["state"] == "failed" and item["attempts"] == 1, item
    assert "pixelsmith models pull sd3.5-large" in item["error"]
    assert item["input"] is None and item["inputs"] == {}
    listed = [
        j
        for j in requests.get(server.url + "/v1/jobs", headers=server.a, timeout=10).json()["jobs"]
        if j["id"] == job["id"]
    ][0]
    assert listed["item"]["steps"] == [{"tool": "generate", "prompt": "a red cat"}]
    assert listed["item"]["error"] == item["error"] and "url" not in listed["item"]
    assert (
        requests.get(f"{server.url}/v1/jobs/{job['id']}/results/{item['id']}", headers=server.a, timeout=10).status_code
        == 404
    )


def test_a_run_or_batch_that_needs_an_image_and_has_none_is_refused(server):
    upscale = submit_text_run(server, server.a, {"tool": "fast-upscale"})
    assert upscale.status_code == 400 and "fast-upscale needs an input image" in upscale.json()["message"]
    # validated as it will run: image-to-image without the image is a bad request, not a failed item
    img2img = requests.post(
        server.url + "/v1/jobs",
        headers=server.a,
        timeout=10,
        json={"kind": "run", "steps": [{"tool": "generate", "prompt": "a cat", "mode": "image-to-image"}]},
    )
    assert img2img.status_code == 400 and "image-to-image needs an image" in img2img.json()["message"]
    for batch in (
        {"steps": '[{"tool": "generate", "prompt": "a cat"}]'},
        {"steps": '[{"tool": "generate", "prompt": "a cat"}]', "kind": "batch"},
    ):
        refused = requests.post(server.url + "/v1/jobs", headers=server.a, timeout=10, data=batch)
        assert refused.status_code == 400 and "upload one or more images" in refused.json()["message"]
    manifest = requests.post(
        server.url + "/v1/jobs",
        headers=server.a,
        timeout=10,
        json={"items": [{"label": "x"}], "steps": [{"tool": "generate", "prompt": "a cat"}]},
    )
    assert manifest.status_code == 400 and "needs 'input'" in manifest.json()["message"]


def test_a_text_to_image_run_on_the_tiny_pipeline_writes_its_result(server, models, tmp_path, monkeypatch):
    pytest.importorskip("diffusers")
    import torch

    from pixelsmith import core
    from pixelsmith.engines.diffusers import components, tiny
    from pixelsmith.engines.diffusers.pull import pull

    monkeypatch.setenv("PIXELSMITH_DIFFUSION_STEPS", "2")
    monkeypatch.setenv("PIXELSMITH_DEVICE", "cpu")
    tiny.build_all(tmp_path / "tiny", names=["sd3.5-large"])
    assert pull(["sd3.5-large"], source=tmp_path / "tiny", log=lambda line: None) == ["sd3.5-large"]
    components.STORE.clear()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        step = {"tool": "generate", "prompt": "a red cat", "seed": 7, "aspect_ratio": "16:9"}
        job = submit_text_run(server, server.a, step).json()
        item = run_item(server, server.a, job["id"])
        assert item["state"] == "done", item
        assert item["result"]["steps"][0]["engine"] == "diffusers" and item["result"]["steps"][0]["seed"] == 7
        listing = requests.get(f"{server.url}/v1/jobs/{job['id']}/results", headers=server.a, timeout=10).json()
        [result] = listing["results"]
        assert result["name"].endswith("-generate.png") and result["url"] == item["url"]
        got = requests.get(server.url + item["url"], headers=server.a, timeout=10)
        assert got.headers["content-type"] == "image/png"
        assert hashlib.sha256(got.content).hexdigest() == got.headers["x-checksum-sha256"] == item["checksum"]
        assert Image.open(io.BytesIO(got.content)).size == (80, 48)  # 16:9 at the tiny model's native 64 px
        # the very image the engine makes for this prompt and seed: the step's fields reached the model
        direct = core.run("generate", {k: v for k, v in step.items() if k != "tool"}, engine="diffusers")
        assert got.content == direct.data
        # the output file is whole: no temporary file left beside it
        assert result["output"] == "outputs/" + result["name"]  # relative to the job: no server path shown
        out = pathlib.Path(job_service(server).store.item(result["item"]).output)
        assert out.read_bytes() == got.content and [p.name for p in out.parent.iterdir()] == [out.name]
    finally:
        torch.set_num_threads(threads)
        components.STORE.clear()
