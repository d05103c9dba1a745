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

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leadscore.domain.records import (
    MAX_SKIPPED,
    UNREADABLE,
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
from leadscore.engine.accounts import effective_traits, rescore_account
from leadscore.engine.routing import (
    AccountTraits,
    PoolChoice,
    RoutingDecision,
    Skip,
    capacity_days,
    choose_sdr,
    match_pool,
    sdr_pools,
)

if TYPE_CHECKING:
    from leadscore.rulesfiles.routing import RoutingConfig, Sdr
    from leadscore.rulesfiles.scoring import ScoringConfig
    from leadscore.services.ports import RoutingStore


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


