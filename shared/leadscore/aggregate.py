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
"""

from __future__ import annotations

import json
import logging
import random
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, get_args

from leadscore.collect import event_from_item
from leadscore.identity import key_digest
from leadscore.model import MessageType, TrackingEvent
from leadscore.storage import PROFILE, Store, VersionConflict, contact_pk, pad_sequence, unmarshal

# What a contact item says about who it is, besides its ledger (`lg`).
IDENTITY_ATTRIBUTES = ("uid", "em", "title", "name", "acct", "acctSrc", "gtr", "unsub")
logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 12
MAX_FORWARD_HOPS = 4
_MESSAGE_TYPES = frozenset(get_args(MessageType))
_OPTIONAL_TEXT = ("event", "user_id", "anonymous_id", "group_id", "previous_id", "email", "url", "path",
                  "referrer", "account_hint")


class PoisonRecord(ValueError):
    """A stream record that can never be applied: its image will not change, so retrying
    it is useless. The message names what is wrong, never a value of the record."""


class PoisonBatch(RuntimeError):
    """Raised by the handler when a poison record heads a batch of several: the function
    error makes Lambda bisect the batch until the poison record is alone."""


def loggable_key(pk: str) -> str:
    """A table key fit for logs: contacts as `key_digest` (kind and short hash), never their
    userId or email; accounts (company domains or group ids) as they are."""
    return key_digest(pk) if pk.startswith("C#") else pk


def _log_failure(message: str, pk: str, error: BaseException) -> None:
    """Log a failure without personal data: the key as a digest, the exception's type and
    where it was raised, never the exception's text (it may quote a record: an address,
    a name, a title)."""
    frames = traceback.extract_tb(error.__traceback__)[-6:]
    logger.error(message, loggable_key(pk), type(error).__name__,
                 extra={"contact_or_account": loggable_key(pk), "error_type": type(error).__name__,
                        "raised_at": [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames]})


def decode_event(item: Mapping[str, Any]) -> tuple[TrackingEvent, list[str]]:
    """The event and the rule ids collection matched, from a stored event image.

    Raises PoisonRecord for an image the collector never writes: missing or garbage
    attributes, traits or properties that are not a JSON object, a time out of range, an
    unknown message type, matched rules that are not a list of ids. A decoded event is
    well-formed, so folding it can only fail by a bug, never by its data.
    """
    try:
        event = event_from_item(dict(item))
    except Exception as error:  # noqa: BLE001 - whatever the garbage, it is this record's alone
        raise PoisonRecord(f"unreadable event image ({type(error).__name__})") from None
    hits = item.get("hits") or []
    if event.type not in _MESSAGE_TYPES:
        raise PoisonRecord("ty: not a message type")
    if not isinstance(event.message_id, str) or not isinstance(event.source_id, str):
        raise PoisonRecord("mid/src: not text")
    for name in _OPTIONAL_TEXT:
        if not isinstance(getattr(event, name), str | None):
            raise PoisonRecord(f"{name}: not text")
    if not isinstance(event.traits, dict) or not isinstance(event.properties, dict):
        raise PoisonRecord("tr/pr: not a JSON object")
    if not isinstance(hits, list) or not all(isinstance(rule, str) for rule in hits):
        raise PoisonRecord("hits: not a list of rule ids")
    return event, list(hits)


def _with_retries(store: Store, pk: str, item: dict[str, Any] | None,
                  apply: Callable[[dict[str, Any] | None], None]) -> bool:
    """Apply one key's changes, re-reading on a version conflict. False when it could not:
    the caller reports that key's records failed, and the rest of the batch goes on."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            apply(item)
            return True
        except VersionConflict:
            if attempt == MAX_ATTEMPTS - 1:
                logger.warning("stream records of %s lost %d version races; reported for a retry",
                               loggable_key(pk), MAX_ATTEMPTS)
                return False
            _back_off(attempt)
            item = store.get(pk)
        except Exception as error:  # noqa: BLE001 - a bug on one key must not block the others of its batch
            _log_failure("stream records of %s could not be applied: %s", pk, error)
            return False
    return False


