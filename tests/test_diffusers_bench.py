"""bench/diffusion_gpu.py --smoke: the GPU benchmark's CPU mode (tiny SD3 pipeline, 64 px, 2 steps) runs end
to end and writes its table and JSON; and its full-size configs are the real ones from tests/data/configs."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_bench_configs_are_the_real_ones():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import diffusion_gpu as bench
    finally:
        sys.path.pop(0)
    assert bench.TRANSFORMERS["large"]["num_layers"] == 38 and bench.TRANSFORMERS["large"]["num_attention_heads"] == 38
    assert bench.TRANSFORMERS["medium"]["dual_attention_layers"] == list(range(13))
    assert bench.T5_XXL["d_model"] == 4096 and bench.CLIP_G["hidden_size"] == 1280
    assert bench.XL_UNET["transformer_layers_per_block"] == [1, 2, 10] and bench.XL_UNET["cross_attention_dim"] == 2048
    assert bench.XL_CLIP_G["projection_dim"] == 1280 and bench.XL_SCHEDULER["prediction_type"] == "epsilon"


def test_smoke_mode(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "diffusion_gpu.py"),
            "--smoke",
            "--json",
            str(tmp_path / "r.json"),
            "--table",
            str(tmp_path / "t.md"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert rows and all(r["plain"]["finite"] and r["pixelsmith"]["finite"] for r in rows)
    assert "| model | steps | batch |" in (tmp_path / "t.md").read_text()
