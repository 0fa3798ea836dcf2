"""The command line as a user runs it: real processes, real files, exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

PIXELSMITH = [sys.executable, "-m", "pixelsmith"]


def cli(*args, check=False):
    proc = subprocess.run(
        [*PIXELSMITH, *map(str, args)], capture_output=True, text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "200"}
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_tools_lists_all_fourteen_with_status():
    rows = json.loads(cli("tools", "--json", check=True).stdout)
    assert len(rows) == 14
    by_name = {r["name"]: r for r in rows}
    assert by_name["remove-background"]["ready"] and by_name["remove-background"]["engine"] == "embedded"
    assert by_name["fast-upscale"]["ready"]
    for row in rows:
        if not row["ready"]:  # says exactly what is missing
            assert row["missing"] and all(m for m in row["missing"])
    table = cli("tools", check=True).stdout
    assert "remove-background" in table and "generate" in table


def test_models_lists_the_catalogue():
    rows = json.loads(cli("models", "--json", check=True).stdout)
    names = {r["name"]: r for r in rows}
    assert names["isnet-general"]["installed"] and names["isnet-general"]["licence"].startswith("MIT")
    assert all(len(sha) == 64 for r in rows if r["engine"] == "embedded" for sha in r["sha256"].values())
    # Installed already (the fixture set-up fetched it): fetching again is a verified no-op.
    assert "isnet-general: already installed" in cli("models", "fetch", "isnet-general", check=True).stdout


def test_run_remove_background_writes_the_requested_format(tmp_path, embedded_models):
    src = tmp_path / "in.jpg"
    Image.open(ROOT / "samples" / "remove_background_input.png").convert("RGB").resize((320, 320)).save(src)
    out = tmp_path / "cut.webp"
    proc = cli("run", "remove-background", src, "-o", out, check=True)
    assert "wrote" in proc.stdout
    img = Image.open(out)
    assert img.format == "WEBP" and img.mode == "RGBA" and img.size == (320, 320)
    assert not list(tmp_path.glob("*.part"))


def test_run_fast_upscale_with_flags(tmp_path, embedded_models):
    src = tmp_path / "small.png"
    Image.fromarray((np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)).save(src)
    out = tmp_path / "big.bin"
    cli("run", "fast-upscale", src, "-o", out, "--output-format", "jpeg", check=True)
    img = Image.open(out)
    assert img.format == "JPEG" and img.size == (240, 160)


def test_errors_exit_non_zero_with_one_line(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    proc = cli("run", "remove-background", bad, "-o", tmp_path / "x.png")
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: image:") and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()

    small = tmp_path / "ok.png"
    Image.new("RGB", (100, 100)).save(small)
    proc = cli("run", "outpaint", small, "-o", tmp_path / "y.png", "--left", "5000")
    assert proc.returncode == 2 and "left" in proc.stderr

    proc = cli("run", "generate", "-o", tmp_path / "z.png", "--prompt", "a cat")
    # No diffusion weights in the test set-up: the error names what is missing and how to get it.
    assert proc.returncode == 1  # a missing model is a runtime failure (docs/cli.md), not a usage error
    assert "pixelsmith models pull" in proc.stderr and "generate" in proc.stderr


def test_help_is_generated_from_the_request_model():
    out = cli("run", "search-and-recolor", "--help", check=True).stdout
    for flag in ("--select-prompt", "--grow-mask", "--output-format", "--prompt", "--style-preset"):
        assert flag in out
    assert "[0..20]" in out  # the range comes from the model
    assert "--style-image" in cli("run", "style-transfer", "--help", check=True).stdout
    erase = " ".join(cli("run", "erase", "--help", check=True).stdout.split())
    assert "White = erase, black = keep" in erase  # an image field's description comes from its schema
    assert "INPUT: the image field" in erase and "(default 5)" in erase


# -- the exit-code convention (docs/cli.md): 0 ok, 1 runtime failure, 2 usage or validation ----------------
@pytest.fixture(scope="module")
def small(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("codes") / "small.png"
    Image.open(ROOT / "samples" / "remove_background_input.png").convert("RGB").resize((96, 80)).save(path)
    return path


@pytest.mark.parametrize(
    "args, says",
    [
        (["run", "no-such-tool", "{small}", "-o", "{out}"], "unknown tool 'no-such-tool'"),
        (["run", "remove-bakground", "{small}", "-o", "{out}"], "did you mean remove-background"),
        (["run", "fast-upscale", "{small}", "-o", "{out}", "--no-such-flag", "1"], "No such option"),
        (["run", "fast-upscale", "{small}"], "Missing option"),  # -o is required
        (["run", "fast-upscale", "{missing}", "-o", "{out}"], "does not exist"),
        (["run", "fast-upscale", "{small}", "-o", "{out}", "--output-format", "gif"], "'gif' is not one of"),
        (["run", "outpaint", "{small}", "-o", "{out}", "--left", "abc"], "not a valid integer"),
        (["run", "outpaint", "{small}", "-o", "{out}", "--left", "5000"], "error: left:"),  # the model's range
        (["run", "search-and-recolor", "{small}", "-o", "{out}", "--prompt", "red"], "error: select_prompt:"),
        (["models", "fetch", "no-such-model"], "error: 'no-such-model': not a model"),
        (["models", "fetch", "sd3.5-large"], "use `pixelsmith models pull sd3.5-large`"),
        (["models", "pull", "no-such-model"], "not a model or a tool"),
        (["keys", "revoke", "PSKNOSUCHKEY", "--data-dir", "{tmp}"], "error: no active key PSKNOSUCHKEY"),
        (["no-such-command"], "No such command"),
    ],
)
def test_usage_and_validation_errors_exit_2(args, says, tmp_path, small, embedded_models):
    names = {"small": small, "out": tmp_path / "out.png", "missing": tmp_path / "missing.png", "tmp": tmp_path}
    proc = cli(*[a.format(**names) for a in args])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert says in " ".join(proc.stderr.split()), proc.stderr  # rich may wrap the message
    assert not (tmp_path / "out.png").exists()


def test_runtime_failures_exit_1(tmp_path, small, embedded_models):
    # a model this machine lacks
    proc = cli("run", "inpaint", small, "--mask", small, "--prompt", "a cat", "-o", tmp_path / "x.png")
    assert proc.returncode == 1 and proc.stderr.startswith("error: inpaint cannot be served on this machine")
    assert len(proc.stderr.strip().splitlines()) == 1
    # the output cannot be written (a read-only folder; root writes anyway, so only where that holds)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if not os.access(locked, os.W_OK):
        proc = cli("run", "fast-upscale", small, "-o", locked / "y.png")
        assert proc.returncode == 1 and proc.stderr.startswith("error: cannot write")


def test_success_exits_0(tmp_path, small, embedded_models):
    proc = cli("run", "fast-upscale", small, "-o", tmp_path / "big.png")
    assert proc.returncode == 0 and "wrote" in proc.stdout and proc.stderr == ""
    assert Image.open(tmp_path / "big.png").size == (384, 320)
    for args in (
        ["--help"],
        ["run", "--help"],
        ["run", "fast-upscale", "--help"],
        ["keys", "list", "--data-dir", tmp_path],
    ):
        assert cli(*args).returncode == 0, args


def test_exit_codes_map_every_error_class():
    """The one mapping (pixelsmith.cli.common.exit_code) every command uses."""
    from pixelsmith import errors
    from pixelsmith.cli.common import exit_code
    from pixelsmith.jobs.manifest import ManifestError

    usage = [
        errors.InvalidRequest.one("image", "bad"),
        errors.ImageTooLarge.one("image", "too big"),
        errors.PayloadTooLarge("too big"),
        errors.UnknownTool("nope"),
        errors.UnknownModel("nope"),
        errors.NotFound("nope"),
        ManifestError("no items"),
    ]
    runtime = [
        errors.ToolUnavailable("generate", [errors.Missing("diffusers", ["sd3.5-large"])]),
        errors.Unprocessable("cannot find it"),
        errors.Busy("busy"),
        errors.RateLimited("slow down"),
        errors.PixelsmithError("internal"),
    ]
    assert [exit_code(e) for e in usage] == [2] * len(usage)
    assert [exit_code(e) for e in runtime] == [1] * len(runtime)


# -- start-up: the CLI modules import no heavy module --------------------------------------------------------
HEAVY = ("torch", "cv2", "onnxruntime", "diffusers", "fastapi", "ray", "transformers", "uvicorn")


def imported(*args: str) -> set[str]:
    proc = subprocess.run(
        [*PIXELSMITH[:1], "-X", "importtime", *PIXELSMITH[1:], *args], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


def test_help_imports_no_heavy_module():
    for args in (["--help"], ["serve", "--help"], ["keys", "--help"], ["batch", "--help"], ["models", "--help"]):
        heavy = {m for m in imported(*args) if m.split(".")[0] in HEAVY}
        assert not heavy, (args, sorted(heavy))
    assert "pydantic" not in imported("--help")


def test_tools_imports_no_server_or_model_runtime():
    # cv2 comes with pixelsmith.tools for now (the imaging helpers); the runtimes that run models must not
    heavy = {m for m in imported("tools", "--json") if m.split(".")[0] in HEAVY and m.split(".")[0] != "cv2"}
    assert not heavy, sorted(heavy)


# -- issue 15: progress, --json, --quiet, output formats, `tools` at 80 columns, quiet native logs ----------
def on_a_terminal(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal (stdout a pipe): (exit code, stdout, what the terminal saw)."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*PIXELSMITH, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=slave,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "120", **(env or {})},
    )
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    out = proc.stdout.read().decode() if proc.stdout else ""
    return proc.wait(), out, seen.decode(errors="replace")


def test_run_shows_progress_in_the_recipes_unit_on_a_terminal(tmp_path, small, embedded_models):
    code, out, term = on_a_terminal("run", "fast-upscale", small, "-o", tmp_path / "big.png")
    assert code == 0 and "wrote" in out, term
    assert "fast-upscale" in term and "tile" in term and "ETA" in term  # the bar: unit, elapsed and ETA
    assert "1/1" in term or "/" in term.split("tile")[0]  # done/total before the unit
    code, out, term = on_a_terminal("run", "fast-upscale", small, "-o", tmp_path / "q.png", "--quiet")
    assert code == 0 and out == "" and "ETA" not in term and term.strip() == ""
    assert Image.open(tmp_path / "q.png").size == (384, 320)


def test_run_prints_nothing_extra_when_stderr_is_not_a_terminal(tmp_path, small, embedded_models):
    proc = cli("run", "fast-upscale", small, "-o", tmp_path / "big.png")
    assert proc.returncode == 0 and proc.stderr == "" and len(proc.stdout.splitlines()) == 1


def test_run_json_is_one_object_on_stdout(tmp_path, small, embedded_models):
    proc = cli("run", "fast-upscale", small, "-o", tmp_path / "big.webp", "--json", check=True)
    body = json.loads(proc.stdout)  # the whole of stdout is the one object
    assert body["output"] == str(tmp_path / "big.webp") and body["outputs"] == [body["output"]]
    assert body["tool"] == "fast-upscale" and body["engine"] == "embedded" and body["format"] == "webp"
    assert body["finish_reason"] == "SUCCESS" and isinstance(body["seconds"], float) and body["seconds"] > 0
    assert body["seed"] == 0  # fast-upscale has no seed field
    assert (body["width"], body["height"]) == (384, 320) and body["metadata"]["model"]
    outpaint = json.loads(
        cli("run", "outpaint", small, "-o", tmp_path / "o.png", "--left", "16", "--seed", "7", "--json").stdout
    )
    assert outpaint["seed"] == 7 and "no effect" in outpaint["metadata"]["note"]  # the recipe's metadata


def test_batch_json_summary(tmp_path, small, embedded_models):
    manifest = tmp_path / "m.yaml"
    manifest.write_text(f"output: {tmp_path / 'out'}\nsteps: [{{tool: fast-upscale}}]\nitems: [{small}]\n")
    proc = cli("batch", manifest, "--json", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert body["ok"] and body["counts"]["done"] == 1 and body["failures"] == []
    assert len(body["outputs"]) == 1 and Image.open(body["outputs"][0]).size == (384, 320)


def test_output_extension_must_be_a_supported_format(tmp_path, small, embedded_models):
    proc = cli("run", "fast-upscale", small, "-o", tmp_path / "x.gif")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("error: output x.gif: .gif is not a supported output format")
    assert all(name in proc.stderr for name in ("png", "jpeg", "webp", "--output-format"))
    assert not (tmp_path / "x.gif").exists()
    # the user asked for that format by name: their file name stands
    cli("run", "fast-upscale", small, "-o", tmp_path / "x.gif", "--output-format", "png", check=True)
    assert Image.open(tmp_path / "x.gif").format == "PNG"
    cli("run", "fast-upscale", small, "-o", tmp_path / "noext", check=True)  # no extension: the default, PNG
    assert Image.open(tmp_path / "noext").format == "PNG"
    cli("run", "fast-upscale", small, "-o", tmp_path / "x.JPG", check=True)
    assert Image.open(tmp_path / "x.JPG").format == "JPEG"


def test_tools_fits_80_columns_without_breaking_words():
    proc = subprocess.run(
        [*PIXELSMITH, "tools"], capture_output=True, text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "80"}
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert all(len(line.rstrip()) <= 80 for line in lines), [line for line in lines if len(line.rstrip()) > 80]
    words = proc.stdout.split()
    rows = json.loads(cli("tools", "--json", check=True).stdout)
    for row in rows:
        assert row["name"] in words  # whole, never "remove-backgro" / "und"
    for command in {c for r in rows if not r["ready"] for c in r["install"]}:
        joined = " ".join(proc.stdout.replace("\\\n", " ").split())  # shell continuations joined back
        assert " ".join(command.split()) in joined, command
    assert "what is missing" in cli("tools", "--wide", check=True).stdout


def test_recolor_stderr_has_no_mediapipe_notices(tmp_path, embedded_models):
    src = tmp_path / "people.png"
    Image.open(ROOT / "samples" / "search_and_recolor_input.png").convert("RGB").resize((256, 256)).save(src)
    args = ("run", "search-and-recolor", src, "-o", tmp_path / "r.png", "--select-prompt", "person", "--prompt", "red")
    proc = cli(*args)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    loud = cli("--debug", *args)  # still there for whoever asks
    assert loud.returncode == 0 and "inference_feedback_manager.cc" in loud.stderr


def test_validation_messages_have_no_pydantic_prefix(tmp_path, small):
    proc = cli("run", "outpaint", small, "-o", tmp_path / "o.png")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: at least one of left, right, up, down must be non-zero"


def test_help_says_which_fields_have_no_effect_on_the_serving_engine():
    text = " ".join(cli("run", "outpaint", "--help", check=True).stdout.split())
    assert "On the embedded engine (it serves this tool here):" in text
    assert "prompt and style_preset have no effect" in text


def test_version():
    proc = cli("--version", check=True)
    from pixelsmith import __version__

    assert proc.stdout.strip() == f"pixelsmith {__version__}"
