"""Every public ingestion route, fuzzed in process through the real collect handler
(`functions/collect/app.py`) with API Gateway HTTP API v2 events, the shipped config/ and
the shipped Store over an in-memory DynamoDB that refuses what the real one refuses.

Properties (PRODUCT.md, Ingestion), for every input:
- never a 5xx, never an exception out of the handler;
- a 4xx is JSON with `error`, `code` and `message`; a `field`, when given, names something;
  an invalid message or batch always names its field;
- a 4xx stores no accepted event, only its rejection record(s);
- without a valid write key (none or unknown in Basic auth, none valid in the body) nothing
  at all is stored; a 401 stores nothing;
- the pixel always answers 200, image/gif, the 43-byte GIF, no-store;
- a batch answer is bounded (at most 100 rejections listed, 64 KB);
- analytics.js's short routes (`/v1/t` ... `/v1/b`) keep the same properties as the long ones;
  RudderStack's beacon batch stores nothing without a known `writeKey` query parameter, and
  its source config stores nothing at all;
- a form never passes a posted userId through; the settings' apiHost never carries a
  client's X-Forwarded-Host; a preflight stores nothing;
- an identify crowded with custom traits (in traits, traits.company and context.traits)
  stores every known trait within the event's bound, so its fit is that of its known traits;
- a group call's `owner` (the CRM owner routing honours) is stored only from the trusted source.
"""

from __future__ import annotations

import base64
import gzip
import json
from functools import cache
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from local.apigw import as_function_url, http_event, lambda_context
from tests.fuzz.fakes import FakeDynamoDB, fake_store
from tests.fuzz.strategies import (
    FORM_IDS,
    WRITE_KEYS,
    Raw,
    any_text,
    auth_headers,
    basic,
    batch_body,
    body_keys,
    content_types,
    crowded_identify,
    dumps,
    emoji_id,
    gzip_bomb,
    gzip_json_bomb,
    ids,
    mutated_message,
    valid_message,
)
from tests.fuzz.tally import TALLY, fuzz_settings

PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
SEGMENT_ROUTES = ("track", "identify", "page", "screen", "group", "alias")
MAX_BATCH_ANSWER_BYTES = 64 * 1024


#: The front door of this module's run (tests/conftest.py runs it on both: issue 26).
SHAPE = {"ingest": "http-api"}


@pytest.fixture(scope="module", autouse=True)
def _front_door(ingest: str) -> None:
    """Every input as the HTTP API delivers it, or as the collect function's Function URL does
    (no route key: the function routes by the path)."""
    SHAPE["ingest"] = ingest


@cache
def _config() -> Any:
    from leadscore.rulesfiles.loading import load_config

    return load_config()


def call(method: str, route: str, path: str | None = None, **kwargs: Any) -> tuple[dict[str, Any], FakeDynamoDB]:
    """One request through the real handler, against a fresh in-memory table."""
    from leadscore.adapters import runtime
    from leadscore.adapters.ingest import IngestApi
    from leadscore.services.collect import Collector

    from functions.collect.app import lambda_handler

    store, table = fake_store()
    api = IngestApi(Collector(store, _config()), _config(), clock=runtime.now)
    event = http_event(method, path or route, route_key=f"{method} {route}", **kwargs)
    if SHAPE["ingest"] == "function-url":
        event = as_function_url(event)
    body = event.get("body") or ""
    note(f"{method} {path or route} ?{event['rawQueryString'][:300]} headers={kwargs.get('headers')} "
         f"body({len(body)} chars{', base64' if event['isBase64Encoded'] else ''})={body[:600]!r}")
    TALLY.add(f"{method} {route}")
    response = lambda_handler(event, lambda_context("CollectFunction"), api=api)
    return response, table


def body_of(response: dict[str, Any]) -> bytes:
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)


def check_answer(response: dict[str, Any], table: FakeDynamoDB) -> Any:
    """The properties every JSON route keeps; returns the decoded JSON body (or None)."""
    status = response["statusCode"]
    assert status < 500, response
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    if 400 <= status < 500:
        assert headers.get("content-type", "").startswith("application/json"), response
        answer = json.loads(body_of(response))
        assert isinstance(answer, dict), response
        for key in ("error", "code", "message"):
            assert isinstance(answer.get(key), str) and answer[key], (key, answer)
        if "field" in answer or answer["error"] in ("invalid_event", "invalid_batch"):
            assert isinstance(answer.get("field"), str) and answer["field"].strip(), ("field", answer)
        assert table.event_writes == 0, ("a 4xx answer stored accepted events", table.event_writes, answer)
        if status == 401:
            assert table.total_writes == 0, ("a 401 stored something", table.writes, answer)
        return answer
    if headers.get("content-type", "").startswith("application/json"):
        return json.loads(body_of(response))
    return None


