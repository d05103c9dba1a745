"""Hypothesis strategies for hostile ingestion input.

Bodies are built as JSON *text*, because the inputs that matter most cannot be made by
`json.dumps`: nesting 1,200 deep, integers over Python's 4,300-digit limit, lone surrogates
as `\\ud800` escapes. `Raw` marks a piece of JSON text that goes into a body verbatim.
"""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, timedelta, timezone
from functools import cache
from typing import Any

from hypothesis import strategies as st

WRITE_KEYS = ("wk_demo_website", "wk_demo_email", "wk_demo_product")
FORM_IDS = ("demo-request", "webinar-registration", "checklist-download")
TYPES = ("track", "identify", "page", "screen", "group", "alias")


class Raw(str):
    """JSON text placed in a body as is."""


def dumps(value: Any) -> str:
    """JSON text of `value`, with `Raw` pieces verbatim (anywhere: values or inside lists)."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def has_raw(value: Any, needle: str) -> bool:
    if isinstance(value, Raw):
        return needle in value
    if isinstance(value, dict):
        return any(has_raw(v, needle) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_raw(v, needle) for v in value)
    return False


# --- scalars -------------------------------------------------------------------------------------

# st.timezones() scans the zoneinfo database on every draw: fixed offsets cover what matters.
zones = st.sampled_from([None, UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12)),
                         timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=23, minutes=59))])
iso_times = st.datetimes(timezones=zones).map(lambda d: d.isoformat())
short_text = st.text(max_size=12)
any_text = st.one_of(
    short_text,
    st.text(st.characters(codec="utf-8"), max_size=40),
    st.sampled_from(["", " ", "\x00", "null", "😀" * 64, "é" * 300, "\u202e", "a\nb", "%00", "../.."]),
)
emoji_id = st.sampled_from(["😀" * 256, "𝔘" * 256, "😀" * 255 + "a", "é" * 256, "a" * 256, "a" * 257, "😀" * 257])
ids = st.one_of(
    st.text(min_size=1, max_size=24),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    emoji_id,
)
emails = st.one_of(
    st.sampled_from(["jo@acme.com", "ana@gmail.com", "x@mailinator.com", "VP.Sales@Example.CO.UK", "a@b.io"]),
    st.emails(),
)
timestamps = st.one_of(
    st.sampled_from([
        "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "2024-02-30T00:00:00Z", "2024-01-01",
        "2024-01-01T00:00:00", "2024-01-01T00:00:00.123456789Z", "2024-01-01t00:00:00z", "+002024-01-01",
        "1e10", "", " ", "now", "2024-01-01T25:00:00Z", "2024-01-01T00:00:00+24:00", "2024-W01-1",
    ]),
    iso_times,
    st.integers(), st.booleans(), st.none(),
)

# --- hostile JSON pieces ---------------------------------------------------------------------------


def nested(depth: int, kind: str) -> Raw:
    if kind == "list":
        return Raw("[" * depth + "0" + "]" * depth)
    return Raw('{"a":' * depth + "0" + "}" * depth)


hostile_raw = st.one_of(
    st.builds(nested, st.sampled_from([31, 32, 33, 64, 999, 1200, 3000]), st.sampled_from(["list", "dict"])),
    st.sampled_from([
        Raw("1" + "0" * 4300), Raw("-" + "9" * 5000), Raw("1" + "0" * 4301), Raw("1e400"), Raw("-1e400"),
        Raw("1e-400"), Raw("123456789012345678901234567890123456789012"), Raw("NaN"), Raw("Infinity"),
        Raw('"\\ud800"'), Raw('"a\\udfffb"'), Raw('"\\udc00\\ud800"'), Raw('"\\u0000"'),
        Raw('"' + "\\ud83d" * 50 + '"'),
    ]),
)
hostile_value = st.one_of(
    hostile_raw,
    st.sampled_from([None, True, False, 0, -1, 1.5, "", [], {}, [[]], {"": {}}, "x" * 40_000, ["x"] * 3000]),
    any_text,
    emoji_id,
    timestamps,
    st.dictionaries(short_text, st.one_of(short_text, st.integers()), max_size=4),
)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                      any_text)
json_values = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(short_text, inner, max_size=4)), max_leaves=12)

# --- Segment messages ------------------------------------------------------------------------------


@st.composite
def valid_message(draw: st.DrawFn, msg_type: str | None = None) -> dict[str, Any]:
    """A message of the Segment Spec that the code should accept."""
    msg_type = msg_type or draw(st.sampled_from(TYPES))
    message: dict[str, Any] = {"type": msg_type}
    who = draw(st.sampled_from(["userId", "anonymousId", "both"]))
    if who in ("userId", "both") or msg_type == "alias":
        message["userId"] = draw(ids)
    if who in ("anonymousId", "both"):
        message["anonymousId"] = draw(ids)
    if msg_type == "track":
        message["event"] = draw(st.one_of(
            st.sampled_from(["Demo Requested", "Webinar Attended", "Email Opened", "Form Submitted", "é" * 200]),
            st.text(min_size=1, max_size=30).filter(str.strip)))
        message["properties"] = draw(st.fixed_dictionaries({}, optional={
            "url": st.just("https://acme.com/pricing"), "form_id": st.sampled_from(FORM_IDS), "x": json_values}))
    elif msg_type in ("page", "screen"):
        message["name"] = draw(short_text)
        message["properties"] = {"url": draw(st.sampled_from(["https://acme.com/pricing", "/careers", "http://[::1",
                                                              "javascript:alert(1)", ""]))}
    elif msg_type == "identify":
        message["traits"] = draw(st.fixed_dictionaries({"email": emails}, optional={
            "title": st.sampled_from(["VP Sales", "CEO", "intern"]),
            "company": st.fixed_dictionaries({"domain": st.sampled_from(["acme.com", "www.acme.co.uk"])}),
            "x": json_values}))
    elif msg_type == "group":
        message["groupId"] = draw(ids)
        message["traits"] = draw(st.fixed_dictionaries({}, optional={
            "website": st.sampled_from(["https://acme.com", "acme.co.uk", "http://"]), "employees": st.integers()}))
    elif msg_type == "alias":
        message["previousId"] = draw(ids)
    optional = draw(st.fixed_dictionaries({}, optional={
        "messageId": ids,
        "timestamp": iso_times,
        "context": st.fixed_dictionaries({}, optional={
            "userAgent": st.sampled_from(["Mozilla/5.0", "Googlebot/2.1", "curl/8"]),
            "traits": st.fixed_dictionaries({"email": emails}),
            "page": st.fixed_dictionaries({"url": st.just("https://acme.com/pricing")}),
            "groupId": ids}),
    }))
    message.update(optional)
    return message


# An identify crowded with custom traits (issue 21, item 16): known traits (the rules', the
# Spec's) beside custom keys in traits, in traits.company and again in context.traits.
_NOT_CUSTOM = frozenset({"address", "age", "avatar", "birthday", "company", "createdAt", "description", "email",
                         "employees", "employee_count", "firstName", "gender", "id", "industry", "lastName", "name",
                         "phone", "plan", "title", "username", "website", "seniority", "country", "state",
                         "lifecycle", "domain"})
custom_keys = st.one_of(st.from_regex(r"[a-z][a-z_0-9]{0,15}", fullmatch=True), st.text(min_size=1, max_size=20)
                        ).filter(lambda key: key not in _NOT_CUSTOM and "." not in key)
custom_values = st.one_of(
    st.text(max_size=60), st.integers(-(10**9), 10**9), st.booleans(),
    # any number a trait may hold: openapi.yaml bounds them by 1e38, exclusive (DynamoDB's 38 digits)
    st.dictionaries(custom_keys, st.one_of(st.text(max_size=20), st.integers(-(10**37), 10**37)), max_size=4),
    st.lists(st.text(max_size=10), max_size=3),
)
custom_traits = st.dictionaries(custom_keys, custom_values, max_size=30)
known_traits = st.fixed_dictionaries(
    {"email": st.sampled_from(["dee@acmetech.io", "jo@gmail.com"]),
     "title": st.sampled_from(["Director of Sales", "VP Marketing", "CEO", "Intern", "Senior Engineer"]),
     "company": st.fixed_dictionaries(
         {"industry": st.sampled_from(["Software", "SaaS", "Retail", "Information Technology and Services"]),
          "employee_count": st.one_of(st.integers(1, 100_000), st.sampled_from(["200", "1,200"]))},
         optional={"name": st.sampled_from(["Acme Tech", "Ölwerke GmbH", "株式会社"])})},
    optional={"address": st.fixed_dictionaries({"country": st.sampled_from(["US", "United Kingdom", "DE"])}),
              "firstName": st.just("Dee")})


@st.composite
def crowded_identify(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """(an identify message, the known traits it carries)."""
    known = draw(known_traits)
    extras = draw(custom_traits)
    places = draw(st.sets(st.sampled_from(["traits", "company", "context"]), min_size=1))
    own: dict[str, Any] = {**(extras if "traits" in places else {}), **known}
    if "company" in places:
        own["company"] = {**draw(custom_traits), **known["company"]} if draw(st.booleans()) else \
            {**known["company"], **extras}
    message: dict[str, Any] = {"type": "identify", "userId": draw(st.sampled_from(["u-dee", "u-1"])), "traits": own}
    if "context" in places:
        message["context"] = {"traits": dict(extras)}
    return message, known


FIELD_PATHS = (
    "type", "userId", "anonymousId", "messageId", "event", "timestamp", "originalTimestamp", "sentAt", "traits",
    "properties", "context", "groupId", "previousId", "name", "writeKey", "integrations", "traits.email",
    "traits.company", "properties.url", "properties.email", "properties.x", "context.traits", "context.traits.email",
    "context.page", "context.page.url", "context.userAgent", "context.groupId", "context.library", "",
)


def _set_path(message: dict[str, Any], path: str, value: Any) -> None:
    node = message
    *parents, leaf = path.split(".")
    for parent in parents:
        child = node.get(parent)
        if not isinstance(child, dict):
            child = node[parent] = {}
        node = child
    node[leaf] = value


@st.composite
def mutated_message(draw: st.DrawFn, msg_type: str | None = None) -> Any:
    """A valid message with a few fields replaced by hostile values, or something else entirely."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(hostile_value, json_values))
    message = draw(valid_message(msg_type))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(FIELD_PATHS))
        if draw(st.booleans()) and path:
            message.pop(path, None)
        else:
            _set_path(message, path, draw(hostile_value))
    return message


