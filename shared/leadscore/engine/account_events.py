"""The bus events of an account's changes (pure): `Account SDR Ready`, `Account Routed`,
`Routing SLA Breached`, `Account Reassigned`, feedback and recycling, each with its detail,
and the Slack strings of those the Slack rule posts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leadscore.domain.records import Account, RoutingStatus
from leadscore.engine.account_views import decision_view
from leadscore.engine.accounts import account_card, effective_traits
from leadscore.engine.slack import SLACK_EVENTS, slack_detail

if TYPE_CHECKING:
    from leadscore.rulesfiles.scoring import ScoringConfig


STATE_EVENTS = {
    "sdr_ready": "Account SDR Ready",
    "recycled": "Account Recycled",
    "disqualified": "Account Disqualified",
    "routed": "Account Routed",
}


def state_change_events(changes: Iterable[tuple[str, Account | None, Account]], now: datetime,
                        scoring: ScoringConfig | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The bus events of a batch's account changes ((key, before, after), in order):
    transitions as they happened, and one coalesced `Account Score Changed` per account.
    The events the Slack rule posts carry a `slack` object (`slack_fields`); with `scoring`
    and an account read in full, its top reasons."""
    events: list[tuple[str, dict[str, Any]]] = []
    first_old: dict[str, Account | None] = {}
    last_new: dict[str, Account] = {}
    for key, old, new in changes:
        first_old.setdefault(key, old)
        last_new[key] = new
        old_state, old_cycle = (old.state, old.cycle) if old is not None else (None, None)
        if new.state != old_state or new.cycle != old_cycle:
            detail_type = STATE_EVENTS.get(str(new.state))
            if detail_type:
                events.append((detail_type, account_detail(new, now, previousState=old_state or "below_threshold",
                                                           **routing_detail(new), **feedback_detail(old, new))))
        elif new.state == "routed" and old is not None and _attempt(new) > _attempt(old) and _by_hand(new):
            # a lead moved it (leadscore.services.assign): the previous and the new SDR, and who did it
            events.append(("Account Reassigned", account_detail(new, now, previousSdr=(old.sdr or {}).get("id"),
                                                                **routing_detail(new))))
        elif new.state == "routed" and old is not None and _attempt(new) > _attempt(old):
            # an SLA re-route: same cycle, the next SDR (the breach said already when it ran
            # out with nobody else available: once per breach)
            previous = (old.sdr or {}).get("id")
            if not _sla_waiting(old):
                events.append(("Routing SLA Breached", account_detail(new, now, previousSdr=previous,
                                                                      **routing_detail(new))))
            events.append(("Account Routed", account_detail(new, now, previousState="routed", previousSdr=previous,
                                                            **routing_detail(new))))
        elif new.state == "routed" and old is not None and _sla_waiting(new) and not _sla_waiting(old):
            # the SLA ran out and nobody else can take it: it stays with its SDR (named once)
            status = new.routing or RoutingStatus()
            events.append(("Routing SLA Breached", account_detail(
                new, now, **routing_detail(new), reroute={"reason": status.waiting, "retryAt": status.retry_at})))
    for key, new in last_new.items():
        before = first_old[key]
        old_score = before.score if before is not None else None
        if new.score != old_score:
            events.append(("Account Score Changed", account_detail(new, now, previousScore=old_score or 0)))
    slack_fields(events, last_new.values(), scoring, now)
    return events


def slack_fields(events: list[tuple[str, dict[str, Any]]], accounts: Iterable[Account],
                 scoring: ScoringConfig | None, now: datetime) -> None:
    """Add `slack` (leadscore.engine.slack) to the details of the events the Slack rule posts, the
    SDR's `slackUserId` under `sdr` when routing.yaml gives one (router.sdr_card)."""

    by_id = {account.id: account for account in accounts}
    for detail_type, detail in events:
        if detail_type not in SLACK_EVENTS:
            continue
        account = by_id.get(detail.get("accountId"))  # type: ignore[arg-type]
        breakdown = None
        if scoring is not None and account is not None and account.entries:
            breakdown = account_card(scoring, effective_traits(account.traits), account.entries, now).breakdown
        detail["slack"] = slack_detail(detail_type, detail, breakdown)


def feedback_detail(old: Account | None, new: Account) -> dict[str, Any]:
    """What a state change caused by sales feedback says of it on the bus: the outcome, the
    SDR who gave it and when (the note stays on the read API), and a recycled account's
    cooldown; nothing for a change the score made."""
    feedback = new.last_feedback
    before = old.last_feedback if old is not None else None
    if feedback is None or (before is not None and before.seq == feedback.seq):
        return {}
    detail: dict[str, Any] = {"feedback": {"outcome": feedback.outcome, "sdr": feedback.sdr, "at": feedback.at,
                                           "cycle": feedback.cycle}}
    if new.state == "recycled" and new.cooldown_until:
        detail["cooldownUntil"] = new.cooldown_until
    return detail


def _attempt(account: Account) -> int:
    return account.routing.attempt if account.routing is not None else 0


def _by_hand(account: Account) -> bool:
    """Its routing now is a lead's reassignment (leadscore.services.assign), not the router's."""
    return account.routing is not None and account.routing.assigned is not None


def _sla_waiting(account: Account) -> bool:
    """Routed, its SLA ran out, and nobody else could take it yet (the breach was announced)."""
    return account.state == "routed" and account.routing is not None and bool(account.routing.waiting)


def routing_detail(account: Account) -> dict[str, Any]:
    """What a routed account's bus events say about its routing: the SDR, the territory and
    pool, the SLA (nothing for an account that is not routed)."""
    status = account.routing
    if account.state != "routed" or status is None or not account.sdr:
        return {}
    detail: dict[str, Any] = {"sdr": account.sdr, "territory": status.territory, "pool": status.pool,
                              "routing": status.mode, "routedAt": status.routed_at, "slaDueAt": status.sla_due_at,
                              "attempt": status.attempt,
            **decision_view(status, (account.sdr or {}).get("id"))}
    if status.assigned is not None:  # a lead's reassignment: who (the note stays on the read API)
        detail["assignedBy"] = status.assigned.by
    return detail


def account_detail(account: Account, now: datetime, **extra: Any) -> dict[str, Any]:
    """The `detail` of an account's state change on the bus (a public interface)."""
    return {
        "accountId": account.id,
        "name": account.name,
        "domain": account.domain,
        "score": account.score,
        "fit": account.fit,
        "engagement": account.engagement,
        "committeeBonus": account.bonus,
        "velocity": account.velocity,
        "threshold": account.threshold,
        "state": account.state,
        "cycle": account.cycle,
        "time": now.isoformat(),
        **extra,
    }
