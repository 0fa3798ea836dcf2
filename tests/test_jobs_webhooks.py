"""Job webhooks: one signed ``job.finished`` per job, retried with backoff until a 2xx and never after,
sent only to allowed or public destinations, no redirects followed; end to end through the server."""

from __future__ import annotations

import http.server
import io
import json
import logging
import threading
import time

import pytest
import requests
from PIL import Image

from pixelsmith.errors import Forbidden
from pixelsmith.jobs.manifest import Step, WorkItem
from pixelsmith.jobs.service import JobService
from pixelsmith.jobs.webhooks import ALLOW_ENV, check_destination, sign, verify, webhook_secret


class Receiver:
    """A loopback webhook receiver; ``fail_first`` attempts answer 500, ``redirect`` answers 302."""

    def __init__(self, fail_first: int = 0, redirect: str | None = None):
        self.attempts: list[tuple[dict, bytes]] = []  # (headers, body) of every POST
        self.accepted: list[dict] = []  # bodies answered 2xx
        receiver = self

        class Hook(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                raw = self.rfile.read(int(self.headers["content-length"]))
                receiver.attempts.append(({k.lower(): v for k, v in self.headers.items()}, raw))
                if redirect:
                    self.send_response(302)
                    self.send_header("location", redirect)
                elif len(receiver.attempts) <= fail_first:
                    self.send_response(500)
                else:
                    receiver.accepted.append(json.loads(raw))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.url = self.base + "hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(monkeypatch):
    made: list[Receiver] = []

    def make(**kw) -> Receiver:
        r = Receiver(**kw)
        made.append(r)
        monkeypatch.setenv(ALLOW_ENV, ",".join(m.base for m in made))
        return r

    yield make
    for r in made:
        r.close()


def item(tmp_path, n: int = 0) -> WorkItem:
    out = str(tmp_path / f"o{n}.png")
    return WorkItem(out, str(tmp_path / f"i{n}.png"), [Step("fast-upscale")], out)


def service(tmp_path) -> JobService:
    svc = JobService(tmp_path / "jobs")  # not started: the tests drive the notifier themselves
    svc.webhook_key = b"m" * 32
    return svc


# -- destinations -------------------------------------------------------------------------------------
def fake_dns(*addresses: str):
    return lambda host, port: list(addresses)


def test_without_an_allow_list_only_public_addresses_are_called():
    check_destination("https://hooks.example.com/x", {}, fake_dns("93.184.216.34"))
    for bad in (
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.9",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "100.64.0.1",
    ):
        with pytest.raises(Forbidden) as refused:
            check_destination("https://hooks.example.com/x", {}, fake_dns("93.184.216.34", bad))  # every address
        assert refused.value.message == (
            f"webhook 'https://hooks.example.com/x' resolves to a non-public address ({bad}); "
            f"only public addresses are called unless {ALLOW_ENV} allows it"
        )
    with pytest.raises(Forbidden, match="is not an http"):
        check_destination("file:///etc/passwd", {})


def test_an_allow_list_is_matched_after_normalising():
    env = {ALLOW_ENV: "http://127.0.0.1:8123/hooks/"}
    assert check_destination("HTTP://127.0.0.1:8123/hooks/a", env) == "http://127.0.0.1:8123/hooks/a"
    for bad in ("http://127.0.0.1:8123/other", "http://127.0.0.1:8124/hooks/a", "http://127.0.0.1:8123/hooksx"):
        with pytest.raises(Forbidden, match=f"not under an allowed prefix \\({ALLOW_ENV}\\)"):
            check_destination(bad, env)
    with pytest.raises(Forbidden, match="dot segment"):
        check_destination("http://127.0.0.1:8123/hooks/%2e%2e/admin", env)


def test_signatures_verify_and_stale_or_altered_ones_do_not():
    secret = webhook_secret(b"k" * 32, "key1")
    assert secret.startswith("whsec_") and secret != webhook_secret(b"k" * 32, "key2")
    header = sign(secret, 1_700_000_000, b'{"a":1}')
    assert header.startswith("t=1700000000,v1=")
    assert verify(secret, header, b'{"a":1}', now=1_700_000_010)
    assert not verify(secret, header, b'{"a":2}', now=1_700_000_010)
    assert not verify(secret, header, b'{"a":1}', now=1_700_001_000)
    assert not verify("whsec_other", header, b'{"a":1}', now=1_700_000_010)


# -- delivery -----------------------------------------------------------------------------------------
def test_one_signed_delivery_per_job_across_a_failed_attempt(tmp_path, receiver):
    hook = receiver(fail_first=1)
    svc = service(tmp_path)
    svc.webhook_backoff_s = 5.0
    job, _ = svc.submit([item(tmp_path)], meta={"webhook": hook.url}, owner="key1")
    assert svc.notify_finished() == 0 and hook.attempts == []  # still queued: not finished yet
    svc.store.cancel(job)
    t0 = time.time()
    assert svc.notify_finished(now=t0) == 0 and len(hook.attempts) == 1  # answered 500
    meta = svc.store.job(job).meta
    assert meta["webhook_attempts"] == 1 and meta["webhook_error"] == "HTTP 500" and "webhook_sent" not in meta
    assert svc.notify_finished(now=t0 + 1) == 0 and len(hook.attempts) == 1  # backing off (5 s)
    assert svc.notify_finished(now=t0 + 6) == 1 and len(hook.attempts) == 2
    for _ in range(3):
        assert svc.notify_finished(now=t0 + 1000) == 0
    assert len(hook.attempts) == 2 and len(hook.accepted) == 1  # exactly once
    (h1, raw1), (h2, raw2) = hook.attempts
    assert h1["pixelsmith-webhook-id"] == h2["pixelsmith-webhook-id"] == f"{job}:job.finished"
    assert verify(svc.webhook_secret("key1"), h2["pixelsmith-signature"], raw2)
    assert not verify(svc.webhook_secret("key2"), h2["pixelsmith-signature"], raw2)
    event = hook.accepted[0]
    assert (event["event"], event["job"]["id"], event["job"]["state"]) == ("job.finished", job, "cancelled")
    meta = svc.store.job(job).meta
    assert meta["webhook_delivered"] is True and meta["webhook_attempts"] == 2 and meta["webhook_error"] is None
    assert svc.store.pending_webhooks() == []


def test_a_receiver_that_keeps_failing_is_given_up_after_the_attempts(tmp_path, receiver, caplog):
    hook = receiver(fail_first=100)
    svc = service(tmp_path)
    svc.webhook_attempts, svc.webhook_backoff_s = 3, 0.0
    job, _ = svc.submit([item(tmp_path)], meta={"webhook": hook.url})
    svc.store.cancel(job)
    with caplog.at_level(logging.WARNING, logger="pixelsmith.jobs"):
        for _ in range(6):
            svc.notify_finished()
    assert len(hook.attempts) == 3 and "giving up: HTTP 500" in caplog.text
    meta = svc.store.job(job).meta
    assert meta["webhook_delivered"] is False and meta["webhook_attempts"] == 3
    assert svc.store.pending_webhooks() == []


def test_a_redirect_is_not_followed_and_a_refused_destination_is_not_called(tmp_path, receiver, monkeypatch):
    target = receiver()
    hook = receiver(redirect=target.url)
    svc = service(tmp_path)
    svc.webhook_attempts = 1
    job, _ = svc.submit([item(tmp_path)], meta={"webhook": hook.url})
    svc.store.cancel(job)
    svc.notify_finished()
    assert len(hook.attempts) == 1 and target.attempts == []
    assert svc.store.job(job).meta["webhook_error"] == (
        f"{hook.url} answered a redirect (302) to {target.url!r}; redirects are not followed"
    )
    monkeypatch.delenv(ALLOW_ENV)  # loopback, and nothing allows it
    job2, _ = svc.submit([item(tmp_path, 1)], meta={"webhook": target.url})
    svc.store.cancel(job2)
    svc.notify_finished()
    assert target.attempts == [] and svc.store.job(job2).meta["webhook_delivered"] is False


def test_the_notifier_loop_logs_a_failing_store_and_keeps_going(tmp_path, caplog, monkeypatch):
    svc = service(tmp_path)
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


# -- end to end through the server ---------------------------------------------------------------------
def tiny_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 40, 40)).save(buf, "PNG")
    return buf.getvalue()