# --- the Segment routes ------------------------------------------------------------------------


@st.composite
def segment_request(draw: st.DrawFn, route: str) -> dict[str, Any]:
    """Body, headers and what the request carries as credentials."""
    auth_kind, authorization = draw(auth_headers)
    key_kind, key = draw(body_keys)
    if route == "batch":
        body = draw(batch_body())
    else:
        body = draw(st.one_of(valid_message(route), mutated_message(route), mutated_message()))
    if key_kind != "absent" and isinstance(body, dict):
        body = {**body, "writeKey": key}
    elif key_kind == "valid":
        key_kind = "absent"
    text = dumps(body)
    raw = text.encode("utf-8")
    encoding = draw(st.sampled_from(["none"] * 6 + ["gzip", "truncated-gzip", "bomb", "json-bomb", "bytes"]))
    headers: dict[str, str] = {"content-type": draw(st.one_of(st.just("application/json"), content_types))}
    if encoding == "gzip":
        raw = gzip.compress(raw)
        headers["content-encoding"] = draw(st.sampled_from(["gzip", "GZIP", " gzip "]))
    elif encoding == "truncated-gzip":
        raw = gzip.compress(raw)[: draw(st.integers(0, 30))]
        headers["content-encoding"] = "gzip"
    elif encoding == "bomb":
        raw = gzip_bomb()
        headers["content-encoding"] = "gzip"
    elif encoding == "json-bomb":
        raw = gzip_json_bomb()
        headers["content-encoding"] = "gzip"
    elif encoding == "bytes":
        raw = draw(st.one_of(st.binary(max_size=64), st.just(b"\xff\xfe{}"), st.just(b'{"a":"\xed\xa0\x80"}'),
                             st.just(b"\xef\xbb\xbf{}"), st.just(b"")))
        key_kind = "absent"
    if authorization is not None:
        headers["authorization"] = authorization
    # a valid write key in the body only counts as sent when it is readable as JSON text
    valid_in_body = key_kind == "valid" and encoding in ("none", "gzip")
    return {"body": raw, "headers": headers, "valid_key": auth_kind == "valid" or valid_in_body,
            "items": _items(body)}


def _items(body: Any) -> int | None:
    """How many items a batch body holds (None: not a batch)."""
    if isinstance(body, Raw) and body.startswith('{"batch":['):
        return body.count(",") + 1 if body.endswith("0]}") else None
    if isinstance(body, dict) and isinstance(body.get("batch"), list):
        return len(body["batch"])
    return None


def check_segment(route: str, request: dict[str, Any], path: str | None = None) -> None:
    """`path`: the route's other name (analytics.js's `/v1/t` ... `/v1/b`), the same answers."""
    path = path or f"/v1/{route}"
    response, table = call("POST", path, body=request["body"], headers=request["headers"])
    answer = check_answer(response, table)
    status = response["statusCode"]
    if not request["valid_key"]:
        assert table.total_writes == 0, ("stored without a valid write key", status, table.writes, answer)
    if 400 <= status < 500:
        assert table.rejection_writes <= 1, ("one rejection record per rejected request", table.writes)
    if status == 200 and route != "batch":
        assert answer == {"success": True}, answer
        # one write: the event, or the rejected record of a bot (its reason)
        assert table.event_writes + table.rejection_writes <= 1, table.writes
    if status == 200 and route == "batch":
        size = len(body_of(response))
        assert size <= MAX_BATCH_ANSWER_BYTES, ("batch answer too large", size)
        assert answer["success"] is True and isinstance(answer["accepted"], int), answer
        assert len(answer.get("rejected", [])) <= 100, len(answer["rejected"])
        assert table.rejection_writes <= 1000, ("write amplification", table.writes)
        if request["items"] is not None:
            assert request["items"] <= 1000, ("a batch over 1,000 items accepted", request["items"])
            assert table.event_writes <= request["items"], table.writes


@fuzz_settings(600)
@given(request=segment_request("batch"), path=st.sampled_from(["/v1/batch", "/v1/b"]))
def test_batch(request: dict[str, Any], path: str) -> None:
    check_segment("batch", request, path)


@fuzz_settings(1500)
@given(route=st.sampled_from(SEGMENT_ROUTES), short=st.booleans(), data=st.data())
def test_single_message_routes(route: str, short: bool, data: st.DataObject) -> None:
    check_segment(route, data.draw(segment_request(route)), f"/v1/{route[0]}" if short else None)


