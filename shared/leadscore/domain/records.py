"""The stored records as domain types: what the storage layer takes and returns.

Domain code (contacts, accounts, aggregation, decay, the read API) works on these and never
on DynamoDB items: the item mapping (attribute names, JSON layouts, keys) lives in
`adapters/items.py`, the requests in `adapters/storage.py`. Pure data, no AWS; nothing heavy at import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from leadscore.domain.events import TrackingEvent
from leadscore.domain.ledgers import ContactEntry, ContactState

#: the key of `Account.extra` under which a store says an item could not be read (why)
UNREADABLE = "!unreadable"


def utc_text(moment: datetime) -> str:
    """A moment as routing shows and stores it: UTC, whole seconds, `Z` (2026-11-22T10:00:00Z).
    Texts of this one format compare as the moments do."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def instant_text(moment: datetime | str) -> str:
    """A moment (or an ISO text of one, `Z` or an offset) as history keeps it: UTC to the
    millisecond, `Z` (2026-11-22T10:00:00.250Z). Texts of this format compare as the moments
    do, whichever way the writes spelled their times."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00") if moment.endswith("Z") else moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class VersionConflict(Exception):
    """Someone else wrote the record since we read it: re-read and try again."""


class TransactionConflict(VersionConflict):
    """A transaction's condition failed or it raced another transaction."""


class CapacityReached(TransactionConflict):
    """The routing transaction found the chosen SDR at their daily capacity (the day count's
    condition failed, and only it): the pool records now say so; the router chooses again."""


class PoolMoved(TransactionConflict):
    """The routing transaction lost the pool's counter to another route (its condition failed,
    and only it): the account still holds, so the router waits and re-reads the pool record
    alone. Carries the record as the failed condition saw it (its counter and day counts)."""

    def __init__(self, message: str, *, pool: str, counter: int, counts: dict[tuple[str, date], int]) -> None:
        super().__init__(message)
        self.pool, self.counter, self.counts = pool, counter, counts


class PoisonRecord(ValueError):
    """A stored image that can never be applied: its image will not change, so retrying
    it is useless. The message names what is wrong, never a value of the record."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An accepted event as stored: the event and the rule ids collection matched."""

    event: TrackingEvent
    hits: list[str]


@dataclass(slots=True)
class ContactScores:
    """A contact's score fields, valued as of some moment; `due_at` (ISO time) is when a
    decaying touch next needs re-valuing, None when none does."""

    fit: float | None = None
    engagement: float | None = None
    score: float | None = None
    velocity: float | None = None
    lifecycle: str | None = None
    due_at: str | None = None


@dataclass(slots=True)
class Contact:
    """A contact: who it is, its engine state (ledgers, traits), its scores.

    `version` is the stored version (None: not stored yet); `watermark` the highest stream
    sequence number applied (zero-padded); `merged_into` the key of the contact it joined
    (then it is a stub that forwards its later events). `extra` keeps what this code does
    not model, so a rewrite never drops it.
    """

    key: str
    version: int | None = None
    state: ContactState | None = None
    user_id: str | None = None
    email: str | None = None
    title: str | None = None
    name: str | None = None
    account: str | None = None
    account_source: str | None = None  # "group" | "profile"
    group_traits: dict[str, Any] | None = None  # the last group call's traits
    unsubscribed: bool = False
    scores: ContactScores = field(default_factory=ContactScores)
    merged_into: str | None = None
    watermark: str = ""
    first_seen: str | None = None
    updated_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def engine_state(self) -> ContactState:
        """The engine state, an empty one for a contact that has none yet."""
        if self.state is None:
            self.state = ContactState()
        return self.state