def _back_off(attempt: int) -> None:
    """Full jitter: writers racing on one hot item spread out instead of colliding again."""
    time.sleep(random.uniform(0, min(0.01 * 2**attempt, 1.0)))


@dataclass
class StreamRecord:
    """The parts of a DynamoDB stream record the aggregation needs."""

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
        keys = unmarshal(body["Keys"])
        return cls(
            sequence=str(body["SequenceNumber"]),
            name=record.get("eventName", ""),
            keys=(keys["pk"], keys["sk"]),
            new=unmarshal(body["NewImage"]) if body.get("NewImage") else None,
            old=unmarshal(body["OldImage"]) if body.get("OldImage") else None,
        )

    @property
    def is_event(self) -> bool:
        return self.name == "INSERT" and self.keys[1].startswith("E#") and self.new is not None

    @property
    def is_contact(self) -> bool:
        return self.keys[0].startswith("C#") and self.keys[1] == PROFILE and self.name in ("INSERT", "MODIFY")

    @property
    def is_account(self) -> bool:
        return self.keys[0].startswith("A#") and self.keys[1] == PROFILE and self.name in ("INSERT", "MODIFY")


@dataclass
class DecodedEvent:
    """An event record of the batch with the event it carries (see `decode_event`)."""

    record: StreamRecord
    event: TrackingEvent
    hits: list[str]


@dataclass
class ContactUpdate:
    """A contact item being rebuilt from its stored form and the batch's events."""

    key: str
    item: dict[str, Any]
    version: int | None
    state: Any
    merged: list[tuple[dict[str, Any], int | None]] = field(default_factory=list)


def _contact_key(pk: str) -> str:
    return pk[2:]


def _linked_keys(event: TrackingEvent) -> list[str]:
    """Contacts an identify/alias says are the same person as the event's own contact."""
    own = event.contact_key
    linked: list[str] = []
    if event.type == "identify" and event.user_id:
        if event.anonymous_id:
            linked.append(f"a:{event.anonymous_id}")
        if event.email:
            linked.append(f"e:{event.email}")
    elif event.type == "identify" and event.email and event.anonymous_id:
        # an identify by email alone (a form): the visitor's anonymous history joins the
        # email; an anonymous id already part of a known contact stays there (_merge)
        linked.append(f"a:{event.anonymous_id}")
    elif event.type == "alias" and event.previous_id:
        linked += [f"a:{event.previous_id}", f"u:{event.previous_id}"]
    return [key for key in dict.fromkeys(linked) if key != own]


def _unsubscribed_from_everything(event: TrackingEvent) -> bool:
    """`Unsubscribed` with `all: true` (or scope/list "all"): excluded from routing for good."""
    if event.type != "track" or (event.event or "").strip().lower() != "unsubscribed":
        return False
    props = event.properties
    return props.get("all") is True or str(props.get("scope") or props.get("list") or "").lower() == "all"


def contact_values(scoring: Any, state: Any, now: datetime) -> dict[str, Any]:
    """The score fields a contact item stores, valued as of `now` (`due_at` None when no
    decaying touch needs re-valuing). The aggregation and the decay job both write these."""
    from leadscore.rules import next_decay_at, score

    card = score(scoring, state, now)
    due = next_decay_at(scoring, state, now)
    return {"fit": card.fit, "eng": card.engagement, "score": card.score, "vel": card.velocity,
            "life": card.lifecycle, "due_at": due.isoformat() if due else None}


