"""In-memory fakes of the layer's ports (leadscore.services.ports): a store of records and a publisher.

They keep what the real ones guarantee and nothing of DynamoDB: records are copied in and
out (no aliasing between what a caller holds and what is stored), saves are conditional on
the version read (VersionConflict / TransactionConflict), an event is stored once. Unit
tests hand them to the collector, the aggregators and the decay job; no moto, no network.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from leadscore.domain.events import TrackingEvent
from leadscore.domain.records import (
    Account,
    Assignment,
    CapacityReached,
    Contact,
    ContactScores,
    Feedback,
    PoolMoved,
    SdrRecord,
    StoredEvent,
    TransactionConflict,
    VersionConflict,
    utc_text,
)


@dataclass
class Rejected:
    reason: str
    field: str | None
    source_id: str | None
    raw: str
    received_at: datetime
    retention_days: int


@dataclass
class MemoryStore:
    """EventStore, ContactStore, AccountStore, DecayStore and ReadStore in memory.

    `write_delay` (seconds) slows every contact write down, to measure concurrency;
    `before_write` runs before each contact write (a hook to race another writer).
    """

    events: dict[tuple[str, str, str], StoredEvent] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    contacts: dict[str, Contact] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    assignments: dict[tuple[str, int], Assignment] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    sdr_days: dict[tuple[str, date], int] = field(default_factory=dict)
    #: the pool records' day counts (pool -> (SDR, day) -> count), as the routing transaction keeps them
    pool_days: dict[str, dict[tuple[str, date], int]] = field(default_factory=dict)
    #: the pool records' copies of their SDRs' pauses (pool -> SDR -> the end, None: until returned)
    pool_pauses: dict[str, dict[str, str | None]] = field(default_factory=dict)
    #: the SDRs' records (their runtime pause), as `load_sdr_record` reads them
    sdr_records: dict[str, SdrRecord] = field(default_factory=dict)
    feedback: dict[str, list[Feedback]] = field(default_factory=dict)
    #: the table's stream of account changes, (before, after) in order (see `MemoryOutbox`)
    account_stream: list[tuple[Account | None, Account]] = field(default_factory=list)
    #: runs inside `save_assignment` before its conditions are checked (a hook to race it)
    before_transaction: Callable[[], None] | None = None
    #: contact keys an erasure suppressed (`load_suppressed`)
    suppressed: set[str] = field(default_factory=set)
    write_delay: float = 0.0
    before_write: Callable[[], None] | None = None
    calls: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _count(self, name: str) -> None:
        with self._lock:
            self.calls[name] = self.calls.get(name, 0) + 1

    # -- EventStore --------------------------------------------------------------------------

    def put_event(self, event: TrackingEvent, hits: Sequence[str], retention_days: int) -> bool:
        self._count("put_event")
        key = (event.contact_key, event.source_id, event.message_id)
        with self._lock:
            if key in self.events:
                return False
            self.events[key] = StoredEvent(event, list(hits))
        return True

    def put_rejected(self, *, reason: str, field: str | None, source_id: str | None, raw: str,
                     received_at: datetime, retention_days: int) -> None:
        self._count("put_rejected")
        with self._lock:
            self.rejected.append(Rejected(reason, field, source_id, raw, received_at, retention_days))

    def load_suppressed(self, keys: Iterable[str], *, consistent: bool = True) -> set[str]:
        """SuppressionCheck: the keys an erasure suppressed (not counted: it is no write)."""
        return set(keys) & self.suppressed

    # -- ContactStore ----------------------------------------------------------------------

    def load_contact(self, key: str) -> Contact | None:
        self._count("load_contact")
        with self._lock:
            found = self.contacts.get(key)
            return copy.deepcopy(found) if found is not None else None

    def load_events(self, contact_key: str) -> list[StoredEvent]:
        self._count("load_events")
        with self._lock:
            return [copy.deepcopy(e) for (key, _, _), e in self.events.items() if key == contact_key]

    def load_contacts(self, keys: Iterable[str]) -> dict[str, Contact]:
        self._count("load_contacts")
        with self._lock:
            return {key: copy.deepcopy(self.contacts[key]) for key in dict.fromkeys(keys) if key in self.contacts}

    def _check(self, stored: Contact | Account | None, expected_version: int | None) -> bool:
        if expected_version is None:
            return stored is None
        return stored is not None and stored.version == expected_version

    def _writing(self) -> None:
        if self.before_write is not None:
            self.before_write()
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.write_delay:
                time.sleep(self.write_delay)
        finally:
            with self._lock:
                self.in_flight -= 1

    def save_contact(self, contact: Contact, expected_version: int | None) -> None:
        self._count("save_contact")
        self._writing()
        with self._lock:
            if not self._check(self.contacts.get(contact.key), expected_version):
                raise VersionConflict(f"contact changed since it was read (expected {expected_version})")
            self.contacts[contact.key] = copy.deepcopy(contact)

    def save_contacts(self, writes: Sequence[tuple[Contact, int | None]]) -> None:
        self._count("save_contacts")
        self._writing()
        with self._lock:
            if not all(self._check(self.contacts.get(c.key), expected) for c, expected in writes):
                raise TransactionConflict("a contact of the transaction changed since it was read")
            for contact, _ in writes:
                self.contacts[contact.key] = copy.deepcopy(contact)

    # -- DecayStore --------------------------------------------------------------------------

    def query_due_contacts(self, until: datetime, *, page_size: int = 500) -> Iterator[Contact]:
        self._count("query_due_contacts")
        with self._lock:
            moment = until.isoformat()
            due = sorted((c for c in self.contacts.values() if c.scores.due_at and c.scores.due_at <= moment),
                         key=lambda c: c.scores.due_at or "")
            snapshot = [copy.deepcopy(c) for c in due]
        yield from snapshot

    def save_scores(self, contact: Contact, scores: ContactScores, updated_at: datetime) -> None:
        self._count("save_scores")
        self._writing()
        with self._lock:
            stored = self.contacts.get(contact.key)
            if stored is None or contact.version is None or stored.version != contact.version:
                raise VersionConflict("contact changed since it was read")
            self.contacts[contact.key] = replace(stored, scores=copy.deepcopy(scores), version=contact.version + 1,
                                                 updated_at=updated_at.isoformat())

    # -- AccountStore ------------------------------------------------------------------------

    def load_account(self, account_id: str) -> Account | None:
        self._count("load_account")
        with self._lock:
            found = self.accounts.get(account_id)
            return copy.deepcopy(found) if found is not None else None

    def load_accounts(self, account_ids: Iterable[str]) -> dict[str, Account]:
        self._count("load_accounts")
        with self._lock:
            return {a: copy.deepcopy(self.accounts[a]) for a in dict.fromkeys(account_ids) if a in self.accounts}

    def save_account(self, account: Account, expected_version: int | None) -> None:
        self._count("save_account")
        with self._lock:
            if not self._check(self.accounts.get(account.id), expected_version):
                raise VersionConflict(f"account changed since it was read (expected {expected_version})")
            self.accounts[account.id] = copy.deepcopy(account)


    # -- FeedbackStore -----------------------------------------------------------------------

    def save_feedback(self, feedback: Feedback, account: Account, expected_version: int | None) -> None:
        """Both or neither, as the DynamoDB transaction."""
        self._count("save_feedback")
        with self._lock:
            kept = self.feedback.setdefault(account.id, [])
            if not self._check(self.accounts.get(account.id), expected_version) or any(
                    f.seq == feedback.seq for f in kept):
                raise TransactionConflict("the account changed since it was read")
            kept.append(copy.deepcopy(feedback))
            self.accounts[account.id] = copy.deepcopy(account)

    def load_feedback(self, account_id: str, *, limit: int = 20) -> list[Feedback]:
        self._count("load_feedback")
        with self._lock:
            kept = sorted(self.feedback.get(account_id, []), key=lambda f: f.seq, reverse=True)
            return copy.deepcopy(kept[:limit])

    # -- RoutingStore ------------------------------------------------------------------------

    def load_routing(self, account_id: str, cycle: int) -> tuple[Account | None, Assignment | None]:
        self._count("load_routing")
        with self._lock:
            account = self.accounts.get(account_id)
            assignment = self.assignments.get((account_id, cycle))
            return copy.deepcopy(account), copy.deepcopy(assignment)

    def load_pool_state(self, pool_id: str | None, days: Iterable[tuple[str, date]], *,
                        pauses: dict[str, str | None] | None = None
                        ) -> tuple[int | None, dict[tuple[str, date], int]]:
        self._count("load_pool_state")
        days = list(dict.fromkeys(days))
        with self._lock:
            if pauses is not None and pool_id is not None:
                pauses.update(self.pool_pauses.get(pool_id, {}))
            # one key: the pool record (its day counts are in it), or one per SDR day asked
            keys = 1 if pool_id is not None else len(days)
            self.calls["pool_keys_read"] = self.calls.get("pool_keys_read", 0) + keys
            if pool_id is None:
                for sdr_id in dict.fromkeys(s for s, _ in days) if pauses is not None else ():
                    record = self.sdr_records.get(sdr_id)
                    if record is not None and record.pause is not None and pauses is not None:
                        pauses[sdr_id] = record.pause.until
                return None, {day: self.sdr_days.get(day, 0) for day in days}
            return self.counters.get(pool_id, 0), {**dict.fromkeys(days, 0), **self.pool_days.get(pool_id, {})}

    def save_assignment(self, assignment: Assignment, account: Account, *, expected_state: str,
                        counter: tuple[str, int, int] | None, capacity: int | None,
                        day: date, previous_attempt: int | None = None, pool: str | None = None,
                        tally: Sequence[str] = (), stale: Iterable[tuple[str, date]] = ()) -> None:
        """All or nothing, as the DynamoDB transaction."""
        self._count("save_assignment")
        if self.before_transaction is not None:
            hook, self.before_transaction = self.before_transaction, None
            hook()
        with self._lock:
            key = (assignment.account_id, assignment.cycle)
            stored = self.accounts.get(account.id)
            existing = self.assignments.get(key)
            day_key = (assignment.sdr, day)
            ok = (
                (existing is None if previous_attempt is None
                 else existing is not None and existing.attempt == previous_attempt)
                and stored is not None and stored.state == expected_state and stored.cycle == account.cycle
                and stored.version == account.version
            )
            turn = counter is None or self.counters.get(counter[0], 0) == counter[1]
            full = capacity is not None and self.sdr_days.get(day_key, 0) >= capacity
            if ok and turn and full:  # and nothing else failed: the pool records learn it
                for pool_id in tally:
                    record = self.pool_days.setdefault(pool_id, {})
                    record[day_key] = max(record.get(day_key, 0), capacity or 0)
                raise CapacityReached(f"{assignment.sdr} is at capacity on {day}")
            if ok and not full and not turn and counter is not None:
                raise PoolMoved("the counter moved", pool=counter[0], counter=self.counters.get(counter[0], 0),
                                counts=dict(self.pool_days.get(counter[0], {})))
            if not (ok and turn) or full:
                raise TransactionConflict("a condition of the routing transaction failed")
            self.assignments[key] = copy.deepcopy(assignment)
            if counter is not None:
                self.counters[counter[0]] = counter[2]
            self.sdr_days[day_key] = self.sdr_days.get(day_key, 0) + 1
            routing_pool = counter[0] if counter is not None else pool
            for old in stale:
                self.pool_days.get(routing_pool or "", {}).pop(old, None)
            for pool_id in tally:
                record = self.pool_days.setdefault(pool_id, {})
                record[day_key] = record.get(day_key, 0) + 1
            self._store_routing(stored, account)

    def _store_routing(self, stored: Account, account: Account) -> None:
        self.accounts[account.id] = replace(
            stored, state=account.state, sdr=copy.deepcopy(account.sdr), routing=copy.deepcopy(account.routing),
            state_why=account.state_why, state_at=account.state_at or stored.state_at,
            updated_at=account.updated_at or stored.updated_at, version=(stored.version or 0) + 1)
        self.account_stream.append((copy.deepcopy(stored), copy.deepcopy(self.accounts[account.id])))

    def save_routing_status(self, account: Account, *, expected_state: str) -> None:
        self._count("save_routing_status")
        with self._lock:
            stored = self.accounts.get(account.id)
            if (stored is None or stored.state != expected_state or stored.cycle != account.cycle
                    or stored.version != account.version):
                raise VersionConflict("account changed since it was read")
            self._store_routing(stored, account)

    def query_route_due(self, until: datetime, *, page_size: int = 200) -> Iterator[Account]:
        self._count("query_route_due")
        moment = utc_text(until)
        with self._lock:
            # by the due time alone, as the index (a record whose state moved on without its
            # routing being cleared is still found, and the router takes it off)
            due = sorted((a for a in self.accounts.values()
                          if a.routing is not None and a.routing.due_at and a.routing.due_at <= moment),
                         key=lambda a: a.routing.due_at if a.routing and a.routing.due_at else "")
            snapshot = [copy.deepcopy(a) for a in due]
        yield from snapshot

    def load_sdr_record(self, sdr_id: str) -> SdrRecord:
        """The SDR's record (`sdr_records`; an empty one when never written)."""
        self._count("load_sdr_record")
        with self._lock:
            return copy.deepcopy(self.sdr_records.get(sdr_id) or SdrRecord(sdr_id))

    def query_assigned(self, sdr_id: str, *, limit: int = 50) -> list[Assignment]:
        """The OwnerIndex: the assignments `sdr_id` holds (each cycle's last SDR), newest first."""
        self._count("query_assigned")
        with self._lock:
            held = [a for a in self.assignments.values() if a.sdr == sdr_id]
            held.sort(key=lambda a: a.routed_at, reverse=True)
            return copy.deepcopy(held[:limit])

    def park_route_due(self, account: Account, until: datetime) -> None:
        self._count("park_route_due")
        with self._lock:
            stored = self.accounts.get(account.id)
            if stored is None or stored.version != account.version or stored.routing is None:
                raise VersionConflict("account changed since it was read")
            stored.routing = replace(stored.routing, due_at=utc_text(until))  # (the index time alone)


