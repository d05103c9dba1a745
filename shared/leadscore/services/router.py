"""Routing an SDR-ready account to an SDR: the orchestration around the pure choice.

`routing.route` decides (territory, weighted round-robin on the pool's counter, capacity and
absences, sticky ownership, SLA `tried`); this module reads what it needs through the
`ports.RoutingStore`, writes the decision in one transaction, sends the routed message and
keeps the account's routing status. Pure apart from its ports; time is a parameter.

Exactly once, per account and cycle:
- the assignment (account, cycle) is written once, conditionally, in the same transaction as
  the pool's counter step, the SDR's daily count and the account's routing fields. A
  redelivered `Account SDR Ready`, a retry or 20 concurrent deliveries: one of them writes it,
  the others find it (a TransactionConflict makes them re-read) and change nothing;
- the routed message is not sent from here: the transaction is the outbox. The table's stream
  carries the account's change to `routed` (or to the next attempt of an SLA re-route), and
  the aggregate function sends the message from it (`routed_sends`), with `Account Routed` and
  `Routing SLA Breached` on the bus. A crash after the transaction loses nothing (the stream
  keeps the change until it is processed) and needs no second write to say "sent"; a stream
  retry sends again with the same FIFO deduplication id (account + cycle, + the attempt of an
  SLA re-route), which SQS drops within its 5 minutes.

The routing pass (`routing_pass.run_routing_pass`, on a schedule) reads the accounts due on the DueIndex
(partition `ROUTE`): those waiting for an SDR (`retry_at`), those whose SLA ran out (re-routed
to the pool's next SDR, same cycle, a new message), and, as a safety net, every account that
became SDR-ready a little while ago (in case its event was lost). One account at a time:
its pool's counter serializes the pool anyway, and the pass keeps the counters and daily
counts it read and wrote, so it reads about one item per account due.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leadscore.adapters.items import UNREADABLE
from leadscore.domain.records import (
    MAX_SKIPPED,
    Account,
    Assignment,
    CapacityReached,
    PoolMoved,
    RoutingStatus,
    SkippedSdr,
    TransactionConflict,
    VersionConflict,
    utc_text,
)

if TYPE_CHECKING:
    from leadscore.engine.routing import PoolChoice, RoutingDecision, Skip
    from leadscore.rulesfiles.config import ScoringConfig
    from leadscore.rulesfiles.routing import RoutingConfig, Sdr
    from leadscore.services.ports import MessageQueue, RoutingStore

SCHEMA = "account-routed/v1"
#: A burst of routes into one pool races for its counter. Each lost race waits (exponential
#: backoff with full jitter: the n-th wait is uniform in [0, min(cap, base * 2^n)]), then reads
#: what moved and decides again; the tries stop before RETRY_SECONDS, inside the route
#: function's 30 s (template.yaml), so a route that still loses fails cleanly and Lambda
#: retries it. 100 routes at once into one pool: all routed in about 7 s on the local stack,
#: where every DynamoDB call takes its turn (`make bench`).
MAX_ATTEMPTS = 100
RETRY_SECONDS = 25.0
BACKOFF_BASE_SECONDS = 0.1
BACKOFF_CAP_SECONDS = 2.0
_DEDUP_ID = re.compile(r"[!-~]{1,128}")


_sleep = time.sleep  # module-level: tests replace them
_clock = time.monotonic


def backoff(attempt: int, draw: Callable[[], float] = random.random) -> float:
    """Seconds to wait after the `attempt`-th conflict (0-based): full jitter, growing."""
    return draw() * min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** attempt)


def _moment(text: str | None) -> datetime | None:
    """A stored pause end as a moment (None: until returned; unreadable: taken as returned)."""
    from datetime import UTC

    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class RoutingConflict(RuntimeError):
    """The account's routing kept racing other writers; the delivery is retried."""


@dataclass
class RouteOutcome:
    """What one routing step did for an account."""

    account_id: str
    cycle: int | None
    status: str
    """routed | rerouted | already_routed | waiting | not_due | requalified | skipped"""
    sdr: str | None = None
    attempt: int | None = None
    detail: str | None = None


