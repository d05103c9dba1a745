"""An account's history (stored) and a contact's (derived from its events), and `?at=`.

Accounts: every write of an account reaches the table's stream; the stream handler keeps
each as a step of the account's history, with its causes (`account_steps`): the events and
rules that moved a contact's entry, a decay step, a state change (threshold, routing, SLA,
feedback, reassignment), a profile change, an erasure. The steps of one stream batch are one
history item (`HistoryStore.save_history`: at most one small write per account per batch),
each step the account as written, so `?at=` values the step in force at that moment with the
same code as the read route (decay arithmetic as of that moment): what the read API answered
then. The collection path pays nothing for it.

Contacts: a contact's history is its events folded one by one (rebuild.replay), each step
the score after the event with the rules it met, and the decay steps in between (when the
decay job revalues it); `?at=` is a rebuild as of that moment. Reads grow with that contact's
events, nothing else.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from leadscore.domain.ledgers import ContactEntry, CounterPoints, RuleLedger
from leadscore.domain.records import Account, Contact, StoredEvent, instant_text
from leadscore.engine.rules import next_decay_at, score
from leadscore.services.changes import AccountChanged, Change
from leadscore.services.errors import Invalid

if TYPE_CHECKING:
    from leadscore.rulesfiles.loading import Config
    from leadscore.rulesfiles.scoring import ScoringConfig

#: Steps a history page holds unless asked (`limit`), and at most.
PAGE = 50
MAX_PAGE = 200
#: Decay steps shown between two events of a contact at most (the rest are summed up in the next step).
MAX_DECAY_STEPS = 20


@dataclass
class AccountStep:
    """One write of an account: the account as written (in full) and why it moved."""

    account: Account
    causes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class HistoryItem:
    """The steps one stream batch brings an account (its history item)."""

    account_id: str
    steps: list[AccountStep]


# ----------------------------------------------------------------------- writing (stream)


def account_steps(scoring: ScoringConfig, records: Iterable[Change],
                  erasures: Callable[[Account], int] = lambda _: 0) -> list[HistoryItem]:
    """The history items a stream batch's account writes make: one per account, its steps in
    write order. A record whose images cannot be read is left out (its account's routed
    message and bus events report it)."""
    by_account: dict[str, list[AccountStep]] = {}
    for record in records:
        if not isinstance(record, AccountChanged):
            continue
        try:
            new = record.new(True)
            old = record.old_in_full() if record.old_in_full is not None else record.old()
        except Exception:  # noqa: BLE001 - a corrupt image: nothing to keep of it
            continue
        by_account.setdefault(record.account_id, []).append(AccountStep(new, causes_of(scoring, old, new, erasures)))
    return [HistoryItem(account_id, steps) for account_id, steps in by_account.items()]


def without_erased(found: list[HistoryItem], suppressed: Callable[[Iterable[str]], set[str]],
                   erasures: Callable[[Account], int]) -> list[HistoryItem]:
    """The history items with the entries (and the causes naming them) of erased contacts
    taken out: an account written before an erasure whose write reaches the stream after it
    must not copy the contact back into history. Only accounts that had an erasure are asked
    about (one read of their contacts' suppression records); the scores stay as written."""
    marked = [item for item in found if any(erasures(step.account) > 0 for step in item.steps)]
    keys = {entry.key for item in marked for step in item.steps for entry in step.account.entries}
    gone = suppressed(keys) if keys else set()
    if not gone:
        return found
    names = {key.split(":", 1)[1] for key in gone}
    for item in marked:
        for step in item.steps:
            # a copy: the stream record's decoded account is shared with the batch's other readers
            step.account = replace(step.account, entries=[e for e in step.account.entries if e.key not in gone])
            step.causes = [cause for cause in step.causes if cause.get("contactId") not in names]
    return found


def causes_of(scoring: ScoringConfig, old: Account | None, new: Account,
              erasures: Callable[[Account], int] = lambda _: 0) -> list[dict[str, Any]]:
    """Why an account moved from `old` to `new`, without personal data beyond the contact id
    the read route shows: each rule a contact's events met (points added, when), contacts
    joining or leaving, a profile change, a state change and its reason, a routing or SLA
    step, a reassignment, feedback, an erasure; a decay step when nothing else moved."""
    causes: list[dict[str, Any]] = []
    if old is None:
        causes.append({"kind": "created"})
    before = {entry.key: entry for entry in (old.entries if old is not None else [])}
    for entry in new.entries:
        previous = before.pop(entry.key, None)
        causes += _entry_causes(previous, entry)
    # a contact an erasure took out is not named: the `erasure` cause says it, with no personal data
    erased = erasures(new) > (erasures(old) if old is not None else 0)
    causes += [{"kind": "contact_left", "contactId": entry.public_id} for entry in before.values() if not erased]
    if old is not None and old.fit != new.fit:
        causes.append({"kind": "profile", "fit": {"from": old.fit, "to": new.fit}})
    erased_before = erasures(old) if old is not None else 0
    if erasures(new) > erased_before:
        causes.append({"kind": "erasure", "contacts": erasures(new) - erased_before})
    causes += _routing_causes(old, new)
    if not causes and old is not None and (old.score, old.velocity) != (new.score, new.velocity):
        causes.append({"kind": "decay", "score": {"from": old.score, "to": new.score}})
    return causes


def _entry_causes(previous: ContactEntry | None, entry: ContactEntry) -> list[dict[str, Any]]:
    causes: list[dict[str, Any]] = []
    if previous is None:
        causes.append({"kind": "contact_joined", "contactId": entry.public_id})
    for rule, stored in entry.rules.items():
        earlier = previous.rules.get(rule) if previous is not None else None
        if isinstance(stored, CounterPoints):
            was = earlier.points if isinstance(earlier, CounterPoints) else 0.0
            if stored.points != was:
                causes.append({"kind": "event", "contactId": entry.public_id, "rule": rule,
                               "points": round(stored.points - was, 4)})
            continue
        was_ledger = earlier if isinstance(earlier, RuleLedger) else RuleLedger()
        if stored.count == was_ledger.count and stored.total() == was_ledger.total():
            continue
        seen = {(t, p) for t, p in was_ledger.touches}
        times = sorted(t for t, p in stored.touches if (t, p) not in seen)
        cause: dict[str, Any] = {"kind": "event", "contactId": entry.public_id, "rule": rule,
                                 "points": round(stored.total() - was_ledger.total(), 4),
                                 "hits": stored.count - was_ledger.count}
        if times:
            cause["eventAt"] = [_iso(t) for t in times[-5:]]
        causes.append(cause)
    return causes


def _routing_causes(old: Account | None, new: Account) -> list[dict[str, Any]]:
    causes: list[dict[str, Any]] = []
    sdr = (new.sdr or {}).get("id")
    old_feedback = old.last_feedback if old is not None else None
    if new.last_feedback is not None and (old_feedback is None or old_feedback.seq != new.last_feedback.seq):
        causes.append({"kind": "feedback", "outcome": new.last_feedback.outcome, "sdr": new.last_feedback.sdr})
    old_routing, routing = (old.routing if old is not None else None), new.routing
    if routing is not None:
        old_hand = old_routing.assigned if old_routing is not None else None
        if routing.assigned is not None and routing.assigned != old_hand:
            causes.append({"kind": "reassignment", "sdr": sdr})
        elif routing.attempt and (old_routing is None or routing.attempt != old_routing.attempt
                                  or routing.routed_at != old_routing.routed_at):
            causes.append({"kind": "sla" if routing.attempt > 1 else "routing", "sdr": sdr,
                           "attempt": routing.attempt, "by": routing.by})
        elif routing.waiting and (old_routing is None or routing.waiting != old_routing.waiting):
            causes.append({"kind": "routing", "waiting": routing.waiting})
    if old is None or old.state != new.state or old.cycle != new.cycle:
        causes.append({"kind": "state", "from": old.state if old is not None else None, "to": new.state,
                       "cycle": new.cycle, "why": new.state_why})
    return causes


def _iso(epoch: float) -> str:
    return instant_text(datetime.fromtimestamp(epoch, tz=UTC))


# ----------------------------------------------------------------------------- reading


@dataclass
class Window:
    """What a history read asks: from, to (ISO times, inclusive), a page size and a cursor."""

    start: str | None = None
    end: str | None = None
    limit: int = PAGE
    cursor: str | None = None


def window(start: str | None, end: str | None, limit: str | None, cursor: str | None) -> Window:
    """The history query of `?from=&to=&limit=&cursor=` (the moments already ISO times in UTC);
    Invalid names the bad parameter."""
    size = PAGE
    if limit is not None and limit.strip():
        if not limit.strip().isdigit() or not 1 <= int(limit) <= MAX_PAGE:
            raise Invalid("invalid_limit", f"limit: a whole number from 1 to {MAX_PAGE}", field="limit")
        size = int(limit)
    asked = Window(start, end, size, cursor or None)
    if asked.start and asked.end and asked.start > asked.end:
        raise Invalid("invalid_window", "from: after to", field="from")
    return asked


def encode_cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """A cursor this code handed out; Invalid for anything else."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Invalid("invalid_cursor", "cursor: not one a history page handed out", field="cursor") from None
    if not isinstance(data, dict):
        raise Invalid("invalid_cursor", "cursor: not one a history page handed out", field="cursor")
    return data


def account_step_view(account: Account, causes: list[dict[str, Any]]) -> dict[str, Any]:
    """One step of an account's history as the API shows it: the moment, the account's values
    as written then (what the read API answered right after it) and why it moved."""
    view: dict[str, Any] = {
        "at": instant_text(account.updated_at) if account.updated_at else None, "version": account.version,
        "score": account.score, "fit": account.fit, "engagement": account.engagement,
        "committeeBonus": account.bonus, "velocity": account.velocity,
        "threshold": account.threshold, "state": account.state or "below_threshold", "cycle": account.cycle or 0,
        "causes": causes}
    if account.sdr and view["state"] in ("routed", "accepted"):
        view["sdr"] = account.sdr.get("id")
    return view


def in_window(at: str, asked: Window) -> bool:
    at = instant_text(at)
    return ((asked.start is None or at >= instant_text(asked.start))
            and (asked.end is None or at <= instant_text(asked.end)))


# ----------------------------------------------------------------------- contact history


@dataclass
class ContactStep:
    at: str
    values: dict[str, Any]
    cause: dict[str, Any]


def contact_steps(config: Config, fold: Any, root: str, until: datetime) -> Iterator[ContactStep]:
    """The contact's steps up to `until`: after each of its events (what it met), and the
    decay steps between (when a decaying touch changed value: the decay job's schedule).
    `fold(after_each)` runs the replay and calls `after_each(key, event, scratch)`."""
    scoring = config.scoring
    steps: list[ContactStep] = []
    previous: dict[str, float] = {}
    last: list[Contact | None] = [None]

    def values_at(contact: Contact, at: datetime) -> dict[str, Any]:
        card = score(scoring, contact.engine_state, at)
        return {"score": card.score, "fit": card.fit, "engagement": card.engagement, "velocity": card.velocity,
                "lifecycle": card.lifecycle}

    def decay_steps(until_moment: datetime) -> None:
        contact = last[0]
        if contact is None:
            return
        at = next_decay_at(scoring, contact.engine_state, datetime.fromisoformat(steps[-1].at))
        shown = 0
        while at is not None and at < until_moment and shown < MAX_DECAY_STEPS:
            values = values_at(contact, at)
            if values["engagement"] != steps[-1].values["engagement"]:  # (velocity moves on its own)
                steps.append(ContactStep(instant_text(at), values, {"kind": "decay"}))
                shown += 1
            at = next_decay_at(scoring, contact.engine_state, at)

    def after_each(key: str, stored: StoredEvent, scratch: Any) -> None:
        event = stored.event
        if event.received_at > until:
            return
        contact = scratch.load_contact(root)
        if contact is None:  # before the contact was known by its id: the id the event came in under
            contact = scratch.load_contact(key)
        if contact is None or contact.merged_into:
            return
        if steps:
            decay_steps(event.received_at)
        card = score(scoring, contact.engine_state, event.received_at)
        points = {hit.rule: hit.points for hit in card.breakdown}
        met = {rule: round(p - previous.get(rule, 0.0), 4) for rule, p in points.items()
               if round(p - previous.get(rule, 0.0), 4)}
        previous.clear()
        previous.update(points)
        cause: dict[str, Any] = {"kind": "event", "type": event.type, "event": event.event,
                                 "messageId": event.message_id, "source": event.source_id,
                                 "eventAt": instant_text(event.timestamp)}
        if met:
            cause["rules"] = met
        if key != root:
            cause["via"] = key.split(":", 1)[0]  # an id merged into the contact: anonymous or email
        steps.append(ContactStep(instant_text(event.received_at), values_at(contact, event.received_at), cause))
        last[0] = copy.deepcopy(contact)  # the next event's fold changes the scratch contact in place

    fold(after_each)
    if steps:
        decay_steps(until)
    yield from steps
