"""The onnxruntime session options every embedded ONNX model uses (ISNet, MobileSAM, Magenta).

The threads rule is realesrgan.py's for ncnn: one thread per independent piece of work, and no thread
burning a core while it waits. Measured with bench/ort_threads.py on the 2-core machine (docs/performance.md):
onnxruntime's intra-op pool spin-waits by default, as OpenMP does for ncnn; with
``session.intra_op.allow_spinning`` off its idle threads sleep, which under load (7-14) cost 12-14 % less CPU
in every model (ISNet 1024²: 5.38 against 6.11 CPU-s) for no wall time (0.86-0.98x); lightly loaded ISNet is
unchanged (0.99x wall) and the small-op models lose a few hundredths of a second (MobileSAM 1.03x, Magenta
1.11x). A lone item keeps ``threads()`` intra-op threads: an ISNet forward, a MobileSAM encode or a Magenta
transform has no second piece to run beside it (they do not tile), and 1 thread took 1.6-1.8x the wall time
of 2 lightly loaded. Independent items go side by side at the process level (batch workers get
``cores / workers`` threads each).
"""

from __future__ import annotations

import onnxruntime as ort

from pixelsmith.config import threads


def session_options(intra_threads: int | None = None) -> ort.SessionOptions:
    """CPU session options: ``intra_threads`` (default ``threads()``) intra-op threads that sleep when idle,
    one inter-op thread (the graphs run sequentially), all graph optimisations."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_threads or threads()
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return opts