def deduplication_id(account_id: str, cycle: int, attempt: int = 1) -> str:
    """The routed message's FIFO deduplication id: account + cycle (+ attempt after an SLA
    re-route, so the new SDR's message is not taken for the first one). An account id SQS
    would refuse (over 128 characters, or not printable ASCII) is replaced by its hash."""
    text = f"{account_id}#{cycle}" + (f"#{attempt}" if attempt > 1 else "")
    if _DEDUP_ID.fullmatch(text):
        return text
    digest = hashlib.sha256(account_id.encode("utf-8")).hexdigest()[:64]
    return f"sha256:{digest}#{cycle}" + (f"#{attempt}" if attempt > 1 else "")


def routed_message(scoring: ScoringConfig, account: Account, assignment: Assignment, sdr: Mapping[str, Any],
                   now: datetime) -> dict[str, Any]:
    """The body of `account-routed/v1` (PRODUCT.md "The routed queue"), valued as of `now`:
    the reasons are the rules behind the score (points, contact), the contacts the top ones."""
    from leadscore.engine.accounts import account_card, decision_view, effective_traits

    card = account_card(scoring, effective_traits(account.traits), account.entries, now)
    return {
        "schema": SCHEMA,
        "accountId": account.id,
        "accountName": account.name,
        "domain": account.domain,
        "score": card.score,
        "fit": card.fit,
        "engagement": card.engagement,
        "velocity": card.velocity,
        "threshold": scoring.account.thresholds.sdr_ready,
        "sdr": {"id": sdr.get("id"), "name": sdr.get("name"), "email": sdr.get("email")},
        "territory": assignment.territory,
        "routing": assignment.mode,
        "reasons": [{"rule": line["rule"], "points": line["points"], "contactId": line.get("contactId")}
                    for line in card.breakdown],
        "contacts": [{"contactId": c["contactId"], "email": c.get("email"), "title": c.get("title"),
                      "persona": c.get("persona"), "score": c.get("score")} for c in card.contacts],
        "routedAt": assignment.routed_at,
        "slaDueAt": assignment.sla_due_at,
        "cycle": assignment.cycle,
        **decision_view(account.routing, sdr.get("id")),
    }


def why_fields(decision: RoutingDecision) -> dict[str, Any]:
    """What a routing status keeps of why the decision went where it did (RoutingStatus's
    `by`, `skipped`, `skipped_more`, `crm_owner`), the SDRs passed over capped at MAX_SKIPPED."""
    def kept(skip: Skip) -> SkippedSdr:
        until = skip.until.isoformat() if skip.until else utc_text(skip.resumes) if skip.resumes else None
        return SkippedSdr(skip.sdr, skip.reason, until)

    skipped = [kept(s) for s in decision.skipped]
    owner: SkippedSdr | None = None
    if decision.crm_owner is not None:
        known, skip = decision.crm_owner.sdr, decision.crm_owner_skip
        if known is None:  # names nobody of routing.yaml
            owner = SkippedSdr(decision.crm_owner.value, "unknown")
        else:
            owner = SkippedSdr(known) if decision.to_crm_owner or skip is None else kept(skip)
    return {"by": decision.by, "skipped": skipped[:MAX_SKIPPED], "skipped_more": max(0, len(skipped) - MAX_SKIPPED),
            "crm_owner": owner}


def sdr_card(sdr: Sdr) -> dict[str, Any]:
    """The SDR as the account keeps them (and its bus events name them): their Slack member
    id only when routing.yaml gives one (the Slack notifications mention them by it)."""
    card = {"id": sdr.id, "name": sdr.name, "email": sdr.email}
    if sdr.slack_user_id:
        card["slackUserId"] = sdr.slack_user_id
    return card


@dataclass
class _PoolCache:
    """The pool records this router read, kept up to date with its own writes."""

    counters: dict[str, int] = field(default_factory=dict)
    #: pool -> the record's day counts, (SDR, local day) -> assignments
    days: dict[str, dict[tuple[str, Any], int]] = field(default_factory=dict)
    #: pool -> its SDRs' pauses as the record copies them (SDR -> the end, None: until returned)
    pauses: dict[str, dict[str, datetime | None]] = field(default_factory=dict)


