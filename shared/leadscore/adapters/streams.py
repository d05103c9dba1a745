"""The table's stream, read: Lambda's DynamoDB stream records as the typed changes the
aggregation folds (`services.aggregate`: an event inserted, a contact changed, an account
changed, each with its sequence number), and the handler's answer under
ReportBatchItemFailures.

Only keys and images are unmarshalled here; the images are decoded into records on demand
(`Change.event()`, `.new()`, `.old()`): an event image once, the old image of a contact or an
account in summary (what a membership or a state change needs of it), an account image in
full only when it is routed (its message's reasons). Records of other item kinds (rejected
inputs, assignments, pool and SDR items, feedback) and removals change no aggregate and are
left out.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import StreamRecord

from leadscore.adapters import items
from leadscore.adapters.table import python_value
from leadscore.domain.events import TrackingEvent
from leadscore.domain.records import Account, Contact, PoisonRecord
from leadscore.services.aggregate import BatchOutcome, aggregate_batch
from leadscore.services.changes import AccountChanged, Change, ContactChanged, EventInserted

logger = logging.getLogger(__name__)
__all__ = ["PoisonBatch", "aggregate_stream", "change_of", "parse_batch", "sequence_of", "stream_response"]
_CHANGED = ("INSERT", "MODIFY")


class PoisonBatch(RuntimeError):
    """Raised by the handler when a poison record heads a batch of several: the function
    error makes Lambda bisect the batch until the poison record is alone."""


def sequence_of(raw: Mapping[str, Any]) -> str:
    """A raw record's sequence number; PoisonRecord when even that is missing (it cannot be
    reported on its own: the caller fails the invocation and Lambda bisects)."""
    try:
        sequence = raw["dynamodb"]["SequenceNumber"]
    except (KeyError, TypeError):
        raise PoisonRecord("a stream record without a sequence number") from None
    if not isinstance(sequence, str | int) or not str(sequence).isdigit():
        raise PoisonRecord("a stream record with a malformed sequence number")
    return str(sequence)


def _event(image: Mapping[str, Any]) -> tuple[TrackingEvent, list[str]]:
    stored = items.decode_event(image)
    return stored.event, stored.hits


def change_of(sequence: str, name: str, keys: tuple[str, str], new: Mapping[str, Any] | None,
              old: Mapping[str, Any] | None) -> Change | None:
    """The change a stream record (its images already unmarshalled) makes, or None when it
    changes no aggregate."""
    if new is None:
        return None
    if name == "INSERT" and items.is_event_key(keys):
        return EventInserted(sequence, items.contact_key_of(keys[0]), lambda: _event(new))
    if name not in _CHANGED:
        return None
    if items.is_contact_key(keys):
        def old_contact() -> Contact | None:
            return items.contact_from_item(old, summary=True) if old else None

        return ContactChanged(sequence, items.contact_key_of(keys[0]), lambda: items.contact_from_item(new),
                              old_contact)
    if items.is_account_key(keys):
        # the folds, the bus events, the books and the history each read the images: decode once
        @functools.cache
        def new_account(full: bool) -> Account:
            return items.account_from_item(new, summary=not full)

        @functools.cache
        def old_account(full: bool = False) -> Account | None:
            return items.account_from_item(old, summary=not full) if old else None

        return AccountChanged(sequence, items.account_id_of(keys[0]), items.is_routed_image(new),
                              new_account, old_account, lambda: old_account(True))
    return None


def _parse(raw: Mapping[str, Any]) -> Change | None:
    sequence = str(raw["dynamodb"]["SequenceNumber"])
    body = StreamRecord(raw["dynamodb"])  # Powertools' record: keys and images deserialized by boto3's rules
    new, old = python_value(body.new_image), python_value(body.old_image)
    return change_of(sequence, raw.get("eventName", ""), items.table_key(body.keys), new or None, old or None)


def parse_batch(raw_records: Iterable[Mapping[str, Any]]) -> tuple[list[Change], list[str]]:
    """The changes of a stream batch, in order, and the sequence numbers of the records that
    do not even parse (poison, alone). PoisonRecord when a record has no sequence number."""
    changes: list[Change] = []
    unparsed: list[str] = []
    for raw in raw_records:
        try:
            change = _parse(raw)
        except Exception as error:  # noqa: BLE001 - a record that does not parse is poison, alone
            unparsed.append(sequence_of(raw))
            logger.error("stream record %s cannot be parsed: %s", unparsed[-1], type(error).__name__)
            continue
        if change is not None:
            changes.append(change)
    return changes, unparsed


def stream_response(raw_records: Sequence[Mapping[str, Any]], outcome: BatchOutcome) -> dict[str, Any]:
    """The handler's answer under ReportBatchItemFailures, so a poison record ends up alone.

    Lambda resumes a stream from the lowest reported sequence number and redelivers
    everything after it; by then the good records after a poison one are applied (below
    their contact's watermark), so redelivering them is a no-op. When the poison record
    heads a batch of several, reporting it again would only send the whole rest of the
    batch to the on-failure destination once retries run out: raise PoisonBatch instead, a
    function error, so Lambda bisects (BisectBatchOnFunctionError) until it is alone.
    """
    if not outcome.failed:
        return {"batchItemFailures": []}
    lowest = outcome.failed[0]
    if lowest in outcome.poison and len(raw_records) > 1 and sequence_of(raw_records[0]) == lowest:
        raise PoisonBatch(f"stream record {lowest} cannot be applied; bisect the batch to isolate it")
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in outcome.failed]}


def aggregate_stream(raw_records: Sequence[Mapping[str, Any]], **wiring: Any) -> BatchOutcome:
    """One stream batch, parsed and aggregated (`services.aggregate.aggregate_batch` with its
    store, config, publisher, clock and queues): what the handler does, for the tools and
    tests that hand in a raw batch."""
    changes, unparsed = parse_batch(raw_records)
    return aggregate_batch(changes, unparsed=unparsed, **wiring)
