"""Routing pass: on a schedule, route the accounts waiting for an SDR and re-route those whose
SLA ran out (DueIndex query, never a scan)."""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from leadscore.adapters import runtime
from leadscore.adapters.observability import logger, metrics
from leadscore.services.router import Router
from leadscore.services.routing_pass import run_routing_pass


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    router = Router(runtime.store(), runtime.config().scoring, runtime.routing(), runtime.now())
    # Leave a margin before the timeout; accounts not reached stay due for the next run.
    result = run_routing_pass(router, out_of_time=lambda: context.get_remaining_time_in_millis() < 15_000)
    metrics.add_metric(name="AccountsRouted", unit=MetricUnit.Count, value=result.routed)
    metrics.add_metric(name="SlaReroutes", unit=MetricUnit.Count, value=result.rerouted)
    # accounts the pass failed on (each logged with its error, parked an hour; the others went on)
    metrics.add_metric(name="RoutingPassFailures", unit=MetricUnit.Count, value=result.failed)
    logger.info("routing pass", extra=asdict(result))
    return asdict(result)
