"""The router on the in-memory fakes: exactly once per account and cycle, crash recovery,
no SDR available, SLA re-routes and the routing pass. No moto.

The routed messages come from the outbox stage (`MemoryOutbox`, what the aggregate function
does on the table's stream), drained after each routing step as the stream would be."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from leadscore.domain.records import Account, RoutingStatus, utc_text
from leadscore.rulesfiles.loading import load_config
from leadscore.rulesfiles.routing import RoutingConfig
from leadscore.services.outbox import deduplication_id
from leadscore.services.router import RouteOutcome, Router
from leadscore.services.routing_pass import run_routing_pass

from tests.support.fakes import MemoryOutbox, MemoryQueue, MemoryStore

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday


def sdr(sdr_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": sdr_id, "name": sdr_id.title(), "email": f"{sdr_id}@example.com", **extra}


def routing(*sdrs: dict[str, Any], **extra: Any) -> RoutingConfig:
    pools = [{"id": "team", "sdrs": [s["id"] for s in sdrs]}]
    data: dict[str, Any] = {"version": 1, "sdrs": list(sdrs), "pools": pools, "fallback_pool": "team", **extra}
    return RoutingConfig.model_validate(data)


TEAM = routing(sdr("ana"), sdr("ben"), sdr("cy"))


def ready(store: MemoryStore, account_id: str = "acme.com", cycle: int = 1, **extra: Any) -> Account:
    account = Account(id=account_id, version=3, state="sdr_ready", cycle=cycle, name=account_id.split(".")[0].title(),
                      domain=account_id, traits={"group": {"industry": "Software", "address": {"country": "US"}}},
                      **extra)
    store.accounts[account_id] = account
    return account


_OUTBOXES: dict[tuple[int, int], MemoryOutbox] = {}


def outbox(store: MemoryStore, queue: MemoryQueue) -> MemoryOutbox:
    key = (id(store), id(queue))
    if key not in _OUTBOXES:
        _OUTBOXES[key] = MemoryOutbox(store, queue, load_config().scoring)
    return _OUTBOXES[key]


class StreamedRouter(Router):
    """The router, and the stream's outbox stage right after each routing step."""

    def __init__(self, store: MemoryStore, queue: MemoryQueue, cfg: RoutingConfig, now: datetime) -> None:
        super().__init__(store, load_config().scoring, cfg, now)
        self.outbox = outbox(store, queue)

    def route_ready(self, account_id: str, cycle: int) -> RouteOutcome:
        outcome = super().route_ready(account_id, cycle)
        self.outbox.drain()
        return outcome

    def route_due(self, account: Account) -> RouteOutcome:
        outcome = super().route_due(account)
        self.outbox.drain()
        return outcome


def router(store: MemoryStore, queue: MemoryQueue, cfg: RoutingConfig = TEAM, now: datetime = NOW) -> Router:
    return StreamedRouter(store, queue, cfg, now)


