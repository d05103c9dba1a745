"""Collection end to end: API Gateway v2 events in, stream and bus pumped, scores read back.

The stack is built from template.yaml itself (tests/support/stack.py); time is pinned
through LEADSCORE_NOW, the clock every function reads.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import EMAIL_KEY, PRODUCT_KEY, WEB_KEY, Pipeline, vp_identify
from tests.support.apigw import decode_body, form_event, function_url_domain, http_event, json_body


def _events_stored(pipeline: Pipeline) -> list[dict[str, Any]]:
    return [i for i in pipeline.table_items() if i.get("k") == "E"]


def _rejected(pipeline: Pipeline) -> list[dict[str, Any]]:
    return [i for i in pipeline.table_items() if i.get("k") == "R"]


def _breakdown_sum(body: dict[str, Any]) -> float:
    return round(sum(line["points"] for line in body["breakdown"]), 2)


class TestJourney:
    def test_vp_at_technology_company_scores_fit_50_plus_engagement_70(self, pipeline: Pipeline) -> None:
        # Given a VP at a 200-person US technology company
        pipeline.send("identify", vp_identify())
        # When they view pricing, download a case study, attend a webinar and click a demo link
        pipeline.advance(minutes=1)
        pipeline.send("page", {"userId": "u-jo", "properties": {"url": "https://www.example.com/pricing"}})
        for name in ("Case Study Downloaded", "Webinar Attended", "Demo Link Clicked"):
            pipeline.advance(minutes=5)
            pipeline.send("track", {"userId": "u-jo", "event": name})
        pipeline.settle()

        # Then the contact scores fit 50 + engagement 70 = 120, an SQL, and the breakdown adds up
        contact = pipeline.contact("u-jo")
        assert (contact["fit"], contact["engagement"], contact["score"]) == (50, 70, 120)
        assert contact["lifecycle"] == "sql"
        assert contact["accountId"] == "acmetech.io"
        assert _breakdown_sum(contact) == contact["score"]
        rules = {line["rule"]: line["points"] for line in contact["breakdown"]}
        assert rules["pricing_page"] == 15 and rules["demo_link_clicked"] == 25

    def test_a_contact_known_only_by_email_is_read_by_email(self, pipeline: Pipeline) -> None:
        pipeline.send("track", {"event": "Webinar Attended", "context": {"traits": {"email": "Sam@Beta.io"}}})
        pipeline.settle()
        contact = pipeline.contact("sam@beta.io")
        assert contact["engagement"] == 20 and contact["email"] == "sam@beta.io"


class TestRules:
    def test_visit_buckets_do_not_add_up(self, pipeline: Pipeline) -> None:
        # Given seven visits, each more than 30 minutes after the last
        for _ in range(7):
            pipeline.send("page", {"userId": "u-v", "properties": {"url": "https://www.example.com/blog"}})
            pipeline.advance(minutes=45)
        pipeline.settle()
        # Then only the 6+ bucket applies: +6, not +3 +6
        lines = [line for line in pipeline.contact("u-v")["breakdown"] if line["rule"] == "site_visits"]
        assert [line["points"] for line in lines] == [6]

    def test_negative_rules_subtract(self, pipeline: Pipeline) -> None:
        pipeline.send("track", {"userId": "u-n", "event": "Webinar Attended"})
        pipeline.send("page", {"userId": "u-n", "properties": {"url": "https://www.example.com/careers"}})
        pipeline.send("track", {"userId": "u-n", "event": "Unsubscribed"}, key=EMAIL_KEY)
        pipeline.settle()
        assert pipeline.contact("u-n")["engagement"] == 20 - 5 - 10


class TestExactlyOnce:
    def test_the_same_message_id_scores_once_by_retry_pixel_and_bus(self, pipeline: Pipeline) -> None:
        message = {"userId": "u-d", "event": "Demo Link Clicked", "messageId": "m-1"}
        pipeline.send("track", message)
        pipeline.send("track", message)  # an SDK retry
        pixel = {"k": WEB_KEY, "e": "Demo Link Clicked", "uid": "u-d", "mid": "m-1"}
        pipeline.http("GET", "/v1/pixel.gif", query=pixel)
        batch = pipeline.http("POST", "/v1/batch", body={"batch": [{"type": "track", **message}]}, basic_user=WEB_KEY)
        assert json_body(batch)["duplicates"] == 1
        pipeline.settle()
        assert pipeline.contact("u-d")["engagement"] == 25
        assert len(_events_stored(pipeline)) == 1

    def test_replayed_stream_records_change_nothing(self, pipeline: Pipeline) -> None:
        pipeline.send("identify", vp_identify("u-r", "r@acmetech.io"))
        pipeline.send("track", {"userId": "u-r", "event": "Webinar Attended"})
        pipeline.settle()
        before = {(i["pk"], i["sk"]): i for i in pipeline.table_items()}
        # When the whole stream so far is delivered again (a retried or bisected batch)
        records = pipeline.stream_records()
        answer = pipeline.stack.invoke("AggregateFunction", {"Records": records})
        assert answer == {"batchItemFailures": []}
        pipeline.settle()
        after = {(i["pk"], i["sk"]): i for i in pipeline.table_items()}
        assert after == before

    def test_concurrent_writers_on_one_contact_lose_nothing(self, pipeline: Pipeline) -> None:
        """Two Lambdas race on one contact: its own shard's batch, and a merged anonymous
        id's event forwarded from another shard. The loser re-reads and re-applies."""
        from leadscore.adapters import runtime
        from leadscore.adapters.storage import Store
        from leadscore.adapters.streams import aggregate_stream

        from tests.support.fakes import MemoryPublisher

        pipeline.send("identify", {"userId": "u-c", "anonymousId": "anon-c"})
        pipeline.settle()
        seen = len(pipeline.stream_records())
        pipeline.advance(seconds=1)  # after the identify (events of one millisecond fold in messageId order)
        pipeline.send("track", {"userId": "u-c", "event": "Webinar Attended"})
        pipeline.http("GET", "/v1/pixel.gif", query={"k": WEB_KEY, "e": "Case Study Downloaded", "aid": "anon-c"})
        own, forwarded = sorted(
            (r for r in pipeline.stream_records()[seen:] if r["dynamodb"]["Keys"]["sk"]["S"].startswith("E#")),
            key=lambda r: r["dynamodb"]["Keys"]["pk"]["S"], reverse=True)
        table = pipeline.stack.name_of("Table")
        config = runtime.config()
        raced = {"done": False}

        class RacingStore(Store):
            def save_contact(self, contact: Any, expected_version: int | None) -> None:
                if not raced["done"]:
                    raced["done"] = True  # the other Lambda writes this contact between our read and write
                    assert aggregate_stream([forwarded], store=Store(table), config=config,
                                            publisher=MemoryPublisher(), now=pipeline.now).failed == []
                super().save_contact(contact, expected_version)

        failed = aggregate_stream([own], store=RacingStore(table), config=config, publisher=MemoryPublisher(),
                                  now=pipeline.now).failed
        assert failed == [] and raced["done"]
        contact = [i for i in pipeline.table_items() if i["pk"] == "C#u:u-c" and i["sk"] == "P"][0]
        assert contact["eng"] == 20 + 10


