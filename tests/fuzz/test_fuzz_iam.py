"""Every IAM-authorized route, fuzzed in process through its real handler
(`functions/read_api/app.py`, `functions/feedback/app.py`) with API Gateway HTTP API v2
events, the shipped config/ and the shipped Store over the in-memory DynamoDB of
tests/fuzz/fakes.py (which refuses what the real one refuses: lone surrogates, keys over
DynamoDB's sizes...). The table holds one account routed to maya and one of its contacts.

Properties, for every generated path, query and body, signed or not:
- never a 5xx, never an exception out of the handler;
- a 4xx is JSON with `error`, `code` and `message`; a `field`, when given, names something;
- the read routes write nothing;
- feedback writes nothing unless it answers 200, and then one feedback item and the account;
  a 200 (not a replay) names the account's owner or a lead of routing.yaml as `sdr`.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any
from unittest import mock
from urllib.parse import quote

from hypothesis import event as statistic
from hypothesis import given, note
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from local.apigw import http_event, iam_authorizer, lambda_context
from tests.fuzz.fakes import FakeDynamoDB, fake_store
from tests.fuzz.strategies import Raw, any_text, dumps, hostile_value, json_values, timestamps
from tests.fuzz.tally import TALLY, fuzz_settings

ACCOUNT = "acme.com"
OWNER = "maya"
READ_ROUTES = ("GET /v1/accounts/{accountId}", "GET /v1/contacts/{contactId}")
FEEDBACK_ROUTE = "POST /v1/accounts/{accountId}/feedback"


@cache
def _routing() -> Any:
    from leadscore.adapters import runtime
    return runtime.routing()


def seeded() -> tuple[Any, FakeDynamoDB]:
    """A fresh fake table with the account (routed to maya, cycle 1) and its contact."""
    from leadscore.domain.records import Account, Contact, RoutingStatus

    store, table = fake_store()
    store.save_account(Account(
        id=ACCOUNT, version=1, state="routed", cycle=1, name="Acme", domain=ACCOUNT,
        traits={"group": {"industry": "Software", "employees": 200, "address": {"country": "US"}}},
        sdr={"id": OWNER, "name": "Maya Johnson", "email": "maya@example.com"},
        routing=RoutingStatus(pool="na", territory="na", mode="territory", routed_at="2026-11-23T09:00:00Z",
                              sla_due_at="2026-11-25T09:00:00Z", attempt=1, tried=[OWNER],
                              due_at="2026-11-25T09:00:00Z")), None)
    store.save_contact(Contact(key="u:jo", version=1, user_id="jo", email="jo@acme.com", account=ACCOUNT), None)
    table.writes.clear()
    table.calls.clear()
    return store, table


def invoke(route: str, path_parameters: dict[str, str], *, query: str = "", body: bytes | None = None,
           headers: dict[str, str] | None = None, signed: bool = True) -> tuple[dict[str, Any], FakeDynamoDB]:
    from leadscore.adapters import runtime

    from functions.feedback.app import lambda_handler as feedback_handler
    from functions.read_api.app import lambda_handler as read_handler

    store, table = seeded()
    method, template = route.split(" ", 1)
    path = template
    for name, value in path_parameters.items():
        path = path.replace("{" + name + "}", quote(value, safe="", errors="surrogatepass"))
    event = http_event(method, path + (f"?{query}" if query else ""), route_key=route, body=body,
                       headers=headers, path_parameters=path_parameters,
                       authorizer=iam_authorizer(user="crm-bot") if signed else None)
    if currently_in_test_context():
        note(f"{route} params={path_parameters!r} ?{query[:300]!r} headers={headers} body={(body or b'')[:600]!r}")
        TALLY.add(route)
    handler, function = ((feedback_handler, "FeedbackFunction") if route == FEEDBACK_ROUTE
                         else (read_handler, "ReadApiFunction"))
    with mock.patch.object(runtime, "store", lambda: store):
        response = handler(event, lambda_context(function))
    return response, table


def check_answer(response: dict[str, Any]) -> Any:
    """No 5xx; a 4xx is the JSON error envelope; returns the decoded body."""
    status = response["statusCode"]
    if currently_in_test_context():
        statistic(f"status {status}")  # --hypothesis-show-statistics: how often each answer was reached
    assert status < 500, response
    answer = json.loads(response.get("body") or "null")
    if 400 <= status < 500:
        assert response["headers"]["content-type"].startswith("application/json"), response
        assert isinstance(answer, dict), response
        for key in ("error", "code", "message"):
            assert isinstance(answer.get(key), str) and answer[key], (key, answer)
        if "field" in answer:
            assert isinstance(answer["field"], str) and answer["field"].strip(), answer
    return answer


# --- what varies -----------------------------------------------------------------------------------

lone_surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3)
path_ids = st.one_of(
    st.sampled_from([ACCOUNT, "ACME.com", " acme.com ", "jo", "jo@acme.com", "nobody.io", "", " ", "%", "%ZZ",
                     "%ED%A0%80", "%F0%9F%98%80", "a" * 3000, "😀" * 600, "é" * 1100, "A#acme.com", "../acme.com"]),
    any_text,
    st.builds(lambda a, s, b: a + s + b, st.text(max_size=5), lone_surrogates, st.text(max_size=5)),
    st.text(min_size=200, max_size=700),
)
queries = st.one_of(
    st.just(""),
    st.builds(lambda at: "at=" + quote(str(at), safe="", errors="surrogatepass"), st.one_of(timestamps, any_text)),
    st.sampled_from(["at=", "at=%ED%A0%80", "at=%FF", "at=2026-11-25T10:00:00Z&at=x", "at=" + "9" * 5000,
                     "x=1&y", "at=2026-11-25T10:00:00%2B14:00", "at=0001-01-01T00:00:00-23:59"]),
)
sdr_names = st.one_of(st.sampled_from([OWNER, "amara", "lucas", "MAYA@example.com", "amara@example.com", " maya ",
                                       "nobody", "", "a" * 257]),
                      any_text, st.builds(Raw, st.sampled_from(['"ma\\ud800ya"', '"\\udfff"', "1", "null", "[]"])))
notes = st.one_of(st.none(), any_text, st.text(st.characters(codec="utf-8"), max_size=30),
                  st.sampled_from(["n" * 2000, "n" * 2001, "😀" * 2000]),
                  st.builds(Raw, st.sampled_from(['"a\\ud800b"', '"\\udc00"', '"' + "\\ud83d" * 40 + '"', "7"])))


@st.composite
def feedback_body(draw: st.DrawFn) -> Any:
    """Mostly near-valid bodies (so the state machine and the writes are reached), some junk."""
    kind = draw(st.sampled_from(["near"] * 5 + ["json", "hostile", "bytes"]))
    if kind == "json":
        return draw(json_values)
    if kind == "hostile":
        return {"outcome": "accepted", "sdr": OWNER, draw(st.sampled_from(["note", "sdr", "outcome", "x"])):
                draw(hostile_value)}
    if kind == "bytes":
        return draw(st.one_of(st.binary(max_size=64), st.just(b"\xef\xbb\xbf{}"), st.just(b"{" * 5000),
                              st.just(b'{"outcome":"accepted","sdr":"maya","note":"\xed\xa0\x80"}')))
    body: dict[str, Any] = {
        "outcome": draw(st.sampled_from(["accepted", "not_ready", "disqualified", "reset"]) if draw(st.integers(0, 9))
                        else any_text),
        "sdr": draw(st.sampled_from([OWNER, "amara", "lucas"]) if draw(st.integers(0, 2)) else sdr_names),
    }
    if draw(st.booleans()):
        body["note"] = draw(st.text(max_size=40) if draw(st.booleans()) else notes)
    return body


def encoded(body: Any) -> bytes:
    return body if isinstance(body, bytes) else dumps(body).encode("utf-8", "surrogatepass")


# --- the properties --------------------------------------------------------------------------------


@fuzz_settings(400)
@given(route=st.sampled_from(READ_ROUTES), value=st.one_of(st.sampled_from([ACCOUNT, "jo"]), path_ids), query=queries,
       signed=st.booleans())
def test_read_routes(route: str, value: str, query: str, signed: bool) -> None:
    name = "accountId" if "accounts" in route else "contactId"
    response, table = invoke(route, {name: value}, query=query, signed=signed)
    answer = check_answer(response)
    assert table.total_writes == 0, table.writes
    if response["statusCode"] == 200:
        assert (answer.get("accountId") if name == "accountId" else answer.get("contactId")) in (ACCOUNT, "jo")


@fuzz_settings(600)
@given(account=st.one_of(st.just(ACCOUNT), st.just(ACCOUNT), path_ids), body=feedback_body(), signed=st.booleans(),
       content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]))
def test_feedback(account: str, body: Any, signed: bool, content_type: str) -> None:
    response, table = invoke(FEEDBACK_ROUTE, {"accountId": account}, body=encoded(body),
                             headers={"content-type": content_type} if content_type else None, signed=signed)
    answer = check_answer(response)
    if response["statusCode"] != 200:
        assert table.total_writes == 0, (table.writes, answer)
        return
    assert answer["accountId"] == ACCOUNT and answer["replayed"] is False, answer
    assert answer["feedback"]["sdr"] in (OWNER, *_routing().leads), answer
    assert answer["feedback"]["by"] == ("arn:aws:iam::123456789012:user/crm-bot" if signed else None)
    assert (table.writes["FB"], table.total_writes) == (1, 2), table.writes


def test_item8_ids_no_stored_item_can_have_are_404_without_a_read() -> None:
    """Over 256 characters (a key DynamoDB may refuse: 3,000 bytes) or a lone surrogate (not
    UTF-8): the read API and feedback answer 404 and ask DynamoDB nothing."""
    body = json.dumps({"outcome": "accepted", "sdr": OWNER}).encode()
    for value in ("a" * 3000, "😀" * 600, "acme\ud800.com"):
        for route, name in ((READ_ROUTES[0], "accountId"), (READ_ROUTES[1], "contactId"),
                            (FEEDBACK_ROUTE, "accountId")):
            response, table = invoke(route, {name: value}, body=body if route == FEEDBACK_ROUTE else None)
            assert response["statusCode"] == 404, (route, response)
            assert sum(table.calls.values()) == 0 and table.total_writes == 0, (route, table.calls)


# --- a lead's reassignments (functions/assign/app.py) ----------------------------------------------
# The routing transaction's Updates and the OwnerIndex are beyond tests/fuzz/fakes.py: these run
# on the in-memory routing store of tests/support/fakes.py, which here refuses what DynamoDB
# would (`_DynamoLimits`: a key that is not UTF-8 or too long, a lone surrogate in a written
# account), so a 200 that would be a ValidationException in AWS still fails.

ASSIGN_ROUTE = "POST /v1/accounts/{accountId}/assign"
REASSIGN_ROUTE = "POST /v1/sdrs/{sdrId}/reassign"
BOOK = ("acme.com", "beta.io", "gamma.io")


def _limits_store() -> Any:
    from leadscore.domain.records import Account, Assignment, RoutingStatus

    from tests.support.fakes import MemoryStore

    class _DynamoLimits(MemoryStore):
        @staticmethod
        def _key(text: str) -> None:
            if len(("A#" + text).encode("utf-8")) > 2048:  # raises on a lone surrogate too
                raise ValueError("ValidationException: the key is too long")

        def load_account(self, account_id: str) -> Any:
            self._key(account_id)
            return super().load_account(account_id)

        def load_accounts(self, account_ids: Any) -> Any:
            ids = list(account_ids)
            for account_id in ids:
                self._key(account_id)
            return super().load_accounts(ids)

        def query_assigned(self, sdr_id: str, *, limit: int = 50) -> Any:
            self._key(sdr_id)
            return super().query_assigned(sdr_id, limit=limit)

        def save_assignment(self, assignment: Any, account: Any, **kwargs: Any) -> None:
            from leadscore.adapters.items import routing_doc

            json.dumps([routing_doc(account.routing), account.state_why, account.sdr]).encode("utf-8")
            super().save_assignment(assignment, account, **kwargs)

    store = _DynamoLimits()
    for i, account_id in enumerate(BOOK):
        at = f"2026-11-23T09:0{i}:00Z"
        store.accounts[account_id] = Account(
            id=account_id, version=1, state="routed", cycle=1, name=account_id, domain=account_id,
            traits={"group": {"industry": "Software", "employees": 200, "address": {"country": "US"}}},
            sdr={"id": OWNER, "name": "Maya Johnson", "email": "maya@example.com"},
            routing=RoutingStatus(pool="na", territory="na", mode="territory", routed_at=at,
                                  sla_due_at="2026-11-25T09:00:00Z", attempt=1, tried=[OWNER],
                                  due_at="2026-11-25T09:00:00Z"))
        store.assignments[(account_id, 1)] = Assignment(account_id, 1, OWNER, "na", "na", "territory", at,
                                                        "2026-11-25T09:00:00Z", 1, [OWNER])
    store.accounts["wait.io"] = Account(id="wait.io", version=1, state="sdr_ready", cycle=1, domain="wait.io",
                                        traits={"group": {"address": {"country": "US"}}})
    return store


def invoke_assign(route: str, path_parameters: dict[str, str], body: bytes, *, signed: bool = True,
                  headers: dict[str, str] | None = None) -> tuple[dict[str, Any], Any]:
    from leadscore.adapters import runtime

    from functions.assign.app import lambda_handler

    store = _limits_store()
    path = route.split(" ", 1)[1]
    for name, value in path_parameters.items():
        path = path.replace("{" + name + "}", quote(value, safe="", errors="surrogatepass"))
    event = http_event("POST", path, route_key=route, body=body, headers=headers, path_parameters=path_parameters,
                       authorizer=iam_authorizer(user="lead-console") if signed else None)
    if currently_in_test_context():
        note(f"{route} params={path_parameters!r} body={body[:600]!r}")
        TALLY.add(route)
    with mock.patch.object(runtime, "store", lambda: store):
        response = lambda_handler(event, lambda_context("AssignFunction"))
    return response, store


lead_names = st.one_of(st.sampled_from(["amara", "amara@example.com", "AMARA@EXAMPLE.COM", " amara ", OWNER, "lucas"]),
                       sdr_names)


@st.composite
def assign_body(draw: st.DrawFn, target: str) -> Any:
    """Mostly near-valid bodies (so the writes are reached), some junk."""
    kind = draw(st.sampled_from(["near"] * 5 + ["json", "hostile", "bytes"]))
    if kind == "json":
        return draw(json_values)
    if kind == "hostile":
        return {target: "sofia", "by": "amara", draw(st.sampled_from(["note", target, "by", "x"])): draw(hostile_value)}
    if kind == "bytes":
        return draw(st.one_of(st.binary(max_size=64), st.just(b"{" * 5000),
                              st.just(b'{"' + target.encode() + b'":"sofia","by":"amara","note":"\xed\xa0\x80"}')))
    names = ["sofia", "lucas", OWNER, "ana", "kenji"] + (["pool"] if target == "to" else [])
    body: dict[str, Any] = {target: draw(st.sampled_from(names) if draw(st.integers(0, 3)) else sdr_names),
                            "by": draw(st.just("amara") if draw(st.integers(0, 2)) else lead_names)}
    if draw(st.booleans()):
        body["note"] = draw(st.text(max_size=40) if draw(st.booleans()) else notes)
    return body


@fuzz_settings(400)
@given(account=st.one_of(st.sampled_from([*BOOK, "wait.io", "ACME.com"]), path_ids), body=assign_body("sdr"),
       signed=st.booleans(), content_type=st.sampled_from(["application/json", "text/plain", ""]))
def test_assign(account: str, body: Any, signed: bool, content_type: str) -> None:
    response, store = invoke_assign(ASSIGN_ROUTE, {"accountId": account}, encoded(body), signed=signed,
                                    headers={"content-type": content_type} if content_type else None)
    answer = check_answer(response)
    if response["statusCode"] != 200 or not answer["changed"]:
        assert store.account_stream == [] and store.calls.get("save_assignment", 0) == 0, (answer, store.calls)
        return
    (change,) = store.account_stream  # one transaction, one account changed
    old, new = change
    assert new.id == answer["accountId"] and new.sdr["id"] == answer["sdr"]["id"] != (old.sdr or {}).get("id")
    assert new.routing.assigned.by in _routing().leads
    assert new.routing.assigned.caller == ("arn:aws:iam::123456789012:user/lead-console" if signed else None)


@fuzz_settings(300)
@given(sdr_id=st.one_of(st.sampled_from([OWNER, "sofia", "MAYA"]), path_ids), body=assign_body("to"),
       signed=st.booleans())
def test_reassign_book(sdr_id: str, body: Any, signed: bool) -> None:
    response, store = invoke_assign(REASSIGN_ROUTE, {"sdrId": sdr_id}, encoded(body), signed=signed)
    answer = check_answer(response)
    if response["statusCode"] != 200:
        assert store.account_stream == [], answer
        return
    moved = [m["accountId"] for m in answer["moved"]]
    assert len(moved) == len(set(moved)) == len(store.account_stream)  # each account once
    book = sorted(BOOK) if sdr_id == OWNER else []  # (only maya holds accounts)
    assert sorted(moved + [k["accountId"] for k in answer["kept"]]) == book and answer["more"] is False
    for account_id in moved:
        assert store.accounts[account_id].sdr["id"] not in (OWNER, None)


# --- the team lead's routes (functions/sdrs/app.py) -------------------------------------------------
# Their Queries (an SDR's partition, the OwnerIndex) and the pause's transaction of Updates are
# beyond tests/fuzz/fakes.py: these run the shipped Store on moto's DynamoDB (the table of
# template.yaml, which refuses what DynamoDB refuses), seeded with maya's book of three.

TEAM_ROUTES = ("GET /v1/sdrs", "GET /v1/sdrs/{sdrId}/accounts", "PUT /v1/sdrs/{sdrId}/availability")
TEAM_NOW = "2026-11-23T10:00:00Z"
_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")


class _CountingClient:
    """The DynamoDB client, counting the writes it is asked for."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        if name in _WRITES:
            self.writes += 1
        return getattr(self._client, name)


