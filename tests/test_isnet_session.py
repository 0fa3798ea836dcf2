"""ISNet session: the graph pruned to its one used output gives the full graph's matte."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pixelsmith.engines.embedded.isnet import IsnetSession, build_session
from pixelsmith.models import model_path


@pytest.fixture(scope="module")
def onnx_path(embedded_models):
    pytest.importorskip("onnx")
    return model_path("isnet-general", "isnet-general.onnx")


def test_pruned_graph_keeps_only_the_used_output(onnx_path):
    import onnx

    from pixelsmith.engines.embedded.isnet import pruned_model

    full = onnx.load(str(onnx_path))
    data = pruned_model(onnx_path)
    assert data is not None
    pruned = onnx.load_from_string(data)
    assert [o.name for o in pruned.graph.output] == ["output"]
    assert len(full.graph.output) > 1
    assert len(pruned.graph.node) < len(full.graph.node)


def test_pruned_matte_equals_the_unpruned_graphs(onnx_path, samples):
    image = Image.open(samples / "remove_background_input.png")
    batch = IsnetSession.preprocess(image)
    full = build_session(onnx_path, prune=False, arena=True).run(["output"], {"input": batch})[0]
    pruned = build_session(onnx_path, prune=True, arena=False).run(["output"], {"input": batch})[0]
    assert full.shape == pruned.shape == (1, 1, 1024, 1024)
    assert float(np.abs(full.astype(np.float64) - pruned.astype(np.float64)).max()) <= 1e-6
