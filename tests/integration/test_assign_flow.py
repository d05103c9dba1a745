"""A lead's reassignments through the real path: the stack of template.yaml on moto, the
assign function (IAM routes), the routed message and `Account Reassigned` from the stream."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.integration.conftest import Pipeline
from tests.integration.test_route_flow import qualify, routed_messages
from tests.support.apigw import http_event, iam_authorizer, json_body

ASSIGN = "POST /v1/accounts/{accountId}/assign"
REASSIGN = "POST /v1/sdrs/{sdrId}/reassign"
CALLER = "arn:aws:iam::123456789012:user/lead-console"


def assign(pipeline: Pipeline, account_id: str, body: Any) -> tuple[int, Any]:
    event = http_event("POST", f"/v1/accounts/{account_id}/assign", route_key=ASSIGN, body=body, now=pipeline.now,
                       path_parameters={"accountId": account_id}, authorizer=iam_authorizer(user="lead-console"))
    response = pipeline.stack.invoke("AssignFunction", event)
    return response["statusCode"], json_body(response)


def reassign(pipeline: Pipeline, sdr_id: str, body: Any) -> tuple[int, Any]:
    event = http_event("POST", f"/v1/sdrs/{sdr_id}/reassign", route_key=REASSIGN, body=body, now=pipeline.now,
                       path_parameters={"sdrId": sdr_id}, authorizer=iam_authorizer(user="lead-console"))
    response = pipeline.stack.invoke("AssignFunction", event)
    return response["statusCode"], json_body(response)


def test_a_lead_moves_an_account_the_new_sdr_gets_a_message_and_the_bus_account_reassigned(
        pipeline: Pipeline) -> None:
    qualify(pipeline)
    pipeline.settle()
    (first,) = routed_messages(pipeline)
    assert first["group"] == "maya"
    pipeline.advance(hours=5)
    status, answer = assign(pipeline, "acmetech.io", {"sdr": "sofia", "by": "amara", "note": "maya is out"})
    assert status == 200, answer
    assert answer == {  # README, "A lead reassigns by hand"; the SLA: 48 hours from the reassignment
        "accountId": "acmetech.io", "state": "routed", "cycle": 1,
        "sdr": {"id": "sofia", "name": "Sofia Hernandez", "email": "sofia@example.com"},
        "previousSdr": "maya", "changed": True, "attempt": 2, "slaDueAt": "2026-11-04T14:00:00Z",
        "assignedBy": "amara"}
    pipeline.settle()
    (message,) = routed_messages(pipeline)
    assert (message["group"], message["dedup"]) == ("sofia", "acmetech.io#1#2")
    assert message["body"]["sdr"]["id"] == "sofia" and message["body"]["slaDueAt"] == "2026-11-04T14:00:00Z"
    (event,) = pipeline.bus("Account Reassigned")
    detail = event["detail"]
    assert (detail["previousSdr"], detail["sdr"]["id"], detail["assignedBy"]) == ("maya", "sofia", "amara")
    assert detail["slaDueAt"] == "2026-11-04T14:00:00Z" and detail["cycle"] == 1
    assert pipeline.bus("Routing SLA Breached") == [] and len(pipeline.bus("Account Routed")) == 1
    account = pipeline.account("acmetech.io")
    assert account["sdr"]["id"] == "sofia" and account["state"] == "routed"
    assert account["routing"]["assigned"] == {"by": "amara", "at": "2026-11-02T14:00:00Z", "previousSdr": "maya",
                                              "caller": CALLER, "note": "maya is out"}
    from tests.integration.test_openapi import _response_schema, _schema_allows

    schema = _response_schema("GET /v1/accounts/{accountId}", 200)
    assert schema is not None and _schema_allows(schema, account)  # routing.assigned as openapi.yaml says
    # replayed: nothing moves, nothing is sent
    again = assign(pipeline, "acmetech.io", {"sdr": "sofia", "by": "amara", "note": "maya is out"})
    assert again[0] == 200 and again[1]["changed"] is False
    pipeline.settle()
    assert routed_messages(pipeline) == [] and len(pipeline.bus("Account Reassigned")) == 1
    # the SLA now runs from the reassignment: not breached at maya's old due time
    pipeline.advance(hours=45)
    assert pipeline.stack.run_schedule("RoutingPassFunction", pipeline.now)["rerouted"] == 0


def test_refused_answers_name_the_field(pipeline: Pipeline) -> None:
    qualify(pipeline)
    pipeline.settle()
    routed_messages(pipeline)
    cases = [({"sdr": "sofia", "by": "maya"}, 403, "by"), ({"sdr": "nobody", "by": "amara"}, 400, "sdr"),
             ({"sdr": "sofia"}, 400, "by"), ({"sdr": "sofia", "by": "amara", "x": 1}, 400, "x")]
    for body, status, field in cases:
        answer = assign(pipeline, "acmetech.io", body)
        assert (answer[0], answer[1]["field"]) == (status, field), answer
    assert assign(pipeline, "nobody.io", {"sdr": "sofia", "by": "amara"})[0] == 404
    pipeline.settle()
    assert routed_messages(pipeline) == [] and pipeline.bus("Account Reassigned") == []


def test_a_book_reassigned_to_the_pool_ends_owned_once_each_fair_with_a_message(pipeline: Pipeline) -> None:
    ids = [qualify(pipeline, n, domain=f"acct{n:02d}.io") for n in range(20)]
    pipeline.settle()
    routed_messages(pipeline)
    # a lead first gives maya every one of them by hand
    for account_id in ids:
        status, answer = assign(pipeline, account_id, {"sdr": "maya", "by": "amara"})
        assert status == 200, answer
    pipeline.settle()
    routed_messages(pipeline)
    before = len(pipeline.bus("Account Reassigned"))
    # then maya's whole book goes back to the NA pool (lucas and sofia, weights 1:1)
    pipeline.advance(hours=1)
    status, answer = reassign(pipeline, "maya", {"to": "pool", "by": "amara"})
    assert status == 200, answer
    assert answer["more"] is False and answer["kept"] == [] and len(answer["moved"]) == 20
    assert answer["moved"][0] == {  # README: the accounts in the order maya got them, the oldest first
        "accountId": "acct00.io", "state": "routed", "cycle": 1,
        "sdr": {"id": "lucas", "name": "Lucas Miller", "email": "lucas@example.com"}, "previousSdr": "maya",
        "changed": True, "attempt": 2, "slaDueAt": "2026-11-04T10:00:00Z"}
    pipeline.settle()
    messages = routed_messages(pipeline)
    assert sorted(m["body"]["accountId"] for m in messages) == sorted(ids)  # one each
    owners = {a: pipeline.account(a)["sdr"]["id"] for a in ids}
    assert all(m["group"] == owners[m["body"]["accountId"]] for m in messages)
    shares = Counter(owners.values())
    assert shares == {"lucas": 10, "sofia": 10}, shares  # the pool's round-robin, never maya (README)
    events = pipeline.bus("Account Reassigned")[before:]
    assert sorted(e["detail"]["accountId"] for e in events) == sorted(ids)
    assert all(e["detail"]["previousSdr"] == "maya" for e in events)
    # repeated: nothing left
    again = reassign(pipeline, "maya", {"to": "pool", "by": "amara"})
    assert again == (200, {"sdrId": "maya", "to": "pool", "moved": [], "kept": [], "more": False})
    pipeline.settle()
    assert routed_messages(pipeline) == []


def test_a_paused_sdr_is_refused_and_passed_over_by_a_book(pipeline: Pipeline) -> None:
    from leadscore.adapters.storage import Store
    from leadscore.domain.records import SdrPause

    ids = [qualify(pipeline, n, domain=f"paus{n}.io") for n in range(4)]
    pipeline.settle()
    routed_messages(pipeline)
    # a lead pauses sofia (what PUT /v1/sdrs/sofia/availability writes: her record, the pools' copies)
    store = Store(pipeline.stack.name_of("Table"), client=pipeline.stack.client("dynamodb"))
    store.save_pause("sofia", SdrPause(until="2026-11-09T09:00:00Z", reason="training", at="2026-11-02T09:00:00Z"),
                     pools=["na", "catch-all"], expected_version=0, at="2026-11-02T09:00:00Z")
    status, answer = assign(pipeline, ids[0], {"sdr": "sofia", "by": "amara"})
    assert status == 409 and answer["field"] == "sdr", answer
    assert "sofia is paused until 2026-11-09T09:00:00Z (training)" in answer["message"]
    held = [a for a in ids if pipeline.account(a)["sdr"]["id"] == "maya"]
    status, answer = reassign(pipeline, "maya", {"to": "pool", "by": "amara"})
    assert status == 200 and sorted(m["accountId"] for m in answer["moved"]) == sorted(held), answer
    assert {m["sdr"]["id"] for m in answer["moved"]} == {"lucas"}  # not sofia, not maya
    pipeline.settle()
    assert sorted(m["body"]["accountId"] for m in routed_messages(pipeline)) == sorted(held)


def test_who_owns_what_follows_a_reassignment_and_it_is_no_sla_breach(pipeline: Pipeline) -> None:
    from tests.integration.test_team_flow import sdrs

    ids = [qualify(pipeline, n, domain=f"own{n}.io") for n in range(4)]  # na: maya, lucas, sofia, maya
    pipeline.settle()
    routed_messages(pipeline)
    assert [sdrs(pipeline)[s]["open"] for s in ("maya", "lucas", "sofia")] == [2, 1, 1]
    assert assign(pipeline, ids[1], {"sdr": "maya", "by": "amara"})[0] == 200  # lucas's to maya
    pipeline.settle()
    view = sdrs(pipeline)
    assert [view[s]["open"] for s in ("maya", "lucas", "sofia")] == [3, 0, 1]
    assert reassign(pipeline, "maya", {"to": "pool", "by": "amara"})[0] == 200  # maya's 3 to lucas and sofia
    pipeline.settle()
    view = sdrs(pipeline)
    assert view["maya"]["open"] == 0 and view["lucas"]["open"] + view["sofia"]["open"] == 4
    assert abs(view["lucas"]["open"] - view["sofia"]["open"]) <= 1
    assert all(view[s]["slaBreaches"]["last30Days"] == 0 for s in ("maya", "lucas", "sofia"))
