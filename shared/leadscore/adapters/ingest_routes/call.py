"""One request on its way through an ingestion route, and what every route shares: who sent
it (the senders), reading a JSON body within a limit, and keeping refused input.

The rule the senders keep (SECURITY.md, 2): nothing of a request is stored until a key is
known valid. `Call.refuse` only records input once `source_id` is set, and only a sender
or `Call.authorize` sets it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadscore.adapters.http import HttpError, Request, inflate, parse_json
from leadscore.engine.messages import write_key_of
from leadscore.services.collect import Collector, CollectResult

Answer = dict[str, Any]  # an HTTP API (payload 2.0) response

JSON_TYPES = {"", "application/json", "text/plain"}  # analytics.js posts text/plain to skip CORS preflight


@dataclass
class Counters:
    """What a request did, for metrics (the handler publishes them)."""

    accepted: int = 0
    duplicates: int = 0
    bots: int = 0
    rejected: int = 0
    unauthorized: int = 0
    dropped: int = 0  # naming an erased contact: nothing stored
    fields: list[str] = field(default_factory=list)  # what was wrong, by field: safe to log
    bot_matches: list[str] = field(default_factory=list)  # what crawlerdetect matched: safe to log

    def add(self, result: CollectResult) -> None:
        self.accepted += result.accepted
        self.duplicates += result.duplicates
        self.bots += result.bots
        self.bot_matches.extend(result.bot_matches)
        self.rejected += len(result.rejected)
        self.dropped += len(result.dropped)
        self.fields.extend(r.field or "message" for r in result.rejected)


@dataclass
class Call:
    """A request, what its route needs to answer it, and who sent it once a key proved it."""

    request: Request
    collector: Collector
    sources: Any  # config.sources (sources.yaml)
    now: datetime  # one moment for the whole request
    public_url: str | None = None  # PUBLIC_API_URL: where SDKs reach this API (a custom domain)
    counters: Counters = field(default_factory=Counters)
    source_id: str | None = None  # set by a sender or `authorize`, never from unchecked input
    form: Any = None  # the form `POST /v1/forms/{formId}` names (set by its sender)

    def authorize(self, key: str | None, *, where: str = "as the HTTP Basic username") -> str:
        """The source of a write key, which owns the request from now on; else 401."""
        source = self.sources.by_write_key(key) if key else None
        if source is None:
            self.counters.unauthorized += 1
            raise HttpError(401, "unauthorized", "unknown write key" if key else f"no write key: send it {where}",
                            field="authorization")
        self.source_id = str(source.id)
        return self.source_id

    def collect(self, messages: list[Any], **options: Any) -> CollectResult:
        """Collect messages for the sender, counted for metrics. Only once a key proved it."""
        if self.source_id is None:
            raise RuntimeError("nothing is collected before a key proved the sender")
        result = self.collector.collect(messages, source_id=self.source_id, received_at=self.now, **options)
        self.counters.add(result)
        return result

    def refuse(self, problem: HttpError, *, field: str | None = None, raw: Any = None,
               reason: str | None = None) -> HttpError:
        """Keep bad input with its reason (the problem's own unless given), then answer the
        problem. Only for a known sender: without a valid key nothing is stored, or anyone
        could fill the table."""
        if self.source_id is not None:
            field = field or problem.extra.get("field")
            self.counters.rejected += 1
            self.counters.fields.append(field or "body")
            if raw is None:
                raw = self.request.body[:4096].decode("utf-8", "replace")
            self.collector.reject(reason=reason or problem.message, field=field, source_id=self.source_id,
                                  raw=raw, received_at=self.now)
        return problem


# --- senders: who sent a request, resolved before its route reads anything else -------------

Sender = Callable[[Call], None]


def basic_auth(call: Call) -> None:
    """The Segment routes: a write key as HTTP Basic username is checked before the body is
    read (an unknown one is 401). Without one, the route reads the body unrecorded and its
    `writeKey` decides (`authorized_json`)."""
    key = call.request.basic_username()
    if key:
        call.authorize(key)


def beacon_key(call: Call) -> None:
    """RudderStack's `navigator.sendBeacon`, which can send no header: the write key is the
    `writeKey` query parameter, checked before the body is read (unknown: 401)."""
    call.authorize(call.request.query.get("writeKey") or call.request.basic_username(),
                   where="as the writeKey query parameter")


def config_key(call: Call) -> None:
    """RudderStack's source config request: HTTP Basic (rudder-sdk-js v3), else the
    `writeKey` query parameter both versions add. Unknown: 401."""
    call.authorize(call.request.basic_username() or call.request.query.get("writeKey"),
                   where="as the HTTP Basic username or the writeKey query parameter")


def pixel_key(call: Call) -> None:
    """The pixel's `k`. An unknown one is counted, never refused: the GIF goes out anyway,
    and nothing is stored (anyone can request a URL)."""
    key = call.request.query.get("k")
    source = call.sources.by_write_key(key) if key else None
    if source is None:
        call.counters.unauthorized += 1
    else:
        call.source_id = str(source.id)


def form_id(call: Call) -> None:
    """A form's id is its key: an unknown one is 404 and nothing is stored."""
    name = call.request.path_parameters.get("formId", "")
    form = call.sources.form(name)
    if form is None:
        raise HttpError(404, "unknown_form", f"no form {name[:100]!r} is configured in sources.yaml",
                        field="formId")
    call.form = form
    call.source_id = str(form.source)


def settings_key(call: Call) -> None:
    """The write key in the settings path: unknown is 404 (what analytics.js expects)."""
    source = call.sources.by_write_key(call.request.path_parameters.get("writeKey", ""))
    if source is None:
        raise HttpError(404, "unknown_write_key", "no source has this write key")
    call.source_id = str(source.id)


# --- bodies -----------------------------------------------------------------------------------


def read_json(call: Call, limit: int) -> Any:
    """The JSON body within `limit` bytes (inflated); a problem is 4xx naming it, recorded as
    rejected when the sender is known."""
    request = call.request
    if request.content_type not in JSON_TYPES and not _is_json_sent_as_form(request):
        message = f"content type {request.content_type[:100]!r} is not supported; send application/json"
        raise call.refuse(HttpError(415, "unsupported_media_type", message, field="content-type"))
    try:
        body = inflate(request.body, request.headers.get("content-encoding"), limit)
    except HttpError as problem:
        raise call.refuse(problem, field="content-encoding", raw="") from None
    refuse_oversized(call, body, limit, "the body")
    try:
        return parse_json(body)
    except HttpError as problem:
        raise call.refuse(problem, field="body") from None


def refuse_oversized(call: Call, body: bytes, limit: int, what: str) -> None:
    """413 (recorded as rejected when the sender is known) for a body over `limit` bytes."""
    if len(body) > limit:
        message = f"{what} is over {limit // 1024} KB ({len(body)} bytes or more)"
        raise call.refuse(HttpError(413, "payload_too_large", message, field="body"),
                          raw=body[:1024].decode("utf-8", "replace"))


def authorized_json(call: Call, limit: int) -> tuple[str, Any]:
    """(source id, body) of a Segment route: the Basic key's source (checked before the body
    was read), else the body's own `writeKey`, checked only after the body parsed."""

    body = read_json(call, limit)
    return call.source_id or call.authorize(write_key_of(body)), body


def _is_json_sent_as_form(request: Request) -> bool:
    """`curl -d '{...}'` labels JSON as a form: take it when the body is plainly JSON."""
    return request.content_type == "application/x-www-form-urlencoded" and request.body.lstrip()[:1] in (b"{", b"[")
