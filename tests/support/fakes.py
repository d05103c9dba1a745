"""In-memory fakes of the layer's ports (leadscore.ports): a store of records and a publisher.

They keep what the real ones guarantee and nothing of DynamoDB: records are copied in and
out (no aliasing between what a caller holds and what is stored), saves are conditional on
the version read (VersionConflict / TransactionConflict), an event is stored once. Unit
tests hand them to the collector, the aggregators and the decay job; no moto, no network.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from leadscore.model import TrackingEvent
from leadscore.records import Account, Contact, ContactScores, StoredEvent, TransactionConflict, VersionConflict


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

    # -- ContactStore ----------------------------------------------------------------------

    def load_contact(self, key: str) -> Contact | None:
        self._count("load_contact")
        with self._lock:
            found = self.contacts.get(key)
            return copy.deepcopy(found) if found is not None else None

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
