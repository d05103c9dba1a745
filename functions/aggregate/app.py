"""Aggregate: the table's stream folds events into contacts, contacts into accounts,
and account changes onto the bus."""

from typing import Any

from leadscore import runtime
from leadscore.aggregate import process_batch
from leadscore.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get("Records") or []
    failed = process_batch(records, store=runtime.store(), config=runtime.config(),
                           publisher=runtime.publisher(), now=runtime.now())
    if failed:
        logger.warning("stream records failed; Lambda retries from the first", extra={"failed": failed[:10]})
    # ReportBatchItemFailures: Lambda retries from the lowest failed sequence number.
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in failed]}