class TestIdentity:
    def test_anonymous_activity_merges_on_identify_once(self, pipeline: Pipeline) -> None:
        # Given an anonymous visitor who looked at pricing and attended a webinar
        pipeline.send("page", {"anonymousId": "anon-1", "properties": {"url": "https://www.example.com/pricing"}})
        pipeline.send("track", {"anonymousId": "anon-1", "event": "Webinar Attended"})
        pipeline.settle()
        # When they identify (and the identify is redelivered)
        identify = {**vp_identify("u-m", "m@acmetech.io"), "anonymousId": "anon-1", "messageId": "id-1"}
        pipeline.send("identify", identify)
        pipeline.settle()
        pipeline.send("identify", identify)
        # and a later pixel hit carries only the anonymous id
        pipeline.advance(days=2)
        pipeline.http("GET", "/v1/pixel.gif", query={"k": WEB_KEY, "e": "Case Study Downloaded", "aid": "anon-1"})
        pipeline.settle()
        # Then everything counts once, on the known contact
        contact = pipeline.contact("u-m")
        assert contact["engagement"] == 15 + 20 + 10
        assert contact["fit"] == 50
        # and reading the anonymous id answers the contact it joined
        assert pipeline.contact("anon-1")["contactId"] == "u-m"

    def test_alias_merges_previous_id(self, pipeline: Pipeline) -> None:
        pipeline.send("track", {"userId": "old-id", "event": "Webinar Attended"})
        pipeline.settle()
        pipeline.send("alias", {"userId": "new-id", "previousId": "old-id"})
        pipeline.send("track", {"userId": "new-id", "event": "Demo Link Clicked"})
        pipeline.settle()
        assert pipeline.contact("new-id")["engagement"] == 45


