"""The job store: leases, exactly-once completion, retries with backoff, poison items, cancel."""

from __future__ import annotations

import threading
import time

import pytest

from pixelsmith.jobs.manifest import Step, WorkItem
from pixelsmith.jobs.store import SQLiteJobStore


def items(n: int, tmp_path) -> list[WorkItem]:
    return [
        WorkItem(f"{tmp_path}/o{i}.png", f"{tmp_path}/i{i}.png", [Step("fast-upscale")], f"{tmp_path}/o{i}.png")
        for i in range(n)
    ]


@pytest.fixture()
def store(tmp_path) -> SQLiteJobStore:
    return SQLiteJobStore(tmp_path / "jobs.db", backoff_base_s=0.2)


def test_claim_complete_is_exactly_once(store, tmp_path):
    job, created = store.create_job(items(3, tmp_path))
    assert created
    a = store.claim("w1", job_id=job)
    b = store.claim("w2", job_id=job)
    assert a.item_id != b.item_id and a.attempt == 1
    assert store.complete(a.item_id, "w1", checksum="aa", size=1, seconds=0.1)
    assert not store.complete(a.item_id, "w1", checksum="bb", size=1, seconds=0.1)  # second completion: no-op
    assert not store.complete(b.item_id, "w1", checksum="cc", size=1, seconds=0.1)  # not the lease holder
    assert store.item(a.item_id).checksum == "aa" and store.item(b.item_id).state == "running"
    status = store.job(job)
    assert status.counts["done"] == 1 and status.counts["running"] == 1 and status.counts["queued"] == 1


def test_expired_lease_requeues_and_fences_the_lost_worker(store, tmp_path):
    job, _ = store.create_job(items(1, tmp_path))
    first = store.claim("slow", job_id=job, lease_s=0.3)
    assert store.claim("other", job_id=job) is None  # leased: nobody else gets it
    assert store.heartbeat("slow", [first.item_id], lease_s=0.3) == {first.item_id}
    time.sleep(0.45)  # no heartbeat: the worker is presumed dead
    second = store.claim("other", job_id=job, lease_s=10)
    assert second.item_id == first.item_id and second.attempt == 2
    assert store.heartbeat("slow", [first.item_id]) == set()  # the old worker learns it lost the item
    assert not store.complete(first.item_id, "slow", checksum="old", size=1, seconds=1)
    assert store.complete(second.item_id, "other", checksum="new", size=1, seconds=1)
    assert store.item(first.item_id).checksum == "new"


def test_heartbeats_keep_a_long_item_leased(store, tmp_path):
    job, _ = store.create_job(items(1, tmp_path))
    c = store.claim("w", job_id=job, lease_s=0.3)
    for _ in range(4):
        time.sleep(0.15)
        assert store.heartbeat("w", [c.item_id], lease_s=0.3) == {c.item_id}
    assert store.claim("thief", job_id=job) is None


def test_transient_failures_back_off_then_quarantine(store, tmp_path):
    job, _ = store.create_job(items(1, tmp_path), max_attempts=3)
    c = store.claim("w", job_id=job)
    assert store.fail(c.item_id, "w", "disk hiccup", transient=True) == "queued"
    assert store.claim("w", job_id=job) is None  # backing off (0.2 s)
    assert 0 < store.next_ready_in(job) <= 0.2
    time.sleep(0.25)
    c = store.claim("w", job_id=job)
    assert c.attempt == 2
    assert store.fail(c.item_id, "w", "disk hiccup", transient=True) == "queued"
    assert store.claim("w", job_id=job) is None
    time.sleep(0.45)  # second backoff doubles: 0.4 s
    c = store.claim("w", job_id=job)
    assert c.attempt == 3
    assert store.fail(c.item_id, "w", "disk hiccup", transient=True) == "failed"
    rec = store.item(c.item_id)
    assert rec.quarantined and rec.error == "quarantined after 3 attempts: disk hiccup"
    assert store.next_ready_in(job) is None and store.job(job).state == "finished"


