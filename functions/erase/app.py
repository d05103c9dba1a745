"""Erase (IAM-authorized): `DELETE /v1/contacts/{contactId}`, and the continuation of an erasure
that ran out of time (an asynchronous invocation of this function by itself)."""

from typing import Any

from leadscore.adapters import runtime
from leadscore.adapters.api.erase import EraseRoutes, SelfInvoke, is_continuation
from leadscore.adapters.http import Request
from leadscore.adapters.observability import logger, metrics
from leadscore.services.erase import EraseService

#: Time kept in hand (ms): a page of deletes and the answer fit in it, with room to spare.
RESERVE_MS = 10_000


@logger.inject_lambda_context(clear_state=True, log_event=False)  # the path names the person
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    routes = EraseRoutes(EraseService(runtime.store(), runtime.config(), clock=runtime.now),
                         out_of_time=lambda: context.get_remaining_time_in_millis() < RESERVE_MS,
                         continuation=SelfInvoke(context.invoked_function_arn))
    if is_continuation(event):
        return routes.resume(event)
    return routes.handle(Request.from_event(event))
