"""`make serve` / `python -m local.server`: the stack of template.yaml as a long-running local service.

- moto's server on `http://127.0.0.1:<aws-port>` holds every resource of the template (built by
  `local.stack.TemplateStack` against that endpoint), so any AWS SDK or CLI with
  `AWS_ENDPOINT_URL` pointed there reads the table, puts events on the bus, reads the queues;
- the HTTP API on `http://127.0.0.1:<port>`: the routes of the template's HTTP API (taken from
  the API definition SAM generates, so exactly what would be deployed), each request turned
  into an API Gateway payload 2.0 event and handed to the route's function; the Lambda proxy
  response is written back as API Gateway would. AWS_IAM routes accept unsigned requests
  locally. CORS preflights are answered from the API's CorsConfiguration, and CORS headers
  added to responses as API Gateway does (it ignores the integration's own);
- with `--ingest function-url` (`make serve INGEST=function-url`: the template's
  IngestEndpoint FunctionUrl), the collection routes leave the HTTP API for the collect
  function's Function URL, served on the same port: a request no HTTP API route takes goes
  to the URL's function as a Function URL event (route key `$default`, no path parameters,
  the domain `<url-id>.lambda-url.<region>.on.aws`; local/apigw.py), the function routing
  it by its path; its answer written back as a Function URL does (no CORS of its own);
- the table's stream, the bus rules and the SQS event sources are delivered continuously by a
  background thread (every `--interval` seconds);
- local-only control routes, JSON in and out (never in the template):
    GET  /_local/resources               each logical id: physical name, ARN, URL
    GET  /_local/clock                   the time every function sees
    POST /_local/clock                   {"now": ISO-8601} or {"advance": "P30D" | seconds}
    POST /_local/schedules/{id}/run      run a scheduled function now, at the local clock
    POST /_local/drain                   return once everything caused so far is delivered

The local clock ticks in real time from wherever it was set: `now` moves it to a moment,
`advance` shifts it; every invocation gets it as `LEADSCORE_NOW`. Nothing freezes the process
clock (moto's SQS needs the real one). Invocations are serialized (handlers share the process
environment), which is what makes one process a faithful stand-in for many Lambda containers.

Ctrl-C or SIGTERM stop both servers. `--port 0` / `--aws-port 0` pick free ports; the chosen
ones are printed on the final line, `ready api=http://... aws=http://...`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.util
import json
import logging
import os
import queue
import re
import signal
import socket
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from local.apigw import route_pattern
from local.durations import parse_iso_duration
from local.env import LOCAL_AWS_ENV, UNSET_AWS_ENV, drop_disabled_metrics

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "template.yaml"
DEFAULT_PORT = 3000
DEFAULT_AWS_PORT = 5000
DELIVERY_INTERVAL = 0.2
#: Request bodies above this are refused (API Gateway's HTTP API limit is 10 MB).
MAX_BODY = 10 * 1024 * 1024
#: A Function URL refuses requests above 6 MB (Lambda's synchronous invocation payload).
FUNCTION_URL_MAX_BODY = 6 * 1024 * 1024
#: `--ingest` -> the template's IngestEndpoint
INGEST_ENDPOINTS = {"http-api": "HttpApi", "function-url": "FunctionUrl"}
#: The header the collect function answers a bot's hit with (`leadscore.adapters.ingest.NOT_SCORED_HEADER`):
#: the access log shows it, so a hit from curl says at once why it scored nothing.
NOT_SCORED_HEADER = "x-leadscore-not-scored"

#: The local stack never talks to AWS: fake credentials, one region, no machine config.
SERVER_ENV = {**LOCAL_AWS_ENV, "POWERTOOLS_METRICS_DISABLED": "true"}
# AWS_ENDPOINT_URL is not unset here: the server points it at moto itself.
UNSET_ENV = tuple(name for name in UNSET_AWS_ENV if name != "AWS_ENDPOINT_URL")


# ---------------------------------------------------------------------------- the clock


def parse_duration(value: Any) -> timedelta:
    """A number of seconds, or an ISO-8601 duration of weeks, days, hours, minutes and seconds
    ("P30D", "PT1H30M", "P1DT12H", "-PT5M")."""
    if isinstance(value, bool):
        raise ValueError("advance: give seconds or an ISO-8601 duration such as P30D")
    if isinstance(value, int | float | Decimal):
        return timedelta(seconds=float(value))
    text = str(value).strip()
    with contextlib.suppress(ValueError):
        return timedelta(seconds=float(text))
    delta = parse_iso_duration(text)
    if delta is None:
        raise ValueError(f"advance: {value!r} is neither seconds nor an ISO-8601 duration (P30D, PT2H, P1DT30M)")
    return delta


def parse_moment(value: Any) -> datetime:
    text = str(value).strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"now: {value!r} is not an ISO-8601 time (2026-11-02T09:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class LocalClock:
    """Real time shifted by an offset: it keeps ticking from wherever it was set."""

    def __init__(self, real: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._real = real
        self._offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._real() + self._offset

    def set(self, moment: datetime) -> datetime:
        with self._lock:
            self._offset = moment - self._real()
            return moment

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._offset += delta
            return self._real() + self._offset

    def describe(self) -> dict[str, Any]:
        with self._lock:
            real = self._real()
            offset = self._offset
        return {"now": iso(real + offset), "real": iso(real), "offsetSeconds": offset.total_seconds()}


# ---------------------------------------------------------------------------- routes


@dataclass(frozen=True)
class Route:
    """One route of the template's HTTP API."""

    method: str  # GET, POST, ... or ANY
    path: str  # "/v1/forms/{formId}", or "$default"
    function: str  # logical id of the integration's function
    iam: bool  # AWS_IAM authorization
    api: str  # logical id of the API

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    @property
    def pattern(self) -> re.Pattern[str]:
        if self.path == "$default":
            return re.compile(r"^.*$")
        return route_pattern(self.path)

    @property
    def rank(self) -> tuple[int, int, int, int]:
        """API Gateway's precedence: full literal paths, then fewer variables, greedy last,
        $default last of all; a route's own method before ANY."""
        if self.path == "$default":
            return (3, 0, 0, 1)
        greedy = "+}" in self.path
        variables = self.path.count("{")
        literal = len(re.sub(r"\{[^}]+\}", "", self.path))
        return (2 if greedy else (1 if variables else 0), variables, -literal, int(self.method == "ANY"))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        found = self.pattern.match(path)
        return None if found is None else {k: v for k, v in found.groupdict().items()}


