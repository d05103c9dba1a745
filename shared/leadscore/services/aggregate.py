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
are in contacts.py and accounts.py. The folds take typed changes (an event inserted, a
contact or an account changed: `adapters.streams` reads them off the stream), never an item.
"""

from __future__ import annotations

import copy
import logging
import random
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from leadscore.domain.events import TrackingEvent
from leadscore.domain.ledgers import ContactState
from leadscore.domain.records import Account, BookChange, Contact, PoisonRecord, VersionConflict
from leadscore.engine.account_events import state_change_events
from leadscore.engine.accounts import (
    account_changed,
    apply_memberships,
    membership_changes,
    new_account,
    rescore_account,
)
from leadscore.engine.contacts import (
    follow_merges,
    identity,
    linked_keys,
    merge_linked,
    moved_stub,
    new_contact,
    remember_identity,
    rescored,
)
from leadscore.engine.identity import key_digest
from leadscore.engine.rules import apply_event
from leadscore.services.outbox import deliver_routed, routed_sends
from leadscore.services.team import book_changes

if TYPE_CHECKING:
    from leadscore.engine.accounts import Membership
    from leadscore.rulesfiles.loading import Config
    from leadscore.rulesfiles.scoring import ScoringConfig
    from leadscore.services.outbox import RoutedSend
    from leadscore.services.ports import AggregateStore, BookStore, ContactStore, MessageQueue, Publisher

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 12
MAX_FORWARD_HOPS = 4
__all__ = ["AccountChanged", "BatchOutcome", "ContactChanged", "EventInserted", "PoisonRecord", "aggregate_batch",
           "position", "state_changes"]
T = TypeVar("T")


def position(sequence: str) -> str:
    """A stream sequence number (up to 40 digits) padded so that positions compare as text:
    a contact's watermark is the position of the last event it took."""
    return sequence.zfill(40)


@dataclass(eq=False)
class EventInserted:
    """An event collection stored. `event()` decodes it: the event and the rule ids collection
    matched; PoisonRecord for an image the collector never writes."""

    sequence: str  # as delivered (the batch item identifier)
    contact_key: str
    event: Callable[[], tuple[TrackingEvent, list[str]]]

    @property
    def position(self) -> str:
        return position(self.sequence)


@dataclass(eq=False)
class ContactChanged:
    """A contact written (inserted or modified): `new()` in full, `old()` in summary (no
    engine state: what its accounts need of it), None when it is new."""

    sequence: str
    contact_key: str
    new: Callable[[], Contact]
    old: Callable[[], Contact | None]


@dataclass(eq=False)
class AccountChanged:
    """An account written: `new(full)` (in full, or in summary: scores, state, routing),
    `old()` in summary, None when it is new; `routed` says whether it is routed now without
    decoding it."""

    sequence: str
    account_id: str
    routed: bool
    new: Callable[[bool], Account]
    old: Callable[[], Account | None]


Change = EventInserted | ContactChanged | AccountChanged


def _log_failure(message: str, key: str, error: BaseException) -> None:
    """Log a failure without personal data: the key (a contact's as `key_digest`, its kind
    and a short hash; an account id as it is), the exception's type and where it was raised,
    never the exception's text (it may quote a record: an address, a name, a title)."""
    frames = traceback.extract_tb(error.__traceback__)[-6:]
    logger.error(message, key, type(error).__name__,
                 extra={"contact_or_account": key, "error_type": type(error).__name__,
                        "raised_at": [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames]})


