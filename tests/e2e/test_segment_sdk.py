"""The real Segment Python SDK (`segment-analytics-python`) pointed at the local stack by its host.

What a back-end team does to adopt the product: change `host`, keep their tracking code.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from segment.analytics import Client
from segment.analytics.request import APIError

from local.serve_client import WEB_KEY, LocalServer, breakdown_points
from tests.e2e.journey import Errors, assert_scored, journey

pytestmark = pytest.mark.slow


@pytest.fixture
def client_of(server: LocalServer, errors: Errors) -> Iterator[Any]:
    """SDK clients on the local API; every one is flushed and shut down after the test."""
    made: list[Client] = []

    def make(write_key: str = WEB_KEY, **options: Any) -> Client:
        options = {"host": server.api, "on_error": errors, "max_retries": 1, "timeout": 10, **options}
        client = Client(write_key=write_key, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        if not client.sync_mode:
            client.shutdown()


def test_sync_mode_identify_track_page_group(server: LocalServer, client_of: Any, errors: Errors, rules: Any) -> None:
    suffix = uuid.uuid4().hex[:8]
    user, domain = f"sdk-{suffix}", f"acme-{suffix}.com"

    journey(client_of(sync_mode=True), user, domain)
    server.drain()

    assert errors.seen == []
    assert_scored(server, rules, user, domain)


def test_gzip_bodies(server: LocalServer, client_of: Any, errors: Errors, rules: Any) -> None:
    suffix = uuid.uuid4().hex[:8]
    user, domain = f"gz-{suffix}", f"gzip-{suffix}.com"

    journey(client_of(sync_mode=True, gzip=True), user, domain)
    server.drain()

    assert errors.seen == []
    assert_scored(server, rules, user, domain)


def test_queued_mode_sends_one_batch_on_flush(server: LocalServer, client_of: Any, errors: Errors,
                                              rules: Any) -> None:
    suffix = uuid.uuid4().hex[:8]
    user, domain = f"q-{suffix}", f"queued-{suffix}.com"
    client = client_of(upload_interval=0.05)

    journey(client, user, domain)
    client.flush()
    server.drain()

    assert errors.seen == []
    assert_scored(server, rules, user, domain)


def test_sdk_retries_score_once(server: LocalServer, client_of: Any, rules: Any) -> None:
    """An SDK retry resends the same messageId: it must not count twice."""
    suffix = uuid.uuid4().hex[:8]
    user = f"retry-{suffix}"
    client = client_of(sync_mode=True)

    for _ in range(3):
        client.track(user, "Demo Link Clicked", message_id=f"mid-{suffix}")
    server.drain()

    assert breakdown_points(server.contact(user), "demo_link_clicked") == rules.points("demo_link_clicked")


def test_unknown_write_key_is_reported_and_nothing_is_stored(server: LocalServer, client_of: Any,
                                                             errors: Errors) -> None:
    suffix = uuid.uuid4().hex[:8]
    user = f"nokey-{suffix}"
    client = client_of("wk_not_a_key", upload_interval=0.05)

    client.identify(user, {"email": f"jo@nokey-{suffix}.com", "title": "VP Sales"})
    client.track(user, "Demo Link Clicked")
    client.flush()
    server.drain()

    assert len(errors.seen) == 1, errors.seen
    error, batch = errors.seen[0]
    assert isinstance(error, APIError) and error.status == 401
    assert [m["type"] for m in batch] == ["identify", "track"]
    assert server.request("GET", f"/v1/contacts/{user}").status == 404
    table = server.resources()["Table"]["name"]
    items = server.boto3_client("dynamodb").scan(TableName=table)["Items"]
    assert not [item for item in items if user in str(item)], "an unknown write key stored something"


def test_unknown_write_key_raises_in_sync_mode(server: LocalServer, client_of: Any) -> None:
    client = client_of("wk_not_a_key", sync_mode=True)

    with pytest.raises(APIError) as raised:
        client.track(f"nokey-{uuid.uuid4().hex[:8]}", "Demo Link Clicked")

    assert raised.value.status == 401
