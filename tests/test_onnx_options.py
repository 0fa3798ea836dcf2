"""Every embedded onnxruntime session follows the threads rule of onnx_options.py (measured in
docs/performance.md): threads() intra-op threads that sleep when idle instead of spin-waiting."""

from __future__ import annotations

import onnxruntime as ort
import pytest

from pixelsmith.engines.embedded import new_session
from pixelsmith.engines.embedded.onnx_options import session_options
from pixelsmith.models import is_installed

SPIN = "session.intra_op.allow_spinning"
ONNX_MODELS = ["isnet-general", "mobilesam", "magenta-arbitrary-style"]  # SSD runs on cv2.dnn


def test_options_take_the_configured_threads_and_do_not_spin(monkeypatch):
    monkeypatch.setenv("PIXELSMITH_THREADS", "3")
    opts = session_options()
    assert opts.intra_op_num_threads == 3 and opts.inter_op_num_threads == 1
    assert opts.get_session_config_entry(SPIN) == "0"
    assert session_options(1).intra_op_num_threads == 1


@pytest.mark.parametrize("model", ONNX_MODELS)
def test_each_onnx_model_session_uses_the_options(embedded_models, model):
    if not is_installed(model):
        pytest.skip(f"{model} not installed")
    sess = new_session(model)
    found = [v for v in vars(sess).values() if isinstance(v, ort.InferenceSession)]
    assert found, f"{model}: no onnxruntime session found"
    for inner in found:
        opts = inner.get_session_options()
        assert opts.get_session_config_entry(SPIN) == "0"
        assert opts.intra_op_num_threads >= 1 and opts.inter_op_num_threads == 1
