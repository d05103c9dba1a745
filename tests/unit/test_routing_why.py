"""The CRM's owner first, and why each routing decision went where it did: the pure choice,
the router on the in-memory fakes (no counter step for the owner), the routing status as
stored, and what the read API, the bus and the routed message say of it. No moto."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from leadscore.adapters.items import account_from_item, account_item, routing_doc, routing_from_doc
from leadscore.domain.records import MAX_SKIPPED, Account, RoutingStatus, SkippedSdr
from leadscore.engine.account_events import routing_detail
from leadscore.engine.account_views import decision_view, routing_view
from leadscore.engine.routing import AccountTraits, CrmOwner, choose_sdr, match_pool
from leadscore.rulesfiles.loading import load_config
from leadscore.rulesfiles.routing import RoutingConfig
from leadscore.services.outbox import routed_sends
from leadscore.services.router import Router

from tests.support.fakes import MemoryStore

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday


def sdr(sdr_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": sdr_id, "name": sdr_id.title(), "email": f"{sdr_id}@example.com", **extra}


def team(*extra_sdrs: dict[str, Any], ana: dict[str, Any] | None = None, **extra: Any) -> RoutingConfig:
    """Pool `team` (ana, ben, cy) for every account; `eve` and extra SDRs in pool `other`."""
    sdrs = [sdr("ana", **(ana or {})), sdr("ben"), sdr("cy"), sdr("eve"), *extra_sdrs]
    pools = [{"id": "team", "sdrs": ["ana", "ben", "cy"]}, {"id": "other", "sdrs": ["eve"]}]
    return RoutingConfig.model_validate({"version": 1, "sdrs": sdrs, "pools": pools, "fallback_pool": "team",
                                         "territories": [{"id": "us", "pool": "team", "when": {"country": ["US"]}}],
                                         **extra})


TEAM = team()


def traits(owner: Any = None) -> dict[str, Any]:
    group: dict[str, Any] = {"industry": "Software", "address": {"country": "US"}}
    if owner is not None:
        group["owner"] = owner
    return {"group": group}


def ready(store: MemoryStore, account_id: str, owner: Any = None) -> Account:
    account = Account(id=account_id, version=3, state="sdr_ready", cycle=1, name=account_id.split(".")[0].title(),
                      domain=account_id, traits=traits(owner))
    store.accounts[account_id] = account
    return account


def route(store: MemoryStore, account_id: str, cfg: RoutingConfig = TEAM, now: datetime = NOW) -> str | None:
    return Router(store, load_config().scoring, cfg, now).route_ready(account_id, 1).sdr


# ------------------------------------------------------------------ the pure choice


class TestChoice:
    def test_the_owner_is_named_by_id_or_email_in_any_case(self) -> None:
        by_id = match_pool(TEAM, AccountTraits.from_traits("a.com", {"owner": "ben"}))
        by_email = match_pool(TEAM, AccountTraits.from_traits("a.com", {"owner": " BEN@Example.com "}))
        nobody = match_pool(TEAM, AccountTraits.from_traits("a.com", {"owner": "zed@example.com"}))
        assert by_id.crm_owner == CrmOwner("ben", "ben") and by_email.crm_owner == CrmOwner("BEN@Example.com", "ben")
        assert nobody.crm_owner == CrmOwner("zed@example.com", None)
        for absent in ({}, {"owner": ""}, {"owner": 7}, {"owner": {"id": "ben"}}):
            assert match_pool(TEAM, AccountTraits.from_traits("a.com", absent)).crm_owner is None

    def test_an_available_owner_gets_it_before_territories_without_a_counter_step(self) -> None:
        pool = match_pool(TEAM, AccountTraits.from_traits("a.com", {"owner": "eve", "country": "US"}))
        assert (pool.territory, pool.pool) == ("us", "team")  # eve is in no pool of the territory
        decision = choose_sdr(TEAM, pool, counter=5, assignments={}, now=NOW)
        assert decision.sdr is not None and decision.sdr.id == "eve"
        assert (decision.by, decision.counter_step, decision.counter_next) == ("crm_owner", 0, 5)
        assert decision.explanation == "eve (CRM owner, pool team)"

    def test_an_unavailable_owner_is_skipped_with_the_reason_and_the_pool_routes_as_without(self) -> None:
        cfg = team(ana={"out_of_office": [{"from": "2026-11-20", "to": "2026-11-30"}]})
        pool = match_pool(cfg, AccountTraits.from_traits("a.com", {"owner": "ana", "country": "US"}))
        decision = choose_sdr(cfg, pool, counter=0, assignments={}, now=NOW)
        assert decision.sdr is not None and decision.sdr.id == "ben" and decision.by == "round_robin"
        assert decision.counter_step == 2  # ana's slot passed over, as without an owner
        assert decision.crm_owner_skip is not None and decision.crm_owner_skip.reason == "out_of_office"
        assert decision.crm_owner_skip.until == date(2026, 11, 30)
        assert "CRM owner ana out of office until 2026-11-30" in decision.explanation

    def test_an_owner_at_capacity_or_already_tried_is_skipped(self) -> None:
        cfg = team(sdr("zoe", daily_capacity=2), leads=["zoe"])  # a lead: in no pool
        pool = match_pool(cfg, AccountTraits.from_traits("a.com", {"owner": "zoe"}))
        full = choose_sdr(cfg, pool, counter=0, assignments={("zoe", date(2026, 11, 23)): 2}, now=NOW)
        assert full.by == "round_robin" and full.crm_owner_skip is not None
        assert full.crm_owner_skip.reason == "at_capacity"
        under = choose_sdr(cfg, pool, counter=0, assignments={("zoe", date(2026, 11, 23)): 1}, now=NOW)
        assert under.by == "crm_owner"
        tried = choose_sdr(cfg, pool, counter=0, assignments={}, now=NOW, previous_owner="zoe", tried=["zoe"])
        assert tried.sdr is not None and tried.sdr.id == "ana"
        assert tried.crm_owner_skip is not None and tried.crm_owner_skip.reason == "tried"

    def test_an_owner_naming_nobody_is_said_and_ignored(self) -> None:
        pool = match_pool(TEAM, AccountTraits.from_traits("a.com", {"owner": "zed@example.com"}))
        decision = choose_sdr(TEAM, pool, counter=0, assignments={}, now=NOW)
        assert decision.sdr is not None and decision.sdr.id == "ana" and decision.counter_step == 1
        assert "CRM owner 'zed@example.com' is no SDR of routing.yaml" in decision.explanation


# ------------------------------------------------------------------ the router


class TestRouter:
    def test_the_owner_gets_it_and_the_round_robin_does_not_move(self) -> None:
        store = MemoryStore()
        ready(store, "a.com")
        assert route(store, "a.com") == "ana" and store.counters == {"team": 1}
        ready(store, "owned.com", owner="ben@example.com")
        assert route(store, "owned.com") == "ben"
        assert store.counters == {"team": 1}  # no counter step: not the pool's turn
        ready(store, "c.com")
        assert route(store, "c.com") == "ben"  # the pool's next slot, as if owned.com never came
        status = store.accounts["owned.com"].routing
        assert status is not None and status.by == "crm_owner" and status.crm_owner == SkippedSdr("ben")
        assert store.accounts["owned.com"].state_why == "routed to ben (CRM owner, pool team)"

    def test_an_owner_of_another_pool_counts_toward_their_own_capacity(self) -> None:
        cfg = team(sdr("zoe", daily_capacity=1), pools=[{"id": "team", "sdrs": ["ana", "ben", "cy"]},
                                                        {"id": "other", "sdrs": ["eve", "zoe"]}])
        store = MemoryStore()
        ready(store, "one.com", owner="zoe")
        ready(store, "two.com", owner="zoe")
        assert route(store, "one.com", cfg) == "zoe"
        assert store.pool_days["other"][("zoe", date(2026, 11, 23))] == 1
        assert ("zoe", date(2026, 11, 23)) not in store.pool_days.get("team", {})
        # a new invocation reads her day count in her pool's record: full, so the pool routes it
        assert route(store, "two.com", cfg) == "ana"
        status = store.accounts["two.com"].routing
        assert status is not None and status.crm_owner == SkippedSdr("zoe", "at_capacity")
        assert store.counters == {"team": 1}

    def test_an_owner_in_no_pool_is_read_from_their_own_day_count(self) -> None:
        cfg = team(sdr("lee", daily_capacity=1), leads=["lee"])  # a lead: in no pool
        store = MemoryStore()
        ready(store, "one.com", owner="lee")
        ready(store, "two.com", owner="lee")
        assert route(store, "one.com", cfg) == "lee" and route(store, "two.com", cfg) == "ana"

    def test_an_owner_out_of_office_routes_as_today_and_says_why(self) -> None:
        cfg = team(ana={"out_of_office": [{"from": "2026-11-20", "to": "2026-11-30"}]})
        store = MemoryStore()
        ready(store, "a.com", owner="ana")
        assert route(store, "a.com", cfg) == "ben"
        account = store.accounts["a.com"]
        view = routing_view(account)
        assert view is not None
        assert view["decision"] == {
            "by": "round_robin", "territory": "us", "pool": "team",
            "skipped": [{"sdr": "ana", "reason": "out_of_office", "until": "2026-11-30"}],
            "crmOwner": {"owner": "ana", "routed": False, "reason": "out_of_office", "until": "2026-11-30"},
            "text": "ben: the pool's weighted round-robin (territory us, pool team); passed over ana out of office "
                    "until 2026-11-30; CRM owner ana out of office until 2026-11-30"}
        assert routing_detail(account)["decision"] == view["decision"]

    def test_a_waiting_account_keeps_who_was_skipped(self) -> None:
        cfg = team(ana={"out_of_office": [{"from": "2026-11-20", "to": "2026-11-30"}]},
                   pools=[{"id": "team", "sdrs": ["ana"]}, {"id": "other", "sdrs": ["eve", "ben", "cy"]}])
        store = MemoryStore()
        ready(store, "a.com", owner="nobody@example.com")
        assert route(store, "a.com", cfg) is None
        view = routing_view(store.accounts["a.com"])
        assert view is not None and view["status"] == "waiting"
        assert view["decision"]["skipped"] == [{"sdr": "ana", "reason": "out_of_office", "until": "2026-11-30"}]
        assert view["decision"]["crmOwner"] == {"owner": "nobody@example.com", "routed": False, "reason": "unknown"}
        assert view["decision"]["text"] == ("nobody yet (territory us, pool team); passed over ana out of office "
                                            "until 2026-11-30; "
                                            "CRM owner nobody@example.com is no SDR of routing.yaml")

    def test_the_routed_message_and_account_routed_carry_the_decision(self) -> None:
        store = MemoryStore()
        before = ready(store, "a.com")
        route(store, "a.com")
        after = store.accounts["a.com"]
        (send,) = routed_sends(load_config().scoring, [(before, after)])
        assert send.body["decision"]["by"] == "round_robin"
        assert send.body["decision"]["text"] == "ana: the pool's weighted round-robin (territory us, pool team)"
        from leadscore.engine.account_events import state_change_events

        events = dict(state_change_events([("a.com", before, after)], NOW))
        assert events["Account Routed"]["decision"] == send.body["decision"]


# ------------------------------------------------------------------ as stored


class TestStored:
    def test_the_decision_round_trips_compactly(self) -> None:
        status = RoutingStatus(pool="team", territory=None, mode="territory", by="round_robin",
                               skipped=[SkippedSdr("ana", "out_of_office", "2026-11-30"), SkippedSdr("ben", "tried")],
                               skipped_more=3, crm_owner=SkippedSdr("Jo Smith", "unknown"))
        doc = routing_doc(status)
        assert doc["sx"] == [["ana", "out_of_office", "2026-11-30"], ["ben", "tried"]] and doc["sxn"] == 3
        assert doc["co"] == ["Jo Smith", "unknown"] and doc["by"] == "round_robin"
        assert routing_from_doc(doc) == status
        account = Account(id="a.com", state="routed", routing=status)
        assert account_from_item(account_item(account)).routing == status

    def test_a_routing_kept_before_decisions_were_shows_none(self) -> None:
        status = routing_from_doc({"pl": "team", "mo": "territory", "sx": "garbage", "co": [1]})
        assert status.skipped == [] and status.crm_owner is None and status.by is None
        assert decision_view(status, "ana") == {}

    def test_skips_are_capped_on_the_status(self) -> None:
        many = [sdr(f"s{i:02d}", active=False) for i in range(MAX_SKIPPED + 4)]
        cfg = RoutingConfig.model_validate({
            "version": 1, "sdrs": [*many, sdr("last")], "fallback_pool": "big",
            "pools": [{"id": "big", "sdrs": [s["id"] for s in many] + ["last"]}]})
        store = MemoryStore()
        ready(store, "a.com")
        assert route(store, "a.com", cfg) == "last"
        status = store.accounts["a.com"].routing
        assert status is not None and len(status.skipped) == MAX_SKIPPED and status.skipped_more == 4
        assert "and 4 more" in decision_view(status, "last")["decision"]["text"]


class TestPausedOwner:
    """A lead's pause (kept in the record of each pool the SDR is in) holds for the CRM owner too."""

    def test_a_paused_owner_of_another_pool_gets_nothing_and_the_decision_says_so(self) -> None:
        cfg = team(sdr("zoe"), pools=[{"id": "team", "sdrs": ["ana", "ben", "cy"]},
                                      {"id": "other", "sdrs": ["eve", "zoe"]}])
        store = MemoryStore()
        store.pool_pauses["other"] = {"zoe": "2026-11-25T09:00:00Z"}
        ready(store, "a.com", owner="zoe")
        assert route(store, "a.com", cfg) == "ana"
        status = store.accounts["a.com"].routing
        assert status is not None and status.crm_owner == SkippedSdr("zoe", "paused", "2026-11-25T09:00:00Z")
        # the pause over, she gets her accounts again
        ready(store, "b.com", owner="zoe")
        assert route(store, "b.com", cfg, now=datetime(2026, 11, 25, 10, 0, tzinfo=UTC)) == "zoe"

    def test_a_paused_owner_of_the_pool_is_passed_over_too(self) -> None:
        store = MemoryStore()
        store.pool_pauses["team"] = {"ana": None}
        ready(store, "a.com", owner="ana")
        assert route(store, "a.com") == "ben"
        view = routing_view(store.accounts["a.com"])
        assert view is not None and view["decision"]["crmOwner"] == {"owner": "ana", "routed": False,
                                                                     "reason": "paused"}
        assert view["decision"]["skipped"] == [{"sdr": "ana", "reason": "paused"}]


