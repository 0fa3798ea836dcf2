"""``pixelsmith segment IMAGE --point x,y[,label] ... --box x0,y0,x1,y1 -o mask.png``: Segment Anything.

:func:`segment_command` is registered by ``cli/main.py`` as ``pixelsmith segment``.
"""

from __future__ import annotations

import json
import pathlib

import typer


def _numbers(text: str, count: tuple[int, ...], what: str) -> list[float]:
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        raise typer.BadParameter(f"{what} {text!r}: numbers separated by commas") from None
    if len(values) not in count:
        raise typer.BadParameter(f"{what} {text!r}: expected {' or '.join(map(str, count))} numbers")
    return values


def parse_point(text: str) -> list[float]:
    """``"x,y"`` or ``"x,y,label"`` (label 1 include, 0 exclude; default 1)."""
    values = _numbers(text, (2, 3), "point")
    return values if len(values) == 3 else [*values, 1.0]


def parse_box(text: str) -> list[float]:
    return _numbers(text, (4,), "box")


def segment_command(
    image: pathlib.Path = typer.Argument(..., exists=True, dir_okay=False, help="PNG, JPEG or WebP"),
    point: list[str] = typer.Option(
        None, "--point", "-p", help="x,y[,label] in image pixels; label 1 include (default), 0 exclude; repeatable"
    ),
    box: str | None = typer.Option(None, "--box", "-b", help="x0,y0,x1,y1 in image pixels"),
    output: pathlib.Path = typer.Option(pathlib.Path("mask.png"), "--output", "-o", help="Mask PNG (L, 0/255)"),
    multimask: bool | None = typer.Option(
        None, "--multimask/--single-mask", help="SAM's output choice (default: multimask for a lone point)"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print score, size, image_id and seconds as JSON"),
) -> None:
    """Select an object with Segment Anything (MobileSAM, CPU) and write its mask."""
    import pixelsmith
    from pixelsmith.errors import PixelsmithError

    points = [parse_point(p) for p in point or []]
    boxes = parse_box(box) if box else None
    if not points and boxes is None:
        raise typer.BadParameter("give at least one --point or a --box")
    try:
        seg = pixelsmith.segment(image, points=points, box=boxes, multimask=multimask)
    except PixelsmithError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2 if exc.status < 500 else 1) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    seg.mask.save(output)
    info = {
        "output": str(output),
        "score": round(seg.score, 4),
        "size": list(seg.size),
        "coverage": round(float(seg.array.mean()), 4),
        "image_id": seg.image_id,
        "seconds": round(seg.seconds, 3),
    }
    if as_json:
        typer.echo(json.dumps(info))
    else:
        typer.echo(f"{output}: score {info['score']}, {info['coverage']:.1%} of the image, {info['seconds']} s")