@st.composite
def batch_body(draw: st.DrawFn) -> Any:
    """A /v1/batch body: mostly a batch of (mutated) messages, with batch-level oddities."""
    shape = draw(st.integers(0, 19))
    if shape == 0:
        return Raw('{"batch":[' + ",".join(["0"] * draw(st.sampled_from([1000, 1001, 2000]))) + "]}")
    if shape == 1:
        count = draw(st.sampled_from([999, 1000, 1001, 1500]))
        item = dumps({"type": "track", "userId": "u", "event": "e"})
        return Raw('{"batch":[' + ",".join([item] * count) + "]}")
    if shape == 2:
        return draw(st.one_of(hostile_value, json_values, st.just({"batch": []}), st.just({"batch": {}})))
    items = draw(st.lists(st.one_of(valid_message(), mutated_message()), min_size=1, max_size=8))
    body: dict[str, Any] = {"batch": items}
    extras = draw(st.fixed_dictionaries({}, optional={
        "context": st.one_of(st.just({"library": {"name": "analytics-python"}}), hostile_value),
        "sentAt": timestamps,
        "integrations": hostile_value,
    }))
    body.update(extras)
    return body


# --- transport: bytes, content types, auth -------------------------------------------------------


@cache
def gzip_bomb() -> bytes:
    """50 MB of zeros in about 50 KB."""
    return gzip.compress(b"\0" * (50 * 1024 * 1024), compresslevel=9)


