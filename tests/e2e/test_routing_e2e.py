"""Routing exactly once against `make serve`: real HTTP, a real moto server, concurrent senders.

The account qualifies through the public ingestion API; then 20 threads put the same
`Account SDR Ready` on the bus at once, over the local AWS endpoint, while the stack is
still aggregating and routing. However the deliveries interleave, the account gets one SDR,
one message on the routed FIFO queue and one step of its pool's counter.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from local.serve_client import WEB_KEY, LocalServer

pytestmark = pytest.mark.slow


def _qualify(server: LocalServer, domain: str) -> None:
    """A VP at a 200-person US software company (account fit 30) who requests a demo, attends
    a webinar and clicks a demo link: engagement capped at 80, account score 110 >= 100."""
    user = f"vp@{domain}"
    answer = server.request("POST", "/v1/identify", basic_user=WEB_KEY, body={
        "userId": user, "traits": {"email": user, "title": "VP Sales",
                                   "company": {"name": domain, "industry": "Software", "employee_count": 200},
                                   "address": {"country": "US"}}})
    assert answer.status == 200, answer.body
    for name in ("Demo Requested", "Webinar Attended", "Demo Link Clicked"):
        answer = server.request("POST", "/v1/track", basic_user=WEB_KEY, body={"userId": user, "event": name})
        assert answer.status == 200, answer.body


def _routed_messages(server: LocalServer, account_id: str) -> list[dict[str, Any]]:
    sqs = server.boto3_client("sqs")
    url = server.resources()["RoutedQueue"]["url"]
    found: list[dict[str, Any]] = []
    while True:
        page = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                   AttributeNames=["All"]).get("Messages", [])
        if not page:
            return [m for m in found if m["body"]["accountId"] == account_id]
        for message in page:
            found.append({"body": json.loads(message["Body"]), "group": message["Attributes"]["MessageGroupId"]})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_20_concurrent_deliveries_over_http_give_one_message_and_one_counter_step(
        server: LocalServer, uid: str) -> None:
    # Given an account qualifying through the ingestion API, its routing not yet settled
    domain = f"acme-{uid}.io"
    events = server.boto3_client("events")
    bus = server.resources()["EventBus"]["name"]
    dynamodb = server.boto3_client("dynamodb")
    table = server.resources()["Table"]["name"]

    def pool_counter() -> int:
        item = dynamodb.get_item(TableName=table, Key={"pk": {"S": "POOL#na"}, "sk": {"S": "RR"}}).get("Item")
        return int(item["n"]["N"]) if item else 0

    before = pool_counter()
    _qualify(server, domain)

    # When 20 threads put the same Account SDR Ready on the bus at once
    ready = json.dumps({"accountId": domain, "cycle": 1, "state": "sdr_ready"})
    barrier = threading.Barrier(20, timeout=30)
    failures: list[Any] = []

    def deliver() -> None:
        barrier.wait()
        answer = events.put_events(Entries=[{"EventBusName": bus, "Source": "leadscore",
                                             "DetailType": "Account SDR Ready", "Detail": ready}])
        if answer.get("FailedEntryCount"):
            failures.append(answer)

    threads = [threading.Thread(target=deliver) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    server.drain()

    # Then one SDR, one message on the routed FIFO queue, one counter step
    assert failures == []
    account = server.account(domain)
    assert account["state"] == "routed", account
    messages = _routed_messages(server, domain)
    assert len(messages) == 1
    assert messages[0]["group"] == account["sdr"]["id"] == messages[0]["body"]["sdr"]["id"]
    assert pool_counter() == before + 1
