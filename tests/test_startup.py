"""Start-up pays only for what is asked (issue 13): which modules each entry point imports, in fresh processes.

These assert module sets, never times (the times are bench/startup.py's, docs/performance.md, start-up). A command runs
in a child ``python -c`` that runs ``pixelsmith`` as ``python -m pixelsmith`` would, then prints its
``sys.modules`` as JSON on the last line of stderr, so stdout stays the command's own.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT, SAMPLES
from PIL import Image

# model runtimes and servers an ncnn tool must never load
RUNTIMES = {"torch", "h5py", "onnxruntime", "fastapi", "transformers", "diffusers", "mediapipe", "ray", "uvicorn"}
# what --help needs none of: image and request libraries, and typer's unused help extras
HELP_NEVER = RUNTIMES | {"cv2", "ncnn", "numpy", "PIL", "pydantic", "markdown_it", "pygments"}

CHILD = textwrap.dedent(
    """
    import json, runpy, sys
    sys.argv = ["pixelsmith", *json.loads(sys.argv[1])]
    try:
        runpy.run_module("pixelsmith", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    sys.stdout.flush()
    print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
    """
)


def command(*args: object) -> tuple[str, set[str]]:
    """Run ``pixelsmith ARGS`` in a fresh process: (its stdout, the modules it imported)."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps([str(a) for a in args])],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["code"] in (0, None), proc.stderr
    return proc.stdout, set(report["modules"])


def tops(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def photo(tmp_path: pathlib.Path) -> pathlib.Path:
    """A 64x64 reduction of the middle of the upscale sample (a photo: fast-upscale's auto picks the photo net)."""
    src = Image.open(SAMPLES / "upscale_input.jpg").convert("RGB")
    side = min(src.size) // 2
    left, top = (src.width - side) // 2, (src.height - side) // 2
    path = tmp_path / "in.png"
    src.crop((left, top, left + side, top + side)).resize((64, 64), Image.Resampling.LANCZOS).save(path)
    return path


def test_help_imports_no_image_request_or_markdown_library():
    out, modules = command("--help")
    assert "run" in out and "tools" in out  # the real help page was printed
    assert not tops(modules) & HELP_NEVER, sorted(tops(modules) & HELP_NEVER)
    assert not {m for m in modules if m.startswith(("pixelsmith.tools", "pixelsmith.engines", "pixelsmith.core"))}


def test_tools_imports_no_model_runtime_and_no_numpy():
    out, modules = command("tools")
    assert "fast-upscale" in out and "generate" in out
    # every tool and recipe module was imported (the list is read from them, no manifest) ...
    assert {m for m in modules if ".recipes." in m and not m.endswith("._common")} >= {
        "pixelsmith.engines.embedded.recipes.fast_upscale",
        "pixelsmith.engines.diffusers.recipes.generate",
    }
    # ... and none of them imports numpy (0.12 s CPU alone) at its top: they import it inside their functions
    never = RUNTIMES | {"cv2", "ncnn", "numpy", "markdown_it", "pygments"}
    assert not tops(modules) & never, sorted(tops(modules) & never)


@pytest.mark.usefixtures("embedded_models")
def test_run_fast_upscale_imports_one_tool_its_recipes_and_ncnn(tmp_path):
    src, out = photo(tmp_path), tmp_path / "out.png"
    _, modules = command("run", "fast-upscale", src, "-o", out, "--quiet")
    assert Image.open(out).size == (256, 256)
    assert "ncnn" in modules and not tops(modules) & RUNTIMES, sorted(tops(modules) & RUNTIMES)
    # the photo net's content check and keep_input_tones are numpy (imaging.filters): OpenCV's import alone
    # cost ~22 ms CPU and ~20 MiB
    assert "cv2" not in tops(modules)
    # only the asked tool's request model, and only its recipe in each engine
    assert {m for m in modules if m.startswith("pixelsmith.tools.")} == {
        "pixelsmith.tools.base",
        "pixelsmith.tools.fast_upscale",
    }
    recipes = {m for m in modules if ".recipes." in m}
    # not even the diffusers recipes' shared _common (~13 ms, 1.1 MiB): its fast_upscale imports it when it runs
    assert recipes == {f"pixelsmith.engines.{e}.recipes.fast_upscale" for e in ("embedded", "diffusers")}, recipes
    # no rich for a run whose stderr is not a terminal (no bar to draw, no help shown)
    assert "rich" not in tops(modules)


@pytest.mark.usefixtures("embedded_models")
def test_python_api_on_the_small_model_imports_no_cli_and_no_cv2(tmp_path):
    """The memory row's path: pixelsmith.run on realesr-animevideov3-x4 (the illustration net)."""
    src = photo(tmp_path)
    code = (
        "import json, sys, pixelsmith\n"
        f"out = pixelsmith.run('fast-upscale', image={str(src)!r}, model='illustration')\n"
        "print(json.dumps({'model': out.metadata['model'], 'size': out.image.size, 'modules': sorted(sys.modules)}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    modules = tops(set(report["modules"]))
    assert report["model"] == "realesr-animevideov3-x4" and report["size"] == [256, 256]
    assert "ncnn" in modules
    assert not modules & (RUNTIMES | {"cv2", "typer", "click", "rich"}), sorted(modules & (RUNTIMES | {"cv2"}))


def test_one_recipe_at_a_time_is_the_same_recipe_as_the_full_load():
    """Engine.recipe(tool) imports one module; it must find exactly what recipes() finds, for every tool."""
    code = textwrap.dedent(
        """
        import json
        from pixelsmith.engines import ENGINES
        from pixelsmith.tools import all_tools
        names = [t.name for t in all_tools()]
        one = {e: {n: ENGINES[e].recipe(n) for n in names} for e in ENGINES}
        alias = [ENGINES[e].recipe(a) for e in ENGINES for a in ("fast_upscale", "nosuch", "_common")]
        full = {e: ENGINES[e].recipes() for e in ENGINES}
        same = all(one[e][n] is full[e].get(n) for e in ENGINES for n in names)
        print(json.dumps({"same": same, "alias": [a is None for a in alias],
                          "served": {e: sorted(n for n in names if one[e][n]) for e in ENGINES}}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["same"] and all(report["alias"])
    assert "fast-upscale" in report["served"]["embedded"] and "generate" in report["served"]["diffusers"]


def test_get_tool_loads_one_module_and_the_registry_keeps_its_order():
    code = textwrap.dedent(
        """
        import json, sys
        from pixelsmith.tools import _MODULES, all_tools, get_tool
        tool = get_tool("upscale-fast")
        loaded = sorted(m for m in sys.modules if m.startswith("pixelsmith.tools."))
        every = all_tools()
        print(json.dumps({"loaded": loaded, "same": every[_MODULES.index("fast_upscale")] is tool,
                          "order": [t.name.replace("-", "_") for t in every] == list(_MODULES)}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["loaded"] == ["pixelsmith.tools.base", "pixelsmith.tools.fast_upscale"]
    assert report["same"] and report["order"]


def test_lean_help_prints_the_same_pages_and_leaves_the_real_rich_modules():
    """With and without the stand-ins for rich.markdown / rich.traceback: byte-identical help and usage errors."""
    code = textwrap.dedent(
        """
        import json, sys
        from click.testing import CliRunner
        if sys.argv[1] == "plain":  # already imported: nothing stands in, typer.rich_utils imports as usual
            import rich.markdown, rich.traceback
        from pixelsmith.cli.main import build
        app = build()
        pages = [CliRunner().invoke(app, args, terminal_width=120, color=True)
                 for args in (["--help"], ["run", "fast-upscale", "--help"], ["tools", "--help"], ["--bogus"])]
        skipped = "rich.markdown" not in sys.modules and "rich.traceback" not in sys.modules
        import rich.markdown, typer.rich_utils
        print(json.dumps({
            "pages": [[p.exit_code, p.output] for p in pages],
            "skipped": skipped,
            "real": rich.markdown.__file__ is not None and rich.markdown.Markdown.__module__ == "rich.markdown",
            "works": type(typer.rich_utils.Markdown("**x**")).__name__,
        }))
        """
    )
    runs = {}
    for mode in ("lean", "plain"):
        proc = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, cwd=ROOT, check=True)
        runs[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert runs["lean"]["pages"] == runs["plain"]["pages"]
    assert [p[0] for p in runs["lean"]["pages"]] == [0, 0, 0, 2] and "Usage" in runs["lean"]["pages"][0][1]
    assert runs["lean"]["skipped"] and not runs["plain"]["skipped"]
    assert runs["lean"]["real"] and runs["lean"]["works"] == "Markdown"


def test_cli_escape_is_richs_escape():
    """cli.common.escape (so a run imports no rich) must escape exactly as rich.markup.escape does."""
    from rich.markup import escape as rich_escape

    from pixelsmith.cli.common import escape
    from pixelsmith.tools import all_tools

    texts = ["[bold]x[/]", r"\[x]", "a\\", "a\\\\", "[0..1]", "[/", "[#f00]c", "[@click]", "plain", "x [a] [b]"]
    for tool in all_tools():
        texts.append(tool.summary)
        texts += [str(info.description or "") for info in tool.request.model_fields.values()]
    assert [escape(t) for t in texts] == [rich_escape(t) for t in texts]
