"""The ingestion API: Segment Tracking API routes, the pixel, forms and analytics.js settings.

`ROUTES` is the whole API: each route key, how its sender is known, and the function that
answers it (in `leadscore.adapters.ingest_routes`, one module per kind of route). `IngestApi.handle`
wraps every route the same way, once:

1. the sender: the route's key (Basic auth, the pixel's `k`, the form id, the settings
   path) resolved before the body is read; nothing is stored until a key is known valid;
2. the route, on a `Call` (the request, the sender, the moment, what it did);
3. an `HttpError` from anywhere below becomes the error envelope (`HttpError.response`);
4. CORS headers on every JSON answer: the sender's own origins once it is known, else any
   source's. The GIF and a form's redirect are for `<img>` and navigation, not scripts;
5. `X-Leadscore-Not-Scored` on any answer to a request judged a bot (by its user agent):
   the hit still gets its GIF, redirect or success, and the header says why it scores
   nothing (the rejected record kept for it says so too).

Besides Segment's documented routes, the table holds what the client libraries really
send (read from their source): analytics.js posts each call to `/v1/<the type's first
letter>` and batches to `/v1/b`; RudderStack's JavaScript SDK beacons batches to
`/beacon/v1/batch?writeKey=` and loads its source config from `/v1/sourceConfig`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadscore.adapters.http import HttpError, Request
from leadscore.adapters.ingest_routes import browser, forms, pixel, segment
from leadscore.adapters.ingest_routes.call import (
    Answer,
    Call,
    Counters,
    Sender,
    basic_auth,
    beacon_key,
    config_key,
    form_id,
    pixel_key,
    settings_key,
)
from leadscore.services.collect import Collector

__all__ = ["ROUTES", "Counters", "IngestApi", "Route"]


@dataclass(frozen=True)
class Route:
    answer: Callable[[Call], Answer]
    sender: Sender | None = None  # who sent the request, resolved before the route reads its body


ROUTES: dict[str, Route] = {
    "POST /v1/track": Route(segment.single("track"), sender=basic_auth),
    "POST /v1/identify": Route(segment.single("identify"), sender=basic_auth),
    "POST /v1/page": Route(segment.single("page"), sender=basic_auth),
    "POST /v1/screen": Route(segment.single("screen"), sender=basic_auth),
    "POST /v1/group": Route(segment.single("group"), sender=basic_auth),
    "POST /v1/alias": Route(segment.single("alias"), sender=basic_auth),
    "POST /v1/batch": Route(segment.batch, sender=basic_auth),
    # analytics.js (@segment/analytics-next): `/v1/` + the type's first letter, `/v1/b` batched
    **{f"POST /v1/{kind[0]}": Route(segment.single(kind), sender=basic_auth) for kind in segment.TYPES},
    "POST /v1/b": Route(segment.batch, sender=basic_auth),
    # RudderStack's JavaScript SDK: batches by navigator.sendBeacon, and its source config
    "POST /beacon/v1/batch": Route(segment.batch, sender=beacon_key),
    "GET /v1/sourceConfig": Route(browser.source_config, sender=config_key),
    "GET /v1/pixel.gif": Route(pixel.pixel, sender=pixel_key),
    "POST /v1/forms/{formId}": Route(forms.submit, sender=form_id),
    "GET /v1/projects/{writeKey}/settings": Route(browser.settings, sender=settings_key),
    "OPTIONS /v1/{proxy+}": Route(browser.preflight),
}


class IngestApi:
    def __init__(self, collector: Collector, config: Any, clock: Callable[[], datetime],
                 public_url: str | None = None) -> None:
        self.collector = collector
        self.config = config
        self.clock = clock
        self.public_url = public_url  # PUBLIC_API_URL: where SDKs reach this API (a custom domain)
        self.counters = Counters()  # what the last request did, for the handler's metrics

    def handle(self, request: Request) -> Answer:
        call = Call(request, self.collector, self.config.sources, self.clock(), public_url=self.public_url)
        self.counters = call.counters
        route = ROUTES.get(request.route)
        try:
            if route is None:
                raise HttpError(404, "not_found", f"no route {request.route}")
            if route.sender is not None:
                route.sender(call)
            answer = route.answer(call)
        except HttpError as problem:
            answer = problem.response()
        return _with_cors(call, _with_bot_reason(call, answer))


NOT_SCORED_HEADER = "x-leadscore-not-scored"


#: The not-scored header's reason for a message naming an erased contact.
ERASED_HEADER_REASON = "erased: the contact asked to be erased; nothing stored"


def _with_bot_reason(call: Call, answer: Answer) -> Answer:
    """Tell the sender why a hit judged a bot scores nothing (the first bot's match), or why
    one naming an erased contact was dropped (the pixel's and a form's only way to say it)."""
    if call.counters.dropped and not call.counters.accepted:
        return {**answer, "headers": {**(answer.get("headers") or {}), NOT_SCORED_HEADER: ERASED_HEADER_REASON}}
    if not call.counters.bot_matches:
        return answer
    match = re.sub(r'[^\x20-\x7e]|"', "?", call.counters.bot_matches[0])[:60]  # a header's text
    reason = f'bot user agent: crawlerdetect matched "{match}"'
    return {**answer, "headers": {**(answer.get("headers") or {}), NOT_SCORED_HEADER: reason}}


def _with_cors(call: Call, answer: Answer) -> Answer:
    headers = answer.get("headers") or {}
    if headers.get("content-type") != "application/json":
        return answer
    return {**answer, "headers": {**headers, **browser.cors(call)}}