def _team_store(stack: Any) -> Any:
    from leadscore.adapters.items import account_item, assignment_item
    from leadscore.adapters.storage import Store, marshal
    from leadscore.domain.records import Account, Assignment, BookChange, RoutingStatus

    client = stack.client("dynamodb")
    table = stack.name_of("Table")
    for i, account_id in enumerate(BOOK):
        at = f"2026-11-23T09:0{i}:00Z"
        account = Account(id=account_id, version=1, state="routed", cycle=1, name=account_id, domain=account_id,
                          sdr={"id": OWNER, "name": "Maya Johnson", "email": "maya@example.com"},
                          routing=RoutingStatus(pool="na", territory="na", mode="territory", routed_at=at,
                                                sla_due_at="2026-11-25T09:00:00Z", attempt=1, tried=[OWNER]))
        client.put_item(TableName=table, Item=marshal(account_item(account)))
        client.put_item(TableName=table, Item=marshal(assignment_item(Assignment(
            account_id, 1, OWNER, "na", "na", "territory", at, "2026-11-25T09:00:00Z", 1, [OWNER]))))
    store = Store(table, client=client)
    store.apply_book_changes([BookChange(OWNER, "open", f"{a}#1", TEAM_NOW) for a in BOOK])
    return store


def invoke_team(store: Any, route: str, path_parameters: dict[str, str], *, query: str = "",
                body: bytes | None = None, signed: bool = True) -> tuple[dict[str, Any], int, Any]:
    """(the answer, the writes it made, what it published)."""
    from datetime import datetime

    from leadscore.adapters import runtime
    from leadscore.adapters.storage import Store

    from functions.sdrs.app import lambda_handler
    from tests.support.fakes import MemoryPublisher

    method, path = route.split(" ", 1)
    for name, value in path_parameters.items():
        path = path.replace("{" + name + "}", quote(value, safe="", errors="surrogatepass"))
    event = http_event(method, path + (f"?{query}" if query else ""), route_key=route, body=body,
                       path_parameters=path_parameters or None,
                       authorizer=iam_authorizer(user="lead-console") if signed else None)
    if currently_in_test_context():
        note(f"{route} params={path_parameters!r} ?{query[:300]!r} body={(body or b'')[:600]!r}")
        TALLY.add(route)
    counting = _CountingClient(store.client)
    publisher = MemoryPublisher()
    now = datetime.fromisoformat(TEAM_NOW.replace("Z", "+00:00"))
    with mock.patch.object(runtime, "store", lambda: Store(store.table_name, client=counting)), \
            mock.patch.object(runtime, "publisher", lambda: publisher), mock.patch.object(runtime, "now", lambda: now):
        response = lambda_handler(event, lambda_context("SdrsFunction"))
    return response, counting.writes, publisher


