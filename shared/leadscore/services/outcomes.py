"""Outcomes kept in the table: a CRM's opportunity events and group traits, and sales feedback.

Calibration needs each account's outcome (won, lost, open) with its close date. Besides a
file (`calibrate.parse_outcomes`), two sources are already in the table, and read here from
decoded records (a `TableSnapshot`, or one shard of one: `.events`, `.contacts`, `.accounts`):

- **CRM** (source `crm`):
  - track events `Opportunity Won` / `Opportunity Lost` (names matched as the scoring rules
    match them: case-insensitive), posted through the collection API or put on the bus. The
    account: the event's `context.groupId` (a domain, or the groupId of a group call that
    named the account: in a shard without that call, `merge_report(groups=)` ties it with
    every shard's), else the account of the contact it is about, else the company its own
    traits name. The close date: the property `closeDate` (or `closedAt`, `close_date`,
    `closed_at`, `closedate`) when it is an ISO-8601 time with a zone or a date (a date is the
    end of that day), never later than the event itself (the outcome was known when it was
    posted); with none, the event's time; with one that cannot be read, the event's time too,
    and the outcome says so (`CLOSE_FALLBACK`, counted in the report).
  - group traits: `opportunityStatus` (or `opportunity_status`) `won` | `lost` | `open`
    (`closed-won`, `closed lost`... too), with `closeDate` as above: read from each group
    call (its time the fallback close date) and from the account's stored traits (which
    outlive the events; without a readable close date these name no close and are left out).
- **Feedback** (source `feedback`): the last sales feedback kept on the account:
  `disqualified` is lost at its time (the SDR found no opportunity); `accepted`, `not_ready`
  and `reset` are open (the account is still in play).

Precedence (`merge_outcomes`): for each account, the file's outcome if it has one, else the
CRM's, else the feedback's. Within a source, a close beats open and the latest close wins
(a tie: won). Each kept outcome says its source; `merge_report` counts them for the report.
Every found outcome is an `Outcome` that carries its source and note, so a step that reads
one shard can hand its outcomes on as JSON (`outcome_json`) and the reduce merges them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, Any, Protocol

from leadscore.engine.identity import account_id_for
from leadscore.services.calibrate import Outcome

if TYPE_CHECKING:
    from leadscore.domain.records import Account, Contact, StoredEvent

SOURCES = ("file", "crm", "feedback")  # highest precedence first
#: the track events a CRM posts, as the rules compare names (casefolded)
CRM_EVENTS = {"opportunity won": "won", "opportunity lost": "lost"}
#: property / trait keys, compared with case and underscores ignored
CLOSE_KEYS = frozenset(("closedate", "closedat"))
STATUS_KEYS = frozenset(("opportunitystatus",))
_STATUS = {"won": "won", "lost": "lost", "open": "open", "closed-won": "won", "closed_won": "won",
           "closed won": "won", "closedwon": "won", "closed-lost": "lost", "closed_lost": "lost",
           "closed lost": "lost", "closedlost": "lost"}
#: feedback outcome -> calibration outcome (disqualified: lost at its time)
FEEDBACK = {"disqualified": "lost", "accepted": "open", "not_ready": "open", "reset": "open"}
#: notes an outcome may carry
CLOSE_FALLBACK = "close date unreadable: the event's time"
NO_ACCOUNT = "no account: neither a groupId nor a contact with an account"


@dataclass(frozen=True)
class FoundOutcome(Outcome):
    """An outcome as one source gives it: which source, and a note on how it was read."""

    source: str = "file"
    note: str | None = None
    #: a CRM outcome's `context.groupId` that no group call of its snapshot tied to an account:
    #: `merge_report(groups=...)` ties it with every shard's group calls
    group_id: str | None = None


class SnapshotLike(Protocol):
    """What the outcomes are read from: a TableSnapshot, or the decoded items of one shard."""

    @property
    def events(self) -> Mapping[str, list[StoredEvent]]: ...
    @property
    def contacts(self) -> Mapping[str, Contact]: ...
    @property
    def accounts(self) -> Mapping[str, Account]: ...


def _key(name: str) -> str:
    return name.replace("_", "").casefold()


def _field(data: Mapping[str, Any], keys: frozenset[str]) -> Any:
    for name, value in data.items():
        if isinstance(name, str) and _key(name) in keys:
            return value
    return None


def status_of(value: Any) -> str | None:
    """won | lost | open from a status trait's value, None for anything else."""
    return _STATUS.get(" ".join(value.strip().casefold().split())) if isinstance(value, str) else None


