"""Aggregation on the table's stream: events fold into contacts, contacts into accounts.

Exactly once in effect, whatever the stream redelivers:
- An event record is applied to its contact only if its sequence number is above the
  contact's `seq` watermark. Events share their contact's partition key, so DynamoDB
  Streams delivers them on one shard in write order; a replayed or bisected batch only
  carries records at or below the watermark for contacts already written.
- Every contact and account write is conditional on the version read (`ver`), so two
  Lambdas on different shards never lose each other's update: the loser re-reads.

A poison record (an image the collector never writes: missing or garbage attributes,
traits that are not a JSON object, a time out of range) fails alone, never its contact:
every record is decoded first, the poison ones are set aside and reported, the good ones
are applied and move the watermark past them. Lambda redelivers from the lowest reported
sequence number, and the good records after the poison are then below the watermark: a
no-op. When the poison heads a redelivered batch, the handler fails the invocation so
that Lambda bisects the batch (`BisectBatchOnFunctionError`) until the poison is alone:
only its own sequence number reaches the on-failure destination (`stream_response`).
An exception while applying well-formed records is a bug, not poison: the contact's
records are reported, to be retried and, failing that, kept at the destination to replay.
Logs name a contact by `key_digest` (its kind and a short hash), never by its key.

Cost per stream batch: one BatchGetItem for the distinct contacts, one write per distinct
contact whose stored state changed (a two-item transaction only when an identity merge
happens), one BatchGetItem and one write per distinct account (`AccountAggregator`; the
arithmetic is in accounts.py), and one PutEvents call for the batch's state changes.

This module keeps the folding, the retries and the failure reporting; the rules (identity
links, merges, unsubscribes, name and title, account precedence, rescoring, bus payloads)
are in contacts.py and accounts.py, the item formats in the storage layer (items.py).
"""

from __future__ import annotations

import logging
import random
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from leadscore.adapters import items
from leadscore.adapters.storage import account_pk, pad_sequence, unmarshal
from leadscore.domain.events import TrackingEvent
from leadscore.domain.records import Account, BookChange, Contact, PoisonRecord, VersionConflict
from leadscore.engine.identity import key_digest

if TYPE_CHECKING:
    from leadscore.engine.accounts import Membership
    from leadscore.rulesfiles.loading import Config
    from leadscore.rulesfiles.scoring import ScoringConfig
    from leadscore.services.outbox import RoutedSend
    from leadscore.services.ports import AggregateStore, BookStore, ContactStore, MessageQueue, Publisher

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 12
MAX_FORWARD_HOPS = 4
__all__ = ["PoisonBatch", "PoisonRecord", "aggregate_batch", "decode_event", "process_batch", "state_changes",
           "stream_response"]
T = TypeVar("T")


class PoisonBatch(RuntimeError):
    """Raised by the handler when a poison record heads a batch of several: the function
    error makes Lambda bisect the batch until the poison record is alone."""


def loggable_key(pk: str) -> str:
    """A table key fit for logs: contacts as `key_digest` (kind and short hash), never their
    userId or email; accounts (company domains or group ids) as they are."""
    return key_digest(pk) if pk.startswith(items.CONTACT_PREFIX) else pk


def _log_failure(message: str, pk: str, error: BaseException) -> None:
    """Log a failure without personal data: the key as a digest, the exception's type and
    where it was raised, never the exception's text (it may quote a record: an address,
    a name, a title)."""
    frames = traceback.extract_tb(error.__traceback__)[-6:]
    logger.error(message, loggable_key(pk), type(error).__name__,
                 extra={"contact_or_account": loggable_key(pk), "error_type": type(error).__name__,
                        "raised_at": [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames]})


def decode_event(image: Mapping[str, Any]) -> tuple[TrackingEvent, list[str]]:
    """The event and the rule ids collection matched, from a stored event image; raises
    PoisonRecord for an image the collector never writes (see `items.decode_event`)."""
    stored = items.decode_event(image)
    return stored.event, stored.hits


