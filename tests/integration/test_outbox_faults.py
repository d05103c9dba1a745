"""The outbox under faults, on the stack of template.yaml (moto): a routed message SQS would
refuse, a send that keeps failing for one account, what `make replay` does with parked sends
and with the routed DLQ (issue 21, items 1 and 15)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local import replay
from local.stack import load_template
from tests.integration.conftest import Pipeline
from tests.integration.test_route_flow import qualify, routed_messages

NONCHARACTER = "\uffff"


def _queue_bodies(pipeline: Pipeline, queue: str) -> list[dict[str, Any]]:
    """What a queue holds, received (with its FIFO attributes) and put back."""
    sqs, url = pipeline.stack.client("sqs"), pipeline.stack.url_of(queue)
    found = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=1,
                                AttributeNames=["All"]).get("Messages", [])
    for message in found:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return found


def _replay(*args: str) -> int:
    return replay.main(["--queue", *args, "--via", "local"])


def _qualify_odd(pipeline: Pipeline, domain: str = "oddco.io") -> None:
    """`qualify`'s account, whose contact's title and company name carry U+FFFF / U+FFFE."""
    user = f"u-0-{domain}"
    company = {"name": f"Odd{NONCHARACTER}\ufffe Co", "website": f"https://www.{domain}", "industry": "Software",
               "employees": 200, "address": {"country": "US"}}
    batch = [
        {"type": "identify", "userId": user, "traits": {"email": f"vp0@{domain}", "name": "Vp 0",
                                                        "title": f"VP Sales{NONCHARACTER}",
                                                        "address": {"country": "US"}}},
        {"type": "group", "userId": user, "groupId": domain, "traits": company},
        {"type": "track", "userId": user, "event": "Demo Requested"},
        {"type": "track", "userId": user, "event": "Demo Link Clicked"},
    ]
    stamped = [{**m, "timestamp": pipeline.now.isoformat(), "messageId": f"{user}-{i}"} for i, m in enumerate(batch)]
    response = pipeline.http("POST", "/v1/batch", body={"batch": stamped}, basic_user="wk_demo_website")
    assert response["statusCode"] == 200, response


class TestTheLocalStackRefusesWhatSqsRefuses:
    def test_item1_the_local_stack_refuses_what_sqs_refuses(self, pipeline: Pipeline) -> None:
        sqs, url = pipeline.stack.client("sqs"), pipeline.stack.url_of("RoutedQueue")
        fifo = {"MessageGroupId": "maya", "MessageDeduplicationId": "x#1"}
        # a noncharacter (what a contact's title or an account name can carry)
        with pytest.raises(ClientError) as refused:
            sqs.send_message(QueueUrl=url, MessageBody=f'{{"title":"VP{NONCHARACTER}"}}', **fifo)
        assert refused.value.response["Error"]["Code"] == "InvalidMessageContents"
        assert "#xFFFF" in refused.value.response["Error"]["Message"]
        # over 256 KB in UTF-8 bytes, though under it in characters
        with pytest.raises(ClientError) as too_big:
            sqs.send_message(QueueUrl=url, MessageBody="é" * 140_000, **fifo)
        assert too_big.value.response["Error"]["Code"] == "InvalidParameterValue"
        assert "262144" in too_big.value.response["Error"]["Message"]
        # what SQS takes, it takes: the edges of the allowed set, and 256 KB exactly
        sqs.send_message(QueueUrl=url, MessageBody="\t\n\r \ud7ff\ue000\ufffd\U00010000\U0010ffff", **fifo)
        sqs.send_message(QueueUrl=url, MessageBody="a" * 262_144, MessageGroupId="maya",
                         MessageDeduplicationId="x#2")


class TestOneUnsendableMessage:
    def test_item1_a_noncharacter_in_a_title_does_not_hold_back_the_batch(self, pipeline: Pipeline) -> None:
        # Given two accounts that qualify in one batch, one whose contact's title and company
        # name carry U+FFFF / U+FFFE (SQS refuses both characters)
        qualify(pipeline, 0, domain="acmetech.io")
        _qualify_odd(pipeline)
        pipeline.settle()
        # Then both routed messages arrive; the odd one's characters are escaped in the JSON text,
        # so the consumer reads back exactly what the contact said
        raw = {json.loads(m["Body"])["accountId"]: m["Body"] for m in _queue_bodies(pipeline, "RoutedQueue")}
        assert set(raw) == {"acmetech.io", "oddco.io"}
        assert NONCHARACTER not in raw["oddco.io"] and "\\uffff" in raw["oddco.io"]
        messages = {m["body"]["accountId"]: m for m in routed_messages(pipeline)}
        odd = messages["oddco.io"]["body"]
        assert odd["accountName"] == f"Odd{NONCHARACTER}\ufffe Co"
        assert odd["contacts"][0]["title"] == f"VP Sales{NONCHARACTER}"
        # and the batch's bus events were published, nothing went to a failure queue
        assert {e["detail"]["accountId"] for e in pipeline.bus("Account Routed")} == {"acmetech.io", "oddco.io"}
        assert pipeline.stack.dead_letters == [] and pipeline.stack.errors == []
        assert _queue_bodies(pipeline, "RoutedParkedQueue") == []
        assert {pipeline.account(a)["state"] for a in messages} == {"routed"}


class TestASendThatKeepsFailing:
    def test_item1_a_send_failing_for_one_account_parks_it_alone_and_replay_sends_it_once(
            self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        from leadscore.adapters.bus import RoutedQueue

        send = RoutedQueue.send
        routed_url = pipeline.stack.url_of("RoutedQueue")
        calls: list[str] = []

        def unavailable_for_oddco(self: RoutedQueue, body: Any, **kwargs: Any) -> None:
            if self.queue_url == routed_url and body["accountId"] == "oddco.io":
                calls.append(body["accountId"])
                raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "try later"}}, "SendMessage")
            send(self, body, **kwargs)

        monkeypatch.setattr(RoutedQueue, "send", unavailable_for_oddco)
        # Given two accounts routed in one stream batch, and SQS failing for one of them only
        qualify(pipeline, 0, domain="acmetech.io")
        qualify(pipeline, 0, domain="oddco.io")
        pipeline.stack.pump(raise_errors=False)
        # Then the other account's message is sent, the batch is not failed, the bus has both
        assert [m["body"]["accountId"] for m in routed_messages(pipeline)] == ["acmetech.io"]
        assert pipeline.stack.errors == [] and pipeline.stack.dead_letters == []
        assert _queue_bodies(pipeline, "AggregateFailureQueue") == []
        assert {e["detail"]["accountId"] for e in pipeline.bus("Account Routed")} == {"acmetech.io", "oddco.io"}
        # the failing one was retried a few times in the invocation, then parked on its own
        assert calls == ["oddco.io"] * 3
        (parked,) = _queue_bodies(pipeline, "RoutedParkedQueue")
        envelope = json.loads(parked["Body"])
        assert envelope["schema"] == "routed-send-parked/v1" and envelope["accountId"] == "oddco.io"
        owner = pipeline.account("oddco.io")["sdr"]["id"]  # routed: its SDR has no message yet
        assert (envelope["groupId"], envelope["deduplicationId"]) == (owner, "oddco.io#1")
        assert envelope["message"]["sdr"]["id"] == owner and "ServiceUnavailable" in envelope["reason"]

        # When SQS is back and the operator replays the parked sends
        monkeypatch.setattr(RoutedQueue, "send", send)
        assert _replay("RoutedParkedQueue", "--dry-run") == 0
        assert "would replay" in capsys.readouterr().out
        assert _replay("RoutedParkedQueue") == 0
        assert _queue_bodies(pipeline, "RoutedParkedQueue") == []
        # and the same send parked twice (a stream retry after SQS's 5-minute window) replayed again
        pipeline.stack.client("sqs").send_message(QueueUrl=pipeline.stack.url_of("RoutedParkedQueue"),
                                                  MessageBody=parked["Body"], MessageGroupId=owner,
                                                  MessageDeduplicationId="oddco.io#1-again")
        assert _replay("RoutedParkedQueue") == 0
        # Then the message arrived once, for its SDR, with the same deduplication id
        (message,) = routed_messages(pipeline)
        assert (message["body"]["accountId"], message["group"], message["dedup"]) == ("oddco.io", owner,
                                                                                       "oddco.io#1")
        assert message["body"] == envelope["message"]
        assert _queue_bodies(pipeline, "RoutedParkedQueue") == []


    def test_item1_a_parked_send_the_account_has_moved_past_is_dropped_not_sent(
            self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        from leadscore.services.outbox import RoutedSend, parked_envelope

        qualify(pipeline, 0, domain="acmetech.io")
        pipeline.settle()
        routed_messages(pipeline)  # the SDR tool took it
        stale = RoutedSend({"schema": "account-routed/v1", "accountId": "acmetech.io", "cycle": 1}, "lucas",
                           "acmetech.io#1#2", account_id="acmetech.io", cycle=1, attempt=2)
        pipeline.stack.client("sqs").send_message(
            QueueUrl=pipeline.stack.url_of("RoutedParkedQueue"), MessageGroupId="lucas",
            MessageBody=json.dumps(parked_envelope(stale, "ServiceUnavailable")),
            MessageDeduplicationId=stale.deduplication_id)
        assert _replay("RoutedParkedQueue") == 0
        assert "superseded" in capsys.readouterr().out
        assert routed_messages(pipeline) == [] and _queue_bodies(pipeline, "RoutedParkedQueue") == []


class TestRoutedDeadLetters:
    def test_item15_replay_sends_a_routed_dlq_message_back_to_its_sdr(
            self, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
        # Given a routed message a consumer kept failing on (moved to the routed DLQ by SQS)
        qualify(pipeline, 0, domain="acmetech.io")
        pipeline.settle()
        (first,) = routed_messages(pipeline)
        pipeline.stack.client("sqs").send_message(
            QueueUrl=pipeline.stack.url_of("RoutedDeadLetterQueue"), MessageBody=json.dumps(first["body"]),
            MessageGroupId=first["group"], MessageDeduplicationId=first["dedup"])
        # When it is replayed (the consumer fixed)
        assert _replay("RoutedDeadLetterQueue", "--dry-run") == 0
        shown = capsys.readouterr().out
        assert "acmetech.io" in shown and "maya" in shown
        assert _replay("RoutedDeadLetterQueue") == 0
        # Then it is on the routed queue again, same group and deduplication id, and the DLQ is empty
        (again,) = routed_messages(pipeline)
        assert again == first
        assert _queue_bodies(pipeline, "RoutedDeadLetterQueue") == []


class TestTemplate:
    def test_item15_the_routed_dlq_says_what_its_redrive_policy_does(self) -> None:
        resources = load_template(replay.REPO_ROOT / "template.yaml")
        template = resources
        count = template["Resources"]["RoutedQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
        said = [template["Outputs"]["RoutedDeadLetterQueueUrl"]["Description"],
                template["Resources"]["RoutedDeadLetterQueueAlarm"]["Properties"]["AlarmDescription"]]
        for text in said:
            assert f"{count:,} times" in text or f"{count} times" in text, text
            assert "5 times" not in text.replace(f"{count:,}", "").replace(str(count), "")

    def test_item1_parked_sends_have_a_fifo_queue_an_alarm_and_the_aggregate_function_uses_them(self) -> None:
        template = load_template(replay.REPO_ROOT / "template.yaml")
        resources = template["Resources"]
        parked = resources["RoutedParkedQueue"]["Properties"]
        assert parked["FifoQueue"] is True and parked["MaximumMessageSize"] == 262144
        assert resources["RoutedQueue"]["Properties"]["MaximumMessageSize"] == 262144
        alarm = resources["RoutedParkedQueueAlarm"]["Properties"]
        assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["RoutedParkedQueue", "QueueName"]}
        assert "make replay QUEUE=RoutedParkedQueue" in alarm["AlarmDescription"]
        aggregate = resources["AggregateFunction"]["Properties"]
        assert aggregate["Environment"]["Variables"]["ROUTED_PARKED_QUEUE_URL"] == {"Ref": "RoutedParkedQueue"}
        statements = resources["AggregateFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        assert any(s["Action"] == "sqs:SendMessage" and s["Resource"] == {"Fn::GetAtt": ["RoutedParkedQueue", "Arn"]}
                   for s in statements)
