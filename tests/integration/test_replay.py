"""`python -m local.replay`: every failure destination of the template, replayed on moto.

Messages are shaped as AWS writes them: the EventBridge event itself in a rule's DLQ,
Lambda's invocation record in an asynchronous OnFailure destination, DDBStreamBatchInfo
in a stream mapping's OnFailure destination (the local stack produces the last two)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from local import replay
from tests.integration.conftest import Pipeline

SOURCE = "com.example.product"  # sources.yaml maps it to the product source


def _tracking_event(pipeline: Pipeline, user_id: str, message_id: str, event: str = "Webinar Attended") -> dict:
    """A "Tracking Event" as EventBridge passes it on (and writes it to a rule's DLQ)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Tracking Event",
        "source": SOURCE,
        "account": pipeline.stack.account_id,
        "time": pipeline.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [],
        "detail": {"type": "track", "userId": user_id, "event": event, "messageId": message_id},
    }


def _dead_letter(pipeline: Pipeline, queue: str, event: dict[str, Any]) -> None:
    """What EventBridge sends to a target's DLQ: the event, and why in message attributes."""
    stack = pipeline.stack
    rule = stack.resources["ScoreFromBusFunctionTrackingEvent"]["arn"]
    stack.client("sqs").send_message(
        QueueUrl=stack.url_of(queue), MessageBody=json.dumps(event),
        MessageAttributes={
            "ERROR_CODE": {"DataType": "String", "StringValue": "SDK_CLIENT_ERROR"},
            "ERROR_MESSAGE": {"DataType": "String", "StringValue": "Lambda throttled the invocation"},
            "RULE_ARN": {"DataType": "String", "StringValue": rule},
            "TARGET_ARN": {"DataType": "String", "StringValue": stack.functions["ScoreFromBusFunction"].arn},
        })


