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
# Form fields that steer collection rather than describe the person.
FORM_CONTROL_FIELDS = {"writekey", "anonymousid", "userid", "messageid", "formid", "redirect", "_redirect"}


@dataclass
class Counters:
    """What a request did, for metrics (the handler publishes them)."""

    accepted: int = 0
    duplicates: int = 0
    bots: int = 0
    rejected: int = 0
    unauthorized: int = 0
    reasons: list[str] = field(default_factory=list)

    def add(self, result: CollectResult) -> None:
        self.accepted += result.accepted
        self.duplicates += result.duplicates
        self.bots += result.bots
        self.rejected += len(result.rejected)
        self.reasons.extend(r.reason for r in result.rejected)


class IngestApi:
    def __init__(self, collector: Collector, config: Any, clock: Callable[[], datetime]) -> None:
        self.collector = collector
        self.config = config
        self.clock = clock
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

    def _reject(self, request: Request, reason: str, field: str | None, source_id: str | None,
                raw: Any = None) -> None:
        self.counters.rejected += 1
        self.counters.reasons.append(reason)
        body = raw if raw is not None else request.body[:4096].decode("utf-8", "replace")
        self.collector.reject(reason=reason, field=field, source_id=source_id, raw=body, received_at=self.clock())

    def _read_json(self, request: Request, limit: int) -> Any:
        if request.content_type not in JSON_TYPES and not _is_json_sent_as_form(request):
            message = f"content type {request.content_type!r} is not supported; send application/json"
            self._reject(request, message, "content-type", None)
            raise HttpError(415, "unsupported_media_type", message)
        try:
            body = request.decoded_body(limit)
        except HttpError as problem:
            self._reject(request, problem.message, "content-encoding", None, raw="")
            raise
        if len(body) > limit:
            message = f"the body is over {limit // 1024} KB ({len(body)} bytes or more)"
            self._reject(request, message, "body", None, raw=body[:1024].decode("utf-8", "replace"))
            raise HttpError(413, "payload_too_large", message)
        try:
            return replace(request, body=body).json_body()
        except HttpError as problem:
            self._reject(request, problem.message, "body", None)
            raise

    def _read_authorized_json(self, request: Request, limit: int) -> tuple[str, Any]:
        """(source id, body). A write key in HTTP Basic auth is checked before the body is
        read, so an unknown sender has nothing of its body stored, not even as rejected."""
        from leadscore.messages import write_key_of

        basic_source = self._source_of_key(request.basic_username()) if request.basic_username() else None
        body = self._read_json(request, limit)
        return basic_source or self._source_of_key(write_key_of(body)), body

    def _source_of_key(self, key: str | None) -> str:
        source = self.config.sources.by_write_key(key) if key else None
        if source is None:
            self.counters.unauthorized += 1
            # Unknown senders get nothing stored: that would let anyone fill the table.
            raise HttpError(401, "unauthorized",
                            "unknown write key" if key else "no write key: send it as the HTTP Basic username")
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
            what = f"{problem.field}: {problem.reason}" if problem.field else problem.reason
            raise HttpError(400, "invalid_event", what, field=problem.field)
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
            answer["rejected"] = [r.as_json() for r in result.rejected]
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
            self.counters.unauthorized += 1
            self._reject(request, "unknown write key" if q.get("k") else "no write key (k)", "k", None,
                         raw=json.dumps(q))
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
            self._reject(request, f"unknown form {form_id!r}", "formId", None)
            raise HttpError(404, "unknown_form", f"no form {form_id!r} is configured in sources.yaml")
        is_html = request.content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}
        if request.content_type == "multipart/form-data":
            self._reject(request, "multipart forms are not supported", "content-type", form.source)
            raise HttpError(415, "unsupported_media_type",
                            "send the form as application/x-www-form-urlencoded (the HTML default) or JSON")
        if is_html:
            fields: dict[str, Any] = request.form_body()
        else:
            from leadscore.messages import MAX_EVENT_BYTES

            fields = self._read_json(request, MAX_EVENT_BYTES)
            if not isinstance(fields, dict):
                self._reject(request, "the form body must be a JSON object", "body", form.source)
                raise HttpError(400, "invalid_form", "the form body must be a JSON object of fields")
        messages = self._form_messages(form, fields, request)
        received_at = self.clock()
        result = self.collector.collect(messages, source_id=str(form.source), received_at=received_at,
                                        user_agent=request.user_agent)
        self.counters.add(result)
        if result.rejected:
            problem = result.rejected[0]
            field_name = "email" if "email" in problem.field else problem.field
            raise HttpError(400, "invalid_form", f"{field_name}: {problem.reason}", field=field_name)
        if is_html:
            target = form.redirect or request.headers.get("referer")
            if target:
                return redirect_response(target)
        return json_response(200, {"success": True}, self._cors(request, str(form.source)))

    def _form_messages(self, form: Any, fields: dict[str, Any], request: Request) -> list[dict[str, Any]]:
        email = fields.get("email")
        if not isinstance(email, str) or not email.strip():
            self._reject(request, "the form has no email field", "email", form.source, raw=fields)
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
        ids = {k: fields[k] for k in ("userId", "anonymousId") if fields.get(k)}
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
        host = request.headers.get("x-forwarded-host") or request.headers.get("host") or "localhost"
        api_host = f"{host}{_stage_prefix(request)}/v1"
        settings = {
            "integrations": {
                "Segment.io": {
                    "apiKey": key,
                    "apiHost": api_host,
                    "protocol": request.headers.get("x-forwarded-proto", "https"),
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


def _stage_prefix(request: Request) -> str:
    """The part of the path before /v1 (a named stage), so settings point back at this API."""
    prefix = request.path.split("/v1/", 1)[0]
    return prefix.rstrip("/")


def _is_json_sent_as_form(request: Request) -> bool:
    """`curl -d '{...}'` labels JSON as a form: take it when the body is plainly JSON."""
    return request.content_type == "application/x-www-form-urlencoded" and request.body.lstrip()[:1] in (b"{", b"[")