def close_date(value: Any, at: datetime | None = None) -> datetime | None:
    """A close date from a property or trait: an ISO-8601 time with a zone, or a date (the end
    of that day, UTC); never later than `at` (when the outcome was posted). None: unreadable."""
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        return None
    text = value.strip()
    try:
        if len(text) == 10:  # YYYY-MM-DD
            when = datetime.combine(datetime.fromisoformat(text).date(), time.max, tzinfo=UTC)
        else:
            when = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
            if when.tzinfo is None:
                return None  # no zone: which day it was is a guess
    except ValueError:
        return None
    when = when.astimezone(UTC)
    return min(when, at) if at is not None else when


def group_accounts(snapshot: SnapshotLike) -> dict[str, str]:
    """groupId -> account id, from the group calls: a CRM that names a company by its own id
    (`context.groupId`) names the account that id's group call went to."""
    found: dict[str, str] = {}
    for stored in _all_events(snapshot):
        event = stored.event
        if event.type == "group" and event.group_id and event.account_hint:
            found[event.group_id] = event.account_hint
    return found


def _all_events(snapshot: SnapshotLike) -> Iterable[StoredEvent]:
    for events in snapshot.events.values():
        yield from events


def _contact_account(snapshot: SnapshotLike, key: str) -> str | None:
    seen: set[str] = set()
    contact = snapshot.contacts.get(key)
    while contact is not None and contact.merged_into and contact.merged_into not in seen:
        seen.add(contact.key)
        contact = snapshot.contacts.get(contact.merged_into)
    return contact.account if contact is not None else None


def _event_account(snapshot: SnapshotLike, stored: StoredEvent, groups: Mapping[str, str]
                   ) -> tuple[str | None, str | None]:
    """The account a CRM event names, and its groupId when no group call here ties it to one."""
    event = stored.event
    fallback = _contact_account(snapshot, event.contact_key) or event.account_hint
    if event.group_id:
        named = account_id_for(traits={}, email=None, group_id=event.group_id) or groups.get(event.group_id)
        if named:
            return named, None
        return fallback, event.group_id
    return fallback, None


def crm_outcomes(snapshot: SnapshotLike, groups: Mapping[str, str] | None = None) -> list[FoundOutcome]:
    """The CRM's outcomes: one per opportunity event, one per group call with a status trait,
    one per account whose stored traits carry a status (with a readable close date when
    closed). `groups` (groupId -> account) adds to what the snapshot's own group calls say."""
    groups = {**group_accounts(snapshot), **(groups or {})}
    found: list[FoundOutcome] = []
    for stored in _all_events(snapshot):
        event = stored.event
        if event.type == "track" and event.event:
            outcome = CRM_EVENTS.get(event.event.casefold())
            data = event.properties
        elif event.type == "group":
            outcome = status_of(_field(event.traits, STATUS_KEYS))
            data = event.traits
        else:
            continue
        if outcome is None:
            continue
        account, group_id = ((event.account_hint, None) if event.type == "group"
                             else _event_account(snapshot, stored, groups))
        note = None if account else NO_ACCOUNT
        when = None
        if outcome != "open":
            sent = _field(data, CLOSE_KEYS)
            when = close_date(sent, event.timestamp)
            if when is None:
                when = event.timestamp
                note = CLOSE_FALLBACK if sent not in (None, "") else note
        found.append(FoundOutcome(account or "", outcome, when, "crm", note, group_id))
    for kept in snapshot.accounts.values():
        group = kept.traits.get("group") if isinstance(kept.traits, Mapping) else None
        if not isinstance(group, Mapping):
            continue
        outcome = status_of(_field(group, STATUS_KEYS))
        if outcome is None:
            continue
        when = close_date(_field(group, CLOSE_KEYS)) if outcome != "open" else None
        if outcome == "open" or when is not None:
            found.append(FoundOutcome(kept.id, outcome, when, "crm"))
    return found


def feedback_outcomes(snapshot: SnapshotLike) -> list[FoundOutcome]:
    """The outcome each account's last sales feedback says (FEEDBACK)."""
    found: list[FoundOutcome] = []
    for account in snapshot.accounts.values():
        last = account.last_feedback
        outcome = FEEDBACK.get(last.outcome) if last is not None else None
        if last is None or outcome is None:
            continue
        when = close_date(last.at) if outcome != "open" else None
        if outcome != "open" and when is None:
            continue  # a feedback time is always written readable; a damaged one names no close
        found.append(FoundOutcome(account.id, outcome, when, "feedback"))
    return found


