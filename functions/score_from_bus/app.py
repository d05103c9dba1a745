"""Score from the bus: Segment Spec messages other systems put on the project's bus."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from leadscore.adapters import runtime
from leadscore.adapters.observability import logger, metrics
from leadscore.services.collect import Collector


def _bus_time(value: Any) -> datetime | None:
    """EventBridge's `time`; anything unusable (only a hand-made event has one) is ignored."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


@logger.inject_lambda_context(clear_state=True, log_event=False)  # events carry personal data
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any, collector: Collector | None = None) -> dict[str, Any]:
    config = runtime.config()
    collector = collector or Collector(runtime.store(), config, retention_days=runtime.retention_days())
    source_id = config.sources.bus_source(str(event.get("source") or "unknown"))
    received_at = runtime.now()
    bus_time = _bus_time(event.get("time"))
    if bus_time is not None:
        # the bus's own receipt time, so a redelivery scores with the same timestamps
        received_at = min(received_at, bus_time)
    result = collector.collect([event.get("detail")], source_id=source_id, received_at=received_at)
    for name, value in (("EventsAccepted", result.accepted), ("EventsDuplicate", result.duplicates),
                        ("EventsBot", result.bots), ("EventsRejected", len(result.rejected)),
                        ("EventsErased", len(result.dropped))):
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if result.rejected:
        # Bad input is stored as rejected; raising would only make EventBridge retry it for a day.
        logger.warning("rejected bus event", extra={"id": str(event.get("id"))[:100],
                                                    "field": result.rejected[0].field})
    answer = {"accepted": result.accepted, "duplicates": result.duplicates, "rejected": len(result.rejected)}
    if result.bots:  # judged a bot by its context.userAgent: only a rejected record with the reason
        answer["bots"] = result.bots
    if result.dropped:  # it names an erased contact: dropped, nothing stored (not retried either)
        answer["dropped"] = len(result.dropped)
    return answer