@dataclass
class CorsConfig:
    allow_origins: list[str] = field(default_factory=list)
    allow_methods: list[str] = field(default_factory=list)
    allow_headers: list[str] = field(default_factory=list)
    expose_headers: list[str] = field(default_factory=list)
    max_age: int | None = None
    allow_credentials: bool = False

    @classmethod
    def from_openapi(cls, value: Mapping[str, Any]) -> CorsConfig:
        def strings(key: str) -> list[str]:
            raw = value.get(key) or []
            return [str(v) for v in (raw if isinstance(raw, list) else [raw])]

        max_age = value.get("maxAge")
        return cls(
            allow_origins=strings("allowOrigins"),
            allow_methods=[m.upper() for m in strings("allowMethods")],
            allow_headers=[h.lower() for h in strings("allowHeaders")],
            expose_headers=[h.lower() for h in strings("exposeHeaders")],
            max_age=int(str(max_age)) if max_age not in (None, "") else None,
            allow_credentials=str(value.get("allowCredentials", "")).lower() == "true",
        )

    def origin_allowed(self, origin: str) -> bool:
        for allowed in self.allow_origins:
            if allowed == "*" or allowed.lower() == origin.lower():
                return True
            if allowed.endswith("*") and origin.lower().startswith(allowed[:-1].lower()):
                return True  # "https://*": any https origin
        return False

    def allow_origin_value(self, origin: str) -> str:
        return "*" if "*" in self.allow_origins and not self.allow_credentials else origin

    def response_headers(self, origin: str | None) -> dict[str, str]:
        """The headers API Gateway adds to an integration's response to a CORS request."""
        if not origin or not self.origin_allowed(origin):
            return {}
        headers = {"access-control-allow-origin": self.allow_origin_value(origin)}
        if self.allow_credentials:
            headers["access-control-allow-credentials"] = "true"
        if self.expose_headers:
            headers["access-control-expose-headers"] = ",".join(self.expose_headers)
        return headers

    def preflight_headers(self, origin: str | None, method: str | None) -> dict[str, str]:
        """The headers of API Gateway's own answer to a preflight (origin and method allowed)."""
        if not origin or not method or not self.origin_allowed(origin):
            return {}
        if self.allow_methods and "*" not in self.allow_methods and method.upper() not in self.allow_methods:
            return {}
        headers = {"access-control-allow-origin": self.allow_origin_value(origin)}
        if self.allow_methods:
            headers["access-control-allow-methods"] = ",".join(self.allow_methods)
        if self.allow_headers:
            headers["access-control-allow-headers"] = ",".join(self.allow_headers)
        if self.max_age is not None:
            headers["access-control-max-age"] = str(self.max_age)
        if self.allow_credentials:
            headers["access-control-allow-credentials"] = "true"
        if self.expose_headers:
            headers["access-control-expose-headers"] = ",".join(self.expose_headers)
        return headers


