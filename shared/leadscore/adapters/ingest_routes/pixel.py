"""`GET /v1/pixel.gif`: a tracking pixel in a page or an email.

Query: `k` write key (the sender, `call.pixel_key`), `e` event name (default a page view),
`uid` / `aid` user or anonymous id, `url`, `ref`, `mid` message id, `p.<name>` properties.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from leadscore.adapters.http import Request, gif_response
from leadscore.adapters.ingest_routes.call import Answer, Call

logger = logging.getLogger(__name__)

PAGE_VIEW_NAMES = {"page", "page viewed", "pageview"}


def pixel(call: Call) -> Answer:
    """Always the GIF: a broken pixel must never break a page or an email. A hit with an
    unknown key stores nothing; a bad hit with a known one is recorded as rejected."""
    if call.source_id is not None:
        try:
            call.collect([hit_message(call.request, call.now)], user_agent=call.request.user_agent)
        except Exception:  # noqa: BLE001 - the GIF goes out whatever happened; the cause is logged
            logger.exception("pixel hit could not be recorded")
    return gif_response()


def hit_message(request: Request, received_at: datetime) -> dict[str, Any]:
    """The Segment message a pixel hit stands for."""
    q = request.query
    name = (q.get("e") or "").strip()
    message: dict[str, Any] = {"timestamp": received_at.isoformat()}
    if not name or name.lower() in PAGE_VIEW_NAMES:
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
    return message