@fuzz_settings(150)
@given(request=segment_request("batch"),
       key=st.one_of(st.sampled_from(WRITE_KEYS), st.none(), any_text.filter(lambda t: t not in WRITE_KEYS)))
def test_beacon_batch(request: dict[str, Any], key: str | None) -> None:
    """RudderStack's sendBeacon: the key in the query alone decides (no Authorization header)."""
    headers = {k: v for k, v in request["headers"].items() if k != "authorization"}
    request = {**request, "headers": headers, "valid_key": key in WRITE_KEYS}
    query = f"?{urlencode({'writeKey': key})}" if key is not None else ""
    response, table = call("POST", "/beacon/v1/batch", f"/beacon/v1/batch{query}", body=request["body"],
                           headers=headers)
    check_answer(response, table)
    if key not in WRITE_KEYS:
        assert response["statusCode"] == 401 and table.total_writes == 0, (response, table.writes)
    elif response["statusCode"] == 200 and request["items"] is not None:
        assert table.event_writes <= request["items"], table.writes


@fuzz_settings(100)
@given(auth=auth_headers, key=st.one_of(st.none(), st.sampled_from(WRITE_KEYS), any_text))
def test_source_config(auth: tuple[str, str | None], key: str | None) -> None:
    kind, authorization = auth
    headers = {"authorization": authorization} if authorization is not None else {}
    query = f"?{urlencode({'writeKey': key})}" if key is not None else ""
    response, table = call("GET", "/v1/sourceConfig", f"/v1/sourceConfig{query}", headers=headers)
    answer = check_answer(response, table)
    assert table.total_writes == 0, table.writes
    if response["statusCode"] == 200:
        assert answer["source"]["destinations"] == [] and (kind == "valid" or key in WRITE_KEYS), answer
    else:
        assert response["statusCode"] == 401, response


@fuzz_settings(100)
@given(route=st.sampled_from(("batch", *SEGMENT_ROUTES)), depth=st.sampled_from([32, 33, 999, 1200, 5000]),
       where=st.sampled_from(["properties", "traits", "context", "body"]))
def test_deep_nesting(route: str, depth: int, where: str) -> None:
    """Nesting past Python's recursion limit anywhere in a body: a 4xx naming the problem."""
    message = {"type": route if route != "batch" else "track", "userId": "u", "event": "e",
               "traits": {"email": "a@acme.com"}, "groupId": "g", "previousId": "p"}
    if where == "body":
        text = "[" * depth + "]" * depth
    else:
        message[where] = Raw('{"a":' * (depth - 1) + "{}" + "}" * (depth - 1))
        text = dumps({"batch": [message]} if route == "batch" else message)
    check_segment(route, {"body": text.encode(), "headers": {"content-type": "application/json",
                                                            "authorization": basic(WRITE_KEYS[0])},
                          "valid_key": True, "items": 1 if route == "batch" else None})


@fuzz_settings(60)
@given(route=st.sampled_from(SEGMENT_ROUTES), value=emoji_id,
       field=st.sampled_from(["userId", "anonymousId", "messageId", "groupId", "previousId"]))
def test_long_ids(route: str, value: str, field: str) -> None:
    """256-character ids are accepted (and stored), 257 rejected naming the field, never a 5xx."""
    message = {"type": route, "userId": "u", "event": "e", "groupId": "g", "previousId": "p", field: value}
    request = {"body": dumps(message).encode(), "headers": {"content-type": "application/json",
                                                           "authorization": basic(WRITE_KEYS[1])},
               "valid_key": True, "items": None}
    check_segment(route, request)


@fuzz_settings(200)
@given(case=crowded_identify(), route=st.sampled_from(["/v1/identify", "/v1/batch"]))
def test_item16_known_traits_never_lose_to_custom_ones(case: tuple[dict[str, Any], dict[str, Any]], route: str) -> None:
    """Custom traits anywhere (traits, traits.company, context.traits; strings, numbers,
    objects, lists): the stored event stays within its bound and keeps every known trait as
    sent, so the contact's fit is the fit of its known traits alone (issue 21, item 16)."""
    from leadscore.adapters.items import event_from_item
    from leadscore.engine.rules import derive_traits, evaluate_fit

    message, known = case
    body = {"batch": [message]} if route == "/v1/batch" else message
    response, table = call("POST", route, body=dumps(body).encode(),
                           headers={"content-type": "application/json", "authorization": basic(WRITE_KEYS[0])})
    assert response["statusCode"] == 200, response
    (item,) = table.stored("E")
    assert len(item["tr"].encode()) <= 600, len(item["tr"].encode())
    traits = event_from_item(item).traits
    for key, value in known.items():
        if isinstance(value, dict):
            assert {k: traits.get(key, {}).get(k) for k in value} == value, (key, traits.get(key))
        else:
            assert traits.get(key) == value, (key, traits.get(key))
    scoring = _config().scoring

    def fit(of: dict[str, Any]) -> float:
        return sum(hit.points for hit in evaluate_fit(scoring, scoring.fit, derive_traits(scoring, of)))

    assert fit(traits) == fit(known), (traits, known)


