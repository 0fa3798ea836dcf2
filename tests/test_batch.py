"""pixelsmith batch: manifests, chains, resume after kill -9, a corrupt input mid-batch."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from pixelsmith.jobs.manifest import ManifestError, load, parse_text
from pixelsmith.jobs.runner import run_batch

ROOT = pathlib.Path(__file__).resolve().parents[1]
PIXELSMITH = [sys.executable, "-m", "pixelsmith"]


def sha(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def photos(tmp_path_factory, samples) -> pathlib.Path:
    """Small crops of the sample photos (fast-upscale takes ~0.1 s on each)."""
    folder = tmp_path_factory.mktemp("photos")
    src = Image.open(samples / "remove_background_input.png").convert("RGB")
    for i in range(12):
        crop = src.crop((i * 60, 200 + i * 20, i * 60 + 400, 600 + i * 20)).resize((72, 64))
        crop.save(folder / f"p{i:02d}.png")
    return folder


def write(path: pathlib.Path, text: str) -> pathlib.Path:
    path.write_text(text)
    return path


# -- manifest parsing --------------------------------------------------------------------------------
def test_manifest_expands_globs_folders_and_names_outputs(tmp_path, photos, embedded_models):
    m = load(
        write(
            tmp_path / "m.yaml",
            f"""
output: out
name: "{{stem}}-{{tool}}.{{ext}}"
steps: [{{tool: fast-upscale, output_format: webp}}]
items:
  - input: {photos}/p0*.png
  - input: {photos / "p10.png"}
    steps: [{{tool: remove-bg}}, {{tool: upscale-fast, output_format: jpeg}}]
    name: "{{item}}-{{tools}}.{{ext}}"
    label: ten
  - input: {photos}
    name: "all/{{parent}}-{{stem}}.{{ext}}"
