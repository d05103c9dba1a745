"""Hostile input on the public routes (issue 14's findings, SECURITY.md's guarantees).

Each test names the finding it covers. The contract: bad input gets a 4xx JSON naming the
field, never a 5xx; a batch never fails as a whole; nothing accepted is lost; without a
valid key nothing at all is stored; the pixel always answers its GIF.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import WEB_KEY, Pipeline, vp_identify
from tests.support.apigw import decode_body, form_event, function_url_domain, http_event, json_body

JSON = {"content-type": "application/json"}


def _kinds(pipeline: Pipeline) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in pipeline.table_items():
        counts[item.get("k", "?")] = counts.get(item.get("k", "?"), 0) + 1
    return counts


def _rejected(pipeline: Pipeline) -> list[dict[str, Any]]:
    return [i for i in pipeline.table_items() if i.get("k") == "R"]


def _post(pipeline: Pipeline, kind: str, body: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    kwargs.setdefault("basic_user", WEB_KEY)
    if isinstance(body, str | bytes):
        kwargs.setdefault("headers", JSON)
    response = pipeline.http("POST", f"/v1/{kind}", body=body, **kwargs)
    return response["statusCode"], json_body(response)


def _form(pipeline: Pipeline, fields: Any, form_id: str = "demo-request") -> dict[str, Any]:
    """An HTML form post: `fields` as a dict, or the raw urlencoded body a hostile sender writes."""
    path, route = f"/v1/forms/{form_id}", "POST /v1/forms/{formId}"
    if isinstance(fields, str):
        event = http_event("POST", path, body=fields, route_key=route, now=pipeline.now,
                           headers={"content-type": "application/x-www-form-urlencoded"})
    else:
        event = form_event(path, fields, route_key=route, now=pipeline.now)
    return pipeline.stack.invoke("CollectFunction", event)


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


class TestBoundedParsing:
    """Findings 1-4: nesting, digits, lone surrogates, out-of-range dates."""

    def test_1_a_body_nested_a_thousand_deep_is_400_naming_the_body(self, pipeline: Pipeline) -> None:
        status, body = _post(pipeline, "track", "[" * 1000 + "]" * 1000)
        assert status == 400 and body["field"] == "body" and body["code"] == "invalid_json"
        status, body = _post(pipeline, "track", json.dumps({"userId": "u", "event": "x",
                                                             "properties": _nested(40)}))
        assert status == 400 and body["field"].startswith("properties.a.a")
        assert "nested more than 32" in body["message"]

    def test_1_a_deep_batch_context_is_400_naming_context(self, pipeline: Pipeline) -> None:
        batch = {"batch": [{"type": "track", "userId": "u-1", "event": "Webinar Attended"}], "context": _nested(500)}
        status, body = _post(pipeline, "batch", json.dumps(batch))
        assert status == 400 and body["field"].startswith("context.a")

    def test_1_a_deep_message_in_a_batch_fails_only_itself(self, pipeline: Pipeline) -> None:
        batch = {"batch": [{"type": "track", "userId": "u-deep", "event": "Webinar Attended"},
                           {"type": "track", "userId": "u-deep", "event": "X", "properties": _nested(200)}]}
        status, body = _post(pipeline, "batch", json.dumps(batch))
        assert status == 200 and body["accepted"] == 1 and body["rejected"][0]["index"] == 1
        pipeline.settle()
        assert pipeline.contact("u-deep")["engagement"] == 20

    def test_2_huge_integers_are_400_not_a_crash(self, pipeline: Pipeline) -> None:
        status, body = _post(pipeline, "track", '{"userId": ' + "9" * 4301 + ', "event": "x"}')
        assert status == 400 and body["field"] == "body" and "digit" in body["message"]
        status, body = _post(pipeline, "track", '{"userId": ' + "9" * 300 + ', "event": "x"}')
        assert status == 400 and body["field"] == "userId"
        status, body = _post(pipeline, "track", '{"userId": "u", "event": "x", "properties": {"n": NaN}}')
        assert status == 400 and body["field"] == "body"

    @pytest.mark.parametrize("where", ["event", "properties.plan", "context.traits.title"])
    def test_3_a_lone_surrogate_is_400_naming_its_field(self, pipeline: Pipeline, where: str) -> None:
        message: dict[str, Any] = {"userId": "u-s", "event": "x"}
        node = message
        *parents, leaf = where.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = "MARK"
        status, body = _post(pipeline, "track", json.dumps(message).replace("MARK", "\\ud800"))
        assert status == 400 and body["field"] == where and "surrogate" in body["message"]

    def test_3_a_lone_surrogate_in_a_batch_fails_only_its_message(self, pipeline: Pipeline) -> None:
        text = json.dumps({"batch": [{"type": "track", "userId": "u-sb", "event": "Webinar Attended"},
                                     {"type": "track", "userId": "u-sb", "event": "MARK"}, "MARK"]})
        status, body = _post(pipeline, "batch", text.replace("MARK", "\\ud800"))
        assert status == 200 and body["accepted"] == 1
        assert [r["index"] for r in body["rejected"]] == [1, 2]
        pipeline.settle()
        assert pipeline.contact("u-sb")["engagement"] == 20
        # the rejection records keep the input, the surrogate escaped so DynamoDB takes it
        assert len(_rejected(pipeline)) == 2
        assert any("\\ud800" in item["raw"] for item in _rejected(pipeline))

    def test_3_lone_surrogates_in_forms_are_400(self, pipeline: Pipeline) -> None:
        json_form = pipeline.http("POST", "/v1/forms/demo-request", route_key="POST /v1/forms/{formId}",
                                  body='{"email": "ana@globex.com", "title": "\\udc00"}', headers=JSON)
        assert json_form["statusCode"] == 400 and json_body(json_form)["field"] == "title"
        html = _form(pipeline, "email=ana%40globex.com&title=%ED%A0%80")
        assert html["statusCode"] == 400 and json_body(html)["field"] == "body"
        assert _kinds(pipeline).get("E", 0) == 0

    @pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
    def test_4_out_of_range_timestamps_are_400_naming_the_field(self, pipeline: Pipeline, moment: str) -> None:
        status, body = _post(pipeline, "track", {"userId": "u-t", "event": "x", "timestamp": moment})
        assert status == 400 and body["field"] == "timestamp" and "years 1 to 9999" in body["message"]
        # sentAt only corrects clock skew: an absurd one is ignored, not fatal
        status, _ = _post(pipeline, "track", {"userId": "u-t", "event": "x", "sentAt": moment,
                                             "timestamp": "2026-11-02T09:00:00Z"})
        assert status == 200

    def test_4_an_out_of_range_timestamp_on_the_bus_is_recorded_not_retried(self, pipeline: Pipeline) -> None:
        event = {"version": "0", "id": "e-1", "detail-type": "Tracking Event", "source": "com.example.product",
                 "time": "0001-01-01T00:00:00+01:00",
                 "detail": {"type": "track", "userId": "u-bt", "event": "Demo Requested",
                            "timestamp": "0001-01-01T00:00:00+01:00"}}
        result = pipeline.stack.invoke("ScoreFromBusFunction", event)
        assert result == {"accepted": 0, "duplicates": 0, "rejected": 1}
        assert _rejected(pipeline)[0]["field"] == "timestamp"


class TestKeysAndIds:
    """Findings 5, 6 and 10: key sizes, broken auth headers, writes without a key."""

    def test_5_ids_of_256_emoji_are_stored_and_deduplicated(self, pipeline: Pipeline) -> None:
        emoji_id = "\U0001F600" * 256  # 1,024 bytes: more than a sort key takes with its prefix
        message = {"userId": "u-e", "event": "Webinar Attended", "messageId": emoji_id}
        assert _post(pipeline, "track", message)[0] == 200
        assert _post(pipeline, "track", message)[0] == 200  # an SDK retry
        pixel = pipeline.http("GET", "/v1/pixel.gif", query={"k": WEB_KEY, "uid": "u-e", "e": "Demo Link Clicked",
                                                              "mid": "\U0001F601" * 256})
        assert pixel["statusCode"] == 200
        pipeline.settle()
        assert pipeline.contact("u-e")["engagement"] == 20 + 25
        events = [i for i in pipeline.table_items() if i.get("k") == "E"]
        assert sorted(len(i["mid"]) for i in events) == [256, 256]

    def test_5_ids_over_256_characters_are_400(self, pipeline: Pipeline) -> None:
        status, body = _post(pipeline, "track", {"userId": "u" * 257, "event": "x"})
        assert status == 400 and body["field"] == "userId"
        assert _post(pipeline, "track", {"userId": "u" * 256, "event": "x"})[0] == 200

    @pytest.mark.parametrize("header", ["Basic é", "Basic !!!", "Basic //79", "Bearer x", "Basic"])
    def test_6_a_broken_authorization_header_is_401(self, pipeline: Pipeline, header: str) -> None:
        status, body = _post(pipeline, "track", {"userId": "u", "event": "x"}, basic_user=None,
                             headers={**JSON, "authorization": header})
        assert status == 401 and body["field"] == "authorization"
        assert pipeline.table_items() == []
        # a body's own writeKey still works behind a broken header
        status, _ = _post(pipeline, "track", {"userId": "u", "event": "x", "writeKey": WEB_KEY}, basic_user=None,
                          headers={**JSON, "authorization": header})
        assert status == 200

    def test_6_an_unknown_basic_key_is_401_whatever_the_body_says(self, pipeline: Pipeline) -> None:
        status, _ = _post(pipeline, "track", {"userId": "u", "event": "x", "writeKey": WEB_KEY}, basic_user="é")
        assert status == 401 and pipeline.table_items() == []

    def test_10_without_a_key_nothing_is_stored(self, pipeline: Pipeline) -> None:
        answers = [
            _post(pipeline, "track", "{not json", basic_user=None)[0],
            _post(pipeline, "batch", "{not json", basic_user=None)[0],
            _post(pipeline, "track", "userId=u", basic_user=None, headers={"content-type": "text/csv"})[0],
            _post(pipeline, "track", {"userId": "u", "event": "x"}, basic_user="wk_unknown")[0],
            _post(pipeline, "track", "{not json", basic_user="wk_unknown")[0],
            _post(pipeline, "track", {"userId": "u", "event": "x", "writeKey": "wk_unknown"}, basic_user=None)[0],
            pipeline.http("GET", "/v1/pixel.gif", query={"k": "wk_unknown", "uid": "u"})["statusCode"],
            pipeline.http("GET", "/v1/pixel.gif", query={"uid": "u"})["statusCode"],
            _form(pipeline, {"email": "a@b.com"}, form_id="no-such-form")["statusCode"],
        ]
        assert answers == [400, 400, 415, 401, 401, 401, 200, 200, 404]
        assert pipeline.table_items() == []

    def test_10_with_a_key_bad_input_keeps_one_rejection_record(self, pipeline: Pipeline) -> None:
        assert _post(pipeline, "track", "{not json")[0] == 400
        assert _post(pipeline, "track", "x", headers={"content-type": "text/csv"})[0] == 415
        assert _kinds(pipeline) == {"R": 2}


class TestForms:
    """Findings 9 and 12: form sizes, all-or-nothing submissions, spoofing."""

    def test_9_a_40k_field_is_413_and_nothing_is_scored(self, pipeline: Pipeline) -> None:
        response = _form(pipeline, {"email": "ana@globex.com", "notes": "x" * 40_000})
        assert response["statusCode"] == 413 and json_body(response)["field"] == "body"
        pipeline.settle()
        assert _kinds(pipeline) == {"R": 1}

    def test_9_an_overlong_field_is_400_naming_it_and_nothing_is_scored(self, pipeline: Pipeline) -> None:
        response = _form(pipeline, {"email": "ana@globex.com", "notes": "x" * 3_000})
        body = json_body(response)
        assert response["statusCode"] == 400 and body["field"] == "notes", body
        assert _kinds(pipeline) == {"R": 1}

    def test_9_a_submission_whose_identify_fails_scores_nothing(self, pipeline: Pipeline) -> None:
        response = pipeline.http("POST", "/v1/forms/demo-request", route_key="POST /v1/forms/{formId}",
                                 body={"email": "ana@globex.com", "company": _nested(40, "x")})
        body = json_body(response)
        assert response["statusCode"] == 400 and body["field"].startswith("company.a"), body
        pipeline.settle()
        assert "E" not in _kinds(pipeline)

    def test_12_a_form_cannot_rewrite_a_known_contact(self, pipeline: Pipeline) -> None:
        pipeline.send("identify", {**vp_identify("ceo"), "anonymousId": "a-ceo"})
        pipeline.settle()
        before = pipeline.contact("ceo")
        response = _form(pipeline, "userId=ceo&anonymousId=a-ceo&email=attacker%40evil-co.com&title=Intern"
                                   "&company.domain=evil-co.com")
        assert response["statusCode"] == 303
        pipeline.settle()
        after = pipeline.contact("ceo")
        assert (after["email"], after["title"], after["accountId"], after["score"]) == (
            before["email"], before["title"], before["accountId"], before["score"])
        attacker = pipeline.contact("attacker@evil-co.com")
        assert attacker["engagement"] == 50 and attacker["title"] == "Intern"

    def test_12_a_form_links_the_visitors_anonymous_history_to_the_email(self, pipeline: Pipeline) -> None:
        pipeline.http("GET", "/v1/pixel.gif", query={"k": WEB_KEY, "aid": "a-visitor",
                                                      "url": "https://www.example.com/pricing"})
        pipeline.settle()
        pipeline.advance(minutes=5)
        assert _form(pipeline, {"email": "new@globex.com", "anonymousId": "a-visitor"})["statusCode"] == 303
        pipeline.settle()
        contact = pipeline.contact("new@globex.com")
        assert contact["engagement"] == 15 + 50


class TestBatchesAndSettings:
    """Findings 11, 13 and 14: write amplification, host injection, batch-level fields."""

    def test_11_a_batch_of_2000_items_is_400_and_1000_bad_ones_cost_11_writes(self, pipeline: Pipeline) -> None:
        status, body = _post(pipeline, "batch", json.dumps({"batch": [0] * 2000}))
        assert status == 400 and body["field"] == "batch" and "1000" in body["message"]
        status, body = _post(pipeline, "batch", json.dumps({"batch": [0] * 1000}))
        assert status == 200 and body["accepted"] == 0 and body["rejectedCount"] == 1000
        assert len(body["rejected"]) == 100  # the answer stays small
        # one record for the 2,000 (the batch itself), ten for the first bad messages, one for the rest
        assert _kinds(pipeline) == {"R": 1 + 10 + 1}

    def test_13_settings_never_take_the_host_from_request_headers(
            self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, ingest: str) -> None:
        def settings(**headers: str) -> dict[str, Any]:
            response = pipeline.stack.invoke("CollectFunction", http_event(
                "GET", f"/v1/projects/{WEB_KEY}/settings", route_key="GET /v1/projects/{writeKey}/settings",
                headers=headers))
            return json_body(response)["integrations"]["Segment.io"]

        spoofed = settings(**{"host": "abc.execute-api.us-east-1.amazonaws.com", "x-forwarded-host": "evil.example",
                              "x-forwarded-proto": "http"})
        # the domain the request came in on: the HTTP API's, or the Function URL's (a URL has no other)
        answered_on = "abc.execute-api.us-east-1.amazonaws.com" if ingest == "http-api" else function_url_domain()
        assert spoofed["apiHost"] == f"{answered_on}/v1"
        assert spoofed["protocol"] == "https"
        # the PublicApiUrl parameter of the template
        monkeypatch.setitem(pipeline.stack.functions["CollectFunction"].environment, "PUBLIC_API_URL",
                            "https://track.acme.com/")
        configured = settings(**{"x-forwarded-host": "evil.example"})
        assert (configured["protocol"], configured["apiHost"]) == ("https", "track.acme.com/v1")

    def test_14_a_huge_batch_sent_at_does_not_reject_the_messages(self, pipeline: Pipeline) -> None:
        batch = {"sentAt": "x" * 33_000, "batch": [{"type": "track", "userId": "u-sa", "event": "Webinar Attended"},
                                                   {"type": "track", "userId": "u-sa", "event": "Demo Link Clicked"}]}
        status, body = _post(pipeline, "batch", batch)
        assert status == 200 and body["accepted"] == 2, body
        pipeline.settle()
        assert pipeline.contact("u-sa")["engagement"] == 45


class TestLogs:
    """Finding 15: rejected personal data stays out of the logs."""

    def test_15_a_rejected_email_is_not_logged(self, pipeline: Pipeline, caplog: pytest.LogCaptureFixture) -> None:
        # at every level of ours, whatever level an earlier test left the service logger at
        with caplog.at_level("DEBUG", logger="leadscore"), caplog.at_level("DEBUG"):
            status, body = _post(pipeline, "identify", {"userId": "u-l", "traits": {"email": "jo.secret@nodot"}})
        assert status == 400 and body["field"] == "traits.email"
        assert "jo.secret" not in body["message"]
        # our loggers at every level (botocore's own debug log of the request is not ours)
        logged = [(record.getMessage(), vars(record)) for record in caplog.records
                  if record.name.startswith("leadscore")]
        assert any(message == "rejected input" for message, _ in logged)
        assert "jo.secret" not in repr(logged)
        # the rejection record keeps the input for whoever audits it
        assert "jo.secret@nodot" in _rejected(pipeline)[0]["raw"]


def test_the_pixel_answers_its_gif_to_every_hostile_query(pipeline: Pipeline) -> None:
    for query in ({"k": WEB_KEY, "uid": "u" * 300}, {"k": WEB_KEY, "mid": "\U0001F600" * 300, "uid": "u"},
                  {"k": WEB_KEY, "uid": "%ED%A0%80"}, {"k": "é" * 10_000}):
        response = pipeline.http("GET", "/v1/pixel.gif", query=query)
        assert response["statusCode"] == 200 and len(decode_body(response)) == 43


def test_the_first_batch_of_a_fresh_container_with_duplicates_is_200(pipeline: Pipeline) -> None:
    """Found by the fuzz suite: the first batch's writes run on several threads; each made its
    own client, and one client's ConditionalCheckFailedException is not another's: a 5xx."""
    duplicates = {"batch": [{"type": "track", "userId": "u-dup", "event": "Webinar Attended",
                             "messageId": "same"}] * 200}
    status, body = _post(pipeline, "batch", duplicates)
    assert status == 200 and (body["accepted"], body["duplicates"]) == (1, 199)


def test_numbers_beyond_38_digits_are_400_floats_too(pipeline: Pipeline) -> None:
    for text in ('{"userId": 1e300, "event": "x"}', '{"userId": "u", "event": "x", "traits": {"n": -5.5e256}}',
                 '{"userId": "u", "event": "x", "properties": {"n": 1e999}}'):
        status, body = _post(pipeline, "track", text)
        assert status == 400 and body["field"] in ("userId", "traits.n", "properties.n"), (text, body)


def test_a_non_ascii_field_is_named_as_sent(pipeline: Pipeline) -> None:
    response = pipeline.http("POST", "/v1/forms/demo-request", route_key="POST /v1/forms/{formId}",
                             body='{"email": "ana@globex.com", "société": {"x": "\\ud800"}}', headers=JSON)
    assert response["statusCode"] == 400 and json_body(response)["field"] == "société.x"
