"""API Gateway HTTP API (payload format 2.0) helpers: requests in, responses out.

Routing is by the event's `routeKey` ("POST /v1/track"), which API Gateway (and the local
stack) fill in, so no router framework is imported at cold start.
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
        # `code` and `message` are what Segment's SDKs read from an error answer
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
            body = raw.encode() if isinstance(raw, str) else bytes(raw)
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
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None

    def decoded_body(self, limit: int) -> bytes:
        """The body, gunzipped when the client compressed it (Segment's SDKs may), never
        inflating past `limit` + 1 bytes so a small bomb cannot exhaust memory."""
        if self.headers.get("content-encoding", "").strip().lower() != "gzip":
            return self.body
        import zlib

        inflater = zlib.decompressobj(wbits=31)
        try:
            inflated = inflater.decompress(self.body, limit + 1)
        except zlib.error:
            raise HttpError(400, "invalid_gzip", "the body is not valid gzip (content-encoding: gzip)") from None
        return inflated

    def json_body(self) -> Any:
        if not self.body.strip():
            raise HttpError(400, "empty_body", "the request has no body; send a JSON object")
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as problem:
            raise HttpError(400, "invalid_json", f"the body is not valid JSON: {problem}") from None

    def form_body(self) -> dict[str, str]:
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise HttpError(400, "invalid_form", "the form body is not UTF-8") from None
        return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}


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