class Router:
    """Routes accounts: `route_ready` for an `Account SDR Ready` event, `route_due` for an
    account the routing pass found due. One Router per invocation (it keeps the pool counters
    and daily counts it read and wrote, and its `now`)."""

    def __init__(self, store: RoutingStore, scoring: ScoringConfig, routing: RoutingConfig, now: datetime) -> None:
        self.store = store
        self.scoring = scoring
        self.routing = routing
        self.now = now
        self._cache = _PoolCache()

    # ------------------------------------------------------------------ entry points

    def route_ready(self, account_id: str, cycle: int) -> RouteOutcome:
        """An `Account SDR Ready` for (account, cycle): route it once. Reads: the account and
        its assignment (one request), then the pool's counter (one request; with the day counts
        of the pool's SDRs only after a transaction found one of them full)."""
        account, assignment = self.store.load_routing(account_id, cycle)
        return self._settle(account_id, cycle, account, assignment, read=True, sla=False)

    def route_due(self, account: Account) -> RouteOutcome:
        """An account the routing pass found due (as the index projects it): route it if it
        still waits, re-route it if its SLA ran out, else take it off the index."""
        if UNREADABLE in account.extra:
            raise ValueError(f"{account.id}: the routing index item cannot be read ({account.extra[UNREADABLE]})")
        cycle = int(account.cycle or 0)
        return self._settle(account.id, cycle, account, None, read=False, sla=True)

    # ------------------------------------------------------------------ the loop

    def _settle(self, account_id: str, cycle: int, account: Account | None, assignment: Assignment | None, *,
                read: bool, sla: bool) -> RouteOutcome:
        deadline = _clock() + RETRY_SECONDS
        for attempt in range(MAX_ATTEMPTS):
            try:
                return self._step(account_id, cycle, account, assignment, read=read, sla=sla)
            except CapacityReached:
                continue  # only the SDR's day count refused: what was read still holds; choose again
            except (TransactionConflict, VersionConflict) as conflict:
                # Another route took the pool's turn (PoolMoved: only the counter moved), or
                # someone routed or wrote the account since we read. A burst into one pool races
                # for its counter: wait a random, growing while (full jitter) so the racers spread
                # out, then read again (consistently) what may have moved (the pool record alone
                # after a PoolMoved) and decide again
                pause = backoff(attempt)
                if attempt + 1 == MAX_ATTEMPTS or _clock() + pause > deadline:
                    break
                _sleep(pause)
                if not isinstance(conflict, PoolMoved):
                    account, assignment = self.store.load_routing(account_id, cycle)
                    read = True
        raise RoutingConflict(f"routing {account_id} (cycle {cycle}) kept conflicting")

    def _step(self, account_id: str, cycle: int, account: Account | None, assignment: Assignment | None, *,
              read: bool, sla: bool) -> RouteOutcome:
        if account is None:
            return RouteOutcome(account_id, cycle, "skipped", detail="unknown account")
        if int(account.cycle or 0) != cycle:
            return RouteOutcome(account_id, cycle, "skipped", detail=f"the account is in cycle {account.cycle}")
        if account.state == "sdr_ready":
            if assignment is not None:
                return RouteOutcome(account_id, cycle, "already_routed", assignment.sdr, assignment.attempt)
            return self._first_route(account)
        if account.state == "routed":
            status = account.routing
            if sla and status is not None and status.sla_due_at and status.sla_due_at <= utc_text(self.now):
                if status.due_at and status.due_at > utc_text(self.now):
                    return RouteOutcome(account_id, cycle, "not_due", (account.sdr or {}).get("id"))
                return self._reroute(account)
            return RouteOutcome(account_id, cycle, "already_routed", (account.sdr or {}).get("id"),
                                status.attempt if status else None)
        if sla and account.state == "recycled":  # (the index does not project the cooldown)
            return self._after_cooldown(account_id, cycle)
        if sla and account.routing is not None and account.routing.due_at:
            # left sdr_ready / routed (accepted, recycled...) while on the index: take it off
            self.store.save_routing_status(replace(account, routing=replace(account.routing, due_at=None)),
                                           expected_state=str(account.state))
        return RouteOutcome(account_id, cycle, "skipped", detail=f"state {account.state}")

    def _after_cooldown(self, account_id: str, cycle: int) -> RouteOutcome:
        """A `not_ready` account whose cooldown ended: valued again as of now (the index's
        copy is partial: the whole account is read first). Engagement earned since the
        feedback, net of its baseline, may qualify it: `sdr_ready` in a new cycle, written
        with a version check; the stream then says `Account SDR Ready` and the route
        function sends it back to its SDR. Otherwise it leaves the index until an event
        re-scores it."""
        from leadscore.engine.accounts import rescore_account

        account, _ = self.store.load_routing(account_id, cycle)
        if account is None or account.state != "recycled":
            return RouteOutcome(account_id, cycle, "skipped", detail="no longer recycled")
        if not account.cooldown_until:  # recycled by its score while on the index: take it off
            off = replace(account, routing=replace(account.routing or RoutingStatus(), due_at=None))
            self.store.save_routing_status(off, expected_state="recycled")
            return RouteOutcome(account_id, cycle, "skipped", detail="state recycled")
        if account.cooldown_until > utc_text(self.now):
            return RouteOutcome(account_id, cycle, "not_due", detail=f"cooldown until {account.cooldown_until}")
        rescored = replace(account, entries=list(account.entries), traits=dict(account.traits),
                           extra=dict(account.extra))
        rescore_account(self.scoring, rescored, self.now)
        if rescored.state == "sdr_ready":
            rescored.version = int(account.version or 0) + 1
            rescored.updated_at = utc_text(self.now)
            self.store.save_account(rescored, account.version)
            return RouteOutcome(account_id, int(rescored.cycle or 0), "requalified",
                                (account.sdr or {}).get("id"), detail=rescored.state_why)
        off = replace(account, routing=replace(account.routing or RoutingStatus(), due_at=None))
        self.store.save_routing_status(off, expected_state="recycled")
        return RouteOutcome(account_id, cycle, "skipped", detail="cooldown over, not SDR-ready")

    # ------------------------------------------------------------------ choosing

    def _decide(self, account: Account, *, previous_owner: str | None,
                tried: list[str]) -> tuple[PoolChoice, RoutingDecision]:
        from leadscore.engine.accounts import effective_traits
        from leadscore.engine.routing import AccountTraits, capacity_days, choose_sdr, match_pool

        traits = AccountTraits.from_traits(account.id, effective_traits(account.traits))
        choice = match_pool(self.routing, traits)
        cache, key = self._cache, choice.counter_key
        # One read of one item whatever the pool's size: the pool record holds the counter and
        # the day counts of its SDRs (every routing transaction adds to them, in the record of
        # each pool the SDR is in), so a full SDR is skipped without a refused transaction.
        # The SDR's own day count stays the guard in the transaction. A lead's pause of an SDR
        # is copied into the record of each pool they are in (leadscore.services.team): no read either.
        if key not in cache.counters:
            pauses: dict[str, str | None] = {}
            counter, counts = self.store.load_pool_state(key, capacity_days(self.routing, choice, self.now),
                                                         pauses=pauses)
            cache.counters[key], cache.days[key] = counter or 0, counts
            cache.pauses[key] = {sdr: _moment(until) for sdr, until in pauses.items()}
        owner_counts, owner_pause = self._owner_outside(choice)
        decision = choose_sdr(self.routing, choice, counter=cache.counters[key],
                              assignments={**cache.days[key], **owner_counts},
                              now=self.now, previous_owner=previous_owner, tried=tried,
                              paused={**cache.pauses.get(key, {}), **owner_pause})
        return choice, decision

    def _owner_outside(self, choice: PoolChoice
                       ) -> tuple[dict[tuple[str, Any], int], dict[str, datetime | None]]:
        """The CRM owner's day count and pause when they are not of the account's pool (else the
        pool's record has them): from the record of a pool they are in (read once, kept like any
        pool read); an owner in no pool (a lead) from her own day count and record (one read)."""
        from leadscore.engine.routing import sdr_pools

        owner = self.routing.sdr_by_id.get(choice.crm_owner.sdr or "") if choice.crm_owner else None
        if owner is None or owner.id in choice.sdrs:
            return {}, {}
        pair, cache = (owner.id, owner.local_day(self.now)), self._cache
        pools = sdr_pools(self.routing, owner.id)
        pool = next((p for p in pools if p in cache.days), pools[0] if pools else None)
        if pool is None:
            own: dict[str, str | None] = {}
            count = self.store.load_pool_state(None, [pair], pauses=own)[1].get(pair, 0)
            return {pair: count}, {sdr: _moment(until) for sdr, until in own.items()}
        if pool not in cache.days:
            pauses: dict[str, str | None] = {}
            counter, counts = self.store.load_pool_state(pool, [pair], pauses=pauses)
            cache.counters[pool], cache.days[pool] = counter or 0, counts
            cache.pauses[pool] = {sdr: _moment(until) for sdr, until in pauses.items()}
        paused = cache.pauses.get(pool, {})
        return {pair: cache.days[pool].get(pair, 0)}, ({owner.id: paused[owner.id]} if owner.id in paused else {})

    def _forget(self, choice: PoolChoice) -> None:
        self._cache.counters.pop(choice.counter_key, None)
        self._cache.days.pop(choice.counter_key, None)

    def _stale_days(self, choice: PoolChoice) -> list[tuple[str, Any]]:
        """The day counts of the pool record that no longer matter: days before each SDR's
        local today, SDRs no longer in the pool (removed by the next routing transaction)."""
        members = set(choice.sdrs)
        by_id = self.routing.sdr_by_id
        return [(sdr_id, day) for sdr_id, day in self._cache.days.get(choice.counter_key, {})
                if sdr_id not in members or sdr_id not in by_id or day < by_id[sdr_id].local_day(self.now)]

    def _first_route(self, account: Account) -> RouteOutcome:
        previous = (account.sdr or {}).get("id")
        choice, decision = self._decide(account, previous_owner=previous, tried=[])
        if decision.sdr is None:
            return self._wait(account, decision, expected_state="sdr_ready")
        return self._write(account, choice, decision, tried=[], previous_attempt=None)

    def _reroute(self, account: Account) -> RouteOutcome:
        status = account.routing or RoutingStatus()
        current = (account.sdr or {}).get("id")
        tried = list(dict.fromkeys([*status.tried, *([current] if current else [])]))
        # the owner, in `tried`, is never chosen again: nobody else available, it stays theirs
        choice, decision = self._decide(account, previous_owner=current, tried=tried)
        if decision.sdr is None:
            return self._wait(account, decision, expected_state="routed")
        return self._write(account, choice, decision, tried=tried, previous_attempt=status.attempt or 1)

    # ------------------------------------------------------------------ writing

    def _write(self, account: Account, choice: PoolChoice, decision: RoutingDecision, *, tried: list[str],
               previous_attempt: int | None) -> RouteOutcome:
        sdr = decision.sdr
        assert sdr is not None and decision.day is not None
        now = utc_text(self.now)
        attempt = (previous_attempt or 0) + 1
        assignment = Assignment(
            account_id=account.id, cycle=int(account.cycle or 0), sdr=sdr.id, pool=decision.pool,
            territory=decision.territory, mode=decision.routing, routed_at=now,
            sla_due_at=utc_text(self.routing.sla_due(sdr, self.now)), attempt=attempt,
            tried=list(dict.fromkeys([*tried, sdr.id])))
        how = "SLA re-route" if previous_attempt else (
            "CRM owner" if decision.to_crm_owner else "previous owner" if decision.sticky else "round-robin")
        routed = replace(
            account, state="routed", sdr=sdr_card(sdr), updated_at=now,
            state_at=account.state_at if previous_attempt else now,
            state_why=f"routed to {sdr.id} ({how}, pool {decision.pool})",
            routing=RoutingStatus(pool=decision.pool, territory=decision.territory, mode=decision.routing,
                                  routed_at=assignment.routed_at, sla_due_at=assignment.sla_due_at,
                                  attempt=attempt, tried=assignment.tried, due_at=assignment.sla_due_at,
                                  **why_fields(decision)))
        from leadscore.engine.routing import sdr_pools

        counter = (choice.counter_key, decision.counter, decision.counter_next) if decision.counter_step else None
        pool_key, day = choice.counter_key, decision.day
        # the day count goes in the record of each pool the SDR is in (the CRM owner, or an
        # SDR a lead chose, may be of none of the account's pool)
        tally = list(dict.fromkeys([*([pool_key] if sdr.id in choice.sdrs else []),
                                    *sdr_pools(self.routing, sdr.id)]))
        stale = self._stale_days(choice)
        cache = self._cache
        try:
            self.store.save_assignment(assignment, routed, expected_state=str(account.state), counter=counter,
                                       capacity=sdr.daily_capacity, day=day, previous_attempt=previous_attempt,
                                       pool=pool_key, tally=tally, stale=stale)
        except CapacityReached:  # the pool records now say so; nothing else moved
            for known in (cache.days[p] for p in tally if p in cache.days):
                known[(sdr.id, day)] = max(known.get((sdr.id, day), 0), sdr.daily_capacity or 0)
            raise
        except TransactionConflict:
            self._forget(choice)
            raise
        if counter is not None:
            cache.counters[pool_key] = decision.counter_next
        for stale_day in stale:
            cache.days[pool_key].pop(stale_day, None)
        for known in (cache.days[p] for p in tally if p in cache.days):
            known[(sdr.id, day)] = known.get((sdr.id, day), 0) + 1
        return RouteOutcome(account.id, assignment.cycle, "rerouted" if previous_attempt else "routed", sdr.id,
                            attempt)

    def _wait(self, account: Account, decision: RoutingDecision, *, expected_state: str) -> RouteOutcome:
        """Nobody can take the account now: keep it (with its SDR, for an SLA re-route) and
        say why. It stays due from the moment it started waiting, so every pass values it
        again with the config and counts of the time: an SDR added, back early or given more
        capacity takes it at the next pass (PRODUCT: "as soon as one is"), not at a date
        fixed now. `retry_at` only says when someone is known to be back. A pass that finds
        nothing changed writes nothing (the status it would write is the one it read)."""
        now = utc_text(self.now)
        before = account.routing or RoutingStatus()
        base = before if expected_state == "routed" else RoutingStatus(**why_fields(decision))
        since = before.due_at if before.waiting and before.due_at and before.due_at <= now else now
        status = replace(base, pool=decision.pool, territory=decision.territory, mode=decision.routing,
                         waiting=decision.explanation, waiting_reason=decision.reason,
                         retry_at=utc_text(decision.retry_at) if decision.retry_at else None, due_at=since)
        if status != account.routing:
            waiting = replace(account, routing=status, updated_at=utc_text(self.now),
                              state_why=decision.explanation if expected_state == "sdr_ready" else account.state_why)
            self.store.save_routing_status(waiting, expected_state=expected_state)
        return RouteOutcome(account.id, int(account.cycle or 0), "waiting", (account.sdr or {}).get("id")
                            if expected_state == "routed" else None, detail=decision.explanation)

    # ------------------------------------------------------------------ a lead's hand

    def route_by_hand(self, account: Account, to: Sdr | None) -> RouteOutcome:
        """A lead's reassignment (leadscore.services.assign), written as every routing is (`_write`: one
        transaction, the outbox's message from the stream). A `routed` account moves to the
        next attempt of its cycle: to `to`, or with None to its pool's next SDR by the weighted
        round-robin (the counter steps), never its owner, those who had it this cycle only when
        nobody else is available. An `sdr_ready` account is routed to `to` (its cycle's first
        routing). `to` takes no counter step. Nobody available: "waiting", nothing written.
        Conflicts are raised (the caller reads the account again)."""
        from leadscore.engine.accounts import effective_traits
        from leadscore.engine.routing import AccountTraits, RoutingDecision, match_pool

        routed = account.state == "routed"
        status = account.routing or RoutingStatus()
        current = (account.sdr or {}).get("id") if routed else None
        tried = list(dict.fromkeys([*status.tried, *([current] if current else [])])) if routed else []
        previous_attempt = (status.attempt or 1) if routed else None
        if to is None:
            choice, decision = self._decide(account, previous_owner=current, tried=tried)
            if decision.sdr is None:
                return RouteOutcome(account.id, int(account.cycle or 0), "waiting", current,
                                    detail=decision.explanation)
        else:
            choice = match_pool(self.routing, AccountTraits.from_traits(account.id, effective_traits(account.traits)))
            decision = RoutingDecision(routing=choice.routing, pool=choice.pool, territory=choice.territory, sdr=to,
                                       reason=None, counter=0, counter_step=0, day=to.local_day(self.now))
        return self._write(account, choice, decision, tried=tried, previous_attempt=previous_attempt)