@dataclass(slots=True)
class Account:
    """An account: its traits (`company` from contacts' profiles, `group` from group calls),
    the entries of its highest contacts, its scores and its routing state."""

    id: str
    version: int | None = None
    entries: list[ContactEntry] = field(default_factory=list)
    traits: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    domain: str | None = None
    threshold: float | None = None
    fit: float | None = None
    engagement: float | None = None
    bonus: float | None = None
    score: float | None = None
    velocity: float | None = None
    state: str | None = None  # below_threshold | sdr_ready | routed | ... (None: never valued)
    cycle: int | None = None
    excluded: str | None = None
    state_at: str | None = None
    state_why: str | None = None
    cooldown_until: str | None = None
    sdr: dict[str, Any] | None = None  # the SDR who has (or last had) it: {id, name, email}
    routing: RoutingStatus | None = None
    #: after `not_ready`: the engagement (committee bonus included) it had then, which no
    #: longer counts toward the threshold (it must earn its way back with new engagement)
    engagement_baseline: float | None = None
    last_feedback: Feedback | None = None  # the last sales feedback applied (its note left out)
    first_seen: str | None = None
    updated_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RoutingStatus:
    """Where an account stands in its current cycle's routing (kept on the account).

    Routed: the pool, territory and mode of the choice, when it was routed, when the SLA is
    due, which attempt this is (1, then one more per SLA re-route) and every SDR who had it
    this cycle (`tried`). Waiting (state `sdr_ready`, nobody available): `waiting` says why
    ("no SDR available: ...") and `retry_at` when someone may be back. `due_at` is when the
    routing pass looks at the account next (the SLA, the retry); None: not due.

    Why (the decision, routed or waiting): `by` how the SDR was chosen (crm_owner |
    previous_owner | round_robin | assigned), `skipped` the SDRs passed over with why (at most
    `MAX_SKIPPED`, `skipped_more` the rest), `crm_owner` the account's CRM owner when it names
    one (`reason` None: it went to them; else why not, `unknown` for no SDR of routing.yaml).
    """

    pool: str | None = None
    territory: str | None = None
    by: str | None = None
    skipped: list[SkippedSdr] = field(default_factory=list)
    skipped_more: int = 0
    crm_owner: SkippedSdr | None = None
    mode: str | None = None
    routed_at: str | None = None
    sla_due_at: str | None = None
    attempt: int = 0
    tried: list[str] = field(default_factory=list)
    waiting: str | None = None
    waiting_reason: str | None = None  # inactive | out_of_office | at_capacity | paused | unavailable
    retry_at: str | None = None
    due_at: str | None = None
    #: set when a lead chose this routing by hand (leadscore.services.assign); None: the router did
    assigned: HandAssignment | None = None


@dataclass(slots=True)
class HandAssignment:
    """A lead's reassignment (`POST /v1/accounts/{id}/assign`, `POST /v1/sdrs/{id}/reassign`):
    the lead (`by`, of routing.yaml `leads:`), when, the SDR who had the account before
    (None: it was waiting), the IAM caller of the request and the note. Kept on the routing
    status it made, so the next routing (an SLA re-route) drops it."""

    by: str
    at: str
    previous: str | None = None
    caller: str | None = None
    note: str | None = None


#: SDRs passed over kept on a routing status (it is on the account and the routing index).
MAX_SKIPPED = 10


@dataclass(frozen=True, slots=True)
class SkippedSdr:
    """An SDR a routing decision passed over and why (inactive, out_of_office, paused,
    at_capacity, tried, owner; `until`: the last day out, or the end of a pause)."""

    sdr: str
    reason: str | None = None
    until: str | None = None


@dataclass(slots=True)
class Assignment:
    """The assignment of an account to an SDR for one qualification cycle: the exactly-once
    guard of routing (written once per cycle, conditionally, with the pool's counter step)
    and the SDR an SLA re-route moves on from."""

    account_id: str
    cycle: int
    sdr: str
    pool: str
    territory: str | None
    mode: str
    routed_at: str
    sla_due_at: str
    attempt: int = 1
    tried: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Feedback:
    """One sales feedback on an account (`POST /v1/accounts/{id}/feedback`), kept as given:
    the outcome, who (`sdr` as sent, `caller` the IAM principal when the request was signed),
    when, the note, the account's cycle, and the state it left the account in. `seq` orders
    an account's feedback (the account version its write produced); `note_digest` lets a
    replay of the same body be recognised from the account alone."""

    account_id: str
    cycle: int
    outcome: str  # accepted | not_ready | disqualified | reset
    sdr: str
    at: str
    note: str | None = None
    caller: str | None = None
    state: str | None = None
    seq: int = 0
    note_digest: str = ""


@dataclass(frozen=True, slots=True)
class SdrPause:
    """A team lead's pause of an SDR (`PUT /v1/sdrs/{sdrId}/availability`): until when
    (`None`: until they are returned), why, when it was set and by which IAM caller."""

    until: str | None
    reason: str | None
    at: str
    by: str | None = None


@dataclass(slots=True)
class SdrRecord:
    """An SDR's record in the table (`SDR#<id>` / `S`): the runtime pause over routing.yaml
    (`version` orders its changes) and the accounts they hold open (`account#cycle`, kept
    from the table's stream)."""

    sdr: str
    pause: SdrPause | None = None
    version: int = 0
    changed_at: str | None = None
    open: set[str] = field(default_factory=set)


@dataclass(slots=True)
class SdrActivity:
    """What GET /v1/sdrs shows of one SDR, read with one Query of their partition: the record,
    the acceptances and SLA breaches (each `(at, account#cycle[#attempt])`, newest kept 31
    days) and the day counts (`n`, capacity) by their local day."""

    record: SdrRecord
    accepted: list[tuple[str, str]] = field(default_factory=list)
    breaches: list[tuple[str, str]] = field(default_factory=list)
    days: dict[date, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BookChange:
    """What one account change means for an SDR's book (from the table's stream, `team.
    book_changes`): an account opened or closed for them, accepted by them, or an SLA they
    let run out. Applying one twice changes nothing (sets and keyed items)."""

    sdr: str
    kind: str  # open | close | accepted | breach
    key: str  # account#cycle (a breach: account#cycle#attempt)
    at: str