class ContactAggregator:
    """Folds the event records of a stream batch into their contacts."""

    def __init__(self, store: Store, config: Any, now: datetime) -> None:
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
        prefetched = self.store.get_many((pk, PROFILE) for pk in by_contact)
        failed: dict[str, list[str]] = {}
        for pk, contact_records in by_contact.items():
            applied = _with_retries(self.store, pk, prefetched.get((pk, PROFILE)),
                                    partial(self._apply_contact, pk, records=contact_records))
            if not applied:
                failed[pk] = [d.record.sequence for d in contact_records]
        return failed

    # -- one contact -------------------------------------------------------------------------

    def _apply_contact(self, pk: str, item: dict[str, Any] | None, records: list[DecodedEvent]) -> None:
        watermark = (item or {}).get("seq", "")
        # Bot hits are stored for audit but change nothing, so they need no watermark either.
        fresh = sorted((d for d in records if d.record.padded > watermark and not d.event.bot),
                       key=lambda d: d.record.padded)
        if not fresh:
            return  # a replay (everything here was applied before), or only bots
        # Each event is scored by the rules collection matched (stored as `hits`): the rules
        # in force when it arrived, and no second matching pass here.
        events = [(d.event, d.hits) for d in fresh]
        new_watermark = fresh[-1].record.padded
        if item and item.get("into"):
            self._forward(item, events, new_watermark)
            return
        update = self._load(_contact_key(pk), item)
        before = {name: update.item.get(name) for name in IDENTITY_ATTRIBUTES}
        self._fold(update, events)
        if (item is not None and not update.merged and update.state.to_json() == item.get("lg")
                and all(update.item.get(name) == value for name, value in before.items())):
            # Events no rule scores ("Feature Used"...) change nothing: no write at all. The
            # watermark need not move either, as applying them again changes nothing again.
            return
        update.item["seq"] = new_watermark
        self._write(update)

    def _load(self, key: str, item: dict[str, Any] | None) -> ContactUpdate:
        from leadscore.rules import ContactState

        item = dict(item) if item else {"pk": contact_pk(key), "sk": PROFILE, "k": "C", "ck": key,
                                        "first": self.now.isoformat()}
        return ContactUpdate(key=key, item=item, version=item.get("ver"), state=ContactState.from_json(item.get("lg")))

    def _fold(self, update: ContactUpdate, events: list[tuple[TrackingEvent, list[str]]]) -> None:
        from leadscore.rules import apply_event, merge_states

        links = [key for event, _ in events for key in _linked_keys(event)]
        if links:
            self._merge(update, links, merge_states)
        for event, hits in events:
            apply_event(self.config.scoring, update.state, event, hits)
            self._remember_identity(update.item, event)

    def _merge(self, update: ContactUpdate, links: list[str], merge_states: Any) -> None:
        """Fold anonymous / email-only contacts into this one, once, and point them here.

        A linked id with no contact yet gets a stub pointing here, so its later events (a
        pixel hit with only the anonymous id, a form with only the email) are forwarded. That
        costs one two-item transaction, once per person, on the identify that links them.
        """
        from leadscore.rules import ContactState

        found = self.store.get_many((contact_pk(key), PROFILE) for key in links)
        for key in dict.fromkeys(links):
            other = found.get((contact_pk(key), PROFILE))
            if other and other.get("into"):
                continue  # already part of someone: first link wins
            version = other.get("ver") if other else None
            if other:
                merge_states(self.config.scoring, update.state, ContactState.from_json(other.get("lg")))
                for attribute in ("acct", "acctSrc", "gtr", "em"):
                    if other.get(attribute) and not update.item.get(attribute):
                        update.item[attribute] = other[attribute]
                stub = {**other, "into": update.key, "ver": (version or 0) + 1, "upd": self.now.isoformat()}
                # its points now live in the target: the stub no longer counts anywhere
                for attribute in ("fit", "eng", "score", "vel", "acct", "due_pk", "due_at"):
                    stub.pop(attribute, None)
            else:
                stub = {"pk": contact_pk(key), "sk": PROFILE, "k": "C", "ck": key, "into": update.key,
                        "ver": 1, "upd": self.now.isoformat()}
            update.merged.append((stub, version))

    @staticmethod
    def _remember_identity(item: dict[str, Any], event: TrackingEvent) -> None:
        """Keep who the contact is and which account it belongs to (group > company > email)."""
        if event.user_id:
            item["uid"] = event.user_id
        if _unsubscribed_from_everything(event):
            item["unsub"] = True
        if event.email:
            item["em"] = event.email
        if event.type == "identify":
            title = event.traits.get("title")
            if isinstance(title, str):
                item["title"] = title[:200]
            name = event.traits.get("name") or " ".join(
                str(event.traits[k]) for k in ("firstName", "lastName") if event.traits.get(k))
            if name:
                item["name"] = str(name)[:200]
        if not event.account_hint:
            return
        if event.type == "group":
            item["acct"], item["acctSrc"] = event.account_hint, "group"
            item["gtr"] = json.dumps(event.traits, separators=(",", ":"), default=str)[:4000] if event.traits else None
        elif item.get("acctSrc") != "group":
            item["acct"], item["acctSrc"] = event.account_hint, "profile"

    def _scored(self, update: ContactUpdate) -> dict[str, Any]:
        from leadscore.rules import compact

        compact(self.config.scoring, update.state, self.now)
        values = contact_values(self.config.scoring, update.state, self.now)
        item = update.item
        item.update(lg=update.state.to_json(), ver=(update.version or 0) + 1, upd=self.now.isoformat(),
                    **{k: v for k, v in values.items() if k != "due_at"})
        if values["due_at"]:
            item["due_pk"], item["due_at"] = "DUE", values["due_at"]
        else:
            item.pop("due_pk", None)
            item.pop("due_at", None)
        return item

    def _write(self, update: ContactUpdate) -> None:
        item = self._scored(update)
        if update.merged:
            self.store.put_versioned_many([(item, update.version), *update.merged])
        else:
            self.store.put_versioned(item, update.version)

    def _forward(self, stub: dict[str, Any], events: list[tuple[TrackingEvent, list[str]]], watermark: str) -> None:
        """Events of a merged contact score on the contact it was merged into."""
        target_key = stub["into"]
        target = self.store.get(contact_pk(target_key))
        hops = 0
        while target and target.get("into") and hops < MAX_FORWARD_HOPS:
            target_key = target["into"]
            target = self.store.get(contact_pk(target_key))
            hops += 1
        update = self._load(target_key, target)
        self._fold(update, events)
        moved_stub = {**stub, "seq": watermark, "ver": (stub.get("ver") or 0) + 1, "upd": self.now.isoformat()}
        update.merged.append((moved_stub, stub.get("ver")))
        self._write(update)