def test_end_to_end_a_finished_job_calls_its_webhook_once_signed_with_the_keys_secret(
    tmp_path, receiver, embedded_models
):
    pytest.importorskip("pixelsmith.api.app")
    from pixelsmith.api.app import Settings
    from pixelsmith.api.testing import LiveServer

    hook = receiver(fail_first=1)
    with LiveServer(Settings(data_dir=str(tmp_path / "srv"), auth=True, access_log=False)) as srv:
        srv.app.state.jobs.webhook_backoff_s = 0.2
        new = srv.app.state.keys.create("hooks")
        auth = {"authorization": f"Bearer {new.bearer}"}
        secret = requests.get(srv.url + "/v1/webhook-secret", headers=auth, timeout=10).json()
        assert secret["header"] == "Pixelsmith-Signature" and secret["secret"].startswith("whsec_")
        assert requests.get(srv.url + "/v1/webhook-secret", timeout=10).status_code == 401
        r = requests.post(
            srv.url + "/v1/jobs",
            headers=auth,
            files=[("files", ("a.png", tiny_png(), "image/png"))],
            data={"steps": '[{"tool": "fast-upscale"}]', "webhook": hook.url},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        job = r.json()["id"]
        deadline = time.time() + 90
        while time.time() < deadline and not hook.accepted:
            time.sleep(0.2)
        time.sleep(2.5)  # two more notifier passes: nothing more is sent
        assert len(hook.attempts) == 2 and len(hook.accepted) == 1, hook.attempts
        headers, raw = hook.attempts[1]
        assert verify(secret["secret"], headers["pixelsmith-signature"], raw)
        event = hook.accepted[0]
        assert (event["event"], event["job"]["id"], event["job"]["state"]) == ("job.finished", job, "finished")
        meta = requests.get(f"{srv.url}/v1/jobs/{job}", headers=auth, timeout=10).json()["meta"]
        assert meta["webhook_delivered"] is True and meta["webhook_attempts"] == 2


def test_end_to_end_a_loopback_webhook_is_refused_when_nothing_allows_it(tmp_path, monkeypatch):
    pytest.importorskip("pixelsmith.api.app")
    from pixelsmith.api.app import Settings
    from pixelsmith.api.testing import LiveServer

    monkeypatch.delenv(ALLOW_ENV, raising=False)
    with LiveServer(Settings(data_dir=str(tmp_path / "srv"), auth=False, access_log=False)) as srv:
        url = "http://127.0.0.1:9/hook"
        r = requests.post(
            srv.url + "/v1/jobs",
            files=[("files", ("a.png", tiny_png(), "image/png"))],
            data={"steps": '[{"tool": "fast-upscale"}]', "webhook": url},
            timeout=30,
        )
        message = (
            f"webhook {url!r} resolves to a non-public address (127.0.0.1); "
            f"only public addresses are called unless {ALLOW_ENV} allows it"
        )
        assert r.status_code == 403 and r.json() == {"error": "forbidden", "message": message, "details": [message]}
        assert srv.app.state.jobs.store.jobs() == []  # no job was made
