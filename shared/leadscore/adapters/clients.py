"""The AWS clients of the adapters: made on first use, once."""

from __future__ import annotations

import threading
from typing import Any

# Each client has its own exception classes: a ConditionalCheckFailedException raised by one
# is not caught as another's, so the threads of one batch must share one client.
_LOCK = threading.Lock()


class LazyClient:
    """A class attribute giving each instance its boto3 client for `service`: the one handed
    in (the instance's `_client`), else one made on first use (no boto3 import and no AWS
    call at cold start), once however many threads ask for it first."""

    def __init__(self, service: str) -> None:
        self.service = service

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        if instance._client is None:
            with _LOCK:  # a batch's first writes run on several threads: one client for all
                if instance._client is None:
                    import boto3  # deferred: import cost belongs to the first call, not the cold start

                    instance._client = boto3.client(self.service)  # type: ignore[call-overload]
        return instance._client
