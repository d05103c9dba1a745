"""The team lead's routes through the real path (issue 22, "Who owns what" and "Pause without
a redeploy"): the stack of template.yaml on moto, the SdrsFunction (IAM routes), the route
function and the routing pass honouring a pause, the stream keeping the SDRs' books."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from tests.integration.conftest import Pipeline
from tests.integration.test_feedback_flow import feedback, pass_
from tests.integration.test_route_flow import qualify, routed_messages
from tests.support.apigw import http_event, iam_authorizer, json_body

CALLER = "arn:aws:iam::123456789012:user/team-lead"
ROUTES = {"list": "GET /v1/sdrs", "book": "GET /v1/sdrs/{sdrId}/accounts",
          "availability": "PUT /v1/sdrs/{sdrId}/availability"}


def call(pipeline: Pipeline, route: str, sdr_id: str | None = None, *, body: Any = None,
         query: dict[str, str] | None = None) -> tuple[int, Any]:
    method, template = ROUTES[route].split(" ", 1)
    path = template.replace("{sdrId}", sdr_id or "")
    if query:
        path += "?" + urlencode(query)
    event = http_event(method, path, route_key=ROUTES[route], body=body, now=pipeline.now,
                       path_parameters={"sdrId": sdr_id} if sdr_id is not None else None,
                       authorizer=iam_authorizer(user="team-lead"))
    response = pipeline.stack.invoke("SdrsFunction", event)
    pipeline.settle()  # the bus's events delivered (pipeline.bus)
    return response["statusCode"], json_body(response)


def pause(pipeline: Pipeline, sdr_id: str, **body: Any) -> dict[str, Any]:
    status, answer = call(pipeline, "availability", sdr_id, body={"available": False, **body})
    assert status == 200, answer
    return answer


def sdrs(pipeline: Pipeline) -> dict[str, dict[str, Any]]:
    status, answer = call(pipeline, "list")
    assert status == 200, answer
    return {view["id"]: view for view in answer["sdrs"]}


def route_one(pipeline: Pipeline, n: int, country: str = "US") -> str:
    """One more account made SDR-ready and routed; the SDR it went to."""
    qualify(pipeline, n, domain=f"acct{n}.io", country=country)
    pipeline.settle()
    (message,) = routed_messages(pipeline)
    return str(message["group"])


class TestPause:
    def test_a_paused_sdr_gets_nothing_until_returned_and_the_bus_hears_both(self, pipeline: Pipeline) -> None:
        answer = pause(pipeline, "maya", until="2026-11-09T09:00:00Z", reason="conference")
        assert answer == {"sdr": "maya", "available": False, "version": 1, "changed": True,
                          "paused": {"until": "2026-11-09T09:00:00Z", "reason": "conference",
                                     "at": "2026-11-02T09:00:00Z", "by": CALLER}}
        (announced,) = pipeline.bus("SDR Availability Changed")
        assert announced["detail"]["sdr"]["id"] == "maya" and announced["detail"]["available"] is False
        assert announced["detail"]["until"] == "2026-11-09T09:00:00Z" and announced["detail"]["version"] == 1
        # pool na is maya (weight 2), lucas, sofia: with maya paused, the others share it
        assert [route_one(pipeline, n) for n in range(4)] == ["lucas", "sofia", "lucas", "sofia"]
        view = sdrs(pipeline)["maya"]["availability"]
        assert view["status"] == "paused" and view["available"] is False
        assert view["paused"] == answer["paused"]
        status, back = call(pipeline, "availability", "maya", body={"available": True})
        assert status == 200 and back["available"] is True and back["paused"] is None and back["version"] == 2
        assert [e["detail"]["available"] for e in pipeline.bus("SDR Availability Changed")] == [False, True]
        assert route_one(pipeline, 4) == "maya"
        assert sdrs(pipeline)["maya"]["availability"]["status"] == "available"

    @pytest.mark.slow  # 45 routes through the pipeline (tests/unit/test_team.py has the fast ones)
    def test_back_from_a_pause_no_catch_up_over_the_next_40_routes(self, pipeline: Pipeline) -> None:
        """Through the route function on the stack: maya (weight 2 of 4 in pool na) paused for 5
        routes, returned, then 40 routes: each SDR within 1 of their weighted share."""
        from collections import Counter

        pause(pipeline, "maya")
        assert "maya" not in [route_one(pipeline, n) for n in range(5)]
        call(pipeline, "availability", "maya", body={"available": True})
        after = Counter(route_one(pipeline, 100 + n) for n in range(40))
        assert all(abs(after[sdr] - 40 * weight / 4) <= 1 for sdr, weight in (("maya", 2), ("lucas", 1),
                                                                                ("sofia", 1))), after

    def test_the_pause_ends_at_until_on_its_own(self, pipeline: Pipeline) -> None:
        pause(pipeline, "maya", until="2026-11-02T10:00:00Z")
        assert route_one(pipeline, 0) == "lucas"
        pipeline.advance(hours=1)
        assert sdrs(pipeline)["maya"]["availability"]["status"] == "available"
        # back in the schedule where the counter stands (slot 2 is sofia's, 3 maya's): no catch-up
        assert [route_one(pipeline, n) for n in (1, 2)] == ["sofia", "maya"]

    def test_the_same_pause_again_changes_nothing_and_announces_the_same_version(self, pipeline: Pipeline) -> None:
        first = pause(pipeline, "lucas", until="2026-11-03T09:00:00Z", reason="sick")
        pipeline.advance(minutes=5)
        again = pause(pipeline, "lucas", until="2026-11-03T09:00:00Z", reason="sick")
        assert again == {**first, "changed": False}
        versions = [e["detail"]["version"] for e in pipeline.bus("SDR Availability Changed")]
        assert versions == [1, 1]

    def test_the_routing_pass_waits_for_a_paused_pool_and_routes_once_one_is_back(self, pipeline: Pipeline) -> None:
        pause(pipeline, "kenji")
        pause(pipeline, "priya", until="2026-11-20T00:00:00Z")
        qualify(pipeline, 0, domain="nippon.io", country="JP")  # pool apac: kenji, priya
        pipeline.settle()
        assert routed_messages(pipeline) == []
        routing = pipeline.account("nippon.io")["routing"]
        assert routing["status"] == "waiting" and routing["why"] == "paused", routing
        assert "kenji paused" in routing["reason"] and "priya paused until 2026-11-20" in routing["reason"]
        pipeline.advance(minutes=15)
        assert pass_(pipeline)["waiting"] == 1
        call(pipeline, "availability", "kenji", body={"available": True})
        pipeline.advance(minutes=15)
        assert pass_(pipeline)["routed"] == 1
        pipeline.settle()
        assert [m["group"] for m in routed_messages(pipeline)] == ["kenji"]

    @pytest.mark.parametrize(("sdr_id", "body", "status", "field"), [
        ("nobody", {"available": False}, 404, "sdrId"),
        ("maya", {"available": False, "until": "2026-11-01T09:00:00Z"}, 400, "until"),
        ("maya", {"available": False, "until": "2026-11-02T09:00:00Z"}, 400, "until"),
        ("maya", {"available": False, "until": "next week"}, 400, "until"),
        ("maya", {"available": False, "until": "2026-11-09"}, 400, "until"),
        ("maya", {"available": False, "until": "2026-11-09T09:00:00"}, 400, "until"),
        ("maya", {"available": False, "until": "2028-11-09T09:00:00Z"}, 400, "until"),
        ("maya", {"available": False, "until": 12}, 400, "until"),
        ("maya", {"available": True, "until": "2026-11-09T09:00:00Z"}, 400, "until"),
        ("maya", {"available": "no"}, 400, "available"),
        ("maya", {"until": "2026-11-09T09:00:00Z"}, 400, "available"),
        ("maya", {"available": False, "reason": "x" * 501}, 400, "reason"),
        ("maya", {"available": False, "reason": 3}, 400, "reason"),
        ("maya", {"available": False, "note": "typo"}, 400, "note"),
        ("maya", [False], 400, "body"),
    ])
    def test_bad_input_is_a_4xx_naming_the_field_and_changes_nothing(
            self, pipeline: Pipeline, sdr_id: str, body: Any, status: int, field: str) -> None:
        got, answer = call(pipeline, "availability", sdr_id, body=body)
        assert (got, answer["field"]) == (status, field), answer
        assert answer["success"] is False and answer["message"].startswith(f"{field}: ")
        assert pipeline.bus("SDR Availability Changed") == []
        assert sdrs(pipeline)["maya"]["availability"]["status"] == "available"


class TestWhoOwnsWhat:
    def test_the_list_counts_open_accepted_today_and_breaches(self, pipeline: Pipeline) -> None:
        owners = [route_one(pipeline, n) for n in range(4)]  # na: maya, lucas, sofia, maya
        assert owners == ["maya", "lucas", "sofia", "maya"]
        status, _ = feedback(pipeline, {"outcome": "accepted", "sdr": "maya"}, account_id="acct0.io")
        assert status == 200
        pipeline.settle()
        view = sdrs(pipeline)
        assert view["maya"]["open"] == 1 and view["maya"]["accepted"] == {"last7Days": 1, "last30Days": 1}
        assert view["maya"]["today"] == {"day": "2026-11-02", "routed": 2, "capacity": 25, "full": False}
        assert view["lucas"]["open"] == 1 and view["lucas"]["slaBreaches"] == {"last30Days": 0}
        assert view["amara"]["lead"] is True and view["maya"]["pools"] == ["na", "catch-all"]
        # lucas and sofia let their SLA (48 h) run out: re-routed, a breach each; maya's open one too
        pipeline.advance(hours=49)
        assert pass_(pipeline)["rerouted"] == 3
        pipeline.settle()
        view = sdrs(pipeline)
        assert {sdr: view[sdr]["slaBreaches"]["last30Days"] for sdr in ("maya", "lucas", "sofia")} == \
            {"maya": 1, "lucas": 1, "sofia": 1}
        assert sum(view[sdr]["open"] for sdr in view) == 3
        # the whole stream delivered again (Lambda's retries) changes none of it
        pipeline.stack.invoke("AggregateFunction", {"Records": pipeline.stream_records()})
        assert sdrs(pipeline) == view
        pipeline.advance(days=8)
        view = sdrs(pipeline)
        assert view["maya"]["accepted"] == {"last7Days": 0, "last30Days": 1}
        pipeline.advance(days=30)
        view = sdrs(pipeline)
        assert view["maya"]["accepted"]["last30Days"] == 0 and view["maya"]["slaBreaches"]["last30Days"] == 0

    def test_the_book_newest_first_paginated_and_filtered(self, pipeline: Pipeline) -> None:
        for n in range(5):
            route_one(pipeline, n)
            pipeline.advance(minutes=1)
        # maya holds acct0, acct3, acct4 (weight 2 of 4)
        status, answer = call(pipeline, "book", "maya")
        assert status == 200, answer
        assert [a["accountId"] for a in answer["accounts"]] == ["acct4.io", "acct3.io", "acct0.io"]
        assert answer["nextCursor"] is None and answer["accounts"][0]["state"] == "routed"
        pages, cursor = [], None
        while True:
            query = {"limit": "1", **({"cursor": cursor} if cursor else {})}
            status, page = call(pipeline, "book", "maya", query=query)
            assert status == 200, page
            pages += [a["accountId"] for a in page["accounts"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert pages == ["acct4.io", "acct3.io", "acct0.io"]
        feedback(pipeline, {"outcome": "accepted", "sdr": "maya"}, account_id="acct3.io")
        status, accepted = call(pipeline, "book", "maya", query={"state": "accepted"})
        assert [a["accountId"] for a in accepted["accounts"]] == ["acct3.io"]
        status, routed = call(pipeline, "book", "maya", query={"state": "routed"})
        assert [a["accountId"] for a in routed["accounts"]] == ["acct4.io", "acct0.io"]

    @pytest.mark.parametrize(("sdr_id", "query", "status", "field"), [
        ("nobody", {}, 404, "sdrId"),
        ("maya", {"cursor": "not-a-cursor"}, 400, "cursor"),
        ("maya", {"cursor": "eyJhIjoxfQ"}, 400, "cursor"),
        ("maya", {"state": "happy"}, 400, "state"),
        ("maya", {"limit": "0"}, 400, "limit"),
        ("maya", {"limit": "101"}, 400, "limit"),
    ])
    def test_bad_book_queries_are_a_4xx_naming_the_field(self, pipeline: Pipeline, sdr_id: str,
                                                        query: dict[str, str], status: int, field: str) -> None:
        got, answer = call(pipeline, "book", sdr_id, query=query)
        assert (got, answer["field"]) == (status, field), answer


class TestTheDocumentAgrees:
    """openapi.yaml and the code agree on these routes: every answer documented and fitting
    its schema, and the request schema accepting exactly what the code accepts."""

    BODIES = [({"available": False}, True), ({"available": True}, True),
              ({"available": False, "until": "2026-11-09T09:00:00Z", "reason": "offsite"}, True),
              ({"available": False, "reason": None, "until": None}, True),
              ({}, False), ({"available": "no"}, False), ({"available": False, "why": 1}, False),
              ({"available": False, "reason": "x" * 501}, False)]

    def test_answers_are_documented(self, pipeline: Pipeline) -> None:
        from tests.integration.test_openapi import _response_schema, _schema_allows

        route_one(pipeline, 0)
        calls = [("list", None, {}), ("book", "maya", {}), ("book", "maya", {"query": {"limit": "1"}}),
                 ("book", "nobody", {}), ("book", "maya", {"query": {"cursor": "zz"}}),
                 ("availability", "maya", {"body": {"available": False, "until": "2026-11-09T09:00:00Z"}}),
                 ("availability", "maya", {"body": {"available": False}}),
                 ("availability", "nobody", {"body": {"available": True}}),
                 ("availability", "maya", {"body": {"available": False, "until": "2020-01-01T00:00:00Z"}}),
                 ("availability", "maya", {"body": "x" * 5000})]
        for route, sdr_id, kwargs in calls:
            status, answer = call(pipeline, route, sdr_id, **kwargs)
            schema = _response_schema(ROUTES[route], status)
            assert schema is not None and _schema_allows(schema, answer), (route, status, answer)

    @pytest.mark.parametrize(("body", "allowed"), BODIES)
    def test_the_request_schema_and_the_code_agree(self, pipeline: Pipeline, body: Any, allowed: bool) -> None:
        from tests.integration.test_openapi import _request_schema, _schema_allows

        assert _schema_allows(_request_schema(ROUTES["availability"]), body) is allowed
        status, answer = call(pipeline, "availability", "maya", body=body)
        assert (status == 200) is allowed, answer


def _readme_example(name: str) -> Any:
    import json
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    found = re.search(rf"<!-- example: {name} -->\n```json\n(.*?)\n```", text, re.S)
    assert found, name
    return json.loads(found.group(1))


class TestTheReadme:
    def test_the_examples_are_what_the_routes_answer(self, pipeline: Pipeline) -> None:
        assert pause(pipeline, "maya", until="2026-11-09T09:00:00Z", reason="conference") == \
            _readme_example("availability")
        for n in range(3):
            route_one(pipeline, n)
            pipeline.advance(minutes=30)
        feedback(pipeline, {"outcome": "accepted", "sdr": "lucas"}, account_id="acct0.io")
        pipeline.settle()
        _, listed = call(pipeline, "list")
        shown = _readme_example("sdrs")
        assert {**listed, "sdrs": [v for v in listed["sdrs"] if v["id"] in ("maya", "lucas")]} == shown
        assert call(pipeline, "book", "lucas", query={"limit": "1"})[1] == _readme_example("book")


class TestRacesAndRetries:
    """A pause is written once whatever races it (two leads at once), and announced even when
    the bus refused it the first time."""

    def _api(self, pipeline: Pipeline, store: Any, publisher: Any) -> Any:
        from leadscore.adapters import runtime
        from leadscore.adapters.api.team import TeamRoutes
        from leadscore.services.team import TeamService

        return TeamRoutes(TeamService(store, runtime.routing(), clock=lambda: pipeline.now, publisher=publisher))

    def test_two_leads_at_once_both_land_in_order_and_every_pool_record_agrees(self, pipeline: Pipeline) -> None:
        from leadscore.adapters.http import Request
        from leadscore.adapters.storage import Store

        from tests.support.fakes import MemoryPublisher

        publisher = MemoryPublisher()
        table = pipeline.stack.name_of("Table")
        raced: list[int] = []

        def request(body: Any) -> Request:
            import json as _json

            return Request(method="PUT", route=ROUTES["availability"], path="/v1/sdrs/maya/availability", headers={},
                           query={}, path_parameters={"sdrId": "maya"}, body=_json.dumps(body).encode(),
                           source_ip=None, caller=CALLER)

        outer: Any = None

        class Racing(Store):
            def load_sdr_record(self, sdr_id: str) -> Any:
                record = super().load_sdr_record(sdr_id)
                if not raced:  # another lead returns maya between our read and our write
                    raced.append(1)
                    other = outer._api(pipeline, Store(table, client=pipeline.stack.client("dynamodb")), publisher)
                    answer = other.handle(request({"available": False, "until": "2026-11-05T09:00:00Z"}))
                    assert answer["statusCode"] == 200, answer
                return record

        outer = self
        mine = self._api(pipeline, Racing(table, client=pipeline.stack.client("dynamodb")), publisher)
        answer = mine.handle(request({"available": False, "until": "2026-11-09T09:00:00Z", "reason": "offsite"}))
        assert answer["statusCode"] == 200, answer
        assert [d["version"] for _, d in publisher.events] == [1, 2]  # the race's, then ours, read again
        assert [d["until"] for _, d in publisher.events] == ["2026-11-05T09:00:00Z", "2026-11-09T09:00:00Z"]
        view = sdrs(pipeline)["maya"]["availability"]["paused"]
        assert view["until"] == "2026-11-09T09:00:00Z" and view["reason"] == "offsite"
        from tests.integration.test_route_flow import item

        # every pool record holds the winner's end: those maya is in, and those she may join
        for pool in ("na", "emea", "emea-enterprise", "apac", "catch-all", "*"):
            assert (item(pipeline, f"POOL#{pool}", "RR") or {}).get("p#maya") == "2026-11-09T09:00:00Z"

    def test_a_refused_announcement_is_a_503_and_the_same_request_again_announces_it(
            self, pipeline: Pipeline) -> None:
        from leadscore.adapters.http import Request

        from tests.support.fakes import MemoryPublisher

        body = b'{"available": false, "reason": "flu"}'
        request = Request(method="PUT", route=ROUTES["availability"], path="/v1/sdrs/lucas/availability",
                          headers={}, query={}, path_parameters={"sdrId": "lucas"}, body=body, source_ip=None,
                          caller=CALLER)
        from leadscore.adapters.storage import Store

        store = Store(pipeline.stack.name_of("Table"), client=pipeline.stack.client("dynamodb"))
        refused = self._api(pipeline, store, MemoryPublisher(fail=True)).handle(request)
        assert refused["statusCode"] == 503 and json_body(refused)["field"] == "sdrId"
        assert json_body(refused)["version"] == 1
        assert sdrs(pipeline)["lucas"]["availability"]["status"] == "paused"  # saved
        publisher = MemoryPublisher()
        again = self._api(pipeline, store, publisher).handle(request)
        assert again["statusCode"] == 200 and json_body(again)["changed"] is False
        assert [(kind, d["version"], d["available"]) for kind, d in publisher.events] == [
            ("SDR Availability Changed", 1, False)]
