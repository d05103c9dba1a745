"""openapi.yaml matches the template's routes and what the code accepts and answers."""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import WEB_KEY, Pipeline
from tests.support.apigw import json_body

ROOT = Path(__file__).resolve().parents[2]


def _spec() -> dict[str, Any]:
    """The document, a fresh copy on every call: parsed once per content (a parse is about 0.1 s
    and the tests here and in the flow tests ask for it about 160 times)."""
    return copy.deepcopy(_parsed((ROOT / "openapi.yaml").read_text()))


@functools.cache
def _parsed(text: str) -> dict[str, Any]:
    return yaml.safe_load(text)


def _with_components(node: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """`node` as a schema whose `#/components/...` references resolve in the document (some
    are recursive, like JsonValue, so they are not inlined)."""
    return {"allOf": [node], "components": spec["components"]}


def _schema_allows(schema: dict[str, Any], instance: Any) -> bool:
    from openapi_schema_validator import OAS30Validator

    return OAS30Validator(schema, format_checker=OAS30Validator.FORMAT_CHECKER).is_valid(instance)


def _request_schema(route: str, media_type: str = "application/json") -> dict[str, Any]:
    method, path = route.split(" ", 1)
    spec = _spec()
    operation = spec["paths"][path][method.lower()]
    return _with_components(operation["requestBody"]["content"][media_type]["schema"], spec)


def _response_schema(route: str, status: int) -> dict[str, Any] | None:
    method, path = route.split(" ", 1)
    spec = _spec()
    entry = spec["paths"][path][method.lower()]["responses"][str(status)]
    if "$ref" in entry:
        entry = spec["components"]["responses"][entry["$ref"].rsplit("/", 1)[1]]
    content = entry.get("content", {}).get("application/json")
    return _with_components(content["schema"], spec) if content else None


def _template_routes() -> set[tuple[str, str]]:
    from tests.support.stack import load_template

    routes = set()
    resources = load_template(ROOT / "template.yaml")["Resources"]
    # the collection routes: the HTTP API's definition (IngestEndpoint HttpApi; the same routes on the Function URL)
    for path, item in resources["Api"]["Properties"]["DefinitionBody"]["paths"].items():
        routes |= {(method.upper(), path) for method in item["Fn::If"][1]}
    for resource in resources.values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (resource["Properties"].get("Events") or {}).values():
            if event["Type"] == "HttpApi":
                routes.add((event["Properties"]["Method"].upper(), event["Properties"]["Path"]))
    return routes


def _spec_routes() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in _spec()["paths"].items() for method in item
            if method in {"get", "post", "put", "delete", "patch", "options"}}


def test_the_document_is_valid_openapi() -> None:
    from openapi_spec_validator import validate

    validate(_spec())


def test_every_documented_route_is_in_the_template_and_back() -> None:
    assert _spec_routes() == _template_routes()


