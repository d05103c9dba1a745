"""What the tracking SDKs really send, route by route, on an in-memory event store.

The request shapes come from the SDKs' own source (the versions are in the README's table
of client paths): `@segment/analytics-next` 1.84.3 posts each call to `/v1/<the type's
first letter>` and batches to `/v1/b`, as text/plain JSON with the write key in the body
and as HTTP Basic (1.60.0: in the body only); its retries add `X-Retry-Count`. RudderStack's
JavaScript SDK (`@rudderstack/analytics-js` 3.34.1, `rudder-sdk-js` 2.52.21) posts
`/v1/<type>` and `/v1/batch` with `AnonymousId`, `SentAt` and `Rsa-*` headers, beacons
batches to `/beacon/v1/batch?writeKey=`, loads `/v1/sourceConfig`, and sends an identify's
traits only as `context.traits`, as `rudder-sdk-python` 2.1.9 does.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from tests.unit.ingest_fakes import (
    EMAIL_KEY,
    NOW,
    WEB_KEY,
    WEB_ORIGIN,
    FakeEventStore,
    headers_of,
    ingest_api,
    json_body,
    request,
)

CHROME = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36")
TEXT = {"content-type": "text/plain;charset=UTF-8"}
PROFILE = {"email": "jo@acme.com", "title": "VP Sales",
           "company": {"name": "Acme", "industry": "Software", "employee_count": 200},
           "address": {"country": "US"}}


@pytest.fixture
def store() -> FakeEventStore:
    return FakeEventStore()


def analytics_next(kind: str, **fields: Any) -> dict[str, Any]:
    """A message as @segment/analytics-next's segmentio plugin posts it (normalize.ts)."""
    return {"type": kind, "messageId": f"ajs-next-{kind}-1", "anonymousId": "anon-7", "userId": "u-1",
            "timestamp": "2026-05-13T09:59:59.000Z", "integrations": {}, "writeKey": WEB_KEY,
            "sentAt": "2026-05-13T10:00:00.000Z",
            "context": {"userAgent": CHROME, "locale": "en-US", "page": {"url": "https://acme-site.com/pricing"},
                        "library": {"name": "analytics.js", "version": "npm:next-1.84.3"}},
            "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []}, **fields}


ANALYTICS_NEXT = {
    "t": analytics_next("track", event="Webinar Attended", properties={}),
    "i": analytics_next("identify", traits=PROFILE),
    "p": analytics_next("page", properties={"url": "https://acme-site.com/pricing", "path": "/pricing"}),
    "s": analytics_next("screen", name="Home"),
    "g": analytics_next("group", groupId="acme", traits={"website": "acme.com"}),
    "a": analytics_next("alias", previousId="anon-7"),
}


def rudder_js(kind: str, **fields: Any) -> dict[str, Any]:
    """A message as RudderStack's JavaScript SDK (v3) sends it (its RudderEventFactory)."""
    return {"channel": "web", "type": kind, "messageId": f"rs-{kind}-1", "anonymousId": "anon-9", "userId": "",
            "originalTimestamp": "2026-05-13T09:59:59.000Z", "sentAt": "2026-05-13T10:00:00.000Z",
            "integrations": {"All": True},
            "context": {"userAgent": CHROME, "locale": "en-US", "traits": {}, "page": {},
                        "library": {"name": "RudderLabs JavaScript SDK", "version": "3.34.1"}}, **fields}


def post(store: FakeEventStore, path: str, body: Any, *, api: Any = None, headers: dict[str, str] | None = None,
         **kwargs: Any) -> dict[str, Any]:
    route = kwargs.pop("route", path.split("?", 1)[0])
    text = json.dumps(body) if not isinstance(body, str | bytes) else body
    return (api or ingest_api(store)).handle(request("POST", path, route, body=text,
                                                     headers={**TEXT, **(headers or {})}, **kwargs))


# --- analytics.js: /v1/t, /v1/i, /v1/p, /v1/s, /v1/g, /v1/a and /v1/b ----------------------------


class TestAnalyticsNext:
    @pytest.mark.parametrize("letter", ANALYTICS_NEXT)
    def test_each_short_route_takes_its_type_as_text_plain_with_basic_auth(self, store: FakeEventStore,
                                                                            letter: str) -> None:
        # Given the message analytics.js posts to /v1/<letter>: text/plain JSON, Basic auth and writeKey
        body = ANALYTICS_NEXT[letter]
        response = post(store, f"/v1/{letter}", body, basic_user=WEB_KEY, headers={"origin": WEB_ORIGIN})
        # Then Segment's answer, readable by the page's origin, and one event of that type
        assert response["statusCode"] == 200 and json_body(response) == {"success": True}
        assert headers_of(response)["access-control-allow-origin"] == WEB_ORIGIN
        assert [(e.type, e.source_id, e.message_id) for e in store.stored] == [(body["type"], "website",
                                                                                body["messageId"])]

    def test_the_write_key_in_the_body_alone_names_the_sender(self, store: FakeEventStore) -> None:
        # Given analytics.js 1.60.0: no Authorization header, the writeKey in the text/plain body
        body = {**ANALYTICS_NEXT["t"], "writeKey": EMAIL_KEY}
        response = post(store, "/v1/t", body, basic_user=None)
        # Then the body's key decides the source
        assert response["statusCode"] == 200
        assert [e.source_id for e in store.stored] == ["email"]

    @pytest.mark.parametrize("key", ["wk_nobody", None])
    def test_an_unknown_or_missing_key_in_the_body_is_401_and_stores_nothing(self, store: FakeEventStore,
                                                                             key: str | None) -> None:
        body = {k: v for k, v in ANALYTICS_NEXT["t"].items() if k != "writeKey"}
        if key:
            body["writeKey"] = key
        response = post(store, "/v1/t", body, basic_user=None)
        assert response["statusCode"] == 401 and json_body(response)["field"] == "authorization"
        assert store.writes == 0

    def test_a_short_route_takes_only_its_own_type(self, store: FakeEventStore) -> None:
        response = post(store, "/v1/t", ANALYTICS_NEXT["i"], basic_user=WEB_KEY)
        assert response["statusCode"] == 400 and json_body(response)["field"] == "type"
        assert store.stored == []

    def test_the_batching_delivery_posts_to_v1_b(self, store: FakeEventStore) -> None:
        # Given analytics.js in batching mode: {writeKey, batch, sentAt} to /v1/b, sentAt removed per event
        batch = [{k: v for k, v in ANALYTICS_NEXT[letter].items() if k != "sentAt"} for letter in ("i", "t", "p")]
        body = {"writeKey": WEB_KEY, "batch": batch, "sentAt": "2026-05-13T10:00:00.000Z"}
        response = post(store, "/v1/b", body, basic_user=WEB_KEY, headers={"x-retry-count": "1"})
        # Then every message is stored, as by /v1/batch
        assert response["statusCode"] == 200
        assert json_body(response) == {"success": True, "accepted": 3, "duplicates": 0}
        assert sorted(e.type for e in store.stored) == ["identify", "page", "track"]

    def test_the_settings_turn_its_metrics_off_so_nothing_posts_to_v1_m(self, store: FakeEventStore) -> None:
        response = ingest_api(store).handle(request("GET", f"/v1/projects/{WEB_KEY}/settings",
                                                    "/v1/projects/{writeKey}/settings"))
        assert json_body(response)["metrics"]["sampleRate"] == 0  # remote-metrics.ts sends only when > 0

    def test_a_retry_with_x_retry_count_scores_once(self, store: FakeEventStore) -> None:
        api = ingest_api(store)
        for attempt in ("", "1", "2"):
            headers = {"x-retry-count": attempt} if attempt else {}
            assert post(store, "/v1/t", ANALYTICS_NEXT["t"], api=api, basic_user=WEB_KEY,
                        headers=headers)["statusCode"] == 200
        assert len(store.stored) == 1 and api.counters.duplicates == 1


# --- RudderStack: /v1/<type>, /v1/batch, /beacon/v1/batch, /v1/sourceConfig, context.traits ----


class TestRudderStack:
    def test_the_xhr_delivery_with_its_headers_is_taken(self, store: FakeEventStore) -> None:
        # Given rudder-sdk-js v3's XHR queue: application/json;charset=UTF-8, Basic auth, AnonymousId
        headers = {"content-type": "application/json;charset=UTF-8", "anonymousid": "YW5vbi05",
                   "sentat": "2026-05-13T10:00:00.000Z", "rsa-retry-attempt": "1", "rsa-retry-reason": "server-500"}
        track = rudder_js("track", event="Webinar Attended", properties={})
        single = post(store, "/v1/track", track, basic_user=WEB_KEY, headers=headers)
        batch = post(store, "/v1/batch", {"batch": [rudder_js("page", name="Pricing", properties={
            "url": "https://acme-site.com/pricing", "path": "/pricing"})], "sentAt": "2026-05-13T10:00:00.000Z"},
            basic_user=WEB_KEY, headers=headers)
        assert single["statusCode"] == batch["statusCode"] == 200
        assert sorted((e.type, e.anonymous_id) for e in store.stored) == [("page", "anon-9"), ("track", "anon-9")]

    def test_a_beacon_batch_names_its_sender_by_the_writekey_query(self, store: FakeEventStore) -> None:
        # Given navigator.sendBeacon: a text/plain Blob, no headers, the key in the query
        body = {"batch": [rudder_js("track", event="Webinar Attended", properties={})],
                "sentAt": "2026-05-13T10:00:00.000Z"}
        response = post(store, f"/beacon/v1/batch?writeKey={WEB_KEY}", body, basic_user=None)
        assert response["statusCode"] == 200 and json_body(response)["accepted"] == 1
        assert [e.source_id for e in store.stored] == ["website"]

    @pytest.mark.parametrize("query", ["writeKey=wk_nobody", ""])
    def test_a_beacon_without_a_known_key_is_401_before_its_body_is_read(self, store: FakeEventStore,
                                                                          query: str) -> None:
        response = post(store, f"/beacon/v1/batch?{query}", "{not json", basic_user=None)
        assert response["statusCode"] == 401
        if not query:
            assert "writeKey query parameter" in json_body(response)["message"]
        assert store.writes == 0

    @pytest.mark.parametrize("credentials", [{"basic_user": WEB_KEY}, {"query": {"writeKey": WEB_KEY}}],
                             ids=["basic", "query"])
    def test_the_source_config_names_the_source_with_nothing_else_to_load(self, store: FakeEventStore,
                                                                          credentials: dict[str, Any]) -> None:
        # Given the SDK's config request (configUrl https://<api>/v1/sourceConfig), from the page's origin
        query = {"p": "npm", "v": "3.34.1", "build": "modern", "lockIntegrationsVersion": "true",
                 **credentials.get("query", {})}
        response = ingest_api(store).handle(request("GET", "/v1/sourceConfig", query=query,
                                                    basic_user=credentials.get("basic_user"),
                                                    headers={"origin": WEB_ORIGIN, "accept": "application/json"}))
        # Then what the SDK validates (source id, config, destinations), no destination to load, no stats
        assert response["statusCode"] == 200, response
        source = json_body(response)["source"]
        assert (source["id"], source["enabled"], source["destinations"]) == ("website", True, [])
        assert source["config"]["statsCollection"]["metrics"]["enabled"] is False
        assert headers_of(response)["access-control-allow-origin"] == WEB_ORIGIN
        assert store.writes == 0

    def test_the_source_config_of_an_unknown_key_is_401(self, store: FakeEventStore) -> None:
        response = ingest_api(store).handle(request("GET", "/v1/sourceConfig", query={"writeKey": "wk_nobody"}))
        assert response["statusCode"] == 401 and store.writes == 0


class TestContextTraits:
    def test_an_identify_with_traits_only_in_context_traits_keeps_them(self, store: FakeEventStore) -> None:
        # Given rudder-sdk-python's identify: no top-level traits, all of them in context.traits
        body = {"type": "identify", "userId": "u-1", "messageId": "rs-py-1",
                "context": {"traits": PROFILE, "library": {"name": "analytics-python", "version": "2.1.9"}},
                "integrations": {"All": True}, "channel": "server"}
        response = post(store, "/v1/batch", {"batch": [body]}, basic_user=WEB_KEY,
                        headers={"content-type": "application/json"})
        # Then the stored identify carries the title and company
        assert response["statusCode"] == 200
        (event,) = store.stored
        assert (event.email, event.traits["title"], event.traits["company"]["name"]) == \
               ("jo@acme.com", "VP Sales", "Acme")
        assert event.account_hint == "acme.com"

    def test_it_scores_the_fit_a_segment_identify_of_the_same_profile_scores(self, store: FakeEventStore) -> None:
        from leadscore.domain.ledgers import ContactState
        from leadscore.engine.rules import apply_event, score

        segment = {"type": "identify", "userId": "u-seg", "traits": PROFILE}
        rudder = {"type": "identify", "userId": "u-rs", "context": {"traits": PROFILE}}
        post(store, "/v1/batch", {"batch": [segment, rudder]}, basic_user=WEB_KEY)
        cfg = ingest_api(store).config.scoring
        fits = {}
        for event in store.stored:
            state = ContactState()
            apply_event(cfg, state, event)
            fits[event.user_id] = score(cfg, state, NOW + timedelta(minutes=1)).fit
        assert fits == {"u-seg": 50, "u-rs": 50}

    def test_top_level_traits_win_over_context_traits_key_by_key(self, store: FakeEventStore) -> None:
        body = {"type": "identify", "userId": "u-1", "traits": {"title": "CEO", "company": {"name": "Acme Inc"}},
                "context": {"traits": {"title": "VP Sales", "company": {"name": "Acme", "domain": "acme.com"},
                                       "email": "jo@acme.com"}}}
        post(store, "/v1/identify", body, basic_user=WEB_KEY, headers={"content-type": "application/json"})
        (event,) = store.stored
        assert event.traits == {"title": "CEO", "email": "jo@acme.com",
                                "company": {"name": "Acme Inc", "domain": "acme.com"}}


# --- preflights: every header the browser SDKs send is allowed ----------------------------------


@pytest.mark.parametrize("requested", [
    "authorization,content-type",  # analytics.js, first attempt
    "authorization,content-type,x-retry-count",  # analytics.js, a retry
    "anonymousid,authorization,content-type,sentat",  # rudder-sdk-js v3 and v2
    "anonymousid,authorization,content-type,rsa-recovered,rsa-retry-attempt,rsa-retry-reason,"
    "rsa-since-first-attempt,rsa-since-last-attempt,sentat",  # rudder-sdk-js v3, a retried item
], ids=["analytics.js", "analytics.js-retry", "rudder", "rudder-retry"])
@pytest.mark.parametrize("path", ["/v1/t", "/v1/b", "/v1/track", "/v1/batch", "/v1/sourceConfig"])
def test_a_preflight_allows_every_header_the_sdks_send(store: FakeEventStore, requested: str, path: str) -> None:
    headers = {"origin": WEB_ORIGIN, "access-control-request-method": "GET" if "Config" in path else "POST",
               "access-control-request-headers": requested}
    response = ingest_api(store).handle(request("OPTIONS", path, "/v1/{proxy+}", headers=headers))
    assert response["statusCode"] == 204
    allowed = {h.strip() for h in headers_of(response)["access-control-allow-headers"].lower().split(",")}
    assert set(requested.split(",")) <= allowed