class TestExactlyOnce:
    def test_an_sdr_ready_account_is_routed_with_one_message_and_one_counter_step(self) -> None:
        store, queue = MemoryStore(), MemoryQueue()
        ready(store)
        outcome = router(store, queue).route_ready("acme.com", 1)
        assert (outcome.status, outcome.sdr) == ("routed", "ana")
        (message,) = queue.messages
        assert message.group_id == "ana" and message.deduplication_id == "acme.com#1"
        body = message.body
        assert body["schema"] == "account-routed/v1" and body["cycle"] == 1
        assert body["sdr"] == {"id": "ana", "name": "Ana", "email": "ana@example.com"}
        assert body["routedAt"] == "2026-11-23T10:00:00Z" and body["slaDueAt"] == "2026-11-25T10:00:00Z"
        assert set(body) == {"schema", "accountId", "accountName", "domain", "score", "fit", "engagement", "velocity",
                             "threshold", "sdr", "territory", "routing", "reasons", "contacts", "routedAt",
                             "slaDueAt", "cycle", "decision"}
        assert body["decision"]["by"] == "round_robin" and body["decision"]["pool"] == "team"
        assert round(sum(r["points"] for r in body["reasons"]), 2) == body["score"]
        assert store.counters == {"team": 1}
        account = store.accounts["acme.com"]
        assert account.state == "routed" and account.sdr == {"id": "ana", "name": "Ana", "email": "ana@example.com"}
        assert account.routing is not None and account.routing.due_at == "2026-11-25T10:00:00Z"
        assert store.calls["save_assignment"] == 1 and "save_routing_status" not in store.calls

    def test_the_same_event_twenty_times_routes_once(self) -> None:
        store, queue = MemoryStore(), MemoryQueue()
        ready(store)
        outcomes = [router(store, queue).route_ready("acme.com", 1).status for _ in range(20)]
        assert outcomes == ["routed"] + ["already_routed"] * 19
        assert len(queue.messages) == 1 and queue.sends == 1
        assert store.counters == {"team": 1}

    def test_twenty_concurrent_deliveries_route_once(self) -> None:
        store, queue = MemoryStore(), MemoryQueue()
        ready(store)
        barrier = threading.Barrier(20)
        outcomes: list[str] = []

        def deliver() -> None:
            barrier.wait()
            outcomes.append(router(store, queue).route_ready("acme.com", 1).status)

        threads = [threading.Thread(target=deliver) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert Counter(outcomes)["routed"] == 1
        assert len(queue.messages) == 1 and store.counters == {"team": 1}
        assert sum(store.sdr_days.values()) <= 1 or store.sdr_days == {}

    def test_a_race_lost_to_another_delivery_rereads_and_changes_nothing(self) -> None:
        store, queue = MemoryStore(), MemoryQueue()
        ready(store)
        store.before_transaction = lambda: router(store, queue).route_ready("acme.com", 1)
        outcome = router(store, queue).route_ready("acme.com", 1)
        assert outcome.status == "already_routed" and outcome.sdr == "ana"
        assert len(queue.messages) == 1 and store.counters == {"team": 1}

    def test_a_crash_after_the_transaction_still_sends_once_to_the_same_sdr(self) -> None:
        store, queue = MemoryStore(), MemoryQueue(fail=1)
        ready(store)
        # the route function dies right after its transaction: the stream still has the change
        assert Router(store, load_config().scoring, TEAM, NOW).route_ready("acme.com", 1).status == "routed"
        stream = outbox(store, queue)
        with pytest.raises(RuntimeError):
            stream.drain()  # and the first attempt to send fails too
        assert queue.messages == []
        # Lambda's retry of the event finds the assignment; the stream's retry sends the message
        retried = router(store, queue, now=NOW + timedelta(seconds=30)).route_ready("acme.com", 1)
        assert (retried.status, retried.sdr) == ("already_routed", "ana")
        (message,) = queue.messages
        assert message.deduplication_id == "acme.com#1" and message.group_id == "ana"
        assert message.body["routedAt"] == "2026-11-23T10:00:00Z" and message.body["sdr"]["id"] == "ana"
        assert store.counters == {"team": 1}
        assert stream.drain() == 0 and len(queue.messages) == 1

    def test_a_stream_retry_of_a_sent_change_is_dropped_by_the_fifo_deduplication(self) -> None:
        store, queue = MemoryStore(), MemoryQueue()
        ready(store)
        router(store, queue).route_ready("acme.com", 1)
        stream = outbox(store, queue)
        stream.position = 0  # the batch is delivered again (a crash after the send)
        stream.drain()
        assert queue.sends == 2 and len(queue.messages) == 1

    def test_a_stale_event_of_an_earlier_cycle_changes_nothing(self) -> None:
        store, queue = MemoryStore(), MemoryQueue()
        ready(store, cycle=2)
        assert router(store, queue).route_ready("acme.com", 1).status == "skipped"
        assert router(store, queue).route_ready("nobody.com", 1).status == "skipped"
        assert queue.messages == []


class TestFairnessAndStickiness:
    def test_thirty_accounts_to_three_equal_sdrs_give_ten_each(self) -> None:
        store, queue = MemoryStore(), MemoryQueue()
        for i in range(30):
            ready(store, f"a{i}.com")
            router(store, queue).route_ready(f"a{i}.com", 1)
        assert Counter(m.group_id for m in queue.messages) == {"ana": 10, "ben": 10, "cy": 10}
        assert store.counters == {"team": 30}

    def test_a_requalified_account_goes_back_to_its_last_sdr_without_a_counter_step(self) -> None:
        store, queue = MemoryStore(), MemoryQueue()
        ready(store, "other.com")
        router(store, queue).route_ready("other.com", 1)  # ana
        ready(store, cycle=2, sdr={"id": "cy", "name": "Cy", "email": "cy@example.com"})
        outcome = router(store, queue).route_ready("acme.com", 2)
        assert outcome.sdr == "cy" and store.counters == {"team": 1}
        assert queue.messages[-1].deduplication_id == "acme.com#2"


class TestCapacity:
    """Capacity is guarded by the transaction (a condition on the SDR's day count), so a route
    reads only the pool's counter, whatever the pool's size, until an SDR is found full."""

    @pytest.mark.parametrize("team_size", [3, 30])
    def test_a_route_reads_the_counter_alone_whatever_the_pool_size(self, team_size: int) -> None:
        team = routing(*(sdr(f"s{i:02d}", daily_capacity=5) for i in range(team_size)))
        store, queue = MemoryStore(), MemoryQueue()
        for i in range(6):
            ready(store, f"a{i}.com")
            router(store, queue, team).route_ready(f"a{i}.com", 1)
        assert len(queue.messages) == 6
        assert store.calls["pool_keys_read"] == 6  # one key per route: the counter

    def test_a_full_sdr_costs_one_failed_transaction_then_the_day_counts_are_read(self) -> None:
        team = routing(sdr("ana", daily_capacity=1), sdr("ben", daily_capacity=5))
        store, queue = MemoryStore(), MemoryQueue()
        store.sdr_days[("ana", NOW.date())] = 1  # ana already got her one account today
        ready(store)
        outcome = router(store, queue, team).route_ready("acme.com", 1)
        assert (outcome.status, outcome.sdr) == ("routed", "ben")
        assert store.calls["save_assignment"] == 2  # ana's day count refused the first
        assert store.counters == {"team": 2}  # ana's turn is spent, as if she had been skipped
        assert store.sdr_days == {("ana", NOW.date()): 1, ("ben", NOW.date()): 1}

    def test_a_pass_learns_once_that_an_sdr_is_full(self) -> None:
        team = routing(sdr("ana", daily_capacity=1), sdr("ben"))
        store, queue = MemoryStore(), MemoryQueue()
        store.sdr_days[("ana", NOW.date())] = 1
        for i in range(6):
            ready(store, f"a{i}.com", routing=RoutingStatus(due_at=utc_text(NOW)))
        result = run_routing_pass(router(store, queue, team))
        assert result.routed == 6 and [m.group_id for m in queue.messages] == ["ben"] * 6
        assert store.calls["save_assignment"] == 7  # one refusal, then the pass knows

    def test_everyone_full_waits_until_their_next_local_midnight(self) -> None:
        team = routing(sdr("ana", daily_capacity=1), sdr("ben", daily_capacity=1))
        store, queue = MemoryStore(), MemoryQueue()
        store.sdr_days.update({("ana", NOW.date()): 1, ("ben", NOW.date()): 1})
        ready(store)
        outcome = router(store, queue, team).route_ready("acme.com", 1)
        assert outcome.status == "waiting" and queue.messages == []
        status = store.accounts["acme.com"].routing
        assert status is not None and status.waiting_reason == "at_capacity"
        assert status.retry_at == "2026-11-24T00:00:00Z"
        assert store.sdr_days == {("ana", NOW.date()): 1, ("ben", NOW.date()): 1}


class TestNobodyAvailable:
    def test_the_account_waits_with_the_reason_then_the_pass_routes_it_once(self) -> None:
        away = routing(sdr("ana", out_of_office=[{"from": "2026-11-20", "to": "2026-11-24"}]))
        store, queue = MemoryStore(), MemoryQueue()
        ready(store)
        outcome = router(store, queue, away).route_ready("acme.com", 1)
        assert outcome.status == "waiting" and queue.messages == []
        account = store.accounts["acme.com"]
        assert account.state == "sdr_ready" and account.routing is not None
        assert account.routing.waiting == "no SDR available in pool team: ana out of office until 2026-11-24"
        assert account.routing.retry_at == "2026-11-25T00:00:00Z"  # her local midnight (UTC)
        assert account.routing.due_at == "2026-11-23T10:00:00Z"  # every pass looks again
        # a pass before she is back values it again, changes nothing (and writes nothing)
        before = store.calls.get("save_routing_status", 0)
        early = run_routing_pass(router(store, queue, away, NOW + timedelta(hours=1)))
        assert (early.due, early.waiting) == (1, 1) and store.calls.get("save_routing_status", 0) == before
        # the pass after she is back routes it, once
        back = NOW + timedelta(days=1, hours=15)
        result = run_routing_pass(router(store, queue, away, back))
        assert (result.due, result.routed) == (1, 1)
        assert run_routing_pass(router(store, queue, away, back)).due == 0
        assert [m.group_id for m in queue.messages] == ["ana"]


class TestSla:
    def test_an_sla_breach_reroutes_to_another_sdr_in_the_same_cycle(self) -> None:
        store, queue = MemoryStore(), MemoryQueue()
        ready(store)
        router(store, queue).route_ready("acme.com", 1)
        assert run_routing_pass(router(store, queue, now=NOW + timedelta(hours=47))).due == 0
        later = NOW + timedelta(hours=49)
        result = run_routing_pass(router(store, queue, now=later))
        assert result.rerouted == 1
        first, second = queue.messages
        assert first.group_id == "ana" and second.group_id == "ben"
        assert second.deduplication_id == "acme.com#1#2" and second.body["cycle"] == 1
        assert second.body["slaDueAt"] == "2026-11-27T11:00:00Z"
        account = store.accounts["acme.com"]
        assert account.routing is not None and account.routing.tried == ["ana", "ben"]
        assert account.routing.attempt == 2
        # the next breach goes to the third SDR; once everyone had it, the round-robin goes on
        run_routing_pass(router(store, queue, now=later + timedelta(hours=49)))
        run_routing_pass(router(store, queue, now=later + timedelta(hours=98)))
        assert [m.group_id for m in queue.messages] == ["ana", "ben", "cy", "ana"]
        assert store.accounts["acme.com"].cycle == 1

    def test_an_account_that_left_routed_leaves_the_index(self) -> None:
        store, queue = MemoryStore(), MemoryQueue()
        ready(store)
        router(store, queue).route_ready("acme.com", 1)
        store.accounts["acme.com"].state = "accepted"
        result = run_routing_pass(router(store, queue, now=NOW + timedelta(hours=49)))
        assert result.skipped == 1 and len(queue.messages) == 1
        assert run_routing_pass(router(store, queue, now=NOW + timedelta(hours=50))).due == 0

    def test_the_pass_stops_before_the_deadline(self) -> None:
        store, queue = MemoryStore(), MemoryQueue()
        for i in range(5):
            ready(store, f"a{i}.com")
            router(store, queue).route_ready(f"a{i}.com", 1)
        calls = iter(range(100))
        result = run_routing_pass(router(store, queue, now=NOW + timedelta(hours=49)),
                                  out_of_time=lambda: next(calls) >= 2)
        assert result.stopped_early and result.rerouted == 2


def test_deduplication_ids_are_what_sqs_accepts() -> None:
    assert deduplication_id("acme.com", 3) == "acme.com#3"
    assert deduplication_id("acme.com", 3, 2) == "acme.com#3#2"
    long = deduplication_id("x" * 300, 1)
    assert len(long) <= 128 and long.startswith("sha256:")
    assert deduplication_id("société générale", 1).startswith("sha256:")
