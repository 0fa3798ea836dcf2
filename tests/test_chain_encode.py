"""A chain encodes only the image it writes: intermediate steps hand the next one a PIL image."""

from __future__ import annotations

from PIL import Image

from pixelsmith import core
from pixelsmith.jobs.execute import run_item
from pixelsmith.jobs.manifest import Step, WorkItem


def test_a_two_step_chain_encodes_once(embedded_models, tmp_path, monkeypatch):
    calls: list[tuple[tuple[int, int], str]] = []
    real = core.encode

    def counting(image: Image.Image, fmt: str, **kw) -> bytes:
        calls.append((image.size, fmt))
        return real(image, fmt, **kw)

    monkeypatch.setattr(core, "encode", counting)
    src = tmp_path / "in.png"
    Image.new("RGB", (40, 32), (120, 60, 30)).save(src)
    out = tmp_path / "out.png"
    steps = [Step("fast-upscale", {"output_format": "jpeg"}), Step("fast-upscale", {"output_format": "png"})]
    outcome = run_item(WorkItem(str(out), str(src), steps, str(out)))
    assert calls == [((640, 512), "png")]  # the last step only, in its own format
    assert Image.open(out).size == (640, 512)
    assert outcome.size == out.stat().st_size
    assert [s["size"] for s in outcome.result["steps"]] == [[160, 128], [640, 512]]
