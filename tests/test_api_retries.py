"""Retried and abandoned calls (issue 17, hole 12): identical in-flight requests of one key join one
run, a finished run answers identical requests for a short window, and a run whose client
disconnected stops at its next progress report and frees its slot."""

from __future__ import annotations

import io
import socket
import threading
import time

import pytest
import requests
from PIL import Image

pytest.importorskip("pixelsmith.api.app")

from pixelsmith import core  # noqa: E402
from pixelsmith.api.app import Settings  # noqa: E402
from pixelsmith.api.service import REUSE_ENV, reuse_seconds, run_key  # noqa: E402
from pixelsmith.api.testing import LiveServer  # noqa: E402

FAST = "/v2beta/stable-image/upscale/fast"


class SlowTool:
    """Stands in for core.run: counts runs, reports progress ``steps`` times ``pause`` apart."""

    def __init__(self, steps: int = 10, pause: float = 0.1):
        self.steps, self.pause = steps, pause
        self.runs = 0
        self.reported: list[int] = []
        self.stopped: list[str] = []
        self.real = core.run

    def __call__(self, tool_name, request, *, engine=None, progress=None):
        self.runs += 1
        try:
            for n in range(self.steps):
                time.sleep(self.pause)
                self.reported.append(n)
                if progress is not None:
                    progress(n + 1, self.steps, "tile")
        except Exception as exc:
            self.stopped.append(type(exc).__name__)
            raise
        img = Image.new("RGB", (8, 8), (self.runs * 20 % 255, 0, 0))
        buf = io.BytesIO()
        img.save(buf, "PNG")
        return core.Output(tool_name, engine or "embedded", img, buf.getvalue(), "png", 0, "SUCCESS", 0.01)


def png(color=(10, 200, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def server(tmp_path, embedded_models, monkeypatch):
    tool = SlowTool()
    monkeypatch.setattr(core, "run", tool)
    monkeypatch.setattr(core, "load_model", lambda engine, model: None)
    with LiveServer(Settings(data_dir=str(tmp_path / "srv"), auth=False, access_log=False, concurrency=2)) as srv:
        srv.tool = tool
        yield srv


def upscale(server, image: bytes, timeout: float = 60) -> requests.Response:
    return requests.post(
        server.url + FAST,
        files={"image": ("a.png", image, "image/png")},
        data={"output_format": "png"},
        headers={"accept": "image/*"},
        timeout=timeout,
    )


def test_the_run_key_tells_requests_apart_by_key_route_engine_and_fields():
    base = run_key("k1", FAST, None, {"image": b"abc", "output_format": "png"})
    assert base == run_key("k1", FAST, None, {"output_format": "png", "image": b"abc"})
    assert base != run_key("k2", FAST, None, {"image": b"abc", "output_format": "png"})
    assert base != run_key("k1", "/other", None, {"image": b"abc", "output_format": "png"})
    assert base != run_key("k1", FAST, "onnx", {"image": b"abc", "output_format": "png"})
    assert base != run_key("k1", FAST, None, {"image": b"abd", "output_format": "png"})
    assert reuse_seconds({}) == 60.0 and reuse_seconds({REUSE_ENV: "0"}) == 0.0


def test_identical_concurrent_requests_cost_one_run_and_a_retry_reuses_it(server):
    image = png()
    answers: list[requests.Response] = []
    threads = [threading.Thread(target=lambda: answers.append(upscale(server, image))) for _ in range(3)]
    for t in threads:
        t.start()
        time.sleep(0.15)  # the later ones arrive while the first is running
    for t in threads:
        t.join()
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert len({r.content for r in answers}) == 1
    assert server.tool.runs == 1  # three requests, one run
    again = upscale(server, image)  # a retry after the answer: within the reuse window
    assert again.status_code == 200 and again.content == answers[0].content and server.tool.runs == 1
    other = upscale(server, png((1, 2, 3)))  # another body is another run
    assert other.status_code == 200 and server.tool.runs == 2


def test_a_disconnected_clients_run_stops_at_its_next_progress_report_and_frees_its_slot(server):
    server.tool.steps, server.tool.pause = 60, 0.1  # 6 s if it ran to the end
    gate = server.app.state.limits.gate
    with pytest.raises(requests.exceptions.ReadTimeout):
        upscale(server, png((9, 9, 9)), timeout=0.8)  # the client gives up and closes the connection
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (gate.running or not server.tool.stopped):
        time.sleep(0.05)
    assert server.tool.stopped == ["RunCancelled"]
    assert len(server.tool.reported) < 30  # stopped well before its 60 reports
    assert gate.running == 0  # its slot is free again
    time.sleep(0.5)
    assert len(server.tool.reported) < 30  # and nothing kept running
    ok = upscale(server, png((9, 9, 8)))
    assert ok.status_code == 200


def test_one_of_two_joined_clients_leaving_does_not_cancel_the_run(server):
    server.tool.steps, server.tool.pause = 15, 0.1
    image = png((7, 7, 7))
    kept: list[requests.Response] = []
    stay = threading.Thread(target=lambda: kept.append(upscale(server, image)))
    stay.start()
    time.sleep(0.2)
    with pytest.raises(requests.exceptions.ReadTimeout):
        upscale(server, image, timeout=0.5)
    stay.join()
    assert kept[0].status_code == 200 and server.tool.runs == 1 and server.tool.stopped == []
    with socket.create_connection(("127.0.0.1", server.settings.port)):
        pass  # the server still accepts connections


def test_bedrock_retries_of_a_running_invoke_join_it(server):
    import base64
    import json

    body = json.dumps({"image": base64.b64encode(png((5, 6, 7))).decode()})
    answers: list[requests.Response] = []

    def invoke() -> None:
        answers.append(
            requests.post(server.url + "/model/stability.stable-fast-upscale-v1:0/invoke", data=body, timeout=60)
        )

    threads = [threading.Thread(target=invoke) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.3)
    for t in threads:
        t.join()
    assert [r.status_code for r in answers] == [200, 200]
    assert answers[0].json()["images"] == answers[1].json()["images"] and server.tool.runs == 1
