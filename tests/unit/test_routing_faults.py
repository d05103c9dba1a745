"""Routing under faults and unusual pools, on the in-memory fakes (issue 21): an SLA re-route
never goes back to the SDR who has the account, the breach is announced once even when nobody
can take it, waiting accounts are valued again by every pass, and one bad account does not
stop the pass. The moto versions of the storage faults are in
tests/integration/test_routing_faults_flow.py."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from leadscore.domain.records import Account, RoutingStatus, utc_text
from leadscore.engine.account_events import state_change_events
from leadscore.rulesfiles.routing import RoutingConfig
from leadscore.services.routing_pass import run_routing_pass

from tests.support.fakes import MemoryQueue, MemoryStore
from tests.unit.test_router import NOW, ready, router, routing, sdr


def events(store: MemoryStore, detail_type: str) -> list[dict[str, Any]]:
    """What the stream of the store's account changes put on the bus, of one type."""
    changes = [(new.id, old, new) for old, new in store.account_stream]
    return [detail for kind, detail in state_change_events(changes, NOW) if kind == detail_type]


def routed_to_ana(cfg: RoutingConfig) -> tuple[MemoryStore, MemoryQueue]:
    store, queue = MemoryStore(), MemoryQueue()
    ready(store)
    outcome = router(store, queue, cfg).route_ready("acme.com", 1)
    assert (outcome.status, outcome.sdr) == ("routed", "ana")
    return store, queue


AFTER_SLA = NOW + timedelta(hours=49)


class TestItem3:
    @pytest.mark.parametrize("others", [
        pytest.param([], id="a pool of one"),
        pytest.param([sdr("ben", out_of_office=[{"from": "2026-11-25", "to": "2026-11-27"}])], id="others away"),
        pytest.param([sdr("ben", daily_capacity=1)], id="others full"),
    ])
    def test_item3_an_sla_reroute_never_goes_back_to_the_same_sdr(self, others: list[dict[str, Any]]) -> None:
        team = routing(sdr("ana", daily_capacity=5), *others)
        store, queue = routed_to_ana(team)
        store.sdr_days[("ben", AFTER_SLA.date())] = 1  # ben (when capped at 1) is full that day
        ana_day = dict(store.sdr_days)
        # Her SLA runs out and nobody else can take it: it stays hers, no message, no capacity used
        for hours in (0, 1, 2):
            result = run_routing_pass(router(store, queue, team, AFTER_SLA + timedelta(hours=hours)))
            assert (result.due, result.waiting, result.rerouted) == (1, 1, 0)
        assert [m.group_id for m in queue.messages] == ["ana"]
        assert store.sdr_days == ana_day
        account = store.accounts["acme.com"]
        assert account.state == "routed" and account.sdr is not None and account.sdr["id"] == "ana"
        assert account.routing is not None and account.routing.attempt == 1 and account.routing.waiting
        assert store.assignments[("acme.com", 1)].attempt == 1
        # The breach is announced once, naming her once (not as her own successor)
        (breach,) = events(store, "Routing SLA Breached")
        assert breach["sdr"]["id"] == "ana" and "previousSdr" not in breach
        assert breach["reroute"]["reason"].startswith("no SDR available in pool team")
        # As soon as someone else is available, the next pass moves it there
        cy = routing(sdr("ana", daily_capacity=5), *others, sdr("cy"))
        moved = run_routing_pass(router(store, queue, cy, AFTER_SLA + timedelta(hours=3)))
        assert moved.rerouted == 1 and [m.group_id for m in queue.messages] == ["ana", "cy"]
        assert len(events(store, "Routing SLA Breached")) == 1  # the same breach, not a second one
        routed = events(store, "Account Routed")
        assert routed[-1]["sdr"]["id"] == "cy" and routed[-1]["previousSdr"] == "ana"


class TestItem4:
    def test_item4_the_sla_breach_is_announced_when_nobody_is_available(self) -> None:
        away = [{"from": "2026-11-25", "to": "2026-11-30"}]
        team = routing(sdr("ana"), sdr("ben"))
        store, queue = routed_to_ana(team)
        gone = routing(sdr("ana", out_of_office=away), sdr("ben", out_of_office=away))
        for hours in range(0, 5):
            assert run_routing_pass(router(store, queue, gone, AFTER_SLA + timedelta(hours=hours))).waiting == 1
        (breach,) = events(store, "Routing SLA Breached")
        assert (breach["accountId"], breach["state"], breach["cycle"]) == ("acme.com", "routed", 1)
        assert breach["sdr"]["id"] == "ana" and breach["slaDueAt"] == "2026-11-25T10:00:00Z"
        assert len(queue.messages) == 1
        # the read API says the SLA ran out and why it was not re-routed
        from leadscore.engine.account_views import routing_view

        view = routing_view(store.accounts["acme.com"])
        assert view is not None and "out of office" in view["reroute"]["reason"]


