"""onnxruntime threads on a shared machine: one session with 2 intra-op threads, or single-threaded runs side
by side, and whether the intra-op pool's spin-waiting costs CPU under load.

    PYTHONPATH=. .venv/bin/python bench/ort_threads.py [--rounds 5] [--models isnet,mobilesam,magenta]

The ONNX models the embedded engine runs on onnxruntime: ISNet (remove-background, 1024² forward),
MobileSAM's image encoder (1024² padded), Magenta's style transformer (the style-transfer recipe's default
network size for the notebook's 3:4 photo, 712x948). (SSD runs on cv2.dnn, not onnxruntime.)

Variants, each its own ``InferenceSession`` (the same file and options as the service but the threads):

* one item: ``intra 2, spin`` (what the sessions did until issue 13: onnxruntime's default lets idle pool
  threads spin-wait for work), ``intra 2, no spin`` (``session.intra_op.allow_spinning = 0``), ``intra 1``;
* two items (ISNet: two remove-background requests in one ``core.run_many``, which runs them in two threads
  on the one cached session): ``intra 2, in turn``, ``intra 2, both at once`` (run_many's case: 2 runs on a
  2-thread pool), ``intra 2 no spin, both at once``, and ``intra 1, both at once`` (two single-threaded runs
  side by side: the ncnn design of realesrgan.py; a session may run from several threads at once).

Every variant is timed on both clocks in the same call, interleaved (ABCD ABCD ..., once each before the
timed rounds): wall (``perf_counter``: what a caller waits) and CPU (``process_time``: this process's CPU
seconds, all threads; spin-waiting shows here). Min and median per variant, the ratio of medians to the
first variant, the load average before and after. Measurements: docs/performance.md.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.interleave import load_average  # noqa: E402


def session(source: str | bytes, intra: int, spin: bool):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_cpu_mem_arena = False
    opts.enable_mem_pattern = False
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])


def workloads() -> dict[str, tuple[str | bytes, dict[str, np.ndarray], list[str]]]:
    """model -> (onnx file or bytes, one item's feed, outputs to fetch)."""
    from pixelsmith.engines.embedded.isnet import IsnetSession
    from pixelsmith.engines.embedded.magenta import to_array, without_io_shapes
    from pixelsmith.engines.embedded.mobilesam import MobileSamSession
    from pixelsmith.engines.embedded.recipes.style_transfer import network_size
    from pixelsmith.models import model_path

    photo = Image.open(ROOT / "samples/remove_background_input.png").convert("RGB")
    content = Image.open(ROOT / "samples/style_transfer_input.jpg").convert("RGB")
    content = content.resize(network_size(*content.size, 0.9), Image.Resampling.LANCZOS)
    x = to_array(content)
    h, w = x.shape[1:3]
    x = np.pad(x, ((0, 0), (0, (-h) % 4), (0, (-w) % 4), (0, 0)), mode="reflect")
    transform = without_io_shapes(model_path("magenta-arbitrary-style", "transform.onnx").read_bytes())
    probe = session(transform, 1, False)
    names = [i.name for i in probe.get_inputs()]
    bottleneck = np.random.default_rng(0).normal(0, 0.3, (1, 1, 1, 100)).astype(np.float32)
    return {
        "isnet": (
            str(model_path("isnet-general", "isnet-general.onnx")),
            {"input": IsnetSession.preprocess(photo)},
            ["output"],
        ),
        "mobilesam": (
            str(model_path("mobilesam", "mobilesam_encoder.onnx")),
            {"image": MobileSamSession.preprocess(photo)[0]},
            ["image_embeddings"],
        ),
        "magenta": (
            transform,
            {names[0]: np.ascontiguousarray(x), names[1]: bottleneck},
            [probe.get_outputs()[0].name],
        ),
    }


def compare_both(variants: dict[str, Callable[[], object]], rounds: int, label: str) -> None:
    """bench.interleave.compare, timing each call on the wall and the CPU clock at once."""
    for fn in variants.values():
        fn()
    wall: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    before = load_average()
    for _ in range(rounds):
        for name, fn in variants.items():
            w, c = time.perf_counter(), time.process_time()
            fn()
            cpu[name].append(time.process_time() - c)
            wall[name].append(time.perf_counter() - w)
    base = next(iter(variants))
    print(f"{label} [{rounds} interleaved rounds; {before} before, {load_average()} after]")
    for clock, times in (("wall", wall), ("cpu", cpu)):
        med = {k: statistics.median(v) for k, v in times.items()}
        for name, v in times.items():
            print(
                f"  {clock:4s} {name:32s} min {min(v):7.3f}  median {med[name]:7.3f}  "
                f"ratio of medians {med[name] / med[base]:5.2f}x vs {base}"
            )
    sys.stdout.flush()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--models", default="isnet,mobilesam,magenta")
    ap.add_argument("--pairs", default="isnet", help="models also timed on two items at once")
    args = ap.parse_args()
    pool = ThreadPoolExecutor(2)
    for name, (source, feed, outputs) in workloads().items():
        if name not in args.models.split(","):
            continue
        s2, s2q, s1 = session(source, 2, True), session(source, 2, False), session(source, 1, False)

        def one(s=None) -> Callable[[], object]:
            return lambda: s.run(outputs, feed)

        def both(s) -> Callable[[], object]:
            return lambda: list(pool.map(lambda _: s.run(outputs, feed), range(2)))

        def turn(s) -> Callable[[], object]:
            return lambda: [s.run(outputs, feed) for _ in range(2)]

        compare_both(
            {"intra 2, spin": one(s2), "intra 2, no spin": one(s2q), "intra 1": one(s1)},
            args.rounds,
            f"{name}: one item",
        )
        if name in args.pairs.split(","):
            compare_both(
                {
                    "intra 2 spin, in turn": turn(s2),
                    "intra 2 spin, both at once": both(s2),
                    "intra 2 no spin, both at once": both(s2q),
                    "intra 1, both at once": both(s1),
                },
                args.rounds,
                f"{name}: two items",
            )
        del s2, s2q, s1


if __name__ == "__main__":
    main()
