"""Stream batches given up on and replayed from the failure queue after newer events of the
same contacts, in any order, end where a run without failures ends: no watermark loses an
event (the contact is rebuilt from its stored events), none counts twice.

Two people live the same journey at the same moments, each in an account of their own: one
through a broken aggregation (two rounds go to the failure queue), the other without any
failure. Their contacts and accounts must then read the same, now and after decay."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

import pytest

from local import replay
from tests.integration.conftest import Pipeline, vp_identify

#: (days after the start, messages) of each round; a round is one stream batch
ROUNDS: list[tuple[float, list[tuple[str, dict[str, Any]]]]] = [
    (0, [("page", {"properties": {"path": "/pricing", "url": "https://site.test/pricing"}})]),
    (1, [("track", {"event": "Demo Link Clicked"}), ("track", {"event": "Email Opened"})]),
    (2, [("track", {"event": "Webinar Attended"}), ("track", {"event": "Email Link Clicked"}),
         ("page", {"properties": {"path": "/pricing", "url": "https://site.test/pricing"}})]),
    (3, [("track", {"event": "Case Study Downloaded"}), ("track", {"event": "Email Opened"})]),
    (4, [("track", {"event": "Unsubscribed"}), ("track", {"event": "Email Link Clicked"})]),
]
FAILING_ROUNDS = {1, 2}


def _send_round(pipeline: Pipeline, who: str, domain: str, round_no: int) -> None:
    _, messages = ROUNDS[round_no]
    if round_no == 0:
        pipeline.send("identify", vp_identify(who, f"{who}@{domain}")
                      | {"messageId": f"{who}-id", "anonymousId": f"anon-{who}"})
    for n, (kind, body) in enumerate(messages):
        pipeline.send(kind, {"userId": who, "messageId": f"{who}-{round_no}-{n}", **body})


def _failure_messages(pipeline: Pipeline) -> list[dict[str, Any]]:
    sqs = pipeline.stack.client("sqs")
    url = pipeline.stack.url_of("AggregateFailureQueue")
    found: list[dict[str, Any]] = []
    while True:
        page = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600).get("Messages", [])
        if not page:
            return found
        found += page


def _comparable(answer: dict[str, Any], own_id: str) -> dict[str, Any]:
    """A read answer without what names the person or the account (those differ by design)."""
    text = json.dumps({k: v for k, v in answer.items()
                       if k not in ("contactId", "contactKey", "accountId", "email", "name", "domain", "contacts",
                                    "traits", "updatedAt", "stateSince", "routing", "feedback", "sdr")})
    return json.loads(text.replace(own_id, "<id>"))


@pytest.mark.parametrize("seed", [1, 2])
def test_failure_queue_replays_after_newer_events_end_as_if_nothing_failed(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    module = pipeline.stack.module("AggregateFunction")
    start = pipeline.now

    def broken(*_: Any, **__: Any) -> dict[str, Any]:
        raise RuntimeError("the aggregation is down")

    for round_no, (days, _) in enumerate(ROUNDS):
        pipeline.set_clock(start + timedelta(days=days))
        # the person whose batches fail...
        _send_round(pipeline, "u-failed", "failedco.io", round_no)
        if round_no in FAILING_ROUNDS:
            with monkeypatch.context() as patch:
                patch.setattr(module, "lambda_handler", broken)
                pipeline.stack.pump(raise_errors=False)
        else:
            pipeline.settle()
        # ...and their twin, at the same moment, with no failure at all
        _send_round(pipeline, "u-twin", "twinco.io", round_no)
        pipeline.settle()

    failures = _failure_messages(pipeline)
    assert len(failures) >= len(FAILING_ROUNDS), "each failed round reached the failure queue"
    # the newer rounds were applied meanwhile: without a rebuild, the watermark would skip the old ones
    assert pipeline.contact("u-failed")["engagement"] != pipeline.contact("u-twin")["engagement"]

    # When the failure queue is replayed in a shuffled order, one message at a time (as an
    # operator might, over several attempts)
    sqs = pipeline.stack.client("sqs")
    url = pipeline.stack.url_of("AggregateFailureQueue")
    for message in failures:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    bodies = [message["Body"] for message in failures]
    random.Random(seed).shuffle(bodies)
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
        assert replay.main(["--queue", "AggregateFailureQueue", "--via", "local"]) == 0
        pipeline.settle()

    # Then both read the same, contact and account, now and after the email touches decayed
    for later in (0, 30):
        pipeline.set_clock(start + timedelta(days=ROUNDS[-1][0] + later))
        failed, twin = pipeline.contact("u-failed"), pipeline.contact("u-twin")
        assert _comparable(failed, "u-failed") == _comparable(twin, "u-twin")
        assert failed["engagement"] > 0
        failed_account, twin_account = pipeline.account("failedco.io"), pipeline.account("twinco.io")
        assert _comparable(failed_account, "u-failed") == _comparable(twin_account, "u-twin")

    # And replaying the same batches again changes nothing
    before = pipeline.contact("u-failed")
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    assert replay.main(["--queue", "AggregateFailureQueue", "--via", "local"]) == 0
    pipeline.settle()
    assert pipeline.contact("u-failed") == before
