"""API Gateway HTTP API (payload format 2.0) helpers: requests in, responses out.

A `Request` is the event as data; bodies are read by plain functions (`inflate`,
`parse_json`, `parse_form`) that raise `HttpError`; `HttpError.response` is the one error
envelope every handler answers with. Routing is by the event's `routeKey`
("POST /v1/track"), which API Gateway (and the local stack) fill in, so no router
framework is imported at cold start (Powertools' resolver measured: docs/DESIGN.md, "HTTP
routing: resolver or hand-written").
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

# The 43-byte transparent 1x1 GIF every pixel in the wild answers with.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")


class HttpError(Exception):
    """An answer other than success, raised anywhere below a handler."""

    def __init__(self, status: int, error: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.extra = extra

    def response(self, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The error envelope, the one definition of every error answer's body. `code` and
        `message` are what Segment's SDKs read from an error answer."""
        return json_response(self.status, {"success": False, "error": self.error, "code": self.error,
                                           "message": self.message, **self.extra}, headers)


@dataclass(frozen=True)
class Request:
    method: str
    route: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    path_parameters: dict[str, str]
    body: bytes
    source_ip: str | None
    domain_name: str | None = None  # the host API Gateway answered on (never a client header)
    caller: str | None = None  # the IAM principal of a signed request (AWS_IAM routes), never a header

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Request:
        context = event.get("requestContext") or {}
        http = context.get("http") or {}
        raw = event.get("body") or ""
        if event.get("isBase64Encoded"):
            try:
                body = base64.b64decode(raw)
            except (binascii.Error, ValueError):
                body = b""
        else:
            # surrogatepass: a lone surrogate in the event reaches the strict UTF-8 check as bytes
            body = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
        # A repeated query key arrives comma-joined in queryStringParameters; the raw string is exact.
        query = {k: v[-1] for k, v in parse_qs(event.get("rawQueryString") or "", keep_blank_values=True).items()}
        if not query:
            query = dict(event.get("queryStringParameters") or {})
        method = (http.get("method") or "GET").upper()
        return cls(
            method=method,
            route=event.get("routeKey") or f"{method} {event.get('rawPath', '/')}",
            path=event.get("rawPath") or http.get("path") or "/",
            headers={k.lower(): v for k, v in (event.get("headers") or {}).items()},
            query=query,
            path_parameters=dict(event.get("pathParameters") or {}),
            body=body,
            source_ip=http.get("sourceIp"),
            domain_name=context.get("domainName"),
            caller=_iam_caller(context),
        )

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def user_agent(self) -> str | None:
        return self.headers.get("user-agent")

    def basic_username(self) -> str | None:
        """The HTTP Basic username, which is where Segment's SDKs put the write key."""
        header = self.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "basic" or not credentials:
            return None
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except ValueError:  # not base64 (binascii.Error), not ASCII ("Basic é"), not UTF-8
            return None
        return decoded.partition(":")[0] or None


def _iam_caller(context: Mapping[str, Any]) -> str | None:
    """`requestContext.authorizer.iam.userArn` of a SigV4-signed request (AWS_IAM routes)."""
    authorizer = context.get("authorizer")
    iam = authorizer.get("iam") if isinstance(authorizer, Mapping) else None
    arn = iam.get("userArn") if isinstance(iam, Mapping) else None
    return arn if isinstance(arn, str) and arn else None


MAX_FORM_FIELDS = 100


def inflate(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body, gunzipped when the client compressed it (Segment's SDKs may), never
    inflating past `limit` + 1 bytes so a small bomb cannot exhaust memory."""
    if (content_encoding or "").strip().lower() != "gzip":
        return body
    import zlib

    inflater = zlib.decompressobj(wbits=31)
    try:
        return inflater.decompress(body, limit + 1)
    except zlib.error:
        raise HttpError(400, "invalid_gzip", "the body is not valid gzip (content-encoding: gzip)") from None


def parse_form(body: bytes) -> dict[str, str]:
    """An application/x-www-form-urlencoded body: UTF-8, at most MAX_FORM_FIELDS fields."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "invalid_form", "the form body is not UTF-8", field="body") from None
    try:
        pairs = parse_qs(text, keep_blank_values=True, strict_parsing=False, errors="strict",
                         max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError) as problem:
        # a percent-escape that is not UTF-8, or more fields than any real form has
        reason = "a field is not UTF-8 once percent-decoded" if isinstance(problem, UnicodeDecodeError) \
            else f"the form has more than {MAX_FORM_FIELDS} fields"
        raise HttpError(400, "invalid_form", reason, field="body") from None
    return {k: v[-1] for k, v in pairs.items()}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(body: bytes) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity, bounded nesting and digits.

    json's own limits surface as RecursionError (nesting about 1,000 deep) and ValueError
    (integers over 4,300 digits); both are bad input, answered 400 like a syntax error.
    """
    if not body.strip():
        raise HttpError(400, "empty_body", "the request has no body; send a JSON object", field="body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as problem:
        raise HttpError(400, "invalid_json", f"the body is not UTF-8 (byte {problem.start})", field="body") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as problem:
        raise HttpError(400, "invalid_json", f"the body is not valid JSON: {problem}", field="body") from None
    except RecursionError:
        raise HttpError(400, "invalid_json", "the body is nested too deeply", field="body") from None
    except ValueError as problem:  # an integer over Python's digit limit, NaN, Infinity
        raise HttpError(400, "invalid_json", f"the body is not valid JSON: {problem}", field="body") from None


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", **(headers or {})},
        "body": json.dumps(body, separators=(",", ":"), default=str),
    }


def gif_response(headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"content-type": "image/gif", "cache-control": "no-store",
                    "content-length": str(len(PIXEL_GIF)), **(headers or {})},
        "body": base64.b64encode(PIXEL_GIF).decode(),
        "isBase64Encoded": True,
    }


def redirect_response(location: str) -> dict[str, Any]:
    return {"statusCode": 303, "headers": {"location": location, "cache-control": "no-store"}, "body": ""}