class AccountAggregator:
    """Rolls contact changes of a stream batch into their accounts: one write per account."""

    def __init__(self, store: Store, config: Any, now: datetime) -> None:
        self.store = store
        self.config = config
        self.now = now
        self.poison: list[str] = []  # sequence numbers of contact records that cannot be summarised

    def apply(self, records: Iterable[StreamRecord]) -> dict[str, list[str]]:
        """Returns {account pk: [sequence numbers]} for accounts that could not be written.

        A contact record that cannot be summarised (a corrupt image) is left out, so its
        accounts take the batch's other contacts, and listed in `self.poison`."""
        changes: dict[str, list[tuple[str, Any, Any]]] = defaultdict(list)
        sequences: dict[str, list[str]] = defaultdict(list)
        for record in records:
            if not record.is_contact or record.new is None:
                continue
            try:
                record_changes = self._changes_of(record.new, record.old or {})
            except Exception as error:  # noqa: BLE001 - the image is what it is: retrying cannot help
                self.poison.append(record.sequence)
                _log_failure("contact record %s cannot be summarised for its account: %s", record.keys[0], error)
                continue
            for account, change in record_changes:
                changes[account].append(change)
                sequences[account].append(record.sequence)
        if not changes:
            return {}
        from leadscore.storage import account_pk

        prefetched = self.store.get_many((account_pk(account), PROFILE) for account in changes)
        failed: dict[str, list[str]] = {}
        for account, account_changes in changes.items():
            pk = account_pk(account)
            applied = _with_retries(self.store, pk, prefetched.get((pk, PROFILE)),
                                    partial(self._apply_account, account, changes=account_changes))
            if not applied:
                failed[pk] = sequences[account]
        return failed

    def _changes_of(self, new: Mapping[str, Any], old: Mapping[str, Any]) -> list[tuple[str, tuple[str, Any, Any]]]:
        """(account id, change) pairs one contact record brings: an upsert where it belongs
        now, a removal where it belonged before."""
        from leadscore.accounts import entry_from_contact, traits_from_contact

        pairs: list[tuple[str, tuple[str, Any, Any]]] = []
        new_account = None if new.get("into") else new.get("acct")
        old_account = old.get("acct")
        if new_account:
            entry = entry_from_contact(self.config.scoring, new, self.now)
            pairs.append((new_account, ("upsert", entry, traits_from_contact(new))))
        if old_account and old_account != new_account:
            pairs.append((old_account, ("remove", (new["ck"], int(new.get("ver") or 0)), ({}, {}))))
        return pairs

    def _apply_account(self, account_id: str, item: dict[str, Any] | None,
                       changes: list[tuple[str, Any, Any]]) -> None:
        from leadscore.accounts import EXTRA_TRACKED, ContactEntry
        from leadscore.storage import account_pk

        version = item.get("ver") if item else None
        current: dict[str, Any] = dict(item) if item else {
            "pk": account_pk(account_id), "sk": PROFILE, "k": "A", "id": account_id,
            "state": "below_threshold", "cycle": 0, "first": self.now.isoformat()}
        entries = {e["c"]: ContactEntry.from_json(e) for e in json.loads(current.get("top") or "[]")}
        traits = json.loads(current.get("tr") or "{}")
        for kind, payload, contact_traits in changes:
            if kind == "upsert":
                known = entries.get(payload.key)
                if known is None or known.version < payload.version:
                    entries[payload.key] = payload
                # a group call (the account speaking for itself) beats what a contact's profile says
                company, group = contact_traits
                traits["company"] = {**traits.get("company", {}), **company}
                traits["group"] = {**traits.get("group", {}), **group}
            else:
                key, contact_version = payload
                if key in entries and entries[key].version <= contact_version:
                    del entries[key]
        scoring = self.config.scoring
        keep = scoring.account.top_contacts + EXTRA_TRACKED
        ranked = sorted(entries.values(), key=lambda e: (-e.contribution(scoring, self.now), e.key))[:keep]
        current["top"] = json.dumps([e.to_json() for e in ranked], separators=(",", ":"))
        current["tr"] = json.dumps(traits, separators=(",", ":"), default=str)
        self._rescore(account_id, current, ranked)
        if item is not None and all(item.get(k) == current.get(k) for k in
                                    ("top", "tr", "score", "fit", "eng", "bonus", "vel", "state", "cycle", "thr")):
            return  # nothing moved (a replay): no write, no event
        current["ver"] = (version or 0) + 1
        current["upd"] = self.now.isoformat()
        self.store.put_versioned(current, version)

    def _rescore(self, account_id: str, current: dict[str, Any], entries: list[Any]) -> None:
        rescore_account(self.config.scoring, account_id, current, entries, self.now)


