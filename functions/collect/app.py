"""Collect: the public ingestion API (Segment Tracking API, pixel, forms, analytics.js settings)."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from leadscore.adapters import runtime
from leadscore.adapters.http import Request, gif_response
from leadscore.adapters.ingest import IngestApi
from leadscore.adapters.observability import logger, metrics
from leadscore.services.collect import Collector


def build_api() -> IngestApi:
    collector = Collector(runtime.store(), runtime.config(), retention_days=runtime.retention_days())
    return IngestApi(collector, runtime.config(), clock=runtime.now, public_url=runtime.public_api_url())


@logger.inject_lambda_context(clear_state=True, log_event=False)  # events carry personal data
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any, api: IngestApi | None = None) -> dict[str, Any]:
    try:
        api = api or build_api()
        response = api.handle(Request.from_event(event))
    except Exception:
        if event.get("routeKey") != "GET /v1/pixel.gif":
            raise
        # Not even a broken deployment may break a page or an email: the GIF goes out.
        logger.exception("pixel hit not recorded")
        return gif_response()
    counters = api.counters
    for name, value in (("EventsAccepted", counters.accepted), ("EventsDuplicate", counters.duplicates),
                        ("EventsBot", counters.bots), ("EventsRejected", counters.rejected),
                        ("RequestsUnauthorized", counters.unauthorized), ("EventsErased", counters.dropped)):
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if counters.bots:
        # the sender still got its GIF, redirect or 200; the log and the rejected item say why
        reason = (response.get("headers") or {}).get("x-leadscore-not-scored") or "bot user agent"
        logger.info("not scored: judged a bot", extra={"route": event.get("routeKey"), "bots": counters.bots,
                                                       "reason": reason[:300]})
    if counters.rejected:
        # field names only: reasons and bodies may carry personal data (kept in the rejected item)
        logger.info("rejected input", extra={"route": event.get("routeKey"), "fields": counters.fields[:10]})
    return response
