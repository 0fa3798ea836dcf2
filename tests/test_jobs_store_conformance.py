"""The job-store contract, run against every store implementation (today: SQLite).

A new store (Postgres, Redis...) subclasses :class:`pixelsmith.jobs.store.JobStore`
and adds a factory to ``STORE_FACTORIES``; every test below must then pass for it
unchanged. Each test asserts what the interface's docstrings promise: leases and
exactly-once completion, retries and quarantine, cancel, priorities, idempotency
keys, owner isolation, meta and the webhook pending list.
"""

from __future__ import annotations

import ast
import pathlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from pixelsmith.errors import NotFound
from pixelsmith.jobs.manifest import Step, WorkItem
from pixelsmith.jobs.store import PRIORITY_BATCH, PRIORITY_INTERACTIVE, JobStore, SQLiteJobStore

BACKOFF_S = 0.2  # the first retry's delay; each later one doubles


def sqlite_store(tmp_path: pathlib.Path) -> JobStore:
    return SQLiteJobStore(tmp_path / "jobs.db", backoff_base_s=BACKOFF_S)


# name -> factory(tmp_path) -> a fresh, empty store whose first transient retry waits BACKOFF_S
STORE_FACTORIES: dict[str, Callable[[pathlib.Path], JobStore]] = {"sqlite": sqlite_store}


@pytest.fixture(params=sorted(STORE_FACTORIES))
def make_store(request, tmp_path) -> Callable[[], JobStore]:
    """A factory: each call opens the same store again (as another process or thread would)."""
    opened: list[JobStore] = []

    def make() -> JobStore:
        store = STORE_FACTORIES[request.param](tmp_path)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store) -> JobStore:
    return make_store()


def work(n: int, tag: str = "i") -> list[WorkItem]:
    return [
        WorkItem(f"/out/{tag}{i}.png", f"/in/{tag}{i}.png", [Step("fast-upscale")], f"/out/{tag}{i}.png")
        for i in range(n)
    ]


# -- the interface itself ----------------------------------------------------------------------------


def test_the_interface_is_abstract_and_the_store_implements_all_of_it(store):
    with pytest.raises(TypeError):
        JobStore()  # type: ignore[abstract]
    assert isinstance(store, JobStore)
    assert not getattr(type(store), "__abstractmethods__", frozenset())
    for name in JobStore.__abstractmethods__:  # implemented by the store, not inherited from the interface
        assert getattr(type(store), name) is not getattr(JobStore, name), name


CALLERS = ("service.py", "worker.py", "api.py", "paths.py", "ray_batch.py", "contact_sheet.py")


def test_every_store_method_the_service_workers_and_api_call_is_declared_on_the_interface():
    """``<anything>.store.<name>(...)`` and ``store.<name>(...)`` in the callers name interface methods."""
    root = pathlib.Path(__file__).resolve().parents[1] / "pixelsmith" / "jobs"
    called: set[str] = set()
    for name in CALLERS:
        path = root / name
        if not path.exists():
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                if (isinstance(owner, ast.Name) and owner.id == "store") or (
                    isinstance(owner, ast.Attribute) and owner.attr == "store"
                ):
                    called.add(node.func.attr)
    assert {"claim", "complete", "update_meta", "pending_webhooks", "job"} <= called
    assert called <= JobStore.__abstractmethods__, called - JobStore.__abstractmethods__


# -- jobs, claims and leases ----------------------------------------------------------------------


def test_create_claim_complete_is_exactly_once(store):
    job, created = store.create_job(work(3), title="three", meta={"kind": "api"})
    assert created
    status = store.job(job)
    assert (status.title, status.state, status.total, status.counts["queued"]) == ("three", "active", 3, 3)
    a, b = store.claim("w1", job_id=job), store.claim("w2", job_id=job)
    assert a is not None and b is not None and a.item_id != b.item_id
    assert a.job_id == job and a.attempt == 1 and a.work.output == a.key
    assert store.complete(a.item_id, "w1", checksum="aa", size=10, seconds=0.5, result={"format": "png"})
    assert not store.complete(a.item_id, "w1", checksum="bb", size=1, seconds=0.1)  # second completion: no-op
    assert not store.complete(b.item_id, "w1", checksum="cc", size=1, seconds=0.1)  # not the lease holder
    done = store.item(a.item_id)
    assert (done.state, done.checksum, done.size, done.result) == ("done", "aa", 10, {"format": "png"})
    assert store.item(b.item_id).state == "running" and store.running_count() == 1
    counts = store.job(job).counts
    assert (counts["done"], counts["running"], counts["queued"]) == (1, 1, 1)


