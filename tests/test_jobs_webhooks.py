"""The job service's webhook notifier on the real store: a finished job's webhook is called once, a
receiver that is down is logged, and an error in the loop is logged instead of hidden."""

from __future__ import annotations

import http.server
import json
import logging
import threading

import pytest

from pixelsmith.jobs.manifest import Step, WorkItem
from pixelsmith.jobs.service import JobService


@pytest.fixture
def receiver():
    got: list[dict] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server name
            got.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    server.shutdown()
    server.server_close()


def item(tmp_path, n: int = 0) -> WorkItem:
    out = str(tmp_path / f"o{n}.png")
    return WorkItem(out, str(tmp_path / f"i{n}.png"), [Step("fast-upscale")], out)


def test_a_finished_jobs_webhook_is_called_once(tmp_path, receiver):
    url, got = receiver
    svc = JobService(tmp_path / "jobs")  # not started: the test drives the notifier itself
    job, _ = svc.submit([item(tmp_path)], meta={"webhook": url})
    assert svc.notify_finished() == 0 and got == []  # still queued: not finished yet
    svc.store.cancel(job)
    assert svc.notify_finished() == 1
    assert [(g["event"], g["job"]["id"], g["job"]["state"]) for g in got] == [("job.finished", job, "cancelled")]
    assert "webhook_sent" in svc.store.job(job).meta and svc.store.pending_webhooks() == []
    assert svc.notify_finished() == 0 and len(got) == 1  # once


def test_a_receiver_that_is_down_is_logged_and_not_called_again(tmp_path, caplog):
    svc = JobService(tmp_path / "jobs")
    down, _ = svc.submit([item(tmp_path, 0)], meta={"webhook": "http://127.0.0.1:9/hook"})
    odd, _ = svc.submit([item(tmp_path, 1)], meta={"webhook": "file:///etc/passwd"})
    for job in (down, odd):
        svc.store.cancel(job)
    with caplog.at_level(logging.WARNING, logger="pixelsmith.jobs"):
        assert svc.notify_finished() == 2
    assert f"webhook for job {down}" in caplog.text and "not an http(s) URL" in caplog.text
    assert svc.store.pending_webhooks() == []


def test_the_notifier_loop_logs_a_failing_store_and_keeps_going(tmp_path, caplog, monkeypatch):
    svc = JobService(tmp_path / "jobs")
    calls = []

    def broken() -> list[str]:
        calls.append(1)
        if len(calls) >= 2:
            svc._stop.set()
        raise RuntimeError("database is locked")

    monkeypatch.setattr(svc.store, "pending_webhooks", broken)
    monkeypatch.setattr(svc._stop, "wait", lambda timeout: svc._stop.is_set())
    with caplog.at_level(logging.ERROR, logger="pixelsmith.jobs"):
        svc._notifier()
    assert len(calls) == 2  # the first error did not end the loop
    assert caplog.text.count("webhook notifier") == 2 and "database is locked" in caplog.text
