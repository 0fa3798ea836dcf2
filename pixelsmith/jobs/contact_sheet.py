"""An HTML contact sheet for a batch: before/after thumbnails per item, tool chain, seconds.

The page is static (one HTML file plus small JPEG/PNG thumbnails in ``thumbs/``)
so it opens from disk with no server. Transparent outputs sit on a checkerboard.
"""

from __future__ import annotations

import hashlib
import html
import io
import os
import pathlib

from PIL import Image

from pixelsmith.fsutil import atomic_write
from pixelsmith.jobs.execute import read_bytes
from pixelsmith.jobs.manifest import Manifest
from pixelsmith.jobs.store import JobStore

THUMB = 320

STYLE = """
body{font:14px system-ui,sans-serif;margin:24px;background:#fafafa;color:#222}
h1{font-size:20px} .meta{color:#666}
table{border-collapse:collapse} td,th{padding:8px;border-bottom:1px solid #ddd;vertical-align:top;text-align:left}
img{max-width:320px;max-height:320px;display:block}
.after img{background:repeating-conic-gradient(#ccc 0 25%,#fff 0 50%) 0 0/16px 16px}
.failed{color:#b00} .note{color:#a60;font-size:12px}
"""


def _thumb(data: bytes, dest: pathlib.Path) -> str:
    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (THUMB * 2, THUMB * 2))  # JPEG: decode at reduced size
        im.thumbnail((THUMB, THUMB), Image.Resampling.LANCZOS)
        keep_alpha = im.mode in ("RGBA", "LA", "P") and "A" in im.convert("RGBA").getbands()
        buf = io.BytesIO()
        if keep_alpha:
            im.convert("RGBA").save(buf, "PNG", optimize=True)
            dest = dest.with_suffix(".png")
        else:
            im.convert("RGB").save(buf, "JPEG", quality=85)
            dest = dest.with_suffix(".jpg")
    atomic_write(dest, buf.getvalue())
    return dest.name


def write_contact_sheet(store: JobStore, job_id: str, manifest: Manifest) -> str:
    out_dir = pathlib.Path(manifest.output)
    thumbs = out_dir / "thumbs"
    rows = []
    for item in store.items(job_id):
        if item.state == "cancelled":
            continue
        tag = hashlib.sha256(item.key.encode()).hexdigest()[:10]
        try:
            before = "thumbs/" + _thumb(read_bytes(item.input), thumbs / f"{tag}-before")
            before_html = f'<img src="{html.escape(before)}" alt="input">'
        except Exception as exc:  # noqa: BLE001 - an unreadable input is shown as such
            before_html = f'<span class="failed">unreadable input: {html.escape(str(exc))}</span>'
        if item.state == "done" and os.path.exists(item.output):
            after = "thumbs/" + _thumb(read_bytes(item.output), thumbs / f"{tag}-after")
            rel = os.path.relpath(item.output, out_dir)
            size = item.result.get("size") or ["?", "?"]
            after_html = (
                f'<a href="{html.escape(rel)}"><img src="{html.escape(after)}" alt="output"></a>'
                f'<div class="meta">{html.escape(rel)} &middot; {size[0]}x{size[1]}</div>'
            )
        else:
            after_html = f'<span class="failed">{html.escape(item.state)}: {html.escape(item.error or "")}</span>'
        steps = item.result.get("steps") or [{"tool": s["tool"]} for s in item.steps]
        chain = " &rarr; ".join(
            html.escape(s["tool"]) + (f' <span class="meta">{s["seconds"]:.2f} s</span>' if "seconds" in s else "")
            for s in steps
        )
        notes = "".join(f'<div class="note">{html.escape(n)}</div>' for n in item.notes)
        seconds = f"{item.seconds:.2f} s" if item.seconds is not None else "-"
        rows.append(
            f"<tr><td>{html.escape(item.label or os.path.basename(item.input))}"
            f'<div class="meta">{html.escape(os.path.basename(item.input))}</div></td>'
            f'<td>{before_html}</td><td class="after">{after_html}</td><td>{chain}{notes}</td>'
            f"<td>{seconds}</td></tr>"
        )
    status = store.job(job_id)
    skipped = "".join(
        f'<li class="note">{html.escape(t)}: {html.escape(w)}</li>' for t, w in manifest.skipped_steps.items()
    )
    page = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>pixelsmith batch</title>'
        f"<style>{STYLE}</style></head><body><h1>pixelsmith batch: {html.escape(status.title)}</h1>"
        f'<p class="meta">{status.counts["done"]} done, {status.counts["failed"]} failed'
        + (f", {status.rate:.2f} items/s" if status.rate else "")
        + "</p>"
        + (f"<p>Steps skipped because this machine cannot serve them yet:</p><ul>{skipped}</ul>" if skipped else "")
        + "<table><tr><th>item</th><th>before</th><th>after</th><th>steps</th><th>seconds</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
    if not manifest.contact_sheet:
        raise ValueError("the manifest asks for no contact sheet")
    target = pathlib.Path(manifest.output) / manifest.contact_sheet
    atomic_write(target, page.encode())
    return str(target)