def _snapshot(state: ContactState | None) -> ContactState | None:
    """A contact's engine state as it is now (folding mutates it in place)."""
    return copy.deepcopy(state)


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
                               pk, MAX_ATTEMPTS)
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
class DecodedEvent:
    """An event record of the batch with the event it carries (see `decode_event`)."""

    record: EventInserted
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

    def apply(self, records: Iterable[Change]) -> dict[str, list[str]]:
        """Apply the events inserted; returns {contact key: [sequence numbers]} of contacts
        that failed.

        Records that cannot be decoded are left out (their contact's other records apply)
        and listed in `self.poison`."""
        by_contact: dict[str, list[DecodedEvent]] = defaultdict(list)
        for record in records:
            if not isinstance(record, EventInserted):
                continue
            try:
                event, hits = record.event()
            except PoisonRecord as problem:
                self.poison.append(record.sequence)
                logger.error("stream record %s of contact %s cannot be applied: %s", record.sequence,
                             key_digest(record.contact_key), problem)
                continue
            by_contact[record.contact_key].append(DecodedEvent(record, event, hits))
        if not by_contact:
            return {}
        prefetched = self.store.load_contacts(by_contact)
        failed: dict[str, list[str]] = {}
        for key, contact_records in by_contact.items():
            applied = _with_retries(key_digest(key), prefetched.get(key), partial(self.store.load_contact, key),
                                    partial(self._apply_contact, key, records=contact_records))
            if not applied:
                failed[key] = [d.record.sequence for d in contact_records]
        return failed

    # -- one contact -------------------------------------------------------------------------

    def _apply_contact(self, key: str, contact: Contact | None, records: list[DecodedEvent]) -> None:
        watermark = contact.watermark if contact is not None else ""
        # Bot hits are stored for audit but change nothing, so they need no watermark either.
        fresh = sorted((d for d in records if d.record.position > watermark and not d.event.bot),
                       key=lambda d: d.record.position)
        if not fresh:
            return  # a replay (everything here was applied before), or only bots
        # Each event is scored by the rules collection matched (stored as `hits`): the rules
        # in force when it arrived, and no second matching pass here.
        events = [(d.event, d.hits) for d in fresh]
        new_watermark = fresh[-1].record.position
        if contact is not None and contact.merged_into:
            self._forward(contact, events, new_watermark)
            return

        update = self._load(key, contact)
        before_state = _snapshot(contact.state) if contact is not None and contact.state is not None else None
        before = identity(update.contact)
        self._fold(update, events)
        if (contact is not None and not update.merged and update.contact.engine_state == before_state
                and identity(update.contact) == before):
            # Events no rule scores ("Feature Used"...) change nothing: no write at all. The
            # watermark need not move either, as applying them again changes nothing again.
            return
        update.contact.watermark = new_watermark
        self._write(update)

    def _load(self, key: str, contact: Contact | None) -> ContactUpdate:

        if contact is None:
            return ContactUpdate(contact=new_contact(key, self.now), version=None)
        return ContactUpdate(contact=replace(contact, extra=dict(contact.extra)), version=contact.version)

    def _fold(self, update: ContactUpdate, events: list[tuple[TrackingEvent, list[str]]]) -> None:

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

        contact = rescored(self.config.scoring, update.contact, self.now)
        if update.merged:
            self.store.save_contacts([(contact, update.version), *update.merged])
        else:
            self.store.save_contact(contact, update.version)

    def _forward(self, stub: Contact, events: list[tuple[TrackingEvent, list[str]]], watermark: str) -> None:
        """Events of a merged contact score on the contact it was merged into."""

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

    def apply(self, records: Iterable[Change]) -> dict[str, list[str]]:
        """Returns {account id: [sequence numbers]} for accounts that could not be written.

        A contact record that cannot be summarised (a corrupt image) is left out, so its
        accounts take the batch's other contacts, and listed in `self.poison`."""

        changes: dict[str, list[Membership]] = defaultdict(list)
        sequences: dict[str, list[str]] = defaultdict(list)
        for record in records:
            if not isinstance(record, ContactChanged):
                continue
            try:
                record_changes = membership_changes(self.config.scoring, record.new(), record.old(), self.now)
            except Exception as error:  # noqa: BLE001 - the image is what it is: retrying cannot help
                self.poison.append(record.sequence)
                _log_failure("contact record %s cannot be summarised for its account: %s",
                             key_digest(record.contact_key), error)
                continue
            for account, change in record_changes:
                changes[account].append(change)
                sequences[account].append(record.sequence)
        if not changes:
            return {}
        prefetched = self.store.load_accounts(changes)
        failed: dict[str, list[str]] = {}
        for account_id, account_changes in changes.items():
            applied = _with_retries(account_id, prefetched.get(account_id),
                                    partial(self.store.load_account, account_id),
                                    partial(self._apply_account, account_id, changes=account_changes))
            if not applied:
                failed[account_id] = sequences[account_id]
        return failed

    def _apply_account(self, account_id: str, account: Account | None, changes: list[Membership]) -> None:

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


