"""Erase (IAM-authorized): `DELETE /v1/contacts/{contactId}`, and the continuation of an erasure
that ran out of time (an asynchronous invocation of this function by itself)."""

import time
from typing import Any

from leadscore.adapters import runtime
from leadscore.adapters.api.erase import EraseRoutes, SelfInvoke, is_continuation
from leadscore.adapters.http import Request
from leadscore.adapters.observability import logger, metrics
from leadscore.services.erase import EraseService

#: Time kept in hand (ms): a page of deletes and the answer fit in it, with room to spare.
RESERVE_MS = 10_000
#: An HTTP request's own budget (s): API Gateway's HTTP API waits 30 s at most for an answer,
#: so a request hands the rest to its continuation well before, whatever the function's timeout.
HTTP_SECONDS = 20


@logger.inject_lambda_context(clear_state=True, log_event=False)  # the path names the person
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    started, continuing = time.monotonic(), is_continuation(event)

    def out_of_time() -> bool:
        return context.get_remaining_time_in_millis() < RESERVE_MS or (
            not continuing and time.monotonic() - started > HTTP_SECONDS)

    routes = EraseRoutes(EraseService(runtime.store(), runtime.config(), clock=runtime.now),
                         out_of_time=out_of_time, continuation=SelfInvoke(context.function_name))
    if continuing:
        return routes.resume(event)
    return routes.handle(Request.from_event(event))
