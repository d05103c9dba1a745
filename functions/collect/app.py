"""Collect: the public ingestion API (Segment Tracking API, pixel, forms, analytics.js settings).

Served by the HTTP API (each route's key in the event) or by a Lambda Function URL
(template.yaml's IngestEndpoint): a Function URL hands over every request with the route key
`$default`, so `routed` gives the event the route key and path parameters API Gateway would
have given it, from its method and rawPath, and both front doors answer alike.
"""

import re
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.metrics import MetricUnit
from leadscore.adapters import runtime
from leadscore.adapters.http import Request, gif_response
from leadscore.adapters.ingest import ROUTES, IngestApi
from leadscore.adapters.observability import logger, metrics
from leadscore.services.collect import Collector


def _template(route_key: str) -> tuple[str, re.Pattern[str], str]:
    """(method, pattern, route key) of a route with parameters: `{name}` is one segment,
    `{name+}` the rest of the path, as API Gateway matches them."""
    method, path = route_key.split(" ", 1)
    regex = "".join(
        (f"(?P<{part[1:-2]}>.+)" if part.endswith("+}") else f"(?P<{part[1:-1]}>[^/]+)")
        if part.startswith("{") else re.escape(part)
        for part in re.split(r"(\{[^}]+\})", path)
    )
    return method, re.compile(regex + r"\Z", re.DOTALL), route_key


# API Gateway's precedence: a literal route first (ROUTES' own keys), then by fewer
# parameters, a greedy one last.
_TEMPLATES = sorted((_template(key) for key in ROUTES if "{" in key),
                    key=lambda t: ("+}" in t[2], t[2].count("{"), -len(t[2])))
#: the longest path a route key carries into a 404's message and the logs
_MAX_PATH = 200


def routed(event: dict[str, Any]) -> dict[str, Any]:
    """The event with the route key and path parameters of the route its method and path
    match, when it came through a Function URL (`routeKey` "$default"); as it is otherwise.
    No route: the key "METHOD path", which IngestApi answers 404 naming it."""
    if event.get("routeKey") != "$default":
        return event
    http = (event.get("requestContext") or {}).get("http") or {}
    method = str(http.get("method") or "GET").upper()
    path = str(event.get("rawPath") or http.get("path") or "/")
    literal = f"{method} {unquote(path)}"
    if literal in ROUTES and "{" not in literal:  # "/v1/forms/{formId}" sent as such is no literal route
        return {**event, "routeKey": literal}
    for route_method, pattern, route_key in _TEMPLATES:
        found = pattern.match(path) if route_method == method else None
        if found:
            parameters = {name: unquote(value) for name, value in found.groupdict().items()}
            return {**event, "routeKey": route_key, "pathParameters": parameters}
    return {**event, "routeKey": literal[: len(method) + 1 + _MAX_PATH]}


def build_api() -> IngestApi:
    collector = Collector(runtime.store(), runtime.config(), retention_days=runtime.retention_days())
    return IngestApi(collector, runtime.config(), clock=runtime.now, public_url=runtime.public_api_url())


@logger.inject_lambda_context(clear_state=True, log_event=False)  # events carry personal data
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any, api: IngestApi | None = None) -> dict[str, Any]:
    event = routed(event)
    try:
        api = api or build_api()
        response = api.handle(Request.from_event(event))
    except Exception:
        if event.get("routeKey") != "GET /v1/pixel.gif":
            raise
        # Not even a broken deployment may break a page or an email: the GIF goes out.
        logger.exception("pixel hit not recorded")
        return gif_response()
    counters = api.counters
    for name, value in (("EventsAccepted", counters.accepted), ("EventsDuplicate", counters.duplicates),
                        ("EventsBot", counters.bots), ("EventsRejected", counters.rejected),
                        ("RequestsUnauthorized", counters.unauthorized), ("EventsErased", counters.dropped)):
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if counters.bots:
        # the sender still got its GIF, redirect or 200; the log and the rejected item say why
        reason = (response.get("headers") or {}).get("x-leadscore-not-scored") or "bot user agent"
        logger.info("not scored: judged a bot", extra={"route": event.get("routeKey"), "bots": counters.bots,
                                                       "reason": reason[:300]})
    if counters.rejected:
        # field names only: reasons and bodies may carry personal data (kept in the rejected item)
        logger.info("rejected input", extra={"route": event.get("routeKey"), "fields": counters.fields[:10]})
    return response
