"""ISNet salient-object segmentation (ONNX, 1024x1024) -> a soft alpha matte.

The published graph has twelve outputs (the final matte and eleven deep-supervision side outputs); only
``output`` is fetched. onnxruntime's CPU memory arena and memory-pattern planning are off, so the buffers of a
1024² run are returned instead of kept for the life of the process; the matte is bit-identical to the one
with both on. :func:`pruned_model` cuts the graph to what ``output`` needs (with ``onnx``, at load; the
verified file is not changed); it is not the default because onnxruntime then fuses differently: the float
matte moves by up to 2e-4 (1 level in 8 bits on ~0.01 % of pixels), and the peak RSS is ~120 MB higher, not
lower (the onnx copy of the model at load; measured 1302 vs 1182 MB), for no measurable time.
bench/isnet_memory.py measures peak RSS and CPU time of each choice; tests/test_isnet_session.py checks both.

Every input runs at 1024², small ones too. The graph's Resize sizes are constants traced at 1024; rewritten
for 512², 640² or 768² (bench/isnet_size.py) a matte costs 0.23x, 0.41x or 0.57x the CPU time, but it is not
kept: on the notebook's Big Ben photo at 512 px the IoU against the reference falls from 0.994 to 0.19 at 512²,
the outpaint street loses 0.0065 at 640², and a portrait 0.008 at 768² (the bar was 0.005 on every case); see
docs/performance.md.
"""

from __future__ import annotations

import pathlib

import numpy as np
import onnxruntime as ort
from PIL import Image

from pixelsmith.engines.embedded import session_class
from pixelsmith.engines.embedded.onnx_options import session_options
from pixelsmith.models import model_path

SIZE = 1024
OUTPUT = "output"


def pruned_model(path: pathlib.Path, output: str = OUTPUT) -> bytes | None:
    """The ONNX model at ``path`` reduced to what ``output`` needs, serialized; None without ``onnx``."""
    try:
        import onnx
    except ImportError:
        return None
    model = onnx.load(str(path))
    graph = model.graph
    producer = {name: i for i, node in enumerate(graph.node) for name in node.output}
    needed, stack, used = {output}, [output], set()
    while stack:  # walk back from the output (this file's nodes are not in topological order)
        i = producer.get(stack.pop())
        if i is None or i in used:
            continue
        used.add(i)
        for name in graph.node[i].input:
            if name and name not in needed:
                needed.add(name)
                stack.append(name)
    keep = [node for i, node in enumerate(graph.node) if i in used]
    del graph.node[:]
    graph.node.extend(keep)
    initializers = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    outputs = [out for out in graph.output if out.name == output]
    del graph.output[:]
    graph.output.extend(outputs)
    values = [info for info in graph.value_info if info.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(values)
    data: bytes = model.SerializeToString()
    return data


def build_session(
    path: pathlib.Path, prune: bool = False, arena: bool = False, mem_pattern: bool = False
) -> ort.InferenceSession:
    opts = session_options()  # threads() intra-op threads that sleep when idle: onnx_options.py
    opts.enable_cpu_mem_arena = arena
    opts.enable_mem_pattern = mem_pattern  # pre-planned activation blocks: ~0.1 GB more peak at 1024²
    model = pruned_model(path) if prune else None
    source: str | bytes = model if model is not None else str(path)
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])


@session_class("isnet-general")
class IsnetSession:
    model = "isnet-general"

    def __init__(self) -> None:
        self.session = build_session(model_path(self.model, "isnet-general.onnx"))

    @staticmethod
    def preprocess(image: Image.Image) -> np.ndarray:
        small = image.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR)
        x = (np.asarray(small, dtype=np.float32) - 128.0) / 256.0
        return x.transpose(2, 0, 1)[None]

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """The raw model call: (1,3,1024,1024) -> (1024,1024) in 0..1."""
        result: np.ndarray = self.session.run([OUTPUT], {"input": batch})[0][0, 0]
        return result

    def matte(self, image: Image.Image) -> np.ndarray:
        """Soft foreground probability at the image's own resolution, float32 0..1."""
        pred = np.clip(self.infer(self.preprocess(image)), 0.0, 1.0)
        full = Image.fromarray((pred * 255.0 + 0.5).astype(np.uint8), "L").resize(image.size, Image.Resampling.BILINEAR)
        return np.asarray(full, dtype=np.float32) / 255.0