def test_a_second_handle_on_the_store_sees_the_same_jobs(make_store):
    first, second = make_store(), make_store()
    job, _ = first.create_job(work(2))
    claim = second.claim("w", job_id=job)
    assert claim is not None and first.item(claim.item_id).state == "running"
    assert first.claim("w2", job_id=job).item_id != claim.item_id


def test_heartbeats_keep_a_lease_and_an_expired_one_goes_to_another_worker(store):
    job, _ = store.create_job(work(1))
    first = store.claim("slow", job_id=job, lease_s=0.4)
    assert store.claim("other", job_id=job) is None  # leased: nobody else gets it
    for _ in range(3):
        time.sleep(0.2)
        assert store.heartbeat("slow", [first.item_id], lease_s=0.4) == {first.item_id}
    assert store.claim("other", job_id=job) is None
    assert store.heartbeat("someone-else", [first.item_id]) == set()  # only the holder extends it
    assert 0 < store.next_ready_in(job) <= 0.4  # the lease's end is when the item may be claimed again
    time.sleep(0.55)  # no heartbeat: the worker is presumed dead
    second = store.claim("other", job_id=job, lease_s=10)
    assert second.item_id == first.item_id and second.attempt == 2
    assert store.heartbeat("slow", [first.item_id]) == set()  # the old worker learns it lost the item
    assert not store.complete(first.item_id, "slow", checksum="old", size=1, seconds=1)
    assert store.progress(first.item_id, "slow", 1, 2, "tile") is False
    assert store.complete(second.item_id, "other", checksum="new", size=1, seconds=1)
    assert store.item(first.item_id).checksum == "new"


def test_an_item_whose_worker_is_lost_on_every_attempt_is_quarantined(store):
    job, _ = store.create_job(work(1), max_attempts=2)
    for attempt in (1, 2):
        c = store.claim(f"w{attempt}", job_id=job, lease_s=0.1)
        assert c is not None and c.attempt == attempt
        time.sleep(0.15)
    assert store.claim("w3", job_id=job) is None
    rec = store.item(c.item_id)
    assert rec.state == "failed" and rec.quarantined and "worker was lost" in (rec.error or "")
    assert store.next_ready_in(job) is None and store.job(job).state == "finished"


def test_dead_local_workers_are_reclaimed_at_once(store):
    job, _ = store.create_job(work(1))
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # its pid now names no live process
    dead = f"{socket.gethostname()}:{child.pid}:abcd1234"
    held = store.claim(dead, job_id=job, lease_s=600)
    assert store.claim("w", job_id=job) is None
    assert store.reclaim_dead_workers() == 1
    again = store.claim("w", job_id=job)
    assert again is not None and again.item_id == held.item_id and again.attempt == 2
    assert store.reclaim_dead_workers() == 0  # a live worker (this one's name has no pid) is left alone


# -- failures, release, cancel --------------------------------------------------------------------


def test_a_permanent_failure_fails_now_and_a_transient_one_backs_off_then_quarantines(store):
    job, _ = store.create_job(work(2), max_attempts=2)
    c = store.claim("w", job_id=job)
    assert store.fail(c.item_id, "w", "bad image", transient=False) == "failed"
    rec = store.item(c.item_id)
    assert (rec.state, rec.error, rec.quarantined, rec.attempts) == ("failed", "bad image", False, 1)
    c = store.claim("w", job_id=job)
    assert store.fail(c.item_id, "stranger", "x", transient=True) == "lost"  # not the holder: nothing changes
    assert store.fail(c.item_id, "w", "disk hiccup", transient=True) == "queued"
    assert store.claim("w", job_id=job) is None  # backing off
    assert 0 < store.next_ready_in(job) <= BACKOFF_S
    time.sleep(BACKOFF_S + 0.05)
    c = store.claim("w", job_id=job)
    assert c.attempt == 2
    assert store.fail(c.item_id, "w", "disk hiccup", transient=True) == "failed"
    rec = store.item(c.item_id)
    assert rec.quarantined and rec.error == "quarantined after 2 attempts: disk hiccup"
    assert store.job(job).counts["failed"] == 2 and store.next_ready_in(job) is None