def _with_retries(pk: str, record: T | None, reload: Callable[[], T | None],
                  apply: Callable[[T | None], None]) -> bool:
    """Apply one key's changes, re-reading on a version conflict. False when it could not:
    the caller reports that key's records failed, and the rest of the batch goes on."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            apply(record)
            return True
        except VersionConflict:
            if attempt == MAX_ATTEMPTS - 1:
                logger.warning("stream records of %s lost %d version races; reported for a retry",
                               loggable_key(pk), MAX_ATTEMPTS)
                return False
            _back_off(attempt)
            record = reload()
        except Exception as error:  # noqa: BLE001 - a bug on one key must not block the others of its batch
            _log_failure("stream records of %s could not be applied: %s", pk, error)
            return False
    return False


def _back_off(attempt: int) -> None:
    """Full jitter: writers racing on one hot item spread out instead of colliding again."""
    time.sleep(random.uniform(0, min(0.01 * 2**attempt, 1.0)))


@dataclass
class StreamRecord:
    """The parts of a DynamoDB stream record the aggregation needs (images as items: the
    storage layer decodes them into records)."""

    sequence: str  # as delivered (the batch item identifier)
    name: str  # INSERT | MODIFY | REMOVE
    keys: tuple[str, str]
    new: dict[str, Any] | None
    old: dict[str, Any] | None

    @property
    def padded(self) -> str:
        return pad_sequence(self.sequence)

    @classmethod
    def parse(cls, record: Mapping[str, Any]) -> StreamRecord:
        body = record["dynamodb"]
        return cls(
            sequence=str(body["SequenceNumber"]),
            name=record.get("eventName", ""),
            keys=items.table_key(unmarshal(body["Keys"])),
            new=unmarshal(body["NewImage"]) if body.get("NewImage") else None,
            old=unmarshal(body["OldImage"]) if body.get("OldImage") else None,
        )

    @property
    def is_event(self) -> bool:
        return self.name == "INSERT" and items.is_event_key(self.keys) and self.new is not None

    @property
    def is_contact(self) -> bool:
        return items.is_contact_key(self.keys) and self.name in ("INSERT", "MODIFY")

    @property
    def is_account(self) -> bool:
        return items.is_account_key(self.keys) and self.name in ("INSERT", "MODIFY")


@dataclass
class DecodedEvent:
    """An event record of the batch with the event it carries (see `decode_event`)."""

    record: StreamRecord
    event: TrackingEvent
    hits: list[str]


@dataclass
class ContactUpdate:
    """A contact being rebuilt from its stored form and the batch's events; `merged` are the
    contacts it absorbs in the same write (each with the version it was read at)."""

    contact: Contact
    version: int | None
    merged: list[tuple[Contact, int | None]] = field(default_factory=list)


class ContactAggregator:
    """Folds the event records of a stream batch into their contacts."""

    def __init__(self, store: ContactStore, config: Config, now: datetime) -> None:
        self.store = store
        self.config = config
        self.now = now
        self.poison: list[str] = []  # sequence numbers of the event records that cannot be decoded

    # -- public ---------------------------------------------------------------------------

    def apply(self, records: Iterable[StreamRecord]) -> dict[str, list[str]]:
        """Apply event records; returns {contact pk: [sequence numbers]} of contacts that failed.

        Records that cannot be decoded are left out (their contact's other records apply)
        and listed in `self.poison`."""
        by_contact: dict[str, list[DecodedEvent]] = defaultdict(list)
        for record in records:
            if not record.is_event:
                continue
            try:
                event, hits = decode_event(record.new or {})
            except PoisonRecord as problem:
                self.poison.append(record.sequence)
                logger.error("stream record %s of contact %s cannot be applied: %s", record.sequence,
                             loggable_key(record.keys[0]), problem)
                continue
            by_contact[record.keys[0]].append(DecodedEvent(record, event, hits))
        if not by_contact:
            return {}
        prefetched = self.store.load_contacts(items.contact_key_of(pk) for pk in by_contact)
        failed: dict[str, list[str]] = {}
        for pk, contact_records in by_contact.items():
            key = items.contact_key_of(pk)
            applied = _with_retries(pk, prefetched.get(key), partial(self.store.load_contact, key),
                                    partial(self._apply_contact, key, records=contact_records))
            if not applied:
                failed[pk] = [d.record.sequence for d in contact_records]
        return failed

    # -- one contact -------------------------------------------------------------------------

    def _apply_contact(self, key: str, contact: Contact | None, records: list[DecodedEvent]) -> None:
        watermark = contact.watermark if contact is not None else ""
        # Bot hits are stored for audit but change nothing, so they need no watermark either.
        fresh = sorted((d for d in records if d.record.padded > watermark and not d.event.bot),
                       key=lambda d: d.record.padded)
        if not fresh:
            return  # a replay (everything here was applied before), or only bots
        # Each event is scored by the rules collection matched (stored as `hits`): the rules
        # in force when it arrived, and no second matching pass here.
        events = [(d.event, d.hits) for d in fresh]
        new_watermark = fresh[-1].record.padded
        if contact is not None and contact.merged_into:
            self._forward(contact, events, new_watermark)
            return
        from leadscore.engine.contacts import identity

        update = self._load(key, contact)
        before_state = items.state_json(contact.state) if contact is not None and contact.state is not None else None
        before = identity(update.contact)
        self._fold(update, events)
        if (contact is not None and not update.merged and items.state_json(update.contact.engine_state) == before_state
                and identity(update.contact) == before):
            # Events no rule scores ("Feature Used"...) change nothing: no write at all. The
            # watermark need not move either, as applying them again changes nothing again.
            return
        update.contact.watermark = new_watermark
        self._write(update)

    def _load(self, key: str, contact: Contact | None) -> ContactUpdate:
        from leadscore.engine.contacts import new_contact

        if contact is None:
            return ContactUpdate(contact=new_contact(key, self.now), version=None)
        return ContactUpdate(contact=replace(contact, extra=dict(contact.extra)), version=contact.version)

    def _fold(self, update: ContactUpdate, events: list[tuple[TrackingEvent, list[str]]]) -> None:
        from leadscore.engine.contacts import linked_keys, merge_linked, remember_identity
        from leadscore.engine.rules import apply_event

        links = [key for event, _ in events for key in linked_keys(event)]
        if links:
            # one read of the linked contacts; the merge is one transaction, once per person
            found = self.store.load_contacts(links)
            update.merged += merge_linked(self.config.scoring, update.contact, links, found, self.now)
        state = update.contact.engine_state
        for event, hits in events:
            apply_event(self.config.scoring, state, event, hits)
            remember_identity(update.contact, event)

    def _write(self, update: ContactUpdate) -> None:
        from leadscore.engine.contacts import rescored

        contact = rescored(self.config.scoring, update.contact, self.now)
        if update.merged:
            self.store.save_contacts([(contact, update.version), *update.merged])
        else:
            self.store.save_contact(contact, update.version)

    def _forward(self, stub: Contact, events: list[tuple[TrackingEvent, list[str]]], watermark: str) -> None:
        """Events of a merged contact score on the contact it was merged into."""
        from leadscore.engine.contacts import follow_merges, moved_stub

        target_key, target = follow_merges(stub, self.store.load_contact, MAX_FORWARD_HOPS + 1)
        update = self._load(target_key, target)
        self._fold(update, events)
        update.merged.append((moved_stub(stub, watermark, self.now), stub.version))
        self._write(update)


class AccountAggregator:
    """Rolls contact changes of a stream batch into their accounts: one write per account."""

    def __init__(self, store: AggregateStore, config: Config, now: datetime) -> None:
        self.store = store
        self.config = config
        self.now = now
        self.poison: list[str] = []  # sequence numbers of contact records that cannot be summarised

    def apply(self, records: Iterable[StreamRecord]) -> dict[str, list[str]]:
        """Returns {account pk: [sequence numbers]} for accounts that could not be written.

        A contact record that cannot be summarised (a corrupt image) is left out, so its
        accounts take the batch's other contacts, and listed in `self.poison`."""
        from leadscore.engine.accounts import membership_changes

        changes: dict[str, list[Membership]] = defaultdict(list)
        sequences: dict[str, list[str]] = defaultdict(list)
        for record in records:
            if not record.is_contact or record.new is None:
                continue
            try:
                new = items.contact_from_item(record.new)
                old = items.contact_from_item(record.old, summary=True) if record.old else None
                record_changes = membership_changes(self.config.scoring, new, old, self.now)
            except Exception as error:  # noqa: BLE001 - the image is what it is: retrying cannot help
                self.poison.append(record.sequence)
                _log_failure("contact record %s cannot be summarised for its account: %s", record.keys[0], error)
                continue
            for account, change in record_changes:
                changes[account].append(change)
                sequences[account].append(record.sequence)
        if not changes:
            return {}
        prefetched = self.store.load_accounts(changes)
        failed: dict[str, list[str]] = {}
        for account_id, account_changes in changes.items():
            pk = account_pk(account_id)
            applied = _with_retries(pk, prefetched.get(account_id), partial(self.store.load_account, account_id),
                                    partial(self._apply_account, account_id, changes=account_changes))
            if not applied:
                failed[pk] = sequences[account_id]
        return failed

    def _apply_account(self, account_id: str, account: Account | None, changes: list[Membership]) -> None:
        from leadscore.engine.accounts import account_changed, apply_memberships, new_account, rescore_account

        version = account.version if account is not None else None
        current = (replace(account, entries=list(account.entries), traits=dict(account.traits),
                           extra=dict(account.extra))
                   if account is not None else new_account(account_id, self.now))
        apply_memberships(self.config.scoring, current, changes, self.now)
        rescore_account(self.config.scoring, current, self.now)
        if account is not None and not account_changed(account, current):
            return  # nothing moved (a replay): no write, no event
        current.version = (version or 0) + 1
        current.updated_at = self.now.isoformat()
        self.store.save_account(current, version)


def state_changes(records: Iterable[StreamRecord], now: datetime,
                  scoring: ScoringConfig | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The bus events an account batch causes: transitions as they happened, and one
    coalesced `Account Score Changed` per account per batch (accounts.state_change_events).
    With `scoring`, a routed account is read in full (its Slack notification's reasons)."""
    from leadscore.engine.accounts import state_change_events

    changes = [(record.keys[0],
                items.account_from_item(record.old, summary=True) if record.old else None,
                _new_account(record.new, full=scoring is not None and record.new.get("state") == "routed"))
               for record in records if record.is_account and record.new is not None]
    return state_change_events(changes, now, scoring)


def _new_account(item: Mapping[str, Any], *, full: bool) -> Account:
    if full:
        try:
            return items.account_from_item(item)
        except Exception:  # noqa: BLE001 - its routed message reports it; its events go out without reasons
            pass
    return items.account_from_item(item, summary=True)


def routed_sends_of(records: Iterable[StreamRecord], config: Config) -> tuple[list[RoutedSend], list[str]]:
    """The routed messages an account batch owes (outbox.routed_sends: the routing
    transaction is the outbox, the stream delivers it), and the sequence numbers of the
    records whose message could not even be built (reported alone). Only a record whose new
    image is routed is decoded in full."""
    from leadscore.services.outbox import routed_sends

    sends: list[RoutedSend] = []
    failed: list[str] = []
    for record in records:
        if not (record.is_account and record.new is not None and record.new.get("state") == "routed"):
            continue
        try:
            change = (items.account_from_item(record.old, summary=True) if record.old else None,
                      items.account_from_item(record.new))
            sends += routed_sends(config.scoring, [change])
        except Exception as error:  # noqa: BLE001 - one account's message, not its neighbours'
            _log_failure("the routed message of %s could not be built: %s", record.keys[0], error)
            failed.append(record.sequence)
    return sends, failed


class NoRoutedQueue(RuntimeError):
    """An account was routed but this aggregator has no routed queue to send its message to."""


@dataclass
class BatchOutcome:
    """What one stream batch left undone."""

    failed: list[str]  # sequence numbers to report, lowest first (poison included)
    poison: list[str]  # of which: records that can never be applied
    #: accounts whose routed message could not be sent and was parked (make replay sends it)
    parked: list[str] = field(default_factory=list)


def _sequence_of(raw: Mapping[str, Any]) -> str:
    """A raw record's sequence number; PoisonRecord when even that is missing (it cannot be
    reported on its own: the caller fails the invocation and Lambda bisects)."""
    try:
        sequence = raw["dynamodb"]["SequenceNumber"]
    except (KeyError, TypeError):
        raise PoisonRecord("a stream record without a sequence number") from None
    if not isinstance(sequence, str | int) or not str(sequence).isdigit():
        raise PoisonRecord("a stream record with a malformed sequence number")
    return str(sequence)


def aggregate_batch(raw_records: Iterable[Mapping[str, Any]], *, store: AggregateStore, config: Config,
                    publisher: Publisher, now: datetime, routed_queue: MessageQueue | None = None,
                    parked_queue: MessageQueue | None = None, book_store: BookStore | None = None) -> BatchOutcome:
    """Run the three folds over one stream batch, then send the routed messages the account
    changes owe and publish their state changes; what failed, and which of it is poison.

    Each fold is idempotent, so a record reported failed (and everything after it, which
    Lambda redelivers) is safe to apply again; a routed message sent again carries the same
    FIFO deduplication id, and SQS drops it. Each routed message is sent on its own: one that
    cannot be sent is parked on `parked_queue` and holds back neither the batch's other
    messages nor its bus events. With `book_store`, the SDRs' books (open accounts,
    acceptances, SLA breaches: `team.book_changes`) follow the batch's account changes.
    """
    records: list[StreamRecord] = []
    poison: list[str] = []
    for raw in raw_records:
        try:
            records.append(StreamRecord.parse(raw))
        except Exception as error:  # noqa: BLE001 - a record that does not parse is poison, alone
            poison.append(_sequence_of(raw))
            logger.error("stream record %s cannot be parsed: %s", poison[-1], type(error).__name__)
    failed: list[str] = list(poison)
    folds: tuple[ContactAggregator, AccountAggregator] = (ContactAggregator(store, config, now),
                                                          AccountAggregator(store, config, now))
    for fold in folds:
        for sequences in fold.apply(records).values():
            failed.extend(sequences)
        poison.extend(fold.poison)
        failed.extend(fold.poison)
    parked = _send_routed(records, config, routed_queue, parked_queue, failed)
    try:
        changes = state_changes(records, now, config.scoring)
        if changes:
            publisher.publish(changes, time=now)
    except Exception as error:  # noqa: BLE001 - report the account records; the retry publishes again
        logger.error("bus events of the batch failed: %s", type(error).__name__)
        failed.extend(r.sequence for r in records if r.is_account)
    if book_store is not None:
        try:
            book_store.apply_book_changes(book_changes_of(records))
        except Exception as error:  # noqa: BLE001 - report the account records; applying them again is harmless
            logger.error("the SDRs' books of the batch failed: %s", type(error).__name__)
            failed.extend(r.sequence for r in records if r.is_account)
    return BatchOutcome(failed=sorted(set(failed), key=pad_sequence), poison=sorted(set(poison), key=pad_sequence),
                        parked=parked)


def book_changes_of(records: Iterable[StreamRecord]) -> list[BookChange]:
    """What the batch's account changes mean for the SDRs' books (team.book_changes), in order;
    an image that cannot be read is left out (its account's other records still count)."""
    from leadscore.services.team import book_changes

    changes: list[BookChange] = []
    for record in records:
        if not (record.is_account and record.new is not None):
            continue
        try:
            old = items.account_from_item(record.old, summary=True) if record.old else None
            changes += book_changes(old, items.account_from_item(record.new, summary=True))
        except Exception as error:  # noqa: BLE001 - a corrupt image: its routed message and events report it
            _log_failure("the book change of %s could not be read: %s", record.keys[0], error)
    return changes


def _send_routed(records: list[StreamRecord], config: Config, routed_queue: MessageQueue | None,
                 parked_queue: MessageQueue | None, failed: list[str]) -> list[str]:
    """Send the routed messages the batch owes, each on its own (outbox.deliver_routed): one
    that cannot be sent is parked, alone; only one that could not even be parked has its
    account's records reported (the stream retries them; SQS drops what was sent already).
    Returns the accounts parked."""
    from leadscore.services.outbox import deliver_routed

    sends, unbuilt = routed_sends_of(records, config)
    failed.extend(unbuilt)
    if not sends:
        return []
    if routed_queue is None:
        logger.error("%s", NoRoutedQueue(f"{len(sends)} routed message(s) and no ROUTED_QUEUE_URL"))
        undelivered = sends
        parked = []
    else:
        delivery = deliver_routed(routed_queue, sends, parking=parked_queue, pause=_back_off)
        undelivered, parked = delivery.failed, [send.account_id for send in delivery.parked]
    accounts = {account_pk(send.account_id) for send in undelivered}
    failed.extend(r.sequence for r in records if r.is_account and r.keys[0] in accounts)
    return parked


def process_batch(raw_records: Iterable[Mapping[str, Any]], *, store: AggregateStore, config: Config,
                  publisher: Publisher, now: datetime, routed_queue: MessageQueue | None = None,
                  parked_queue: MessageQueue | None = None) -> list[str]:
    """The sequence numbers of one stream batch that failed (see `aggregate_batch`)."""
    return aggregate_batch(raw_records, store=store, config=config, publisher=publisher, now=now,
                           routed_queue=routed_queue, parked_queue=parked_queue).failed


def stream_response(raw_records: Sequence[Mapping[str, Any]], outcome: BatchOutcome) -> dict[str, Any]:
    """The handler's answer under ReportBatchItemFailures, so a poison record ends up alone.

    Lambda resumes a stream from the lowest reported sequence number and redelivers
    everything after it; by then the good records after a poison one are applied (below
    their contact's watermark), so redelivering them is a no-op. When the poison record
    heads a batch of several, reporting it again would only send the whole rest of the
    batch to the on-failure destination once retries run out: raise PoisonBatch instead, a
    function error, so Lambda bisects (BisectBatchOnFunctionError) until it is alone.
    """
    if not outcome.failed:
        return {"batchItemFailures": []}
    lowest = outcome.failed[0]
    if lowest in outcome.poison and len(raw_records) > 1 and _sequence_of(raw_records[0]) == lowest:
        raise PoisonBatch(f"stream record {lowest} cannot be applied; bisect the batch to isolate it")
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in outcome.failed]}
