"""The collect function behind a Lambda Function URL (issue 26): a Function URL delivers every
request with the route key `$default` and no path parameters, so `functions/collect/app.py`
routes the event by its method and rawPath (`routed`) to the route API Gateway would have
chosen, and the answer is the same. Checked against the route table, against Powertools'
`LambdaFunctionUrlResolver` (what the function would import to route by path; it does not,
for cold start: docs/DESIGN.md "HTTP routing"), and through the handler.

No moto, no network: the handler over `tests/unit/ingest_fakes.py`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from local.apigw import (
    DEFAULT_URL_ID,
    as_function_url,
    function_url_domain,
    function_url_event,
    http_event,
    lambda_context,
)
from tests.unit.ingest_fakes import WEB_KEY, WEB_ORIGIN, FakeEventStore, ingest_api

#: a path of each route, and the path parameters API Gateway gives it
PATHS = {
    "POST /v1/forms/{formId}": ("/v1/forms/demo-request", {"formId": "demo-request"}),
    "GET /v1/projects/{writeKey}/settings": (f"/v1/projects/{WEB_KEY}/settings", {"writeKey": WEB_KEY}),
    "OPTIONS /v1/{proxy+}": ("/v1/forms/demo-request", {"proxy": "forms/demo-request"}),
}


@pytest.fixture(scope="module", autouse=True)
def powertools_as_deployed() -> Iterator[None]:
    """The handler's metrics as template.yaml configures them (a namespace), logs quiet."""
    from leadscore.adapters.observability import metrics

    from local.env import quiet_handlers

    metrics.namespace = metrics.namespace or "LeadScore"
    metrics.service = metrics.service or "leadscore"
    with quiet_handlers():
        yield


def _routes() -> dict[str, Any]:
    from leadscore.adapters.ingest import ROUTES

    return ROUTES


def _path_of(route_key: str) -> tuple[str, str, dict[str, str] | None]:
    method, template = route_key.split(" ", 1)
    path, params = PATHS.get(route_key, (template, None))
    return method, path, params


def test_a_function_url_event_has_the_shape_lambda_documents() -> None:
    # https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html, "Request payload format"
    event = function_url_event("POST", "/v1/forms/demo-request?x=1", body="email=a%40b.io",
                               headers={"content-type": "application/x-www-form-urlencoded", "cookie": "a=1"})
    context = event["requestContext"]
    assert (event["version"], event["routeKey"], context["routeKey"], context["stage"]) == \
        ("2.0", "$default", "$default", "$default")
    assert "pathParameters" not in event and "authorizer" not in context and context["authentication"] is None
    assert context["domainName"] == f"{DEFAULT_URL_ID}.lambda-url.us-east-1.on.aws" == event["headers"]["host"]
    assert (context["domainPrefix"], context["apiId"]) == (DEFAULT_URL_ID, DEFAULT_URL_ID)
    assert (event["rawPath"], context["http"]["path"], event["rawQueryString"]) == \
        ("/v1/forms/demo-request", "/v1/forms/demo-request", "x=1")
    assert event["cookies"] == ["a=1"] and "cookie" not in event["headers"]
    assert event["isBase64Encoded"] and base64.b64decode(event["body"]) == b"email=a%40b.io"  # a form is binary


def test_an_http_api_event_converts_to_the_same_request_through_a_url() -> None:
    api_event = http_event("GET", "/v1/projects/wk/settings", route_key="GET /v1/projects/{writeKey}/settings",
                           headers={"origin": WEB_ORIGIN}, region="eu-west-1")
    url_event = as_function_url(api_event)
    assert url_event["requestContext"]["domainName"] == function_url_domain(region="eu-west-1")
    for same in ("rawPath", "rawQueryString", "body", "isBase64Encoded"):
        assert url_event.get(same) == api_event.get(same), same
    assert {k: v for k, v in url_event["headers"].items() if k != "host"} == \
        {k: v for k, v in api_event["headers"].items() if k != "host"}
    with pytest.raises(ValueError, match="payload format 2.0"):
        as_function_url({"version": "1.0"})
    with pytest.raises(TypeError, match="no route_key"):
        function_url_event("GET", "/v1/pixel.gif", route_key="GET /v1/pixel.gif")


def test_every_route_is_found_by_its_path_with_the_parameters_api_gateway_gives() -> None:
    from functions.collect.app import routed

    for route_key in _routes():
        method, path, params = _path_of(route_key)
        event = routed(function_url_event(method, path))
        assert event["routeKey"] == route_key, (method, path)
        assert event.get("pathParameters") == params, route_key


@pytest.mark.parametrize(("method", "path", "route", "params"), [
    # a literal route before a template, as API Gateway ranks them
    ("OPTIONS", "/v1/track", "OPTIONS /v1/{proxy+}", {"proxy": "track"}),
    # percent-escapes decoded in the parameters, a slash kept inside one segment's
    ("POST", "/v1/forms/caf%C3%A9%2Fx", "POST /v1/forms/{formId}", {"formId": "café/x"}),
    ("GET", "/v1/pixel%2Egif", "GET /v1/pixel.gif", None),
    # the template's own text is no literal route
    ("POST", "/v1/forms/%7BformId%7D", "POST /v1/forms/{formId}", {"formId": "{formId}"}),
    # no route: the method and path, which the API answers 404 naming
    ("GET", "/v1/forms/demo-request", "GET /v1/forms/demo-request", None),
    ("HEAD", "/v1/pixel.gif", "HEAD /v1/pixel.gif", None),
    ("OPTIONS", "/v1/", "OPTIONS /v1/", None),
    ("POST", "/v1/projects/wk/settings/x", "POST /v1/projects/wk/settings/x", None),
])
def test_paths_route_as_api_gateway_routes_them(method: str, path: str, route: str,
                                                params: dict[str, str] | None) -> None:
    from functions.collect.app import routed

    event = routed(function_url_event(method, path))
    assert (event["routeKey"], event.get("pathParameters")) == (route, params)


