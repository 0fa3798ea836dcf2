"""Replay the AWS sample notebook (reference §5) through boto3 against ``pixelsmith serve``, full size.

Every cell's exact body with the notebook's own input images (samples/), sent
with ``invoke_model`` unchanged but for ``endpoint_url``. Prints, per cell,
whether it was served or refused (and why), the seconds it took and the output
format and size. The tests replay the same requests with small images; this is
the full-size run.

    .venv/bin/python bench/server_notebook.py [--port 8793] [--only "fast upscale,erase"]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import pathlib
import sys
import time

import boto3
from botocore.config import Config
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import test_api_bedrock  # noqa: E402
from server_overhead import start_server  # noqa: E402
from test_api_bedrock import notebook_requests, small_b64  # noqa: E402


def full_size(name: str, width: int, fmt: str | None = None) -> tuple[str, tuple[int, int]]:
    """The notebook sends the files as they are: no resizing, the file's own bytes."""
    data = (ROOT / "samples" / name).read_bytes()
    return base64.b64encode(data).decode(), Image.open(io.BytesIO(data)).size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8793)
    ap.add_argument("--only", default="", help="comma-separated cell names")
    args = ap.parse_args()
    test_api_bedrock.small_b64 = full_size  # the same bodies, with the original images
    cells = notebook_requests()
    test_api_bedrock.small_b64 = small_b64
    wanted = {c.strip() for c in args.only.split(",") if c.strip()}
    proc = start_server(args.port, "--lazy")
    bedrock = boto3.client(
        "bedrock-runtime",
        endpoint_url=f"http://127.0.0.1:{args.port}",
        region_name="us-west-2",
        aws_access_key_id="any",
        aws_secret_access_key="any",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=3600),
    )
    try:
        for cell, model_id, body, _ in cells:
            if wanted and cell not in wanted:
                continue
            t = time.perf_counter()
            try:
                response = bedrock.invoke_model(modelId=model_id, body=json.dumps(body))
                out = json.loads(response["body"].read())
                image = Image.open(io.BytesIO(base64.b64decode(out["images"][0])))
                result = f"served   {image.format.lower():5s} {image.size[0]}x{image.size[1]}"
            except bedrock.exceptions.ValidationException as exc:
                result = "refused  " + exc.response["Error"]["Message"][:110]
            print(f"{cell:22s} {time.perf_counter() - t:7.1f} s  {result}", flush=True)
    finally:
        proc.terminate()
        proc.wait(60)


if __name__ == "__main__":
    main()