class TestBadInput:
    def test_bad_bodies_get_a_4xx_naming_the_problem_and_change_nothing(self, pipeline: Pipeline) -> None:
        pipeline.send("track", {"userId": "u-b", "event": "Webinar Attended"})
        pipeline.settle()
        before = [i for i in pipeline.table_items() if i.get("k") != "R"]

        cases = [
            (dict(body="{not json", headers={"content-type": "application/json"}), 400, "invalid_json"),
            (dict(body={"userId": "u-b"}), 400, "event"),
            (dict(body={"event": "Webinar Attended"}), 400, "userId"),
            (dict(body={"userId": "u-b", "event": "X", "timestamp": "yesterday"}), 400, "timestamp"),
            (dict(body="userId=u-b", headers={"content-type": "application/x-www-form-urlencoded"}), 415,
             "content type"),
            (dict(body={"userId": "u-b", "event": "X", "properties": {"blob": "x" * 40_000}}), 413, "32 KB"),
        ]
        for kwargs, status, words in cases:
            response = pipeline.http("POST", "/v1/track", basic_user=WEB_KEY, **kwargs)
            body = json_body(response)
            assert response["statusCode"] == status, (kwargs, body)
            assert words in body["message"] or words == body.get("error"), body
            assert body["success"] is False

        pipeline.settle()
        assert [i for i in pipeline.table_items() if i.get("k") != "R"] == before
        # every rejected input is kept with its reason
        assert len(_rejected(pipeline)) == len(cases)
        assert all(item["reason"] and item["ttl"] for item in _rejected(pipeline))

    def test_unknown_write_key_is_401_and_stores_nothing(self, pipeline: Pipeline) -> None:
        response = pipeline.http("POST", "/v1/track", body={"userId": "u", "event": "X"}, basic_user="nope")
        assert response["statusCode"] == 401
        assert "write key" in json_body(response)["message"]
        missing = pipeline.http("POST", "/v1/track", body={"userId": "u", "event": "X"})
        assert missing["statusCode"] == 401
        assert pipeline.table_items() == []

    def test_json_that_curl_labels_as_a_form_is_taken_as_json(self, pipeline: Pipeline) -> None:
        response = pipeline.http("POST", "/v1/track", body='{"userId": "u-curl", "event": "Webinar Attended"}',
                                 headers={"content-type": "application/x-www-form-urlencoded"}, basic_user=WEB_KEY)
        assert response["statusCode"] == 200
        pipeline.settle()
        assert pipeline.contact("u-curl")["engagement"] == 20

    def test_errors_carry_the_code_and_message_segment_sdks_read(self, pipeline: Pipeline) -> None:
        body = json_body(pipeline.http("POST", "/v1/track", body={"userId": "u"}, basic_user=WEB_KEY))
        assert body["code"] == "invalid_event" and body["message"].startswith("event")

    def test_screen_calls_are_accepted(self, pipeline: Pipeline) -> None:
        response = pipeline.http("POST", "/v1/screen", body={"userId": "u-app", "name": "Pricing"},
                                 basic_user=WEB_KEY)
        assert response["statusCode"] == 200 and len(_events_stored(pipeline)) == 1

    def test_write_key_in_the_body_is_accepted(self, pipeline: Pipeline) -> None:
        response = pipeline.http("POST", "/v1/track", body={"userId": "u-k", "event": "Webinar Attended",
                                                            "writeKey": WEB_KEY})
        assert response["statusCode"] == 200 and json_body(response) == {"success": True}

    def test_a_bad_event_in_a_batch_fails_only_itself(self, pipeline: Pipeline) -> None:
        batch = {"batch": [
            {"type": "track", "userId": "u-1", "event": "Webinar Attended"},
            {"type": "track", "userId": "u-2"},
            {"type": "bogus", "userId": "u-3"},
        ]}
        response = pipeline.http("POST", "/v1/batch", body=batch, basic_user=WEB_KEY)
        body = json_body(response)
        assert response["statusCode"] == 200 and body["success"] is True and body["accepted"] == 1
        assert [(r["index"], r["field"]) for r in body["rejected"]] == [(1, "event"), (2, "type")]
        pipeline.settle()
        assert pipeline.contact("u-1")["engagement"] == 20
        assert len(_rejected(pipeline)) == 2

    def test_gzipped_bodies_are_accepted_and_bad_gzip_is_400(self, pipeline: Pipeline) -> None:
        import gzip

        batch = {"batch": [{"type": "track", "userId": "u-z", "event": "Webinar Attended"}]}
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        ok = pipeline.http("POST", "/v1/batch", body=gzip.compress(json.dumps(batch).encode()), headers=headers,
                           basic_user=WEB_KEY, base64=True)
        assert ok["statusCode"] == 200 and json_body(ok)["accepted"] == 1
        bad = pipeline.http("POST", "/v1/batch", body=b"not gzip", headers=headers, basic_user=WEB_KEY, base64=True)
        assert bad["statusCode"] == 400 and json_body(bad)["error"] == "invalid_gzip"
        bomb = gzip.compress(json.dumps({"batch": [{"p": "x" * 2_000_000}]}).encode())
        big = pipeline.http("POST", "/v1/batch", body=bomb, headers=headers, basic_user=WEB_KEY, base64=True)
        assert big["statusCode"] == 413

    def test_batch_over_500_kb_is_413(self, pipeline: Pipeline) -> None:
        batch = {"batch": [{"type": "track", "userId": "u", "event": "X", "properties": {"p": "x" * 30_000}}] * 20}
        response = pipeline.http("POST", "/v1/batch", body=batch, basic_user=WEB_KEY)
        assert response["statusCode"] == 413 and "500 KB" in json_body(response)["message"]