# ---------------------------------------------------------------------- the outbox

#: SQS's (and PRODUCT's) limit on a routed message body, in UTF-8 bytes.
SQS_MAX_BYTES = 256 * 1024
#: The routed body is trimmed to this, so that its parked envelope fits SQS_MAX_BYTES too.
MAX_BODY_BYTES = SQS_MAX_BYTES - 4096
#: Tries of one send in the invocation before it is parked (transient errors only).
SEND_TRIES = 3
PARKED_SCHEMA = "routed-send-parked/v1"
#: What SQS refuses in a body: anything outside #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD
#: #x10000-#x10FFFF. In JSON text from json.dumps such a character can only sit in a string
#: (controls below #x20 are escaped already); lone surrogates (#xD800-#xDFFF) included.
_SQS_REFUSED = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEXT_CAP = 1024  # characters kept of a long free-text field when the lists alone cannot make room


class SendRefused(Exception):
    """The queue refused this message itself (its contents, its size): trying the same body
    again cannot help, so it is parked at once. Any other send error is taken as transient."""


@dataclass(frozen=True)
class RoutedSend:
    """One routed message owed to the queue (and which routing it is: account, cycle, attempt)."""

    body: dict[str, Any]
    group_id: str
    deduplication_id: str
    account_id: str = ""
    cycle: int = 0
    attempt: int = 1