def rescore_account(scoring: Any, account_id: str, current: dict[str, Any], entries: list[Any],
                    now: datetime) -> None:
    """Value the account as of `now` and move its state machine (mutates the item)."""
    from leadscore.accounts import account_card, effective_traits, exclusion_of, next_state

    traits = effective_traits(json.loads(current.get("tr") or "{}"))
    card = account_card(scoring, traits, entries, now)
    excluded = exclusion_of(scoring, account_id, traits)
    transition = next_state(scoring, state=current.get("state") or "below_threshold",
                            cycle=int(current.get("cycle") or 0), score=card.score, excluded=excluded,
                            cooldown_until=current.get("cooldown"), now=now)
    if transition.state != current.get("state") or transition.cycle != current.get("cycle"):
        current["stateAt"] = now.isoformat()
        current["stateWhy"] = transition.reason
    current.update(thr=scoring.account.thresholds.sdr_ready, fit=card.fit, eng=card.engagement, bonus=card.bonus,
                   score=card.score, vel=card.velocity,
                   state=transition.state, cycle=transition.cycle, excl=excluded,
                   name=str(traits.get("name")) if traits.get("name") else current.get("name"),
                   domain=account_id if "." in account_id else traits.get("domain"))


STATE_EVENTS = {
    "sdr_ready": "Account SDR Ready",
    "recycled": "Account Recycled",
    "disqualified": "Account Disqualified",
    "routed": "Account Routed",
}


