"""The layering docs/architecture.md promises: tools declare, engines implement, core names no engine."""

from __future__ import annotations

import ast
import json
import pathlib
import subprocess
import sys
import textwrap

import pytest
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "pixelsmith"
HEAVY = ("cv2", "torch", "onnxruntime", "diffusers", "transformers", "ncnn", "mediapipe", "h5py")


def imported_modules(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((PKG / "tools").glob("*.py")), ids=lambda p: p.name)
def test_tool_modules_import_nothing_from_engines_or_core(path):
    bad = {m for m in imported_modules(path) if m.startswith(("pixelsmith.engines", "pixelsmith.core")) or m in HEAVY}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_core_names_no_engine():
    source = (PKG / "core.py").read_text()
    for name in ("embedded", "diffusers"):
        assert f'"{name}"' not in source and f"engines.{name}" not in source


def test_every_recipe_lives_in_its_engine_folder_under_the_tools_name():
    from pixelsmith import core
    from pixelsmith.tools import all_tools

    for tool in all_tools():
        for engine, recipe in core.recipes_for(tool).items():
            module = recipe.run.__module__
            assert module == f"pixelsmith.engines.{engine}.recipes.{tool.name.replace('-', '_')}", module


def test_tool_list_and_recipes_import_no_model_runtime():
    code = textwrap.dedent(
        """
        import json, sys
        from pixelsmith import core
        from pixelsmith.tools import all_tools
        for tool in all_tools():
            core.availability(tool)
        print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in HEAVY)))
        """
    )
    code = f"HEAVY = {HEAVY!r}\n" + code
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_loading_one_embedded_model_imports_only_its_runtime():
    from pixelsmith.models import is_installed

    if not is_installed("realesr-animevideov3-x4"):
        pytest.skip("embedded weights not fetched (pixelsmith models fetch)")
    code = (
        "import sys, json; from pixelsmith.engines.embedded import new_session; "
        "new_session('realesr-animevideov3-x4'); "
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "ncnn" in loaded and not loaded & {"torch", "h5py", "onnxruntime", "mediapipe", "diffusers"}


def test_a_third_engine_is_one_folder_and_one_registry_entry(tmp_path, monkeypatch):
    """A new engine package plus an ENGINES entry serves a tool through core, with no other edit."""
    from pixelsmith import core
    from pixelsmith.engines import _RECIPES, ENGINES, Engine

    pkg = tmp_path / "thirdengine"
    (pkg / "recipes").mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            """
            class Flat:
                def upscale(self, image, progress=None):
                    return image.resize((image.width * 4, image.height * 4))

            def new_session(name):
                return Flat()
            """
        )
    )
    (pkg / "recipes" / "__init__.py").write_text("")
    (pkg / "recipes" / "fast_upscale.py").write_text(
        textwrap.dedent(
            """
            from pixelsmith.engines.recipe import Context, ToolResult, recipe
            from pixelsmith.engines.sessions import Upscaler
            from pixelsmith.tools.fast_upscale import TOOL, FastUpscaleRequest

            @recipe(TOOL, engine="third", models=[], priority=1000)
            def fast_upscale(req: FastUpscaleRequest, ctx: Context) -> ToolResult:
                return ToolResult(ctx.session("any", Upscaler).upscale(req.image), metadata={"by": "third"})
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(ENGINES, "third", Engine("third", (), "", "a test engine", module="thirdengine"))
    try:
        out = core.run("fast-upscale", {"image": Image.new("RGB", (64, 48), "red")})
        assert (out.engine, out.metadata["by"], out.image.size) == ("third", "third", (256, 192))
        forced = core.run("fast-upscale", {"image": Image.new("RGB", (64, 48), "red")}, engine="third")
        assert forced.engine == "third"
    finally:
        _RECIPES.pop("third", None)


def test_context_session_checks_the_kind(monkeypatch):
    from pixelsmith.engines import ENGINES, Engine
    from pixelsmith.engines.recipe import Context
    from pixelsmith.engines.sessions import Matting, Upscaler

    class NotAMatte:
        def upscale(self, image, progress=None):
            return image

    fake = Engine("fake", (), "", "", module="unused")
    monkeypatch.setitem(ENGINES, "fake", fake)
    monkeypatch.setattr(Engine, "session", lambda self, model: NotAMatte())
    ctx = Context(engine="fake", seed=1)
    assert isinstance(ctx.session("m", Upscaler), NotAMatte)
    with pytest.raises(TypeError, match="not a Matting"):
        ctx.session("m", Matting)


def test_a_recipes_own_packages_are_checked_before_it_is_chosen(monkeypatch):
    """A recipe that needs a package its engine does not (an extra) is unavailable without it, named."""
    import importlib.util

    from pixelsmith import core
    from pixelsmith.tools import get_tool

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mediapipe" else real(name, *a))
    recipe, missing = core.availability(get_tool("search-and-recolor"))
    assert recipe is None or recipe.engine != "embedded"
    assert any(m.engine == "embedded" and "mediapipe" in m.line() for m in missing)
