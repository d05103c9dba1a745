"""A lead's reassignments (assign.py) on the in-memory fakes: one account by hand, an SDR's
whole book to the pool or to one SDR, the edge's answers, replays, races and a book cut short
then resumed. The messages and bus events come from the table's stream, as in production
(`MemoryOutbox`: outbox.routed_sends; accounts.state_change_events)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from leadscore.adapters.api.assign import AssignRoutes
from leadscore.adapters.http import Request
from leadscore.domain.records import Account, Assignment, RoutingStatus, SdrPause, SdrRecord, utc_text
from leadscore.engine.account_events import state_change_events
from leadscore.engine.account_views import routing_view
from leadscore.rulesfiles.loading import load_config
from leadscore.rulesfiles.routing import RoutingConfig
from leadscore.services.assign import AssignService

from tests.support.apigw import http_event, iam_authorizer
from tests.support.fakes import MemoryOutbox, MemoryQueue, MemoryStore

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday
ASSIGN = "POST /v1/accounts/{accountId}/assign"
REASSIGN = "POST /v1/sdrs/{sdrId}/reassign"
CALLER = "arn:aws:iam::123456789012:user/lea-console"
TRAITS = {"group": {"industry": "Software", "employees": 200, "address": {"country": "US"}}}


def sdr(sdr_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": sdr_id, "name": sdr_id.title(), "email": f"{sdr_id}@example.com", **extra}


def routing(*sdrs: dict[str, Any], weights: dict[str, int] | None = None, **extra: Any) -> RoutingConfig:
    people = [{**s, **({"weight": weights[s["id"]]} if weights and s["id"] in weights else {})} for s in sdrs]
    data: dict[str, Any] = {"version": 1, "sdrs": [*people, sdr("lea")], "leads": ["lea"],
                            "pools": [{"id": "team", "sdrs": [s["id"] for s in sdrs]}], "fallback_pool": "team",
                            "sla_hours": 48, **extra}
    return RoutingConfig.model_validate(data)


TEAM = routing(sdr("ana"), sdr("ben"), sdr("cy"), sdr("dee"))


def card(sdr_id: str) -> dict[str, Any]:
    return {"id": sdr_id, "name": sdr_id.title(), "email": f"{sdr_id}@example.com"}


def owned(store: MemoryStore, account_id: str, owner: str, *, state: str = "routed", cycle: int = 1,
          at: str = "2026-11-23T09:00:00Z") -> Account:
    """An account routed to `owner` in `cycle` (its assignment and routing status), or in
    another state after that routing (accepted...)."""
    status = RoutingStatus(pool="team", mode="territory", routed_at=at, sla_due_at="2026-11-25T09:00:00Z",
                           attempt=1, tried=[owner], due_at="2026-11-25T09:00:00Z" if state == "routed" else None)
    account = Account(id=account_id, version=5, state=state, cycle=cycle, name=account_id.split(".")[0].title(),
                      domain=account_id, traits=dict(TRAITS), sdr=card(owner), routing=status)
    store.accounts[account_id] = account
    store.assignments[(account_id, cycle)] = Assignment(
        account_id=account_id, cycle=cycle, sdr=owner, pool="team", territory=None, mode="territory", routed_at=at,
        sla_due_at="2026-11-25T09:00:00Z", attempt=1, tried=[owner])
    return account


def waiting(store: MemoryStore, account_id: str = "wait.io") -> Account:
    account = Account(id=account_id, version=2, state="sdr_ready", cycle=1, name="Wait", domain=account_id,
                      traits=dict(TRAITS), routing=RoutingStatus(pool="team", waiting="no SDR available in pool team",
                                                                 waiting_reason="at_capacity",
                                                                 due_at="2026-11-23T09:00:00Z"))
    store.accounts[account_id] = account
    return account


class Desk:
    """The assign API on a fake store, and the table's stream after it: the routed queue
    (the outbox stage) and the bus events (state_change_events)."""

    def __init__(self, cfg: RoutingConfig = TEAM, now: datetime = NOW, **api: Any) -> None:
        self.scoring = load_config().scoring
        self.store = MemoryStore()
        self.queue = MemoryQueue()
        self.outbox = MemoryOutbox(self.store, self.queue, self.scoring)
        self.api = AssignRoutes(AssignService(self.store, self.scoring, cfg, clock=lambda: now, sleep=lambda _: None,
                                            **api))
        self.now = now
        self._seen = 0

    def post(self, route: str, body: Any, *, account_id: str = "acme.com", sdr_id: str = "ana",
             signed: bool = True) -> tuple[int, Any]:
        path = f"/v1/accounts/{account_id}/assign" if route == ASSIGN else f"/v1/sdrs/{sdr_id}/reassign"
        params = {"accountId": account_id} if route == ASSIGN else {"sdrId": sdr_id}
        event = http_event("POST", path, route_key=route, body=body, path_parameters=params,
                           authorizer=iam_authorizer(user="lea-console") if signed else None)
        response = self.api.handle(Request.from_event(event))
        self.outbox.drain()
        return response["statusCode"], json.loads(response["body"])

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        """The bus events of the stream's account changes since the last call."""
        changes = self.store.account_stream[self._seen:]
        self._seen = len(self.store.account_stream)
        return state_change_events([(new.id, old, new) for old, new in changes], self.now)