# --- the pixel ---------------------------------------------------------------------------------

pixel_params = st.dictionaries(
    st.one_of(st.sampled_from(["k", "e", "uid", "aid", "url", "ref", "mid", "p.plan", "p.", "p.x.y", "K"]),
              st.text(max_size=6)),
    st.one_of(any_text, emoji_id, st.sampled_from(WRITE_KEYS), st.just("x" * 5000),
              st.sampled_from(["0001-01-01T00:00:00+01:00", "page", "Page Viewed", "Demo Requested", "é" * 201])),
    max_size=9,
)


@fuzz_settings(1200)
@given(params=pixel_params, key=st.one_of(st.none(), st.sampled_from(WRITE_KEYS), any_text),
       raw_tail=st.one_of(st.just(""), st.sampled_from(["%ff", "%", "k=%ed%a0%80", "&&&", "k", "=", "%00"]),
                          st.text(max_size=10)),
       user_agent=st.one_of(st.just("Mozilla/5.0"), st.sampled_from(["Googlebot/2.1", "", "é", "😀" * 300])))
def test_pixel(params: dict[str, str], key: str | None, raw_tail: str, user_agent: str) -> None:
    if key is not None:
        params = {**params, "k": key}
    query = "&".join(part for part in (urlencode(params, quote_via=quote), raw_tail) if part)
    response, table = call("GET", "/v1/pixel.gif", query=query, headers={"user-agent": user_agent})
    assert response["statusCode"] == 200, response
    headers = {k.lower(): v for k, v in response["headers"].items()}
    assert headers["content-type"] == "image/gif" and headers["cache-control"] == "no-store", headers
    assert body_of(response) == PIXEL_GIF and len(PIXEL_GIF) == 43
    from urllib.parse import parse_qs

    sent_key = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}.get("k")
    if sent_key not in WRITE_KEYS:
        assert table.total_writes == 0, ("a pixel hit without a valid k stored something", query, table.writes)
    assert table.event_writes <= 1 and table.rejection_writes <= 1, table.writes


# --- forms -------------------------------------------------------------------------------------

form_fields = st.dictionaries(
    st.one_of(st.sampled_from(["email", "userId", "userid", "anonymousId", "messageId", "company.name", "a.b.c",
                               "title", "writeKey", "redirect", "", ".", "a..b", "email.x"]), st.text(max_size=8)),
    st.one_of(any_text, emoji_id, st.just("x" * 40_000), st.sampled_from(["jo@acme.com", "not-an-email", ""])),
    max_size=8,
)


@fuzz_settings(1000)
@given(form_id=st.one_of(st.sampled_from(FORM_IDS), st.text(min_size=1, max_size=10).filter(lambda t: "/" not in t)),
       fields=form_fields, email=st.one_of(st.none(), st.sampled_from(["jo@acme.com", "a@gmail.com"])),
       user_id=st.one_of(st.none(), ids.map(str), emoji_id),
       encoding=st.sampled_from(["form", "json", "json-as-form", "raw"]),
       content_type=content_types, raw=st.binary(max_size=40), referer=st.one_of(st.none(), any_text))
def test_form(form_id: str, fields: dict[str, str], email: str | None, user_id: str | None, encoding: str,
              content_type: str, raw: bytes, referer: str | None) -> None:
    fields = dict(fields)
    if email is not None:
        fields["email"] = email
    if user_id is not None:
        fields["userId"] = user_id
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if encoding == "form":
        body = urlencode(fields).encode()
    elif encoding == "json":
        body, headers = json.dumps(fields).encode(), {"content-type": "application/json"}
    elif encoding == "json-as-form":
        body = json.dumps(fields).encode()
    else:
        body, headers = raw, {"content-type": content_type}
    if referer is not None:
        headers["referer"] = referer
    response, table = call("POST", "/v1/forms/{formId}", f"/v1/forms/{quote(form_id, safe='')}", body=body,
                           headers=headers, path_parameters={"formId": form_id})
    answer = check_answer(response, table)
    status = response["statusCode"]
    assert status in (200, 303) or 400 <= status < 500, response
    if status == 303:
        assert response["headers"].get("location"), response
    if 400 <= status < 500:
        assert table.rejection_writes <= 2, table.writes
    if form_id not in FORM_IDS:
        assert table.total_writes == 0, ("an unknown form stored something", form_id, table.writes, answer)
    for item in table.stored("E"):
        assert item.get("uid") is None, ("a form passed a posted userId through", item.get("uid"))