def test_an_http_api_event_is_left_as_it_is() -> None:
    from functions.collect.app import routed

    event = http_event("POST", "/v1/forms/x", route_key="POST /v1/forms/{formId}")
    assert routed(event) is event


def test_a_long_unknown_path_is_cut_in_the_route_key() -> None:
    from functions.collect.app import routed

    event = routed(function_url_event("GET", "/" + "a" * 5000))
    assert event["routeKey"] == "GET /" + "a" * 199


def test_powertools_function_url_resolver_routes_them_alike() -> None:
    """Powertools' resolver, given the same routes, picks the same route for each path (and
    none where `routed` finds none): routing by hand keeps what it would do."""
    from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response

    from functions.collect.app import routed

    resolver = LambdaFunctionUrlResolver()
    for route_key in _routes():
        method, template = route_key.split(" ", 1)
        rule = template.replace("{proxy+}", ".+").replace("{", "<").replace("}", ">")

        def answer(_key: str = route_key, **params: str) -> Response:
            return Response(200, "application/json", json.dumps({"route": _key, "params": params}))

        resolver.route(rule, method)(answer)
    paths = [_path_of(key) for key in _routes()]
    paths += [("GET", "/v1/forms/demo-request", None), ("HEAD", "/v1/pixel.gif", None), ("POST", "/nothing", None)]
    for method, path, params in paths:
        event = function_url_event(method, path)
        ours = routed(event)
        theirs = resolver.resolve(event, lambda_context("CollectFunction"))
        if theirs["statusCode"] == 404:
            assert ours["routeKey"] not in _routes(), (method, path)
            continue
        chosen = json.loads(theirs["body"])
        assert chosen["route"] == ours["routeKey"], (method, path)
        if params and "proxy" not in params:  # Powertools has no greedy parameter: a pattern instead
            assert chosen["params"] == params


def _handle(event: dict[str, Any], store: FakeEventStore) -> dict[str, Any]:
    from functions.collect.app import lambda_handler

    return lambda_handler(event, lambda_context("CollectFunction"), api=ingest_api(store))


def test_the_handler_answers_a_url_event_as_it_answers_the_http_api() -> None:
    requests = [
        ("POST", "/v1/track", {"body": {"userId": "u-1", "event": "Webinar Attended"}, "basic_user": WEB_KEY}),
        ("POST", "/v1/t", {"body": {"userId": "u-1", "event": "x"}, "basic_user": "wk_nobody"}),
        ("GET", f"/v1/pixel.gif?k={WEB_KEY}&uid=u-2", {}),
        ("GET", f"/v1/projects/{WEB_KEY}/settings", {"headers": {"origin": WEB_ORIGIN}}),
        ("OPTIONS", "/v1/batch", {"headers": {"origin": WEB_ORIGIN, "access-control-request-method": "POST"}}),
        ("OPTIONS", "/v1/batch", {"headers": {"origin": "https://evil.example",
                                              "access-control-request-method": "POST"}}),
        ("POST", "/v1/forms/demo-request", {"body": {"email": "ann@acme.io"}}),
    ]
    for method, path, kwargs in requests:
        route = next(key for key in _routes() if routed_key(method, path) == key)
        answers = []
        for event in (http_event(method, path, route_key=route, path_parameters=_path_of(route)[2], **kwargs),
                      function_url_event(method, path, **kwargs)):
            store = FakeEventStore()
            answer = _handle(event, store)
            # the settings point SDKs back at the domain each came in on: the one difference
            body = str(answer.get("body")).replace(event["requestContext"]["domainName"], "<answered on>")
            answers.append((answer["statusCode"], answer.get("headers"), body, len(store.stored)))
        assert answers[0] == answers[1], (method, path)
    settings = _handle(function_url_event("GET", f"/v1/projects/{WEB_KEY}/settings"), FakeEventStore())
    assert json.loads(settings["body"])["integrations"]["Segment.io"]["apiHost"] == f"{function_url_domain()}/v1"


def routed_key(method: str, path: str) -> str:
    from functions.collect.app import routed

    return str(routed(function_url_event(method, path))["routeKey"])


def test_an_unknown_path_through_a_url_is_a_404_naming_it() -> None:
    answer = _handle(function_url_event("GET", "/v2/track"), FakeEventStore())
    body = json.loads(answer["body"])
    assert (answer["statusCode"], body["error"], body["message"]) == (404, "not_found", "no route GET /v2/track")


def test_a_broken_deployment_still_answers_the_url_pixel_with_the_gif(monkeypatch: pytest.MonkeyPatch) -> None:
    import functions.collect.app as app

    def broken() -> Any:
        raise RuntimeError("no table")

    monkeypatch.setattr(app, "build_api", broken)
    answer = app.lambda_handler(function_url_event("GET", f"/v1/pixel.gif?k={WEB_KEY}"), lambda_context("c"))
    assert (answer["statusCode"], answer["headers"]["content-type"]) == (200, "image/gif")
    with pytest.raises(RuntimeError):
        app.lambda_handler(function_url_event("POST", "/v1/track", body={}), lambda_context("c"))