""",
        )
    )
    assert m.output == str(tmp_path / "out")
    first = [i for i in m.items if i.steps[0].tool == "fast-upscale" and "all/" not in i.output]
    assert [pathlib.Path(i.output).name for i in first] == [f"p0{i}-fast-upscale.webp" for i in range(10)]
    chain = next(i for i in m.items if i.label == "ten")
    assert [s.tool for s in chain.steps] == ["remove-background", "fast-upscale"]  # aliases resolved
    assert chain.output.endswith("ten-remove-background+fast-upscale.jpg")
    assert len([i for i in m.items if "/all/" in i.output]) == 12  # the folder: every image in it


def test_manifest_jsonl_with_defaults_line(tmp_path, photos):
    text = "\n".join(
        json.dumps(x)
        for x in [
            {"output": "o", "steps": [{"tool": "fast-upscale"}]},
            {"input": str(photos / "p01.png")},
            {"input": str(photos / "p02.png"), "steps": [{"tool": "remove-background", "output_format": "webp"}]},
        ]
    )
    m = load(write(tmp_path / "m.jsonl", text))
    assert [i.steps[0].tool for i in m.items] == ["fast-upscale", "remove-background"]
    assert m.items[1].output.endswith("p02-remove-background.webp")


@pytest.mark.parametrize(
    "body, message",
    [
        ("items: []", "no items"),
        ("steps: [{tool: nope}]\nitems: [x.png]", "unknown tool"),
        ("steps: [{tool: fast-upscale, colour: red}]\nitems: [x.png]", "has no field colour"),
        ("steps: [{tool: erase, grow_mask: 99}]\nitems: [x.png]", "grow_mask"),
        ("steps: [{tool: fast-upscale, image: y.png}]\nitems: [x.png]", "comes from the previous step"),
        ("steps: [{tool: fast-upscale}]\nitems: [{input: x.png, colour: 1}]", "unknown key"),
        ("steps: [fast-upscale]\nname: '{nope}.png'\nitems: [x.png]", "unknown placeholder"),
        ("items: [{input: 'nothing-*.png', steps: [fast-upscale]}]", "matches no image files"),
        ("items: [a.png, b.png]\nsteps: [fast-upscale]\nname: same.png", "two items would write"),
        ("{ unclosed", "not valid YAML"),
    ],
)
def test_manifest_errors_say_what_is_wrong(tmp_path, body, message):
    with pytest.raises(ManifestError, match=message):
        load(write(tmp_path / "m.yaml", body))


def test_items_without_input_only_where_allowed_and_only_for_a_tool_that_makes_the_image(
    tmp_path, monkeypatch, embedded_models
):
    from pixelsmith.jobs.manifest import expand

    doc = {"items": [{"label": "t2i"}], "steps": [{"tool": "generate", "prompt": "a cat"}, "fast-upscale"]}
    with pytest.raises(ManifestError, match="needs 'input'"):  # a batch manifest: every item has an input
        expand(dict(doc), str(tmp_path))
    [item] = expand(dict(doc), str(tmp_path), output=str(tmp_path / "o"), inputless=True).items
    assert item.input is None and item.output == str(tmp_path / "o" / "t2i-fast-upscale.png")
    assert item.key == item.output and item.label == "t2i"
    with pytest.raises(ManifestError, match="fast-upscale needs an input image"):
        expand({"items": [{}], "steps": ["fast-upscale"]}, str(tmp_path), inputless=True)
    # no diffusion weights (the embedded ones only): generate is skipped, and the step now first would
    # get no image either
    from pixelsmith.config import models_dir

    embedded = tmp_path / "embedded-only"
    embedded.mkdir()
    for folder in models_dir().iterdir():
        if folder.name.startswith(("realesr", "isnet")):
            (embedded / folder.name).symlink_to(folder)
    monkeypatch.setenv("PIXELSMITH_MODELS", str(embedded))
    with pytest.raises(ManifestError, match="fast-upscale needs an input image"):
        expand({**doc, "skip_unavailable": True}, str(tmp_path), inputless=True)


def test_jsonl_rejects_non_json_line():
    with pytest.raises(ManifestError, match="line 2"):
        parse_text('{"input": "a.png"}\nnot json', jsonl=True)


# -- running -------------------------------------------------------------------------------------------
def test_two_step_chain_feeds_each_output_into_the_next_step(tmp_path, samples, embedded_models):
    """fast-upscale -> fast-upscale: 40x36 -> 160x144 -> 640x576, still the same picture."""
    src = Image.open(samples / "search_and_recolor_input.png").convert("RGB").crop((250, 150, 750, 600))
    small = src.resize((40, 36), Image.Resampling.LANCZOS)
    small.save(tmp_path / "face.png")
    manifest = write(
        tmp_path / "m.yaml",
        """
