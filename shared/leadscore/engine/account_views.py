"""Why an account's routing went where it did, as people read it: the read API's `routing`
object, the routed message's and the bus events' decision fields (pure)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from leadscore.domain.records import Account, RoutingStatus

if TYPE_CHECKING:
    pass


_SKIP_WORDS = {"out_of_office": "out of office", "paused": "paused", "at_capacity": "at daily capacity",
               "tried": "already had it this cycle", "owner": "has it (its SLA ran out)", "inactive": "inactive",
               "unknown": "is no SDR of routing.yaml"}


def _skip_text(sdr: str, reason: str | None, until: str | None) -> str:
    words = _SKIP_WORDS.get(str(reason), str(reason))
    return f"{sdr} {words}" + (f" until {until}" if until else "")


def decision_view(status: RoutingStatus | None, sdr: Any) -> dict[str, Any]:
    """`{"decision": ...}`: why the routing went where it did, as the routing status keeps it
    (the territory matched, or none: the fallback pool; the pool; how the SDR was chosen; each
    SDR passed over and why; the account's CRM owner and why not them), with `text` saying it
    in words. Nothing for a routing kept before decisions were."""
    if status is None or (status.by is None and not status.skipped and status.crm_owner is None):
        return {}
    skipped = [{"sdr": s.sdr, "reason": s.reason, **({"until": s.until} if s.until else {})} for s in status.skipped]
    decision: dict[str, Any] = {"by": status.by, "territory": status.territory, "pool": status.pool,
                                "skipped": skipped}
    if status.skipped_more:
        decision["skippedMore"] = status.skipped_more
    owner = status.crm_owner
    if owner is not None:
        decision["crmOwner"] = {"owner": owner.sdr, "routed": owner.reason is None,
                                **({"reason": owner.reason} if owner.reason else {}),
                                **({"until": owner.until} if owner.until else {})}
    where = (f"territory {status.territory}, pool {status.pool}" if status.territory
             else f"no territory matched: pool {status.pool}" if status.mode == "territory" else f"pool {status.pool}")
    how = {"crm_owner": "the account's owner in the CRM", "previous_owner": "had it before, still in the pool",
           "round_robin": "the pool's weighted round-robin", "assigned": "named by a lead"}
    text = f"{sdr}: {how.get(str(status.by), str(status.by))} ({where})" if status.by else f"nobody yet ({where})"
    passed = [_skip_text(s.sdr, s.reason, s.until) for s in status.skipped]
    if passed:
        text += "; passed over " + ", ".join(passed) + (f" and {status.skipped_more} more" if status.skipped_more
                                                        else "")
    if owner is not None and owner.reason is not None:
        text += "; CRM owner " + _skip_text(owner.sdr, owner.reason, owner.until)
    decision["text"] = text
    return {"decision": decision}


def routing_view(account: Account) -> dict[str, Any] | None:
    """The read API's `routing` object: where the account stands in its cycle's routing
    (waiting for an SDR and why, or routed: to whom, the SLA, who had it this cycle)."""
    status = account.routing
    if account.state == "sdr_ready":
        if status is not None and status.waiting:
            return {"status": "waiting", "reason": status.waiting, "why": status.waiting_reason,
                    "retryAt": status.retry_at, "pool": status.pool, "territory": status.territory,
                    **decision_view(status, None)}
        return {"status": "pending"}
    if account.state in ("routed", "accepted") and status is not None:
        view: dict[str, Any] = {"status": account.state, "pool": status.pool, "territory": status.territory,
                                "routing": status.mode, "routedAt": status.routed_at, "attempt": status.attempt,
                                "tried": list(status.tried),
                                **decision_view(status, (account.sdr or {}).get("id"))}
        if status.assigned is not None:  # a lead chose this routing by hand (leadscore.services.assign)
            hand = status.assigned
            view["assigned"] = {"by": hand.by, "at": hand.at, "previousSdr": hand.previous, "caller": hand.caller,
                                "note": hand.note}
        if account.state == "routed":
            view["slaDueAt"] = status.sla_due_at
            if status.waiting:  # SLA ran out, nobody else available yet
                view["reroute"] = {"reason": status.waiting, "retryAt": status.retry_at}
        return view
    return None
