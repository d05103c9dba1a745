"""Sales feedback on an account (`POST /v1/accounts/{accountId}/feedback`, its HTTP side in
`leadscore.adapters.api.feedback`).

PRODUCT "Routing semantics", Feedback:
- `accepted` closes the cycle: state `accepted`, no SLA (off the routing index). Only a
  `routed` account can be accepted.
- `not_ready` recycles a `routed` or `accepted` account: state `recycled`, held until
  `cooldown_days` (routing.yaml) from now, and the engagement it has now (committee bonus
  included, valued as of now) becomes its baseline: it qualifies again only when its score
  minus that baseline crosses `sdr_ready` (accounts.next_state), i.e. with new engagement.
  Its SDR stays on the account, so a re-qualification goes back to them (sticky ownership).
  It is due on the routing index when the cooldown ends: the routing pass values it again
  then (router `_after_cooldown`), so engagement earned during the cooldown counts at once.
- `disqualified` parks any account (`disqualified`: scored, never routed) until `reset`.
- `reset` returns a `disqualified` account to where it stood before: a `not_ready` hold it
  was under (cooldown and baseline, kept through the disqualification) still holds, so it is
  `recycled` again, else `below_threshold`; then it is valued as of now (it may be SDR-ready
  again: a new cycle). A cycle the disqualification closed (routed, accepted) stays closed.

Who (`sdr`): an SDR of routing.yaml, by id or email, kept as their id. Only the SDR who owns
the account now (`Account.sdr`: who has it, or had it last) or a lead (`leads:`) may give
feedback; anyone else is refused (Conflict `not_the_owner`, naming the owner: after an SLA
re-route, the previous SDR is no longer the owner), an unknown name too (Invalid
`unknown_sdr`). An account no SDR ever had is a lead's alone.
The request's IAM caller is kept with each outcome (`by`): `sdr` says for whom, the caller
who sent it.

Every feedback is kept (an item beside the account, `storage.save_feedback`) with the
outcome, the SDR as sent, the IAM caller, the time, the note, the cycle and the state it
left; the read API lists the latest. The feedback item and the account are written in one
transaction conditioned on the account's version, so a concurrent write makes it re-read.
The same body replayed (same outcome, SDR and note, in the same cycle) changes nothing and
answers as the first time (`replayed: true`): the account keeps a digest of its last one.

Bus events come from the table's stream, as every state change's do (accounts.
state_change_events): `Account Recycled` and `Account Disqualified`, with the feedback's
outcome, SDR and time (and the cooldown); `accepted` and `reset` have no event of their own
(a reset that re-qualifies the account gives `Account SDR Ready`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from leadscore.domain.records import Account, Feedback, RoutingStatus, VersionConflict, utc_text
from leadscore.engine.accounts import account_card, effective_traits, rescore_account
from leadscore.services.errors import Busy, Conflict, Invalid
from leadscore.services.lookup import load_account_named

if TYPE_CHECKING:
    from leadscore.rulesfiles.routing import RoutingConfig
    from leadscore.rulesfiles.scoring import ScoringConfig
    from leadscore.services.ports import FeedbackStore

MAX_ATTEMPTS = 5
OUTCOMES = ("accepted", "not_ready", "disqualified", "reset")
#: outcome -> the states it fits
FITS: dict[str, tuple[str, ...]] = {
    "accepted": ("routed",),
    "not_ready": ("routed", "accepted"),
    "disqualified": ("below_threshold", "sdr_ready", "routed", "accepted", "recycled", "excluded"),
    "reset": ("disqualified",),
}


MAX_SDR = 256
MAX_NOTE = 2000


@dataclass(frozen=True)
class FeedbackGiven:
    """A feedback as given: `outcome` (one of OUTCOMES), `sdr` (who it is from: an SDR of
    routing.yaml by id or email, at most MAX_SDR characters), `note` (at most MAX_NOTE)."""

    outcome: str
    sdr: str
    note: str | None = None


class FeedbackConflict(Exception):
    """The outcome does not fit the account's state (refused: Conflict `feedback_conflict`)."""


class NotTheOwner(Exception):
    """The SDR named does not own the account and is not a lead (refused: Conflict
    `not_the_owner` naming `sdr` and the current owner)."""

    def __init__(self, message: str, owner: str | None) -> None:
        super().__init__(message)
        self.owner = owner


def sdr_named(routing: RoutingConfig, name: str) -> str:
    """The id of the routing.yaml SDR `name` names (their id, or their email in any case),
    or Invalid `unknown_sdr` naming `sdr`."""
    if name in routing.sdr_by_id:
        return name
    folded = name.casefold()
    for sdr in routing.sdrs:
        if sdr.email and str(sdr.email).casefold() == folded:
            return sdr.id
    shown = repr(name[:64]) + ("..." if len(name) > 64 else "")
    raise Invalid("unknown_sdr", f"sdr: {shown} is not an SDR of routing.yaml (give their id or email)", field="sdr")


def check_owner(routing: RoutingConfig, account: Account, sdr_id: str) -> None:
    """Raise NotTheOwner unless `sdr_id` owns the account now (`Account.sdr`) or is a lead."""
    owner = (account.sdr or {}).get("id")
    if sdr_id == owner or sdr_id in routing.leads:
        return
    leads = f"a lead ({', '.join(routing.leads)})" if routing.leads else "a lead (routing.yaml `leads`)"
    if owner is None:
        raise NotTheOwner(f"sdr: {sdr_id!r} does not own {account.id!r}: no SDR has had it, so only {leads} "
                          f"may give its feedback", None)
    raise NotTheOwner(f"sdr: {sdr_id!r} does not own {account.id!r}; {owner!r} does: only they or {leads} "
                      f"may give its feedback", str(owner))