output: out
steps: [{tool: fast-upscale}, {tool: fast-upscale, output_format: webp}]
items: [face.png]
""",
    )
    result = run_batch(str(manifest), workers=1, show_progress=False, echo=lambda _l: None)
    assert result.ok and result.status.counts["done"] == 1
    out = tmp_path / "out" / "face-fast-upscale.webp"
    img = Image.open(out).convert("RGB")
    assert img.size == (640, 576)  # 16x: the second step upscaled the first step's output
    back = np.asarray(img.resize((40, 36), Image.Resampling.BOX), dtype=np.float64)
    mse = ((back - np.asarray(small, dtype=np.float64)) ** 2).mean()
    assert 10 * np.log10(255**2 / mse) > 22  # the same picture, not noise or a blank
    from pixelsmith.jobs.store import SQLiteJobStore

    item = SQLiteJobStore(result.store_path).items(result.job_id)[0]
    assert item.checksum == sha(out)
    assert [(s["tool"], s["size"]) for s in item.result["steps"]] == [
        ("fast-upscale", [160, 144]),
        ("fast-upscale", [640, 576]),
    ]


def test_corrupt_input_mid_batch_is_recorded_and_the_rest_finish(tmp_path, photos, embedded_models):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(4):
        (folder / f"a{i}.png").write_bytes((photos / f"p{i:02d}.png").read_bytes())
    (folder / "a2.png").write_bytes((photos / "p02.png").read_bytes()[:300])  # truncated PNG
    (folder / "a3.png").write_bytes(b"not an image at all")
    manifest = write(tmp_path / "m.yaml", "output: out\nsteps: [fast-upscale]\nitems: [in]\n")
    cli = subprocess.run(
        [*PIXELSMITH, "batch", str(manifest), "--workers", "2", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert cli.returncode == 1, cli.stderr  # failures are reported in the exit code, after the whole batch
    assert "2 done, 2 failed" in cli.stdout
    assert "a2.png" in cli.stdout and "a3.png" in cli.stdout
    db = sqlite3.connect(tmp_path / "out" / ".pixelsmith-batch.db")
    rows = dict(db.execute("SELECT key, state || ':' || ifnull(error,'') FROM items").fetchall())
    by_name = {pathlib.Path(k).name: v for k, v in rows.items()}
    assert by_name["a0-fast-upscale.png"] == "done:" and by_name["a1-fast-upscale.png"] == "done:"
    assert by_name["a2-fast-upscale.png"].startswith("failed:image:")
    assert by_name["a3-fast-upscale.png"].startswith("failed:image:")
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["a0-fast-upscale.png", "a1-fast-upscale.png"]


def test_cli_bad_manifest_exits_2_with_one_line(tmp_path):
    """A manifest the runner refuses is a usage error (exit 2); failed items are a runtime failure (exit 1, above)."""
    manifest = write(tmp_path / "m.yaml", "steps: [{tool: nope}]\nitems: [x.png]\n")
    proc = subprocess.run(
        [*PIXELSMITH, "batch", str(manifest), "--no-progress"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: ") and "unknown tool" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    missing = subprocess.run(
        [*PIXELSMITH, "batch", str(tmp_path / "none.yaml")], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert missing.returncode == 2 and "cannot read manifest" in missing.stderr


def test_resume_after_kill_9_loses_nothing_and_duplicates_nothing(tmp_path, photos, embedded_models):
    manifest = write(tmp_path / "m.yaml", f"output: out\nsteps: [fast-upscale]\nitems: ['{photos}/*.png']\n")
    db_path = tmp_path / "out" / ".pixelsmith-batch.db"
    proc = subprocess.Popen(
        [*PIXELSMITH, "batch", str(manifest), "--workers", "2", "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        deadline = time.time() + 90
        done = 0
        while time.time() < deadline and done < 3:
            time.sleep(0.1)
            if db_path.exists():
                try:
                    done = (
                        sqlite3.connect(db_path).execute("SELECT count(*) FROM items WHERE state='done'").fetchone()[0]
                    )
                except sqlite3.OperationalError:
                    pass
        assert 3 <= done < 12, f"kill came too late or too early ({done} done)"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    time.sleep(1.5)  # the workers die with their parent (PR_SET_PDEATHSIG)
    first = sqlite3.connect(db_path).execute("SELECT key, checksum FROM items WHERE state='done'").fetchall()
    for key, checksum in first:  # a finished item is on disk whole, with its recorded checksum
        assert sha(pathlib.Path(key)) == checksum
    assert len(first) < 12
    again = subprocess.run(
        [*PIXELSMITH, "batch", str(manifest), "--workers", "2", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{len(first)} already done before this run" in again.stdout
    rows = sqlite3.connect(db_path).execute("SELECT key, state, checksum FROM items").fetchall()
    assert len(rows) == 12 and {r[1] for r in rows} == {"done"}
    outputs = sorted((tmp_path / "out").iterdir())
    names = [p.name for p in outputs if not p.name.startswith(".pixelsmith-batch.db")]
    assert names == [f"p{i:02d}-fast-upscale.png" for i in range(12)]  # each once, no *.part left behind
    for key, _state, checksum in rows:
        assert sha(pathlib.Path(key)) == checksum
    for key, checksum in first:  # resumed, not redone: the first run's results stand
        assert dict((r[0], r[2]) for r in rows)[key] == checksum
    assert Image.open(tmp_path / "out" / "p00-fast-upscale.png").size == (288, 256)
    # a third run has nothing to do
    third = subprocess.run(
        [*PIXELSMITH, "batch", str(manifest), "--no-progress"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert third.returncode == 0 and "12 already done" in third.stdout and "0 processed" in third.stdout


def test_rewriting_an_item_removes_the_temporary_file_a_killed_try_left(tmp_path):
    """kill -9 between writing an item's temporary file and renaming it leaves ``.NAME.XXXXXXXX.part``;
    the try that writes the item again (holding its lease) removes it, and nothing else."""
    from pixelsmith.jobs.execute import write_atomic

    out = tmp_path / "out"
    out.mkdir()
    stale = [out / ".p05-fast-upscale.png.q0v6lds6.part", out / ".p05-fast-upscale.png.ab_12xyz.part"]
    kept = [
        out / ".p06-fast-upscale.png.q0v6lds6.part",  # another item's: its own worker sweeps it
        out / ".p05-fast-upscale.png.too-long-name.part",  # not the shape mkstemp makes
        out / "p05-fast-upscale.png.part",
        out / "notes.txt",
    ]
    for path in stale + kept:
        path.write_bytes(b"half")
    write_atomic(str(out / "p05-fast-upscale.png"), b"first", sweep=False)  # a first try: nothing listed or removed
    assert all(p.exists() for p in stale)
    write_atomic(str(out / "p05-fast-upscale.png"), b"whole")
    assert (out / "p05-fast-upscale.png").read_bytes() == b"whole"
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)


def test_rewriting_a_remote_item_removes_the_temporary_object_a_killed_try_left():
    """The same for an fsspec output (in-memory filesystem for s3://): ``NAME.XXXXXXXX.part`` objects of that
    item go, other items' and other shapes stay; glob characters in the name match only themselves."""
    import fsspec

    from pixelsmith.jobs.execute import write_atomic

    fs = fsspec.filesystem("memory")
    base = "/bucket-parts/out"
    stale = [f"{base}/p[1].png.0a1b2c3d.part", f"{base}/p[1].png.ffffffff.part"]
    kept = [f"{base}/p1.png.0a1b2c3d.part", f"{base}/p[1].png.notahex.part", f"{base}/p[1].png.0a1b2c3d.part.x"]
    for path in stale + kept:
        fs.pipe_file(path, b"half")
    write_atomic(f"memory://{base}/p[1].png", b"whole")
    assert fs.cat_file(f"{base}/p[1].png") == b"whole"
    assert not any(fs.exists(p) for p in stale)
    assert all(fs.exists(p) for p in kept)
    fs.rm(base, recursive=True)


def test_fsspec_urls_for_inputs_and_outputs(tmp_path, photos, monkeypatch, embedded_models):
    """Inputs and outputs by URL (fsspec's in-memory filesystem stands in for s3:// here)."""
    import fsspec

    fs = fsspec.filesystem("memory")
    for i in range(2):
        fs.pipe_file(f"/bucket/in/p{i}.png", (photos / f"p{i:02d}.png").read_bytes())
    monkeypatch.chdir(tmp_path)  # the store of a remote-output batch lives in ./.pixelsmith/
    manifest = write(
        tmp_path / "m.yaml", "output: memory://bucket/out\nsteps: [fast-upscale]\nitems: ['memory://bucket/in/*.png']\n"
    )
    result = run_batch(str(manifest), workers=1, show_progress=False, echo=lambda _l: None)
    assert result.ok and result.status.counts["done"] == 2
    assert sorted(fs.ls("/bucket/out", detail=False)) == [
        "/bucket/out/p0-fast-upscale.png",
        "/bucket/out/p1-fast-upscale.png",
    ]  # no temp names left
    from pixelsmith.jobs.store import SQLiteJobStore

    for item in SQLiteJobStore(result.store_path).items(result.job_id):
        assert item.output.startswith("memory://bucket/out/")
        assert hashlib.sha256(fs.cat_file(item.output.removeprefix("memory://"))).hexdigest() == item.checksum
    assert result.store_path.startswith(".pixelsmith/")
