"""Route: an `Account SDR Ready` on the bus -> one SDR and one routed message, once per cycle."""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from leadscore.adapters import runtime
from leadscore.adapters.observability import logger, metrics
from leadscore.services.router import Router


@logger.inject_lambda_context(clear_state=True, log_event=False)  # the account's contacts are personal data
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    detail = event.get("detail") or {}
    account_id, cycle = detail.get("accountId"), detail.get("cycle")
    if not isinstance(account_id, str) or not account_id or type(cycle) is not int:
        # retrying cannot help: the event is not what this rule expects
        logger.warning("ignored: detail without accountId and cycle", extra={"detailType": event.get("detail-type")})
        return {"status": "ignored"}
    router = Router(runtime.store(), runtime.config().scoring, runtime.routing(), runtime.now())
    outcome = router.route_ready(account_id, cycle)  # the routed message goes out from the stream
    if outcome.status == "routed":
        metrics.add_metric(name="AccountsRouted", unit=MetricUnit.Count, value=1)
    logger.info("route", extra=asdict(outcome))
    return asdict(outcome)
