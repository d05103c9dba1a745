"""The team lead's controls, pure parts and the router on the in-memory fakes: a pause in the
routing choice (skip reason `paused`), no catch-up after a pause or an absence (each SDR within
1 of their weighted share over the next 40 routes), the SDRs' books from account changes, the
availability body and the book's cursor."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from leadscore.adapters.api.team import availability_from_json
from leadscore.adapters.http import HttpError
from leadscore.adapters.items import book_cursor, book_start
from leadscore.domain.records import Account, RoutingStatus, utc_text
from leadscore.engine.routing import GLOBAL_POOL, PoolChoice, choose_sdr
from leadscore.services.team import book_changes

from tests.support.fakes import MemoryQueue, MemoryStore
from tests.unit.test_router import ready, router, routing, sdr

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday
TEAM = routing(sdr("ana", weight=2), sdr("ben"), sdr("cy"))
POOL = PoolChoice("territory", "team", None, ("ana", "ben", "cy"))


class TestPausedInTheChoice:
    def test_a_paused_sdr_is_skipped_with_the_reason_and_when_it_ends(self) -> None:
        until = NOW + timedelta(hours=5)
        decision = choose_sdr(TEAM, POOL, counter=0, assignments={}, now=NOW, paused={"ana": until})
        assert decision.sdr is not None and decision.sdr.id == "ben"
        (skip,) = decision.skipped
        assert (skip.sdr, skip.reason, skip.resumes) == ("ana", "paused", until)

    def test_a_pause_over_by_now_is_ignored(self) -> None:
        decision = choose_sdr(TEAM, POOL, counter=0, assignments={}, now=NOW, paused={"ana": NOW})
        assert decision.sdr is not None and decision.sdr.id == "ana"

    def test_a_pool_all_paused_waits_until_the_first_pause_ends(self) -> None:
        soon, later = NOW + timedelta(hours=1), NOW + timedelta(days=2)
        decision = choose_sdr(TEAM, POOL, counter=0, assignments={}, now=NOW,
                              paused={"ana": later, "ben": soon, "cy": None})
        assert decision.sdr is None and decision.reason == "paused" and decision.retry_at == soon
        assert "cy paused;" in decision.explanation or decision.explanation.endswith("cy paused")
        assert f"ben paused until {soon.isoformat()}" in decision.explanation

    def test_a_paused_previous_owner_is_not_sticky(self) -> None:
        decision = choose_sdr(TEAM, POOL, counter=0, assignments={}, now=NOW, previous_owner="ben",
                              paused={"ben": None})
        assert decision.sdr is not None and decision.sdr.id == "ana" and not decision.sticky


def _route(store: MemoryStore, queue: MemoryQueue, n: int, now: datetime, cfg: Any = TEAM) -> str:
    ready(store, f"a{n}.com")
    outcome = router(store, queue, cfg, now).route_ready(f"a{n}.com", 1)  # a router per invocation
    assert outcome.status == "routed", outcome
    return str(outcome.sdr)


def _within_one_of_share(owners: list[str], weights: dict[str, int]) -> None:
    total = sum(weights.values())
    counts = Counter(owners)
    for sdr_id, weight in weights.items():
        assert abs(counts[sdr_id] - len(owners) * weight / total) <= 1, (sdr_id, counts)


class TestNoCatchUp:
    @pytest.mark.parametrize("paused_for", [3, 10, 25])
    def test_back_from_a_pause_each_sdr_stays_within_1_of_their_share_over_the_next_40(self, paused_for: int
                                                                                        ) -> None:
        store, queue = MemoryStore(), MemoryQueue()
        store.pool_pauses["team"] = {"ana": utc_text(NOW + timedelta(hours=1))}
        during = [_route(store, queue, n, NOW) for n in range(paused_for)]
        assert "ana" not in during  # the router reads the pause with the pool record
        after = [_route(store, queue, 100 + n, NOW + timedelta(hours=1)) for n in range(40)]
        _within_one_of_share(after, {"ana": 2, "ben": 1, "cy": 1})
        # and any 40 in a row after it: no burst at the start either
        _within_one_of_share(after[:4], {"ana": 2, "ben": 1, "cy": 1})

    def test_back_from_out_of_office_the_same(self) -> None:
        cfg = routing(sdr("ana", weight=2), sdr("ben", out_of_office=[{"from": "2026-11-23", "to": "2026-11-24"}]),
                      sdr("cy"))
        store, queue = MemoryStore(), MemoryQueue()
        during = [_route(store, queue, n, NOW, cfg) for n in range(9)]
        assert "ben" not in during
        after = [_route(store, queue, 100 + n, NOW + timedelta(days=2), cfg) for n in range(40)]
        _within_one_of_share(after, {"ana": 2, "ben": 1, "cy": 1})

    def test_in_round_robin_mode_the_global_pool_carries_the_pause(self) -> None:
        cfg = routing(sdr("ana"), sdr("ben"), mode="round_robin")
        store, queue = MemoryStore(), MemoryQueue()
        store.pool_pauses[GLOBAL_POOL] = {"ben": None}
        assert {_route(store, queue, n, NOW, cfg) for n in range(4)} == {"ana"}


def _account(state: str, sdr_id: str | None, *, cycle: int = 1, attempt: int = 1, sla: str = "2026-11-25T10:00:00Z",
             routed_at: str = "2026-11-23T10:00:00Z", waiting: str | None = None, updated: str = "2026-11-23T10:00:00Z",
             state_at: str | None = None) -> Account:
    return Account(id="acme.com", state=state, cycle=cycle, sdr={"id": sdr_id} if sdr_id else None,
                   updated_at=updated, state_at=state_at,
                   routing=RoutingStatus(pool="team", routed_at=routed_at, sla_due_at=sla, attempt=attempt,
                                         waiting=waiting))


class TestBookChanges:
    def test_routed_opens_accepted_closes_and_counts(self) -> None:
        routed = _account("routed", "ana")
        assert [(c.sdr, c.kind, c.key) for c in book_changes(_account("sdr_ready", None), routed)] == [
            ("ana", "open", "acme.com#1")]
        accepted = _account("accepted", "ana", state_at="2026-11-23T12:00:00+00:00")
        assert [(c.sdr, c.kind, c.key, c.at) for c in book_changes(routed, accepted)] == [
            ("ana", "close", "acme.com#1", "2026-11-23T10:00:00Z"),
            ("ana", "accepted", "acme.com#1", "2026-11-23T12:00:00Z")]
        assert book_changes(routed, routed) == []  # a rewrite of the same routing (a score change)

    def test_an_sla_breach_counts_once_whether_it_waited_first_or_not(self) -> None:
        routed = _account("routed", "ana")
        waiting = _account("routed", "ana", waiting="nobody else", updated="2026-11-25T10:05:00Z")
        moved = _account("routed", "ben", attempt=2, routed_at="2026-11-25T11:00:00Z", sla="2026-11-27T11:00:00Z")
        first = [(c.sdr, c.kind, c.key, c.at) for c in book_changes(routed, waiting)]
        assert first == [("ana", "breach", "acme.com#1#1", "2026-11-25T10:00:00Z")]
        then = [(c.sdr, c.kind, c.key, c.at) for c in book_changes(waiting, moved)]
        assert ("ana", "breach", "acme.com#1#1", "2026-11-25T10:00:00Z") in then  # the same item
        assert [(c.sdr, c.kind) for c in book_changes(routed, moved)] == [
            ("ana", "close"), ("ben", "open"), ("ana", "breach")]

    def test_a_reassignment_before_the_sla_ends_is_no_breach(self) -> None:
        routed = _account("routed", "ana")
        early = _account("routed", "ben", attempt=2, routed_at="2026-11-24T10:00:00Z")
        assert [(c.sdr, c.kind) for c in book_changes(routed, early)] == [("ana", "close"), ("ben", "open")]

    def test_a_new_cycle_closes_the_old_one(self) -> None:
        old = _account("routed", "ana")
        new = _account("routed", "ana", cycle=2)
        assert [(c.kind, c.key) for c in book_changes(old, new)] == [("close", "acme.com#1"), ("open", "acme.com#2")]


class TestInput:
    @pytest.mark.parametrize(("data", "field"), [
        ({}, "available"), ({"available": 0}, "available"), ({"available": False, "until": "2026-11-23T09:00:00Z"},
                                                             "until"),
        ({"available": False, "until": "2026-11-23T10:00:00+00:00"}, "until"),
        ({"available": False, "until": "2026-11-30T10:00:00"}, "until"),
        ({"available": True, "reason": "back"}, "reason"), ({"available": False, "reason": "\ud800"}, "reason"),
        ({"available": False, "why": "x"}, "why"),
    ])
    def test_bad_bodies_name_the_field(self, data: dict[str, Any], field: str) -> None:
        with pytest.raises(HttpError) as refused:
            availability_from_json(data, NOW)
        assert refused.value.status == 400 and refused.value.extra["field"] == field

    def test_a_good_body(self) -> None:
        body = availability_from_json({"available": False, "until": "2026-11-24T09:00:00+01:00",
                                           "reason": None}, NOW)
        assert body.until == datetime(2026, 11, 24, 8, 0, tzinfo=UTC) and body.available is False

    def test_a_cursor_goes_back_and_forth_and_garbage_is_refused(self) -> None:
        key = {"own": "ana", "own_at": "2026-11-23T10:00:00Z", "pk": "A#acme.com", "sk": "RT#000001"}
        assert book_start(book_cursor(key), "ana") == key
        assert book_start(book_cursor(key), "ben") == {**key, "own": "ben"}  # only ever the book asked
        for garbage in ("", "%%%", book_cursor({**key, "pk": "C#someone"}), book_cursor({**key, "own_at": "x"}),
                        "e30", "W10", "x" * 3000):
            with pytest.raises(ValueError):
                book_start(garbage, "ana")


class TestPausePools:
    def test_a_pause_goes_to_every_pool_so_one_she_joins_later_knows_it(self) -> None:
        from leadscore.services.team import pause_pools

        assert pause_pools(TEAM, "ana") == ["team", GLOBAL_POOL]
        from leadscore.rulesfiles.routing import RoutingConfig

        many = RoutingConfig.model_validate({
            "version": 1, "sdrs": [sdr("ana"), sdr("ben")], "fallback_pool": "p0",
            "pools": [{"id": f"p{i}", "sdrs": ["ana", "ben"] if i < 3 else ["ben"]} for i in range(120)]})
        assert pause_pools(many, "ana") == ["p0", "p1", "p2"]  # one transaction: only hers
