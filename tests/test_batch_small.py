"""Batches of small items: what a worker process imports, how it starts (a fork of the fork server) and
ends (with the batch, even under kill -9), and the batch's start-up shortcuts (local inputs without fsspec,
no workers when nothing is left). Speed figures are in docs/performance.md, measured by bench/batch_small.py."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
from PIL import Image

from pixelsmith.jobs import runner, worker
from pixelsmith.jobs.manifest import Step, WorkItem, _expand_local, expand_inputs
from pixelsmith.jobs.store import SQLiteJobStore, _pid_alive

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Model runtimes and server stacks that fast-upscale (ncnn) never needs; a worker importing one pays for
# it at every start (torch alone is ~1 CPU-s) and holds its memory for nothing.
NOT_FOR_FAST_UPSCALE = {"torch", "fastapi", "starlette", "uvicorn", "ray", "onnxruntime", "diffusers", "transformers"}


def small_items(tmp_path: pathlib.Path, samples: pathlib.Path, n: int) -> list[WorkItem]:
    src = Image.open(samples / "search_and_recolor_input.png").convert("RGB")
    work = []
    for i in range(n):
        path = tmp_path / f"in{i}.png"
        src.crop((i * 40, i * 30, i * 40 + 300, i * 30 + 300)).resize((64, 64)).save(path)
        out = str(tmp_path / "out" / f"o{i}.png")
        work.append(WorkItem(out, str(path), [Step("fast-upscale")], out))
    return work


def modules_of(files: list[pathlib.Path]) -> list[set[str]]:
    return [set(f.read_text().split()) for f in files]


def test_fast_upscale_worker_imports_no_torch_fastapi_or_ray(tmp_path, samples, embedded_models, monkeypatch):
    store = SQLiteJobStore(tmp_path / "jobs.db")
    job, _ = store.create_job(small_items(tmp_path, samples, 3))
    monkeypatch.setenv("PIXELSMITH_WORKER_MODULES", str(tmp_path / "mods"))
    procs = worker.start_workers(store.path, job, 2, threads=1)
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert store.job(job).counts["done"] == 3
    sets = modules_of(sorted(tmp_path.glob("mods.*")))
    assert len(sets) == 2  # one list per worker process
    # at least one of them did the work: it has the ncnn session module (so the list is not of an idle process)
    assert any({"ncnn", "pixelsmith.engines.embedded.realesrgan"} <= mods for mods in sets)
    for mods in sets:
        top = {m.split(".")[0] for m in mods}
        assert not top & NOT_FOR_FAST_UPSCALE, sorted(top & NOT_FOR_FAST_UPSCALE)
        assert "yaml" not in top  # a worker never parses a manifest


@pytest.mark.skipif(sys.platform != "linux", reason="the fork server start method (Linux)")
def test_forked_workers_take_the_environment_of_their_start_not_the_servers(tmp_path, monkeypatch):
    """The fork server keeps the environment it was started with; a worker must see the batch's of now
    (PIXELSMITH_MODELS, PIXELSMITH_HOME...), as a spawned one would."""
    store = SQLiteJobStore(tmp_path / "jobs.db")
    job, _ = store.create_job([])  # no items: each worker starts, finds nothing, writes its module list
    assert worker.worker_context().get_start_method() == "forkserver"
    monkeypatch.setenv("PIXELSMITH_WORKER_MODULES", str(tmp_path / "first"))
    for p in worker.start_workers(store.path, job, 1):
        p.join(60)
    assert len(list(tmp_path.glob("first.*"))) == 1  # the server is running now, with this environment
    monkeypatch.setenv("PIXELSMITH_WORKER_MODULES", str(tmp_path / "second"))
    for p in worker.start_workers(store.path, job, 2):
        p.join(60)
    assert len(list(tmp_path.glob("first.*"))) == 1
    assert len(list(tmp_path.glob("second.*"))) == 2


def test_workers_exit_when_the_batch_is_killed_9(tmp_path, samples, embedded_models):
    """Under the fork server a worker's parent is the server, which lives on while its workers do, so the
    parent-death signal never fires: the workers must notice the batch process itself has gone."""
    store = SQLiteJobStore(tmp_path / "jobs.db")
    job, _ = store.create_job(small_items(tmp_path, samples, 40))
    script = textwrap.dedent(
        f"""
        import time
        from pixelsmith.jobs.worker import start_workers
        start_workers({store.path!r}, {job!r}, 2, threads=1)
        time.sleep(120)
        """
    )
    batch = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        pids: set[int] = set()
        deadline = time.time() + 90
        while time.time() < deadline and len(pids) < 2:
            time.sleep(0.05)
            rows = sqlite3.connect(store.path).execute("SELECT lease_owner FROM items WHERE state='running'")
            pids |= {int(r[0].split(":")[1]) for r in rows}
        assert len(pids) == 2, "both workers should be holding items"
        assert batch.pid not in pids  # the items are held by the worker processes, not the batch
        os.kill(batch.pid, signal.SIGKILL)
        batch.wait()
        killed = time.time()
        while time.time() - killed < 10 and any(_pid_alive(p) for p in pids):
            time.sleep(0.05)
        assert not any(_pid_alive(p) for p in pids), "a worker outlived its batch"
        assert store.job(job).remaining > 0  # they died mid-batch: the items left stay for a resumed run
    finally:
        batch.kill()
        batch.wait()


def test_local_inputs_expand_as_fsspec_would(tmp_path):
    (tmp_path / "a" / "sub" / "deep").mkdir(parents=True)
    for name in ("a/x.png", "a/B.JPG", "a/.hidden.png", "a/notes.txt", "a/sub/y.jpeg", "a/sub/deep/w.webp"):
        (tmp_path / name).write_bytes(b"")
    for spec in ("a", "a/*.png", "a/*", "a/**/*.png", "a/**", "a/sub/*.jpeg", "a/x.png", "a/missing.png"):
        local = str(tmp_path / spec)
        via_fsspec = [p.removeprefix("file://") for p in expand_inputs("file://" + local)]
        assert _expand_local(local) == via_fsspec, spec
        assert expand_inputs(local) == via_fsspec, spec
    assert _expand_local(str(tmp_path / "a")) == [
        str(tmp_path / n) for n in ("a/B.JPG", "a/sub/deep/w.webp", "a/sub/y.jpeg", "a/x.png")
    ]


def test_a_local_manifest_loads_without_fsspec_and_the_worker_without_yaml(tmp_path, samples):
    (tmp_path / "in").mkdir()
    Image.new("RGB", (32, 32)).save(tmp_path / "in" / "a.png")
    (tmp_path / "m.yaml").write_text("output: out\nsteps: [fast-upscale]\nitems: [in]\n")
    code = textwrap.dedent(
        f"""
        import sys
        import pixelsmith.jobs.worker
        print("yaml" in sys.modules)
        from pixelsmith.jobs.manifest import load
        print(len(load({str(tmp_path / "m.yaml")!r}).items), "fsspec" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "1", "False"]