class TestOneAccount:
    def test_a_routed_account_moves_to_the_new_sdr_with_a_message_and_account_reassigned(self) -> None:
        desk = Desk()
        owned(desk.store, "acme.com", "ana")
        status, answer = desk.post(ASSIGN, {"sdr": "cy", "by": "lea", "note": "Ana is on leave"})
        assert status == 200, answer
        assert answer["sdr"]["id"] == "cy" and answer["previousSdr"] == "ana" and answer["changed"] is True
        assert (answer["state"], answer["cycle"], answer["attempt"]) == ("routed", 1, 2)
        assert answer["assignedBy"] == "lea" and answer["slaDueAt"] == "2026-11-25T10:00:00Z"
        # one transaction: the assignment (next attempt, on cy's index), the account, cy's day
        stored = desk.store.accounts["acme.com"]
        assert stored.sdr == card("cy") and stored.version == 6 and stored.routing is not None
        assert (stored.routing.attempt, stored.routing.tried) == (2, ["ana", "cy"])
        assert stored.routing.routed_at == "2026-11-23T10:00:00Z" and stored.routing.due_at == "2026-11-25T10:00:00Z"
        assert stored.state_why == "reassigned to cy by lea (from ana)"
        assignment = desk.store.assignments[("acme.com", 1)]
        assert (assignment.sdr, assignment.attempt) == ("cy", 2)
        assert desk.store.query_assigned("ana") == [] and len(desk.store.query_assigned("cy")) == 1
        assert desk.store.sdr_days == {("cy", NOW.date()): 1}
        assert desk.store.counters == {}  # a lead's choice takes no round-robin turn
        # the new SDR's message, from the stream, with the new SLA
        (message,) = desk.queue.messages
        assert message.group_id == "cy" and message.deduplication_id == "acme.com#1#2"
        assert message.body["sdr"]["id"] == "cy" and message.body["slaDueAt"] == "2026-11-25T10:00:00Z"
        # the bus: Account Reassigned with both SDRs and the lead, no SLA breach, no Account Routed
        (event,) = desk.events()
        assert event[0] == "Account Reassigned"
        detail = event[1]
        assert detail["previousSdr"] == "ana" and detail["sdr"]["id"] == "cy" and detail["assignedBy"] == "lea"
        assert detail["slaDueAt"] == "2026-11-25T10:00:00Z" and detail["attempt"] == 2
        assert "note" not in json.dumps(detail)  # the note stays on the read API
        # the read API's routing: who, when, from whom, the IAM caller, the note
        view = routing_view(stored)
        assert view is not None and view["assigned"] == {"by": "lea", "at": "2026-11-23T10:00:00Z",
                                                         "previousSdr": "ana", "caller": CALLER,
                                                         "note": "Ana is on leave"}

    def test_replayed_it_changes_nothing_and_sends_nothing_again(self) -> None:
        desk = Desk()
        owned(desk.store, "acme.com", "ana")
        body = {"sdr": "cy", "by": "lea"}
        assert desk.post(ASSIGN, body)[0] == 200
        desk.events()
        version = desk.store.accounts["acme.com"].version
        for _ in range(3):
            status, answer = desk.post(ASSIGN, body)
            assert status == 200 and answer["changed"] is False and answer["sdr"]["id"] == "cy"
            assert answer["attempt"] == 2
        assert desk.store.accounts["acme.com"].version == version
        assert len(desk.queue.messages) == 1 and desk.events() == []
        assert desk.store.sdr_days == {("cy", NOW.date()): 1}

    def test_by_email_in_any_case(self) -> None:
        desk = Desk()
        owned(desk.store, "acme.com", "ana")
        status, answer = desk.post(ASSIGN, {"sdr": "CY@example.com", "by": "Lea@Example.com"})
        assert status == 200 and answer["sdr"]["id"] == "cy" and answer["assignedBy"] == "lea"

    def test_two_at_once_move_it_once(self) -> None:
        desk = Desk()
        owned(desk.store, "acme.com", "ana")
        answers: list[tuple[int, Any]] = []
        start = threading.Barrier(2)

        def post() -> None:
            start.wait()
            answers.append(desk.post(ASSIGN, {"sdr": "cy", "by": "lea"}))

        threads = [threading.Thread(target=post) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(a[1]["changed"] for a in answers) == [False, True] and {a[0] for a in answers} == {200}
        desk.outbox.drain()
        assert [m.group_id for m in desk.queue.messages] == ["cy"]
        assert [e[0] for e in desk.events()] == ["Account Reassigned"]

    def test_a_route_racing_it_makes_it_read_again_and_decide_on_what_is_there(self) -> None:
        desk = Desk()
        owned(desk.store, "acme.com", "ana")

        def another_lead() -> None:  # ben gets it first, between our read and our transaction
            other = AssignService(desk.store, desk.scoring, TEAM, clock=lambda: NOW)
            from leadscore.services.assign import AssignOrder

            other.assign("acme.com", AssignOrder(sdr="ben", by="lea"), caller=None)

        desk.store.before_transaction = another_lead
        status, answer = desk.post(ASSIGN, {"sdr": "cy", "by": "lea"})
        assert status == 200 and answer["previousSdr"] == "ben" and answer["attempt"] == 3
        assert [m.group_id for m in desk.queue.messages] == ["ben", "cy"]
        assert [(e[0], e[1]["previousSdr"], e[1]["sdr"]["id"]) for e in desk.events()] == [
            ("Account Reassigned", "ana", "ben"), ("Account Reassigned", "ben", "cy")]

    def test_a_waiting_account_is_routed_to_the_sdr_the_lead_names(self) -> None:
        desk = Desk()
        waiting(desk.store)
        status, answer = desk.post(ASSIGN, {"sdr": "dee", "by": "lea"}, account_id="wait.io")
        assert status == 200, answer
        assert (answer["state"], answer["attempt"], answer["previousSdr"]) == ("routed", 1, None)
        stored = desk.store.accounts["wait.io"]
        assert stored.routing is not None and stored.routing.waiting is None
        assert stored.state_why == "assigned to dee by lea"
        (message,) = desk.queue.messages
        assert (message.group_id, message.deduplication_id) == ("dee", "wait.io#1")
        (event,) = desk.events()
        assert event[0] == "Account Routed" and event[1]["assignedBy"] == "lea"
        assert event[1]["sdr"]["id"] == "dee" and event[1]["previousState"] == "sdr_ready"

    def test_at_capacity_the_lead_still_assigns_and_it_counts(self) -> None:
        cfg = routing(sdr("ana"), sdr("ben", daily_capacity=1))
        desk = Desk(cfg)
        desk.store.sdr_days[("ben", NOW.date())] = 1
        owned(desk.store, "acme.com", "ana")
        status, answer = desk.post(ASSIGN, {"sdr": "ben", "by": "lea"})
        assert status == 200 and answer["sdr"]["id"] == "ben"
        assert desk.store.sdr_days[("ben", NOW.date())] == 2

    @pytest.mark.parametrize("state", ["accepted", "recycled", "disqualified", "below_threshold", "excluded"])
    def test_other_states_are_409_naming_the_state(self, state: str) -> None:
        desk = Desk()
        owned(desk.store, "acme.com", "ana", state=state)
        status, answer = desk.post(ASSIGN, {"sdr": "cy", "by": "lea"})
        assert status == 409 and answer["field"] == "accountId" and answer["state"] == state
        assert state in answer["message"] and desk.queue.messages == [] and desk.store.account_stream == []


class TestRefused:
    @pytest.mark.parametrize(("body", "status", "field"), [
        ({"sdr": "cy", "by": "ana"}, 403, "by"),  # an SDR, not a lead
        ({"sdr": "cy", "by": "zed"}, 403, "by"),  # nobody of routing.yaml
        ({"sdr": "zed", "by": "lea"}, 400, "sdr"),
        ({"by": "lea"}, 400, "sdr"),
        ({"sdr": "cy"}, 400, "by"),
        ({"sdr": 7, "by": "lea"}, 400, "sdr"),
        ({"sdr": "", "by": "lea"}, 400, "sdr"),
        ({"sdr": "cy", "by": ["lea"]}, 400, "by"),
        ({"sdr": "cy", "by": "lea", "note": 3}, 400, "note"),
        ({"sdr": "cy", "by": "lea", "note": "x" * 2001}, 400, "note"),
        ({"sdr": "cy", "by": "lea", "owner": "cy"}, 400, "owner"),
        ({"sdr": "c\ud800", "by": "lea"}, 400, "sdr"),
        (["cy"], 400, "body"),
        ("not json", 400, "body"),
    ])
    def test_bad_input_is_4xx_naming_the_field(self, body: Any, status: int, field: str) -> None:
        desk = Desk()
        owned(desk.store, "acme.com", "ana")
        raw = body if isinstance(body, str) else json.dumps(body)
        answer = desk.post(ASSIGN, raw)
        assert answer[0] == status and answer[1]["field"] == field, answer
        assert desk.store.accounts["acme.com"].sdr == card("ana") and desk.queue.messages == []

    def test_unknown_account_is_404(self) -> None:
        desk = Desk()
        status, answer = desk.post(ASSIGN, {"sdr": "cy", "by": "lea"}, account_id="nobody.io")
        assert status == 404 and answer["error"] == "unknown_account"

    @pytest.mark.parametrize(("extra", "why"), [
        ({"active": False}, "inactive"),
        ({"out_of_office": [{"from": "2026-11-20", "to": "2026-11-24"}]}, "out of office until 2026-11-24"),
    ])
    def test_an_sdr_who_cannot_work_it_now_is_409_naming_sdr(self, extra: dict[str, Any], why: str) -> None:
        desk = Desk(routing(sdr("ana"), sdr("ben", **extra)))
        owned(desk.store, "acme.com", "ana")
        status, answer = desk.post(ASSIGN, {"sdr": "ben", "by": "lea"})
        assert status == 409 and answer["field"] == "sdr" and why in answer["message"], answer
        assert desk.queue.messages == []


def pause(store: MemoryStore, sdr_id: str, until: str | None, reason: str | None = "on a training") -> None:
    """A lead's runtime pause (PUT /v1/sdrs/{id}/availability): the SDR's record, and its copy
    in the record of each pool they are in (what the router reads)."""
    store.sdr_records[sdr_id] = SdrRecord(sdr_id, SdrPause(until=until, reason=reason, at="2026-11-23T08:00:00Z"),
                                          version=1)
    if until is None or until > utc_text(NOW):
        store.pool_pauses.setdefault("team", {})[sdr_id] = until


class TestPaused:
    @pytest.mark.parametrize(("until", "shown"), [(None, "paused until a lead returns them (on a training)"),
                                                  ("2026-11-24T09:00:00Z", "paused until 2026-11-24T09:00:00Z")])
    def test_assigning_to_a_paused_sdr_is_409_naming_sdr(self, until: str | None, shown: str) -> None:
        desk = Desk()
        owned(desk.store, "acme.com", "ana")
        pause(desk.store, "cy", until)
        status, answer = desk.post(ASSIGN, {"sdr": "cy", "by": "lea"})
        assert status == 409 and answer["field"] == "sdr" and shown in answer["message"], answer
        assert desk.store.account_stream == [] and desk.queue.messages == []

    def test_a_pause_that_ended_no_longer_holds(self) -> None:
        desk = Desk()
        owned(desk.store, "acme.com", "ana")
        pause(desk.store, "cy", "2026-11-23T09:59:59Z")
        assert desk.post(ASSIGN, {"sdr": "cy", "by": "lea"})[0] == 200

    def test_a_book_to_a_paused_sdr_is_409_naming_to(self) -> None:
        desk = Desk()
        book(desk.store, "ana", 2)
        pause(desk.store, "dee", None)
        status, answer = desk.post(REASSIGN, {"to": "dee", "by": "lea"}, sdr_id="ana")
        assert status == 409 and answer["field"] == "to" and "paused" in answer["message"]

    def test_a_book_to_the_pool_passes_over_a_paused_sdr(self) -> None:
        desk = Desk()
        ids = book(desk.store, "ana", 10)
        pause(desk.store, "cy", "2026-11-30T09:00:00Z")
        assert desk.post(REASSIGN, {"to": "pool", "by": "lea"}, sdr_id="ana")[0] == 200
        shares = Counter(desk.store.accounts[a].sdr["id"] for a in ids)  # type: ignore[index]
        assert shares == {"ben": 5, "dee": 5}

    def test_a_replay_to_an_sdr_paused_since_still_answers_as_the_first_time(self) -> None:
        desk = Desk()
        owned(desk.store, "acme.com", "ana")
        assert desk.post(ASSIGN, {"sdr": "cy", "by": "lea"})[0] == 200
        pause(desk.store, "cy", None)
        status, answer = desk.post(ASSIGN, {"sdr": "cy", "by": "lea"})
        assert status == 200 and answer["changed"] is False


def book(store: MemoryStore, owner: str, n: int) -> list[str]:
    ids = [f"acct{i:02d}.io" for i in range(n)]
    for i, account_id in enumerate(ids):
        owned(store, account_id, owner, at=utc_text(NOW.replace(hour=8, minute=i)))
    return ids


class TestBook:
    def test_to_the_pool_every_account_once_fair_within_1_each_with_a_message(self) -> None:
        desk = Desk()
        ids = book(desk.store, "ana", 20)
        owned(desk.store, "closed.io", "ana", state="accepted")  # on ana's index, not open
        owned(desk.store, "other.io", "ben")
        status, answer = desk.post(REASSIGN, {"to": "pool", "by": "lea"}, sdr_id="ana")
        assert status == 200, answer
        assert answer["more"] is False and answer["kept"] == []
        assert sorted(m["accountId"] for m in answer["moved"]) == ids
        owners = {a: desk.store.accounts[a].sdr["id"] for a in ids}  # type: ignore[index]
        shares = Counter(owners.values())
        assert set(shares) == {"ben", "cy", "dee"} and max(shares.values()) - min(shares.values()) <= 1
        assert desk.store.accounts["closed.io"].state == "accepted" and desk.store.accounts["other.io"].version == 5
        # one message per account, to its new owner, and one Account Reassigned each
        assert sorted(m.body["accountId"] for m in desk.queue.messages) == ids
        assert all(m.group_id == owners[m.body["accountId"]] for m in desk.queue.messages)
        events = desk.events()
        assert [e[0] for e in events] == ["Account Reassigned"] * 20
        assert all(e[1]["previousSdr"] == "ana" and e[1]["sdr"]["id"] == owners[e[1]["accountId"]] for e in events)
        assert desk.store.query_assigned("ana") == [desk.store.assignments[("closed.io", 1)]]
        # again: nothing left to move
        assert desk.post(REASSIGN, {"to": "pool", "by": "lea"}, sdr_id="ana")[1]["moved"] == []
        assert len(desk.queue.messages) == 20

    def test_weighted_pool_shares_within_1(self) -> None:
        cfg = routing(sdr("ana"), sdr("ben"), sdr("cy"), sdr("dee"), weights={"ben": 2})
        desk = Desk(cfg)
        book(desk.store, "ana", 20)
        assert desk.post(REASSIGN, {"to": "pool", "by": "lea"}, sdr_id="ana")[0] == 200
        shares = Counter(a.sdr["id"] for a in desk.store.accounts.values())  # type: ignore[index]
        for who, share in (("ben", 10), ("cy", 5), ("dee", 5)):  # weights 2:1:1 without ana
            assert abs(shares[who] - share) <= 1, shares

    def test_to_one_sdr(self) -> None:
        desk = Desk()
        ids = book(desk.store, "ana", 6)
        status, answer = desk.post(REASSIGN, {"to": "dee", "by": "lea", "note": "territory change"}, sdr_id="ana")
        assert status == 200 and len(answer["moved"]) == 6
        assert {desk.store.accounts[a].sdr["id"] for a in ids} == {"dee"}  # type: ignore[index]
        assert [m.group_id for m in desk.queue.messages] == ["dee"] * 6
        assert desk.store.counters == {}

    def test_nobody_available_keeps_the_account_and_says_why(self) -> None:
        desk = Desk(routing(sdr("ana"), sdr("ben", active=False)))
        book(desk.store, "ana", 2)
        status, answer = desk.post(REASSIGN, {"to": "pool", "by": "lea"}, sdr_id="ana")
        assert status == 200 and answer["moved"] == [] and len(answer["kept"]) == 2
        assert "no SDR available" in answer["kept"][0]["reason"]
        assert desk.store.account_stream == [] and desk.queue.messages == []

    def test_cut_short_by_its_time_budget_then_resumed_moves_each_account_once(self) -> None:
        ticks = iter(range(10_000))
        desk = Desk(timer=lambda: float(next(ticks)), book_seconds=6)  # a tick per account: 5 per call
        ids = book(desk.store, "ana", 12)
        calls = []
        while True:
            status, answer = desk.post(REASSIGN, {"to": "pool", "by": "lea"}, sdr_id="ana")
            assert status == 200
            calls.append(len(answer["moved"]))
            if not answer["more"]:
                break
        assert calls == [5, 5, 2]
        assert sorted(m.body["accountId"] for m in desk.queue.messages) == ids
        assert all(desk.store.accounts[a].routing.attempt == 2 for a in ids)  # type: ignore[union-attr]

    def test_a_crash_midway_then_the_same_request_again_finishes_it(self) -> None:
        desk = Desk()
        ids = book(desk.store, "ana", 10)
        real = desk.store.save_assignment
        writes = {"n": 0}

        def crashing(*args: Any, **kwargs: Any) -> None:
            writes["n"] += 1
            if writes["n"] == 4:
                raise RuntimeError("the function timed out")
            real(*args, **kwargs)

        desk.store.save_assignment = crashing  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            desk.post(REASSIGN, {"to": "pool", "by": "lea"}, sdr_id="ana")
        desk.outbox.drain()
        assert len(desk.queue.messages) == 3
        status, answer = desk.post(REASSIGN, {"to": "pool", "by": "lea"}, sdr_id="ana")
        assert status == 200 and len(answer["moved"]) == 7 and answer["more"] is False
        assert sorted(m.body["accountId"] for m in desk.queue.messages) == ids
        shares = Counter(desk.store.accounts[a].sdr["id"] for a in ids)  # type: ignore[index]
        assert max(shares.values()) - min(shares.values()) <= 1

    def test_two_at_once_move_each_account_once(self) -> None:
        desk = Desk()
        ids = book(desk.store, "ana", 20)
        answers: list[tuple[int, Any]] = []
        start = threading.Barrier(2)

        def post() -> None:
            start.wait()
            answers.append(desk.post(REASSIGN, {"to": "pool", "by": "lea"}, sdr_id="ana"))

        threads = [threading.Thread(target=post) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        desk.outbox.drain()
        moved = [m["accountId"] for _, answer in answers for m in answer["moved"]]
        assert sorted(moved) == ids  # between them, each account once
        assert sorted(m.body["accountId"] for m in desk.queue.messages) == ids
        assert all(desk.store.accounts[a].routing.attempt == 2 for a in ids)  # type: ignore[union-attr]
        shares = Counter(desk.store.accounts[a].sdr["id"] for a in ids)  # type: ignore[index]
        assert max(shares.values()) - min(shares.values()) <= 1, shares

    @pytest.mark.parametrize(("sdr_id", "body", "status", "field"), [
        ("zed", {"to": "pool", "by": "lea"}, 404, "sdrId"),
        ("ana", {"to": "pool", "by": "ben"}, 403, "by"),
        ("ana", {"to": "ana", "by": "lea"}, 400, "to"),
        ("ana", {"to": "zed", "by": "lea"}, 400, "to"),
        ("ana", {"to": "pool"}, 400, "by"),
        ("ana", {"by": "lea"}, 400, "to"),
        ("ana", {"to": "pool", "by": "lea", "sdr": "x"}, 400, "sdr"),
    ])
    def test_bad_input_is_4xx_naming_the_field(self, sdr_id: str, body: Any, status: int, field: str) -> None:
        desk = Desk()
        book(desk.store, "ana", 2)
        answer = desk.post(REASSIGN, body, sdr_id=sdr_id)
        assert answer[0] == status and answer[1]["field"] == field, answer
        assert desk.store.account_stream == []

    def test_to_an_inactive_sdr_is_409_naming_to(self) -> None:
        desk = Desk(routing(sdr("ana"), sdr("ben", active=False), sdr("cy")))
        book(desk.store, "ana", 2)
        status, answer = desk.post(REASSIGN, {"to": "ben", "by": "lea"}, sdr_id="ana")
        assert status == 409 and answer["field"] == "to" and "inactive" in answer["message"]
        assert desk.store.account_stream == []


class TestDocumented:
    """Every answer of both routes is in openapi.yaml with its status, and its body is what
    the document's schema allows; a body the code takes, the request schema allows."""

    def test_the_answers_and_bodies_agree_with_openapi(self) -> None:
        from tests.integration.test_openapi import _request_schema, _response_schema, _schema_allows

        desk = Desk(routing(sdr("ana"), sdr("ben"), sdr("cy"), sdr("dee", active=False)))
        owned(desk.store, "acme.com", "ana")
        owned(desk.store, "done.io", "ana", state="accepted")
        waiting(desk.store)
        book(desk.store, "ben", 3)
        cases = [
            (ASSIGN, {"sdr": "cy", "by": "lea", "note": "n"}, "acme.com", 200),
            (ASSIGN, {"sdr": "cy", "by": "lea"}, "acme.com", 200),  # a replay: changed false
            (ASSIGN, {"sdr": "cy", "by": "lea", "note": None}, "wait.io", 200),
            (ASSIGN, {"sdr": "cy"}, "acme.com", 400),
            (ASSIGN, {"sdr": "cy", "by": "ana"}, "acme.com", 403),
            (ASSIGN, {"sdr": "cy", "by": "lea"}, "nobody.io", 404),
            (ASSIGN, {"sdr": "dee", "by": "lea"}, "done.io", 409),
            (ASSIGN, {"sdr": "dee", "by": "lea"}, "acme.com", 409),
            (ASSIGN, {"sdr": "cy", "by": "lea", "note": "x" * 20_000}, "acme.com", 413),
            (REASSIGN, {"to": "pool", "by": "lea"}, "ben", 200),
            (REASSIGN, {"to": "ana", "by": "lea"}, "cy", 200),
            (REASSIGN, {"to": "pool", "by": "lea", "x": 1}, "ben", 400),
            (REASSIGN, {"to": "pool", "by": "cy"}, "ben", 403),
            (REASSIGN, {"to": "pool", "by": "lea"}, "zed", 404),
            (REASSIGN, {"to": "dee", "by": "lea"}, "ben", 409),
        ]
        for route, body, target, expected in cases:
            where = {"account_id": target} if route == ASSIGN else {"sdr_id": target}
            status, answer = desk.post(route, body, **where)
            assert status == expected, (route, body, answer)
            schema = _response_schema(route, status)
            assert schema is not None and _schema_allows(schema, answer), (route, status, answer)
            assert _schema_allows(_request_schema(route), body) == (status not in (400, 413)), (route, body)
