"""Rebuild a contact from its retained events with the code that scores live.

A person's events live in the partitions of every id they were known by: the contact's own
(`u:` userId, else `e:` email, else `a:` anonymousId) and those of the ids an identify or
alias linked to it (merged into it: first link wins, so an id another contact took first
stays out). `gather` reads them all; `replay` folds them in fold order (contact_fold.fold_mark),
one at a time, through the very `ContactAggregator` the stream runs, over scratch contacts in
memory, stopping at a moment when asked (`until`: only what had been received by then). So:

- the live state equals a rebuild as of now (tests/unit/test_rebuild.py checks it over
  generated journeys, merges and decay included);
- a stream record at or below its contact's watermark (a batch delivered again, or one given
  up on and replayed from the failure queue after newer events) rebuilds the contact from its
  events instead of being skipped (`Rebuilder.on_replay`): the result is the same whether it
  was counted before or not;
- `make rebuild CONTACT=...` repairs one contact, and the read routes answer `?at=` and
  contact history from it (services/history.py).

Only retained events count: an event older than EventRetentionDays is gone from the table.
A contact first seen before the retention window may have lost events, so a replay of it does
not rebuild (which would drop those points); it folds only what is above its watermark, as
before, and logs that it could not tell the rest.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from leadscore.domain.ledgers import ContactState
from leadscore.domain.records import Contact, StoredEvent
from leadscore.engine.contacts import follow_merges, identity, linked_keys, rescored
from leadscore.engine.identity import key_digest
from leadscore.engine.rules import compact, matching_rules
from leadscore.services.changes import EventInserted
from leadscore.services.contact_fold import (
    MAX_FORWARD_HOPS,
    ContactAggregator,
    DecodedEvent,
    fold_mark,
    legacy_watermark,
)

if TYPE_CHECKING:
    from leadscore.rulesfiles.loading import Config
    from leadscore.services.ports import RebuildStore

logger = logging.getLogger(__name__)
#: A person is at most this many ids (the contact and those merged into it).
MAX_PERSON_KEYS = 50


class RebuildFailed(RuntimeError):
    """A stored event could not be folded (its record is poison, or a bug): the rebuild
    stops rather than write a contact that lacks it."""


@dataclass
class Person:
    """Everything a rebuild reads: the person's contacts as stored (the root first), linked
    ids that belong to someone else (left as they are), and the events in fold order."""

    root: str
    stored: dict[str, Contact | None]
    foreign: dict[str, Contact] = field(default_factory=dict)
    events: list[tuple[str, StoredEvent]] = field(default_factory=list)

    def first_seen(self) -> str | None:
        seen = [c.first_seen for c in self.stored.values() if c is not None and c.first_seen]
        return min(seen) if seen else None


class ScratchContacts:
    """ports.ContactStore in memory: the rebuild's scratch space (no versions to race)."""

    def __init__(self, seed: Mapping[str, Contact]) -> None:
        self.contacts: dict[str, Contact] = {key: replace(c) for key, c in seed.items()}

    def load_contact(self, key: str) -> Contact | None:
        return self.contacts.get(key)

    def load_contacts(self, keys: Iterable[str]) -> dict[str, Contact]:
        return {key: self.contacts[key] for key in dict.fromkeys(keys) if key in self.contacts}

    def save_contact(self, contact: Contact, expected_version: int | None) -> None:
        self.contacts[contact.key] = contact

    def save_contacts(self, writes: Sequence[tuple[Contact, int | None]]) -> None:
        for contact, _ in writes:
            self.contacts[contact.key] = contact