class MemoryOutbox:
    """The aggregate function's outbox stage on the fake store's account stream: sends the
    routed messages the routing writes owe (outbox.routed_sends), in order. A send that fails
    leaves the stream where it was, so the next `drain` (the stream's retry) sends again."""

    def __init__(self, store: MemoryStore, queue: MemoryQueue, scoring: Any) -> None:
        self.store, self.queue, self.scoring = store, queue, scoring
        self.position = 0
        self._lock = threading.Lock()

    def drain(self) -> int:
        from leadscore.services.outbox import routed_sends, send_routed

        with self._lock:  # a stream shard is processed one batch at a time
            pending = self.store.account_stream[self.position:]
            sent = send_routed(self.queue, routed_sends(self.scoring, pending))
            self.position += len(pending)
            return sent


@dataclass
class SentMessage:
    body: dict[str, Any]
    group_id: str
    deduplication_id: str


class MemoryQueue:
    """The routed FIFO queue in memory: deduplicates by id (as SQS does within 5 minutes);
    `fail` makes the next `fail` sends raise (a crash between the transaction and the send)."""

    def __init__(self, fail: int = 0) -> None:
        self.messages: list[SentMessage] = []
        self.sends = 0
        self.fail = fail
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def send(self, body: Mapping[str, Any], *, group_id: str, deduplication_id: str) -> None:
        with self._lock:
            self.sends += 1
            if self.fail:
                self.fail -= 1
                raise RuntimeError("SQS send failed")
            if deduplication_id in self._seen:
                return
            self._seen.add(deduplication_id)
            self.messages.append(SentMessage(copy.deepcopy(dict(body)), group_id, deduplication_id))


class MemoryPublisher:
    """The bus publisher in memory: what would have gone on the bus, in order."""

    def __init__(self, fail: bool = False) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail

    def publish(self, events: Sequence[tuple[str, dict[str, Any]]], time: datetime | None = None) -> int:
        if self.fail:
            raise RuntimeError("the bus refused the entries")
        self.events.extend(events)
        return len(events)