_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
_FUNCTION_ARN = re.compile(r"\$\{(?P<id>[A-Za-z0-9]+)\.Arn\}")


def _integration_function(operation: Mapping[str, Any]) -> str | None:
    uri = (operation.get("x-amazon-apigateway-integration") or {}).get("uri")
    text = json.dumps(uri)
    found = _FUNCTION_ARN.search(text)
    if found:
        return found.group("id")
    found = re.search(r'"Fn::GetAtt":\s*\[\s*"(?P<id>[A-Za-z0-9]+)",\s*"Arn"', text)
    return found.group("id") if found else None


def _is_iam(security: Any) -> bool:
    return any(isinstance(s, Mapping) and "AWS_IAM" in s for s in security or [])


def _conditional(stack: Any, value: Any) -> Any:
    """A value of the template under `Fn::If` as the stack's conditions choose it (None for
    AWS::NoValue): the paths of the HTTP API that only IngestEndpoint HttpApi has."""
    while isinstance(value, Mapping) and set(value) == {"Fn::If"}:
        condition, if_true, if_false = value["Fn::If"]
        value = if_true if stack.conditions.get(condition, True) else if_false
    return None if value == {"Ref": "AWS::NoValue"} else value


def _integration(body: Mapping[str, Any], operation: Mapping[str, Any]) -> Mapping[str, Any]:
    """An operation's integration, followed when it is a `$ref` to the definition's
    `components.x-amazon-apigateway-integrations` (HTTP APIs reuse integrations so)."""
    integration = operation.get("x-amazon-apigateway-integration") or {}
    ref = integration.get("$ref") if isinstance(integration, Mapping) else None
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = body
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, Mapping) else None
        return {"x-amazon-apigateway-integration": target or {}}
    return operation


def http_api_routes(stack: Any) -> tuple[list[Route], dict[str, CorsConfig], dict[str, str]]:
    """(routes sorted by precedence, CORS by API, stage name by API) of every HTTP API of the
    expanded template: the OpenAPI body SAM generates is what API Gateway would serve."""
    routes: list[Route] = []
    cors: dict[str, CorsConfig] = {}
    stages: dict[str, str] = {}
    resources = stack.template["Resources"]
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::ApiGatewayV2::Api":
            continue
        body = (resource.get("Properties") or {}).get("Body") or {}
        default_iam = _is_iam(body.get("security"))
        for path, item in (body.get("paths") or {}).items():
            for key, operation in (_conditional(stack, item) or {}).items():
                method = "ANY" if key == "x-amazon-apigateway-any-method" else key.upper()
                if key != "x-amazon-apigateway-any-method" and key not in _METHODS:
                    continue
                function = _integration_function(_integration(body, operation))
                if function is None:
                    continue
                iam = _is_iam(operation["security"]) if "security" in operation else default_iam
                routes.append(Route(method, path, function, iam, logical_id))
        if body.get("x-amazon-apigateway-cors"):
            cors[logical_id] = CorsConfig.from_openapi(stack._resolve(body["x-amazon-apigateway-cors"]))
    for resource in resources.values():
        if resource.get("Type") == "AWS::ApiGatewayV2::Stage":
            props = resource.get("Properties") or {}
            api = (props.get("ApiId") or {}).get("Ref") if isinstance(props.get("ApiId"), Mapping) else None
            if api:
                stages[api] = str(stack._resolve(props.get("StageName", "$default")))
    routes.sort(key=lambda r: r.rank)
    return routes, cors, stages


def function_urls(stack: Any) -> dict[str, str]:
    """The template's Lambda Function URLs (those its conditions keep): URL -> function."""
    urls: dict[str, str] = {}
    for logical_id, resource in stack.template["Resources"].items():
        if resource.get("Type") != "AWS::Lambda::Url":
            continue
        target = (resource.get("Properties") or {}).get("TargetFunctionArn")
        found = re.search(r'"(?:Fn::GetAtt|Ref)":\s*\[?\s*"(?P<id>[A-Za-z0-9]+)', json.dumps(target))
        if found:
            urls[logical_id] = found.group("id")
    return urls


# ---------------------------------------------------------------------------- the service


class HttpResponse:
    def __init__(self, status: int, headers: Mapping[str, str] | None = None, body: bytes = b"",
                 cookies: list[str] | None = None) -> None:
        self.status = status
        self.headers = dict(headers or {})
        self.body = body
        self.cookies = cookies or []