@dataclass
class Applied:
    account: Account
    feedback: Feedback
    replayed: bool = False


def note_digest(note: str | None) -> str:
    return hashlib.sha256((note or "").encode("utf-8")).hexdigest()[:16]


def is_replay(account: Account, body: FeedbackGiven) -> bool:
    """The same body as the account's last feedback, in the same cycle (a reset in any
    cycle, as long as the account was not disqualified again since)."""
    last = account.last_feedback
    if last is None or (last.outcome, last.sdr, last.note_digest) != (body.outcome, body.sdr,
                                                                      note_digest(body.note)):
        return False
    if body.outcome == "reset":
        return account.state != "disqualified"
    return last.cycle == int(account.cycle or 0)


def apply_feedback(scoring: ScoringConfig, routing: RoutingConfig, account: Account, body: FeedbackGiven, *,
                   caller: str | None, now: datetime) -> Applied:
    """The account as the feedback leaves it and the feedback record (pure). Raises
    FeedbackConflict when the outcome does not fit the account's state."""
    state = account.state or "below_threshold"
    cycle = int(account.cycle or 0)
    at = utc_text(now)
    if body.outcome not in FITS or state not in FITS[body.outcome]:
        raise FeedbackConflict(_misfit(body.outcome, account.id, state))
    new = replace(account, entries=list(account.entries), traits=dict(account.traits), extra=dict(account.extra),
                  version=int(account.version or 0) + 1, updated_at=at, state_at=now.isoformat())
    routing_done = replace(account.routing, due_at=None) if account.routing is not None else None
    who = f"{body.outcome} from {body.sdr}"
    if body.outcome == "accepted":
        new.state, new.state_why, new.routing = "accepted", f"{who}: cycle {cycle} closed", routing_done
    elif body.outcome == "not_ready":
        card = account_card(scoring, effective_traits(account.traits), account.entries, now)
        until = utc_text(now + timedelta(days=float(routing.cooldown_days)))
        # due on the routing index when the cooldown ends: the routing pass then values the
        # account again, so engagement earned meanwhile qualifies it without waiting for an event
        new.state, new.cooldown_until = "recycled", until
        new.routing = replace(routing_done or RoutingStatus(), due_at=until)
        new.engagement_baseline = round(card.engagement + card.bonus, 2)
        new.state_why = (f"{who}: engagement so far ({new.engagement_baseline:g}) no longer counts; "
                         f"cooldown until {until}")
    elif body.outcome == "disqualified":
        new.state, new.state_why, new.routing = "disqualified", who, routing_done
    else:  # reset: where it stood before the disqualification, then valued as of now
        held = account.cooldown_until is not None or account.engagement_baseline is not None
        new.state = "recycled" if held else "below_threshold"  # a not_ready hold still holds
        cooling = account.cooldown_until is not None and account.cooldown_until > at
        # due on the routing index when a cooldown still running ends, as after not_ready
        new.routing = replace(routing_done or RoutingStatus(), due_at=account.cooldown_until) if cooling \
            else routing_done
        rescore_account(scoring, new, now)
        new.state_at = now.isoformat()
        if new.state in ("below_threshold", "recycled") and held and cooling:
            new.state_why = f"{who}: back under the not_ready cooldown until {account.cooldown_until}"
        elif new.state in ("below_threshold", "recycled"):
            new.state_why = who
        else:
            new.state_why = f"{who}; {new.state_why}"
    feedback = Feedback(account_id=account.id, cycle=cycle, outcome=body.outcome, sdr=body.sdr, at=at,
                        note=body.note, caller=caller, state=new.state, seq=int(new.version or 0),
                        note_digest=note_digest(body.note))
    new.last_feedback = replace(feedback, note=None, caller=None)
    return Applied(new, feedback)


def _misfit(outcome: str, account_id: str, state: str) -> str:
    fits = " or ".join(FITS.get(outcome, ()))
    return f"outcome: {outcome} needs an account that is {fits}; {account_id!r} is {state}"


class FeedbackService:
    """Feedback on a stored account: decided on the account as read, kept with it in one write."""

    def __init__(self, store: FeedbackStore, scoring: ScoringConfig, routing: RoutingConfig,
                 clock: Callable[[], datetime]) -> None:
        self.store = store
        self.scoring = scoring
        self.routing = routing
        self.clock = clock

    def give(self, account_id: str, body: FeedbackGiven, *, caller: str | None) -> Applied:
        """Apply a feedback to the stored account: one read, one transaction (re-read and
        decided again when the account moved on meanwhile). `caller`: the IAM principal who
        sent it. Invalid (an unknown SDR), NotFound (the account), Conflict (not the owner, an
        outcome that does not fit the state), Busy (the account kept changing)."""
        body = replace(body, sdr=sdr_named(self.routing, body.sdr))
        now = self.clock()
        for _ in range(MAX_ATTEMPTS):
            account = load_account_named(self.store.load_account, account_id)
            if is_replay(account, body):
                last = account.last_feedback
                assert last is not None
                return Applied(account, replace(last, note=body.note, caller=caller, state=account.state),
                               replayed=True)
            try:
                check_owner(self.routing, account, body.sdr)
            except NotTheOwner as other:
                raise Conflict("not_the_owner", str(other), field="sdr", owner=other.owner) from None
            try:
                applied = apply_feedback(self.scoring, self.routing, account, body, caller=caller, now=now)
            except FeedbackConflict as misfit:
                raise Conflict("feedback_conflict", str(misfit), field="outcome", state=account.state) from None
            try:
                self.store.save_feedback(applied.feedback, applied.account, account.version)
            except VersionConflict:
                continue  # the aggregation, a route or another feedback wrote it: read again
            return applied
        raise Busy("busy", f"account {account_id!r} kept changing; try again", field="accountId")
