"""The local stack's DynamoDB stream under concurrent writers: every record keeps its own
sequence number (moto's own numbering races), so a reader never loops on the tail; and its
lighter transaction backup rolls a cancelled transaction back as DynamoDB does."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.env import LOCAL_AWS_ENV
from local.stack import light_transaction_backups, serialize_stream_appends


def stream_records(client: Any) -> list[dict[str, Any]]:
    """Every record of table `t`'s stream, from its start (one shard, at most 1,000)."""
    streams = boto3.client("dynamodbstreams")
    arn = client.describe_table(TableName="t")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records: list[dict[str, Any]] = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    return records


@pytest.fixture
def thread_switches_often() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # what a busy machine does now and then, every time
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def test_concurrent_writers_get_distinct_sequence_numbers(monkeypatch: pytest.MonkeyPatch,
                                                          thread_switches_often: None) -> None:
    for name, value in LOCAL_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        serialize_stream_appends()
        client = boto3.client("dynamodb")
        client.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST",
                            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})

        def write(writer: int) -> None:
            own = boto3.client("dynamodb")
            for i in range(100):
                own.put_item(TableName="t", Item={"pk": {"S": f"{writer}-{i}"}})

        threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        records = stream_records(client)
    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert len(numbers) == 600 and len(set(numbers)) == 600


def test_a_cancelled_transaction_leaves_items_and_stream_as_they_were(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local stack backs a transaction up by copying only the items it touches: a
    cancelled one (its second condition fails after the first action applied) leaves every
    item as it was and no stream record; a committed one is kept whole."""
    for name, value in LOCAL_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        serialize_stream_appends()
        light_transaction_backups()
        client = boto3.client("dynamodb")
        client.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                                      {"AttributeName": "sk", "KeyType": "RANGE"}],
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                  {"AttributeName": "sk", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST",
                            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        for pk in ("a", "b", "c"):
            client.put_item(TableName="t", Item={"pk": {"S": pk}, "sk": {"S": "x"}, "n": {"N": "1"}})

        def bump(pk: str, expected: str) -> dict[str, object]:
            return {"Update": {"TableName": "t", "Key": {"pk": {"S": pk}, "sk": {"S": "x"}},
                               "UpdateExpression": "SET n = n + :one", "ConditionExpression": "n = :expected",
                               "ExpressionAttributeValues": {":one": {"N": "1"}, ":expected": {"N": expected}}}}

        with pytest.raises(client.exceptions.TransactionCanceledException):
            client.transact_write_items(TransactItems=[bump("a", "1"), bump("b", "7")])
        client.transact_write_items(TransactItems=[bump("c", "1")])
        items = {i["pk"]["S"]: i["n"]["N"] for i in client.scan(TableName="t")["Items"]}
        records = stream_records(client)
    assert items == {"a": "1", "b": "1", "c": "2"}
    assert [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in records] == [
        ("INSERT", "a"), ("INSERT", "b"), ("INSERT", "c"), ("MODIFY", "c")]
    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert numbers == sorted(set(numbers))