def _messages(pipeline: Pipeline, queue: str) -> list[dict[str, Any]]:
    sqs = pipeline.stack.client("sqs")
    found = sqs.receive_message(QueueUrl=pipeline.stack.url_of(queue), MaxNumberOfMessages=10,
                                VisibilityTimeout=1).get("Messages", [])
    for message in found:  # put back: only looking
        sqs.change_message_visibility(QueueUrl=pipeline.stack.url_of(queue),
                                      ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return found


def _stored_events(pipeline: Pipeline, user_id: str) -> list[dict[str, Any]]:
    return [i for i in pipeline.table_items() if i["pk"] == f"C#u:{user_id}" and i["sk"].startswith("E#")]


def _replay(*args: str) -> int:
    return replay.main(["--queue", *args, "--via", "local"])


class TestBusDeadLetters:
    def test_a_dead_lettered_event_is_scored_once_and_leaves_the_queue(self, pipeline: Pipeline) -> None:
        # Given a tracking event EventBridge could not deliver
        _dead_letter(pipeline, "BusDeadLetterQueue", _tracking_event(pipeline, "u-dlq", "dlq-1"))
        # When it is replayed
        assert _replay("BusDeadLetterQueue") == 0
        pipeline.settle()
        # Then it is scored, once, and the queue is empty
        assert pipeline.contact("u-dlq")["engagement"] == 20
        assert len(_stored_events(pipeline, "u-dlq")) == 1
        assert _messages(pipeline, "BusDeadLetterQueue") == []

    def test_replaying_the_same_event_twice_still_scores_it_once(self, pipeline: Pipeline) -> None:
        event = _tracking_event(pipeline, "u-twice", "dlq-2")
        for _ in range(2):  # the DLQ got it twice, or someone replays again
            _dead_letter(pipeline, "BusDeadLetterQueue", event)
            assert _replay("BusDeadLetterQueue") == 0
            pipeline.settle()
        assert pipeline.contact("u-twice")["engagement"] == 20
        assert len(_stored_events(pipeline, "u-twice")) == 1

    def test_an_event_scored_after_all_changes_nothing_when_replayed(self, pipeline: Pipeline) -> None:
        # the event reached the function on a later retry, and also landed in the DLQ
        event = _tracking_event(pipeline, "u-late", "dlq-3")
        pipeline.stack.put_event("Tracking Event", event["detail"], source=SOURCE)
        pipeline.settle()
        _dead_letter(pipeline, "BusDeadLetterQueue", event)
        assert _replay("BusDeadLetterQueue") == 0
        pipeline.settle()
        assert pipeline.contact("u-late")["engagement"] == 20
        assert len(_stored_events(pipeline, "u-late")) == 1

    def test_a_dry_run_changes_nothing(self, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
        _dead_letter(pipeline, "BusDeadLetterQueue", _tracking_event(pipeline, "u-dry", "dlq-4"))
        assert replay.main(["--queue", pipeline.stack.url_of("BusDeadLetterQueue"), "--dry-run"]) == 0
        assert "would replay" in capsys.readouterr().out
        assert pipeline.settle()["bus_events"] == 0
        assert len(_messages(pipeline, "BusDeadLetterQueue")) == 1

    def test_a_message_it_cannot_replay_stays_and_fails_the_run(self, pipeline: Pipeline) -> None:
        pipeline.stack.client("sqs").send_message(QueueUrl=pipeline.stack.url_of("BusDeadLetterQueue"),
                                                  MessageBody=json.dumps({"something": "else"}))
        assert _replay("BusDeadLetterQueue") == 1
        assert len(_messages(pipeline, "BusDeadLetterQueue")) == 1


class TestFunctionFailures:
    def test_scoring_failures_land_in_the_on_failure_queue_and_replay(
            self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
        # Given the scoring function fails on every try (Lambda retries an async invoke twice)
        module = pipeline.stack.module("ScoreFromBusFunction")

        def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
            raise RuntimeError("the table is unreachable")

        with monkeypatch.context() as patch:
            patch.setattr(module, "lambda_handler", broken)
            pipeline.stack.put_event("Tracking Event", _tracking_event(pipeline, "u-fail", "f-1")["detail"],
                                     source=SOURCE)
            pipeline.stack.pump(raise_errors=False)
        (record,) = [json.loads(m["Body"]) for m in _messages(pipeline, "ScoreFromBusFailureQueue")]
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 3
        assert record["requestPayload"]["detail"]["messageId"] == "f-1"
        # When it works again and the queue is replayed
        assert _replay("ScoreFromBusFailureQueue") == 0
        pipeline.settle()
        # Then the event is scored once
        assert pipeline.contact("u-fail")["engagement"] == 20
        assert len(_stored_events(pipeline, "u-fail")) == 1
        assert _messages(pipeline, "ScoreFromBusFailureQueue") == []

    def test_a_stream_batch_given_up_on_is_read_back_and_aggregated(
            self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
        # Given the aggregation fails on every try of a batch
        module = pipeline.stack.module("AggregateFunction")

        def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
            raise RuntimeError("cannot aggregate")

        with monkeypatch.context() as patch:
            patch.setattr(module, "lambda_handler", broken)
            pipeline.send("track", {"userId": "u-stream", "event": "Demo Requested", "messageId": "s-1"})
            pipeline.stack.pump(raise_errors=False)
        (failure,) = [json.loads(m["Body"]) for m in _messages(pipeline, "AggregateFailureQueue")]
        assert failure["DDBStreamBatchInfo"]["batchSize"] == 1
        status, _ = pipeline.read("/v1/contacts/u-stream")
        assert status == 404
        # When it works again and the failure queue is replayed (within the stream's 24 hours)
        assert _replay("AggregateFailureQueue") == 0
        pipeline.settle()
        # Then the contact and its account are scored, once
        assert pipeline.contact("u-stream")["engagement"] == 50
        assert _messages(pipeline, "AggregateFailureQueue") == []
        assert _replay("AggregateFailureQueue") == 0  # nothing left: nothing done
        assert pipeline.contact("u-stream")["engagement"] == 50

    def test_a_stream_range_no_longer_in_the_stream_stays_in_the_queue(self, pipeline: Pipeline) -> None:
        arn = pipeline.stack.resources["Table"]["stream_arn"]
        shard = pipeline.stack.client("dynamodbstreams").describe_stream(StreamArn=arn)[
            "StreamDescription"]["Shards"][0]["ShardId"]
        body = {"DDBStreamBatchInfo": {"shardId": shard, "startSequenceNumber": "900000000000000000000",
                                       "endSequenceNumber": "900000000000000000001", "batchSize": 2,
                                       "streamArn": arn}}
        pipeline.stack.client("sqs").send_message(QueueUrl=pipeline.stack.url_of("AggregateFailureQueue"),
                                                  MessageBody=json.dumps(body))
        assert _replay("AggregateFailureQueue") == 1
        assert len(_messages(pipeline, "AggregateFailureQueue")) == 1

    def test_a_failed_decay_run_is_run_again(self, pipeline: Pipeline,
                                             capsys: pytest.CaptureFixture[str]) -> None:
        # Given an email touch that decays, and a decay run that failed (Lambda's record)
        pipeline.send("track", {"userId": "u-decay", "event": "Email Opened", "messageId": "d-1"})
        pipeline.settle()
        scheduled = pipeline.stack.scheduled_event("DecayFunction", pipeline.now)
        record = {"version": "1.0", "requestContext": {"condition": "RetriesExhausted"},
                  "requestPayload": scheduled, "responseContext": {"functionError": "Unhandled"}}
        pipeline.stack.client("sqs").send_message(QueueUrl=pipeline.stack.url_of("DecayDeadLetterQueue"),
                                                  MessageBody=json.dumps(record))
        # When it is replayed
        assert _replay("DecayDeadLetterQueue") == 0
        # Then the decay job ran and the message is gone
        assert "decay run" in capsys.readouterr().out
        assert _messages(pipeline, "DecayDeadLetterQueue") == []


    def test_a_failed_routing_pass_is_run_again(self, pipeline: Pipeline,
                                                capsys: pytest.CaptureFixture[str]) -> None:
        scheduled = pipeline.stack.scheduled_event("RoutingPassFunction", pipeline.now)
        record = {"version": "1.0", "requestContext": {"condition": "RetriesExhausted"},
                  "requestPayload": scheduled, "responseContext": {"functionError": "Unhandled"}}
        pipeline.stack.client("sqs").send_message(QueueUrl=pipeline.stack.url_of("RoutingPassDeadLetterQueue"),
                                                  MessageBody=json.dumps(record))
        assert _replay("RoutingPassDeadLetterQueue") == 0
        assert "RoutingPassFunction" in capsys.readouterr().out
        assert _messages(pipeline, "RoutingPassDeadLetterQueue") == []


def test_classify_knows_every_shape() -> None:
    event = {"detail-type": "Tracking Event", "detail": {}}
    assert replay.classify(event) == ("tracking", event)
    assert replay.classify({"requestContext": {}, "requestPayload": event}) == ("tracking", event)
    scheduled = {"detail-type": "Scheduled Event"}
    assert replay.classify({"requestContext": {}, "requestPayload": scheduled}) == ("decay", scheduled)
    assert replay.classify(scheduled)[0] == "decay"
    assert replay.classify({"DDBStreamBatchInfo": {"shardId": "s"}}) == ("stream", {"shardId": "s"})
    ready = {"detail-type": "Account SDR Ready", "detail": {"accountId": "acme.com"}}
    assert replay.classify({"requestContext": {}, "requestPayload": ready}) == ("route", ready)
    routing_pass = {"detail-type": "Scheduled Event",
                    "resources": ["arn:aws:events:us-east-1:123456789012:rule/leadscore-RoutingPassFunctionSchedule"]}
    assert replay.classify(routing_pass) == ("routing_pass", routing_pass)
    with pytest.raises(replay.ReplayError):
        replay.classify({"requestContext": {}, "requestPayload": {"Records": []}})