class TestItem5:
    @pytest.mark.parametrize("change", ["an SDR added", "back early", "capacity raised"])
    def test_item5_a_waiting_account_routes_at_the_next_pass_after_a_change(self, change: str) -> None:
        before = {
            "an SDR added": routing(sdr("ana", out_of_office=[{"from": "2026-11-20", "to": "2026-11-30"}])),
            "back early": routing(sdr("ana", out_of_office=[{"from": "2026-11-20", "to": "2026-11-30"}])),
            "capacity raised": routing(sdr("ana", daily_capacity=1)),
        }[change]
        after = {
            "an SDR added": routing(sdr("ana", out_of_office=[{"from": "2026-11-20", "to": "2026-11-30"}]),
                                    sdr("ben")),
            "back early": routing(sdr("ana")),
            "capacity raised": routing(sdr("ana", daily_capacity=2)),
        }[change]
        store, queue = MemoryStore(), MemoryQueue()
        store.sdr_days[("ana", NOW.date())] = 1
        ready(store)
        assert router(store, queue, before).route_ready("acme.com", 1).status == "waiting"
        status = store.accounts["acme.com"].routing
        assert status is not None and status.retry_at is not None
        assert status.retry_at > utc_text(NOW + timedelta(hours=2))
        # a pass with nothing changed values it again and writes nothing
        writes = store.calls.get("save_routing_status", 0)
        still = run_routing_pass(router(store, queue, before, NOW + timedelta(minutes=5)))
        assert (still.due, still.waiting) == (1, 1) and store.calls.get("save_routing_status", 0) == writes
        # the next pass after the change routes it, long before the old retry time
        result = run_routing_pass(router(store, queue, after, NOW + timedelta(minutes=10)))
        assert (result.due, result.routed) == (1, 1)
        assert len(queue.messages) == 1 and store.accounts["acme.com"].state == "routed"

    def test_item5_each_pass_reads_one_index_item_per_waiting_account(self) -> None:
        away = routing(sdr("ana", out_of_office=[{"from": "2026-11-20", "to": "2026-11-30"}]))
        store, queue = MemoryStore(), MemoryQueue()
        for i in range(20):
            ready(store, f"a{i}.com")
            router(store, queue, away).route_ready(f"a{i}.com", 1)
        reads = {name: store.calls.get(name, 0) for name in ("load_routing", "pool_keys_read", "save_routing_status")}
        result = run_routing_pass(router(store, queue, away, NOW + timedelta(minutes=5)))
        assert (result.due, result.waiting) == (20, 20)
        assert store.calls.get("load_routing", 0) == reads["load_routing"]  # the index copy is enough
        assert store.calls["pool_keys_read"] - reads["pool_keys_read"] == 1  # the pool's counter, once
        assert store.calls.get("save_routing_status", 0) == reads["save_routing_status"]


class BrokenStore(MemoryStore):
    """A store on which routing one account fails (as a corrupt item or an item over
    DynamoDB's size limit would)."""

    broken: str = "a0.com"

    def save_assignment(self, assignment: Any, account: Account, **kwargs: Any) -> None:
        if account.id == self.broken:
            raise ValueError("ValidationException: Item size has exceeded the maximum allowed size")
        super().save_assignment(assignment, account, **kwargs)


class TestItem13:
    def test_item13_one_bad_account_does_not_stop_the_routing_pass(self, caplog: pytest.LogCaptureFixture) -> None:
        store, queue = BrokenStore(), MemoryQueue()
        for i in range(4):  # a0.com is the oldest due, first in every run
            ready(store, f"a{i}.com", routing=RoutingStatus(due_at=utc_text(NOW - timedelta(hours=4 - i))))
        with caplog.at_level(logging.ERROR):
            result = run_routing_pass(router(store, queue))
        assert (result.due, result.routed, result.failed) == (4, 3, 1)
        assert [m.body["accountId"] for m in queue.messages] == ["a1.com", "a2.com", "a3.com"]
        assert any("a0.com" in r.getMessage() and "ValidationException" in r.getMessage() for r in caplog.records)
        # parked: pushed back on the index, so the next runs do not try it again at once
        parked = store.accounts["a0.com"]
        assert parked.state == "sdr_ready" and parked.routing is not None
        assert parked.routing.due_at is not None and parked.routing.due_at > utc_text(NOW + timedelta(minutes=30))
        assert run_routing_pass(router(store, queue, now=NOW + timedelta(minutes=5))).due == 0
        # and it is tried again later (fixed meanwhile, it routes)
        store.broken = ""
        later = run_routing_pass(router(store, queue, now=NOW + timedelta(hours=2)))
        assert (later.due, later.routed, later.failed) == (1, 1, 0)



def test_item3_choose_sdr_never_picks_the_owner_of_an_sla_reroute() -> None:
    from leadscore.engine.routing import AccountTraits, route

    alone = routing(sdr("ana"))
    d = route(alone, AccountTraits("x.com"), counter=0, assignments={}, now=AFTER_SLA, previous_owner="ana",
              tried=["ana"])
    assert d.sdr is None and d.reason == "unavailable" and d.counter_step == 0
    assert d.explanation == "no SDR available in pool team: ana has it (SLA ran out)"
    # one who had it before (not the owner) may have it again when nobody new is available
    pair = routing(sdr("ana"), sdr("ben"))
    d = route(pair, AccountTraits("x.com"), counter=0, assignments={}, now=AFTER_SLA, previous_owner="ben",
              tried=["ana", "ben"])
    assert d.sdr is not None and d.sdr.id == "ana" and d.already_tried