def gather(store: RebuildStore, key: str, *, known: Contact | None = None,
           extra: Mapping[str, list[StoredEvent]] | None = None) -> Person:
    """The person `key` belongs to: the contact it is (or was merged into), the ids merged
    into that one or linked by its events (a rebuild merges those not merged yet), and all
    their stored events; an id merged into someone else stays out (first link wins). `extra`
    adds events not (yet) readable from the table (those of the stream records being
    replayed). Reads: one BatchGetItem per round of ids and one Query per id."""
    first = known if known is not None else store.load_contact(key)
    root = key
    if first is not None and first.merged_into:
        root, _ = follow_merges(first, store.load_contact, MAX_FORWARD_HOPS + 1)
    loaded: dict[str, Contact | None] = {key: first}
    by_key: dict[str, list[StoredEvent]] = {}
    ends: dict[str, str] = {}
    queue = [root]
    while queue and len(by_key) < MAX_PERSON_KEYS:
        batch = [k for k in dict.fromkeys(queue) if k not in by_key and k not in ends]
        queue = []
        missing = [k for k in batch if k not in loaded]
        if missing:
            found = store.load_contacts(missing)
            loaded.update({k: found.get(k) for k in missing})
        within = {root, *by_key, *batch}
        for k in batch:
            ends[k] = _owner(loaded[k], k, loaded, store)
            if ends[k] not in within:
                continue  # merged into someone else: not this person's
            events = {fold_mark(e.event): e for e in store.load_events(k)}
            for e in (extra or {}).get(k, []):
                events.setdefault(fold_mark(e.event), e)
            by_key[k] = list(events.values())
            queue += [link for e in by_key[k] for link in linked_keys(e.event)]
    mine = {k for k in by_key if ends[k] in by_key}
    person = Person(root=root, stored={k: loaded[k] for k in [root, *sorted(mine - {root})]},
                    foreign={k: c for k, c in loaded.items() if k not in mine and c is not None and k != root})
    person.events = sorted(((k, e) for k, events in by_key.items() if k in mine for e in events),
                           key=lambda pair: fold_mark(pair[1].event))
    return person


def _owner(contact: Contact | None, key: str, loaded: dict[str, Contact | None], store: RebuildStore) -> str:
    """The key at the end of `key`'s merges (itself when it is merged into nobody)."""
    if contact is None or not contact.merged_into:
        return key

    def load(other: str) -> Contact | None:
        if other not in loaded:
            loaded[other] = store.load_contact(other)
        return loaded[other]

    owner, _ = follow_merges(contact, load, MAX_FORWARD_HOPS + 1)
    return owner


def replay(config: Config, person: Person, *, until: datetime | None = None,
           after_each: Callable[[str, StoredEvent, ScratchContacts], None] | None = None,
           rematch: bool = False, engagement_since: datetime | None = None) -> ScratchContacts:
    """Fold the person's events one at a time, in fold order, with the stream's own fold,
    as of each event's arrival; only those received by `until` when given. `after_each`
    sees the scratch contacts after every event (history is read this way). Each event
    earns the rules collection matched when it arrived (stored with it), or, with `rematch`,
    the rules of `config` matched again as collection would match them (a preview of rules
    that match other events than the live ones). With `engagement_since`, an event received
    before it earns nothing but still sets identity and traits (a preview's window)."""
    scratch = ScratchContacts(person.foreign)
    for n, (key, stored) in enumerate(person.events):
        if until is not None and stored.event.received_at > until:
            break
        fold = ContactAggregator(scratch, config, stored.event.received_at)
        if engagement_since is not None and stored.event.received_at < engagement_since:
            hits: list[str] = []
        else:
            hits = matching_rules(config.scoring, stored.event) if rematch else list(stored.hits)
        record = EventInserted(sequence=str(n + 1), contact_key=key,
                               event=lambda s=stored, h=hits: (s.event, h))  # type: ignore[misc]
        if fold.apply([record]) or fold.poison:
            raise RebuildFailed(f"event {stored.event.source_id}/{stored.event.message_id} of "
                                f"{key_digest(key)} could not be folded")
        if after_each is not None:
            after_each(key, stored, scratch)
    return scratch


def root_contact(person: Person, scratch: ScratchContacts) -> Contact | None:
    """The person's contact as the replay left it (None: no events)."""
    return scratch.contacts.get(person.root)


@dataclass
class Rewrite:
    """What a rebuild writes: each contact with the version it was read at."""

    writes: list[tuple[Contact, int | None]]

    @property
    def changed(self) -> bool:
        return bool(self.writes)


