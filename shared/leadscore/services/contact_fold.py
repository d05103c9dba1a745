"""The contact fold: a stream batch's events into their contacts, exactly once in effect.

Each event has a place in its contact's fold order, `fold_mark`: when it was received (to
the millisecond), when it happened, then its source and messageId. A contact stores the highest mark it took
(`watermark`), and folds events in mark order. An event above the watermark cannot have
been counted yet: it is folded in. One at or below it may have been counted (a stream
batch delivered again) or not (a batch given up on and replayed from the failure queue
after newer events; a collector that wrote an older event late): the fold cannot tell, so
it hands the contact to `on_replay`, which rebuilds it from its stored events (rebuild.py)
with this same code. Nothing is skipped on a guess, so no replay loses an event.

Every contact write is conditional on the version read (`ver`), so two Lambdas on different
shards never lose each other's update: the loser re-reads.

An identity merge happens at the event that links the two ids (an identify or alias), in
fold order, so a batch folds exactly as its events would one by one, and a rebuild (which
folds them one by one) ends where the live fold did.
"""

from __future__ import annotations

import copy
import logging
import random
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from leadscore.domain.events import TrackingEvent
from leadscore.domain.ledgers import ContactState
from leadscore.domain.records import Contact, PoisonRecord, VersionConflict
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
from leadscore.services.changes import Change, EventInserted

if TYPE_CHECKING:
    from leadscore.rulesfiles.loading import Config
    from leadscore.services.ports import ContactStore

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 12
MAX_FORWARD_HOPS = 4
T = TypeVar("T")


def fold_mark(event: TrackingEvent) -> str:
    """An event's place in its contact's fold order: received time, then the time it happened
    (the order within one request: a batch, an SDK's queue), both in milliseconds and fixed
    width so that marks compare as text, then source and messageId (unique per stored event)."""
    return (f"{int(event.received_at.timestamp() * 1000):015d}#{int(event.timestamp.timestamp() * 1000):015d}"
            f"#{event.source_id}#{event.message_id}")


def legacy_watermark(watermark: str) -> bool:
    """A watermark written before fold marks: a stream position (40 digits)."""
    return len(watermark) == 40 and watermark.isdigit()


def log_failure(message: str, key: str, error: BaseException) -> None:
    """Log a failure without personal data: the key (a contact's as `key_digest`, its kind
    and a short hash; an account id as it is), the exception's type and where it was raised,
    never the exception's text (it may quote a record: an address, a name, a title)."""
    frames = traceback.extract_tb(error.__traceback__)[-6:]
    logger.error(message, key, type(error).__name__,
                 extra={"contact_or_account": key, "error_type": type(error).__name__,
                        "raised_at": [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames]})


