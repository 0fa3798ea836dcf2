"""Start-up and memory of the CLI and the Python API against a raw ncnn script (issue 13, rows 1-2).

    .venv/bin/python bench/startup.py [--rounds 5] [--tree after=.] [--tree before=/tmp/pixelsmith-before]
                                      [--only REGEX]

Every variant is a fresh process, run ABAB... for ``--rounds`` rounds after one untimed warm-up each (file
cache). For each child the bench records its wall seconds, its CPU seconds (user + sys of that child alone,
from ``os.wait4``: the figure to compare while other jobs share the cores) and its peak RSS (``ru_maxrss``).
It prints min and median per variant, the ratio of medians to the raw script doing the same work, and the
load average before and after.

The variants, on a 64x64 reduction of the middle of ``samples/upscale_input.jpg`` (a photo):

* ``raw-photo`` / ``raw-anime``: a plain script: PIL reads the PNG, one ncnn net with pixelsmith's settings
  (no Vulkan, ``threads() // workers`` threads, the same param/bin files under the models folder) runs
  ``data -> output`` once, PIL writes the PNG (compress level 1, as ``imaging/encode.py``). The photo model is
  what fast-upscale's default (``model=auto``) picks for a photo: ``realesr-general-x4v3``; the anime one is
  ``realesr-animevideov3-x4``, the small model issue 13 names for the memory row.
* ``raw-photo+cv2``: the same plus what the tool does besides the network on a photo: the flat-colour check
  and ``keep_input_tones`` with OpenCV (the tool has done them in numpy since the fourth round:
  ``imaging.filters``), so the same pixels as the tool; the gap between it and ``raw-photo`` is what importing
  cv2 and that work cost, not pixelsmith's framework.
* ``raw-anime-loaded``: the raw script stopping once the net is loaded, printing its RSS (the memory row).
* ``floor-photo``: ``raw-photo``'s work inside a Typer command whose arguments become one validated pydantic
  model: the floor of any Typer + pydantic CLI doing this job.
* ``TREE:cli-photo``: ``python -m pixelsmith run fast-upscale in.png -o out.png``; ``TREE:cli-anime`` adds
  ``--model illustration``.
* ``TREE:api-photo`` / ``TREE:api-anime``: ``import pixelsmith; pixelsmith.run("fast-upscale", ...)``, which
  also reports the RSS right after the run (the model loaded) and which heavy modules it imported.
* ``TREE:api-anime-loaded``: a validated request, then ``core.load_model`` (a server's preload): the RSS with the
  model loaded, before any run.
* ``TREE:help`` / ``TREE:tools``: ``pixelsmith --help`` and ``pixelsmith tools``.
* ``TREE:cli-photo-1t`` / ``TREE:api-anime-1t``: with ``PIXELSMITH_THREADS=1``: one tile worker, so the 64x64
  input is one tile on one net, as in the raw script (with 2 cores the session cuts it into 2 overlapping
  tiles, one net each: more network work and a second net's memory).
* ``import:raw+pydantic-used``: numpy + PIL + ncnn, then one pydantic model built and validated (``import pydantic``
  alone is lazy: its core loads on first use), for the memory it adds.
* ``import:*``: only imports, cumulative (numpy + PIL + ncnn, then + pydantic, + typer, + cv2, + pixelsmith's
  run-path modules), to show which layer the remaining gap to the raw script is.
* ``tools:*``: the same ladder for ``pixelsmith tools``: the interpreter, + typer and rich, + pydantic and PIL,
  + every tool module, + every recipe module, then the whole command through ``cli.main``.

``--tree NAME=PATH`` runs the pixelsmith variants from that source tree (``PYTHONPATH``); give two to compare
a change with its parent (``git worktree add --detach /tmp/pixelsmith-before main``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.interleave import installed_env, load_average  # noqa: E402

HEAVY = ("torch", "h5py", "cv2", "onnxruntime", "fastapi", "transformers", "diffusers", "mediapipe", "ray")
PHOTO, ANIME = "realesr-general-x4v3", "realesr-animevideov3-x4"

RAW = r"""
import os, sys
import numpy as np
import ncnn
from PIL import Image

