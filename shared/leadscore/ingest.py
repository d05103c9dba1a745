"""The ingestion API: Segment Tracking API routes, the pixel, forms and analytics.js settings.

Each route takes a `Request` and answers an HTTP API response dict. Bad input gets a 4xx
that names the problem and is recorded as rejected; the pixel always answers its GIF.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from leadscore.collect import Collector, CollectResult
from leadscore.http import HttpError, Request, gif_response, json_response, redirect_response
from leadscore.model import InvalidMessage

logger = logging.getLogger(__name__)

JSON_TYPES = {"", "application/json", "text/plain"}  # analytics.js posts text/plain to skip CORS preflight
SEGMENT_TYPES = {
    "POST /v1/track": "track",
    "POST /v1/identify": "identify",
    "POST /v1/page": "page",
    "POST /v1/screen": "screen",
    "POST /v1/group": "group",
    "POST /v1/alias": "alias",
}
# Form fields that steer collection rather than describe the person (`userId` is ignored:
# a public form must not name a known contact).
FORM_CONTROL_FIELDS = {"writekey", "anonymousid", "userid", "messageid", "formid", "redirect", "_redirect"}
MAX_FORM_FIELD_NAME = 100  # characters
MAX_FORM_VALUE = 2000  # characters of one field; a stored trait keeps 200
MAX_LISTED_REJECTIONS = 100  # a batch answer lists this many rejected messages, then counts


@dataclass
class Counters:
    """What a request did, for metrics (the handler publishes them)."""

    accepted: int = 0
    duplicates: int = 0
    bots: int = 0
    rejected: int = 0
    unauthorized: int = 0
    fields: list[str] = field(default_factory=list)  # what was wrong, by field: safe to log

    def add(self, result: CollectResult) -> None:
        self.accepted += result.accepted
        self.duplicates += result.duplicates
        self.bots += result.bots
        self.rejected += len(result.rejected)
        self.fields.extend(r.field or "message" for r in result.rejected)


class IngestApi:
    def __init__(self, collector: Collector, config: Any, clock: Callable[[], datetime],
                 public_url: str | None = None) -> None:
        self.collector = collector
        self.config = config
        self.clock = clock
        self.public_url = public_url  # PUBLIC_API_URL: where SDKs reach this API (a custom domain)
        self.counters = Counters()

    def handle(self, request: Request) -> dict[str, Any]:
        self.counters = Counters()
        route = request.route
        if route == "GET /v1/pixel.gif":
            return self.pixel(request)
        if route == "OPTIONS /v1/{proxy+}":
            return self.preflight(request)
        try:
            if route == "POST /v1/batch":
                return self.batch(request)
            if route in SEGMENT_TYPES:
                return self.single(request, SEGMENT_TYPES[route])
            if route == "POST /v1/forms/{formId}":
                return self.form(request)
            if route == "GET /v1/projects/{writeKey}/settings":
                return self.settings(request)
            raise HttpError(404, "not_found", f"no route {route}")
        except HttpError as problem:
            return problem.response(self._cors(request))

    # --- Segment Tracking API -------------------------------------------------------------

    def _reject(self, request: Request, reason: str, field: str | None, source_id: str,
                raw: Any = None) -> None:
        """Keep bad input with its reason. Only ever for a known source: without a valid key
        nothing is stored, or anyone could fill the table."""
        self.counters.rejected += 1
        self.counters.fields.append(field or "body")
        body = raw if raw is not None else request.body[:4096].decode("utf-8", "replace")
        self.collector.reject(reason=reason, field=field, source_id=source_id, raw=body, received_at=self.clock())

    def _read_json(self, request: Request, limit: int, source_id: str | None) -> Any:
        """The JSON body; a problem is recorded as rejected when the sender is known."""
        def refuse(problem: HttpError, field: str, raw: Any = None) -> HttpError:
            if source_id is not None:
                self._reject(request, problem.message, field, source_id, raw=raw)
            return problem

        if request.content_type not in JSON_TYPES and not _is_json_sent_as_form(request):
            message = f"content type {request.content_type[:100]!r} is not supported; send application/json"
            raise refuse(HttpError(415, "unsupported_media_type", message, field="content-type"), "content-type")
        try:
            body = request.decoded_body(limit)
        except HttpError as problem:
            raise refuse(problem, "content-encoding", raw="") from None
        if len(body) > limit:
            message = f"the body is over {limit // 1024} KB ({len(body)} bytes or more)"
            raise refuse(HttpError(413, "payload_too_large", message, field="body"), "body",
                         raw=body[:1024].decode("utf-8", "replace"))
        try:
            return replace(request, body=body).json_body()
        except HttpError as problem:
            raise refuse(problem, "body") from None

    def _read_authorized_json(self, request: Request, limit: int) -> tuple[str, Any]:
        """(source id, body). A write key in HTTP Basic auth is checked before the body is
        read; a body's own `writeKey` only after it parsed. Until a key is known valid,
        nothing of the request is stored, not even as rejected."""
        from leadscore.messages import write_key_of

        basic_key = request.basic_username()
        source_id = self._source_of_key(basic_key) if basic_key else None
        body = self._read_json(request, limit, source_id)
        return source_id or self._source_of_key(write_key_of(body)), body

    def _source_of_key(self, key: str | None) -> str:
        source = self.config.sources.by_write_key(key) if key else None
        if source is None:
            self.counters.unauthorized += 1
            raise HttpError(401, "unauthorized",
                            "unknown write key" if key else "no write key: send it as the HTTP Basic username",
                            field="authorization")
        return str(source.id)

    def single(self, request: Request, message_type: str) -> dict[str, Any]:
        from leadscore.messages import MAX_EVENT_BYTES

        source_id, body = self._read_authorized_json(request, MAX_EVENT_BYTES)
        # Server-side senders (curl, SDKs) are not bots: only the message's own context.userAgent counts.
        result = self.collector.collect([body], source_id=source_id, received_at=self.clock(),
                                        expected_type=message_type)
        self.counters.add(result)
        if result.rejected:
            problem = result.rejected[0]
            field_name = problem.field or "body"
            raise HttpError(400, "invalid_event", f"{field_name}: {problem.reason}", field=field_name)
        return json_response(200, {"success": True}, self._cors(request, source_id))

    def batch(self, request: Request) -> dict[str, Any]:
        from leadscore.messages import MAX_BATCH_BYTES, batch_messages

        source_id, body = self._read_authorized_json(request, MAX_BATCH_BYTES)
        try:
            messages = batch_messages(body)
        except InvalidMessage as problem:
            self._reject(request, problem.reason, problem.field, source_id)
            raise HttpError(400, "invalid_batch", str(problem), field=problem.field) from None
        result = self.collector.collect(messages, source_id=source_id, received_at=self.clock(), indexed=True)
        self.counters.add(result)
        answer: dict[str, Any] = {"success": True, "accepted": result.accepted, "duplicates": result.duplicates}
        if result.rejected:
            # the answer stays small however many were rejected: the first ones and a count
            answer["rejected"] = [r.as_json() for r in result.rejected[:MAX_LISTED_REJECTIONS]]
            answer["rejectedCount"] = len(result.rejected)
        return json_response(200, answer, self._cors(request, source_id))

    # --- the pixel -------------------------------------------------------------------------

    def pixel(self, request: Request) -> dict[str, Any]:
        """Always the GIF: a broken pixel must never break a page or an email."""
        try:
            self._pixel(request)
        except Exception:  # noqa: BLE001 - the GIF goes out whatever happened; the cause is logged
            logger.exception("pixel hit could not be recorded")
        return gif_response()

    def _pixel(self, request: Request) -> None:
        q = request.query
        source = self.config.sources.by_write_key(q.get("k")) if q.get("k") else None
        if source is None:
            self.counters.unauthorized += 1  # and nothing stored: anyone can request a URL
            return
        received_at = self.clock()
        name = (q.get("e") or "").strip()
        message: dict[str, Any] = {"timestamp": received_at.isoformat()}
        if not name or name.lower() in {"page", "page viewed", "pageview"}:
            message["type"] = "page"
        else:
            message.update(type="track", event=name)
        if q.get("uid"):
            message["userId"] = q["uid"]
        if q.get("aid"):
            message["anonymousId"] = q["aid"]
        if q.get("mid"):
            message["messageId"] = q["mid"]
            message.pop("timestamp")  # a message id of its own dedupes retries; keep the body stable
        page = {k: v for k, v in (("url", q.get("url")), ("referrer", q.get("ref"))) if v}
        message["properties"] = {**page, **{k[2:]: v for k, v in q.items() if k.startswith("p.")}}
        message["context"] = {"page": page, "userAgent": request.user_agent, "ip": request.source_ip}
        result = self.collector.collect([message], source_id=str(source.id), received_at=received_at,
                                        user_agent=request.user_agent)
        self.counters.add(result)

    # --- forms -----------------------------------------------------------------------------

    def form(self, request: Request) -> dict[str, Any]:
        form_id = request.path_parameters.get("formId", "")
        form = self.config.sources.form(form_id)
        if form is None:
            # A form's id is its key: for an unknown one nothing is stored.
            raise HttpError(404, "unknown_form", f"no form {form_id[:100]!r} is configured in sources.yaml",
                            field="formId")
        source_id = str(form.source)
        if request.content_type == "multipart/form-data":
            message = "send the form as application/x-www-form-urlencoded (the HTML default) or JSON"
            self._reject(request, message, "content-type", source_id)
            raise HttpError(415, "unsupported_media_type", message, field="content-type")
        is_html = request.content_type == "application/x-www-form-urlencoded"
        fields = self._form_fields(request, is_html, source_id)
        messages = self._form_messages(form, fields, request)
        result = self.collector.collect(messages, source_id=source_id, received_at=self.clock(),
                                        user_agent=request.user_agent, all_or_nothing=True)
        self.counters.add(result)
        if result.rejected:
            problem = result.rejected[0]
            field_name = _form_field_name(problem.field)
            raise HttpError(400, "invalid_form", f"{field_name}: {problem.reason}", field=field_name)
        if is_html:
            target = form.redirect or request.headers.get("referer")
            if target:
                return redirect_response(target)
        return json_response(200, {"success": True}, self._cors(request, source_id))

    def _form_fields(self, request: Request, is_html: bool, source_id: str) -> dict[str, Any]:
        """The submitted fields, each checked before anything is stored."""
        from leadscore.messages import MAX_EVENT_BYTES

        if is_html:
            if len(request.body) > MAX_EVENT_BYTES:
                message = f"the form is over {MAX_EVENT_BYTES // 1024} KB ({len(request.body)} bytes)"
                self._reject(request, message, "body", source_id, raw=request.body[:1024].decode("utf-8", "replace"))
                raise HttpError(413, "payload_too_large", message, field="body")
            try:
                fields: Any = request.form_body()
            except HttpError as problem:
                self._reject(request, problem.message, "body", source_id)
                raise
        else:
            fields = self._read_json(request, MAX_EVENT_BYTES, source_id)
            if not isinstance(fields, dict):
                message = "the form body must be a JSON object of fields"
                self._reject(request, message, "body", source_id)
                raise HttpError(400, "invalid_form", message, field="body")
        for name, value in fields.items():
            reason = _form_field_problem(name, value)
            if reason:
                field_name = name[:MAX_FORM_FIELD_NAME]
                self._reject(request, reason, field_name, source_id, raw={"field": field_name})
                raise HttpError(400, "invalid_form", f"{field_name}: {reason}", field=field_name)
        return fields

    def _form_messages(self, form: Any, fields: dict[str, Any], request: Request) -> list[dict[str, Any]]:
        """An identify of the person the email names, and the form's submission.

        A public form is anyone's to post: it never takes a `userId` from its body (that
        would let anyone rewrite a known contact); an `anonymousId` only links that
        visitor's anonymous history to the submitted email."""
        email = fields.get("email")
        if not isinstance(email, str) or not email.strip():
            self._reject(request, "the form has no email field", "email", str(form.source), raw=fields)
            raise HttpError(400, "invalid_form", "email: the form needs an email field to identify the contact",
                            field="email")
        traits: dict[str, Any] = {}
        for name, value in fields.items():
            if name.lower() in FORM_CONTROL_FIELDS or value in ("", None):
                continue
            node = traits
            *parents, leaf = str(name).split(".")  # "company.name" -> {"company": {"name": ...}}
            for parent in parents:
                node = node.setdefault(parent, {}) if isinstance(node.get(parent, {}), dict) else {}
            node[leaf] = value
        base = fields.get("messageId") or hashlib.sha256(
            json.dumps([form.id, fields, self.clock().strftime("%Y%m%dT%H%M")], sort_keys=True, default=str)
            .encode()).hexdigest()[:32]
        ids = {"anonymousId": fields["anonymousId"]} if fields.get("anonymousId") else {}
        context = {"userAgent": request.user_agent, "page": {"url": request.headers.get("referer")}}
        return [
            {"type": "identify", "messageId": f"{base}-identify", "traits": traits, "context": context, **ids},
            {"type": "track", "event": "Form Submitted", "messageId": f"{base}-submit",
             "properties": {"form_id": form.id, "stage": form.stage},
             "context": {**context, "traits": {"email": traits.get("email")}}, **ids},
        ]

    # --- analytics.js settings ------------------------------------------------------------

    def settings(self, request: Request) -> dict[str, Any]:
        key = request.path_parameters.get("writeKey", "")
        source = self.config.sources.by_write_key(key)
        if source is None:
            raise HttpError(404, "unknown_write_key", "no source has this write key")
        protocol, api_host = self._public_api(request)
        settings = {
            "integrations": {
                "Segment.io": {
                    "apiKey": key,
                    "apiHost": api_host,
                    "protocol": protocol,
                    "unbundledIntegrations": [],
                    "addBundledMetadata": True,
                    "maybeBundledConfigIds": {},
                    "versionSettings": {"version": "4.4.7", "componentTypes": ["browser"]},
                }
            },
            "plan": {"track": {"__default": {"enabled": True, "integrations": {}}},
                     "identify": {"__default": {"enabled": True}}, "group": {"__default": {"enabled": True}}},
            "edgeFunction": {},
            "analyticsNextEnabled": True,
            "middlewareSettings": {},
            "enabledMiddleware": {},
            "metrics": {"sampleRate": 0},
            "legacyVideoPluginsEnabled": False,
            "remotePlugins": [],
        }
        return json_response(200, settings, {"cache-control": "max-age=300", **self._cors(request, str(source.id))})

    def _public_api(self, request: Request) -> tuple[str, str]:
        """(protocol, host and path of /v1) that SDKs are sent to: the configured public URL,
        else the domain API Gateway answered on. Never a request header such as
        X-Forwarded-Host, which a client sets and a cache would then serve to everyone."""
        if self.public_url:
            parsed = urlsplit(self.public_url)
            return parsed.scheme or "https", f"{parsed.netloc}{parsed.path.rstrip('/')}/v1"
        return "https", f"{request.domain_name or 'localhost'}{_stage_prefix(request)}/v1"

    def preflight(self, request: Request) -> dict[str, Any]:
        """A browser asks before a cross-origin POST: allowed if some source lists the origin
        (the request does not say which source yet; the answer to the POST itself does)."""
        cors = self._cors(request)
        if not cors:
            return json_response(403, {"success": False, "error": "origin_not_allowed", "code": "origin_not_allowed",
                                       "message": "this origin is in no source's cors_origins (sources.yaml)"},
                                 {"vary": "origin"})
        return {"statusCode": 204, "body": "", "headers": {
            **cors, "access-control-allow-methods": "GET, POST, OPTIONS",
            "access-control-allow-headers": "content-type, authorization, content-encoding",
            "access-control-max-age": "600"}}

    def _cors(self, request: Request, source_id: str | None = None) -> dict[str, str]:
        """Echo an Origin that the source's `cors_origins` (sources.yaml) allow."""
        origin = request.headers.get("origin")
        if not origin:
            return {}
        sources = [self.config.sources.source(source_id)] if source_id else list(self.config.sources.sources)
        for source in sources:
            allowed = getattr(source, "cors_origins", None) or []
            if origin in allowed or "*" in allowed:
                return {"access-control-allow-origin": origin, "access-control-allow-credentials": "true",
                        "vary": "origin"}
        return {}


def _form_field_problem(name: str, value: Any) -> str | None:
    if len(name) > MAX_FORM_FIELD_NAME:
        return f"a field name is longer than {MAX_FORM_FIELD_NAME} characters"
    if isinstance(value, str) and len(value) > MAX_FORM_VALUE:
        return f"is longer than {MAX_FORM_VALUE} characters"
    if name.lower() == "messageid" and not isinstance(value, str | int):
        return "must be a string"
    return None


def _form_field_name(message_field: str) -> str:
    """The form field behind a message's key path: `traits.company.name` -> `company.name`."""
    for prefix in ("context.traits.", "traits."):
        if message_field.startswith(prefix):
            return message_field[len(prefix):]
    return message_field or "body"


def _stage_prefix(request: Request) -> str:
    """The part of the path before /v1 (a named stage), so settings point back at this API."""
    prefix = request.path.split("/v1/", 1)[0]
    return prefix.rstrip("/")


def _is_json_sent_as_form(request: Request) -> bool:
    """`curl -d '{...}'` labels JSON as a form: take it when the body is plainly JSON."""
    return request.content_type == "application/x-www-form-urlencoded" and request.body.lstrip()[:1] in (b"{", b"[")
