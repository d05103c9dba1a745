"""What browsers ask for: analytics.js settings, CORS preflights, and the CORS headers that
`leadscore.adapters.ingest` adds to every JSON answer on its way out."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from leadscore.adapters.http import HttpError, Request, json_response
from leadscore.adapters.ingest_routes.call import Answer, Call


def cors(call: Call) -> dict[str, str]:
    """Echo an Origin that `cors_origins` (sources.yaml) allow: the sender's own once it is
    known, else any source's (a preflight, or an answer to a sender not yet known)."""
    origin = call.request.headers.get("origin")
    if not origin:
        return {}
    sources = [call.sources.source(call.source_id)] if call.source_id else list(call.sources.sources)
    for source in sources:
        allowed = getattr(source, "cors_origins", None) or []
        if origin in allowed or "*" in allowed:
            return {"access-control-allow-origin": origin, "access-control-allow-credentials": "true",
                    "vary": "origin"}
    return {}


# Request headers the browser SDKs send (a preflight must allow each one, or the browser
# drops the request): Segment's analytics.js (@segment/analytics-next 1.84) adds
# Authorization and, on a retry, X-Retry-Count; RudderStack's JavaScript SDK (v3 3.34,
# v2 2.52) adds Authorization, AnonymousId, SentAt and its Rsa-* retry headers.
ALLOWED_HEADERS = ("content-type", "authorization", "content-encoding", "x-retry-count", "anonymousid", "sentat",
                   "rsa-recovered", "rsa-retry-attempt", "rsa-since-last-attempt", "rsa-since-first-attempt",
                   "rsa-retry-reason")


def preflight(call: Call) -> Answer:
    """A browser asks before a cross-origin POST: allowed if some source lists the origin
    (the request does not say which source yet; the answer to the POST itself does)."""
    allowed = cors(call)
    if not allowed:
        return HttpError(403, "origin_not_allowed",
                         "this origin is in no source's cors_origins (sources.yaml)").response({"vary": "origin"})
    return {"statusCode": 204, "body": "", "headers": {
        **allowed, "access-control-allow-methods": "GET, POST, OPTIONS",
        "access-control-allow-headers": ", ".join(ALLOWED_HEADERS),
        "access-control-max-age": "600"}}


def settings(call: Call) -> Answer:
    """`GET /v1/projects/{writeKey}/settings`: what analytics.js loads, pointing it back at
    this API (the sender is the path's write key, `call.settings_key`)."""
    protocol, api_host = public_api(call.request, call.public_url)
    body: dict[str, Any] = {
        "integrations": {
            "Segment.io": {
                "apiKey": call.request.path_parameters.get("writeKey", ""),
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
    return json_response(200, body, {"cache-control": "max-age=300"})


def source_config(call: Call) -> Answer:
    """`GET /v1/sourceConfig`: what RudderStack's JavaScript SDK loads before it sends
    anything (its `configUrl` option pointed here): the source, enabled, with no device-mode
    destinations and no stats collection, so events go only to the `dataPlaneUrl` the page
    gave `load()`."""
    source = call.sources.source(call.source_id)
    body = {"isHosted": False, "source": {
        "id": call.source_id,
        "name": getattr(source, "name", None) or call.source_id,
        "writeKey": getattr(source, "write_key", ""),
        "workspaceId": "leadscore",
        "enabled": True,
        "config": {"statsCollection": {"errors": {"enabled": False}, "metrics": {"enabled": False}}},
        "destinations": [],
    }}
    return json_response(200, body, {"cache-control": "max-age=300"})


def public_api(request: Request, public_url: str | None) -> tuple[str, str]:
    """(protocol, host and path of /v1) that SDKs are sent to: the configured public URL,
    else the domain API Gateway answered on. Never a request header such as
    X-Forwarded-Host, which a client sets and a cache would then serve to everyone."""
    if public_url:
        parsed = urlsplit(public_url)
        return parsed.scheme or "https", f"{parsed.netloc}{parsed.path.rstrip('/')}/v1"
    prefix = request.path.split("/v1/", 1)[0].rstrip("/")  # a named stage, so settings point back here
    return "https", f"{request.domain_name or 'localhost'}{prefix}/v1"