@cache
def gzip_json_bomb() -> bytes:
    """A JSON body that inflates past any limit (600 KB of spaces, then an object)."""
    return gzip.compress(b" " * (600 * 1024) + b'{"batch":[]}', compresslevel=9)


content_types = st.sampled_from([
    "application/json", "application/json; charset=utf-8", "text/plain", "text/plain;charset=UTF-8",
    "APPLICATION/JSON", "", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/xml", "application/json;", "image/gif", "text/html", "application/octet-stream",
])


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


# (kind, header or None). "valid" carries a shipped write key as the Basic username.
auth_headers = st.one_of(
    st.tuples(st.just("valid"), st.sampled_from(WRITE_KEYS).map(basic)),
    st.tuples(st.just("valid"), st.sampled_from(WRITE_KEYS).map(lambda k: basic(k, "secret"))),
    st.tuples(st.just("valid"), st.just("Basic d2tfZGVtb193ZWJzaXRl")),  # "wk_demo_website", no colon
    st.tuples(st.just("unknown"), st.text(min_size=1, max_size=20).filter(lambda t: t not in WRITE_KEYS)
              .map(basic)),
    st.tuples(st.just("garbage"), st.sampled_from([
        "Basic é", "Basic", "Basic ", "Basic ====", "Basic *", "Basic " + base64.b64encode(b"\xff\xfe:").decode(),
        "Basic " + base64.b64encode(b"\x00").decode(), "Bearer wk_demo_website", "basic " + "A" * 5000,
        "Basic " + base64.b64encode(b":wk_demo_website").decode(),
        "Basic " + "😀", "Basic wk_demo_website",
    ])),
    st.tuples(st.just("garbage"), st.text(max_size=30).map(lambda t: "Basic " + t)),
    st.tuples(st.just("none"), st.none()),
)
# (kind, value or absent) of `writeKey` in the body
body_keys = st.one_of(
    st.tuples(st.just("valid"), st.sampled_from(WRITE_KEYS)),
    st.tuples(st.just("valid"), st.sampled_from(WRITE_KEYS).map(lambda k: f"  {k} ")),
    st.tuples(st.just("unknown"), st.one_of(st.text(max_size=20), st.integers(), st.none(), hostile_raw)
              .filter(lambda v: not (isinstance(v, str) and v.strip() in WRITE_KEYS))),
    st.tuples(st.just("absent"), st.none()),
)