def test_release_hands_an_item_back_without_counting_the_attempt(store):
    job, _ = store.create_job(work(1))
    c = store.claim("w", job_id=job)
    assert not store.release(c.item_id, "stranger")
    assert store.release(c.item_id, "w")
    rec = store.item(c.item_id)
    assert rec.state == "queued" and rec.attempts == 0
    assert store.claim("w", job_id=job).attempt == 1


def test_cancel_stops_queued_items_and_fences_the_running_ones(store):
    job, _ = store.create_job(work(4))
    running = store.claim("w", job_id=job)
    assert store.cancel(job) == 3
    status = store.job(job)
    assert status.state == "cancelled" and status.counts["cancelled"] == 3 and status.counts["running"] == 1
    assert store.claim("w2", job_id=job) is None and store.claim("w2") is None
    assert store.heartbeat("w", [running.item_id]) == set()  # the worker learns to stop
    assert store.progress(running.item_id, "w", 1, 4, "tile") is False
    assert store.release(running.item_id, "w")  # handed back: cancelled, not queued again
    assert store.item(running.item_id).state == "cancelled"
    assert store.next_ready_in(job) is None
    with pytest.raises(NotFound):
        store.cancel("no-such-job")


# -- priorities and the queue ---------------------------------------------------------------------


def test_a_higher_priority_item_is_claimed_before_older_batch_items(store):
    batch, _ = store.create_job(work(3, "b"), priority=PRIORITY_BATCH)
    run, _ = store.create_job(work(1, "r"), priority=PRIORITY_INTERACTIVE)
    assert store.job(run).priority == PRIORITY_INTERACTIVE
    queued = store.items(batch, state="queued")
    [run_item] = store.items(run)
    assert run_item.priority == PRIORITY_INTERACTIVE
    ahead = store.queue_ahead([run_item.id, *(r.id for r in queued)])
    assert ahead[run_item.id] == 0 and [ahead[r.id] for r in queued] == [1, 2, 3]
    first = store.claim("w")
    assert first.job_id == run
    assert [store.claim("w").key for _ in range(3)] == [r.key for r in queued]  # then the batch, oldest first
    assert store.claim("w") is None and store.queue_ahead([run_item.id]) == {}  # no longer queued


# -- idempotency and owners -----------------------------------------------------------------------


def test_an_idempotency_key_finds_the_same_job_per_owner(store):
    job, created = store.create_job(work(2), owner="alice", idempotency_key="k1")
    again, created_again = store.create_job(work(5), owner="alice", idempotency_key="k1")
    assert created and not created_again and again == job and store.job(job).total == 2
    other, other_created = store.create_job(work(1), owner="bob", idempotency_key="k1")
    anonymous, _ = store.create_job(work(1), idempotency_key="k1")
    assert other_created and len({job, other, anonymous}) == 3
    assert store.find_job("k1", "alice") == job and store.find_job("k1", "bob") == other
    assert store.find_job("k1") == anonymous and store.find_job("k2", "alice") is None
    unkeyed = {store.create_job(work(1), owner="alice")[0] for _ in range(2)}
    assert len(unkeyed) == 2  # no key: always a new job


def test_owners_see_only_their_own_jobs(store):
    mine = [store.create_job(work(1), owner="alice", title=f"a{i}")[0] for i in range(3)]
    theirs, _ = store.create_job(work(1), owner="bob")
    assert [j.id for j in store.jobs(owner="alice")] == mine[::-1]  # newest first
    assert [j.id for j in store.jobs(owner="bob")] == [theirs]
    assert store.job(theirs).owner == "bob" and store.job(mine[0]).owner == "alice"
    assert {j.id for j in store.jobs()} == {*mine, theirs}
    assert len(store.jobs(owner="alice", limit=2)) == 2
    with pytest.raises(NotFound):
        store.job("no-such-job")
    with pytest.raises(NotFound):
        store.item(10**9)