def test_permanent_failure_fails_at_once(store, tmp_path):
    job, _ = store.create_job(items(2, tmp_path))
    c = store.claim("w", job_id=job)
    assert store.fail(c.item_id, "w", "image: could not be read", transient=False) == "failed"
    rec = store.item(c.item_id)
    assert rec.state == "failed" and not rec.quarantined and rec.attempts == 1
    assert store.claim("w", job_id=job).item_id != c.item_id  # the job goes on


def test_poison_item_that_kills_its_worker_is_quarantined(store, tmp_path):
    """An item whose worker dies on every attempt (crash, OOM kill) stops being handed out."""
    job, _ = store.create_job(items(2, tmp_path), max_attempts=2)
    poison = store.claim("w1", job_id=job, lease_s=0.2)  # w1 dies holding it
    good = store.claim("w2", job_id=job, lease_s=10)
    time.sleep(0.3)
    again = store.claim("w3", job_id=job, lease_s=0.2)  # w3 dies too
    assert again.item_id == poison.item_id and again.attempt == 2
    time.sleep(0.3)
    assert store.claim("w4", job_id=job) is None
    rec = store.item(poison.item_id)
    assert rec.state == "failed" and rec.quarantined and "worker was lost on each of 2 attempts" in rec.error
    assert store.complete(good.item_id, "w2", checksum="g", size=1, seconds=1)
    assert store.job(job).counts == {"queued": 0, "running": 0, "done": 1, "failed": 1, "cancelled": 0}


def test_cancel_stops_queued_items_and_lets_running_finish(store, tmp_path):
    job, _ = store.create_job(items(4, tmp_path))
    running = store.claim("w", job_id=job)
    assert store.cancel(job) == 3
    assert store.claim("w", job_id=job) is None
    assert store.heartbeat("w", [running.item_id]) == set()  # tells the worker to stop between steps
    assert store.job(job).state == "cancelled"
    assert store.complete(running.item_id, "w", checksum="x", size=1, seconds=1)  # its work was finished
    assert store.job(job).counts["cancelled"] == 3


def test_idempotency_key_is_per_owner(store, tmp_path):
    a, created_a = store.create_job(items(1, tmp_path), owner="k1", idempotency_key="abc")
    again, created_again = store.create_job(items(5, tmp_path), owner="k1", idempotency_key="abc")
    b, created_b = store.create_job(items(1, tmp_path), owner="k2", idempotency_key="abc")
    assert created_a and not created_again and again == a and created_b and b != a
    assert store.job(a).total == 1
    assert [j.id for j in store.jobs(owner="k2")] == [b]


def test_sync_keeps_done_and_requeues_changed_or_failed(store, tmp_path):
    work = items(3, tmp_path)
    job, _ = store.create_job(work)
    c0, c1 = store.claim("w", job_id=job), store.claim("w", job_id=job)
    store.complete(c0.item_id, "w", checksum="a", size=1, seconds=1)
    store.fail(c1.item_id, "w", "bad", transient=False)
    work[2].steps = [Step("fast-upscale", {"output_format": "webp"})]  # changed work
    counts = store.sync_items(job, work + items(4, tmp_path)[3:])
    assert counts == {"added": 1, "kept": 1, "requeued": 2, "removed": 0}
    states = {i.key: i.state for i in store.items(job)}
    assert states[work[0].key] == "done" and states[work[1].key] == "queued"


