"""Sales feedback (IAM-authorized): accepted, not_ready, disqualified, reset on an account."""

from typing import Any

from leadscore.adapters import runtime
from leadscore.adapters.api.feedback import FeedbackRoutes
from leadscore.adapters.http import Request
from leadscore.adapters.observability import logger, metrics
from leadscore.services.feedback import FeedbackService


@logger.inject_lambda_context(clear_state=True, log_event=False)  # notes may carry personal data
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    service = FeedbackService(runtime.store(), runtime.config().scoring, runtime.routing(), clock=runtime.now)
    return FeedbackRoutes(service).handle(Request.from_event(event))
