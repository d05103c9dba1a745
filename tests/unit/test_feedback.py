"""Sales feedback (feedback.py) on the in-memory store: PRODUCT's semantics of accepted,
not_ready (baseline and cooldown), disqualified and reset, replays, and the edge's answers."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from leadscore.adapters.api.feedback import FeedbackRoutes
from leadscore.adapters.http import Request
from leadscore.domain.ledgers import ContactEntry, RuleLedger
from leadscore.domain.records import Account, RoutingStatus
from leadscore.engine.account_events import state_change_events
from leadscore.engine.accounts import account_card, effective_traits, rescore_account
from leadscore.rulesfiles.loading import load_config
from leadscore.rulesfiles.routing import RoutingConfig
from leadscore.services.feedback import FeedbackService
from leadscore.services.read import ReadService

from tests.support.apigw import http_event, iam_authorizer
from tests.support.fakes import MemoryStore

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ROUTE = "POST /v1/accounts/{accountId}/feedback"
ROUTING = RoutingConfig.model_validate({
    "version": 1, "sdrs": [{"id": "ana", "name": "Ana", "email": "ana@example.com"},
                           {"id": "ben", "name": "Ben", "email": "ben@example.com"},
                           {"id": "lea", "name": "Lea", "email": "lea@example.com"}],
    "pools": [{"id": "team", "sdrs": ["ana", "ben"]}], "fallback_pool": "team", "cooldown_days": 30,
    "leads": ["lea"]})  # lea: a team lead in no pool
TRAITS = {"group": {"industry": "Software", "employees": 200, "address": {"country": "US"}}}


@pytest.fixture(scope="module")
def config() -> Any:
    return load_config()


def vp(key: str, points: float = 75, at: datetime = NOW) -> ContactEntry:
    """A decision maker who requested a demo (50) and clicked a demo link (25): points that
    do not decay."""
    assert points == 75
    return ContactEntry(key=f"u:{key}", version=1, persona="decision_maker",
                        rules={"demo_requested": RuleLedger(base=50, count=1),
                               "demo_link_clicked": RuleLedger(base=25, count=1)},
                        recent=[[at.timestamp(), points]], last_engaged=at.timestamp())


def stored(store: MemoryStore, state: str = "routed", *, entries: list[ContactEntry] | None = None,
           cycle: int = 1) -> Account:
    account = Account(id="acme.com", version=4, state=state, cycle=cycle, name="Acme", domain="acme.com",
                      traits=dict(TRAITS), entries=entries if entries is not None else [vp("jo", 75)],
                      sdr={"id": "ana", "name": "Ana", "email": "ana@example.com"},
                      routing=RoutingStatus(pool="team", routed_at="2026-11-23T09:00:00Z",
                                            sla_due_at="2026-11-25T09:00:00Z", attempt=1, tried=["ana"],
                                            due_at="2026-11-25T09:00:00Z") if state == "routed" else None)
    store.accounts[account.id] = account
    return account


def post(api: FeedbackRoutes, body: Any, account_id: str = "acme.com", *, signed: bool = True) -> tuple[int, Any]:
    event = http_event("POST", f"/v1/accounts/{account_id}/feedback", route_key=ROUTE, body=body,
                       path_parameters={"accountId": account_id},
                       authorizer=iam_authorizer(user="ana-crm") if signed else None)
    response = api.handle(Request.from_event(event))
    return response["statusCode"], json.loads(response["body"])


def api(store: MemoryStore, config: Any, now: datetime = NOW) -> FeedbackRoutes:
    return FeedbackRoutes(FeedbackService(store, config.scoring, ROUTING, clock=lambda: now))


class TestOutcomes:
    def test_accepted_closes_the_cycle_and_leaves_the_routing_index(self, config: Any) -> None:
        store = MemoryStore()
        stored(store)
        status, answer = post(api(store, config), {"outcome": "accepted", "sdr": "ana", "note": "call booked"})
        assert status == 200, answer
        assert (answer["state"], answer["cycle"], answer["replayed"]) == ("accepted", 1, False)
        assert answer["feedback"] == {"outcome": "accepted", "sdr": "ana", "note": "call booked",
                                      "by": "arn:aws:iam::123456789012:user/ana-crm",
                                      "at": "2026-11-23T10:00:00Z", "cycle": 1, "state": "accepted"}
        account = store.accounts["acme.com"]
        assert account.state == "accepted" and account.version == 5
        assert account.routing is not None and account.routing.due_at is None  # no SLA
        assert account.sdr is not None and account.sdr["id"] == "ana"

    def test_accepted_on_an_account_that_was_never_routed_is_a_conflict_naming_outcome(self, config: Any) -> None:
        store = MemoryStore()
        stored(store, "sdr_ready")
        status, answer = post(api(store, config), {"outcome": "accepted", "sdr": "ana"})
        assert status == 409 and answer["field"] == "outcome" and answer["state"] == "sdr_ready", answer
        assert "routed" in answer["message"]
        assert store.feedback == {} and store.accounts["acme.com"].state == "sdr_ready"

    def test_not_ready_recycles_with_a_baseline_and_a_cooldown(self, config: Any) -> None:
        store = MemoryStore()
        before = stored(store)
        card = account_card(config.scoring, effective_traits(before.traits), before.entries, NOW)
        status, answer = post(api(store, config), {"outcome": "not_ready", "sdr": "ana", "note": "no budget"})
        assert status == 200, answer
        assert answer["state"] == "recycled" and answer["cooldownUntil"] == "2026-12-23T10:00:00Z"
        account = store.accounts["acme.com"]
        assert account.engagement_baseline == card.engagement + card.bonus == 75
        # no SLA any more; due on the routing index when the cooldown ends (valued again then)
        assert account.routing is not None and account.routing.due_at == account.cooldown_until
        # the same engagement, after the cooldown: still recycled (it no longer counts)
        later = NOW + timedelta(days=31)
        rescore_account(config.scoring, account, later)
        assert account.score is not None and account.score >= 100 and account.state == "recycled"
        # new engagement during the cooldown: held
        during = replace(account, entries=[vp("jo", 75), vp("li", 75)])
        rescore_account(config.scoring, during, NOW + timedelta(days=10))
        assert during.state == "recycled" and during.cycle == 1
        # new engagement after it: a new cycle, the baseline and cooldown spent, the SDR kept (sticky)
        rescore_account(config.scoring, during, later)
        assert (during.state, during.cycle) == ("sdr_ready", 2)
        assert during.engagement_baseline is None and during.cooldown_until is None
        assert during.sdr is not None and during.sdr["id"] == "ana"

    def test_disqualified_is_never_qualified_until_reset_which_re_evaluates(self, config: Any) -> None:
        store = MemoryStore()
        stored(store, "below_threshold", entries=[vp("jo", 75), vp("li", 75)])
        feedback = api(store, config)
        assert post(feedback, {"outcome": "disqualified", "sdr": "ana", "note": "student project"})[0] == 200
        account = store.accounts["acme.com"]
        rescore_account(config.scoring, account, NOW)
        assert account.state == "disqualified" and account.score is not None and account.score >= 100
        status, answer = post(feedback, {"outcome": "reset", "sdr": "ana"})
        assert status == 200, answer
        assert (answer["state"], answer["cycle"]) == ("sdr_ready", 2)  # re-evaluated at once: a new cycle
        assert store.accounts["acme.com"].routing is not None
        assert store.accounts["acme.com"].routing.due_at  # on the routing index (safety net)

    def test_reset_needs_a_disqualified_account(self, config: Any) -> None:
        store = MemoryStore()
        stored(store)
        status, answer = post(api(store, config), {"outcome": "reset", "sdr": "ana"})
        assert status == 409 and answer["field"] == "outcome"

    def test_unknown_account_is_404(self, config: Any) -> None:
        status, answer = post(api(MemoryStore(), config), {"outcome": "accepted", "sdr": "ana"}, "nope.io")
        assert status == 404 and answer["error"] == "unknown_account"


class TestReplays:
    def test_the_same_body_twice_changes_nothing_the_second_time(self, config: Any) -> None:
        store = MemoryStore()
        stored(store)
        feedback = api(store, config)
        body = {"outcome": "not_ready", "sdr": "ana", "note": "next quarter"}
        first = post(feedback, body)
        version = store.accounts["acme.com"].version
        again = post(feedback, body)
        assert first[0] == again[0] == 200
        assert again[1]["replayed"] is True and again[1]["state"] == "recycled"
        assert store.accounts["acme.com"].version == version and len(store.feedback["acme.com"]) == 1

    def test_a_different_note_is_new_feedback(self, config: Any) -> None:
        store = MemoryStore()
        stored(store)
        feedback = api(store, config)
        assert post(feedback, {"outcome": "disqualified", "sdr": "ana", "note": "a"})[0] == 200
        status, answer = post(feedback, {"outcome": "disqualified", "sdr": "ana", "note": "b"})
        assert status == 409  # already disqualified: that outcome does not fit again

    def test_disqualified_reset_disqualified_applies_each(self, config: Any) -> None:
        store = MemoryStore()
        stored(store, "below_threshold", entries=[])
        feedback = api(store, config)
        body = {"outcome": "disqualified", "sdr": "ana"}
        assert post(feedback, body)[1]["replayed"] is False
        assert post(feedback, {"outcome": "reset", "sdr": "ana"})[1]["state"] == "below_threshold"
        assert post(feedback, {"outcome": "reset", "sdr": "ana"})[1]["replayed"] is True
        assert post(feedback, body)[1]["replayed"] is False
        assert [f.outcome for f in store.load_feedback("acme.com")] == ["disqualified", "reset", "disqualified"]

    def test_a_concurrent_write_makes_it_read_again(self, config: Any) -> None:
        store = MemoryStore()
        stored(store)
        save = store.save_feedback
        raced = {"left": 1}

        def racing(feedback: Any, account: Account, expected: int | None) -> None:
            if raced["left"]:
                raced["left"] -= 1
                moved = store.accounts["acme.com"]
                store.accounts["acme.com"] = replace(moved, version=(moved.version or 0) + 1)  # the aggregation
            save(feedback, account, expected)

        store.save_feedback = racing  # type: ignore[method-assign]
        status, answer = post(api(store, config), {"outcome": "accepted", "sdr": "ana"})
        assert status == 200 and answer["state"] == "accepted"
        assert store.accounts["acme.com"].version == 6 and len(store.feedback["acme.com"]) == 1


BAD_BODIES: list[tuple[Any, str]] = [
    ({"sdr": "ana"}, "outcome"),
    ({"outcome": "maybe", "sdr": "ana"}, "outcome"),
    ({"outcome": 1, "sdr": "ana"}, "outcome"),
    ({"outcome": "accepted"}, "sdr"),
    ({"outcome": "accepted", "sdr": ""}, "sdr"),
    ({"outcome": "accepted", "sdr": "   "}, "sdr"),
    ({"outcome": "accepted", "sdr": "a" * 257}, "sdr"),
    ({"outcome": "accepted", "sdr": 7}, "sdr"),
    ({"outcome": "accepted", "sdr": "ana", "note": "n" * 2001}, "note"),
    ({"outcome": "accepted", "sdr": "ana", "note": ["x"]}, "note"),
    ({"outcome": "accepted", "sdr": "ana", "notes": "typo"}, "notes"),
    ([{"outcome": "accepted"}], "body"),
    ("{", "body"),
    ("", "body"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_bad_bodies_are_400_naming_the_field(config: Any, body: Any, field: str) -> None:
    store = MemoryStore()
    stored(store)
    status, answer = post(api(store, config), body)
    assert status == 400, answer
    assert answer["field"] == field and answer["success"] is False and field in answer["message"], answer
    assert store.feedback == {} and store.accounts["acme.com"].version == 4


def test_edges_that_are_allowed(config: Any) -> None:
    store = MemoryStore()
    stored(store)
    status, answer = post(api(store, config), {"outcome": "accepted", "sdr": " ana ", "note": "n" * 2000},
                          signed=False)
    assert status == 200 and answer["feedback"]["by"] is None


def test_the_read_api_shows_each_outcome_newest_first_with_who_and_when(config: Any) -> None:
    store = MemoryStore()
    stored(store)
    assert post(api(store, config), {"outcome": "accepted", "sdr": "ana", "note": "booked"})[0] == 200
    later = NOW + timedelta(days=2)
    assert post(api(store, config, later), {"outcome": "not_ready", "sdr": "ana", "note": "no budget"})[0] == 200
    read = ReadService(store, config, clock=lambda: later)
    answer = read.account("acme.com", later)
    assert [(f["outcome"], f["sdr"], f["at"], f["note"]) for f in answer["feedback"]] == [
        ("not_ready", "ana", "2026-11-25T10:00:00Z", "no budget"),
        ("accepted", "ana", "2026-11-23T10:00:00Z", "booked")]
    assert answer["feedback"][0]["by"] == "arn:aws:iam::123456789012:user/ana-crm"
    assert answer["state"] == "recycled" and answer["cooldownUntil"] == "2026-12-25T10:00:00Z"
    assert answer["engagementBaseline"] == 75
    # an account without feedback costs no feedback read
    store.accounts["other.io"] = Account(id="other.io", version=1, state="below_threshold", cycle=0)
    calls = store.calls.get("load_feedback", 0)
    assert read.account("other.io", later)["feedback"] == []
    assert store.calls.get("load_feedback", 0) == calls


def test_the_bus_events_of_feedback_say_who_and_when(config: Any) -> None:
    store = MemoryStore()
    before = stored(store)
    post(api(store, config), {"outcome": "not_ready", "sdr": "ana", "note": "secret"})
    after = store.accounts["acme.com"]
    ((kind, detail),) = [e for e in state_change_events([("A#acme.com", before, after)], NOW)
                         if e[0] != "Account Score Changed"]
    assert kind == "Account Recycled"
    assert detail["feedback"] == {"outcome": "not_ready", "sdr": "ana", "at": "2026-11-23T10:00:00Z", "cycle": 1}
    assert detail["cooldownUntil"] == "2026-12-23T10:00:00Z" and "secret" not in json.dumps(detail)
    # accepted has no event of its own (not in PRODUCT's list)
    accepted = replace(before, state="accepted")
    assert [e[0] for e in state_change_events([("A#acme.com", before, accepted)], NOW)] == []


# --------------------------------------------------------------------------- issue 21


def test_item6_a_routed_account_whose_score_dips_stays_with_its_sdr(config: Any) -> None:
    """Once routed, the cycle is the SDR's until feedback or the SLA: a dip below
    requalify_below shows in the score, not the state; the SLA stays due; she can accept it."""
    store = MemoryStore()
    account = stored(store)
    account.traits = {}  # the account's fit (30) is gone: 75, under requalify_below (80)
    rescore_account(config.scoring, account, NOW)
    assert account.score is not None and account.score < config.scoring.account.thresholds.requalify_below
    assert (account.state, account.cycle) == ("routed", 1)
    assert account.routing is not None and account.routing.due_at == "2026-11-25T09:00:00Z"  # the SLA still runs
    assert account.sdr is not None and account.sdr["id"] == "ana"
    status, answer = post(api(store, config), {"outcome": "accepted", "sdr": "ana"})
    assert status == 200 and answer["state"] == "accepted", answer
    # not yet routed (waiting for an SDR): nobody has it, so a dip still recycles it
    waiting = stored(MemoryStore(), "sdr_ready")
    waiting.traits = {}
    rescore_account(config.scoring, waiting, NOW)
    assert (waiting.state, waiting.cycle) == ("recycled", 1) and waiting.cooldown_until is None
    # and it qualifies again on its whole score (recycled by the score: no baseline)
    waiting.traits = dict(TRAITS)
    rescore_account(config.scoring, waiting, NOW)
    assert (waiting.state, waiting.cycle) == ("sdr_ready", 2)


class TestItem7FeedbackOnlyFromTheOwner:
    def test_item7_feedback_only_from_the_owner(self, config: Any) -> None:
        store = MemoryStore()
        stored(store)  # routed to ana
        feedback = api(store, config)
        status, answer = post(feedback, {"outcome": "accepted", "sdr": "ben"})
        assert status == 409 and answer["field"] == "sdr" and answer["owner"] == "ana", answer
        assert "ana" in answer["message"]
        status, answer = post(feedback, {"outcome": "accepted", "sdr": "anyone"})
        assert status == 400 and answer["field"] == "sdr" and "routing.yaml" in answer["message"], answer
        assert store.feedback == {} and store.accounts["acme.com"].version == 4
        status, answer = post(feedback, {"outcome": "accepted", "sdr": "ana"})
        assert status == 200 and answer["feedback"]["sdr"] == "ana", answer

    def test_item7_the_previous_owner_after_a_re_route_gets_409_naming_the_current_one(self, config: Any) -> None:
        store = MemoryStore()
        account = stored(store)
        account.sdr = {"id": "ben", "name": "Ben", "email": "ben@example.com"}  # the SLA moved it to ben
        assert account.routing is not None
        account.routing = replace(account.routing, attempt=2, tried=["ana", "ben"])
        status, answer = post(api(store, config), {"outcome": "accepted", "sdr": "ana"})
        assert status == 409 and answer["owner"] == "ben" and "ben" in answer["message"], answer
        assert post(api(store, config), {"outcome": "accepted", "sdr": "ben"})[0] == 200

    def test_item7_a_lead_acts_on_any_account_and_the_caller_is_kept(self, config: Any) -> None:
        store = MemoryStore()
        stored(store)
        status, answer = post(api(store, config), {"outcome": "not_ready", "sdr": "lea", "note": "next year"})
        assert status == 200 and answer["state"] == "recycled", answer
        (kept,) = store.load_feedback("acme.com")
        assert (kept.sdr, kept.caller) == ("lea", "arn:aws:iam::123456789012:user/ana-crm")
        # an account nobody ever had: only a lead may act on it
        store.accounts["new.io"] = Account(id="new.io", version=1, state="below_threshold", cycle=0)
        status, answer = post(api(store, config), {"outcome": "disqualified", "sdr": "ana"}, "new.io")
        assert status == 409 and answer["field"] == "sdr" and answer["owner"] is None, answer
        status, answer = post(api(store, config), {"outcome": "disqualified", "sdr": "lea"}, "new.io")
        assert status == 200 and answer["state"] == "disqualified", answer

    def test_item7_an_sdr_may_be_named_by_email(self, config: Any) -> None:
        store = MemoryStore()
        stored(store)
        status, answer = post(api(store, config), {"outcome": "accepted", "sdr": "Ana@Example.com"})
        assert status == 200 and answer["feedback"]["sdr"] == "ana", answer


def test_item8_a_lone_surrogate_in_a_feedback_is_400_naming_its_field(config: Any) -> None:
    store = MemoryStore()
    stored(store)
    for raw, field in (('{"outcome": "accepted", "sdr": "ana", "note": "a\\ud800b"}', "note"),
                       ('{"outcome": "accepted", "sdr": "an\\udfffa"}', "sdr")):
        status, answer = post(api(store, config), raw)
        assert status == 400 and answer["field"] == field, (raw, answer)
    assert store.feedback == {} and store.accounts["acme.com"].version == 4


def test_item14_disqualified_then_reset_keeps_a_not_ready_cooldown_and_baseline(config: Any) -> None:
    store = MemoryStore()
    stored(store)
    feedback = api(store, config)
    assert post(feedback, {"outcome": "not_ready", "sdr": "ana"})[0] == 200
    held = store.accounts["acme.com"]
    cooldown, baseline = held.cooldown_until, held.engagement_baseline
    assert cooldown == "2026-12-23T10:00:00Z" and baseline == 75
    later = api(store, config, NOW + timedelta(days=1))
    assert post(later, {"outcome": "disqualified", "sdr": "ana", "note": "wrong account"})[0] == 200
    status, answer = post(later, {"outcome": "reset", "sdr": "ana", "note": "it was the right one"})
    assert status == 200, answer
    assert (answer["state"], answer["cycle"], answer["cooldownUntil"]) == ("recycled", 1, cooldown)
    account = store.accounts["acme.com"]
    assert account.engagement_baseline == baseline
    assert account.routing is not None and account.routing.due_at == cooldown  # valued again when it ends
    # as before the disqualification: new engagement waits for the cooldown, old never counts
    during = replace(account, entries=[vp("jo"), vp("li")])
    rescore_account(config.scoring, during, NOW + timedelta(days=10))
    assert (during.state, during.cycle) == ("recycled", 1)
    after = replace(account, entries=list(account.entries))
    rescore_account(config.scoring, after, NOW + timedelta(days=40))
    assert after.state == "recycled"
    rescore_account(config.scoring, during, NOW + timedelta(days=40))
    assert (during.state, during.cycle) == ("sdr_ready", 2)