class TestPixel:
    def test_pixel_always_answers_the_gif(self, pipeline: Pipeline) -> None:
        for query in ({"k": WEB_KEY, "uid": "u-p", "url": "https://www.example.com/pricing"}, {"k": "bad"}, {}):
            response = pipeline.http("GET", "/v1/pixel.gif", query=query)
            assert response["statusCode"] == 200
            assert response["headers"]["content-type"] == "image/gif"
            assert response["headers"]["cache-control"] == "no-store"
            gif = decode_body(response)
            assert len(gif) == 43 and gif.startswith(b"GIF89a")
        pipeline.settle()
        assert pipeline.contact("u-p")["engagement"] == 15
        # a hit without a known key stores nothing, not even a rejection (SECURITY.md)
        assert _rejected(pipeline) == []

    def test_the_gif_goes_out_even_when_the_function_cannot_start(
            self, pipeline: Pipeline, monkeypatch: Any) -> None:
        from leadscore.adapters.storage import Store

        def broken(*_: Any, **__: Any) -> None:
            raise RuntimeError("environment variable TABLE_NAME is not set")

        monkeypatch.setattr(Store, "__init__", broken)
        response = pipeline.http("GET", "/v1/pixel.gif", query={"k": WEB_KEY, "uid": "u"})
        assert response["statusCode"] == 200 and len(decode_body(response)) == 43

    def test_bots_are_recorded_not_scored(self, pipeline: Pipeline, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level("INFO", logger="leadscore")  # whatever level an earlier test left it at
        googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
        response = pipeline.http("GET", "/v1/pixel.gif", query={"k": WEB_KEY, "uid": "u-bot",
                                                                "url": "https://x.com/pricing"}, user_agent=googlebot)
        pipeline.settle()
        # the GIF still goes out; the function's log says why nothing was scored
        assert response["statusCode"] == 200 and len(decode_body(response)) == 43
        (logged,) = [r for r in caplog.records if r.getMessage() == "not scored: judged a bot"]
        assert 'matched "Googlebot"' in logged.__dict__["reason"]
        # recorded as rejected with the reason (what crawlerdetect matched), never as an event
        assert _events_stored(pipeline) == []
        (record,) = _rejected(pipeline)
        assert record["reason"] == f'bot user agent: crawlerdetect matched "Googlebot" in "{googlebot}"'
        status, _ = pipeline.read("/v1/contacts/u-bot")
        assert status == 404


class TestForms:
    def test_plain_html_form_redirects_and_scores_the_contact(self, pipeline: Pipeline) -> None:
        event = form_event("/v1/forms/demo-request", {"email": "Ana@Globex.com", "title": "Director of IT",
                                                      "company.name": "Globex"},
                           route_key="POST /v1/forms/{formId}", now=pipeline.now)
        response = pipeline.stack.invoke("CollectFunction", event)
        assert response["statusCode"] == 303
        assert response["headers"]["location"].startswith("http")
        pipeline.settle()
        contact = pipeline.contact("ana@globex.com")
        rules = {line["rule"]: line["points"] for line in contact["breakdown"]}
        assert rules["form_bottom_of_funnel"] == 50
        assert contact["title"] == "Director of IT" and contact["accountId"] == "globex.com"

    def test_json_form_answers_200_and_missing_email_is_400(self, pipeline: Pipeline) -> None:
        ok = pipeline.http("POST", "/v1/forms/demo-request", route_key="POST /v1/forms/{formId}",
                           body={"email": "lee@initech.com"})
        assert ok["statusCode"] == 200 and json_body(ok)["success"] is True
        bad = pipeline.http("POST", "/v1/forms/demo-request", route_key="POST /v1/forms/{formId}",
                            body={"name": "Lee"})
        assert bad["statusCode"] == 400 and json_body(bad)["field"] == "email"
        unknown = pipeline.http("POST", "/v1/forms/nope", route_key="POST /v1/forms/{formId}",
                                body={"email": "lee@initech.com"})
        assert unknown["statusCode"] == 404


class TestBusAndSettings:
    def test_tracking_event_on_the_bus_scores_like_the_api(self, pipeline: Pipeline) -> None:
        events = pipeline.stack.client("events")
        detail = {"type": "track", "userId": "u-bus", "event": "Demo Requested", "messageId": "bus-1"}
        for _ in range(2):  # EventBridge delivers at least once
            events.put_events(Entries=[{"EventBusName": pipeline.stack.name_of("EventBus"),
                                        "Source": "com.example.product", "DetailType": "Tracking Event",
                                        "Detail": json.dumps(detail)}])
        pipeline.settle()
        assert pipeline.contact("u-bus")["engagement"] == 50

    def test_the_same_message_from_one_system_by_api_and_bus_scores_once(self, pipeline: Pipeline) -> None:
        # the product back end posts with its write key and also puts the event on the bus,
        # whose source sources.yaml maps to the same source: one (source, messageId), one score
        detail = {"type": "track", "userId": "u-twice", "event": "Demo Requested", "messageId": "prod-7"}
        pipeline.send("track", detail, key=PRODUCT_KEY)
        pipeline.stack.client("events").put_events(Entries=[{
            "EventBusName": pipeline.stack.name_of("EventBus"), "Source": "com.example.product",
            "DetailType": "Tracking Event", "Detail": json.dumps(detail)}])
        pipeline.settle()
        assert pipeline.contact("u-twice")["engagement"] == 50
        assert len(_events_stored(pipeline)) == 1

    def test_analytics_js_settings_point_back_at_this_api(self, pipeline: Pipeline, ingest: str) -> None:
        response = pipeline.stack.invoke("CollectFunction", http_event(
            "GET", f"/v1/projects/{WEB_KEY}/settings", route_key="GET /v1/projects/{writeKey}/settings",
            headers={"host": "track.example.com"}))
        settings = json_body(response)
        # the domain it came in on: the HTTP API's custom domain, or the Function URL's own
        answered_on = "track.example.com" if ingest == "http-api" else function_url_domain()
        assert settings["integrations"]["Segment.io"]["apiHost"] == f"{answered_on}/v1"
        assert settings["integrations"]["Segment.io"]["apiKey"] == WEB_KEY
        missing = pipeline.stack.invoke("CollectFunction", http_event(
            "GET", "/v1/projects/nope/settings", route_key="GET /v1/projects/{writeKey}/settings"))
        assert missing["statusCode"] == 404


class TestWritesOnlyWhatChanged:
    def test_an_event_no_rule_scores_does_not_rewrite_its_contact(self, pipeline: Pipeline) -> None:
        pipeline.send("track", {"userId": "u-f", "event": "Webinar Attended"})
        pipeline.settle()
        before = [i for i in pipeline.table_items() if i.get("k") == "C"]
        pipeline.send("track", {"userId": "u-f", "event": "Feature Used"})
        pipeline.settle()
        assert [i for i in pipeline.table_items() if i.get("k") == "C"] == before
        assert len(_events_stored(pipeline)) == 2  # the event itself is kept (retention, preview)


def test_an_unknown_sender_with_a_bad_body_gets_401_and_stores_nothing(pipeline: Pipeline) -> None:
    response = pipeline.http("POST", "/v1/batch", body="{broken", basic_user="wk_nope",
                             headers={"content-type": "application/json"})
    assert response["statusCode"] == 401
    assert pipeline.table_items() == []
