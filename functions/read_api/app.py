"""Read API (IAM-authorized): explain an account's or a contact's score as of now."""

from typing import Any

from leadscore.adapters import runtime
from leadscore.adapters.api.read import ReadRoutes
from leadscore.adapters.http import Request
from leadscore.adapters.observability import logger, metrics
from leadscore.services.read import ReadService


@logger.inject_lambda_context(clear_state=True, log_event=False)  # events carry personal data
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    routes = ReadRoutes(ReadService(runtime.store(), runtime.config(), clock=runtime.now))
    return routes.handle(Request.from_event(event))
