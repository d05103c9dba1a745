"""The outbox stage of the aggregation (outbox.deliver_routed, aggregate_batch's sends) on fakes:
each routed message is sent on its own, always sendable, and one that cannot be sent is parked
alone (issue 21, item 1). A fake queue fails where SQS would, for one account only."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from leadscore.adapters import items
from leadscore.adapters.bus import RoutedQueue
from leadscore.adapters.storage import marshal
from leadscore.adapters.streams import aggregate_stream
from leadscore.domain.records import Account, RoutingStatus
from leadscore.rulesfiles.loading import Config, load_config
from leadscore.services.outbox import (
    MAX_BODY_BYTES,
    SQS_MAX_BYTES,
    RoutedSend,
    SendRefused,
    deliver_routed,
    fit_body,
    sqs_text,
)

from tests.support.fakes import MemoryPublisher, MemoryQueue, MemoryStore

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
REFUSED_BY_SQS = "\ufffe\uffff\ud800"


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config()


def routed(account_id: str, sdr: str, *, name: str | None = None, sequence: str) -> dict[str, Any]:
    """A stream record of `account_id` becoming routed to `sdr` (cycle 1, attempt 1)."""
    before = Account(id=account_id, version=1, state="sdr_ready", cycle=1, name=name or account_id,
                     domain=account_id)
    after = replace(before, version=2, state="routed", sdr={"id": sdr, "name": sdr.title(), "email": None},
                    routing=RoutingStatus(pool="team", territory="na", mode="territory",
                                          routed_at="2026-11-25T12:00:00Z", sla_due_at="2026-11-27T12:00:00Z",
                                          attempt=1, tried=[sdr]))
    new, old = items.account_item(after), items.account_item(before)
    return {"eventName": "MODIFY", "dynamodb": {"SequenceNumber": sequence,
                                                "Keys": marshal(items.key_item(*items.table_key(new))),
                                                "NewImage": marshal(new), "OldImage": marshal(old)}}


class FailingFor(MemoryQueue):
    """The routed queue, failing every send of one account (`error` each time)."""

    def __init__(self, account_id: str, error: Exception | None = None, times: int | None = None) -> None:
        super().__init__()
        self.account_id, self.error, self.times = account_id, error or ConnectionError("timed out"), times
        self.tries: list[str] = []

    def send(self, body: Mapping[str, Any], *, group_id: str, deduplication_id: str) -> None:
        if body.get("accountId") == self.account_id and (self.times is None or self.times > 0):
            self.tries.append(deduplication_id)
            if self.times is not None:
                self.times -= 1
            raise self.error
        super().send(body, group_id=group_id, deduplication_id=deduplication_id)


def batch(store: MemoryStore, config: Config, queue: MemoryQueue, parked: MemoryQueue | None,
          bus: MemoryPublisher) -> Any:
    stream = [routed("acme.com", "ana", sequence="11"), routed("odd.io", "ben", sequence="12"),
              routed("zeta.io", "cy", sequence="13")]
    return aggregate_stream(stream, store=store, config=config, publisher=bus, now=NOW, routed_queue=queue,
                            parked_queue=parked)


class TestEachSendOnItsOwn:
    def test_item1_a_send_failing_for_one_account_parks_it_alone(self, config: Config) -> None:
        # Given a stream batch routing three accounts, and the queue failing for the middle one only
        queue, parked, bus = FailingFor("odd.io"), MemoryQueue(), MemoryPublisher()
        outcome = batch(MemoryStore(), config, queue, parked, bus)
        # Then its neighbours' messages are sent (the one after it too), nothing is reported failed
        assert [(m.body["accountId"], m.group_id) for m in queue.messages] == [("acme.com", "ana"), ("zeta.io", "cy")]
        assert outcome.failed == [] and outcome.parked == ["odd.io"]
        # the batch's bus events are published, the failing account's included (it is routed)
        assert sorted(d["accountId"] for t, d in bus.events if t == "Account Routed") == [
            "acme.com", "odd.io", "zeta.io"]
        # it was tried 3 times, then parked alone: its message, SDR and deduplication id, and why
        assert queue.tries == ["odd.io#1"] * 3
        (envelope,) = parked.messages
        assert (envelope.group_id, envelope.deduplication_id) == ("ben", "odd.io#1")
        body = envelope.body
        assert (body["schema"], body["accountId"], body["cycle"], body["attempt"]) == (
            "routed-send-parked/v1", "odd.io", 1, 1)
        assert body["message"]["sdr"]["id"] == "ben" and body["reason"] == "ConnectionError"
        # a stream retry of the batch parks it again with the same id: the FIFO queue drops it
        batch(MemoryStore(), config, queue, parked, MemoryPublisher())
        assert len(parked.messages) == 1 and len(queue.messages) == 2

    def test_item1_a_transient_failure_is_tried_again_in_the_invocation(self, config: Config) -> None:
        queue, parked = FailingFor("odd.io", times=2), MemoryQueue()
        outcome = batch(MemoryStore(), config, queue, parked, MemoryPublisher())
        assert outcome.failed == [] and outcome.parked == [] and parked.messages == []
        assert [m.body["accountId"] for m in queue.messages] == ["acme.com", "odd.io", "zeta.io"]

    def test_item1_a_message_the_queue_refuses_is_parked_without_trying_again(self, config: Config) -> None:
        queue, parked = FailingFor("odd.io", SendRefused("InvalidMessageContents")), MemoryQueue()
        outcome = batch(MemoryStore(), config, queue, parked, MemoryPublisher())
        assert queue.tries == ["odd.io#1"] and outcome.parked == ["odd.io"]
        assert parked.messages[0].body["reason"] == "SendRefused"

    def test_item1_without_parking_only_the_failing_accounts_record_is_reported(self, config: Config) -> None:
        # no parked queue (or it fails too): the stream retries that account's record, alone
        for parked in (None, MemoryQueue(fail=5)):
            queue, bus = FailingFor("odd.io"), MemoryPublisher()
            outcome = batch(MemoryStore(), config, queue, parked, bus)
            assert outcome.failed == ["12"] and outcome.parked == []
            assert [m.body["accountId"] for m in queue.messages] == ["acme.com", "zeta.io"]
            assert len([t for t, _ in bus.events if t == "Account Routed"]) == 3

    def test_item1_deliver_routed_sends_in_order_and_says_what_it_did(self) -> None:
        sends = [RoutedSend({"accountId": a}, "ana", f"{a}#1", account_id=a, cycle=1) for a in ("a", "b", "c")]
        queue, pauses = FailingFor("b"), []
        delivery = deliver_routed(queue, sends, parking=None, pause=pauses.append)
        assert [s.account_id for s in delivery.sent] == ["a", "c"] and delivery.failed == [sends[1]]
        assert pauses == [0, 1]  # a pause between tries, none after the last


class TestAlwaysSendable:
    def test_item1_characters_sqs_refuses_are_escaped_and_read_back_as_they_were(self) -> None:
        body = {"accountName": f"Acme{REFUSED_BY_SQS}", "contacts": [{"title": "VP\uffff", "email": "jó@acme.com"}]}
        text = sqs_text(body)
        assert not any(c in text for c in REFUSED_BY_SQS)
        assert "\\uffff" in text and "jó" in text  # only what SQS refuses is escaped
        assert json.loads(text) == body

    def test_item1_a_body_over_256_kb_is_trimmed_and_says_so(self) -> None:
        reasons = [{"rule": f"rule_{i}", "points": 1, "contactId": "c" * 200} for i in range(3000)]
        contacts = [{"contactId": f"c{i}", "title": "T" * 100} for i in range(5)]
        body = {"schema": "account-routed/v1", "accountId": "acme.com", "reasons": reasons, "contacts": contacts}
        fitted = fit_body(body)
        size = len(sqs_text(fitted).encode())
        assert MAX_BODY_BYTES - 300 < size <= MAX_BODY_BYTES < SQS_MAX_BYTES
        kept = len(fitted["reasons"])
        assert fitted["reasons"] == reasons[:kept] and fitted["omitted"] == {"reasons": 3000 - kept}
        assert fitted["contacts"] == contacts
        # a body that fits is left as it is
        assert fit_body({"accountId": "a", "reasons": reasons[:3]}) == {"accountId": "a", "reasons": reasons[:3]}

    def test_item1_when_the_lists_are_not_enough_long_text_is_cut(self) -> None:
        body = {"schema": "account-routed/v1", "accountId": "acme.com", "accountName": "N" * 300_000,
                "reasons": [{"rule": "r"}], "contacts": [{"title": "t"}]}
        fitted = fit_body(body)
        assert len(sqs_text(fitted).encode()) <= MAX_BODY_BYTES
        assert fitted["omitted"] == {"reasons": 1, "contacts": 1, "text": 1024}
        assert fitted["accountName"] == "N" * 1024 and fitted["accountId"] == "acme.com"

    def test_item1_the_routed_queue_sends_escaped_text_and_says_when_sqs_refused_it(self) -> None:
        sent: list[dict[str, Any]] = []

        class Client:
            def send_message(self, **kwargs: Any) -> None:
                sent.append(kwargs)
                if "bad" in kwargs["MessageBody"]:
                    raise ClientError({"Error": {"Code": "InvalidMessageContents", "Message": "no"}}, "SendMessage")

        queue = RoutedQueue("https://queue", client=Client())
        queue.send({"title": "VP\uffff"}, group_id="ana", deduplication_id="a#1")
        assert sent[0]["MessageBody"] == '{"title":"VP\\uffff"}'
        with pytest.raises(SendRefused):
            queue.send({"title": "bad"}, group_id="ana", deduplication_id="a#2")
        with pytest.raises(SendRefused):  # over SQS's limit: refused before the call
            queue.send({"title": "x" * SQS_MAX_BYTES}, group_id="ana", deduplication_id="a#3")
        assert len(sent) == 2
