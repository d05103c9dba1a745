"""The Segment Tracking API: `POST /v1/<type>` for one message, `POST /v1/batch` for many.

The sender is the Basic-auth key (checked before the body is read, `call.basic_auth`) or
the body's `writeKey`. Server-side senders (curl, SDKs) are not judged bots by their HTTP
client: only a message's own `context.userAgent` counts.

The same answers serve analytics.js's short routes (`/v1/t` ... `/v1/b`) and RudderStack's
beacon batches, whose bodies are the same Segment Spec messages (`leadscore.adapters.ingest.ROUTES`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from leadscore.adapters.http import HttpError, json_response
from leadscore.adapters.ingest_routes.call import Answer, Call, authorized_json
from leadscore.domain.events import InvalidMessage
from leadscore.engine.messages import MAX_BATCH_BYTES, MAX_EVENT_BYTES, batch_messages

MAX_LISTED_REJECTIONS = 100  # a batch answer lists this many rejected messages, then counts
TYPES = ("track", "identify", "page", "screen", "group", "alias")  # one route each


def single(message_type: str) -> Callable[[Call], Answer]:
    """The route of one message type: `200 {"success": true}`, or 400 naming the field."""

    def answer(call: Call) -> Answer:

        _, body = authorized_json(call, MAX_EVENT_BYTES)
        result = call.collect([body], expected_type=message_type)
        if result.rejected:  # the collector kept it as rejected
            problem = result.rejected[0]
            field_name = problem.field or "body"
            raise HttpError(400, "invalid_event", f"{field_name}: {problem.reason}", field=field_name)
        if result.dropped:  # it names an erased contact: success (an SDK must not retry it), and why
            return json_response(200, {"success": True, "dropped": [d.as_json() for d in result.dropped]})
        return json_response(200, {"success": True})

    answer.__name__ = answer.__qualname__ = message_type
    return answer


def batch(call: Call) -> Answer:
    """Many messages: each bad one is rejected alone and named by its index, the rest stored."""

    _, body = authorized_json(call, MAX_BATCH_BYTES)
    try:
        messages = batch_messages(body)
    except InvalidMessage as problem:
        raise call.refuse(HttpError(400, "invalid_batch", str(problem), field=problem.field),
                          reason=problem.reason) from None
    result = call.collect(messages, indexed=True)
    answer: dict[str, Any] = {"success": True, "accepted": result.accepted, "duplicates": result.duplicates}
    if result.rejected:
        # the answer stays small however many were rejected: the first ones and a count
        answer["rejected"] = [r.as_json() for r in result.rejected[:MAX_LISTED_REJECTIONS]]
        answer["rejectedCount"] = len(result.rejected)
    if result.dropped:
        # naming an erased contact: dropped, nothing stored; listed like the rejections
        answer["dropped"] = [d.as_json() for d in result.dropped[:MAX_LISTED_REJECTIONS]]
        answer["droppedCount"] = len(result.dropped)
    if result.bots:
        answer["bots"] = result.bots  # judged bots by their user agent: recorded, never scored
    return json_response(200, answer)