def rewrite(config: Config, person: Person, scratch: ScratchContacts, now: datetime) -> Rewrite:
    """The stored contacts the rebuilt ones replace (unchanged ones left out). Each keeps
    its version (next one), first-seen time and what this code does not model; its
    watermark covers every event of its partition the rebuild counted."""
    marks: dict[str, str] = {}
    for key, stored in person.events:
        marks[key] = max(marks.get(key, ""), fold_mark(stored.event))
    # the contact itself has taken every event of the person; a merged id, those of its partition
    marks[person.root] = max(marks.values(), default="")
    writes: list[tuple[Contact, int | None]] = []
    for key, old in person.stored.items():
        new = scratch.contacts.get(key)
        if new is None:
            continue
        old_mark = old.watermark if old is not None and not legacy_watermark(old.watermark) else ""
        candidate = replace(new, version=old.version if old is not None else None,
                            watermark=max(old_mark, marks.get(key, "")),
                            first_seen=(old.first_seen if old is not None else None) or new.first_seen,
                            extra=dict(old.extra) if old is not None else {})
        if candidate.merged_into:
            if old is not None and old.merged_into and old.watermark == candidate.watermark:
                continue  # already someone's stub: where it points is kept
            candidate.state = None
            candidate.version = (old.version or 0) + 1 if old is not None else 1
            candidate.updated_at = now.isoformat()
        else:
            candidate = rescored(config.scoring, candidate, now)
            if old is not None and _same(config, old, candidate, now):
                continue
        writes.append((candidate, old.version if old is not None else None))
    return Rewrite(writes)


def _same(config: Config, old: Contact, new: Contact, now: datetime) -> bool:
    """Nothing a rebuild would change: who it is, its watermark and its engine state once both
    are compacted as of the same moment (stored scores follow the state; the decay job keeps
    them current)."""
    if old.merged_into or identity(old) != identity(new) or old.watermark != new.watermark:
        return False
    stored = copy.deepcopy(old.state or ContactState())
    compact(config.scoring, stored, now)
    return stored == (new.state or ContactState())


def save_rewrite(store: RebuildStore, rewrite_: Rewrite) -> None:
    """One conditional write, or one transaction when several contacts move together;
    VersionConflict / TransactionConflict when any was written meanwhile."""
    if len(rewrite_.writes) == 1:
        store.save_contact(*rewrite_.writes[0])
    elif rewrite_.writes:
        store.save_contacts(rewrite_.writes)


class Rebuilder:
    """Rebuilds contacts for the stream fold (`on_replay`) and for `make rebuild`."""

    def __init__(self, store: RebuildStore, config: Config, now: datetime, *, retention_days: int) -> None:
        self.store = store
        self.config = config
        self.now = now
        self.retention_days = retention_days
        self.rebuilt = 0

    def complete(self, person: Person) -> bool:
        """Whether every event the person ever had is still stored: first seen inside the
        retention window (a day's margin for clocks and TTL lag)."""
        first = person.first_seen()
        horizon = self.now - timedelta(days=self.retention_days - 1)
        return first is None or first >= horizon.isoformat()

    def on_replay(self, key: str, contact: Contact | None, records: list[DecodedEvent]) -> bool:
        """ContactAggregator's hook: rebuild the person from its events, the batch's included."""
        person = gather(self.store, key, known=contact,
                        extra={key: [StoredEvent(d.event, list(d.hits)) for d in records]})
        if not self.complete(person):
            logger.warning("contact %s is older than the event retention: stream records at or below its "
                           "watermark are left as they are (a rebuild would lose expired events)", key_digest(key))
            return False
        self.rebuild(person)
        return True

    def rebuild(self, person: Person) -> Rewrite:
        """Rebuild the person as of now and write what changed (VersionConflict: re-run)."""
        scratch = replay(self.config, person)
        changes = rewrite(self.config, person, scratch, self.now)
        save_rewrite(self.store, changes)
        self.rebuilt += 1
        return changes
