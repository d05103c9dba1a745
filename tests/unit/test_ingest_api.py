"""The ingestion API (`leadscore.adapters.ingest`) route by route, on an in-memory event store.

Each test: Given a store (and a request), When the API handles it, Then the answer and
what was stored. No moto, no network: `tests/unit/ingest_fakes.py` holds the fakes.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.unit.ingest_fakes import (
    BOT_UA,
    EMAIL_KEY,
    JSON,
    NOW,
    WEB_KEY,
    WEB_ORIGIN,
    FakeEventStore,
    form_request,
    headers_of,
    ingest_api,
    json_body,
    request,
)

ROOT = Path(__file__).resolve().parents[2]
NOT_SCORED = "x-leadscore-not-scored"
CURL_UA = "curl/8.5.0"
HEADLESS_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 "
               "Safari/537.36")
RECIPE_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
SEGMENT_BODIES: dict[str, dict[str, Any]] = {
    "track": {"userId": "u-1", "event": "Webinar Attended"},
    "identify": {"userId": "u-1", "traits": {"email": "jo@acme.com", "title": "VP Sales"}},
    "page": {"userId": "u-1", "properties": {"url": "https://acme-site.com/pricing"}},
    "screen": {"userId": "u-1", "name": "Home"},
    "group": {"userId": "u-1", "groupId": "acme", "traits": {"website": "acme.com"}},
    "alias": {"userId": "u-1", "previousId": "anon-1"},
}


@pytest.fixture
def store() -> FakeEventStore:
    return FakeEventStore()


def post(store: FakeEventStore, kind: str, body: Any, *, api: Any = None, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("basic_user", WEB_KEY)
    if isinstance(body, str | bytes):
        kwargs["headers"] = {**JSON, **(kwargs.get("headers") or {})}
    return (api or ingest_api(store)).handle(request("POST", f"/v1/{kind}", body=body, **kwargs))


def assert_error(response: dict[str, Any], status: int, code: str, field: str | None = None) -> dict[str, Any]:
    """The error envelope: success false, `error` and `code` (what Segment's SDKs read), a message."""
    assert response["statusCode"] == status, response
    assert headers_of(response)["content-type"] == "application/json"
    answer = json_body(response)
    assert answer["success"] is False and answer["error"] == answer["code"] == code
    assert isinstance(answer["message"], str) and answer["message"]
    if field is not None:
        assert answer["field"] == field, answer
    return answer


# --- the Segment routes ---------------------------------------------------------------------


class TestSegmentRoutes:
    @pytest.mark.parametrize("kind", SEGMENT_BODIES)
    def test_a_valid_message_is_accepted_and_stored_once(self, store: FakeEventStore, kind: str) -> None:
        # Given a valid message of the route's type
        body = {**SEGMENT_BODIES[kind], "messageId": f"m-{kind}"}
        # When it is posted with the source's key
        response = post(store, kind, body)
        # Then Segment's answer, and one event of that type from that source
        assert response["statusCode"] == 200 and json_body(response) == {"success": True}
        assert [(e.type, e.source_id, e.message_id) for e in store.stored] == [(kind, "website", f"m-{kind}")]

    @pytest.mark.parametrize("kind", SEGMENT_BODIES)
    def test_the_same_message_id_again_is_a_duplicate(self, store: FakeEventStore, kind: str) -> None:
        api = ingest_api(store)
        body = {**SEGMENT_BODIES[kind], "messageId": "m-once"}
        post(store, kind, body, api=api)
        # When the SDK retries the same message
        response = post(store, kind, body, api=api)
        # Then it answers success, and the message is stored once
        assert response["statusCode"] == 200 and len(store.stored) == 1
        assert api.counters.duplicates == 1 and api.counters.accepted == 0

    @pytest.mark.parametrize("kind", SEGMENT_BODIES)
    def test_a_bad_message_is_400_naming_its_field_and_kept_as_rejected(self, store: FakeEventStore,
                                                                        kind: str) -> None:
        # Given a message whose userId is over 256 characters
        body = {**SEGMENT_BODIES[kind], "userId": "u" * 257}
        response = post(store, kind, body)
        # Then 400 naming userId; no event, one rejection record of the source
        assert_error(response, 400, "invalid_event", "userId")
        assert store.stored == []
        assert [(r["field"], r["source_id"]) for r in store.rejections] == [("userId", "website")]

    def test_a_message_of_another_type_is_400_naming_type(self, store: FakeEventStore) -> None:
        response = post(store, "track", {"type": "identify", "userId": "u-1"})
        assert_error(response, 400, "invalid_event", "type")
        assert store.stored == []

    def test_the_write_key_may_come_in_the_body(self, store: FakeEventStore) -> None:
        response = post(store, "track", {**SEGMENT_BODIES["track"], "writeKey": EMAIL_KEY}, basic_user=None)
        assert response["statusCode"] == 200
        assert [e.source_id for e in store.stored] == ["email"]

    @pytest.mark.parametrize("credentials", [
        {"basic_user": "wk_nobody"},
        {"basic_user": None},
        {"basic_user": None, "writeKey": "wk_nobody"},
        {"basic_user": None, "headers": {"authorization": "Basic !!!not-base64"}},
    ], ids=["unknown-basic", "no-key", "unknown-body-key", "broken-header"])
    def test_without_a_valid_key_it_is_401_and_nothing_is_stored(self, store: FakeEventStore,
                                                                  credentials: dict[str, Any]) -> None:
        api = ingest_api(store)
        body = {**SEGMENT_BODIES["track"]}
        if "writeKey" in credentials:
            body["writeKey"] = credentials.pop("writeKey")
        response = post(store, "track", body, api=api, **credentials)
        assert_error(response, 401, "unauthorized", "authorization")
        assert store.writes == 0 and api.counters.unauthorized == 1

    def test_an_unknown_basic_key_is_401_before_the_body_is_read(self, store: FakeEventStore) -> None:
        # Given a body that is not even JSON, sent with an unknown Basic key
        response = post(store, "track", "{not json", basic_user="wk_nobody")
        # Then the key answers first: 401, and nothing stored
        assert_error(response, 401, "unauthorized")
        assert store.writes == 0

    @pytest.mark.parametrize("body, status, code, field", [
        ("{not json", 400, "invalid_json", "body"),
        ("", 400, "empty_body", "body"),
        ('{"userId": "u-1", "event": "x", "n": NaN}', 400, "invalid_json", "body"),
        ("[" * 1000 + "]" * 1000, 400, "invalid_json", "body"),
    ])
    def test_a_body_that_does_not_parse_is_400_naming_the_body(self, store: FakeEventStore, body: str,
                                                               status: int, code: str, field: str) -> None:
        response = post(store, "track", body)
        assert_error(response, status, code, field)
        # the source is known: the input is kept as rejected, and nothing else
        assert store.stored == [] and [r["field"] for r in store.rejections] == ["body"]

    def test_a_body_over_32_kb_is_413(self, store: FakeEventStore) -> None:
        response = post(store, "track", {**SEGMENT_BODIES["track"], "properties": {"pad": "x" * 33_000}})
        assert_error(response, 413, "payload_too_large", "body")
        assert store.stored == [] and [r["field"] for r in store.rejections] == ["body"]

    def test_a_batch_over_500_kb_is_413(self, store: FakeEventStore) -> None:
        big = [{"type": "track", "userId": "u-1", "event": "x", "properties": {"pad": "x" * 20_000}}] * 26
        assert_error(post(store, "batch", {"batch": big}), 413, "payload_too_large", "body")
        assert store.stored == []

    def test_a_gzip_bomb_stops_at_the_limit_as_413(self, store: FakeEventStore) -> None:
        body = gzip.compress(json.dumps({"userId": "u-1", "event": "x", "pad": " " * 10_000_000}).encode())
        response = post(store, "track", body, headers={"content-encoding": "gzip"})
        assert_error(response, 413, "payload_too_large", "body")

    def test_a_gzipped_body_is_accepted_and_bad_gzip_is_400(self, store: FakeEventStore) -> None:
        good = gzip.compress(json.dumps(SEGMENT_BODIES["track"]).encode())
        assert post(store, "track", good, headers={"content-encoding": "gzip"})["statusCode"] == 200
        response = post(store, "track", b"not gzip", headers={"content-encoding": "gzip"})
        assert_error(response, 400, "invalid_gzip")
        assert [r["field"] for r in store.rejections] == ["content-encoding"]

    def test_a_body_that_is_not_json_is_415_naming_the_content_type(self, store: FakeEventStore) -> None:
        response = post(store, "track", b"\x89PNG", headers={"content-type": "image/png"})
        assert_error(response, 415, "unsupported_media_type", "content-type")
        assert store.stored == [] and [r["field"] for r in store.rejections] == ["content-type"]

    @pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
    def test_json_labelled_as_text_or_as_a_form_by_curl_is_taken(self, store: FakeEventStore,
                                                                  content_type: str) -> None:
        # analytics.js posts text/plain (no preflight); curl -d labels JSON as a form
        response = post(store, "track", json.dumps(SEGMENT_BODIES["track"]), headers={"content-type": content_type})
        assert response["statusCode"] == 200 and len(store.stored) == 1

    def test_without_a_key_a_bad_body_stores_nothing(self, store: FakeEventStore) -> None:
        # Given no Basic key: the body is read before anyone is known
        for body, headers in (("{not json", {}), ("x" * 40_000, {}), ("{}", {"content-type": "image/png"})):
            response = post(store, "track", body, basic_user=None, headers=headers)
            # Then a 4xx, and not even a rejection record
            assert 400 <= response["statusCode"] < 500
        assert store.writes == 0


class TestBatch:
    def test_good_messages_are_stored_and_bad_ones_rejected_by_index(self, store: FakeEventStore) -> None:
        api = ingest_api(store)
        batch = [{"type": "track", "userId": "u-1", "event": "Webinar Attended", "messageId": "b-1"},
                 {"type": "track", "userId": "u-1", "messageId": "b-2"},
                 {"type": "track", "userId": "u-1", "event": "Webinar Attended", "messageId": "b-1"}]
        response = post(store, "batch", {"batch": batch}, api=api)
        assert response["statusCode"] == 200
        assert json_body(response) == {"success": True, "accepted": 1, "duplicates": 1, "rejectedCount": 1,
                                       "rejected": [{"index": 1, "field": "event", "messageId": "b-2",
                                                     "reason": "a track call needs a non-empty event name"}]}
        assert [e.message_id for e in store.stored] == ["b-1"]
        assert [r["field"] for r in store.rejections] == ["event"]
        assert (api.counters.accepted, api.counters.duplicates, api.counters.rejected) == (1, 1, 1)

    def test_the_answer_lists_100_rejections_and_counts_them_all(self, store: FakeEventStore) -> None:
        response = post(store, "batch", {"batch": [{"type": "track", "userId": "u"}] * 150})
        answer = json_body(response)
        assert len(answer["rejected"]) == 100 and answer["rejectedCount"] == 150
        assert len(store.rejections) == 11  # ten one by one, then one summary

    @pytest.mark.parametrize("body", [{"batch": []}, {"nobatch": 1}, [1, 2],
                                      {"batch": [{"type": "track"}] * 1001}])
    def test_a_body_that_is_not_a_batch_is_400_naming_batch(self, store: FakeEventStore, body: Any) -> None:
        assert_error(post(store, "batch", body), 400, "invalid_batch", "batch")
        assert store.stored == [] and [r["field"] for r in store.rejections] == ["batch"]

    def test_bots_are_counted_apart_and_recorded_by_their_own_user_agent(self, store: FakeEventStore) -> None:
        # Given a batch whose second message comes from a crawler's page view (context.userAgent)
        batch = [{"type": "track", "userId": "u-1", "event": "Webinar Attended"},
                 {"type": "page", "userId": "u-2", "context": {"userAgent": BOT_UA}}]
        response = post(store, "batch", {"batch": batch})
        # Then the first is stored, the bot counted and recorded with its reason, the header says why
        assert json_body(response) == {"success": True, "accepted": 1, "duplicates": 0, "bots": 1}
        assert headers_of(response)[NOT_SCORED] == 'bot user agent: crawlerdetect matched "Googlebot"'
        assert [e.user_id for e in store.stored] == ["u-1"]
        assert [(r["field"], r["reason"].split(" in ")[0]) for r in store.rejections] == [
            ("context.userAgent", 'bot user agent: crawlerdetect matched "Googlebot"')]

    def test_an_unknown_key_is_401_and_nothing_is_stored(self, store: FakeEventStore) -> None:
        response = post(store, "batch", {"batch": [{"type": "track", "userId": "u", "event": "x"}]},
                        basic_user="wk_nobody")
        assert_error(response, 401, "unauthorized")
        assert store.writes == 0


# --- the pixel --------------------------------------------------------------------------------


def hit(store: FakeEventStore, query: str, api: Any = None, **kwargs: Any) -> dict[str, Any]:
    return (api or ingest_api(store)).handle(request("GET", f"/v1/pixel.gif?{query}", **kwargs))


def assert_gif(response: dict[str, Any]) -> None:
    import base64

    assert response["statusCode"] == 200 and response["isBase64Encoded"] is True
    headers = headers_of(response)
    assert headers["content-type"] == "image/gif" and headers["cache-control"] == "no-store"
    assert len(base64.b64decode(response["body"])) == 43
    assert "access-control-allow-origin" not in headers


class TestPixel:
    def test_a_hit_is_a_page_view_and_an_event_name_makes_it_a_track(self, store: FakeEventStore) -> None:
        assert_gif(hit(store, "k=wk_demo_email&uid=u-42&url=https://acme.com/p&mid=p-1"))
        assert_gif(hit(store, "k=wk_demo_email&e=Email%20Opened&uid=u-42&mid=p-2&p.campaign=c7"))
        page, track = store.stored
        assert (page.type, page.source_id, page.user_id, page.url) == ("page", "email", "u-42", "https://acme.com/p")
        assert (track.type, track.event, track.properties.get("campaign")) == ("track", "Email Opened", "c7")

    @pytest.mark.parametrize("query", ["k=wk_nobody&uid=u-1", "uid=u-1", "", "k=&e=x"])
    def test_an_unknown_or_missing_key_answers_the_gif_and_stores_nothing(self, store: FakeEventStore,
                                                                          query: str) -> None:
        api = ingest_api(store)
        assert_gif(hit(store, query, api=api))
        assert store.writes == 0 and api.counters.unauthorized == 1

    def test_a_bot_hit_gets_its_gif_and_a_rejected_record_that_says_why(self, store: FakeEventStore) -> None:
        api = ingest_api(store)
        response = hit(store, "k=wk_demo_email&e=Demo%20Link%20Clicked&uid=u-1", api=api, user_agent=BOT_UA)
        # Then the GIF, a header that says why it scores nothing, and no event: a record with the reason
        assert_gif(response)
        assert headers_of(response)[NOT_SCORED] == 'bot user agent: crawlerdetect matched "Googlebot"'
        assert store.stored == [] and api.counters.bots == 1 and api.counters.accepted == 0
        (record,) = store.rejections
        assert (record["field"], record["source_id"]) == ("user-agent", "email")
        assert record["reason"] == f'bot user agent: crawlerdetect matched "Googlebot" in "{BOT_UA}"'

    @pytest.mark.parametrize("user_agent, match", [(CURL_UA, "curl"), (HEADLESS_UA, "Headless")])
    def test_curl_and_headless_browsers_are_bots_and_the_recipe_s_user_agent_is_not(
            self, store: FakeEventStore, user_agent: str, match: str) -> None:
        # Given curl's own user agent, or a headless browser's
        api = ingest_api(store)
        response = hit(store, "k=wk_demo_email&uid=u-1&mid=m-1", api=api, user_agent=user_agent)
        assert headers_of(response)[NOT_SCORED] == f'bot user agent: crawlerdetect matched "{match}"'
        assert store.stored == [] and store.rejections[0]["reason"].startswith(
            f'bot user agent: crawlerdetect matched "{match}" in ')
        # When the same hit comes with the browser user agent of the README's curl recipe (-A)
        response = hit(store, "k=wk_demo_email&uid=u-1&mid=m-1", api=api, user_agent=RECIPE_UA)
        # Then it is stored and scored, with no such header
        assert NOT_SCORED not in headers_of(response)
        assert [e.user_id for e in store.stored] == ["u-1"] and store.stored[0].bot is False

    def test_a_mail_scanner_s_hit_leaves_the_message_id_to_the_reader(self, store: FakeEventStore) -> None:
        # Given a mail security gateway that opens the pixel of an email before its reader does
        api = ingest_api(store)
        query = "k=wk_demo_email&e=Email%20Opened&uid=u-1&mid=campaign-7-u-1"
        hit(store, query, api=api, user_agent=BOT_UA)
        # When the reader opens it, with the same message id
        hit(store, query, api=api)
        # Then the reader's open is stored (the bot's was only recorded as rejected)
        assert [(e.event, e.bot) for e in store.stored] == [("Email Opened", False)]
        assert api.counters.duplicates == 0

    def test_a_bad_hit_with_a_known_key_answers_the_gif_and_is_kept_as_rejected(self, store: FakeEventStore) -> None:
        assert_gif(hit(store, "k=wk_demo_email&uid=" + "u" * 300))
        assert store.stored == [] and [r["field"] for r in store.rejections] == ["userId"]

    def test_the_gif_goes_out_when_the_store_fails(self, store: FakeEventStore) -> None:
        store.fail = True
        assert_gif(hit(store, "k=wk_demo_email&uid=u-1"))


# --- forms ------------------------------------------------------------------------------------


class TestForms:
    def test_an_html_form_is_303_to_its_redirect_and_stores_identify_and_submission(
            self, store: FakeEventStore) -> None:
        response = ingest_api(store).handle(form_request("demo-request", {
            "email": "ana@globex.com", "title": "VP Sales", "company.name": "Globex"}))
        assert response["statusCode"] == 303
        assert headers_of(response)["location"] == "http://localhost:8000/thanks.html"
        identify, submitted = store.stored
        assert identify.type == "identify" and identify.traits["company"] == {"name": "Globex"}
        assert (submitted.event, submitted.properties["stage"], submitted.source_id) == \
               ("Form Submitted", "bottom", "website")

    def test_a_json_form_is_200(self, store: FakeEventStore) -> None:
        response = ingest_api(store).handle(request("POST", "/v1/forms/demo-request", "/v1/forms/{formId}",
                                                    body={"email": "ana@globex.com"}))
        assert response["statusCode"] == 200 and json_body(response) == {"success": True}
        assert len(store.stored) == 2

    def test_a_user_id_field_is_ignored_and_an_anonymous_id_kept(self, store: FakeEventStore) -> None:
        ingest_api(store).handle(form_request("demo-request", {
            "email": "ana@globex.com", "userId": "u-ceo", "anonymousId": "anon-7"}))
        assert len(store.stored) == 2
        for event in store.stored:
            assert event.user_id is None and event.anonymous_id == "anon-7"
            assert "userId" not in event.traits and "u-ceo" not in event.contact_key

    def test_a_submission_whose_identify_is_rejected_stores_nothing(self, store: FakeEventStore) -> None:
        # Given a trait the identify cannot take (a lone surrogate); the submission alone would pass
        response = ingest_api(store).handle(request(
            "POST", "/v1/forms/demo-request", "/v1/forms/{formId}", headers=JSON,
            body='{"email": "ana@globex.com", "title": "\\udc00"}'))
        assert_error(response, 400, "invalid_form", "title")
        assert store.stored == [] and len(store.rejections) == 1

    @pytest.mark.parametrize("fields, status, field", [
        ({"email": "ana@globex.com", "title": "x" * 2001}, 400, "title"),
        ({"email": "ana@globex.com", "n" * 101: "x"}, 400, "n" * 100),
        ({"title": "VP Sales"}, 400, "email"),
        ({"email": "ana@globex.com", "notes": "x" * 33_000}, 413, "body"),
    ], ids=["long-value", "long-name", "no-email", "over-32-kb"])
    def test_a_field_over_its_limits_stores_nothing_but_its_rejection(
            self, store: FakeEventStore, fields: dict[str, Any], status: int, field: str) -> None:
        response = ingest_api(store).handle(form_request("demo-request", fields))
        assert_error(response, status, "invalid_form" if status == 400 else "payload_too_large", field)
        assert store.stored == [] and [r["field"] for r in store.rejections] == [field]
        assert "x" * 2001 not in json.dumps(store.rejections, default=str)  # the record names the field, not its value

    def test_a_json_form_s_message_id_must_be_text(self, store: FakeEventStore) -> None:
        response = ingest_api(store).handle(request("POST", "/v1/forms/demo-request", "/v1/forms/{formId}",
                                                    body={"email": "ana@globex.com", "messageId": ["a"]}))
        assert_error(response, 400, "invalid_form", "messageId")
        assert store.stored == [] and [r["field"] for r in store.rejections] == ["messageId"]

    def test_a_form_that_is_not_utf8_or_multipart_is_refused(self, store: FakeEventStore) -> None:
        api = ingest_api(store)
        response = api.handle(request("POST", "/v1/forms/demo-request", "/v1/forms/{formId}",
                                      body="email=%ED%A0%80",
                                      headers={"content-type": "application/x-www-form-urlencoded"}))
        assert_error(response, 400, "invalid_form", "body")
        response = api.handle(request("POST", "/v1/forms/demo-request", "/v1/forms/{formId}", body="--x",
                                      headers={"content-type": "multipart/form-data; boundary=x"}))
        assert_error(response, 415, "unsupported_media_type", "content-type")
        assert store.stored == []

    def test_a_bot_s_form_post_is_still_redirected_and_recorded_with_the_reason(self, store: FakeEventStore) -> None:
        response = ingest_api(store).handle(form_request("demo-request", {"email": "ana@globex.com"},
                                                         user_agent=CURL_UA))
        assert response["statusCode"] == 303
        assert headers_of(response)[NOT_SCORED] == 'bot user agent: crawlerdetect matched "curl"'
        assert store.stored == []
        assert {(r["field"], r["reason"]) for r in store.rejections} == {
            ("user-agent", f'bot user agent: crawlerdetect matched "curl" in "{CURL_UA}"')}

    def test_an_unknown_form_is_404_and_stores_nothing(self, store: FakeEventStore) -> None:
        response = ingest_api(store).handle(form_request("no-such-form", {"email": "ana@globex.com"}))
        assert_error(response, 404, "unknown_form", "formId")
        assert store.writes == 0


# --- analytics.js settings --------------------------------------------------------------------


def settings_of(response: dict[str, Any]) -> dict[str, Any]:
    assert response["statusCode"] == 200, response
    return dict(json_body(response)["integrations"]["Segment.io"])


class TestSettings:
    PATH, ROUTE = f"/v1/projects/{WEB_KEY}/settings", "/v1/projects/{writeKey}/settings"

    def test_settings_point_at_the_public_api_url_when_set(self, store: FakeEventStore) -> None:
        api = ingest_api(store, public_url="https://track.example.com/")
        segment = settings_of(api.handle(request("GET", self.PATH, self.ROUTE)))
        assert (segment["apiHost"], segment["protocol"], segment["apiKey"]) == \
               ("track.example.com/v1", "https", WEB_KEY)

    def test_else_at_the_domain_api_gateway_answered_on_with_its_stage(self, store: FakeEventStore) -> None:
        response = ingest_api(store).handle(request("GET", f"/prod{self.PATH}", self.ROUTE,
                                                    path_parameters={"writeKey": WEB_KEY},
                                                    headers={"host": "abc.execute-api.us-east-1.amazonaws.com"}))
        assert settings_of(response)["apiHost"] == "abc.execute-api.us-east-1.amazonaws.com/prod/v1"
        assert headers_of(response)["cache-control"] == "max-age=300"

    def test_x_forwarded_host_is_ignored(self, store: FakeEventStore) -> None:
        for public_url in (None, "https://track.example.com"):
            response = ingest_api(store, public_url=public_url).handle(request("GET", self.PATH, self.ROUTE, headers={
                "host": "abc.execute-api.us-east-1.amazonaws.com", "x-forwarded-host": "evil.example",
                "x-forwarded-proto": "http"}))
            segment = settings_of(response)
            assert "evil" not in segment["apiHost"] and segment["protocol"] == "https"

    def test_an_unknown_write_key_is_404(self, store: FakeEventStore) -> None:
        response = ingest_api(store).handle(request("GET", "/v1/projects/wk_nobody/settings", self.ROUTE))
        assert_error(response, 404, "unknown_write_key")
        assert store.writes == 0


# --- CORS: preflights, and the headers on every JSON answer ------------------------------------


def preflight(store: FakeEventStore, origin: str | None) -> dict[str, Any]:
    headers = {"access-control-request-method": "POST"} | ({"origin": origin} if origin else {})
    return ingest_api(store).handle(request("OPTIONS", "/v1/track", "/v1/{proxy+}", headers=headers))


class TestCors:
    def test_a_preflight_from_an_origin_a_source_lists_is_allowed(self, store: FakeEventStore) -> None:
        response = preflight(store, WEB_ORIGIN)
        headers = headers_of(response)
        assert response["statusCode"] == 204 and headers["access-control-allow-origin"] == WEB_ORIGIN
        assert "POST" in headers["access-control-allow-methods"]
        assert "authorization" in headers["access-control-allow-headers"]
        assert headers["access-control-max-age"] == "600"

    @pytest.mark.parametrize("origin", ["https://evil.example", None])
    def test_a_preflight_from_any_other_origin_is_403(self, store: FakeEventStore, origin: str | None) -> None:
        response = preflight(store, origin)
        assert_error(response, 403, "origin_not_allowed")
        assert headers_of(response)["vary"] == "origin"
        assert "access-control-allow-origin" not in headers_of(response)
        assert store.writes == 0

    def test_an_answer_carries_the_origin_only_when_its_own_source_lists_it(self, store: FakeEventStore) -> None:
        own = post(store, "track", SEGMENT_BODIES["track"], headers={"origin": WEB_ORIGIN})
        assert headers_of(own)["access-control-allow-origin"] == WEB_ORIGIN
        # the email source lists no origin: its answers carry none, errors included
        other = post(store, "track", SEGMENT_BODIES["track"], basic_user=EMAIL_KEY, headers={"origin": WEB_ORIGIN})
        bad = post(store, "track", {"userId": "u-1"}, basic_user=EMAIL_KEY, headers={"origin": WEB_ORIGIN})
        assert other["statusCode"] == 200 and bad["statusCode"] == 400
        assert "access-control-allow-origin" not in headers_of(other) | headers_of(bad)

    def test_an_answer_to_a_sender_not_yet_known_is_readable_by_a_listed_origin(self, store: FakeEventStore) -> None:
        # a browser must be able to read its 401
        response = post(store, "track", SEGMENT_BODIES["track"], basic_user="wk_nobody",
                        headers={"origin": WEB_ORIGIN})
        assert response["statusCode"] == 401
        assert headers_of(response)["access-control-allow-origin"] == WEB_ORIGIN

    def test_settings_and_json_forms_carry_their_sources_origin(self, store: FakeEventStore) -> None:
        api = ingest_api(store)
        settings = api.handle(request("GET", f"/v1/projects/{WEB_KEY}/settings", "/v1/projects/{writeKey}/settings",
                                      headers={"origin": WEB_ORIGIN}))
        form = api.handle(request("POST", "/v1/forms/demo-request", "/v1/forms/{formId}",
                                  body={"email": "ana@globex.com"}, headers={"origin": WEB_ORIGIN}))
        for response in (settings, form):
            assert headers_of(response)["access-control-allow-origin"] == WEB_ORIGIN

    def test_an_origin_is_allowed_per_source_as_sources_yaml_lists_it(self, store: FakeEventStore,
                                                                      tmp_path: Path) -> None:
        # Given a config where only the product source allows https://app.example.com
        from leadscore.rulesfiles.loading import load_config

        shutil.copytree(ROOT / "config", tmp_path, dirs_exist_ok=True)
        sources = (tmp_path / "sources.yaml").read_text()
        (tmp_path / "sources.yaml").write_text(sources.replace(
            "write_key: wk_demo_product", 'write_key: wk_demo_product\n    cors_origins: ["https://app.example.com"]'))
        api = ingest_api(store, config=load_config(tmp_path))
        origin = {"origin": "https://app.example.com"}
        # Then the product key's answers carry it and the website key's do not
        product = post(store, "track", SEGMENT_BODIES["track"], api=api, basic_user="wk_demo_product", headers=origin)
        website = post(store, "track", SEGMENT_BODIES["track"], api=api, headers=origin)
        assert headers_of(product)["access-control-allow-origin"] == "https://app.example.com"
        assert "access-control-allow-origin" not in headers_of(website)


# --- the route table ---------------------------------------------------------------------------


def test_an_unknown_route_is_a_404_envelope(store: FakeEventStore) -> None:
    assert_error(ingest_api(store).handle(request("GET", "/v1/nothing")), 404, "not_found")


def test_the_route_table_is_the_templates_collect_routes() -> None:
    from leadscore.adapters.ingest import ROUTES
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((ROOT / "template.yaml").read_text())
    # the HTTP API's collection paths (IngestEndpoint HttpApi; the Function URL routes by the same table)
    paths = template["Resources"]["Api"]["Properties"]["DefinitionBody"]["paths"]
    routes = {f"{method.upper()} {path}" for path, item in paths.items()
              for method in item["Fn::If"][1] if item["Fn::If"][0] == "UseHttpApiIngest"}
    assert routes == set(ROUTES)


def test_every_route_but_the_preflight_names_its_sender() -> None:
    from leadscore.adapters.ingest import ROUTES

    assert [key for key, route in ROUTES.items() if route.sender is None] == ["OPTIONS /v1/{proxy+}"]


def test_time_is_the_clock_s_moment(store: FakeEventStore) -> None:
    post(store, "track", SEGMENT_BODIES["track"])
    assert store.stored[0].received_at == NOW
