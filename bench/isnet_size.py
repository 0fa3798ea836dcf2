"""ISNet (remove-background) at a smaller inference size for small inputs: matte quality and CPU time.

    PYTHONPATH=. .venv/bin/python bench/isnet_size.py [--sizes 512,640,768] [--rounds 5] [--no-time]

The published graph declares its input as 1x3x1024x1024, and it cannot simply be fed another size: its 39
``Resize`` nodes (``_upsample_like`` in ISNet's code) take their target size from constants the export
traced at 1024 (32, 64, ... 1024), so a 512² input fails at the first ``Concat`` (16 vs 32). Every such
constant is a 1024-px level ``1024 / 2**k``; the convolution ``conv_in`` (stride 2, pad 1) and the
``MaxPool``s (ceil mode) take a side ``n`` to ``ceil(n / 2)``, so at input size ``S`` that level is ``S``
halved (rounding up) ``k`` times. :func:`resized_model` rewrites those constants (with ``onnx``; bench only)
and drops the declared input/output shapes; the rewritten graph at 1024 gives the published one's matte.

Cases: the three photos with independent reference masks (tests/data/refs, GrabCut seeded by hand) and the
notebook photos without one (their reference: the published model's matte of the full-size photo,
thresholded), each box-downscaled to 128, 256 and 512 px on the long side. Per case and inference size:
IoU (alpha >= 0.5 against the reference >= 0.5) at the small size, the share of soft pixels in a band
around the reference edge, and the edge width (median 1 / |grad alpha| where 0.3 < alpha < 0.7 near the
reference edge, in the small image's pixels). CPU time: one 512-px input at each inference size,
interleaved (ABCD ...), ``bench.interleave.compare(clock="cpu")``.
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.interleave import compare  # noqa: E402

TRACED = 1024
REFS = ["remove_background_input.png", "inpainting_input_image.png", "search_and_recolor_input.png"]
NOTEBOOK = [
    "erase_input_desk.png",
    "search_and_replace_input.png",
    "style_transfer_input.jpg",
    "upscale_input.jpg",
    "outpaint_input.jpg",
    "style_guide_input.jpg",
]
SIDES = (128, 256, 512)


def level_size(size: int, traced: int, traced_level: int) -> int:
    """The side at input ``size`` of the feature map that is ``traced_level`` px at input ``traced``."""
    k = round(math.log2(traced / traced_level))
    if traced >> k != traced_level:
        raise ValueError(f"level {traced_level} is not {traced} / 2**k")
    n = size
    for _ in range(k):
        n = -(-n // 2)
    return n


def resized_model(path: pathlib.Path, size: int) -> bytes:
    """The ISNet graph with its traced Resize sizes rewritten for a ``size``² input (see the docstring)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    done = set()
    for node in graph.node:
        if node.op_type != "Resize":
            continue
        concat = producer[node.input[3]]  # sizes = Concat(Shape(x)[0:2], Constant([h, w]))
        const = producer[concat.input[1]]
        if const.name in done:
            continue
        done.add(const.name)
        old = numpy_helper.to_array(const.attribute[0].t)
        new = np.array([level_size(size, TRACED, int(v)) for v in old], dtype=old.dtype)
        const.attribute[0].t.CopyFrom(numpy_helper.from_array(new, const.attribute[0].t.name))
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        for i, dim in enumerate(dims):
            if i >= 2:
                dim.ClearField("dim_value")
                dim.dim_param = f"side{i}"
    del graph.value_info[:]
    data: bytes = model.SerializeToString()
    return data


class SizedIsnet:
    """:class:`pixelsmith.engines.embedded.isnet.IsnetSession`'s matte at a given inference size."""

    def __init__(self, size: int, rewrite: bool | None = None) -> None:
        import onnxruntime as ort

        from pixelsmith.config import threads
        from pixelsmith.engines.embedded.isnet import build_session
        from pixelsmith.models import model_path

        path = model_path("isnet-general", "isnet-general.onnx")
        self.size = size
        if not (size != TRACED if rewrite is None else rewrite):
            self.session = build_session(path)  # the published graph, as the service runs it
        else:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads()
            opts.inter_op_num_threads = 1
            opts.enable_cpu_mem_arena = False
            opts.enable_mem_pattern = False
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.session = ort.InferenceSession(resized_model(path, size), opts, providers=["CPUExecutionProvider"])

    def matte(self, image: Image.Image) -> np.ndarray:
        small = image.convert("RGB").resize((self.size, self.size), Image.Resampling.BILINEAR)
        x = ((np.asarray(small, dtype=np.float32) - 128.0) / 256.0).transpose(2, 0, 1)[None]
        pred = np.clip(self.session.run(["output"], {"input": x})[0][0, 0], 0.0, 1.0)
        full = Image.fromarray((pred * 255.0 + 0.5).astype(np.uint8), "L").resize(image.size, Image.Resampling.BILINEAR)
        return np.asarray(full, dtype=np.float32) / 255.0


