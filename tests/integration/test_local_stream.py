"""The local stack's DynamoDB stream under concurrent writers: every record keeps its own
sequence number (moto's own numbering races), so a reader never loops on the tail."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from local.env import LOCAL_AWS_ENV
from local.stack import serialize_stream_appends


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
        streams = boto3.client("dynamodbstreams")
        arn = client.describe_table(TableName="t")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert len(numbers) == 600 and len(set(numbers)) == 600