def json_answer(status: int, body: Any, headers: Mapping[str, str] | None = None) -> HttpResponse:
    data = json.dumps(body, indent=None, default=_json_default).encode()
    return HttpResponse(status, {"content-type": "application/json", **(headers or {})}, data)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


class LocalService:
    """The stack, its clock, its HTTP API routes and the delivery loop (no sockets here)."""

    def __init__(self, stack: Any, clock: LocalClock | None = None, log: Callable[[str], None] | None = None) -> None:
        self.stack = stack
        self.clock = clock or LocalClock()
        self.log = log or (lambda line: None)
        self.lock = threading.RLock()
        self.routes, self.cors, self.stages = http_api_routes(stack)
        #: the Function URL every request no HTTP API route takes goes to: (URL, function)
        self.function_url: tuple[str, str] | None = next(iter(function_urls(stack).items()), None)
        self.totals = {"stream_records": 0, "bus_events": 0, "queue_messages": 0}
        self._errors_reported = 0
        self._errors_drained = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.api_port = 0
        self._install_clock()
        # API destinations post from their own thread: the rate limit's sleeps (a second per
        # Slack message) hold neither the delivery loop nor the HTTP API
        self._api_jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._api_thread: threading.Thread | None = None
        if getattr(stack, "api_destinations", None):
            stack.api_executor = self._api_jobs.put
            stack.dead_letter_lock = self.lock
            self._api_thread = threading.Thread(target=self._post_loop, name="local-api-destinations", daemon=True)
            self._api_thread.start()

    def _post_loop(self) -> None:
        while True:
            job = self._api_jobs.get()
            try:
                if job is None:
                    return
                job()
            except Exception:  # noqa: BLE001 - keep posting; say why one failed
                self.log("!! an API destination post failed:\n" + traceback.format_exc())
            finally:
                self._api_jobs.task_done()

    def _posts_done(self, timeout: float = 600.0) -> bool:
        """Wait (without the lock) until the API destination posts queued so far are done."""
        deadline = time.monotonic() + timeout
        while self._api_jobs.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._api_jobs.unfinished_tasks

    # ------------------------------------------------------------ invocation

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Invoke a function: serialized, with the local clock as its `LEADSCORE_NOW`."""
        return self.stack.invoke(logical_id, event)

    def _install_clock(self) -> None:
        """Every invocation the runner makes (stream, bus, queues, schedules) sees the local clock."""
        original = self.stack.invoke

        def invoke(logical_id: str, event: Any, context: Any = None) -> Any:
            with self.lock:
                os.environ["LEADSCORE_NOW"] = iso(self.clock.now())
                try:
                    return original(logical_id, event, context)
                finally:
                    # metrics are off locally, so Powertools never flushes them: drop what the
                    # handler added, or a long-running server prints them once one reaches 100
                    drop_disabled_metrics()

        self.stack.invoke = invoke

    # ------------------------------------------------------------ delivery

    def deliver_once(self) -> dict[str, int]:
        """One round of delivery: the stream, the buses, the queues."""
        with self.lock:
            counts = {
                "stream_records": self.stack.stream_batches(raise_errors=False),
                "bus_events": len(self.stack.bus_events(raise_errors=False)),
                "queue_messages": self.stack.queue_batches(raise_errors=False),
            }
            for key, value in counts.items():
                self.totals[key] += value
            self._report_errors()
            return counts

    def drain(self, max_rounds: int = 200) -> dict[str, Any]:
        """Deliver until nothing caused so far is left; the counts of what this call delivered."""
        started = time.monotonic()
        with self.lock:
            delivered = {"stream_records": 0, "bus_events": 0, "queue_messages": 0}
            rounds = 0
            while True:
                counts = self.deliver_once()
                if not any(counts.values()):
                    break
                rounds += 1
                for key, value in counts.items():
                    delivered[key] += value
                if rounds >= max_rounds:
                    raise RuntimeError(f"still delivering after {max_rounds} rounds: {delivered}")
            errors = [
                {"function": e.logical_id, "source": e.source, "error": repr(e.error)}
                for e in self.stack.errors[self._errors_drained :]
            ]
            self._errors_drained = len(self.stack.errors)
        posted = self._posts_done()  # API destinations: their dead letters end a path, nothing follows
        return {
            "delivered": {**delivered, "rounds": rounds},
            "totals": dict(self.totals),
            "errors": errors,
            "deadLetters": len(self.stack.dead_letters),
            "seconds": round(time.monotonic() - started, 3),
            **({} if posted else {"postsPending": self._api_jobs.unfinished_tasks}),
        }

    def _report_errors(self) -> None:
        for error in self.stack.errors[self._errors_reported :]:
            self.log(f"!! {error.logical_id} failed on {error.source}: {error.error!r}\n{error.traceback}")
        self._errors_reported = len(self.stack.errors)

    def start_delivery(self, interval: float = DELIVERY_INTERVAL) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.deliver_once()
                except Exception:  # noqa: BLE001 - keep delivering; say why a round failed
                    if not self._stop.is_set():
                        self.log("!! delivery round failed:\n" + traceback.format_exc())

        self._thread = threading.Thread(target=loop, name="local-delivery", daemon=True)
        self._thread.start()

    def stop_delivery(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._api_thread is not None:
            self._api_jobs.put(None)
            self._api_thread.join(timeout=10)

    # ------------------------------------------------------------ schedules

    def schedule_function(self, name: str) -> str | None:
        """The function a schedule name stands for: the function's logical id, its Schedule
        event's name, or the rule's logical id in the expanded template (function + event)."""
        from local.stack import SCHEDULE_EVENT_TYPES

        for spec in self.stack.functions.values():
            schedules = spec.events_of(*SCHEDULE_EVENT_TYPES)
            if schedules and (name == spec.logical_id or name in schedules
                              or any(name == f"{spec.logical_id}{event}" for event in schedules)):
                return str(spec.logical_id)
        return None

    def run_schedule(self, name: str) -> HttpResponse:
        logical_id = self.schedule_function(name)
        if logical_id is None:
            from local.stack import SCHEDULE_EVENT_TYPES

            scheduled = [s.logical_id for s in self.stack.functions.values() if s.events_of(*SCHEDULE_EVENT_TYPES)]
            return json_answer(404, {"error": "unknown_schedule",
                                     "message": f"{name!r} is no scheduled function of the template",
                                     "scheduled": scheduled})
        with self.lock:
            now = self.clock.now()
            try:
                result = self.invoke(logical_id, self.stack.scheduled_event(logical_id, now))
            except Exception as error:  # noqa: BLE001 - the caller sees what the function raised
                self.log(f"!! {logical_id} raised on its schedule:\n{traceback.format_exc()}")
                return json_answer(500, {"function": logical_id, "at": iso(now), "error": repr(error)})
        return json_answer(200, {"function": logical_id, "at": iso(now), "result": result})

    # ------------------------------------------------------------ HTTP

    def control(self, method: str, path: str, body: bytes) -> HttpResponse:
        parts = path.strip("/").split("/")
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError as problem:
            return json_answer(400, {"error": "invalid_json", "message": f"the body is not JSON: {problem}"})
        if not isinstance(payload, dict):
            return json_answer(400, {"error": "invalid_json", "message": "send a JSON object"})
        if parts == ["_local", "resources"] and method == "GET":
            return json_answer(200, self.stack.describe())
        if parts == ["_local", "clock"] and method == "GET":
            return json_answer(200, self.clock.describe())
        if parts == ["_local", "clock"] and method == "POST":
            try:
                if "now" in payload:
                    self.clock.set(parse_moment(payload["now"]))
                if "advance" in payload:
                    self.clock.advance(parse_duration(payload["advance"]))
            except ValueError as problem:
                return json_answer(400, {"error": "invalid_clock", "message": str(problem)})
            if "now" not in payload and "advance" not in payload:
                return json_answer(400, {"error": "invalid_clock",
                                         "message": 'send {"now": ISO-8601} or {"advance": "P30D" | seconds}'})
            return json_answer(200, self.clock.describe())
        if len(parts) == 4 and parts[:2] == ["_local", "schedules"] and parts[3] == "run" and method == "POST":
            return self.run_schedule(unquote(parts[2]))
        if parts == ["_local", "drain"] and method == "POST":
            try:
                return json_answer(200, self.drain())
            except Exception as error:  # noqa: BLE001
                return json_answer(500, {"error": "not_settled", "message": str(error)})
        return json_answer(404, {"error": "not_found", "message": f"no local control route {method} {path}",
                                 "routes": ["GET /_local/resources", "GET /_local/clock", "POST /_local/clock",
                                            "POST /_local/schedules/{logicalId}/run", "POST /_local/drain"]})

    def handle(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
               client_ip: str) -> tuple[HttpResponse, str | None]:
        """Answer one request; also returns the function that handled it (for the access log)."""
        split = urlsplit(target)
        path = unquote(split.path or "/")  # HTTP APIs hand the path over decoded
        if path == "/_local" or path.startswith("/_local/"):
            return self.control(method, path, body), None
        lower: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            lower[key] = f"{lower[key]},{value}" if key in lower else value

        stage, route_path = "$default", path
        for api_stage in self.stages.values():
            if api_stage != "$default" and (path == f"/{api_stage}" or path.startswith(f"/{api_stage}/")):
                stage, route_path = api_stage, path[len(api_stage) + 1 :] or "/"
        found: tuple[Route, dict[str, str]] | None = None
        for route in self.routes:
            params = route.match(method, route_path)
            if params is not None:
                found = (route, params)
                break
        if found is None and self.function_url is not None:
            return self._function_url(method, split, lower, body, client_ip)
        cors = self.cors.get(found[0].api) if found else next(iter(self.cors.values()), None)

        if method == "OPTIONS" and cors is not None and (found is None or found[0].method == "ANY"):
            # API Gateway answers preflights itself when CORS is configured.
            preflight = cors.preflight_headers(lower.get("origin"), lower.get("access-control-request-method"))
            return HttpResponse(204, preflight), None
        if found is None:
            return json_answer(404, {"message": "Not Found"}), None

        route, params = found
        event = self._event(method, split.query, path, lower, body, client_ip, route, params, stage)
        try:
            result = self.invoke(route.function, event)
        except Exception:  # noqa: BLE001 - a crashed integration is a 500 in API Gateway
            self.log(f"!! {route.function} raised on {route.route_key}:\n{traceback.format_exc()}")
            return json_answer(500, {"message": "Internal Server Error"}), route.function
        response = proxy_response(result)
        if cors is not None:
            # API Gateway ignores the integration's CORS headers and adds the configured ones.
            response.headers = {k: v for k, v in response.headers.items()
                                if not k.lower().startswith("access-control-")}
            response.headers.update(cors.response_headers(lower.get("origin")))
        return response, route.function

    def _function_url(self, method: str, split: Any, headers: dict[str, str], body: bytes,
                      client_ip: str) -> tuple[HttpResponse, str | None]:
        """A request to the Function URL: its function invoked with the event a Function URL
        delivers (the path as sent, undecoded), its answer as a Function URL writes it."""
        from local.apigw import as_function_url, http_event

        assert self.function_url is not None
        function = self.function_url[1]
        if len(body) > FUNCTION_URL_MAX_BODY:
            return json_answer(413, {"message": "Request must be smaller than 6291456 bytes"}), function
        hdrs = dict(headers)
        hdrs.setdefault("x-forwarded-for", client_ip)
        hdrs["x-forwarded-proto"] = "http"
        hdrs["x-forwarded-port"] = str(self.api_port)
        user_agent = hdrs.get("user-agent", "")
        event = as_function_url(http_event(
            method, split.path or "/", body=body or None, headers=hdrs, query=split.query, source_ip=client_ip,
            user_agent=user_agent, account_id=self.stack.account_id, region=self.stack.region,
            now=self.clock.now()), region=self.stack.region)
        if not user_agent:
            event["headers"].pop("user-agent", None)
        try:
            result = self.invoke(function, event)
        except Exception:  # noqa: BLE001 - a crashed function is a 502 at a Function URL
            self.log(f"!! {function} raised on {method} {split.path} (Function URL):\n{traceback.format_exc()}")
            return json_answer(502, {"Message": "Internal Server Error"}), function
        return proxy_response(result), function

    def _event(self, method: str, query: str, path: str, headers: dict[str, str], body: bytes, client_ip: str,
               route: Route, params: dict[str, str], stage: str) -> dict[str, Any]:
        from local.apigw import http_event, iam_authorizer

        hdrs = dict(headers)
        hdrs.setdefault("x-forwarded-for", client_ip)
        hdrs["x-forwarded-proto"] = "http"
        hdrs["x-forwarded-port"] = str(self.api_port)
        user_agent = hdrs.get("user-agent", "")
        authorizer = None
        if route.iam:
            authorizer = iam_authorizer(self.stack.account_id, user="local")
            signed = re.search(r"Credential=([^/,\s]+)/", hdrs.get("authorization", ""))
            if signed:
                authorizer["iam"]["accessKey"] = signed.group(1)
        event = http_event(
            method,
            path,
            body=body or None,
            headers=hdrs,
            query=query,
            route_key=route.route_key,
            path_parameters=params or None,
            source_ip=client_ip,
            user_agent=user_agent,
            authorizer=authorizer,
            stage=stage,
            account_id=self.stack.account_id,
            region=self.stack.region,
            now=self.clock.now(),
        )
        if not user_agent:
            event["headers"].pop("user-agent", None)
        return event


def proxy_response(result: Any) -> HttpResponse:
    """A Lambda proxy integration's answer (payload 2.0) as API Gateway turns it into HTTP."""
    if not isinstance(result, Mapping) or "statusCode" not in result:
        # Without a statusCode API Gateway answers 200 with the result as the JSON body.
        data = json.dumps(result, default=_json_default).encode()
        return HttpResponse(200, {"content-type": "application/json"}, data)
    headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(name).lower()] = ",".join(str(v) for v in values)
    raw = result.get("body")
    if raw is None:
        data = b""
    elif result.get("isBase64Encoded"):
        data = base64.b64decode(raw)
    elif isinstance(raw, str):
        data = raw.encode()
    else:
        data = json.dumps(raw, default=_json_default).encode()
    cookies = [str(c) for c in result.get("cookies") or []]
    return HttpResponse(int(result["statusCode"]), headers, data, cookies)


