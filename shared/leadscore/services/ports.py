"""The ports domain code depends on: what it needs of the store and of the bus.

The repositories of `adapters/storage.py` (DynamoDB; `Store` is all of them on one table) and
`bus.BusPublisher` (EventBridge) implement them; unit tests hand in the in-memory fakes of
tests/support/fakes.py. Records are those of records.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from leadscore.domain.events import TrackingEvent
    from leadscore.domain.records import (
        Account,
        Assignment,
        BookChange,
        Contact,
        ContactScores,
        Feedback,
        SdrActivity,
        SdrPause,
        SdrRecord,
        StoredEvent,
    )
    from leadscore.services.history import HistoryItem


class EventStore(Protocol):
    """Collection: each accepted event stored once, rejected input kept with its reason."""

    def put_event(self, event: TrackingEvent, hits: Sequence[str], retention_days: int) -> bool:
        """True if new, False if this (contact, source, messageId) is already stored."""
        ...

    def put_rejected(self, *, reason: str, field: str | None, source_id: str | None, raw: str,
                     received_at: datetime, retention_days: int) -> None: ...


class ContactStore(Protocol):
    """Contacts with optimistic locking: a save names the version it read (None: new) and
    raises VersionConflict (TransactionConflict for `save_contacts`) when it moved on."""

    def load_contact(self, key: str) -> Contact | None: ...

    def load_contacts(self, keys: Iterable[str]) -> dict[str, Contact]: ...

    def save_contact(self, contact: Contact, expected_version: int | None) -> None: ...

    def save_contacts(self, writes: Sequence[tuple[Contact, int | None]]) -> None: ...


class EventLog(Protocol):
    """The events a contact's partition holds (the rebuild reads them back)."""

    def load_events(self, contact_key: str) -> list[StoredEvent]:
        """Every stored event of one contact key, in no particular order."""
        ...


class RebuildStore(ContactStore, EventLog, Protocol):
    """What a rebuild needs: the contacts and their events."""


class HistoryStore(Protocol):
    """Accounts' history: the steps each stream batch brings (services/history.py)."""

    def save_history(self, found: Sequence[HistoryItem], retention_days: int, now: datetime) -> int: ...

    def erasures_of(self, account: Account) -> int:
        """How many erasures took a contact out of the account (history names them as causes)."""
        ...

    def load_history(self, account_id: str, *, start: str | None, end: str | None, after: tuple[str, int] | None,
                     limit: int) -> tuple[list[tuple[Account, list[dict[str, Any]]]], tuple[str, int] | None]: ...

    def load_account_at(self, account_id: str, at: str) -> Account | None: ...


class AccountStore(Protocol):
    def load_account(self, account_id: str) -> Account | None: ...

    def load_accounts(self, account_ids: Iterable[str]) -> dict[str, Account]: ...

    def save_account(self, account: Account, expected_version: int | None) -> None: ...


class DecayStore(Protocol):
    """What the decay job needs: the contacts due, and a versioned update of their scores."""

    def query_due_contacts(self, until: datetime, *, page_size: int = 500) -> Iterator[Contact]: ...

    def save_scores(self, contact: Contact, scores: ContactScores, updated_at: datetime) -> None: ...

    def load_contact(self, key: str) -> Contact | None: ...


class ReadStore(RebuildStore, HistoryStore, Protocol):
    """The read routes: contacts (and their events: `?at=` and history rebuild them), accounts
    (and their history), feedback."""

    def load_account(self, account_id: str) -> Account | None: ...

    def load_feedback(self, account_id: str, *, limit: int = 20) -> list[Feedback]:
        """An account's sales feedback, newest first."""
        ...


class FeedbackStore(Protocol):
    """Sales feedback: the account, and the feedback with the account it leaves, written
    together conditioned on the version read (TransactionConflict when it moved on)."""

    def load_account(self, account_id: str) -> Account | None: ...

    def save_feedback(self, feedback: Feedback, account: Account, expected_version: int | None) -> None: ...


class Publisher(Protocol):
    """Puts (detail-type, detail) state changes on the bus; raises if any was refused."""

    def publish(self, events: Sequence[tuple[str, dict[str, Any]]], time: datetime | None = None) -> int: ...


