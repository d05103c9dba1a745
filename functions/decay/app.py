"""Decay: on a schedule, re-value contacts whose decaying touches are due."""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from leadscore.adapters import runtime
from leadscore.adapters.observability import logger, metrics
from leadscore.services.decay import run_decay


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # Leave a margin before the timeout; contacts not reached stay due for the next run.
    result = run_decay(runtime.store(), runtime.config(), runtime.now(),
                       out_of_time=lambda: context.get_remaining_time_in_millis() < 15_000)
    metrics.add_metric(name="ContactsDecayed", unit=MetricUnit.Count, value=result.written)
    logger.info("decay run", extra=asdict(result))
    return asdict(result)