def test_concurrent_claims_never_hand_out_an_item_twice(tmp_path):
    store = SQLiteJobStore(tmp_path / "jobs.db")
    job, _ = store.create_job(items(60, tmp_path))
    got: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        s = SQLiteJobStore(tmp_path / "jobs.db")
        while (c := s.claim(name, job_id=job)) is not None:
            assert s.complete(c.item_id, name, checksum=str(c.item_id), size=1, seconds=0)
            with lock:
                got.append(c.item_id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(set(got)) and len(got) == 60
    assert store.job(job).counts["done"] == 60


def test_higher_priority_items_are_claimed_first_and_queue_positions_follow(store, tmp_path):
    batch, _ = store.create_job(items(4, tmp_path / "b"))
    run, _ = store.create_job(items(1, tmp_path / "r"), priority=10, title="run")
    assert store.job(run).priority == 10 and store.job(batch).priority == 0
    queued = store.items(batch) + store.items(run)
    ahead = store.queue_ahead(i.id for i in queued)
    run_item = store.items(run)[0]
    assert ahead[run_item.id] == 0
    assert [ahead[i.id] for i in store.items(batch)] == [1, 2, 3, 4]
    first = store.claim("w1")
    assert first.job_id == run  # submitted last, claimed first
    assert store.queue_ahead([first.item_id]) == {}  # running: no place in the queue
    assert [store.claim("w1").job_id for _ in range(4)] == [batch] * 4


def test_progress_is_recorded_for_the_lease_holder_and_refused_after_cancel(store, tmp_path):
    job, _ = store.create_job(items(2, tmp_path))
    c = store.claim("w1", job_id=job)
    assert store.progress(c.item_id, "w1", 3, 16, "tile")
    assert store.item(c.item_id).progress == {"done": 3, "total": 16, "unit": "tile"}
    assert not store.progress(c.item_id, "w2", 4, 16, "tile")  # not its lease
    store.cancel(job)
    assert not store.progress(c.item_id, "w1", 5, 16, "tile")  # cancelled: the worker is told to stop
    assert store.item(c.item_id).progress["done"] == 3
    assert store.release(c.item_id, "w1")  # handing it back in a cancelled job cancels it
    assert store.item(c.item_id).state == "cancelled"


def test_an_older_jobs_db_is_migrated_and_keeps_its_jobs(tmp_path):
    import json
    import sqlite3

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)  # the schema before priorities and progress (pixelsmith <= this change)
    conn.executescript("""
        CREATE TABLE jobs (id TEXT PRIMARY KEY, owner TEXT, idem_key TEXT, title TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL DEFAULT 'active', created REAL NOT NULL, max_attempts INTEGER NOT NULL DEFAULT 3,
            meta TEXT NOT NULL DEFAULT '{}');
        CREATE UNIQUE INDEX jobs_idem ON jobs(ifnull(owner, ''), idem_key) WHERE idem_key IS NOT NULL;
        CREATE TABLE items (id INTEGER PRIMARY KEY, job_id TEXT NOT NULL REFERENCES jobs(id), key TEXT NOT NULL,
            fingerprint TEXT NOT NULL, spec TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'queued',
            attempts INTEGER NOT NULL DEFAULT 0, error TEXT, quarantined INTEGER NOT NULL DEFAULT 0, lease_owner TEXT,
            lease_expires REAL, not_before REAL NOT NULL DEFAULT 0, started REAL, finished REAL, seconds REAL,
            checksum TEXT, size INTEGER, result TEXT, UNIQUE(job_id, key));
        CREATE INDEX items_claim ON items(state, not_before, id);
        CREATE INDEX items_job ON items(job_id, state);
    """)
    old = items(2, tmp_path)
    conn.execute("INSERT INTO jobs(id, owner, title, created) VALUES ('old', 'k1', 'before the upgrade', 1.0)")
    conn.executemany(
        "INSERT INTO items(job_id, key, fingerprint, spec) VALUES ('old', ?, ?, ?)",
        [(w.key, w.fingerprint, json.dumps(w.spec())) for w in old],
    )
    conn.commit()
    conn.close()

    store = SQLiteJobStore(path)
    assert store.job("old").title == "before the upgrade" and store.job("old").priority == 0
    assert [i.progress for i in store.items("old")] == [None, None]
    run, _ = store.create_job(items(1, tmp_path / "new"), priority=10)
    assert store.claim("w").job_id == run  # the new column orders claims on the migrated file
    c = store.claim("w")
    assert c.job_id == "old" and store.progress(c.item_id, "w", 1, 2, "level")
    store.close()
    again = SQLiteJobStore(path)  # opening a migrated file again changes nothing
    assert again.item(c.item_id).progress == {"done": 1, "total": 2, "unit": "level"}
    names = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "items_claim_priority" in names and "items_claim" not in names