def state_changes(records: Iterable[StreamRecord], now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """The bus events an account batch causes: transitions as they happened, and one
    coalesced `Account Score Changed` per account per batch."""
    events: list[tuple[str, dict[str, Any]]] = []
    first_old: dict[str, dict[str, Any]] = {}
    last_new: dict[str, dict[str, Any]] = {}
    for record in records:
        if not record.is_account or record.new is None:
            continue
        new, old = record.new, record.old or {}
        pk = record.keys[0]
        first_old.setdefault(pk, old)
        last_new[pk] = new
        if new.get("state") != old.get("state") or new.get("cycle") != old.get("cycle"):
            detail_type = STATE_EVENTS.get(str(new.get("state")))
            if detail_type:
                events.append((detail_type, _detail(new, now, previousState=old.get("state") or "below_threshold")))
    for pk, new in last_new.items():
        old = first_old[pk]
        if new.get("score") != old.get("score"):
            events.append(("Account Score Changed", _detail(new, now, previousScore=old.get("score") or 0)))
    return events


def _detail(account: Mapping[str, Any], now: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "accountId": account.get("id"),
        "name": account.get("name"),
        "domain": account.get("domain"),
        "score": account.get("score"),
        "fit": account.get("fit"),
        "engagement": account.get("eng"),
        "committeeBonus": account.get("bonus"),
        "velocity": account.get("vel"),
        "threshold": account.get("thr"),
        "state": account.get("state"),
        "cycle": account.get("cycle"),
        "time": now.isoformat(),
        **extra,
    }


@dataclass
class BatchOutcome:
    """What one stream batch left undone."""

    failed: list[str]  # sequence numbers to report, lowest first (poison included)
    poison: list[str]  # of which: records that can never be applied


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


def aggregate_batch(raw_records: Iterable[Mapping[str, Any]], *, store: Store, config: Any, publisher: Any,
                    now: datetime) -> BatchOutcome:
    """Run the three folds over one stream batch; what failed, and which of it is poison.

    Each fold is idempotent, so a record reported failed (and everything after it, which
    Lambda redelivers) is safe to apply again.
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
    for fold in (ContactAggregator(store, config, now), AccountAggregator(store, config, now)):
        for sequences in fold.apply(records).values():
            failed.extend(sequences)
        poison.extend(fold.poison)
        failed.extend(fold.poison)
    changes = state_changes(records, now)
    if changes:
        try:
            publisher.publish(changes, time=now)
        except Exception:  # noqa: BLE001 - report the account records; the retry republishes
            failed.extend(r.sequence for r in records if r.is_account)
    return BatchOutcome(failed=sorted(set(failed), key=pad_sequence), poison=sorted(set(poison), key=pad_sequence))


def process_batch(raw_records: Iterable[Mapping[str, Any]], *, store: Store, config: Any, publisher: Any,
                  now: datetime) -> list[str]:
    """The sequence numbers of one stream batch that failed (see `aggregate_batch`)."""
    return aggregate_batch(raw_records, store=store, config=config, publisher=publisher, now=now).failed


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
