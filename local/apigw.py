"""Builders of API Gateway HTTP API (payload format 2.0) events, of Lambda Function URL
events (the same format, as a Function URL delivers it), and a fake Lambda context.

The events follow what API Gateway sends to a Lambda proxy integration:
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html

- header names are lowercased, repeated values comma-joined; cookies move to `cookies`;
- `queryStringParameters` joins repeated keys with commas and is absent without a query;
- `pathParameters` is absent on routes without parameters;
- bodies are base64-encoded (`isBase64Encoded: true`) unless their content type is textual
  (text/*, JSON, XML, JavaScript): an HTML form post arrives base64-encoded.

A Function URL's event has the same fields, with what API Gateway would add left as
placeholders (https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html):
`routeKey` "$default" (no route: the function routes by `rawPath`), no `pathParameters`,
`requestContext.stage` "$default", `domainName` `<url-id>.lambda-url.<region>.on.aws`,
`accountId` "anonymous" and no `authorizer` (auth type NONE).
"""

from __future__ import annotations

import base64 as b64
import functools
import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

CHROME_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
DEFAULT_ACCOUNT = "123456789012"
DEFAULT_API_ID = "local"
DEFAULT_REGION = "us-east-1"
#: A Function URL's id: 32 lowercase letters and digits in AWS (derived from the account).
DEFAULT_URL_ID = "localfunctionurl0000000000000000"

_TEXTUAL = re.compile(r"^(text/|application/(json|javascript|xml|x-yaml|yaml)|.*\+(json|xml))", re.IGNORECASE)


def is_textual(content_type: str | None) -> bool:
    """Whether API Gateway passes a body of this content type as text (not base64)."""
    if not content_type:
        return True
    return bool(_TEXTUAL.match(content_type.split(";", 1)[0].strip()))


def encode_body(body: str | bytes | Mapping[str, Any] | list[Any] | None) -> bytes | None:
    """A request body as bytes: text as UTF-8, a dict or list as compact JSON."""
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def basic_auth(user: str, password: str = "") -> str:
    """The value of an `authorization` header for HTTP Basic auth (Segment: write key, no password)."""
    return "Basic " + b64.b64encode(f"{user}:{password}".encode()).decode("ascii")


@functools.cache
def route_pattern(template: str) -> re.Pattern[str]:
    """The regular expression of a route's path template ("/v1/forms/{formId}", "/v1/{proxy+}"):
    `{name}` is one segment, `{name+}` the rest of the path. Any character matches, newlines too,
    as API Gateway matches, and the whole path must fit (anchored with \\Z)."""
    regex = "^"
    for part in re.split(r"(\{[^}]+\})", template):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            regex += f"(?P<{name[:-1]}>.+)" if name.endswith("+") else f"(?P<{name}>[^/]+)"
        else:
            regex += re.escape(part)
    return re.compile(regex + r"\Z", re.DOTALL)


def route_params(route_key: str, path: str) -> dict[str, str] | None:
    """Path parameters of `path` under a route template such as "POST /v1/forms/{formId}"."""
    match = route_pattern(route_key.split(" ", 1)[-1]).match(path)
    if match is None:
        raise ValueError(f"path {path!r} does not fit route {route_key!r}")
    return {k: v for k, v in match.groupdict().items()} or None


def _query_string(query: Mapping[str, Any] | Sequence[tuple[str, Any]] | str | None) -> str:
    if query is None:
        return ""
    if isinstance(query, str):
        return query.lstrip("?")
    return urlencode(query, doseq=True)