sdr_ids = st.one_of(st.sampled_from([OWNER, "amara", "kenji", "MAYA", " maya", "nobody"]), path_ids)
book_queries = st.one_of(
    st.just(""),
    st.builds(lambda k, v: f"{k}={quote(v, safe='', errors='surrogatepass')}",
              st.sampled_from(["state", "cursor", "limit"]), st.one_of(any_text, st.sampled_from(
                  ["routed", "accepted", "closed", "1", "25", "100", "101", "0", "-1", "1e2", "٣",
                   "eyJhIjoiMjAyNi0xMS0yM1QwOTowMTowMFoiLCJwIjoiQSNiZXRhLmlvIiwicyI6IlJUIzAwMDAwMSJ9",
                   "eyJhIjoieCIsInAiOiJBI3giLCJzIjoiUlQjMSJ9", "e30", "%%", "A" * 3000]))),
    st.sampled_from(["limit=1&cursor=", "state=routed&limit=2", "cursor=%ED%A0%80", "state=%FF"]),
)


@st.composite
def availability_body(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["near"] * 5 + ["json", "hostile", "bytes"]))
    if kind == "json":
        return draw(json_values)
    if kind == "hostile":
        return {"available": False, draw(st.sampled_from(["until", "reason", "available", "x"])): draw(hostile_value)}
    if kind == "bytes":
        return draw(st.one_of(st.binary(max_size=64), st.just(b"{" * 5000),
                              st.just(b'{"available":false,"reason":"\xed\xa0\x80"}')))
    body: dict[str, Any] = {"available": draw(st.booleans() if draw(st.integers(0, 5)) else json_values)}
    if draw(st.booleans()):
        body["until"] = draw(st.one_of(st.sampled_from(["2026-11-24T09:00:00Z", "2026-11-23T10:00:00Z",
                                                         "2027-12-01T00:00:00Z", "2026-11-24T09:00:00+14:00",
                                                         "2026-11-24", "9999-12-31T23:59:59Z", None]),
                                       st.builds(str, timestamps), any_text))
    if draw(st.booleans()):
        body["reason"] = draw(st.one_of(st.none(), st.text(max_size=40), notes))
    return body


