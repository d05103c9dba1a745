"""The routing choice: territories, weighted round-robin, capacity, absences, stickiness, SLA."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from leadscore.engine.routing import (
    GLOBAL_POOL,
    AccountTraits,
    RoutingDecision,
    SdrDay,
    capacity_days,
    match_pool,
    route,
    schedule,
)
from leadscore.rulesfiles.loading import load_routing
from leadscore.rulesfiles.routing import RoutingConfig, Sdr, region_of

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "routing.yaml"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday


def sdr(sdr_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": sdr_id, "name": sdr_id.title(), "email": f"{sdr_id}@example.com", **extra}


def config(sdrs: list[dict[str, Any]], **extra: Any) -> RoutingConfig:
    data: dict[str, Any] = {
        "version": 1,
        "sdrs": sdrs,
        "pools": [{"id": "team", "sdrs": [s["id"] for s in sdrs]}],
        "fallback_pool": "team",
        **extra,
    }
    if sdrs and not any(s.get("active", True) for s in sdrs):
        # Validation refuses a pool with nobody active (issue 21, item 12); routing still copes.
        checked = RoutingConfig.model_validate({**data, "sdrs": [{**s, "active": True} for s in sdrs]})
        return replace(checked, sdrs=[Sdr.model_validate(s) for s in sdrs])
    return RoutingConfig.model_validate(data)


def run(cfg: RoutingConfig, n: int, now: datetime = NOW) -> list[RoutingDecision]:
    """Route `n` accounts one after the other, as storage would: counter and counts written back."""
    counter = 0
    assignments: Counter[SdrDay] = Counter()
    out = []
    for i in range(n):
        d = route(cfg, AccountTraits(f"acct{i}.com"), counter=counter, assignments=assignments, now=now)
        out.append(d)
        counter = d.counter_next
        if d.sdr is not None and d.day is not None:
            assignments[(d.sdr.id, d.day)] += 1
    return out


def tally(decisions: list[RoutingDecision]) -> dict[str, int]:
    return dict(Counter(d.sdr.id for d in decisions if d.sdr is not None))


# ------------------------------------------------------------------------- fairness


def test_thirty_accounts_into_three_equal_sdrs_give_ten_each() -> None:
    # Given a pool of three SDRs of equal weight
    cfg = config([sdr("a"), sdr("b"), sdr("c")])
    # When 30 accounts are routed
    decisions = run(cfg, 30)
    # Then each SDR gets 10, in turn, and the counter moved once per account
    assert tally(decisions) == {"a": 10, "b": 10, "c": 10}
    assert [d.sdr.id for d in decisions[:6] if d.sdr] == ["a", "b", "c", "a", "b", "c"]
    assert all(d.counter_step == 1 for d in decisions)


def test_weights_two_one_one_give_fifty_twenty_five_twenty_five_over_every_cycle() -> None:
    # Given weights 2:1:1
    cfg = config([sdr("a", weight=2), sdr("b"), sdr("c")])
    # When 40 accounts are routed
    decisions = run(cfg, 40)
    # Then 20/10/10, and every full cycle of 4 holds exactly 2/1/1
    assert tally(decisions) == {"a": 20, "b": 10, "c": 10}
    for start in range(0, 40, 4):
        assert tally(decisions[start : start + 4]) == {"a": 2, "b": 1, "c": 1}
    assert schedule((("a", 2), ("b", 1), ("c", 1))) == ("a", "b", "c", "a")


def test_an_out_of_office_sdr_gets_none_and_the_others_stay_fair() -> None:
    # Given b (weight 2) out of office today in her time zone
    cfg = config(
        [
            sdr("a"),
            sdr(
                "b",
                weight=2,
                time_zone="Europe/Madrid",
                out_of_office=[{"from": date(2026, 11, 23), "to": "2026-11-27"}],
            ),
            sdr("c"),
        ]
    )
    # When 30 accounts are routed
    decisions = run(cfg, 30)
    # Then b gets none and a and c share evenly
    assert tally(decisions) == {"a": 15, "c": 15}
    assert any(s.sdr == "b" and s.reason == "out_of_office" for d in decisions for s in d.skipped)


def test_out_of_office_dates_are_inclusive_in_the_sdrs_time_zone() -> None:
    # Given a Tokyo SDR out until 2026-11-23 (inclusive)
    cfg = config([sdr("k", time_zone="Asia/Tokyo", out_of_office=[{"from": "2026-11-20", "to": "2026-11-23"}])])
    last_day = datetime(2026, 11, 23, 14, 59, tzinfo=UTC)  # 23:59 in Tokyo
    back = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 00:00 on the 24th in Tokyo
    # When routed on her last day out, and at her next local midnight
    out = route(cfg, AccountTraits("x.com"), counter=0, assignments={}, now=last_day)
    later = route(cfg, AccountTraits("x.com"), counter=0, assignments={}, now=back)
    # Then nobody the first time (with when to retry), k the second
    assert out.sdr is None and out.reason == "out_of_office"
    assert out.retry_at == back
    assert later.sdr is not None and later.sdr.id == "k"


def test_capacity_resets_at_midnight_in_the_sdrs_time_zone() -> None:
    # Given a Tokyo SDR with capacity 2 who got 2 accounts on her 2026-11-23
    cfg = config([sdr("k", time_zone="Asia/Tokyo", daily_capacity=2)])
    before = datetime(2026, 11, 23, 14, 59, tzinfo=UTC)  # 23:59 Tokyo
    after = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 00:00 Tokyo, still the 23rd in UTC
    assert capacity_days(cfg, match_pool(cfg, AccountTraits("x.com")), before) == (("k", date(2026, 11, 23)),)
    counts = {("k", date(2026, 11, 23)): 2}
    # When routing at 23:59 and at 00:00 her time
    full = route(cfg, AccountTraits("x.com"), counter=5, assignments=counts, now=before)
    fresh = route(cfg, AccountTraits("x.com"), counter=5, assignments=counts, now=after)
    # Then she is at capacity, then available on her new day (which the count goes to)
    assert full.sdr is None and full.reason == "at_capacity" and full.counter_step == 0
    assert full.retry_at == after
    assert fresh.sdr is not None and fresh.sdr.id == "k" and fresh.day == date(2026, 11, 24)


def test_an_sdr_at_capacity_is_skipped_and_the_others_keep_their_shares() -> None:
    # Given a with a daily capacity of 3 among three equal SDRs
    cfg = config([sdr("a", daily_capacity=3), sdr("b"), sdr("c")])
    # When 21 accounts are routed in one day
    decisions = run(cfg, 21)
    # Then a stops at 3 and b and c split the rest evenly
    assert tally(decisions) == {"a": 3, "b": 9, "c": 9}


# ---------------------------------------------------------------------- territories

TERRITORIES: dict[str, Any] = {
    "pools": [
        {"id": "emea", "sdrs": ["e"]},
        {"id": "emea-big", "sdrs": ["b"]},
        {"id": "apac", "sdrs": ["p"]},
        {"id": "na", "sdrs": ["n"]},
        {"id": "latam", "sdrs": ["l"]},
        {"id": "rest", "sdrs": ["e", "p", "n", "l"]},
    ],
    "territories": [
        {"id": "named", "pool": "apac", "when": {"domain": ["Globex.com"]}},
        {"id": "emea-enterprise", "pool": "emea-big", "when": {"region": "EMEA", "employees": {"min": 1000}}},
        {"id": "emea", "pool": "emea", "when": {"region": ["EMEA"]}},
        {
            "id": "us-west-tech",
            "pool": "na",
            "when": {"country": "US", "state": ["CA", "Washington"], "industry": ["software", "technology"]},
        },
        {"id": "apac", "pool": "apac", "when": {"region": ["APAC"]}},
        {"id": "latam", "pool": "latam", "when": {"region": "LATAM"}},
    ],
    "fallback_pool": "rest",
}


def territory_config(**extra: Any) -> RoutingConfig:
    return RoutingConfig.model_validate({"version": 1, "sdrs": [sdr(i) for i in "ebpnl"], **TERRITORIES, **extra})


@pytest.mark.parametrize(
    ("account", "territory", "pool"),
    [
        (AccountTraits("acme.de", country="DE", employees=50), "emea", "emea"),
        (AccountTraits("big.de", country="Germany", employees=5000), "emea-enterprise", "emea-big"),
        (AccountTraits("dubai.ae", country="UAE"), "emea", "emea"),
        (AccountTraits("jp.co.jp", country="JP"), "apac", "apac"),
        (AccountTraits("br.com.br", country="Brasil"), "latam", "latam"),
        (AccountTraits("mx.mx", country="Mexico"), "latam", "latam"),
        (AccountTraits("globex.com", country="DE", employees=5000), "named", "apac"),
        (
            AccountTraits("sf.com", country="United States", state="California", industry=" Software "),
            "us-west-tech",
            "na",
        ),
        (AccountTraits("sea.com", country="usa", state="WA", industry="Technology"), "us-west-tech", "na"),
        (AccountTraits("ny.com", country="US", state="NY", industry="software"), None, "rest"),
        (AccountTraits("sf2.com", country="US", state="CA", industry="retail"), None, "rest"),
        (AccountTraits("nowhere.com"), None, "rest"),
    ],
)
def test_the_first_matching_territory_wins_else_the_fallback(
    account: AccountTraits, territory: str | None, pool: str
) -> None:
    # Given ordered territories, When an account is matched, Then the first match's pool (or the fallback)
    choice = match_pool(territory_config(), account)
    assert (choice.territory, choice.pool, choice.routing) == (territory, pool, "territory")


@pytest.mark.parametrize(
    ("country", "region"),
    [
        ("DE", "EMEA"),
        ("JP", "APAC"),
        ("BR", "LATAM"),
        ("United States", "NA"),
        ("UK", "EMEA"),
        ("usa", "NA"),
        ("Canada", "NA"),
        ("MX", "LATAM"),
        ("Saudi Arabia", "EMEA"),
        ("South Africa", "EMEA"),
        ("AU", "APAC"),
        ("India", "APAC"),
        ("Narnia", None),
        (None, None),
    ],
)
def test_regions_are_derived_from_countries(country: str | None, region: str | None) -> None:
    assert region_of(country) == region


def test_round_robin_mode_ignores_territories_and_uses_every_active_sdr() -> None:
    # Given round_robin mode with one inactive SDR
    sdrs = [sdr(i) for i in "ebpn"] + [sdr("l", active=False)]
    cfg = RoutingConfig.model_validate({"version": 1, "sdrs": sdrs, **TERRITORIES, "mode": "round_robin"})
    # When 40 German enterprise accounts are routed
    counter = 0
    got: Counter[str] = Counter()
    for i in range(40):
        d = route(
            cfg, AccountTraits(f"a{i}.de", country="DE", employees=5000), counter=counter, assignments={}, now=NOW
        )
        assert d.routing == "round_robin" and d.pool == GLOBAL_POOL and d.territory is None
        assert d.sdr is not None
        got[d.sdr.id] += 1
        counter = d.counter_next
    # Then every active SDR shares them evenly and the inactive one gets none
    assert dict(got) == {"e": 10, "b": 10, "p": 10, "n": 10}


# ------------------------------------------------------------- stickiness and SLA


def test_sticky_ownership_goes_back_to_the_previous_owner_without_a_counter_step() -> None:
    cfg = config([sdr("a"), sdr("b"), sdr("c")])
    # Given an account c had last, When it qualifies again
    d = route(cfg, AccountTraits("x.com"), counter=7, assignments={}, now=NOW, previous_owner="c")
    # Then c again, and the counter does not move
    assert d.sdr is not None and d.sdr.id == "c" and d.sticky
    assert d.counter_step == 0 and d.counter_next == 7


def test_an_unavailable_previous_owner_gives_the_pools_next_sdr() -> None:
    cfg = config([sdr("a"), sdr("b"), sdr("c", daily_capacity=1)])
    # Given the previous owner at capacity today
    d = route(
        cfg, AccountTraits("x.com"), counter=1, assignments={("c", date(2026, 11, 23)): 1}, now=NOW, previous_owner="c"
    )
    # Then the pool's next SDR by the counter, with a step
    assert d.sdr is not None and d.sdr.id == "b" and not d.sticky and d.counter_step == 1


def test_a_previous_owner_no_longer_in_the_pool_is_not_sticky() -> None:
    cfg = config([sdr("a"), sdr("b")], pools=[{"id": "team", "sdrs": ["a"]}, {"id": "old", "sdrs": ["b"]}])
    d = route(cfg, AccountTraits("x.com"), counter=0, assignments={}, now=NOW, previous_owner="b")
    assert d.sdr is not None and d.sdr.id == "a" and not d.sticky


def test_an_sla_reroute_never_picks_an_sdr_already_tried_while_others_are_available() -> None:
    cfg = config([sdr("a"), sdr("b"), sdr("c")])
    # Given a and b already had the account this cycle and the counter points at a
    d = route(cfg, AccountTraits("x.com"), counter=3, assignments={}, now=NOW, previous_owner="b", tried=["a", "b"])
    # Then c, with the counter moved past the skipped slots
    assert d.sdr is not None and d.sdr.id == "c" and not d.already_tried
    assert d.counter_step == 3
    assert [(s.sdr, s.reason) for s in d.skipped] == [("a", "tried"), ("b", "owner")]


def test_an_sla_reroute_falls_back_to_a_tried_sdr_only_when_nobody_else_is_available() -> None:
    cfg = config([sdr("a"), sdr("b", active=False)])
    d = route(cfg, AccountTraits("x.com"), counter=0, assignments={}, now=NOW, tried=["a"])
    assert d.sdr is not None and d.sdr.id == "a" and d.already_tried


@pytest.mark.parametrize(
    ("sdrs", "reason"),
    [
        ([sdr("a", active=False), sdr("b", active=False)], "inactive"),
        (
            [sdr("a", out_of_office=[{"from": "2026-11-01", "to": "2026-11-30"}]), sdr("b", active=False)],
            "out_of_office",
        ),
        ([sdr("a", daily_capacity=1), sdr("b", daily_capacity=1)], "at_capacity"),
        (
            [sdr("a", daily_capacity=1), sdr("b", out_of_office=[{"from": "2026-11-23", "to": "2026-11-23"}])],
            "unavailable",
        ),
    ],
)
def test_nobody_available_gives_no_sdr_with_the_reason(sdrs: list[dict[str, Any]], reason: str) -> None:
    cfg = config(sdrs)
    counts = {("a", date(2026, 11, 23)): 1, ("b", date(2026, 11, 23)): 1}
    d = route(cfg, AccountTraits("x.com"), counter=4, assignments=counts, now=NOW)
    assert d.sdr is None and d.reason == reason
    assert d.counter_step == 0 and d.counter_next == 4
    assert "no SDR available in pool team" in d.explanation
    assert (d.retry_at is None) == (reason == "inactive")


def test_the_same_reads_give_the_same_decision() -> None:
    # Given the same counter, counts and time, When routed twice (a retry), Then the same choice
    cfg = config([sdr("a", weight=3), sdr("b"), sdr("c")])
    first = route(cfg, AccountTraits("x.com"), counter=11, assignments={}, now=NOW)
    again = route(cfg, AccountTraits("x.com"), counter=11, assignments={}, now=NOW)
    assert first == again


def test_now_must_be_aware() -> None:
    cfg = config([sdr("a")])
    with pytest.raises(ValueError, match="aware"):
        route(cfg, AccountTraits("x.com"), counter=0, assignments={}, now=datetime(2026, 11, 23, 10, 0))


def test_account_traits_from_group_traits() -> None:
    t = AccountTraits.from_traits(
        "acme.com", {"address": {"country": "UK", "state": "England"}, "industry": "SaaS", "employees": "1,200"}
    )
    assert (t.country_code, t.region, t.industry_word, t.employees) == ("GB", "EMEA", "saas", 1200.0)
    assert "GB-ENG" in t.states


def test_the_shipped_team_routes_demo_accounts() -> None:
    # Given the shipped routing.yaml, When a few demo accounts are matched, Then each lands in its region's pool
    cfg = load_routing(SHIPPED)
    assert match_pool(cfg, AccountTraits("acme.de", country="Germany", employees=200)).pool == "emea"
    assert match_pool(cfg, AccountTraits("big.fr", country="FR", employees=5000)).pool == "emea-enterprise"
    assert match_pool(cfg, AccountTraits("acme.com", country="United States")).pool == "na"
    assert match_pool(cfg, AccountTraits("acme.jp", country="Japan")).pool == "apac"
    assert match_pool(cfg, AccountTraits("acme.com.br", country="Brazil")).pool == "catch-all"
    assert match_pool(cfg, AccountTraits("globex.com", country="US")).territory == "named-accounts"
