"""What goes out: state changes on the project's EventBridge bus (the `ports.Publisher`
port) and routed accounts on the routed SQS FIFO queue (the `ports.MessageQueue` port).
Unit tests use the in-memory fakes of tests/support/fakes.py."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from leadscore.adapters.clients import LazyClient

SOURCE = "leadscore"
_CHUNK = 10  # PutEvents takes at most 10 entries
#: SendMessage errors about the message itself: the same message would be refused again.
_REFUSALS = frozenset({"InvalidMessageContents", "InvalidParameterValue", "MissingParameter",
                       "InvalidParameterCombination"})


class PublishError(Exception):
    """Some entries were refused; the caller retries (consumers dedupe on account + cycle)."""


class BusPublisher:
    client = LazyClient("events")

    def __init__(self, bus_name: str, client: Any = None) -> None:
        self.bus_name = bus_name
        self._client = client

    def publish(self, events: Sequence[tuple[str, dict[str, Any]]], time: datetime | None = None) -> int:
        """Put (detail-type, detail) pairs in chunks of 10; raise if any entry failed.

        `time` stamps the events with the moment the functions saw (the local stack's clock).
        """
        stamp = {"Time": time} if time is not None else {}
        for start in range(0, len(events), _CHUNK):
            entries = [
                {"EventBusName": self.bus_name, "Source": SOURCE, "DetailType": detail_type,
                 "Detail": json.dumps(detail, separators=(",", ":"), default=str), **stamp}
                for detail_type, detail in events[start:start + _CHUNK]
            ]
            answer = self.client.put_events(Entries=entries)
            if answer.get("FailedEntryCount"):
                failed = [e.get("ErrorCode") for e in answer.get("Entries", []) if e.get("ErrorCode")]
                raise PublishError(f"{answer['FailedEntryCount']} events were not published: {failed}")
        return len(events)


class RoutedQueue:
    """The routed SQS FIFO queue: `MessageGroupId` = the SDR's id (their messages in order),
    an explicit `MessageDeduplicationId` (account + cycle, + attempt for re-routes), so a
    retried send within SQS's 5-minute window is dropped by SQS itself. The parked queue
    (routed sends that failed, `ROUTED_PARKED_QUEUE_URL`) is one too."""

    client = LazyClient("sqs")

    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self._client = client

    def send(self, body: Mapping[str, Any], *, group_id: str, deduplication_id: str) -> None:
        """One SendMessage of `body` as JSON SQS accepts (`outbox.sqs_text`: the characters it
        refuses escaped). Raises `outbox.SendRefused` when SQS refuses the message itself
        (retrying cannot help); any other error as it comes (the caller tries again)."""
        from botocore.exceptions import ClientError

        # kept local for cold start: the bus publisher's functions never load the outbox
        from leadscore.services.outbox import SQS_MAX_BYTES, SendRefused, sqs_text

        text = sqs_text(body)
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > SQS_MAX_BYTES:
            raise SendRefused(f"a body of {size} bytes (SQS takes {SQS_MAX_BYTES})")
        try:
            self.client.send_message(QueueUrl=self.queue_url, MessageBody=text, MessageGroupId=group_id,
                                     MessageDeduplicationId=deduplication_id)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _REFUSALS:
                raise SendRefused(error.response["Error"]["Code"]) from error
            raise