def with_retries(pk: str, record: T | None, reload: Callable[[], T | None],
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
            back_off(attempt)
            record = reload()
        except Exception as error:  # noqa: BLE001 - a bug on one key must not block the others of its batch
            log_failure("stream records of %s could not be applied: %s", pk, error)
            return False
    return False


def back_off(attempt: int) -> None:
    """Full jitter: writers racing on one hot item spread out instead of colliding again."""
    time.sleep(random.uniform(0, min(0.01 * 2**attempt, 1.0)))


@dataclass
class DecodedEvent:
    """An event record of the batch with the event it carries (see `decode_event`)."""

    record: EventInserted
    event: TrackingEvent
    hits: list[str]

    @property
    def mark(self) -> str:
        return fold_mark(self.event)


@dataclass
class ContactUpdate:
    """A contact being rebuilt from its stored form and the batch's events; `merged` are the
    contacts it absorbs in the same write (each with the version it was read at)."""

    contact: Contact
    version: int | None
    merged: list[tuple[Contact, int | None]] = field(default_factory=list)


#: Called with a contact (its key and as read, None when new) and the batch's records of it
#: when one of them is at or below its watermark, or folding them now would put them after
#: later events of the same person; True when it took care of them (a rebuild), False to fold
#: only those above the watermark.
OnReplay = Callable[[str, Contact | None, list[DecodedEvent]], bool]


class ContactAggregator:
    """Folds the event records of a stream batch into their contacts."""

    def __init__(self, store: ContactStore, config: Config, now: datetime, *,
                 on_replay: OnReplay | None = None,
                 suppressed: Callable[[Iterable[str]], set[str]] | None = None) -> None:
        self.store = store
        self.config = config
        self.now = now
        self.on_replay = on_replay
        #: which of these contact keys an erasure suppressed (asked only of keys with no contact)
        self.suppressed = suppressed
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
        unknown = [key for key in by_contact if key not in prefetched]
        if unknown and self.suppressed is not None:
            # An erased contact's events still in the stream (collected before its erasure, which
            # deleted it and them) must not bring it back: only a key with no contact can be one.
            for key in self.suppressed(unknown):
                logger.info("stream records of erased contact %s dropped", key_digest(key))
                del by_contact[key]
        failed: dict[str, list[str]] = {}
        for key, contact_records in by_contact.items():
            applied = with_retries(key_digest(key), prefetched.get(key), partial(self.store.load_contact, key),
                                   partial(self._apply_contact, key, records=contact_records))
            if not applied:
                failed[key] = [d.record.sequence for d in contact_records]
        return failed

    # -- one contact -------------------------------------------------------------------------

    def _apply_contact(self, key: str, contact: Contact | None, records: list[DecodedEvent]) -> None:
        # Bot hits are stored for audit but change nothing, so they need no watermark either.
        live = [d for d in records if not d.event.bot]
        if not live:
            return
        watermark = contact.watermark if contact is not None else ""
        if contact is not None and legacy_watermark(watermark):
            fresh = [d for d in live if d.record.position > watermark]
        else:
            fresh = [d for d in live if d.mark > watermark]
            if contact is not None and len(fresh) < len(live) and self._replayed(key, contact, live):
                return
        if not fresh:
            return
        # Each event is scored by the rules collection matched (stored as `hits`): the rules
        # in force when it arrived, and no second matching pass here.
        fresh.sort(key=lambda d: d.mark)
        events = [(d.event, d.hits) for d in fresh]
        new_watermark = fresh[-1].mark
        try:
            self._fold_fresh(key, contact, events, new_watermark, in_order=True)
        except OutOfOrder:
            if not self._replayed(key, contact, live):
                # no rebuild (none here, or the contact predates the retention): fold them as they come
                self._fold_fresh(key, contact, events, new_watermark, in_order=False)

    def _fold_fresh(self, key: str, contact: Contact | None, events: list[tuple[TrackingEvent, list[str]]],
                    new_watermark: str, *, in_order: bool) -> None:
        if contact is not None and contact.merged_into:
            self._forward(contact, events, new_watermark, in_order=in_order)
        else:
            self._fold_into(key, contact, events, new_watermark, in_order=in_order)

    def _replayed(self, key: str, contact: Contact | None, records: list[DecodedEvent]) -> bool:
        """Hand the contact to `on_replay` (a rebuild); False when there is none, or it declined."""
        return self.on_replay is not None and self.on_replay(key, contact, records)

    def _fold_into(self, key: str, contact: Contact | None, events: list[tuple[TrackingEvent, list[str]]],
                   new_watermark: str, *, in_order: bool) -> None:
        update = self._load(key, contact)
        before_state = copy.deepcopy(contact.state) if contact is not None and contact.state is not None else None
        before = identity(update.contact)
        self._fold(update, events, in_order=in_order)
        if (contact is not None and not update.merged and update.contact.engine_state == before_state
                and identity(update.contact) == before):
            # Events no rule scores ("Feature Used"...) change nothing: no write at all. The
            # watermark need not move either, as applying them again changes nothing again.
            return
        update.contact.watermark = _highest(update.contact.watermark, new_watermark,
                                            *(stub.watermark for stub, _ in update.merged))
        self._write(update)

    def _load(self, key: str, contact: Contact | None) -> ContactUpdate:

        if contact is None:
            return ContactUpdate(contact=new_contact(key, self.now), version=None)
        return ContactUpdate(contact=replace(contact, extra=dict(contact.extra)), version=contact.version)

    def _fold(self, update: ContactUpdate, events: list[tuple[TrackingEvent, list[str]]], *,
              in_order: bool = False) -> None:
        """Fold the events into the contact, merging the ids an event links as it comes;
        `in_order`: raise OutOfOrder rather than merge a contact that took later events."""

        state: ContactState = update.contact.engine_state
        for event, hits in events:
            merged = {stub.key for stub, _ in update.merged}
            links = [link for link in linked_keys(event) if link not in merged]
            if links:
                # one read of the linked contacts; the merge is one transaction, once per person
                found = self.store.load_contacts(links)
                mark = fold_mark(event)
                if in_order and any(not other.merged_into and _later(other.watermark, mark)
                                    for other in found.values()):
                    raise OutOfOrder("a contact merged here already took events after this one")
                update.merged += merge_linked(self.config.scoring, update.contact, links, found, self.now)
            apply_event(self.config.scoring, state, event, hits)
            remember_identity(update.contact, event)

    def _write(self, update: ContactUpdate) -> None:

        contact = rescored(self.config.scoring, update.contact, self.now)
        if update.merged:
            self.store.save_contacts([(contact, update.version), *update.merged])
        else:
            self.store.save_contact(contact, update.version)

    def _forward(self, stub: Contact, events: list[tuple[TrackingEvent, list[str]]], watermark: str, *,
                 in_order: bool) -> None:
        """Events of a merged contact score on the contact it was merged into."""

        target_key, target = follow_merges(stub, self.store.load_contact, MAX_FORWARD_HOPS + 1)
        if in_order and target is not None and _later(target.watermark, fold_mark(events[0][0])):
            raise OutOfOrder("the contact it joined already took later events")
        update = self._load(target_key, target)
        self._fold(update, events, in_order=in_order)
        update.contact.watermark = _highest(update.contact.watermark, watermark,
                                            *(other.watermark for other, _ in update.merged))
        update.merged.append((moved_stub(stub, watermark, self.now), stub.version))
        self._write(update)


class OutOfOrder(Exception):
    """Folding these events now would put them after events of the same person that came
    later (a merged id's events, forwarded or merged, across stream shards): the fold hands
    the person to a rebuild, which folds them all in order."""


def _later(watermark: str, mark: str) -> bool:
    return bool(watermark) and not legacy_watermark(watermark) and watermark > mark


def _highest(*watermarks: str) -> str:
    """The highest fold mark of these (legacy stream positions left out)."""
    return max((w for w in watermarks if w and not legacy_watermark(w)), default="")
