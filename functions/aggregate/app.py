"""Aggregate: the table's stream folds events into contacts, contacts into accounts,
account changes onto the bus, and routed accounts onto the routed queue (the routing
transaction is the outbox)."""

from typing import Any

from leadscore.adapters import runtime
from leadscore.adapters.observability import logger, metrics
from leadscore.adapters.streams import parse_batch, stream_response
from leadscore.services.aggregate import aggregate_batch


@logger.inject_lambda_context(clear_state=True, log_event=False)  # events carry personal data
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get("Records") or []
    changes, unparsed = parse_batch(records)
    outcome = aggregate_batch(changes, unparsed=unparsed, store=runtime.store(), config=runtime.config(),
                              publisher=runtime.publisher(), now=runtime.now(), routed_queue=runtime.routed_queue(),
                              parked_queue=runtime.parked_queue(), book_store=runtime.store(),
                              history_store=runtime.store(), retention_days=runtime.retention_days())
    if outcome.parked:
        logger.error("routed messages parked (make replay QUEUE=RoutedParkedQueue)",
                     extra={"parked": outcome.parked[:10]})
    if outcome.failed:
        logger.warning("stream records failed; Lambda retries from the first",
                       extra={"failed": outcome.failed[:10], "poison": outcome.poison[:10]})
    # ReportBatchItemFailures: Lambda retries from the lowest failed sequence number; a poison
    # record heading a batch of several raises instead, so that Lambda bisects the batch.
    return stream_response(records, outcome)