def http_event(
    method: str,
    path: str,
    *,
    body: str | bytes | Mapping[str, Any] | list[Any] | None = None,
    headers: Mapping[str, str | Sequence[str]] | None = None,
    query: Mapping[str, Any] | Sequence[tuple[str, Any]] | str | None = None,
    path_parameters: Mapping[str, str] | None = None,
    route_key: str | None = None,
    base64: bool | None = None,
    basic_user: str | None = None,
    source_ip: str = "203.0.113.7",
    user_agent: str = CHROME_UA,
    cookies: Sequence[str] | None = None,
    authorizer: Mapping[str, Any] | None = None,
    stage: str = "$default",
    api_id: str = DEFAULT_API_ID,
    account_id: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
    now: datetime | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload format 2.0 event, as a Lambda proxy integration receives it.

    `path` may carry a query string ("/v1/pixel.gif?k=abc"), merged before `query`.
    `body` given as a dict or list is sent as JSON (content-type application/json unless set).
    `route_key` defaults to "METHOD path"; give the template's route ("POST /v1/forms/{formId}")
    and `path_parameters` are taken from the path unless given.
    `base64` forces `isBase64Encoded`; by default it follows the content type as API Gateway does.
    `authorizer` is placed in `requestContext.authorizer` (e.g. {"iam": {...}} for AWS_IAM routes).
    """
    method = method.upper()
    split = urlsplit(path)
    raw_path = split.path or "/"
    raw_query = "&".join(q for q in (split.query, _query_string(query)) if q)

    hdrs: dict[str, str] = {}
    for name, value in (headers or {}).items():
        joined = value if isinstance(value, str) else ",".join(value)
        key = name.lower()
        hdrs[key] = f"{hdrs[key]},{joined}" if key in hdrs else joined

    raw_body = encode_body(body)
    if raw_body is not None and not isinstance(body, bytes | str):
        hdrs.setdefault("content-type", "application/json")
    if raw_body is not None:
        hdrs.setdefault("content-length", str(len(raw_body)))

    if basic_user is not None:
        hdrs.setdefault("authorization", basic_auth(basic_user))
    domain = f"{api_id}.execute-api.{region}.amazonaws.com"
    hdrs.setdefault("host", domain)
    hdrs.setdefault("user-agent", user_agent)
    hdrs.setdefault("accept", "*/*")
    hdrs.setdefault("x-forwarded-for", source_ip)
    hdrs.setdefault("x-forwarded-port", "443")
    hdrs.setdefault("x-forwarded-proto", "https")
    hdrs.setdefault("x-amzn-trace-id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}")

    cookie_list = list(cookies or [])
    if "cookie" in hdrs:
        cookie_list += [c.strip() for c in hdrs.pop("cookie").replace(",", ";").split(";") if c.strip()]

    route = route_key or f"{method} {raw_path}"
    params: Mapping[str, str] | None = path_parameters
    if params is None and "{" in route:
        params = route_params(route, raw_path)

    moment = now or datetime.now(UTC)
    epoch_ms = int(moment.timestamp() * 1000)
    request_id = b64.b64encode(uuid.uuid4().bytes[:11]).decode("ascii").replace("+", "A").replace("/", "B")
    request_context: dict[str, Any] = {
        "accountId": account_id,
        "apiId": api_id,
        "domainName": hdrs["host"],
        "domainPrefix": hdrs["host"].split(".", 1)[0],
        "http": {
            "method": method,
            "path": raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": hdrs["user-agent"],
        },
        "requestId": request_id,
        "routeKey": route,
        "stage": stage,
        "time": moment.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": epoch_ms,
    }
    if authorizer is not None:
        request_context["authorizer"] = dict(authorizer)

    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": hdrs,
        "requestContext": request_context,
        "isBase64Encoded": False,
    }
    if cookie_list:
        event["cookies"] = cookie_list
    if raw_query:
        qs: dict[str, str] = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            qs[key] = f"{qs[key]},{value}" if key in qs else value
        event["queryStringParameters"] = qs
    if params:
        event["pathParameters"] = dict(params)
    if raw_body is not None:
        encode = base64 if base64 is not None else not is_textual(hdrs.get("content-type"))
        if not encode:
            try:
                event["body"] = raw_body.decode("utf-8")
            except UnicodeDecodeError:
                encode = True
        if encode:
            event["body"] = b64.b64encode(raw_body).decode("ascii")
        event["isBase64Encoded"] = encode
    return event


def function_url_domain(url_id: str = DEFAULT_URL_ID, region: str = DEFAULT_REGION) -> str:
    """The host of a Lambda Function URL."""
    return f"{url_id}.lambda-url.{region}.on.aws"


def is_function_url_event(event: Mapping[str, Any]) -> bool:
    return event.get("routeKey") == "$default" and ".lambda-url." in str(
        (event.get("requestContext") or {}).get("domainName", ""))


def as_function_url(event: Mapping[str, Any], *, url_id: str = DEFAULT_URL_ID,
                    region: str | None = None) -> dict[str, Any]:
    """An HTTP API payload 2.0 event as a public Function URL (auth NONE) would deliver the
    same request: no route key or path parameters, the URL's domain (also as `host`: a Function
    URL has no custom domain, and CloudFront in front sends the URL's), no authorizer. Headers,
    cookies, query, body and its base64 flag are the same in both (payload format 2.0)."""
    if event.get("version") != "2.0":
        raise ValueError("only a payload format 2.0 event has a Function URL shape")
    context = dict(event.get("requestContext") or {})
    api_domain = str(context.get("domainName") or "")
    if region is None:
        region = api_domain.split(".")[2] if ".execute-api." in api_domain else DEFAULT_REGION
    domain = function_url_domain(url_id, region)
    headers = {**dict(event.get("headers") or {}), "host": domain}  # a URL answers on its own domain only
    http = dict(context.get("http") or {})
    http["path"] = event.get("rawPath") or http.get("path") or "/"
    context.update({"accountId": "anonymous", "apiId": url_id, "authentication": None, "domainName": domain,
                    "domainPrefix": url_id, "http": http, "routeKey": "$default", "stage": "$default"})
    context.pop("authorizer", None)
    converted = {key: value for key, value in event.items() if key not in ("pathParameters", "stageVariables")}
    converted.update({"routeKey": "$default", "headers": headers, "requestContext": context})
    return converted


def function_url_event(method: str, path: str, *, url_id: str = DEFAULT_URL_ID, region: str = DEFAULT_REGION,
                       **kwargs: Any) -> dict[str, Any]:
    """A Lambda Function URL event (payload format 2.0, auth NONE): `http_event`'s arguments
    (`route_key`, `path_parameters`, `authorizer` and `stage` mean nothing to a Function URL)."""
    for unused in ("route_key", "path_parameters", "authorizer", "stage", "api_id"):
        if unused in kwargs:
            raise TypeError(f"a Function URL event has no {unused}")
    headers = {"host": function_url_domain(url_id, region), **dict(kwargs.pop("headers", None) or {})}
    event = http_event(method, path, headers=headers, region=region, **kwargs)
    return as_function_url(event, url_id=url_id, region=region)


def form_event(
    path: str, fields: Mapping[str, Any] | Sequence[tuple[str, Any]], **kwargs: Any
) -> dict[str, Any]:
    """A POST of an HTML form (application/x-www-form-urlencoded; base64-encoded as API Gateway does)."""
    headers = {"content-type": "application/x-www-form-urlencoded", **(kwargs.pop("headers", None) or {})}
    return http_event("POST", path, body=urlencode(fields, doseq=True), headers=headers, **kwargs)


def iam_authorizer(account_id: str = DEFAULT_ACCOUNT, user: str = "tester") -> dict[str, Any]:
    """`requestContext.authorizer` of a request signed with SigV4 on an AWS_IAM route."""
    return {
        "iam": {
            "accessKey": "AKIAIOSFODNN7EXAMPLE",
            "accountId": account_id,
            "callerId": "AIDAEXAMPLE",
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": f"arn:aws:iam::{account_id}:user/{user}",
            "userId": "AIDAEXAMPLE",
        }
    }


def decode_body(response: Mapping[str, Any]) -> bytes:
    """The bytes of a Lambda proxy response's body (base64-decoded when flagged)."""
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        return b64.b64decode(body)
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def json_body(response: Mapping[str, Any]) -> Any:
    return json.loads(decode_body(response))


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str = "fn"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    timeout_s: float = 10.0
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    identity: Any = None
    client_context: Any = None
    _started: float = field(default_factory=time.monotonic, repr=False)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        day = datetime.now(UTC).strftime("%Y/%m/%d")
        return f"{day}/[{self.function_version}]{self.aws_request_id.replace('-', '')}"

    def get_remaining_time_in_millis(self) -> int:
        left = self.timeout_s - (time.monotonic() - self._started)
        return max(0, int(left * 1000))


def lambda_context(
    name: str = "fn",
    *,
    memory_mb: int = 256,
    timeout_s: float = 10.0,
    region: str = DEFAULT_REGION,
    account_id: str = DEFAULT_ACCOUNT,
) -> LambdaContext:
    """A fresh fake Lambda context (new request id, remaining time counting down from the timeout)."""
    return LambdaContext(
        function_name=name,
        memory_limit_in_mb=memory_mb,
        timeout_s=timeout_s,
        region=region,
        account_id=account_id,
    )