# What the code answers for inputs of each kind, checked against what the document lists.
CASES = [
    ("POST", "/v1/track", dict(body={"userId": "u", "event": "Webinar Attended"}, basic_user=WEB_KEY)),
    ("POST", "/v1/track", dict(body={"userId": "u"}, basic_user=WEB_KEY)),
    ("POST", "/v1/track", dict(body="{", basic_user=WEB_KEY, headers={"content-type": "application/json"})),
    ("POST", "/v1/track", dict(body={"userId": "u", "event": "x"}, basic_user="unknown")),
    ("POST", "/v1/track", dict(body="a=b", basic_user=WEB_KEY,
                               headers={"content-type": "application/x-www-form-urlencoded"})),
    ("POST", "/v1/identify", dict(body={"userId": "u", "traits": {"email": "a@b.io"}}, basic_user=WEB_KEY)),
    ("POST", "/v1/page", dict(body={"anonymousId": "a", "properties": {"url": "https://x.io/pricing"}},
                              basic_user=WEB_KEY)),
    ("POST", "/v1/group", dict(body={"userId": "u", "groupId": "g", "traits": {"website": "https://acme.com"}},
                               basic_user=WEB_KEY)),
    ("POST", "/v1/alias", dict(body={"userId": "u", "previousId": "p"}, basic_user=WEB_KEY)),
    ("POST", "/v1/batch", dict(body={"batch": [{"type": "track", "userId": "u", "event": "x"}, {}]},
                               basic_user=WEB_KEY)),
    ("POST", "/v1/batch", dict(body={"batch": "nope"}, basic_user=WEB_KEY)),
    ("GET", "/v1/pixel.gif", dict(query={"k": WEB_KEY, "uid": "u"})),
    ("POST", "/v1/forms/{formId}", dict(path="/v1/forms/demo-request", body={"email": "a@b.io"})),
    ("POST", "/v1/forms/{formId}", dict(path="/v1/forms/nope", body={"email": "a@b.io"})),
    ("GET", "/v1/projects/{writeKey}/settings", dict(path=f"/v1/projects/{WEB_KEY}/settings")),
    ("GET", "/v1/projects/{writeKey}/settings", dict(path="/v1/projects/nope/settings")),
    # what analytics.js and RudderStack's JavaScript SDK send (openapi.yaml: /v1/t ... /v1/sourceConfig)
    ("POST", "/v1/t", dict(body=json.dumps({"userId": "u", "event": "x", "writeKey": WEB_KEY}),
                           headers={"content-type": "text/plain"})),
    ("POST", "/v1/i", dict(body={"userId": "u", "type": "track", "event": "x"}, basic_user=WEB_KEY)),
    ("POST", "/v1/b", dict(body=json.dumps({"batch": [{"type": "page", "userId": "u"}], "writeKey": WEB_KEY}),
                           headers={"content-type": "text/plain"})),
    ("POST", "/beacon/v1/batch", dict(body='{"batch": [{"type": "page", "userId": "u"}]}',
                                      query={"writeKey": WEB_KEY}, headers={"content-type": "text/plain"})),
    ("POST", "/beacon/v1/batch", dict(body='{"batch": []}', headers={"content-type": "text/plain"})),
    ("GET", "/v1/sourceConfig", dict(basic_user=WEB_KEY)),
    ("GET", "/v1/sourceConfig", dict(query={"writeKey": "nope"})),
]


@pytest.mark.parametrize(("method", "route", "kwargs"), CASES)
def test_every_answer_of_the_code_is_documented(pipeline: Pipeline, method: str, route: str,
                                                  kwargs: dict[str, Any]) -> None:
    kwargs = dict(kwargs)
    path = kwargs.pop("path", route)
    response = pipeline.http(method, path, route_key=f"{method} {route}", **kwargs)
    documented = _spec()["paths"][route][method.lower()]["responses"]
    assert str(response["statusCode"]) in documented, (route, response)
    content_type = response["headers"].get("content-type")
    if response["statusCode"] != 303:
        entry = documented[str(response["statusCode"])]
        if "$ref" in entry:
            entry = _spec()["components"]["responses"][entry["$ref"].rsplit("/", 1)[1]]
        assert content_type in entry["content"], (route, content_type)
    schema = _response_schema(f"{method} {route}", response["statusCode"])
    if schema is not None:
        assert _schema_allows(schema, json_body(response)), (route, response["body"])


def test_the_not_scored_header_of_a_bot_s_answer_is_documented(pipeline: Pipeline) -> None:
    curl = "curl/8.5.0"
    for method, route, kwargs in [
        ("GET", "/v1/pixel.gif", dict(query={"k": WEB_KEY, "uid": "u"})),
        ("POST", "/v1/forms/{formId}", dict(path="/v1/forms/demo-request", body="email=a%40b.io",
                                            headers={"content-type": "application/x-www-form-urlencoded"})),
        ("POST", "/v1/batch", dict(body={"batch": [{"type": "page", "userId": "u", "context": {"userAgent": curl}}]},
                                   basic_user=WEB_KEY)),
    ]:
        kwargs = dict(kwargs)
        path = kwargs.pop("path", route)
        response = pipeline.http(method, path, route_key=f"{method} {route}", user_agent=curl, **kwargs)
        documented = _spec()["paths"][route][method.lower()]["responses"][str(response["statusCode"])]
        header = next(k for k in response["headers"] if k.lower() == "x-leadscore-not-scored")
        assert header.lower() in {name.lower() for name in documented.get("headers", {})}, (route, response)
        assert response["headers"][header] == 'bot user agent: crawlerdetect matched "curl"'