def test_the_crm_owner_comes_before_the_previous_owner() -> None:
    pool = match_pool(TEAM, AccountTraits.from_traits("a.com", {"owner": "ben"}))
    decision = choose_sdr(TEAM, pool, counter=0, assignments={}, now=NOW, previous_owner="ana")
    assert decision.sdr is not None and decision.sdr.id == "ben" and decision.by == "crm_owner"
    without = choose_sdr(TEAM, match_pool(TEAM, AccountTraits.from_traits("a.com", {})), counter=0,
                         assignments={}, now=NOW, previous_owner="cy")
    assert without.by == "previous_owner" and without.sdr is not None and without.sdr.id == "cy"


class TestOnceAndAfter:
    def test_twenty_concurrent_deliveries_give_the_owner_one_assignment_and_no_counter_step(self) -> None:
        import threading
        from collections import Counter

        from tests.support.fakes import MemoryOutbox, MemoryQueue

        store, queue = MemoryStore(), MemoryQueue()
        ready(store, "a.com", owner="eve")  # eve: of another pool
        barrier = threading.Barrier(20)
        outcomes: list[str] = []

        def deliver() -> None:
            barrier.wait()
            outcomes.append(Router(store, load_config().scoring, TEAM, NOW).route_ready("a.com", 1).status)

        threads = [threading.Thread(target=deliver) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert Counter(outcomes) == {"routed": 1, "already_routed": 19}
        assert store.counters == {} and store.sdr_days == {("eve", date(2026, 11, 23)): 1}
        assert store.pool_days == {"other": {("eve", date(2026, 11, 23)): 1}}
        MemoryOutbox(store, queue, load_config().scoring).drain()
        assert [m.group_id for m in queue.messages] == ["eve"]

    def test_an_sla_breach_moves_it_from_the_owner_to_the_pool_saying_so(self) -> None:
        from datetime import timedelta

        from leadscore.services.routing_pass import run_routing_pass

        store = MemoryStore()
        ready(store, "a.com", owner="ben")
        assert route(store, "a.com") == "ben"
        later = NOW + timedelta(hours=49)
        result = run_routing_pass(Router(store, load_config().scoring, TEAM, later))
        assert result.rerouted == 1
        account = store.accounts["a.com"]
        assert account.sdr is not None and account.sdr["id"] == "ana"
        status = account.routing
        assert status is not None and status.tried == ["ben", "ana"] and status.by == "round_robin"
        assert status.crm_owner == SkippedSdr("ben", "tried")
        assert decision_view(status, "ana")["decision"]["text"] == (
            "ana: the pool's weighted round-robin (territory us, pool team); CRM owner ben already had it this cycle")


def test_a_paused_lead_of_no_pool_gets_nothing_as_crm_owner() -> None:
    from leadscore.domain.records import SdrPause, SdrRecord

    cfg = team(sdr("lee"), leads=["lee"])  # a lead: in no pool, so no pool record holds her pause
    store = MemoryStore()
    store.sdr_records["lee"] = SdrRecord("lee", pause=SdrPause(until=None, reason="leave", at="2026-11-20T00:00:00Z"))
    ready(store, "a.com", owner="lee")
    assert route(store, "a.com", cfg) == "ana"
    status = store.accounts["a.com"].routing
    assert status is not None and status.crm_owner == SkippedSdr("lee", "paused")
    store.sdr_records["lee"] = SdrRecord("lee")  # returned
    ready(store, "b.com", owner="lee")
    assert route(store, "b.com", cfg) == "lee"


def test_a_decision_naming_an_sdr_outright_says_so() -> None:
    from leadscore.engine.routing import RoutingDecision

    ben = TEAM.sdr_by_id["ben"]
    named = RoutingDecision("territory", "team", "us", ben, None, counter=4, counter_step=0, day=date(2026, 11, 23))
    assert (named.by, named.explanation) == ("assigned", "ben (named by a lead, pool team)")