def test_a_finished_batch_run_again_starts_no_worker(tmp_path, samples, embedded_models, monkeypatch):
    items = small_items(tmp_path, samples, 2)
    (tmp_path / "m.yaml").write_text(
        f"output: {tmp_path / 'out'}\nsteps: [fast-upscale]\nitems: [{tmp_path}/in*.png]\n"
    )
    first = runner.run_batch(str(tmp_path / "m.yaml"), workers=2, show_progress=False, echo=lambda _l: None)
    assert first.status.counts["done"] == len(items)

    def no_workers(*_a, **_k):
        raise AssertionError("started workers with nothing to do")

    monkeypatch.setattr(worker, "start_workers", no_workers)
    again = runner.run_batch(str(tmp_path / "m.yaml"), workers=2, show_progress=False, echo=lambda _l: None)
    assert again.ok and again.skipped == len(items) and again.processed == 0


def test_the_fork_server_can_start_before_the_batch_imports_pydantic():
    """`batch --workers N` starts the fork server first (cli/batch_cmd.py), so the server's preload overlaps the
    batch process's own imports: the module that starts it must import neither pydantic nor the tools."""
    code = "import json, sys\nimport pixelsmith.jobs.fork_server\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    modules = set(json.loads(proc.stdout))
    assert not {m for m in modules if m.split(".")[0] in {"pydantic", "numpy", "PIL", "typer"}}
    assert not {
        m for m in modules if m.startswith(("pixelsmith.tools", "pixelsmith.jobs.manifest", "pixelsmith.jobs.store"))
    }
