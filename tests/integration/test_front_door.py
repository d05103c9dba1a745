"""The collection routes' two front doors (template.yaml IngestEndpoint; issue 26).

- the template as SAM translates it and CloudFormation would keep it under each value: the
  collection routes on the HTTP API (HttpApi) or the collect function's public Function URL
  with both permissions AWS asks of one since late 2025 (FunctionUrl), never both doors; the
  IAM routes on the HTTP API either way; CloudFront only when asked for, caching nothing but
  the settings route; the outputs name the URL SDKs use;
- the local stack (`make serve INGEST=...`, in process): the same requests answered alike
  through either door, every collection request reaching the function as a Function URL
  delivers it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.server import LocalService
from tests.support.stack import TemplateStack

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"
WEB_KEY = "wk_demo_website"
WEB_ORIGIN = "http://localhost:8000"  # in the website source's cors_origins


def kept(parameters: dict[str, str]) -> tuple[dict[str, Any], TemplateStack]:
    """The translated template's resources CloudFormation would create with `parameters`
    (their conditions evaluated), and the stack object that evaluated them (nothing created)."""
    stack = TemplateStack(TEMPLATE, "leadscore", "us-east-1", boto3.Session(region_name="us-east-1"), None,
                          parameters)
    stack.conditions = stack._evaluate_conditions()
    resources = {logical_id: resource for logical_id, resource in stack.template["Resources"].items()
                 if stack.conditions.get(resource.get("Condition", ""), True)}
    for resolve in (False, True):  # names and ARNs, as the local stack gives them, for Ref and GetAtt
        stack.resources.update({logical_id: stack._physical(logical_id, resource, resolve=resolve)
                                for logical_id, resource in resources.items()})
    return resources, stack


def url_permissions(resources: dict[str, Any]) -> list[dict[str, Any]]:
    """The public permissions on the collect function: anyone ("*") may invoke it."""
    return [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"
            and r["Properties"]["FunctionName"] == {"Ref": "CollectFunction"} and r["Properties"]["Principal"] == "*"]


def collection_paths(stack: TemplateStack, resources: dict[str, Any]) -> set[str]:
    from local.server import http_api_routes

    stack.template["Resources"] = resources
    routes, _, _ = http_api_routes(stack)
    return {route.route_key for route in routes if route.function == "CollectFunction"}


def test_a_function_url_front_door_has_both_public_permissions_and_no_api_routes() -> None:
    from leadscore.adapters.ingest import ROUTES

    resources, stack = kept({"IngestEndpoint": "FunctionUrl"})
    url = resources["CollectFunctionUrl"]
    assert url["Type"] == "AWS::Lambda::Url"
    assert url["Properties"]["AuthType"] == "NONE" and url["Properties"]["TargetFunctionArn"] == \
        {"Fn::GetAtt": ["CollectFunction", "Arn"]}
    # no CORS of the URL's own: it would replace the function's answers (CORS is per source)
    assert "Cors" not in url["Properties"]
    permissions = url_permissions(resources)
    by_action = {p["Action"]: p for p in permissions}
    assert len(permissions) == 2 and set(by_action) == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}
    assert by_action["lambda:InvokeFunctionUrl"]["FunctionUrlAuthType"] == "NONE"
    # public only through the URL: not a lambda:Invoke for anyone on the internet
    assert by_action["lambda:InvokeFunction"]["InvokedViaFunctionUrl"] is True
    assert "FunctionUrlAuthType" not in by_action["lambda:InvokeFunction"]
    # the HTTP API keeps the IAM routes and nothing of collection
    assert collection_paths(stack, resources) == set()
    assert not any(r["Type"] == "AWS::Lambda::Permission" and r["Properties"]["Principal"] == "apigateway.amazonaws.com"
                   and r["Properties"]["FunctionName"] == {"Ref": "CollectFunction"} for r in resources.values())
    from local.server import http_api_routes

    iam = {route.route_key for route in http_api_routes(stack)[0] if route.iam}
    assert {"GET /v1/accounts/{accountId}", "DELETE /v1/contacts/{contactId}"} <= iam
    assert not set(ROUTES) & {route.route_key for route in http_api_routes(stack)[0]}
    # throttled by the function's reserved concurrency
    assert stack._resolve(resources["CollectFunction"]["Properties"]["ReservedConcurrentExecutions"]) == "100"


def test_an_http_api_front_door_has_every_collection_route_and_no_public_permission() -> None:
    from leadscore.adapters.ingest import ROUTES

    resources, stack = kept({"IngestEndpoint": "HttpApi"})
    assert url_permissions(resources) == []
    assert not any(r["Type"] in ("AWS::Lambda::Url", "AWS::CloudFront::Distribution") for r in resources.values())
    assert collection_paths(stack, resources) == set(ROUTES)
    api_permission = resources["CollectApiPermission"]["Properties"]
    assert (api_permission["Action"], api_permission["Principal"]) == \
        ("lambda:InvokeFunction", "apigateway.amazonaws.com")
    assert stack._resolve(api_permission["SourceArn"]).endswith(":local/*")


def test_the_default_front_door_is_the_http_api() -> None:
    # PRODUCT.md names the HTTP API; a stack updated without the parameter keeps every URL
    # already in pages and sent emails (README, "The front door")
    parameter = TemplateStack(TEMPLATE, "leadscore", "us-east-1", boto3.Session(region_name="us-east-1"), None,
                              {}).sam_template["Parameters"]["IngestEndpoint"]
    assert parameter["Default"] == "HttpApi" and parameter["AllowedValues"] == ["HttpApi", "FunctionUrl"]


@pytest.mark.parametrize(("parameters", "url"), [
    ({"IngestEndpoint": "HttpApi"}, "https://local.execute-api.us-east-1.amazonaws.com/"),
    ({"IngestEndpoint": "FunctionUrl"}, "function url"),
    ({"IngestEndpoint": "FunctionUrl", "IngestCdn": "Enabled"}, "distribution"),
    ({"IngestEndpoint": "FunctionUrl", "IngestCdn": "Enabled", "IngestCdnDomain": "track.acme.com",
      "IngestCdnCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc"}, "https://track.acme.com/"),
])
def test_the_ingest_url_output_names_the_door_in_use(parameters: dict[str, str], url: str) -> None:
    resources, stack = kept(parameters)
    value = stack.template["Outputs"]["IngestUrl"]["Value"]
    # resolve the conditions; what only CloudFormation knows (the URL, the distribution) by name
    while isinstance(value, dict) and "Fn::If" in value:
        condition, yes, no = value["Fn::If"]
        value = yes if stack.conditions[condition] else no
    if url == "function url":
        assert value == {"Fn::GetAtt": ["CollectFunctionUrl", "FunctionUrl"]}
    elif url == "distribution":
        assert value == {"Fn::Sub": "https://${IngestDistribution.DomainName}/"}
        assert "IngestDistribution" in resources
    else:
        assert stack._resolve(value) == url
    assert ("IngestFunctionUrl" in stack.template["Outputs"]) and \
        stack.template["Outputs"]["IngestFunctionUrl"]["Condition"] == "UseFunctionUrlIngest"


def test_cloudfront_caches_only_the_settings_route_by_origin() -> None:
    resources, stack = kept({"IngestEndpoint": "FunctionUrl", "IngestCdn": "Enabled",
                             "IngestWebAclArn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/x/1"})
    config = resources["IngestDistribution"]["Properties"]["DistributionConfig"]
    default = config["DefaultCacheBehavior"]
    assert default["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # Managed-CachingDisabled
    assert default["OriginRequestPolicyId"] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"  # AllViewerExceptHostHeader
    assert "POST" in default["AllowedMethods"] and default["ViewerProtocolPolicy"] == "https-only"
    (settings,) = config["CacheBehaviors"]
    assert settings["PathPattern"] == "/v1/projects/*/settings"
    assert settings["CachePolicyId"] == {"Ref": "IngestSettingsCachePolicy"}
    key = resources["IngestSettingsCachePolicy"]["Properties"]["CachePolicyConfig"]
    assert key["ParametersInCacheKeyAndForwardedToOrigin"]["HeadersConfig"]["Headers"] == ["Origin"]
    assert key["DefaultTTL"] == 300  # the settings answer's max-age
    assert stack._resolve(config["WebACLId"]).startswith("arn:aws:wafv2:")
    assert config["Origins"][0]["DomainName"] == \
        {"Fn::Select": [2, {"Fn::Split": ["/", {"Fn::GetAtt": ["CollectFunctionUrl", "FunctionUrl"]}]}]}
    # off by default, and never in front of the HTTP API
    assert "IngestDistribution" not in kept({"IngestEndpoint": "FunctionUrl"})[0]
    assert "IngestDistribution" not in kept({"IngestEndpoint": "HttpApi", "IngestCdn": "Enabled"})[0]
    rule = stack.sam_template["Rules"]["IngestCdnNeedsFunctionUrl"]
    assert rule["Assertions"][0]["Assert"] == {"Fn::Equals": [{"Ref": "IngestEndpoint"}, "FunctionUrl"]}


@pytest.mark.parametrize(("parameters", "public_url"), [
    ({}, ""),
    ({"IngestEndpoint": "FunctionUrl"}, ""),  # the domain the request came in on: the URL's
    ({"IngestEndpoint": "FunctionUrl", "IngestCdn": "Enabled", "IngestCdnDomain": "track.acme.com",
      "IngestCdnCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc"}, "https://track.acme.com"),
    ({"IngestEndpoint": "FunctionUrl", "IngestCdn": "Enabled", "IngestCdnDomain": "track.acme.com",
      "PublicApiUrl": "https://t.acme.com", "IngestCdnCertificateArn": "arn:aws:acm:us-east-1:1:certificate/a"},
     "https://t.acme.com"),
])
def test_the_settings_point_sdks_at_the_door_in_use(parameters: dict[str, str], public_url: str) -> None:
    resources, stack = kept(parameters)
    variables = resources["CollectFunction"]["Properties"]["Environment"]["Variables"]
    assert stack._resolve(variables["PUBLIC_API_URL"]) == public_url


# ---------------------------------------------------------------- the local stack, in process


@pytest.fixture
def services(aws: None) -> Iterator[dict[str, LocalService]]:
    """The local stack behind each door (`make serve` and `make serve INGEST=function-url`),
    every function invoked as the server invokes it; what the collect function was handed."""
    made = {}
    for shape, endpoint in (("http-api", "HttpApi"), ("function-url", "FunctionUrl")):
        stack = TemplateStack.create(TEMPLATE, stack_name=f"door-{shape}", parameters={"IngestEndpoint": endpoint})
        stack.functions["CollectFunction"].environment["PUBLIC_API_URL"] = "http://127.0.0.1:3000"
        service = LocalService(stack)
        service.api_port = 3000
        service.seen = []  # type: ignore[attr-defined]
        invoke = service.invoke

        def recording(logical_id: str, event: Any, _invoke: Any = invoke, _service: Any = service) -> Any:
            _service.seen.append((logical_id, event))
            return _invoke(logical_id, event)

        service.invoke = recording  # type: ignore[method-assign]
        made[shape] = service
    yield made
    for service in made.values():
        service.stop_delivery()
    from leadscore.adapters import runtime

    runtime.reset()


def handle(service: LocalService, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> Any:
    """One request to `service`; its functions' runtime is its own (one stack per process, as
    `make serve` has: the runtime keeps the clients and table of the first invocation)."""
    from leadscore.adapters import runtime

    if getattr(runtime, "_door", None) is not service:
        runtime.reset()
        runtime._door = service  # type: ignore[attr-defined]
    return service.handle(method, target, headers, body, "203.0.113.9")


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


REQUESTS: list[tuple[str, str, dict[str, str], bytes]] = [
    ("POST", "/v1/track", {"authorization": basic(WEB_KEY), "content-type": "application/json"},
     b'{"userId":"u-door","event":"Webinar Attended","messageId":"m-door-1"}'),
    ("POST", "/v1/track", {"authorization": basic(WEB_KEY), "content-type": "application/json"},
     b'{"userId":"u-door","event":"Webinar Attended","messageId":"m-door-1"}'),  # a replay: stored once
    ("POST", "/v1/b", {"authorization": basic(WEB_KEY), "content-type": "text/plain"},
     b'{"batch":[{"type":"track","userId":"u-door","event":"x"},{"type":"track"}]}'),
    ("POST", "/v1/identify", {"authorization": basic("wk_nobody"), "content-type": "application/json"},
     b'{"userId":"u-door"}'),
    ("POST", "/v1/track", {"authorization": basic(WEB_KEY), "content-type": "application/json"}, b"{"),
    ("POST", "/v1/track", {"authorization": basic(WEB_KEY), "content-type": "application/json"},
     b'{"userId":"u","event":"' + b"x" * 600_000 + b'"}'),
    ("GET", f"/v1/pixel.gif?k={WEB_KEY}&uid=u-door-px&url=https%3A%2F%2Facme.com%2Fpricing", {}, b""),
    ("GET", "/v1/pixel.gif?k=nope", {}, b""),
    ("POST", "/v1/forms/demo-request", {"content-type": "application/x-www-form-urlencoded"},
     b"email=ann%40door.io&title=VP+Sales"),
    ("POST", "/v1/forms/no-such-form", {"content-type": "application/x-www-form-urlencoded"}, b"email=a%40b.io"),
    ("GET", f"/v1/projects/{WEB_KEY}/settings", {"origin": WEB_ORIGIN}, b""),
    ("OPTIONS", "/v1/batch", {"origin": WEB_ORIGIN, "access-control-request-method": "POST"}, b""),
    ("OPTIONS", "/v1/t", {"origin": "https://evil.example", "access-control-request-method": "POST"}, b""),
    ("POST", f"/beacon/v1/batch?writeKey={WEB_KEY}", {"content-type": "text/plain;charset=UTF-8"},
     b'{"batch":[{"type":"track","anonymousId":"a-door","event":"Pricing Viewed"}]}'),
    ("GET", f"/v1/sourceConfig?writeKey={WEB_KEY}", {"authorization": basic(WEB_KEY)}, b""),
]


def test_both_doors_answer_every_collection_request_alike(services: dict[str, LocalService]) -> None:
    answers: dict[str, list[tuple[int, dict[str, str], bytes]]] = {}
    for shape, service in services.items():
        answers[shape] = []
        for method, target, headers, body in REQUESTS:
            response, function = handle(service, method, target, [("host", "127.0.0.1:3000"), *headers.items()],
                                        body)
            assert function == "CollectFunction", (shape, method, target)
            answers[shape].append((response.status, response.headers, response.body))
    for request, api, url in zip(REQUESTS, answers["http-api"], answers["function-url"], strict=True):
        assert api == url, request[:2]
    statuses = [status for status, _, _ in answers["function-url"]]
    assert statuses == [200, 200, 200, 401, 400, 413, 200, 200, 303, 404, 200, 204, 403, 200, 200]


def test_a_collection_request_reaches_the_function_as_a_function_url_delivers_it(
        services: dict[str, LocalService]) -> None:
    service = services["function-url"]
    handle(service, "POST", "/v1/forms/demo-request?utm=x",
           [("host", "127.0.0.1:3000"), ("content-type", "application/x-www-form-urlencoded")], b"email=ann%40door.io")
    ((function, event),) = service.seen  # type: ignore[attr-defined]
    context = event["requestContext"]
    assert function == "CollectFunction"
    assert (event["routeKey"], context["routeKey"], context["stage"]) == ("$default", "$default", "$default")
    assert "pathParameters" not in event and "authorizer" not in context
    assert context["domainName"].endswith(".lambda-url.us-east-1.on.aws") and \
        event["headers"]["host"] == context["domainName"]
    assert (event["rawPath"], event["rawQueryString"]) == ("/v1/forms/demo-request", "utm=x")
    assert event["isBase64Encoded"] and base64.b64decode(event["body"]) == b"email=ann%40door.io"


def test_the_iam_routes_stay_on_the_http_api_behind_either_door(services: dict[str, LocalService]) -> None:
    for service in services.values():
        response, function = handle(service, "GET", "/v1/contacts/nobody", [], b"")
        assert (response.status, function) == (404, "ReadApiFunction")
        event = service.seen[-1][1]  # type: ignore[attr-defined]
        assert event["routeKey"] == "GET /v1/contacts/{contactId}" and "iam" in event["requestContext"]["authorizer"]


def test_a_path_no_route_takes_is_answered_by_each_door_in_its_way(services: dict[str, LocalService]) -> None:
    # API Gateway answers an unknown route itself; a Function URL hands it to the function,
    # whose 404 names it
    api, function = handle(services["http-api"], "GET", "/v2/track", [], b"")
    assert (api.status, json.loads(api.body), function) == (404, {"message": "Not Found"}, None)
    url, function = handle(services["function-url"], "GET", "/v2/track", [], b"")
    assert (url.status, json.loads(url.body)["message"], function) == (404, "no route GET /v2/track", "CollectFunction")
    # a Function URL refuses what Lambda cannot take synchronously: 6 MB
    big, _ = handle(services["function-url"], "POST", "/v1/batch", [], b"x" * (6 * 1024 * 1024 + 1))
    assert big.status == 413


# ---------------------------------------------------------------- what the README says of them

#: Where Lambda has no Function URLs (https://docs.aws.amazon.com/lambda/latest/dg/lambda-urls.html)
NO_FUNCTION_URLS = ("ap-south-2", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ap-east-2",
                    "ca-west-1", "eu-south-2", "eu-central-2", "il-central-1", "me-central-1")


def test_the_readme_names_the_doors_their_parameters_and_the_regions_without_urls() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("### The front door", 1)[1].split("\n### ", 1)[0]
    for region in NO_FUNCTION_URLS:
        assert f"`{region}`" in section, region
    parameters = TemplateStack(TEMPLATE, "leadscore", "us-east-1", boto3.Session(region_name="us-east-1"), None,
                               {}).sam_template["Parameters"]
    for name in [p for p in parameters if p.startswith("Ingest")]:
        assert f"`{name}" in readme, name
    assert "make serve INGEST=function-url" in readme
    # "API Gateway's per-stage access logs (off in this template)"
    resources, _ = kept({"IngestEndpoint": "HttpApi"})
    assert not any("AccessLogSettings" in (r.get("Properties") or {}) for r in resources.values())


def test_a_pixel_or_track_answer_is_well_under_a_kilobyte(services: dict[str, LocalService]) -> None:
    # what CloudFront's data transfer is charged on (README: cents per million)
    for method, target, headers, body in (REQUESTS[0], REQUESTS[6]):
        response, _ = handle(services["function-url"], method, target, list(headers.items()), body)
        size = len(response.body) + sum(len(k) + len(v) + 4 for k, v in response.headers.items())
        assert response.status == 200 and size < 512, (target, size)
