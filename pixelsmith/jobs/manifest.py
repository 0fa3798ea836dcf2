"""Batch manifests: items (an input file, glob or folder) and a chain of tool steps.

A manifest is YAML (one document) or JSONL (one item per line; a line without
``input`` sets defaults for the lines after it)::

    output: demo-output                 # folder for results (relative to the manifest)
    name: "{stem}-{tool}.{ext}"         # output naming template
    skip_unavailable: true              # skip steps no installed engine can serve, with a note
    steps:                              # the default chain
      - tool: remove-background
      - {tool: fast-upscale, output_format: webp}
    items:
      - input: photos/*.jpg
      - input: desk.png
        steps: [{tool: erase, mask: desk_mask.png}]

Each step's primary image (``Tool.request.primary_image()``) is the previous
step's output (the item's input for the first step); other image fields are
paths relative to the manifest. Only the jobs API's runs (``kind=run``) may have
an item without ``input``: its first tool makes the image (text-to-image), so
that tool's primary image must be optional. Every step's fields are validated against the
tool's request model before anything runs, so a typo fails the whole batch
up front instead of item by item.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import posixpath
from dataclasses import dataclass, field
from typing import Any

from pixelsmith.errors import InvalidRequest, PixelsmithError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
DEFAULT_NAME = "{stem}-{tool}.{ext}"
EXT_FOR_FORMAT = {"png": "png", "jpeg": "jpg", "webp": "webp"}


class ManifestError(PixelsmithError):
    code = "bad_manifest"
    status = 400


@dataclass
class Step:
    tool: str
    fields: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, **self.fields}


@dataclass
class WorkItem:
    """One concrete unit of work: one input file through one chain to one output path."""

    key: str  # unique within a job: the output path
    input: str | None  # None: the first step makes the image (a text-to-image run)
    steps: list[Step]
    output: str
    label: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        """Changes when the work changes: a done item with a new fingerprint runs again."""
        blob = json.dumps({"input": self.input, "steps": [s.as_dict() for s in self.steps]}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def spec(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "steps": [s.as_dict() for s in self.steps],
            "output": self.output,
            "label": self.label,
            "notes": self.notes,
        }

    @classmethod
    def from_spec(cls, key: str, spec: dict[str, Any]) -> WorkItem:
        steps = [Step(s["tool"], {k: v for k, v in s.items() if k != "tool"}) for s in spec["steps"]]
        return cls(key, spec["input"], steps, spec["output"], spec.get("label", ""), spec.get("notes", []))


@dataclass
class Manifest:
    base: str  # folder the manifest's relative paths start from
    output: str
    items: list[WorkItem]
    name: str = DEFAULT_NAME
    contact_sheet: str | None = None
    title: str = ""
    skipped_steps: dict[str, str] = field(default_factory=dict)  # tool -> why it was skipped
    source: str = ""


def load(path: str | pathlib.Path, *, output: str | None = None, check_tools: bool = True) -> Manifest:
    path = pathlib.Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc.strerror}") from None
    base = str(path.resolve().parent)
    doc = parse_text(text, jsonl=path.suffix.lower() in (".jsonl", ".ndjson"))
    return expand(doc, base, output=output, check_tools=check_tools, source=str(path.resolve()))


def parse_text(text: str, *, jsonl: bool = False) -> dict[str, Any]:
    """YAML document or JSONL lines -> one dict with ``items`` and the defaults."""
    if jsonl:
        doc: dict[str, Any] = {"items": []}
        defaults: dict[str, Any] = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ManifestError(f"line {number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ManifestError(f"line {number}: each line must be a JSON object")
            if "input" in row:
                doc["items"].append({**{k: v for k, v in defaults.items() if k in ("steps", "name")}, **row})
            else:
                defaults.update(row)
                doc.update({k: v for k, v in row.items() if k != "steps"})
        return doc
    import yaml  # here, not at the top: a batch worker imports this module (WorkItem) but never parses YAML

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestError(f"manifest is not valid YAML: {exc}") from None
    if isinstance(doc, list):
        doc = {"items": doc}
    if not isinstance(doc, dict):
        raise ManifestError("a manifest is a mapping with 'items' (or a list of items)")
    return doc


def _is_url(path: str) -> bool:
    return "://" in path


def resolve(base: str, path: str) -> str:
    """A manifest-relative path or URL -> absolute path or URL."""
    path = str(path)
    if _is_url(path):
        return path
    p = pathlib.Path(path).expanduser()
    return (
        str(p if p.is_absolute() else (pathlib.Path(base) / p).resolve())
        if not _is_url(base)
        else posixpath.join(base, path)
    )


def expand_inputs(spec: str) -> list[str]:
    """A file, a glob or a folder -> the image files it names (sorted)."""
    if not _is_url(spec):
        return _expand_local(spec)
    import fsspec

    fs, _, paths = fsspec.get_fs_token_paths(spec)
    protocol = spec.split("://", 1)[0] + "://" if _is_url(spec) else ""
    root = paths[0] if paths else spec
    if any(ch in spec for ch in "*?["):
        found = paths
    elif fs.isdir(root):
        found = [p for p in fs.find(root) if p.lower().endswith(IMAGE_EXTENSIONS)]
    else:
        return [spec]  # a single file; a missing one fails that item with its reason
    found = sorted(
        p for p in found if p.lower().endswith(IMAGE_EXTENSIONS) and not posixpath.basename(p).startswith(".")
    )
    return [p if p.startswith(protocol) else protocol + p for p in found]


def _expand_local(spec: str) -> list[str]:
    """:func:`expand_inputs` for a local path without importing fsspec (86 CPU-ms of every batch's start).
    Same results as fsspec's local filesystem: ``**`` spans folders, a folder is searched to any depth."""
    import glob
    import os

    if any(ch in spec for ch in "*?["):
        found = glob.glob(spec, recursive=True)
    elif os.path.isdir(spec):
        found = [os.path.join(d, f) for d, _, files in os.walk(spec) for f in files]
    else:
        return [spec]  # a single file; a missing one fails that item with its reason
    return sorted(p for p in found if p.lower().endswith(IMAGE_EXTENSIONS) and not os.path.basename(p).startswith("."))


def _steps(raw: Any, where: str) -> list[Step]:
    if not isinstance(raw, list) or not raw:
        raise ManifestError(f"{where}: 'steps' must be a non-empty list of {{tool: NAME, field: value, ...}}")
    steps = []
    for i, entry in enumerate(raw, 1):
        if isinstance(entry, str):
            entry = {"tool": entry}
        if not isinstance(entry, dict) or "tool" not in entry:
            raise ManifestError(f"{where}, step {i}: each step needs 'tool'")
        steps.append(Step(str(entry["tool"]), {k: v for k, v in entry.items() if k != "tool"}))
    return steps


def check_step(step: Step, base: str, where: str, *, has_input: bool = True) -> Step:
    """Validate a step's fields against its tool's request model (image paths made absolute).
    ``has_input=False``: the step gets no primary image (the first step of an item without input)."""
    from pixelsmith.tools import get_tool

    try:
        tool = get_tool(step.tool)
    except PixelsmithError as exc:
        raise ManifestError(f"{where}: {exc.message}") from None
    model = tool.request
    primary = model.primary_image()
    fields = dict(step.fields)
    if primary in fields:
        raise ManifestError(f"{where}: '{primary}' comes from the previous step (or the item's input); remove it")
    if not has_input and primary and model.model_fields[primary].is_required():
        raise ManifestError(
            f"{where}: {tool.name} needs an input image ('{primary}'): upload it as 'files' or give the item an 'input'"
        )
    images = set(model.image_fields())
    for name in list(fields):
        if name in images and fields[name] is not None:
            fields[name] = resolve(base, fields[name])
    unknown = [k for k in fields if k not in model.model_fields]
    if unknown:
        raise ManifestError(
            f"{where}: {tool.name} has no field {', '.join(unknown)}; it accepts "
            + ", ".join(k for k in model.model_fields if k != primary)
        )
    # Validate everything except images (those are read when the item runs): a 64x64 stand-in
    # fills the primary field, image paths are checked for existence only.
    from PIL import Image

    probe = {k: v for k, v in fields.items() if k not in images}
    if primary and has_input:  # without input the request is validated as it will run (e.g. text-to-image)
        probe[primary] = Image.new("RGB", (512, 512))
    try:
        model.model_validate(probe)
    except Exception as exc:  # pydantic.ValidationError
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            errs = [
                e
                for e in exc.errors(include_url=False)
                if not (e["loc"] and e["loc"][0] in images and e["type"] == "missing")
            ]
            if errs:
                text = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errs)
                raise ManifestError(f"{where}: {tool.name}: {text}") from None
        else:
            raise
    return Step(tool.name, fields)


