"""openapi.yaml matches the template's routes and what the code accepts and answers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import WEB_KEY, Pipeline

ROOT = Path(__file__).resolve().parents[2]


def _spec() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "openapi.yaml").read_text())


def _template_routes() -> set[tuple[str, str]]:
    from tests.support.stack import load_template

    routes = set()
    for resource in load_template(ROOT / "template.yaml")["Resources"].values():
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


def test_read_routes_are_iam_authorized_in_the_template() -> None:
    from tests.support.stack import load_template

    template = load_template(ROOT / "template.yaml")
    for resource in template["Resources"].values():
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            props = event.get("Properties", {})
            if event.get("Type") == "HttpApi" and re.match(r"/v1/(accounts|contacts)", props.get("Path", "")):
                assert props["Auth"]["Authorizer"] == "AWS_IAM"
