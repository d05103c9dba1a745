"""Sales feedback through the real path: the stack of template.yaml on moto, the feedback
function (IAM route), the stream's bus events, the routing pass over simulated time."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Pipeline
from tests.integration.test_route_flow import qualify, routed_messages
from tests.support.apigw import http_event, iam_authorizer, json_body

ROUTE = "POST /v1/accounts/{accountId}/feedback"
CALLER = "arn:aws:iam::123456789012:user/crm-bot"


def feedback(pipeline: Pipeline, body: Any, account_id: str = "acmetech.io") -> tuple[int, Any]:
    event = http_event("POST", f"/v1/accounts/{account_id}/feedback", route_key=ROUTE, body=body, now=pipeline.now,
                       path_parameters={"accountId": account_id}, authorizer=iam_authorizer(user="crm-bot"))
    response = pipeline.stack.invoke("FeedbackFunction", event)
    return response["statusCode"], json_body(response)


def new_engagement(pipeline: Pipeline, who: str, domain: str = "acmetech.io") -> None:
    """Another VP of the account requests a demo and clicks a demo link (75, capped at 80)."""
    user = f"{who}-{domain}"
    batch = [
        {"type": "identify", "userId": user, "traits": {"email": f"{who}@{domain}", "title": "VP Marketing"}},
        {"type": "group", "userId": user, "groupId": domain, "traits": {"website": f"https://{domain}"}},
        {"type": "track", "userId": user, "event": "Demo Requested"},
        {"type": "track", "userId": user, "event": "Demo Link Clicked"},
    ]
    stamped = [{**m, "timestamp": pipeline.now.isoformat(), "messageId": f"{user}-{pipeline.now:%s}-{i}"}
               for i, m in enumerate(batch)]
    response = pipeline.http("POST", "/v1/batch", body={"batch": stamped}, basic_user="wk_demo_website")
    assert response["statusCode"] == 200, response


def page_view(pipeline: Pipeline, who: str, path: str = "/pricing", domain: str = "acmetech.io") -> None:
    pipeline.send("page", {"userId": f"{who}-{domain}", "properties": {"url": f"https://{domain}{path}"},
                           "messageId": f"{who}-{path}-{pipeline.now:%s}"})


def pass_(pipeline: Pipeline) -> dict[str, Any]:
    return pipeline.stack.run_schedule("RoutingPassFunction", pipeline.now)


class TestAccepted:
    def test_accepted_stops_the_sla(self, pipeline: Pipeline) -> None:
        qualify(pipeline)
        pipeline.settle()
        assert [m["group"] for m in routed_messages(pipeline)] == ["maya"]
        pipeline.advance(hours=3)
        status, answer = feedback(pipeline, {"outcome": "accepted", "sdr": "maya", "note": "meeting booked"})
        assert status == 200, answer
        assert (answer["state"], answer["cycle"]) == ("accepted", 1)
        pipeline.settle()
        # past the SLA, the pass has nothing to re-route
        pipeline.advance(hours=48)
        assert pass_(pipeline)["due"] == 0
        pipeline.settle()
        assert routed_messages(pipeline) == [] and pipeline.bus("Routing SLA Breached") == []
        account = pipeline.account("acmetech.io")
        assert account["state"] == "accepted" and account["sdr"]["id"] == "maya"
        (kept,) = account["feedback"]
        assert kept == {"outcome": "accepted", "sdr": "maya", "note": "meeting booked", "by": CALLER,
                        "at": "2026-11-02T12:00:00Z", "cycle": 1, "state": "accepted"}
        # replayed: nothing changes twice
        again = feedback(pipeline, {"outcome": "accepted", "sdr": "maya", "note": "meeting booked"})
        assert again[0] == 200 and again[1]["replayed"] is True
        assert len(pipeline.account("acmetech.io")["feedback"]) == 1


class TestNotReady:
    def test_not_ready_then_requalification_after_the_cooldown_goes_back_to_the_same_sdr(
            self, pipeline: Pipeline) -> None:
        qualify(pipeline)
        pipeline.settle()
        assert [m["group"] for m in routed_messages(pipeline)] == ["maya"]
        status, answer = feedback(pipeline, {"outcome": "not_ready", "sdr": "maya", "note": "no budget until Q2"})
        assert status == 200 and answer["state"] == "recycled", answer
        assert answer["cooldownUntil"] == "2026-12-02T09:00:00Z"  # cooldown_days 30
        pipeline.settle()
        (recycled,) = pipeline.bus("Account Recycled")
        assert recycled["detail"]["feedback"]["outcome"] == "not_ready"
        assert recycled["detail"]["feedback"]["sdr"] == "maya"
        assert recycled["detail"]["cooldownUntil"] == "2026-12-02T09:00:00Z"
        # the SLA no longer applies
        pipeline.advance(hours=49)
        assert pass_(pipeline)["due"] == 0
        # new engagement during the cooldown: scored, not routed
        pipeline.advance(days=5)
        new_engagement(pipeline, "li")
        pipeline.settle()
        account = pipeline.account("acmetech.io")
        assert account["score"] - account["engagementBaseline"] >= 100, account
        assert (account["state"], account["cycle"]) == ("recycled", 1)
        assert routed_messages(pipeline) == [] and len(pipeline.bus("Account SDR Ready")) == 1
        # after the cooldown, the next engagement re-qualifies it: cycle 2, back to maya
        pipeline.advance(days=30)
        page_view(pipeline, "li")
        pipeline.settle()
        (message,) = routed_messages(pipeline)
        assert message["group"] == "maya" and message["dedup"] == "acmetech.io#2"
        assert message["body"]["cycle"] == 2
        account = pipeline.account("acmetech.io")
        assert (account["state"], account["cycle"], account["sdr"]["id"]) == ("routed", 2, "maya")
        assert "engagementBaseline" not in account and "cooldownUntil" not in account
        assert [f["outcome"] for f in account["feedback"]] == ["not_ready"]

    def test_engagement_during_the_cooldown_requalifies_it_when_the_cooldown_ends_without_a_new_event(
            self, pipeline: Pipeline) -> None:
        qualify(pipeline)
        pipeline.settle()
        routed_messages(pipeline)
        assert feedback(pipeline, {"outcome": "not_ready", "sdr": "maya"})[0] == 200
        pipeline.advance(days=5)
        new_engagement(pipeline, "li")  # enough net of the baseline, but cooling down
        pipeline.settle()
        assert pipeline.account("acmetech.io")["state"] == "recycled"
        # the routing pass before the cooldown's end finds nothing due
        pipeline.advance(days=20)
        assert pass_(pipeline)["due"] == 0
        # the first pass after it values the account again: SDR-ready, cycle 2, back to maya
        pipeline.advance(days=6)
        result = pass_(pipeline)
        assert (result["due"], result["requalified"]) == (1, 1), result
        pipeline.settle()
        (message,) = routed_messages(pipeline)
        assert message["group"] == "maya" and message["dedup"] == "acmetech.io#2"
        account = pipeline.account("acmetech.io")
        assert (account["state"], account["cycle"], account["sdr"]["id"]) == ("routed", 2, "maya")
        assert len(pipeline.bus("Account SDR Ready")) == 2
        assert pass_(pipeline)["requalified"] == 0  # once

    def test_old_engagement_alone_never_requalifies_it(self, pipeline: Pipeline) -> None:
        qualify(pipeline)
        pipeline.settle()
        routed_messages(pipeline)
        assert feedback(pipeline, {"outcome": "not_ready", "sdr": "maya"})[0] == 200
        pipeline.advance(days=31)
        # the pass at the cooldown's end values it again: not enough new engagement, and it
        # leaves the routing index (the next pass finds nothing)
        result = pass_(pipeline)
        assert (result["due"], result["requalified"], result["skipped"]) == (1, 0, 1), result
        assert pass_(pipeline)["due"] == 0
        page_view(pipeline, "u-0", path="/blog")  # the same contact again, nothing new scored much
        pipeline.settle()
        assert pipeline.account("acmetech.io")["state"] == "recycled"
        assert routed_messages(pipeline) == []


class TestDisqualified:
    def test_disqualified_never_routes_until_reset(self, pipeline: Pipeline) -> None:
        qualify(pipeline)
        pipeline.settle()
        routed_messages(pipeline)
        status, answer = feedback(pipeline, {"outcome": "disqualified", "sdr": "maya", "note": "a competitor"})
        assert status == 200 and answer["state"] == "disqualified", answer
        pipeline.settle()
        (event,) = pipeline.bus("Account Disqualified")
        assert event["detail"]["feedback"]["sdr"] == "maya" and event["detail"]["previousState"] == "routed"
        # more engagement, time passing, SLA passes: never routed
        pipeline.advance(days=40)
        new_engagement(pipeline, "li")
        pipeline.settle()
        assert pass_(pipeline)["due"] == 0
        pipeline.settle()
        account = pipeline.account("acmetech.io")
        assert account["state"] == "disqualified" and account["score"] > 100
        assert routed_messages(pipeline) == []
        # reset: re-evaluated at once, a new cycle, routed (back to maya)
        pipeline.advance(hours=1)
        status, answer = feedback(pipeline, {"outcome": "reset", "sdr": "maya", "note": "not a competitor"})
        assert status == 200 and (answer["state"], answer["cycle"]) == ("sdr_ready", 2), answer
        pipeline.settle()
        (message,) = routed_messages(pipeline)
        assert message["group"] == "maya" and message["dedup"] == "acmetech.io#2"
        account = pipeline.account("acmetech.io")
        assert account["state"] == "routed"
        assert [(f["outcome"], f["by"]) for f in account["feedback"]] == [("reset", CALLER), ("disqualified", CALLER)]
        assert pipeline.now.strftime("%Y-%m-%dT%H:%M:%SZ") == account["feedback"][0]["at"]


class TestEdge:
    def test_bad_bodies_are_400_naming_the_field_and_unknown_accounts_404(self, pipeline: Pipeline) -> None:
        qualify(pipeline)
        pipeline.settle()
        for body, field in [({"sdr": "maya"}, "outcome"), ({"outcome": "later", "sdr": "maya"}, "outcome"),
                            ({"outcome": "accepted"}, "sdr"), ({"outcome": "accepted", "sdr": "m", "note": "n" * 2001},
                                                               "note"), ("{", "body")]:
            status, answer = feedback(pipeline, body)
            assert status == 400 and answer["field"] == field, (body, answer)
        status, answer = feedback(pipeline, {"outcome": "accepted", "sdr": "maya"}, account_id="nobody.io")
        assert status == 404 and answer["error"] == "unknown_account"
        status, answer = feedback(pipeline, {"outcome": "reset", "sdr": "maya"})
        assert status == 409 and answer["field"] == "outcome"
        assert pipeline.account("acmetech.io")["feedback"] == []

    def test_feedback_costs_one_read_and_one_transaction(self, pipeline: Pipeline) -> None:
        from leadscore.adapters import runtime

        from tests.integration.test_accounts import counting_calls

        qualify(pipeline)
        pipeline.settle()
        with counting_calls(runtime.store().client) as calls:
            assert feedback(pipeline, {"outcome": "accepted", "sdr": "maya"})[0] == 200
        assert (calls["GetItem"], calls["TransactWriteItems"]) == (1, 1)
        assert calls["Query"] == calls["Scan"] == calls["PutItem"] == calls["UpdateItem"] == 0


# The document (openapi.yaml) and the code agree on this route's bodies and answers.
EDGES: list[tuple[Any, bool, str | None]] = [
    ({"outcome": "accepted", "sdr": "maya"}, True, None),
    ({"outcome": "accepted", "sdr": "maya", "note": "n" * 2000}, True, None),
    ({"outcome": "accepted", "sdr": "m" * 256}, True, "sdr"),  # the document's shape, not an SDR of routing.yaml
    ({"outcome": "accepted", "sdr": "maya", "note": None}, True, None),
    ({"outcome": "accepted", "sdr": "m" * 257}, False, "sdr"),
    ({"outcome": "accepted", "sdr": ""}, False, "sdr"),
    ({"outcome": "accepted", "sdr": "  "}, False, "sdr"),
    ({"outcome": "accepted", "sdr": "maya", "note": "n" * 2001}, False, "note"),
    ({"outcome": "maybe", "sdr": "maya"}, False, "outcome"),
    ({"sdr": "maya"}, False, "outcome"),
    ({"outcome": "accepted", "sdr": "maya", "extra": 1}, False, "extra"),
    ([], False, "body"),
]


def test_the_document_and_the_code_agree_on_feedback(pipeline: Pipeline) -> None:
    from tests.integration.test_openapi import _request_schema, _response_schema, _schema_allows, _spec

    qualify(pipeline)
    pipeline.settle()
    documented = _spec()["paths"]["/v1/accounts/{accountId}/feedback"]["post"]["responses"]
    seen = set()
    for body, allowed, field in EDGES:
        assert _schema_allows(_request_schema(ROUTE), body) is allowed, body
        status, answer = feedback(pipeline, body)
        if allowed and field is None:
            assert status in (200, 409), answer  # the second accepted no longer fits: 409
        else:
            assert status == 400 and answer["field"] == field, (body, answer)
        for case_status, case_answer in ((status, answer),
                                         feedback(pipeline, {"outcome": "accepted", "sdr": "maya"}, "nobody.io")):
            seen.add(case_status)
            assert str(case_status) in documented
            schema = _response_schema(ROUTE, case_status)
            assert schema is not None and _schema_allows(schema, case_answer), case_answer
    assert seen == {200, 400, 404, 409}
    account = pipeline.account("acmetech.io")
    schema = _response_schema("GET /v1/accounts/{accountId}", 200)
    assert schema is not None and _schema_allows(schema, account) and len(account["feedback"]) == 1


# --------------------------------------------------------------------------- issue 21


def test_item6_a_routed_account_whose_score_dips_stays_with_its_sdr_and_its_sla(pipeline: Pipeline) -> None:
    qualify(pipeline)
    pipeline.settle()
    assert [m["group"] for m in routed_messages(pipeline)] == ["maya"]
    # the account's firmographics change: its fit (30) is gone, 75 is under requalify_below (80)
    pipeline.advance(seconds=1)  # later than the qualifying batch (one millisecond's events fold by messageId)
    pipeline.send("group", {"userId": "u-0-acmetech.io", "groupId": "acmetech.io",
                            "traits": {"industry": "Retail", "employees": 5000, "address": {"country": "BR"}}})
    pipeline.settle()
    account = pipeline.account("acmetech.io")
    assert account["score"] < account["requalifyBelow"], account
    assert (account["state"], account["cycle"], account["sdr"]["id"]) == ("routed", 1, "maya")
    assert pipeline.bus("Account Recycled") == []
    # the SLA still runs: not accepted in time, it moves on to the pool's next SDR
    pipeline.advance(hours=49)
    assert pass_(pipeline)["due"] == 1
    pipeline.settle()
    (message,) = routed_messages(pipeline)
    assert message["group"] != "maya" and len(pipeline.bus("Routing SLA Breached")) == 1
    # the previous owner can no longer act on it (item 7); the new one accepts it
    status, answer = feedback(pipeline, {"outcome": "accepted", "sdr": "maya"})
    assert status == 409 and answer["field"] == "sdr" and answer["owner"] == message["group"], answer
    status, answer = feedback(pipeline, {"outcome": "accepted", "sdr": message["group"]})
    assert status == 200 and answer["state"] == "accepted", answer


def test_item7_feedback_only_from_the_owner_or_a_lead(pipeline: Pipeline) -> None:
    from leadscore.adapters import runtime
    qualify(pipeline)
    pipeline.settle()
    assert [m["group"] for m in routed_messages(pipeline)] == ["maya"]
    for sdr, status_wanted in (("lucas", 409), ("somebody", 400)):
        status, answer = feedback(pipeline, {"outcome": "not_ready", "sdr": sdr})
        assert status == status_wanted and answer["field"] == "sdr", answer
    assert pipeline.account("acmetech.io")["feedback"] == []
    lead = "amara"  # the demo team's lead (routing.yaml `leads`), an EMEA SDR: not in this account's pool
    assert lead in runtime.routing().leads
    status, answer = feedback(pipeline, {"outcome": "not_ready", "sdr": lead, "note": "checked with the AE"})
    assert status == 200 and answer["state"] == "recycled", answer
    (kept,) = pipeline.account("acmetech.io")["feedback"]
    assert (kept["sdr"], kept["by"]) == (lead, CALLER)


def test_item8_a_lone_surrogate_in_a_note_is_400_naming_note(pipeline: Pipeline) -> None:
    qualify(pipeline)
    pipeline.settle()
    routed_messages(pipeline)
    status, answer = feedback(pipeline, '{"outcome": "accepted", "sdr": "maya", "note": "call \\ud83d back"}')
    assert status == 400 and answer["field"] == "note", answer
    assert pipeline.account("acmetech.io")["state"] == "routed"
    status, answer = feedback(pipeline, {"outcome": "accepted", "sdr": "maya", "note": "call \U0001f4de back"})
    assert status == 200 and answer["feedback"]["note"] == "call \U0001f4de back", answer


def test_item14_disqualified_then_reset_returns_to_the_not_ready_cooldown(pipeline: Pipeline) -> None:
    qualify(pipeline)
    pipeline.settle()
    routed_messages(pipeline)
    status, answer = feedback(pipeline, {"outcome": "not_ready", "sdr": "maya"})
    assert status == 200
    cooldown = answer["cooldownUntil"]
    pipeline.advance(days=2)
    assert feedback(pipeline, {"outcome": "disqualified", "sdr": "maya", "note": "competitor?"})[0] == 200
    pipeline.advance(days=1)
    status, answer = feedback(pipeline, {"outcome": "reset", "sdr": "maya", "note": "no, a prospect"})
    assert status == 200 and (answer["state"], answer["cooldownUntil"]) == ("recycled", cooldown), answer
    # new engagement during the cooldown is held; the pass at its end routes it back to maya
    new_engagement(pipeline, "li")
    pipeline.settle()
    account = pipeline.account("acmetech.io")
    assert (account["state"], account["engagementBaseline"]) == ("recycled", 75) and routed_messages(pipeline) == []
    pipeline.advance(days=28)
    assert pass_(pipeline)["requalified"] == 1
    pipeline.settle()
    (message,) = routed_messages(pipeline)
    assert message["group"] == "maya" and message["body"]["cycle"] == 2