def render_name(template: str, *, input_path: str | None, steps: list[Step], index: int, label: str) -> str:
    input_path = input_path or ""  # no input (a text-to-image run): the label stands for the stem
    stem = posixpath.splitext(posixpath.basename(input_path))[0] or label or "untitled"
    fmt = steps[-1].fields.get("output_format", "png") if steps else "png"
    values = {
        "stem": stem,
        "name": posixpath.basename(input_path),
        "ext": EXT_FOR_FORMAT.get(fmt, fmt),
        "tool": steps[-1].tool if steps else "copy",
        "tools": "+".join(s.tool for s in steps),
        "index": index,
        "item": label or stem,
        "parent": posixpath.basename(posixpath.dirname(input_path)),
    }
    from pixelsmith.jobs.names import TemplateError, render

    try:  # the documented placeholders only: never str.format on user input
        return render(template, values)
    except TemplateError as exc:
        raise ManifestError(exc.message) from None


def expand(
    doc: dict[str, Any],
    base: str,
    *,
    output: str | None = None,
    check_tools: bool = True,
    source: str = "",
    inputless: bool = False,
) -> Manifest:
    """Resolve globs and folders, validate steps, and name every output.
    ``inputless``: an item may omit ``input`` (the jobs API's runs), if its first tool needs no image."""
    from pixelsmith import core
    from pixelsmith.tools import get_tool

    known = {"items", "steps", "output", "name", "skip_unavailable", "contact_sheet", "title"}
    unknown = set(doc) - known
    if unknown:
        raise ManifestError(f"unknown manifest key(s) {', '.join(sorted(unknown))}; keys: {', '.join(sorted(known))}")
    raw_items = doc.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise ManifestError("the manifest has no items")
    if output is not None:  # from the command line: relative to the current folder
        out_dir = output if _is_url(output) else str(pathlib.Path(output).expanduser().resolve())
    else:
        out_dir = resolve(base, doc.get("output") or "batch-output")
    template = str(doc.get("name") or DEFAULT_NAME)
    skip = bool(doc.get("skip_unavailable", False))
    skipped: dict[str, str] = {}
    items: list[WorkItem] = []
    by_output: dict[str, str] = {}
    for n, raw in enumerate(raw_items, 1):
        if isinstance(raw, str):
            raw = {"input": raw}
        has_input = isinstance(raw, dict) and raw.get("input") is not None
        if not isinstance(raw, dict) or not (has_input or inputless):
            raise ManifestError(f"item {n}: needs 'input' (a file, glob or folder)")
        extra = set(raw) - {"input", "steps", "name", "label"}
        if extra:
            raise ManifestError(f"item {n}: unknown key(s) {', '.join(sorted(extra))}")
        where = f"item {n} ({raw['input']})" if has_input else f"item {n}"
        chain = [
            check_step(s, base, f"{where}, step {i}", has_input=has_input or i > 1)
            for i, s in enumerate(_steps(raw.get("steps", doc.get("steps")), where), 1)
        ]
        notes = []
        if check_tools and skip:
            kept = []
            for s in chain:
                recipe, missing = core.availability(get_tool(s.tool))
                if recipe is None:
                    why = "; ".join(m.line() for m in missing) or "no engine serves it"
                    skipped[s.tool] = why
                    notes.append(f"skipped {s.tool}: not servable here ({why})")
                else:
                    kept.append(s)
            chain = kept
            if not has_input and chain:  # the step that now comes first gets no image either
                chain[0] = check_step(chain[0], base, f"{where}, first step kept", has_input=False)
        inputs: list[str | None] = [*expand_inputs(resolve(base, raw["input"]))] if has_input else [None]
        if not inputs:
            raise ManifestError(f"{where}: matches no image files")
        if not chain:
            continue  # every step skipped: nothing to do for this item (the note says why)
        for path in inputs:
            label = str(raw.get("label", "")) if len(inputs) == 1 else ""
            stem = posixpath.splitext(posixpath.basename(path))[0] if path else ""
            name = render_name(
                str(raw.get("name") or template), input_path=path, steps=chain, index=len(items) + 1, label=label
            )
            out = posixpath.join(out_dir, name) if _is_url(out_dir) else str(pathlib.Path(out_dir) / name)
            if out in by_output:
                raise ManifestError(
                    f"two items would write {out}: {by_output[out]} and {path or where}; "
                    "use {parent} or {index} in the name template"
                )
            by_output[out] = path or where
            items.append(WorkItem(out, path, chain, out, label or stem, list(notes)))
    sheet = doc.get("contact_sheet")
    if sheet is True:
        sheet = "index.html"
    return Manifest(base, out_dir, items, template, sheet or None, str(doc.get("title") or ""), skipped, source)


def validate_chain(steps: list[dict[str, Any]], base: str = ".") -> list[Step]:
    """For the jobs API: the same checks on a chain given as a list of dicts."""
    try:
        return [check_step(s, base, f"step {i}") for i, s in enumerate(_steps(steps, "job"), 1)]
    except InvalidRequest as exc:
        raise ManifestError(exc.message) from None
