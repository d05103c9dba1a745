"""The team lead's routes (IAM-authorized): who owns what, and pausing an SDR at run time."""

from typing import Any

from leadscore.adapters import runtime
from leadscore.adapters.api.team import TeamRoutes
from leadscore.adapters.http import Request
from leadscore.adapters.observability import logger, metrics
from leadscore.services.team import TeamService


@logger.inject_lambda_context(clear_state=True, log_event=False)  # a pause's reason is free text
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    service = TeamService(runtime.store(), runtime.routing(), clock=runtime.now, publisher=runtime.publisher())
    return TeamRoutes(service).handle(Request.from_event(event))
