"""Score from the bus: Segment Spec messages other systems put on the project's bus."""

from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from leadscore import runtime
from leadscore.collect import Collector
from leadscore.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any, collector: Collector | None = None) -> dict[str, Any]:
    config = runtime.config()
    collector = collector or Collector(runtime.store(), config, retention_days=runtime.retention_days())
    source_id = config.sources.bus_source(str(event.get("source") or "unknown"))
    received_at = runtime.now()
    if event.get("time"):
        # the bus's own receipt time, so a redelivery scores with the same timestamps
        received_at = min(received_at, datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00")))
    result = collector.collect([event.get("detail")], source_id=source_id, received_at=received_at)
    for name, value in (("EventsAccepted", result.accepted), ("EventsDuplicate", result.duplicates),
                        ("EventsBot", result.bots), ("EventsRejected", len(result.rejected))):
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if result.rejected:
        # Bad input is stored as rejected; raising would only make EventBridge retry it for a day.
        logger.warning("rejected bus event", extra={"id": event.get("id"), "reason": result.rejected[0].reason})
    return {"accepted": result.accepted, "duplicates": result.duplicates, "rejected": len(result.rejected)}