def outcomes_from_snapshot(snapshot: SnapshotLike, groups: Mapping[str, str] | None = None
                           ) -> list[FoundOutcome]:
    """Every outcome the table holds (CRM, then feedback), each with its source: for
    `merge_outcomes` (a shard's may be concatenated with other shards' first)."""
    return [*crm_outcomes(snapshot, groups), *feedback_outcomes(snapshot)]


# ---------------------------------------------------------------------------- precedence


def _rank(outcome: Outcome) -> tuple[bool, datetime, bool]:
    """Within one source: a close beats open, then the latest close, then won."""
    closed = outcome.outcome != "open" and outcome.closed_at is not None
    return closed, outcome.closed_at or datetime.min.replace(tzinfo=UTC), outcome.outcome == "won"


def _sourced(outcome: Outcome, source: str) -> FoundOutcome:
    if isinstance(outcome, FoundOutcome) and outcome.source == source:
        return outcome
    if isinstance(outcome, FoundOutcome):
        return replace(outcome, source=source)
    return FoundOutcome(outcome.account_id, outcome.outcome, outcome.closed_at, source)


def _tied(found: FoundOutcome, groups: Mapping[str, str] | None) -> FoundOutcome:
    """A CRM outcome whose groupId another shard's group call tied to an account: that account."""
    if found.group_id and groups and found.group_id in groups:
        return replace(found, account_id=groups[found.group_id], group_id=None,
                       note=None if found.note == NO_ACCOUNT else found.note)
    return found


def merge_report(file: Iterable[Outcome], crm: Iterable[Outcome] = (), feedback: Iterable[Outcome] = (),
                 groups: Mapping[str, str] | None = None) -> tuple[list[FoundOutcome], dict[str, Any]]:
    """One outcome per account (file over CRM over feedback; within one, the latest close),
    in the order the accounts first appear, and the counts the report shows: accounts by the
    source of their outcome, outcomes set aside for a higher source's, CRM close dates that
    fell back to the event's time, CRM outcomes with no account. `groups` (groupId -> account,
    `group_accounts` of every shard) ties the CRM outcomes one shard could not."""
    best: dict[str, tuple[int, FoundOutcome]] = {}
    given = dict.fromkeys(SOURCES, 0)
    fallback = no_account = 0
    for level, (source, outcomes) in enumerate(zip(SOURCES, (file, crm, feedback), strict=True)):
        for outcome in outcomes:
            found = _tied(_sourced(outcome, source), groups)
            if found.note == CLOSE_FALLBACK:
                fallback += 1
            if not found.account_id:
                no_account += 1
                continue
            given[source] += 1
            held = best.get(found.account_id)
            if held is None or (held[0] == level and _rank(found) > _rank(held[1])):
                best[found.account_id] = (level, found)
    merged = [found for _, found in best.values()]
    kept = dict.fromkeys(SOURCES, 0)
    for found in merged:
        kept[found.source] += 1
    counts = {"accounts": kept, "read": given, "setAside": sum(given.values()) - len(merged),
              "closeDateFallback": fallback, "noAccount": no_account}
    return merged, counts


def merge_outcomes(file: Iterable[Outcome], crm: Iterable[Outcome] = (), feedback: Iterable[Outcome] = ()
                   ) -> list[FoundOutcome]:
    """One outcome per account: the file's, else the CRM's, else the feedback's (merge_report)."""
    return merge_report(file, crm, feedback)[0]


def by_source(found: Sequence[Outcome]) -> tuple[list[Outcome], list[Outcome]]:
    """(CRM, feedback) of outcomes_from_snapshot's list (after JSON, too)."""
    crm = [o for o in found if not isinstance(o, FoundOutcome) or o.source == "crm"]
    return crm, [o for o in found if isinstance(o, FoundOutcome) and o.source == "feedback"]


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """An outcome as JSON (for a step's blob)."""
    data: dict[str, Any] = {"accountId": outcome.account_id, "outcome": outcome.outcome,
                            "closedAt": outcome.closed_at.isoformat() if outcome.closed_at else None}
    if isinstance(outcome, FoundOutcome):
        data["source"] = outcome.source
        if outcome.note:
            data["note"] = outcome.note
        if outcome.group_id:
            data["groupId"] = outcome.group_id
    return data


def outcome_from_json(data: Mapping[str, Any]) -> FoundOutcome:
    closed = data.get("closedAt")
    return FoundOutcome(str(data.get("accountId") or ""), str(data["outcome"]),
                        datetime.fromisoformat(closed) if closed else None, str(data.get("source") or "file"),
                        data.get("note"), data.get("groupId"))


#: the name adapters/shards.py's outcomes step looks for
outcomes_in = outcomes_from_snapshot