def shrink(image: Image.Image, side: int) -> Image.Image:
    k = side / max(image.size)
    return image.resize((max(1, round(image.width * k)), max(1, round(image.height * k))), Image.Resampling.BOX)


def measures(alpha: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    import cv2

    fg, truth = alpha >= 0.5, ref >= 0.5
    union = (fg | truth).sum()
    iou = float((fg & truth).sum() / union) if union else 1.0  # both empty: they agree
    t8 = truth.astype(np.uint8)
    r = max(1, round(3 * max(alpha.shape) / 1024))  # the quality bench's 7-px band at 1024 px, scaled
    k = np.ones((2 * r + 1,) * 2, np.uint8)
    band = (cv2.dilate(t8, k) - cv2.erode(t8, k)).astype(bool)
    soft = float(((alpha > 0.02) & (alpha < 0.98))[band].mean())
    g = np.hypot(cv2.Sobel(alpha, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(alpha, cv2.CV_32F, 0, 1, ksize=1)) / 2
    on = band & (alpha > 0.3) & (alpha < 0.7) & (g > 1e-3)
    width = float(np.median(1 / g[on])) if on.any() else float("nan")
    return {"iou": iou, "soft": soft, "width": width}


def cases(full: SizedIsnet, photos: list[str]) -> list[tuple[str, Image.Image, np.ndarray]]:
    """(label, small photo, reference mask 0..1 at the small photo's size) for every photo and side."""
    out = []
    for name in photos:
        photo = Image.open(ROOT / "samples" / name).convert("RGB")
        if name in REFS:
            ref = Image.open(ROOT / "tests/data/refs" / name.replace(".png", ".mask.png")).convert("L")
        else:  # no independent mask: the published model's matte of the full-size photo
            ref = Image.fromarray((full.matte(photo) * 255.0 + 0.5).astype(np.uint8), "L")
        for side in SIDES:
            small = shrink(photo, side)
            r = np.asarray(ref.resize(small.size, Image.Resampling.BOX), dtype=np.float32) / 255.0
            tag = "ref" if name in REFS else "self"
            out.append((f"{name.split('.')[0][:22]} {side}px ({tag})", small, r))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="512,640,768")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-time", action="store_true")
    ap.add_argument("--photos", default="", help="comma-separated file names (default: all)")
    args = ap.parse_args()
    sizes = [TRACED] + [int(s) for s in args.sizes.split(",")]
    nets = {s: SizedIsnet(s) for s in sizes}
    probe = Image.open(ROOT / "samples" / REFS[0]).convert("RGB")
    same = np.abs(nets[TRACED].matte(probe) - SizedIsnet(TRACED, rewrite=True).matte(probe)).max()
    print(f"rewritten graph at 1024 vs published: max |matte difference| {same:.4f} (in 0..1)")
    head = " ".join(f"{f'IoU@{s}':>8s}" for s in sizes)
    print(f"{'case':40s} {head}   d(IoU) vs 1024 | soft band share | edge width px")
    worst = {s: 0.0 for s in sizes}
    for label, small, ref in cases(nets[TRACED], args.photos.split(",") if args.photos else REFS + NOTEBOOK):
        m = {s: measures(nets[s].matte(small), ref) for s in sizes}
        base = m[TRACED]["iou"]
        for s in sizes:
            worst[s] = min(worst[s], m[s]["iou"] - base)
        ious = " ".join(f"{m[s]['iou']:8.4f}" for s in sizes)
        diffs = " ".join(f"{m[s]['iou'] - base:+.4f}" for s in sizes[1:])
        soft = " ".join(f"{m[s]['soft']:.3f}" for s in sizes)
        width = " ".join(f"{m[s]['width']:.2f}" for s in sizes)
        print(f"{label:40s} {ious}   {diffs} | {soft} | {width}", flush=True)
    print("worst IoU change vs 1024: " + ", ".join(f"{s}: {worst[s]:+.4f}" for s in sizes[1:]))
    if not args.no_time:
        img = shrink(probe, 512)
        compare(
            {f"inference {s}²": (lambda s=s: nets[s].matte(img)) for s in sizes},
            rounds=args.rounds,
            clock="cpu",
            label="ISNet matte of a 512-px photo, per inference size",
        )


if __name__ == "__main__":
    main()