# ---------------------------------------------------------------------------- the HTTP server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "leadscore-local"
    service: LocalService
    quiet: bool = False

    def _serve(self) -> None:
        started = time.monotonic()
        try:
            body = self._read_body()
        except ValueError as problem:
            self._write(json_answer(413 if "large" in str(problem) else 400, {"message": str(problem)}))
            return
        try:
            response, function = self.service.handle(
                self.command, self.path, list(self.headers.items()), body, self.client_address[0]
            )
        except Exception:  # noqa: BLE001 - a bug of the local server must not drop the connection
            self.service.log("!! local server error:\n" + traceback.format_exc())
            response, function = json_answer(500, {"message": "Internal Server Error"}), None
        self._write(response)
        if not self.quiet:
            took = (time.monotonic() - started) * 1000
            target = f" -> {function}" if function else ""
            # why a hit scores nothing although it was answered as usual (a bot's GIF or redirect)
            why = response.headers.get(NOT_SCORED_HEADER)
            note = f"  not scored: {why}" if why else ""
            print(f"{self.command} {self.path} {response.status}{target} {took:.0f} ms{note}", flush=True)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                total += size
                if total > MAX_BODY:
                    raise ValueError("request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length else b""

    def _write(self, response: HttpResponse) -> None:
        self.send_response(response.status, HTTPStatus(response.status).phrase
                           if response.status in HTTPStatus._value2member_map_ else "")
        skip = {"content-length", "transfer-encoding", "connection", "date", "server"}
        for name, value in response.headers.items():
            if name.lower() not in skip:
                self.send_header(name, value)
        for cookie in response.cookies:
            self.send_header("set-cookie", cookie)
        self.send_header("content-length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass  # one access-log line per request is printed by _serve


class LocalApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_api_server(service: LocalService, host: str, port: int, quiet: bool = False) -> LocalApiServer:
    handler = type("Handler", (_Handler,), {"service": service, "quiet": quiet})
    server = LocalApiServer((host, port), handler)
    service.api_port = server.server_address[1]
    return server


# ---------------------------------------------------------------------------- main


def _prepare_environment(aws_url: str) -> None:
    for name in UNSET_ENV:
        os.environ.pop(name, None)
    os.environ.update(SERVER_ENV)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_ENDPOINT_URL"] = aws_url  # any client made in this process talks to moto
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def _port_problem(host: str, port: int) -> str | None:
    """Why `port` cannot be listened on (in use, not allowed), or None."""
    if port == 0:
        return None
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.strerror or str(error)
    return None


def _banner(service: LocalService, api_url: str, aws_url: str, template: Path) -> str:
    lines = [f"leadscore local stack of {template}", "", f"  API           {api_url}",
             f"  AWS endpoint  {aws_url}", "",
             "  Routes (the template's HTTP API):"]
    for route in sorted(service.routes, key=lambda r: (r.path, r.method)):
        auth = "  (AWS_IAM: unsigned accepted locally)" if route.iam else ""
        lines.append(f"    {route.route_key:<40} -> {route.function}{auth}")
    if service.function_url is not None:
        url, function = service.function_url
        lines += ["", f"  Function URL {url} (IngestEndpoint FunctionUrl), on the same port:",
                  f"    {'any other path':<40} -> {function} (Function URL events, routed by path)"]
    lines += ["", "  Resources:"]
    for logical_id, info in service.stack.describe().items():
        what = info.get("url") or info.get("name") or ""
        if info.get("type", "").startswith(("AWS::Serverless::Function", "AWS::Logs", "AWS::IAM")):
            continue
        lines.append(f"    {logical_id:<28} {info.get('type', ''):<34} {what}")
    destinations = getattr(service.stack, "api_destinations", {})
    if destinations:
        lines += ["", "  API destinations (posted by the delivery loop as EventBridge would; the path hidden):"]
        for destination in destinations.values():
            where = urlsplit(destination.endpoint)
            lines.append(f"    {destination.logical_id:<28} {destination.method} {where.scheme}://{where.netloc}/..."
                         f" (at most {destination.rate_per_second:g}/s)")
    lines += [
        "",
        "  Control:  GET /_local/resources   GET|POST /_local/clock   POST /_local/drain",
        "            POST /_local/schedules/{logicalId}/run",
        "",
        "  With the AWS CLI or an SDK:",
        f"    export AWS_ENDPOINT_URL={aws_url} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing"
        " AWS_DEFAULT_REGION=us-east-1 AWS_ACCOUNT_ID_ENDPOINT_MODE=disabled",
        "",
        f"ready api={api_url} aws={aws_url}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address both servers listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", DEFAULT_PORT)),
                        help=f"port of the HTTP API (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--aws-port", type=int, default=int(os.environ.get("AWS_PORT", DEFAULT_AWS_PORT)),
                        help=f"port of the local AWS endpoint, moto (default {DEFAULT_AWS_PORT}; 0 picks a free one)")
    parser.add_argument("--template", type=Path, default=TEMPLATE, help="the SAM template (default template.yaml)")
    parser.add_argument("--stack-name", default="leadscore")
    parser.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE",
                        help="a template parameter override (repeatable)")
    parser.add_argument("--ingest", choices=sorted(INGEST_ENDPOINTS), default="http-api",
                        help="the collection routes' front door: the HTTP API (default) or the collect "
                             "function's Function URL (the template's IngestEndpoint)")
    parser.add_argument("--interval", type=float, default=DELIVERY_INTERVAL,
                        help="seconds between two delivery rounds (default 0.2)")
    parser.add_argument("--function-logs", action="store_true",
                        help="keep the template's POWERTOOLS_LOG_LEVEL (default: WARNING, errors only)")
    parser.add_argument("--quiet", action="store_true", help="no access-log line per request")
    args = parser.parse_args(argv)
    parameters = {}
    for item in args.parameter:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--parameter {item!r}: use KEY=VALUE")
        parameters[key] = value
    parameters.setdefault("IngestEndpoint", INGEST_ENDPOINTS[args.ingest])

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    for flag, port in (("--port", args.port), ("--aws-port", args.aws_port)):
        problem = _port_problem(args.host, port)
        if problem:
            # moto's server thread would die silently and its start() wait forever: say it now.
            print(f"{flag} {port}: {problem} (pick another, or 0 for a free one)", file=sys.stderr)
            return 2

    from moto.server import ThreadedMotoServer

    os.environ.update(SERVER_ENV)  # before anything of boto3 or moto reads the environment
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per moto call
    moto_server = ThreadedMotoServer(ip_address=args.host, port=args.aws_port, verbose=False)
    moto_server.start()
    api_server: LocalApiServer | None = None
    service: LocalService | None = None
    try:
        aws_host, aws_port = moto_server.get_host_and_port()
        aws_url = f"http://{aws_host}:{aws_port}"
        _prepare_environment(aws_url)
        if importlib.util.find_spec("leadscore") is None:  # not installed: use the layer's source
            sys.path.insert(0, str(REPO_ROOT / "shared"))
        from leadscore.adapters import runtime

        from local.stack import TemplateStack

        runtime.reset()
        stack = TemplateStack.create(args.template, stack_name=args.stack_name, endpoint_url=aws_url,
                                     parameters=parameters)
        if not args.function_logs:
            for spec in stack.functions.values():
                spec.environment["POWERTOOLS_LOG_LEVEL"] = "WARNING"
        service = LocalService(stack, log=log)
        api_server = make_api_server(service, args.host, args.port, quiet=args.quiet)
        api_url = f"http://{args.host}:{service.api_port}"
        for spec in stack.functions.values():
            # what the analytics.js settings point SDKs at (PublicApiUrl in the template)
            spec.environment["PUBLIC_API_URL"] = api_url
        threading.Thread(target=api_server.serve_forever, name="local-api", daemon=True).start()
        service.start_delivery(max(args.interval, 0.01))
        print(_banner(service, api_url, aws_url, args.template), flush=True)
        while not stop.wait(0.5):
            pass
        print("stopping", flush=True)
        return 0
    finally:
        if service is not None:
            service.stop_delivery()
        if api_server is not None:
            api_server.shutdown()
            api_server.server_close()
        with contextlib.suppress(Exception):
            moto_server.stop()


if __name__ == "__main__":
    sys.exit(main())