src, dst, folder, threads, tones = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
img = Image.open(src).convert("RGB")
net = ncnn.Net()
net.opt.use_vulkan_compute = False
net.opt.num_threads = threads
net.load_param(os.path.join(folder, "model.param"))
net.load_model(os.path.join(folder, "model.bin"))
if tones == "load":  # the memory row: RSS with the model loaded, before any run
    print(int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
    raise SystemExit
rgb = np.asarray(img, dtype=np.float32) / 255.0
chw = np.ascontiguousarray(rgb.transpose(2, 0, 1))
ex = net.create_extractor()
mat = ncnn.Mat(chw)
ex.input("data", mat)
_, out = ex.extract("output")
up = np.clip(np.array(out).transpose(1, 2, 0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
if tones == "1":  # what fast-upscale adds on a photo: its flat-colour check and keep_input_tones (sigma 0.75)
    import cv2
    small = np.asarray(img)
    y = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    box = np.ones((3, 3), np.uint8)
    spread = cv2.dilate(y, box).astype(np.int16) - cv2.erode(y, box)
    big = up.astype(np.float32)
    down = cv2.resize(big, img.size, interpolation=cv2.INTER_AREA)
    ref = small.astype(np.float32)
    delta = cv2.GaussianBlur(ref, (0, 0), 0.75) - cv2.GaussianBlur(down, (0, 0), 0.75)
    big += cv2.resize(delta, (up.shape[1], up.shape[0]), interpolation=cv2.INTER_CUBIC)
    up = np.clip(big + 0.5, 0, 255).astype(np.uint8)
Image.fromarray(up, "RGB").save(dst, "PNG", compress_level=1)
"""

API = r"""
import json, os, sys
import pixelsmith

src, dst, model = sys.argv[1], sys.argv[2], sys.argv[3]
out = pixelsmith.run("fast-upscale", image=src, **({"model": model} if model != "auto" else {}))
out.save(dst)
rss = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[4].split(",")))
print(json.dumps({"rss": rss, "model": out.metadata.get("model"), "heavy": heavy}))
"""


# The floor of any Typer + pydantic CLI doing raw-photo's job: a Typer command whose arguments become one
# validated pydantic request (an image path and the output's), then exactly raw-photo's work.
FLOOR = (
    "import sys\nimport typer\nfrom pydantic import BaseModel\n\n"
    "class Request(BaseModel):\n    image: str\n    output: str\n    model: str = 'auto'\n\n"
    "app = typer.Typer(add_completion=False)\n\n"
    "@app.command()\ndef run(image: str, output: str, folder: str, threads: int, tones: str) -> None:\n"
    "    req = Request.model_validate({'image': image, 'output': output})\n"
    "    sys.argv = ['raw', req.image, req.output, folder, str(threads), tones]\n"
    "    exec(RAW, {'__name__': '__raw__'})\n\n"
    "app()\n"
)

# pixelsmith with the model loaded, before any run: a validated request, then core.load_model (a server's preload)
LOADED = r"""
import json, os, pathlib, sys
from pixelsmith import core

core.parse("fast-upscale", {"image": pathlib.Path(sys.argv[1]), "model": "illustration"})
core.load_model("embedded", sys.argv[2])
rss = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[3].split(",")))
print(json.dumps({"rss": rss, "model": sys.argv[2], "heavy": heavy}))
"""


@dataclass
class Variant:
    name: str
    argv: list[str]
    env: dict[str, str]
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    peak: list[float] = field(default_factory=list)  # MiB
    after: list[float] = field(default_factory=list)  # MiB, the API variants' RSS once the model ran
    report: dict[str, object] = field(default_factory=dict)


def run_child(v: Variant, workdir: str) -> tuple[float, float, float, str]:
    """One fresh process: (wall s, CPU s, peak RSS MiB, stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(v.argv, cwd=workdir, env=v.env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"{v.name} failed ({proc.returncode}): {err.read().decode()[-2000:]}")
        out.seek(0)
        text = out.read().decode()
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, text


def variants(trees: dict[str, str], image: str, work: str) -> list[Variant]:
    sys.path.insert(0, next(iter(trees.values())))
    from pixelsmith.config import threads
    from pixelsmith.models import model_path

    workers = max(1, int(os.environ.get("PIXELSMITH_TILE_WORKERS", "0")) or threads())
    per_net = str(max(1, threads() // workers))  # what each of RealEsrganSession's nets gets
    py = sys.executable
    # compiled bytecode, as an installed copy has (the warm-up round writes it: bench/interleave.installed_env)
    base = installed_env({k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, os.path.join(work, "pyc"))
    base |= {"COLUMNS": "200"}
    out = os.path.join(work, "out.png")
    found = [
        Variant("raw-photo", [py, "-c", RAW, image, out, str(model_path(PHOTO)), per_net, "0"], base),
        Variant("raw-photo+cv2", [py, "-c", RAW, image, out, str(model_path(PHOTO)), per_net, "1"], base),
        Variant("raw-anime", [py, "-c", RAW, image, out, str(model_path(ANIME)), per_net, "0"], base),
        Variant("raw-anime-loaded", [py, "-c", RAW, image, out, str(model_path(ANIME)), per_net, "load"], base),
        Variant(
            "floor-photo",
            [py, "-c", f"RAW = {RAW!r}\n{FLOOR}", image, out, str(model_path(PHOTO)), per_net, "0"],
            base,
        ),
    ]
    cli = [py, "-m", "pixelsmith"]
    for tree_name, tree in trees.items():
        env = base | {"PYTHONPATH": os.path.abspath(tree)}
        one = env | {"PIXELSMITH_THREADS": "1"}  # one worker: a 64x64 input is one tile on one net, as raw
        found += [
            Variant(f"{tree_name}:cli-photo", [*cli, "run", "fast-upscale", image, "-o", out], env),
            Variant(f"{tree_name}:cli-photo-1t", [*cli, "run", "fast-upscale", image, "-o", out], one),
            Variant(f"{tree_name}:api-photo", [py, "-c", API, image, out, "auto", ",".join(HEAVY)], env),
            Variant(
                f"{tree_name}:cli-anime",
                [*cli, "run", "fast-upscale", image, "-o", out, "--model", "illustration"],
                env,
            ),
            Variant(f"{tree_name}:api-anime", [py, "-c", API, image, out, "illustration", ",".join(HEAVY)], env),
            Variant(f"{tree_name}:api-anime-1t", [py, "-c", API, image, out, "illustration", ",".join(HEAVY)], one),
            Variant(f"{tree_name}:api-anime-loaded", [py, "-c", LOADED, image, ANIME, ",".join(HEAVY)], env),
            Variant(f"{tree_name}:help", [*cli, "--help"], env),
            Variant(f"{tree_name}:tools", [*cli, "tools"], env),
        ]
    for name, modules in IMPORTS.items():  # what the framework's own imports cost, each a fresh process
        found.append(Variant(f"import:{name}", [py, "-c", f"import {modules}"], base | {"PYTHONPATH": ROOT}))
    # `import pydantic` is lazy: its core and validators load when a model is first built and used
    found.append(Variant("import:raw+pydantic-used", [py, "-c", PYDANTIC_USED], base | {"PYTHONPATH": ROOT}))
    for name, code in TOOLS_LADDER.items():  # the same for `pixelsmith tools`, layer by layer
        found.append(Variant(f"tools:{name}", [py, "-c", code], base | {"PYTHONPATH": ROOT, "COLUMNS": "200"}))
    return found


# Cumulative: each line imports what the one before it does plus one more layer of the run path.
IMPORTS = {
    "raw": "numpy, PIL.Image, ncnn",
    "+pydantic": "numpy, PIL.Image, ncnn, pydantic",
    "+typer": "numpy, PIL.Image, ncnn, pydantic, typer",
    "+cv2": "numpy, PIL.Image, ncnn, pydantic, typer, cv2",
    "+pixelsmith": "numpy, PIL.Image, ncnn, pydantic, typer, cv2, pixelsmith.cli.main, pixelsmith.core, "
    "pixelsmith.tools.fast_upscale, pixelsmith.engines.embedded.recipes.fast_upscale, "
    "pixelsmith.engines.embedded.realesrgan",
}

PYDANTIC_USED = (
    "import numpy, PIL.Image, ncnn\nfrom pydantic import BaseModel\n\n"
    "class Request(BaseModel):\n    scale: int = 4\n\nRequest.model_validate({'scale': 4})"
)


# Cumulative, what `pixelsmith tools` does: the interpreter, its CLI libraries, pydantic and PIL, every tool
# module (request models), every recipe module, then the command itself (availability checks, the table).
TOOLS_LADDER = {
    "python": "pass",
    "+typer+rich": "import typer, rich.console, rich.table",
    "+pydantic+PIL": "import typer, rich.console, rich.table, pydantic, PIL.Image",
    "+tool-modules": "import typer, rich.console, rich.table, pydantic, PIL.Image\n"
    "from pixelsmith.tools import all_tools; all_tools()",
    "+recipe-modules": "import typer, rich.console, rich.table, pydantic, PIL.Image\n"
    "from pixelsmith.tools import all_tools; all_tools()\n"
    "from pixelsmith.engines import ENGINES; [e.recipes() for e in ENGINES.values()]",
    "+cli-command": "import sys; sys.argv = ['pixelsmith', 'tools']\nfrom pixelsmith.cli.main import main; main()",
}


def summary(vs: list[Variant], raw_for: dict[str, str]) -> None:
    med = {v.name: (statistics.median(v.wall), statistics.median(v.cpu)) for v in vs}
    print(
        f"{'variant':22s} {'wall s min':>10s} {'median':>7s} {'CPU s min':>10s} {'median':>7s} "
        f"{'peak RSS MiB':>12s}  ratio of medians (wall, CPU)"
    )
    for v in vs:
        raw = raw_for.get(v.name)
        ratio = (
            f"{med[v.name][0] / med[raw][0]:5.2f}x, {med[v.name][1] / med[raw][1]:5.2f}x vs {raw}"
            if raw in med and raw != v.name
            else ""
        )
        print(
            f"{v.name:22s} {min(v.wall):10.3f} {med[v.name][0]:7.3f} {min(v.cpu):10.3f} {med[v.name][1]:7.3f} "
            f"{statistics.median(v.peak):12.1f}  {ratio}"
        )
    for v in vs:
        if v.after:
            when = "with the model loaded, before any run" if v.name.endswith("-loaded") else "after the run"
            heavy = ", ".join(v.report["heavy"]) or "none"  # type: ignore[arg-type]
            print(
                f"{v.name}: RSS {when} median {statistics.median(v.after):.1f} MiB; "
                f"model {v.report.get('model')}; heavy modules imported: {heavy}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tree", action="append", default=[], help="NAME=PATH of a pixelsmith source tree")
    ap.add_argument("--only", default="", help="regex: run only the variants it finds in their name")
    ap.add_argument("--image", default=os.path.join(ROOT, "samples", "upscale_input.jpg"))
    args = ap.parse_args()
    trees = dict(t.split("=", 1) for t in args.tree) or {"tree": ROOT}
    with tempfile.TemporaryDirectory() as work:
        from PIL import Image

        src = Image.open(args.image).convert("RGB")
        side = min(src.size) // 2  # the middle square, reduced to 64x64: a photo's texture, not a flat patch
        left, top = (src.width - side) // 2, (src.height - side) // 2
        crop = src.crop((left, top, left + side, top + side))
        image = os.path.join(work, "in.png")
        crop.resize((64, 64), Image.Resampling.LANCZOS).save(image)
        vs = [v for v in variants(trees, image, work) if re.search(args.only, v.name)]
        where = os.path.relpath(args.image, ROOT)
        print(f"64x64 input from {where}; {args.rounds} interleaved rounds; {load_average()}")
        for v in vs:  # warm-up: file cache, .pyc files
            run_child(v, work)
        for _ in range(args.rounds):
            for v in vs:
                wall, cpu, peak, text = run_child(v, work)
                v.wall.append(wall)
                v.cpu.append(cpu)
                v.peak.append(peak)
                if v.name.split(":")[-1].startswith("api-"):
                    v.report = json.loads(text.strip().splitlines()[-1])
                    v.after.append(float(v.report["rss"]) / 2**20)  # type: ignore[arg-type]
                elif v.name == "raw-anime-loaded":
                    v.report = {"model": ANIME, "heavy": []}
                    v.after.append(float(text.strip()) / 2**20)
        print(f"after: {load_average()}")
        raw_for = {
            v.name: "raw-anime" if "anime" in v.name else "raw-photo"
            for v in vs
            if v.name.split(":")[-1].startswith(("cli-", "api-", "raw-photo+", "floor-"))
        } | {v.name: "import:raw" for v in vs if v.name.startswith("import:")}
        raw_for |= {v.name: "tools:python" for v in vs if v.name.startswith("tools:")}
        summary(vs, raw_for)


if __name__ == "__main__":
    main()
