"""The store's DynamoDB client is made once, however many threads ask for it first."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest


def test_threads_racing_for_the_first_client_share_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a fresh store and a client that takes a while to make (as boto3's does on a cold start)
    import boto3
    from leadscore.adapters.storage import Store

    made: list[object] = []

    def slow_client(*_: Any, **__: Any) -> object:
        time.sleep(0.05)
        made.append(object())
        return made[-1]

    monkeypatch.setattr(boto3, "client", slow_client)
    store = Store("table")
    # When the first writes of a batch ask for it on eight threads at once
    with ThreadPoolExecutor(max_workers=8) as pool:
        clients = list(pool.map(lambda _: store.client, range(8)))
    # Then one client was made and all use it (each client has its own exception classes)
    assert len(made) == 1 and all(client is made[0] for client in clients)