def sqs_text(value: Any) -> str:
    """`value` as JSON that SQS accepts: UTF-8 where it can (half the bytes of ASCII escapes
    for most scripts), a `\\u` escape (four hex digits) for each character SQS refuses (U+FFFE, U+FFFF, a
    lone surrogate). Lossless: a JSON parser reads back exactly `value`."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return _SQS_REFUSED.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _size(value: Any) -> int:
    return len(sqs_text(value).encode("utf-8", "surrogatepass"))


def fit_body(body: dict[str, Any], limit: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The routed body within `limit` bytes. Too big (an account with very many reasons or
    long contact fields): `reasons` then `contacts` are cut from their end (the lowest-ranked
    ones) and `omitted` says how many of each were left out; if that is not enough, long text
    fields are cut to their first characters too (`omitted.text`). Unchanged when it fits."""
    if _size(body) <= limit:
        return body
    fitted = dict(body)
    omitted: dict[str, int] = {}
    for key in ("reasons", "contacts"):
        items = list(fitted.get(key) or [])
        if not items:
            continue
        fitted["omitted"] = {**omitted, key: len(items)}
        fitted[key] = []
        if _size(fitted) > limit:  # not even with none of them: drop them all, try the next list
            omitted[key] = len(items)
            continue
        low, high = 0, len(items)  # the most of them that fit: keep[:low] fits, keep[:high+1] does not
        while low < high:
            middle = (low + high + 1) // 2
            fitted["omitted"] = {**omitted, key: len(items) - middle}
            fitted[key] = items[:middle]
            if _size(fitted) <= limit:
                low = middle
            else:
                high = middle - 1
        fitted[key] = items[:low]
        fitted["omitted"] = {**omitted, key: len(items) - low}
        return fitted
    fitted["omitted"] = {**omitted, "text": _TEXT_CAP}
    return _cap_text(fitted, _TEXT_CAP)