# Bodies at the edges of what openapi.yaml allows: the document and the code must say the same.
# (route, body, allowed by both, the field the code's 400 names when not)
EDGES: list[tuple[str, Any, bool, str | None]] = [
    ("POST /v1/track", {"userId": "u" * 256, "event": "e"}, True, None),
    ("POST /v1/track", {"userId": "u" * 257, "event": "e"}, False, "userId"),
    ("POST /v1/track", {"anonymousId": "😀" * 256, "event": "e"}, True, None),
    ("POST /v1/track", {"anonymousId": "a" * 257, "event": "e"}, False, "anonymousId"),
    ("POST /v1/track", {"userId": "u", "messageId": "m" * 256, "event": "e"}, True, None),
    ("POST /v1/track", {"userId": "u", "messageId": "m" * 257, "event": "e"}, False, "messageId"),
    ("POST /v1/track", {"anonymousId": 12345, "event": "e"}, True, None),
    ("POST /v1/track", {"anonymousId": -1.5, "event": "e"}, True, None),
    ("POST /v1/track", {"userId": 10**37, "event": "e"}, True, None),
    ("POST /v1/track", {"userId": True, "event": "e"}, False, "userId"),
    ("POST /v1/track", {"userId": {"id": 1}, "event": "e"}, False, "userId"),
    ("POST /v1/track", {"userId": "u", "event": "e" * 200}, True, None),
    ("POST /v1/track", {"userId": "u", "event": "e" * 201}, False, "event"),
    ("POST /v1/track", {"userId": "u", "event": ""}, False, "event"),
    ("POST /v1/track", {"userId": "u"}, False, "event"),
    ("POST /v1/track", {"event": "e"}, False, "userId"),
    ("POST /v1/track", {"userId": "  ", "event": "e"}, False, "userId"),
    ("POST /v1/track", {"userId": None, "anonymousId": "a", "event": "e"}, True, None),
    ("POST /v1/track", {"event": "e", "context": {"traits": {"email": "jo@acme.com"}}}, True, None),
    ("POST /v1/track", {"event": "e", "context": {"traits": {"email": "not an email"}}}, False, "context.traits.email"),
    ("POST /v1/track", {"userId": "u", "event": "e", "timestamp": "2026-11-02T09:00:00Z"}, True, None),
    ("POST /v1/track", {"userId": "u", "event": "e", "timestamp": 1700000000}, False, "timestamp"),
    ("POST /v1/track", {"userId": "u", "event": "e", "context": []}, False, "context"),
    ("POST /v1/track", {"type": "page", "userId": "u", "event": "e"}, False, "type"),
    ("POST /v1/identify", {"traits": {"email": "jo@acme.com"}}, True, None),
    ("POST /v1/identify", {"traits": {"email": "jo"}}, False, "traits.email"),
    ("POST /v1/group", {"userId": "u", "groupId": "acme"}, True, None),
    ("POST /v1/group", {"userId": "u", "groupId": 42}, True, None),
    ("POST /v1/group", {"userId": "u"}, False, "groupId"),
    ("POST /v1/group", {"userId": "u", "groupId": "g" * 257}, False, "groupId"),
    ("POST /v1/alias", {"userId": "u", "previousId": "p"}, True, None),
    ("POST /v1/alias", {"userId": "u"}, False, "previousId"),
    ("POST /v1/alias", {"anonymousId": "a", "previousId": "p"}, False, "userId"),
    ("POST /v1/page", {"anonymousId": "a", "name": 5}, True, None),
    ("POST /v1/screen", {"anonymousId": "a"}, True, None),
    ("POST /v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "e"}] * 1000}, True, None),
    ("POST /v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "e"}] * 1001}, False, "batch"),
    ("POST /v1/batch", {"batch": []}, False, "batch"),
    ("POST /v1/batch", {"batch": "nope"}, False, "batch"),
    ("POST /v1/batch", {"batch": [0, {}]}, True, None),
    ("POST /v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "e"}], "context": 5}, False, "context"),
]


@pytest.mark.parametrize(("route", "body", "allowed", "field"), EDGES,
                         ids=[f"{route}-{i}" for i, (route, *_) in enumerate(EDGES)])
def test_the_document_and_the_code_agree_at_the_edges(pipeline: Pipeline, route: str, body: Any, allowed: bool,
                                                     field: str | None) -> None:
    assert _schema_allows(_request_schema(route), body) is allowed, ("the document", route, body)
    method, path = route.split(" ", 1)
    response = pipeline.http(method, path, body=body, basic_user=WEB_KEY)
    answer = json_body(response)
    if allowed:
        assert response["statusCode"] == 200, answer
    else:
        assert response["statusCode"] == 400, answer
        assert answer["field"] == field, answer
    schema = _response_schema(route, response["statusCode"])
    assert schema is not None and _schema_allows(schema, answer), answer


def test_a_batch_answer_lists_100_rejections_and_counts_them_all(pipeline: Pipeline) -> None:
    response = pipeline.http("POST", "/v1/batch", body={"batch": [0] * 150}, basic_user=WEB_KEY)
    answer = json_body(response)
    assert response["statusCode"] == 200, answer
    assert len(answer["rejected"]) == 100 and answer["rejectedCount"] == 150, answer
    assert _schema_allows(_response_schema("POST /v1/batch", 200), answer)


FORM_EDGES: list[tuple[dict[str, str], bool, str | None]] = [
    ({"email": "jo@acme.com", "company.name": "Acme"}, True, None),
    ({"email": "jo@acme.com", "userId": "someone-else"}, True, None),  # ignored, not refused
    ({"email": "jo@acme.com", "anonymousId": "a" * 256}, True, None),
    ({"email": "jo@acme.com", "anonymousId": "a" * 257}, False, "anonymousId"),
    ({"email": "jo@acme.com", "note": "n" * 2000}, True, None),
    ({"email": "jo@acme.com", "note": "n" * 2001}, False, "note"),
    ({"email": "not-an-email"}, False, "email"),
    ({"name": "Jo"}, False, "email"),
]


@pytest.mark.parametrize(("fields", "allowed", "field"), FORM_EDGES, ids=[str(i) for i in range(len(FORM_EDGES))])
def test_the_document_and_the_code_agree_on_forms(pipeline: Pipeline, fields: dict[str, str], allowed: bool,
                                                  field: str | None) -> None:
    from tests.support.apigw import form_event

    schema = _request_schema("POST /v1/forms/{formId}", "application/x-www-form-urlencoded")
    assert _schema_allows(schema, fields) is allowed, ("the document", fields)
    event = form_event("/v1/forms/webinar-registration", fields, route_key="POST /v1/forms/{formId}",
                       headers={"accept": "application/json"})
    response = pipeline.stack.invoke("CollectFunction", event)
    if allowed:
        assert response["statusCode"] in (200, 303), response
    else:
        answer = json_body(response)
        assert response["statusCode"] == 400 and answer["field"] == field, answer


def test_read_routes_are_iam_authorized_in_the_template() -> None:
    from tests.support.stack import load_template

    template = load_template(ROOT / "template.yaml")
    for resource in template["Resources"].values():
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            props = event.get("Properties", {})
            if event.get("Type") == "HttpApi" and re.match(r"/v1/(accounts|contacts)", props.get("Path", "")):
                assert props["Auth"]["Authorizer"] == "AWS_IAM"