def test_team_routes(stack: Any) -> None:
    store = _team_store(stack)

    @fuzz_settings(300)
    @given(route=st.sampled_from(TEAM_ROUTES[:2]), sdr_id=sdr_ids, query=book_queries, signed=st.booleans())
    def reads(route: str, sdr_id: str, query: str, signed: bool) -> None:
        response, writes, _ = invoke_team(store, route, {} if route == TEAM_ROUTES[0] else {"sdrId": sdr_id},
                                          query=query, signed=signed)
        answer = check_answer(response)
        assert writes == 0
        if response["statusCode"] == 200 and route == TEAM_ROUTES[1]:
            assert answer["sdr"] in _routing().sdr_by_id
            assert {a["accountId"] for a in answer["accounts"]} <= (set(BOOK) if answer["sdr"] == OWNER else set())
        elif response["statusCode"] == 200:
            assert [v["id"] for v in answer["sdrs"]] == [s.id for s in _routing().sdrs]

    @fuzz_settings(400)
    @given(sdr_id=sdr_ids, body=availability_body(), signed=st.booleans())
    def pauses(sdr_id: str, body: Any, signed: bool) -> None:
        response, writes, published = invoke_team(store, TEAM_ROUTES[2], {"sdrId": sdr_id}, body=encoded(body),
                                                  signed=signed)
        answer = check_answer(response)
        if response["statusCode"] != 200:
            assert writes == 0 and published.events == [], answer
            return
        assert answer["sdr"] in _routing().sdr_by_id and writes == (1 if answer["changed"] else 0)
        ((kind, detail),) = published.events
        assert kind == "SDR Availability Changed" and detail["version"] == answer["version"]
        if answer["paused"] is not None:
            assert answer["paused"]["until"] is None or answer["paused"]["until"] > TEAM_NOW

    reads()
    pauses()