def test_a_chosen_job_id_is_kept(store):
    job, _ = store.create_job(work(1), job_id="f" * 64)
    assert job == "f" * 64 and store.job(job).id == job


# -- meta and webhooks ------------------------------------------------------------------------------


def test_meta_is_stored_and_merged(store):
    job, _ = store.create_job(work(1), meta={"kind": "api", "spool": "abc"})
    store.update_meta(job, webhook_sent=12.5, kind="run")
    assert store.job(job).meta == {"kind": "run", "spool": "abc", "webhook_sent": 12.5}
    with pytest.raises(NotFound):
        store.update_meta("no-such-job", x=1)


def test_the_webhook_pending_list_holds_jobs_with_an_unsent_webhook(store):
    hooked, _ = store.create_job(work(1), meta={"webhook": "http://127.0.0.1:9/hook"})
    plain, _ = store.create_job(work(1), meta={"kind": "api"})
    later, _ = store.create_job(work(1), meta={"webhook": "http://127.0.0.1:9/other"})
    assert store.pending_webhooks() == [hooked, later]
    store.update_meta(hooked, webhook_sent=time.time())
    assert store.pending_webhooks() == [later]
    store.update_meta(plain, note="x")
    assert plain not in store.pending_webhooks()


# -- items: progress, listing, manifest sync ---------------------------------------------------------


def test_progress_is_recorded_for_the_holder_and_reset_on_a_new_claim(store):
    job, _ = store.create_job(work(1))
    c = store.claim("w", job_id=job)
    assert store.item(c.item_id).progress is None
    assert store.progress(c.item_id, "w", 2, 6, "tile")
    assert store.item(c.item_id).progress == {"done": 2, "total": 6, "unit": "tile"}
    assert not store.progress(c.item_id, "stranger", 3, 6, "tile")
    assert store.release(c.item_id, "w")
    store.claim("w2", job_id=job)
    assert store.item(c.item_id).progress is None


def test_items_list_in_order_by_state_and_page(store):
    job, _ = store.create_job(work(5))
    c = store.claim("w", job_id=job)
    store.complete(c.item_id, "w", checksum="x", size=1, seconds=1)
    all_items = store.items(job)
    assert [i.key for i in all_items] == [w.key for w in work(5)]
    assert [i.state for i in all_items] == ["done"] + ["queued"] * 4
    assert [i.key for i in store.items(job, offset=1, limit=2)] == [w.key for w in work(5)[1:3]]
    assert [i.id for i in store.items(job, state="done")] == [c.item_id]
    rec = store.item(c.item_id)
    assert (rec.input, rec.output, rec.steps) == (work(1)[0].input, work(1)[0].output, [{"tool": "fast-upscale"}])


def test_sync_items_keeps_done_work_and_follows_the_manifest(store):
    job, _ = store.create_job(work(3))
    for _ in range(2):
        c = store.claim("w", job_id=job)
        store.complete(c.item_id, "w", checksum="x", size=1, seconds=1)
    changed = work(3)[:1] + [WorkItem("/out/i1.png", "/in/i1.png", [Step("erase")], "/out/i1.png")] + work(4, "n")[:1]
    counts = store.sync_items(job, changed)
    assert counts == {"added": 1, "kept": 1, "requeued": 1, "removed": 1}
    states = {i.key: i.state for i in store.items(job)}
    assert states == {
        "/out/i0.png": "done",
        "/out/i1.png": "queued",
        "/out/i2.png": "cancelled",
        "/out/n0.png": "queued",
    }
    assert store.sync_items(job, changed, fresh=True)["requeued"] == 3


def test_done_items_whose_output_vanished_are_queued_again(store):
    job, _ = store.create_job(work(2))
    for _ in range(2):
        c = store.claim("w", job_id=job)
        store.complete(c.item_id, "w", checksum="x", size=1, seconds=1)
    assert store.requeue_missing_outputs(job, lambda path: path.endswith("0.png")) == 1
    assert [i.state for i in store.items(job)] == ["done", "queued"]
    assert store.job(job).state == "active"
