"""Segment Tracking API messages -> TrackingEvent (pure: time and user agent are inputs)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from leadscore.domain.events import InvalidMessage, TrackingEvent
from leadscore.engine.messages import (
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    TYPES,
    batch_messages,
    parse_message,
    write_key_of,
)

RECEIVED = datetime(2026, 5, 13, 12, 0, 5, tzinfo=UTC)
CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

# The shape analytics.js (analytics-next) posts to /v1/p (page) and /v1/t (track).
AJS_CONTEXT: dict[str, Any] = {
    "library": {"name": "analytics.js", "version": "npm:next-1.70.0"},
    "locale": "en-GB",
    "page": {
        "path": "/pricing",
        "referrer": "https://www.google.com/",
        "search": "?plan=team",
        "title": "Pricing | Acme",
        "url": "https://www.acme.co.uk/pricing?plan=team",
    },
    "userAgent": CHROME,
    "userAgentData": {
        "brands": [{"brand": "Chromium", "version": "124"}, {"brand": "Google Chrome", "version": "124"}],
        "mobile": False,
        "platform": "macOS",
    },
    "campaign": {"name": "spring", "source": "newsletter", "medium": "email"},
}
AJS_PAGE: dict[str, Any] = {
    "timestamp": "2026-05-13T12:00:00.100Z",
    "integrations": {},
    "type": "page",
    "properties": {
        "path": "/pricing",
        "referrer": "https://www.google.com/",
        "search": "?plan=team",
        "title": "Pricing | Acme",
        "url": "https://www.acme.co.uk/pricing?plan=team",
    },
    "name": "Pricing",
    "context": AJS_CONTEXT,
    "messageId": "ajs-next-1747137600100-6f1c2b7e-2d0a-4c1e-9d2b-0f6a3c5e8b11",
    "anonymousId": "c6b1a8d2-5f3e-4e7a-9a0b-3d2c1f4e5a6b",
    "userId": None,
    "writeKey": "wk_live_abc",
    "sentAt": "2026-05-13T12:00:00.150Z",
    "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []},
}
AJS_TRACK: dict[str, Any] = {
    "timestamp": "2026-05-13T12:00:02.000Z",
    "integrations": {},
    "type": "track",
    "properties": {"plan": "enterprise", "seats": 250},
    "event": "Demo Requested",
    "context": AJS_CONTEXT,
    "messageId": "ajs-next-1747137602000-1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b",
    "anonymousId": "c6b1a8d2-5f3e-4e7a-9a0b-3d2c1f4e5a6b",
    "userId": "u-123",
    "writeKey": "wk_live_abc",
    "sentAt": "2026-05-13T12:00:02.020Z",
    "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []},
}


def parse(raw: Any, **kwargs: Any) -> TrackingEvent:
    kwargs.setdefault("source_id", "web")
    kwargs.setdefault("received_at", RECEIVED)
    return parse_message(raw, **kwargs)


def invalid_field(raw: Any, **kwargs: Any) -> str:
    with pytest.raises(InvalidMessage) as error:
        parse(raw, **kwargs)
    return error.value.field


def msg(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Signed Up", "userId": "u-1", **fields}


# --- real analytics.js payloads --------------------------------------------------------


def test_analytics_js_page_view() -> None:
    # Given the page call analytics.js sends for an anonymous visitor
    raw = copy.deepcopy(AJS_PAGE)
    # When parsed
    event = parse(raw, user_agent=CHROME)
    # Then every field lands where the scorer expects it
    assert event.type == "page"
    assert event.message_id == AJS_PAGE["messageId"]
    assert event.source_id == "web"
    assert event.contact_key == "a:c6b1a8d2-5f3e-4e7a-9a0b-3d2c1f4e5a6b"
    assert event.user_id is None
    assert event.event == "Pricing"
    assert event.url == "https://www.acme.co.uk/pricing?plan=team"
    assert event.path == "/pricing"
    assert event.referrer == "https://www.google.com/"
    assert event.user_agent == CHROME
    assert event.bot is False
    assert event.properties["title"] == "Pricing | Acme"
    assert event.traits == {}
    assert event.account_hint is None  # a visit to our own site names no visitor company
    assert event.received_at == RECEIVED
    # sentAt - timestamp = 50 ms, so the event happened 50 ms before we received it
    assert event.timestamp == RECEIVED - timedelta(milliseconds=50)
    assert event.timestamp.tzinfo is UTC


def test_analytics_js_track_event() -> None:
    raw = copy.deepcopy(AJS_TRACK)
    event = parse(raw)
    assert event.type == "track"
    assert event.event == "Demo Requested"
    assert event.contact_key == "u:u-123"
    assert event.anonymous_id == "c6b1a8d2-5f3e-4e7a-9a0b-3d2c1f4e5a6b"
    assert event.properties == {"plan": "enterprise", "seats": 250}
    # a track call's page comes from context.page
    assert event.url == "https://www.acme.co.uk/pricing?plan=team"
    assert event.path == "/pricing"
    assert event.timestamp == RECEIVED - timedelta(milliseconds=20)


def test_parsing_does_not_mutate_the_message() -> None:
    raw = copy.deepcopy(AJS_TRACK)
    parse(raw)
    assert raw == AJS_TRACK


# --- type ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, [], "track", 42])
def test_message_must_be_an_object(raw: Any) -> None:
    with pytest.raises(InvalidMessage, match="JSON object"):
        parse(raw)


def test_route_fills_a_missing_type() -> None:
    # Given a body posted to /v1/track without `type`
    raw = {"event": "Signed Up", "userId": "u-1"}
    # Then the route's type is used
    assert parse(raw, expected_type="track").type == "track"


def test_type_that_contradicts_the_route_is_rejected() -> None:
    assert invalid_field(msg(type="identify"), expected_type="track") == "type"


@pytest.mark.parametrize("type_", [None, "", "Track", "purchase", 3])
def test_missing_or_unknown_type_is_rejected(type_: Any) -> None:
    raw = msg(type=type_)
    assert invalid_field(raw) == "type"


def test_every_spec_type_is_accepted() -> None:
    bodies: dict[str, dict[str, Any]] = {
        "track": {"event": "X"},
        "page": {},
        "screen": {},
        "identify": {},
        "group": {"groupId": "g"},
        "alias": {"previousId": "anon-1"},
    }
    for type_ in TYPES:
        assert parse({"type": type_, "userId": "u-1", **bodies[type_]}).type == type_


# --- size -----------------------------------------------------------------------------


def test_event_over_32_kb_is_rejected_with_its_size() -> None:
    raw = msg(properties={"blob": "x" * MAX_EVENT_BYTES})
    with pytest.raises(InvalidMessage, match=r"event is \d+ bytes; the limit is 32 KB") as error:
        parse(raw)
    assert error.value.field == ""


def test_event_just_under_32_kb_is_accepted() -> None:
    raw = msg(properties={"blob": ""})
    overhead = len('{"type":"track","event":"Signed Up","userId":"u-1","properties":{"blob":""}}')
    raw["properties"]["blob"] = "x" * (MAX_EVENT_BYTES - overhead)
    assert parse(raw).properties["blob"]


def test_limits_match_segment() -> None:
    assert MAX_EVENT_BYTES == 32 * 1024
    assert MAX_BATCH_BYTES == 500 * 1024


# --- identity of the contact ---------------------------------------------------------


def test_anonymous_contact_key() -> None:
    event = parse({"type": "page", "anonymousId": "anon-7"})
    assert event.contact_key == "a:anon-7"


def test_user_id_wins_over_email_and_anonymous_id() -> None:
    raw = {"type": "identify", "userId": "u-1", "anonymousId": "a-1", "traits": {"email": "Jo@Acme.com"}}
    event = parse(raw)
    assert event.contact_key == "u:u-1"
    assert event.email == "jo@acme.com"


def test_email_only_contact_is_allowed() -> None:
    # Given a form submission that knows only the visitor's email
    raw = {"type": "identify", "traits": {"email": " Jo@Acme.COM ", "firstName": "Jo"}}
    # Then the contact is keyed by the lowercased email
    event = parse(raw)
    assert event.contact_key == "e:jo@acme.com"
    assert event.email == "jo@acme.com"
    assert event.account_hint == "acme.com"


def test_email_in_context_traits_or_properties_identifies_the_contact() -> None:
    event = parse(
        {"type": "track", "event": "Form Submitted", "context": {"traits": {"email": "a@acme.com"}}}
    )
    assert event.contact_key == "e:a@acme.com"
    event = parse({"type": "track", "event": "Form Submitted", "properties": {"email": "b@acme.com"}})
    assert event.contact_key == "e:b@acme.com"


def test_email_precedence_traits_then_context_traits_then_properties() -> None:
    raw = {
        "type": "identify",
        "traits": {"email": "one@acme.com"},
        "context": {"traits": {"email": "two@acme.com"}},
        "properties": {"email": "three@acme.com"},
    }
    assert parse(raw).email == "one@acme.com"
    del raw["traits"]
    assert parse(raw).email == "two@acme.com"


def test_no_identifier_at_all_is_rejected() -> None:
    assert invalid_field({"type": "track", "event": "X"}) == "userId"
    assert invalid_field({"type": "page", "userId": "", "anonymousId": None}) == "userId"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"type": "identify", "traits": {"email": "not-an-email"}}, "traits.email"),
        ({"type": "track", "event": "X", "context": {"traits": {"email": "jo@"}}}, "context.traits.email"),
        ({"type": "track", "event": "X", "properties": {"email": 7}}, "properties.email"),
    ],
)
def test_malformed_email_names_where_it_was(raw: dict[str, Any], field: str) -> None:
    assert invalid_field(raw) == field


def test_numeric_ids_become_strings() -> None:
    event = parse({"type": "track", "event": "X", "userId": 12345, "anonymousId": 678, "messageId": 9})
    assert (event.user_id, event.anonymous_id, event.message_id) == ("12345", "678", "9")
    assert event.contact_key == "u:12345"


@pytest.mark.parametrize("field", ["userId", "anonymousId", "messageId"])
def test_ids_are_capped_at_256_characters(field: str) -> None:
    assert parse(msg(**{field: "x" * 256}))  # at the limit
    assert invalid_field(msg(**{field: "x" * 257})) == field


@pytest.mark.parametrize("value", [True, {"id": 1}, ["u"]])
def test_ids_must_be_strings_or_numbers(value: Any) -> None:
    assert invalid_field(msg(userId=value)) == "userId"


# --- per-type requirements -------------------------------------------------------------


@pytest.mark.parametrize("event_name", [None, "", "   ", 42])
def test_track_needs_an_event_name(event_name: Any) -> None:
    assert invalid_field(msg(event=event_name)) == "event"


def test_track_event_name_is_capped() -> None:
    assert parse(msg(event="x" * 200)).event == "x" * 200
    assert invalid_field(msg(event="x" * 201)) == "event"


def test_group_needs_a_group_id() -> None:
    assert invalid_field({"type": "group", "userId": "u-1", "traits": {"name": "Acme"}}) == "groupId"


def test_group_with_website_names_the_account() -> None:
    raw = {
        "type": "group",
        "userId": "u-1",
        "groupId": "org_42",
        "traits": {"name": "Acme", "website": "https://www.acme.co.uk", "email": "info@acme.co.uk"},
    }
    event = parse(raw)
    assert event.group_id == "org_42"
    assert event.account_hint == "acme.co.uk"
    assert event.traits["name"] == "Acme"
    # the group's own email describes the company, not the contact
    assert event.email is None
    assert event.contact_key == "u:u-1"


def test_group_without_domain_keeps_group_id_as_account() -> None:
    event = parse({"type": "group", "anonymousId": "a-1", "groupId": "org_42", "traits": {"name": "Acme"}})
    assert event.account_hint == "org_42"


def test_alias_needs_user_id_and_previous_id() -> None:
    event = parse({"type": "alias", "userId": "u-1", "previousId": "anon-1"})
    assert (event.user_id, event.previous_id, event.contact_key) == ("u-1", "anon-1", "u:u-1")
    assert invalid_field({"type": "alias", "anonymousId": "a", "previousId": "anon-1"}) == "userId"
    assert invalid_field({"type": "alias", "userId": "u-1"}) == "previousId"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (msg(traits="x"), "traits"),
        (msg(properties=[1, 2]), "properties"),
        (msg(context="web"), "context"),
        (msg(context={"traits": "x"}), "context.traits"),
        (msg(context={"page": "x"}), "context.page"),
        (msg(context={"groupId": {"x": 1}}), "context.groupId"),
    ],
)
def test_structured_fields_must_be_objects(raw: dict[str, Any], field: str) -> None:
    assert invalid_field(raw) == field


# --- messageId ------------------------------------------------------------------------


def test_missing_message_id_is_derived_deterministically() -> None:
    # Given the same body sent twice (an SDK retry changes sentAt; the writeKey may move to a header)
    first = msg(
        properties={"plan": "team"},
        timestamp="2026-05-13T11:00:00Z",
        sentAt="2026-05-13T11:00:01Z",
        writeKey="wk",
    )
    retry = dict(first, sentAt="2026-05-13T11:05:00Z")
    del retry["writeKey"]
    # When both are parsed
    a, b = parse(first), parse(retry, received_at=RECEIVED + timedelta(minutes=5))
    # Then they carry the same id, so the second is a duplicate
    assert a.message_id == b.message_id
    assert a.message_id.startswith("auto-") and len(a.message_id) == len("auto-") + 32
    # ... independent of key order
    assert parse(dict(reversed(list(first.items())))).message_id == a.message_id


def test_different_bodies_get_different_derived_ids() -> None:
    assert parse(msg(event="A")).message_id != parse(msg(event="B")).message_id


def test_empty_message_id_is_derived() -> None:
    assert parse(msg(messageId="")).message_id.startswith("auto-")


# --- timestamp ------------------------------------------------------------------------


def test_timestamp_defaults_to_received_at() -> None:
    assert parse(msg()).timestamp == RECEIVED


def test_timestamp_in_the_past_is_kept() -> None:
    # Given a back-end import of an old event (no sentAt: nothing to correct)
    assert parse(msg(timestamp="2026-04-01T09:30:00Z")).timestamp == datetime(2026, 4, 1, 9, 30, tzinfo=UTC)


def test_original_timestamp_is_used_when_timestamp_is_missing() -> None:
    event = parse(msg(originalTimestamp="2026-05-13T10:00:00+02:00"))
    assert event.timestamp == datetime(2026, 5, 13, 8, 0, tzinfo=UTC)


def test_future_timestamp_is_clamped_to_received_at() -> None:
    # Given a device clock an hour ahead and no sentAt to correct it
    event = parse(msg(timestamp="2026-05-13T13:00:05Z"))
    # Then the event is dated when we received it, never in the future
    assert event.timestamp == RECEIVED


def test_device_clock_skew_is_corrected_with_sent_at() -> None:
    # Given a device whose clock is 3 hours behind, that queued the event for 10 s
    raw = msg(timestamp="2026-05-13T08:59:55Z", sentAt="2026-05-13T09:00:05Z")
    # Then timestamp = receivedAt - (sentAt - timestamp), as Segment computes it
    assert parse(raw).timestamp == RECEIVED - timedelta(seconds=10)


def test_malformed_sent_at_does_not_cost_the_event() -> None:
    assert parse(msg(timestamp="2026-05-13T11:00:00Z", sentAt="soon")).timestamp == datetime(
        2026, 5, 13, 11, 0, tzinfo=UTC
    )


def test_naive_timestamp_is_utc() -> None:
    assert parse(msg(timestamp="2026-05-13T11:00:00")).timestamp == datetime(2026, 5, 13, 11, 0, tzinfo=UTC)


def test_naive_received_at_is_utc_and_aware_is_converted() -> None:
    naive = datetime(2026, 5, 13, 12, 0, 5)
    assert parse(msg(), received_at=naive).received_at == RECEIVED
    paris = RECEIVED.astimezone(timezone(timedelta(hours=2)))
    event = parse(msg(), received_at=paris)
    assert event.received_at == RECEIVED and event.received_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("field", "value"),
    [("timestamp", "yesterday"), ("timestamp", 1747137600), ("originalTimestamp", "2026-13-45T00:00:00Z")],
)
def test_unparseable_timestamp_is_rejected(field: str, value: Any) -> None:
    assert invalid_field(msg(**{field: value})) == field


# --- traits, properties, page fields ------------------------------------------------------


def test_identify_traits_and_company_domain() -> None:
    raw = {
        "type": "identify",
        "userId": "u-1",
        "traits": {
            "email": "jo@gmail.com",
            "title": "VP Sales",
            "company": {"name": "Acme", "domain": "acme.com"},
        },
    }
    event = parse(raw)
    assert event.traits["title"] == "VP Sales"
    assert event.account_hint == "acme.com"


def test_free_email_is_an_individual() -> None:
    event = parse({"type": "identify", "userId": "u-1", "traits": {"email": "jo@yahoo.com"}})
    assert event.account_hint is None


def test_track_uses_context_traits() -> None:
    raw = msg(context={"traits": {"email": "jo@acme.io", "plan": "pro"}})
    event = parse(raw)
    assert event.traits == {"email": "jo@acme.io", "plan": "pro"}
    assert event.account_hint == "acme.io"


def test_context_group_id_that_is_a_domain_names_the_account() -> None:
    assert parse(msg(context={"groupId": "www.acme.com"})).account_hint == "acme.com"
    event = parse(msg(context={"groupId": "org_42"}))
    assert event.account_hint is None
    assert event.group_id == "org_42"


def test_page_name_falls_back_to_properties_name() -> None:
    assert parse({"type": "page", "anonymousId": "a", "properties": {"name": "Docs"}}).event == "Docs"
    assert parse({"type": "page", "anonymousId": "a"}).event is None


def test_page_path_is_parsed_from_url() -> None:
    event = parse({"type": "page", "anonymousId": "a", "properties": {"url": "https://acme.com/a/b?c=1"}})
    assert (event.url, event.path) == ("https://acme.com/a/b?c=1", "/a/b")
    assert parse({"type": "page", "anonymousId": "a", "properties": {"url": "https://acme.com"}}).path == "/"


def test_page_properties_win_over_context_page() -> None:
    raw = {
        "type": "page",
        "anonymousId": "a",
        "properties": {"url": "https://acme.com/own", "referrer": "https://ref.example/"},
        "context": {"page": {"url": "https://acme.com/ctx", "path": "/ctx", "referrer": "https://other/"}},
    }
    event = parse(raw)
    assert (event.url, event.path, event.referrer) == ("https://acme.com/own", "/ctx", "https://ref.example/")


def test_track_url_property_is_not_the_page() -> None:
    # Given a click on an outbound link, tracked with the link in properties.url
    raw = msg(
        properties={"url": "https://partner.example/offer"},
        context={"page": {"url": "https://acme.com/blog/x"}},
    )
    event = parse(raw)
    assert (event.url, event.path) == ("https://acme.com/blog/x", "/blog/x")


def test_screen_call() -> None:
    event = parse({"type": "screen", "userId": "u-1", "name": "Dashboard", "properties": {"tab": "usage"}})
    assert (event.type, event.event, event.properties) == ("screen", "Dashboard", {"tab": "usage"})


# --- user agent and bots ----------------------------------------------------------------


def test_context_user_agent_wins_over_the_header() -> None:
    event = parse(msg(context={"userAgent": GOOGLEBOT}), user_agent=CHROME)
    assert (event.user_agent, event.bot) == (GOOGLEBOT, True)


def test_header_user_agent_is_used_without_context() -> None:
    # Given a pixel or form hit from a crawler: no context, only the HTTP header
    event = parse(msg(), user_agent=GOOGLEBOT)
    assert (event.user_agent, event.bot) == (GOOGLEBOT, True)
    assert parse(msg(), user_agent=CHROME).bot is False
    assert parse(msg()).bot is False


def test_server_library_http_client_is_not_a_bot() -> None:
    # Given a Segment server library: context.library, no context.userAgent, its own UA header
    raw = msg(context={"library": {"name": "analytics-ruby", "version": "2.4.0"}})
    event = parse(raw, user_agent="analytics-ruby/2.4.0")
    # Then the sender's UA is recorded but is not evidence of a bot visitor
    assert event.user_agent == "analytics-ruby/2.4.0"
    assert event.bot is False


# --- batch ----------------------------------------------------------------------------


def test_batch_applies_shared_context_under_each_message() -> None:
    # Given an analytics-python-shaped batch with batch-level context and sentAt
    body = {
        "batch": [
            {"type": "track", "event": "A", "userId": "u-1", "context": {"ip": "203.0.113.9"}},
            {"type": "identify", "userId": "u-2", "context": {"library": {"name": "custom"}}},
            {"type": "track", "event": "B", "userId": "u-3", "integrations": {"All": False}},
        ],
        "context": {"library": {"name": "analytics-python", "version": "2.3.2"}, "locale": "en-US"},
        "integrations": {"All": True},
        "sentAt": "2026-05-13T12:00:04Z",
        "writeKey": "wk",
    }
    original = copy.deepcopy(body)
    # When split
    items = batch_messages(body)
    # Then each message has the shared fields, its own winning
    assert items[0]["context"] == {
        "library": {"name": "analytics-python", "version": "2.3.2"},
        "locale": "en-US",
        "ip": "203.0.113.9",
    }
    assert items[1]["context"]["library"] == {"name": "custom", "version": "2.3.2"}
    assert items[2]["integrations"] == {"All": False}
    assert items[0]["integrations"] == {"All": True}
    assert all(item["sentAt"] == "2026-05-13T12:00:04Z" for item in items)
    assert body == original
    # ... and the shared context is not one object aliased between messages
    assert items[0]["context"]["library"] is not items[2]["context"]["library"]


def test_batch_items_are_parsed_one_by_one() -> None:
    items = batch_messages({"batch": [{"type": "track", "userId": "u-1"}, "junk", msg()]})
    assert invalid_field(items[0]) == "event"
    with pytest.raises(InvalidMessage):
        parse(items[1])
    assert parse(items[2]).event == "Signed Up"


def test_batch_without_shared_fields_is_returned_as_is() -> None:
    assert batch_messages({"batch": [msg()]}) == [msg()]


@pytest.mark.parametrize(
    "body", [None, [], "x", {}, {"batch": []}, {"batch": {"type": "track"}}, {"batch": "x"}]
)
def test_batch_must_be_a_non_empty_list(body: Any) -> None:
    with pytest.raises(InvalidMessage) as error:
        batch_messages(body)
    assert error.value.field == "batch"


def test_batch_context_must_be_an_object() -> None:
    with pytest.raises(InvalidMessage) as error:
        batch_messages({"batch": [msg()], "context": "x"})
    assert error.value.field == "context"


# --- writeKey -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"writeKey": "wk_1"}, "wk_1"),
        ({"writeKey": " wk_1 "}, "wk_1"),
        ({"writeKey": ""}, None),
        ({"writeKey": 5}, None),
        ({}, None),
        (None, None),
        ([], None),
    ],
)
def test_write_key_of(body: Any, expected: str | None) -> None:
    assert write_key_of(body) == expected
