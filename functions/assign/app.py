"""A team lead's reassignments (IAM-authorized): one account by hand, or an SDR's whole open book."""

from typing import Any

from leadscore.adapters import runtime
from leadscore.adapters.api.assign import AssignRoutes
from leadscore.adapters.http import Request
from leadscore.adapters.observability import logger, metrics
from leadscore.services.assign import AssignService
from leadscore.services.router import Router  # noqa: F401 - its store calls run here (route_by_hand): the template grants them


@logger.inject_lambda_context(clear_state=True, log_event=False)  # notes may carry personal data
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    service = AssignService(runtime.store(), runtime.config().scoring, runtime.routing(), clock=runtime.now)
    return AssignRoutes(service).handle(Request.from_event(event))