def state_changes(records: Iterable[Change], now: datetime,
                  scoring: ScoringConfig | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The bus events an account batch causes: transitions as they happened, and one
    coalesced `Account Score Changed` per account per batch (accounts.state_change_events).
    With `scoring`, a routed account is read in full (its Slack notification's reasons)."""

    changes = [(record.account_id, record.old(), _new_account(record, full=scoring is not None and record.routed))
               for record in records if isinstance(record, AccountChanged)]
    return state_change_events(changes, now, scoring)


def _new_account(record: AccountChanged, *, full: bool) -> Account:
    if full:
        try:
            return record.new(True)
        except Exception:  # noqa: BLE001 - its routed message reports it; its events go out without reasons
            pass
    return record.new(False)


def routed_sends_of(records: Iterable[Change], config: Config) -> tuple[list[RoutedSend], list[str]]:
    """The routed messages an account batch owes (outbox.routed_sends: the routing
    transaction is the outbox, the stream delivers it), and the sequence numbers of the
    records whose message could not even be built (reported alone). Only a record whose new
    image is routed is decoded in full."""

    sends: list[RoutedSend] = []
    failed: list[str] = []
    for record in records:
        if not (isinstance(record, AccountChanged) and record.routed):
            continue
        try:
            sends += routed_sends(config.scoring, [(record.old(), record.new(True))])
        except Exception as error:  # noqa: BLE001 - one account's message, not its neighbours'
            _log_failure("the routed message of %s could not be built: %s", record.account_id, error)
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


def aggregate_batch(records: Sequence[Change], *, store: AggregateStore, config: Config, publisher: Publisher,
                    now: datetime, unparsed: Sequence[str] = (), routed_queue: MessageQueue | None = None,
                    parked_queue: MessageQueue | None = None, book_store: BookStore | None = None) -> BatchOutcome:
    """Run the three folds over one stream batch, then send the routed messages the account
    changes owe and publish their state changes; what failed, and which of it is poison.

    Each fold is idempotent, so a record reported failed (and everything after it, which
    Lambda redelivers) is safe to apply again; a routed message sent again carries the same
    FIFO deduplication id, and SQS drops it. Each routed message is sent on its own: one that
    cannot be sent is parked on `parked_queue` and holds back neither the batch's other
    messages nor its bus events. With `book_store`, the SDRs' books (open accounts,
    acceptances, SLA breaches: `team.book_changes`) follow the batch's account changes.
    `unparsed` are the sequence numbers of the batch's records that did not even parse: poison.
    """
    poison: list[str] = list(unparsed)
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
        failed.extend(r.sequence for r in records if isinstance(r, AccountChanged))
    if book_store is not None:
        try:
            book_store.apply_book_changes(book_changes_of(records))
        except Exception as error:  # noqa: BLE001 - report the account records; applying them again is harmless
            logger.error("the SDRs' books of the batch failed: %s", type(error).__name__)
            failed.extend(r.sequence for r in records if isinstance(r, AccountChanged))
    return BatchOutcome(failed=sorted(set(failed), key=position), poison=sorted(set(poison), key=position),
                        parked=parked)


def book_changes_of(records: Iterable[Change]) -> list[BookChange]:
    """What the batch's account changes mean for the SDRs' books (team.book_changes), in order;
    an image that cannot be read is left out (its account's other records still count)."""

    changes: list[BookChange] = []
    for record in records:
        if not isinstance(record, AccountChanged):
            continue
        try:
            changes += book_changes(record.old(), record.new(False))
        except Exception as error:  # noqa: BLE001 - a corrupt image: its routed message and events report it
            _log_failure("the book change of %s could not be read: %s", record.account_id, error)
    return changes


def _send_routed(records: Sequence[Change], config: Config, routed_queue: MessageQueue | None,
                 parked_queue: MessageQueue | None, failed: list[str]) -> list[str]:
    """Send the routed messages the batch owes, each on its own (outbox.deliver_routed): one
    that cannot be sent is parked, alone; only one that could not even be parked has its
    account's records reported (the stream retries them; SQS drops what was sent already).
    Returns the accounts parked."""

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
    accounts = {send.account_id for send in undelivered}
    failed.extend(r.sequence for r in records if isinstance(r, AccountChanged) and r.account_id in accounts)
    return parked