def _cap_text(value: Any, cap: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= cap else value[:cap]
    if isinstance(value, dict):
        return {k: (v if k in ("accountId", "schema") else _cap_text(v, cap)) for k, v in value.items()}
    if isinstance(value, list):
        return [_cap_text(v, cap) for v in value]
    return value


def routed_sends(scoring: ScoringConfig, changes: Iterable[tuple[Account | None, Account]]) -> list[RoutedSend]:
    """The routed messages a stream batch's account changes owe, in order: one each time an
    account became `routed` (a new cycle) or moved to the next attempt of an SLA re-route.
    The message is valued as of the routing (`routedAt`), so a retry builds the same body;
    it is always sendable (`sqs_text`, `fit_body`)."""
    sends: list[RoutedSend] = []
    for old, new in changes:
        status = new.routing
        if new.state != "routed" or status is None or not new.sdr or not status.routed_at:
            continue
        if (old is not None and old.state == "routed" and old.cycle == new.cycle
                and (old.routing.attempt if old.routing else 0) >= status.attempt):
            continue  # the same routing, rewritten (a waiting note, a score change)
        cycle = int(new.cycle or 0)
        sdr_id = str(new.sdr.get("id"))
        assignment = Assignment(account_id=new.id, cycle=cycle, sdr=sdr_id, pool=status.pool or "",
                                territory=status.territory, mode=status.mode or "", routed_at=status.routed_at,
                                sla_due_at=status.sla_due_at or "", attempt=status.attempt or 1,
                                tried=list(status.tried))
        routed_at = datetime.fromisoformat(status.routed_at.replace("Z", "+00:00"))
        body = fit_body(routed_message(scoring, new, assignment, new.sdr, routed_at))
        sends.append(RoutedSend(body, sdr_id, deduplication_id(new.id, cycle, assignment.attempt),
                                account_id=new.id, cycle=cycle, attempt=assignment.attempt))
    return sends


def send_routed(queue: MessageQueue, sends: Iterable[RoutedSend]) -> int:
    """Send what the outbox owes, in order, all or nothing (a failure stops here). The
    aggregate function uses `deliver_routed`, where each send stands alone."""
    count = 0
    for send in sends:
        queue.send(send.body, group_id=send.group_id, deduplication_id=send.deduplication_id)
        count += 1
    return count


@dataclass
class Delivery:
    """What `deliver_routed` did with each send."""

    sent: list[RoutedSend] = field(default_factory=list)
    parked: list[RoutedSend] = field(default_factory=list)
    #: neither sent nor parked (no parking queue, or it failed too): the caller reports them
    failed: list[RoutedSend] = field(default_factory=list)


def deliver_routed(queue: MessageQueue, sends: Iterable[RoutedSend], *, parking: MessageQueue | None,
                   tries: int = SEND_TRIES, pause: Callable[[int], None] | None = None) -> Delivery:
    """Send each routed message on its own: one that fails never holds back the others. A
    transient error is tried again (`tries` in all, `pause(n)` between); one that still fails,
    or that the queue refused (`SendRefused`), is parked alone on `parking` with why (same
    group and deduplication id, so a stream retry parking it again is dropped)."""
    delivery = Delivery()
    for send in sends:
        error = _send(queue, send, tries, pause)
        if error is None:
            delivery.sent.append(send)
            continue
        if parking is None:
            delivery.failed.append(send)
            continue
        try:
            parking.send(parked_envelope(send, _reason(error)), group_id=send.group_id,
                         deduplication_id=send.deduplication_id)
        except Exception:  # noqa: BLE001 - not even parked: the caller has the stream retry it
            delivery.failed.append(send)
        else:
            delivery.parked.append(send)
    return delivery


def _send(queue: MessageQueue, send: RoutedSend, tries: int, pause: Callable[[int], None] | None
          ) -> Exception | None:
    for attempt in range(max(1, tries)):
        try:
            queue.send(send.body, group_id=send.group_id, deduplication_id=send.deduplication_id)
            return None
        except SendRefused as refused:
            return refused
        except Exception as error:  # noqa: BLE001 - throttling, a timeout, a 5xx: try again, then park
            if attempt == max(1, tries) - 1:
                return error
            if pause is not None:
                pause(attempt)
    return None


def _reason(error: Exception) -> str:
    """Why a send failed, for the operator: the error's type and code, never its text (it may
    quote the body: names, emails)."""
    code = getattr(error, "response", {}).get("Error", {}).get("Code") if hasattr(error, "response") else None
    return f"{type(error).__name__}: {code}" if code else type(error).__name__


def parked_envelope(send: RoutedSend, reason: str) -> dict[str, Any]:
    """The parked queue's body (routed-send-parked/v1): the routed message as it was owed."""
    return {"schema": PARKED_SCHEMA, "accountId": send.account_id, "cycle": send.cycle, "attempt": send.attempt,
            "groupId": send.group_id, "deduplicationId": send.deduplication_id, "reason": reason[:500],
            "message": send.body}


def parked_send(envelope: Mapping[str, Any]) -> RoutedSend:
    """The routed send a parked envelope holds (ValueError when it is not one)."""
    if envelope.get("schema") != PARKED_SCHEMA or not isinstance(envelope.get("message"), dict):
        raise ValueError("not a routed-send-parked/v1 body")
    return RoutedSend(dict(envelope["message"]), str(envelope["groupId"]), str(envelope["deduplicationId"]),
                      account_id=str(envelope["accountId"]), cycle=int(envelope["cycle"]),
                      attempt=int(envelope["attempt"]))


def still_owed(account: Account | None, send: RoutedSend) -> str | None:
    """None when `account` is still in the routing `send` announces (routed, same cycle and
    attempt, same SDR); else why it is not (the message would tell an SDR about an account
    that is no longer theirs, or no longer waiting for them)."""
    if account is None:
        return "the account no longer exists"
    owner = (account.sdr or {}).get("id")
    attempt = (account.routing.attempt if account.routing else 0) or 1
    current = deduplication_id(account.id, int(account.cycle or 0), attempt)
    if account.state != "routed":
        return f"the account is {account.state} now"
    if current != send.deduplication_id or owner != send.group_id:
        return f"the account was routed again since (cycle {account.cycle}, attempt {attempt}, SDR {owner})"
    return None
