"""The decay job on the in-memory store: bounded writes in flight, a deadline that bounds the
run however large the backlog, nothing written twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from leadscore.domain.ledgers import ContactState, RuleLedger
from leadscore.domain.records import Contact
from leadscore.engine.contacts import contact_scores
from leadscore.rulesfiles.loading import Config, load_config
from leadscore.services.decay import WORKERS, run_decay

from tests.support.fakes import MemoryStore

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config()


def _opened(config: Config, key: str, days_ago: float) -> Contact:
    """A contact whose email open went stale: valued as it was when last written."""
    at = NOW - timedelta(days=days_ago)
    state = ContactState(rules={"email_opened": RuleLedger(touches=[[at.timestamp(), 5.0]], count=1)})
    written = NOW - timedelta(days=days_ago - 31)  # last valued a day after it went stale
    return Contact(key=key, version=1, state=state, scores=contact_scores(config.scoring, state, written))


def _store(config: Config, due: int, **options: Any) -> MemoryStore:
    store = MemoryStore(**options)
    for i in range(due):
        contact = _opened(config, f"u:c{i}", 60)
        store.contacts[contact.key] = contact
    return store


def test_all_due_contacts_are_revalued_once(config: Config) -> None:
    # Given 30 contacts whose email touches are due
    store = _store(config, 30)
    assert all(c.scores.due_at and c.scores.due_at <= NOW.isoformat() for c in store.contacts.values())
    # When the job runs twice for the same moment
    first = run_decay(store, config, NOW)
    second = run_decay(store, config, NOW)
    # Then each is written once, with its due time moved past now
    assert (first.due, first.written, first.stopped_early) == (30, 30, False)
    assert second.due == second.written == 0
    assert all(c.version == 2 and (c.scores.due_at is None or c.scores.due_at > NOW.isoformat())
               for c in store.contacts.values())


def test_slow_writes_never_exceed_the_bound_and_the_deadline_stops_the_run(config: Config) -> None:
    # Given a backlog of 400 due contacts and writes that take 20 ms each
    store = _store(config, 400, write_delay=0.02)
    # When the deadline comes once 10 writes have started (a clock of writes, not of this
    # machine's load: speed is make bench's)
    deadline_after = 10
    result = run_decay(store, config, NOW, out_of_time=lambda: store.calls.get("save_scores", 0) >= deadline_after)
    # Then it stops early, having kept at most WORKERS writes in flight...
    assert result.stopped_early
    assert store.max_in_flight <= WORKERS
    # ...started none after the deadline (at most one round of writes in flight at the deadline)...
    assert deadline_after <= store.calls["save_scores"] <= deadline_after + WORKERS
    # ...and the contacts it did not reach stay due for the next run
    left = sum(1 for c in store.contacts.values() if c.version == 1)
    assert left == 400 - result.written > 0
    rest = run_decay(store, config, NOW)
    assert rest.written == left and not rest.stopped_early


def test_a_run_out_of_time_from_the_start_writes_nothing(config: Config) -> None:
    store = _store(config, 5)
    result = run_decay(store, config, NOW, out_of_time=lambda: True)
    assert result.stopped_early and result.written == 0 and "save_scores" not in store.calls


def test_a_contact_written_meanwhile_is_read_again(config: Config) -> None:
    # Given a stream batch that writes the contact between the job's read and its write
    store = _store(config, 1)
    raced = {"done": False}

    def stream_writes() -> None:
        if not raced["done"]:
            raced["done"] = True
            stored = store.contacts["u:c0"]
            stored.version = 7

    store.before_write = stream_writes
    # When the job runs
    result = run_decay(store, config, NOW)
    # Then it re-read the contact and wrote on top of the newer version
    assert result.written == 1 and store.contacts["u:c0"].version == 8
    assert store.calls["load_contact"] == 1