# --- analytics.js settings, preflight ------------------------------------------------------------


@fuzz_settings(300)
@given(key=st.one_of(st.sampled_from(WRITE_KEYS), any_text.filter(lambda t: "/" not in t and t)),
       forwarded=st.one_of(st.sampled_from(["evil.example", "evil.example/v1?x=", "attacker.test:443", "é.evil",
                                            "evil.example, real.example", "javascript:", "a" * 3000]),
                           st.text(min_size=4, max_size=20).map(lambda t: "evil" + t)),
       proto=st.one_of(st.just("https"), any_text),
       stage=st.sampled_from(["", "/prod", "/v2"]))
def test_settings(key: str, forwarded: str, proto: str, stage: str) -> None:
    if SHAPE["ingest"] == "function-url":
        stage = ""  # a Function URL has no stages
    path = f"{stage}/v1/projects/{quote(key, safe='')}/settings"
    response, table = call("GET", "/v1/projects/{writeKey}/settings", path,
                           headers={"x-forwarded-host": forwarded, "x-forwarded-proto": proto},
                           path_parameters={"writeKey": key})
    answer = check_answer(response, table)
    assert table.total_writes == 0, table.writes
    if response["statusCode"] == 200:
        api_host = answer["integrations"]["Segment.io"]["apiHost"]
        assert forwarded.strip() not in api_host, ("apiHost carries X-Forwarded-Host", forwarded, api_host)
    else:
        assert key not in WRITE_KEYS, response


@fuzz_settings(200)
@given(origin=st.one_of(st.none(), st.sampled_from(["http://localhost:8000", "http://127.0.0.1:8000", "null",
                                                    "http://evil.example", "*"]), any_text),
       proxy=st.one_of(st.sampled_from(["batch", "track", "pixel.gif", "forms/demo-request"]), st.text(max_size=10)),
       method=st.one_of(st.none(), st.sampled_from(["POST", "GET", "DELETE"]), any_text))
def test_preflight(origin: str | None, proxy: str, method: str | None) -> None:
    headers = {}
    if origin is not None:
        headers["origin"] = origin
    if method is not None:
        headers["access-control-request-method"] = method
    response, table = call("OPTIONS", "/v1/{proxy+}", f"/v1/{quote(proxy, safe='/')}", headers=headers,
                           path_parameters={"proxy": proxy})
    check_answer(response, table)
    if SHAPE["ingest"] == "function-url" and not quote(proxy, safe="/"):
        # "/v1/" is no path of `/v1/{proxy+}` (API Gateway would not route it either): routed by its path, a 404
        assert response["statusCode"] == 404, response
    else:
        assert response["statusCode"] in (204, 403), response
    assert table.total_writes == 0, table.writes



# --- the CRM owner: only a trusted source names it ---------------------------------------------


_storable = st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9), st.text(max_size=80),
                     st.lists(st.text(max_size=5), max_size=3),
                     st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2))


@fuzz_settings(300)
@given(owner=_storable, extra=st.dictionaries(st.text(max_size=8).filter(lambda k: k != "email"), _storable,
                                              max_size=4),
       key=st.sampled_from([*WRITE_KEYS, "wk_demo_crm"]), route=st.sampled_from(["/v1/group", "/v1/batch"]))
def test_only_the_trusted_source_stores_a_group_owner(owner: Any, extra: dict[str, Any], key: str, route: str) -> None:
    """A group call's `owner` (any JSON value, among any custom traits) is stored only when
    the trusted CRM sync sent it (sources.yaml `trusted: true`); from every other source the
    event is stored without it, its other traits kept (issue 22, the CRM's owner first)."""
    from leadscore.adapters.items import event_from_item

    message = {"type": "group", "userId": "u-1", "groupId": "acme.com", "messageId": "g-1",
               "traits": {**extra, "owner": owner}}
    body = {"batch": [message]} if route == "/v1/batch" else message
    response, table = call("POST", route, body=dumps(body).encode(),
                           headers={"content-type": "application/json", "authorization": basic(key)})
    assert response["statusCode"] == 200, response
    (item,) = table.stored("E")
    traits = event_from_item(item).traits
    if key != "wk_demo_crm":
        assert "owner" not in traits, traits
    elif isinstance(owner, str) and len(owner) < 64:
        assert traits.get("owner") == owner, traits