class RoutingStore(Protocol):
    """What routing needs: the account and its assignment, the pool's counter and the SDRs'
    daily counts, the routing transaction, and the due-time index of the routing pass.
    Writes raise TransactionConflict / VersionConflict when what they were conditioned on moved."""

    def load_routing(self, account_id: str, cycle: int) -> tuple[Account | None, Assignment | None]: ...

    def load_pool_state(self, pool_id: str | None, days: Iterable[tuple[str, date]], *,
                        pauses: dict[str, str | None] | None = None
                        ) -> tuple[int | None, dict[tuple[str, date], int]]: ...

    def save_assignment(self, assignment: Assignment, account: Account, *, expected_state: str,
                        counter: tuple[str, int, int] | None, capacity: int | None,
                        day: date, previous_attempt: int | None = None, pool: str | None = None,
                        tally: Sequence[str] = (), stale: Iterable[tuple[str, date]] = ()) -> None: ...

    def save_routing_status(self, account: Account, *, expected_state: str) -> None: ...

    def save_account(self, account: Account, expected_version: int | None) -> None: ...

    def query_route_due(self, until: datetime, *, page_size: int = 200) -> Iterator[Account]: ...

    def park_route_due(self, account: Account, until: datetime) -> None: ...


class AssignStore(RoutingStore, Protocol):
    """A lead's reassignments (leadscore.services.assign): the routing store, the accounts, and an
    SDR's assignments on the OwnerIndex (newest first)."""

    def load_account(self, account_id: str) -> Account | None: ...

    def load_accounts(self, account_ids: Iterable[str]) -> dict[str, Account]: ...

    def query_assigned(self, sdr_id: str, *, limit: int = 50) -> list[Assignment]: ...

    def load_sdr_record(self, sdr_id: str) -> SdrRecord:
        """The SDR's record: a lead's runtime pause."""
        ...


class MessageQueue(Protocol):
    """The routed queue (SQS FIFO): one JSON message in a group, deduplicated by its id."""

    def send(self, body: Mapping[str, Any], *, group_id: str, deduplication_id: str) -> None: ...


class TeamStore(Protocol):
    """The team lead's routes (leadscore.services.team): each SDR's partition (record, acceptances,
    breaches, day counts), their book on the OwnerIndex, the accounts of a page, and the
    pause written with the pool records' copies (TransactionConflict when either moved)."""

    def load_sdr_activity(self, sdr_id: str, since: str) -> SdrActivity: ...

    def load_sdr_record(self, sdr_id: str) -> SdrRecord: ...

    def save_pause(self, sdr_id: str, pause: SdrPause | None, *, pools: Sequence[str], expected_version: int,
                   at: str) -> int: ...

    def query_book(self, sdr_id: str, *, limit: int, cursor: str | None = None
                   ) -> tuple[list[Assignment], str | None]: ...

    def load_accounts(self, account_ids: Iterable[str]) -> dict[str, Account]: ...


class BookStore(Protocol):
    """The SDRs' books kept from the table's stream (leadscore.services.team.book_changes)."""

    def apply_book_changes(self, changes: Iterable[BookChange]) -> int: ...


class SuppressionCheck(Protocol):
    """Which contact keys (`u:<userId>`, `e:<email>`, `a:<anonymousId>`) an erasure suppressed:
    one BatchGetItem of their suppression records (keyed digests; none for no key), strongly
    consistent unless `consistent` is False. Collection drops their events (eventually
    consistent: half the reads); the stream aggregation skips them."""

    def load_suppressed(self, keys: Iterable[str], *, consistent: bool = True) -> set[str]: ...


class AggregateStore(ContactStore, AccountStore, EventLog, SuppressionCheck, Protocol):
    """What the stream aggregation needs (the events: to rebuild a contact a replay reaches)."""


class CollectStore(EventStore, SuppressionCheck, Protocol):
    """What collection needs: the events and rejections it writes, and the suppression check
    it makes once per request (leadscore.services.collect)."""


class ErasureStore(SuppressionCheck, EventLog, Protocol):
    """What an erasure needs (leadscore.services.erase): the contacts and accounts, the
    suppression records it writes, and the deletions and redactions of what names the contact."""

    def load_contact(self, key: str) -> Contact | None: ...

    def load_contacts(self, keys: Iterable[str]) -> dict[str, Contact]: ...

    def load_account(self, account_id: str) -> Account | None: ...

    def save_erased_account(self, account: Account, expected_version: int | None, at: str) -> None: ...

    def save_suppressions(self, keys: Iterable[str], at: str) -> int: ...


    def delete_contact_events(self, contact_key: str, *, stop: Callable[[], bool], page: int = 100
                              ) -> tuple[int, bool]: ...

    def delete_contact(self, contact_key: str) -> None: ...

    def erase_rejected(self, days: Iterable[date], holds: Callable[[str], bool]) -> int: ...

    def redact_feedback(self, account_id: str, redact: Callable[[str], str]) -> int: ...

    def erase_history(self, account_id: str, keys: Iterable[str], redact: Callable[[str], str]) -> int: ...
