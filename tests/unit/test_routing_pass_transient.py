"""The routing pass parks an account it failed on for an hour, unless AWS only throttled it or
had a passing fault (botocore's ClientError codes ProvisionedThroughputExceededException,
ThrottlingException, RequestLimitExceeded, InternalServerError, ServiceUnavailable, or no
answer at all): then five minutes, so the next run (every 15 minutes) tries it again."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from leadscore.domain.records import Account, RoutingStatus, utc_text
from leadscore.services.routing_pass import PARK, PARK_TRANSIENT, run_routing_pass, transient

from tests.support.fakes import MemoryQueue, MemoryStore
from tests.unit.test_router import NOW, ready, router


def client_error(code: str, operation: str = "TransactWriteItems") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} (test)"},
                        "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)


class FailingStore(MemoryStore):
    """A store on which routing one account fails with `error`, on its write or its pool read."""

    broken: str = "a0.com"
    error: BaseException | None = None
    on_read: bool = False

    def save_assignment(self, assignment: Any, account: Account, **kwargs: Any) -> None:
        if account.id == self.broken and self.error is not None and not self.on_read:
            raise self.error
        super().save_assignment(assignment, account, **kwargs)

    def load_pool_state(self, pool_id: Any, days: Any, **kwargs: Any) -> Any:
        if self.on_read and self.error is not None:
            raise self.error
        return super().load_pool_state(pool_id, days, **kwargs)


def failing(error: BaseException, *, on_read: bool = False) -> tuple[FailingStore, MemoryQueue]:
    store, queue = FailingStore(), MemoryQueue()
    store.error, store.on_read = error, on_read
    ready(store, "a0.com", routing=RoutingStatus(due_at=utc_text(NOW - timedelta(hours=1))))
    return store, queue


def parked_until(store: MemoryStore, account_id: str = "a0.com") -> str | None:
    account = store.accounts[account_id]
    assert account.state == "sdr_ready" and account.routing is not None
    return account.routing.due_at


TRANSIENT = ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
             "InternalServerError", "ServiceUnavailable"]


@pytest.mark.parametrize("code", TRANSIENT)
def test_a_throttled_account_is_parked_five_minutes_and_routed_at_the_next_run(
        code: str, caplog: pytest.LogCaptureFixture) -> None:
    store, queue = failing(client_error(code))
    with caplog.at_level(logging.WARNING):
        result = run_routing_pass(router(store, queue))
    assert (result.due, result.failed, result.transient, result.routed) == (1, 1, 1, 0)
    assert parked_until(store) == utc_text(NOW + PARK_TRANSIENT) == "2026-11-23T10:05:00Z"
    (record,) = [r for r in caplog.records if "a0.com" in r.getMessage()]
    assert record.levelno == logging.WARNING and code in record.getMessage() and "10:05:00" in record.getMessage()
    # not tried again within the five minutes; the next run (15 minutes later) routes it
    assert run_routing_pass(router(store, queue, now=NOW + timedelta(minutes=4))).due == 0
    store.error = None
    later = run_routing_pass(router(store, queue, now=NOW + timedelta(minutes=15)))
    assert (later.due, later.routed, later.failed) == (1, 1, 0)
    assert [m.body["accountId"] for m in queue.messages] == ["a0.com"]


@pytest.mark.parametrize("code", ["ValidationException", "ResourceNotFoundException", "AccessDeniedException"])
def test_any_other_error_keeps_the_hour(code: str, caplog: pytest.LogCaptureFixture) -> None:
    store, queue = failing(client_error(code))
    with caplog.at_level(logging.ERROR):
        result = run_routing_pass(router(store, queue))
    assert (result.failed, result.transient) == (1, 0)
    assert parked_until(store) == utc_text(NOW + PARK) == "2026-11-23T11:00:00Z"
    assert any(r.levelno == logging.ERROR and code in r.getMessage() for r in caplog.records)
    assert run_routing_pass(router(store, queue, now=NOW + timedelta(minutes=15))).due == 0


def test_an_error_that_is_no_aws_error_keeps_the_hour() -> None:
    store, queue = failing(ValueError("Item size has exceeded the maximum allowed size"))
    run_routing_pass(router(store, queue))
    assert parked_until(store) == utc_text(NOW + PARK)


def test_throttling_on_a_read_parks_five_minutes_too() -> None:
    store, queue = failing(client_error("ProvisionedThroughputExceededException", "GetItem"), on_read=True)
    result = run_routing_pass(router(store, queue))
    assert (result.failed, result.transient) == (1, 1)
    assert parked_until(store) == utc_text(NOW + PARK_TRANSIENT)


def test_the_other_accounts_of_the_run_are_routed_whatever_the_error() -> None:
    store, queue = failing(client_error("ThrottlingException"))
    for i in (1, 2):
        ready(store, f"a{i}.com", routing=RoutingStatus(due_at=utc_text(NOW - timedelta(minutes=30 - i))))
    result = run_routing_pass(router(store, queue))
    assert (result.due, result.routed, result.failed, result.transient) == (3, 2, 1, 1)


def test_what_counts_as_transient() -> None:
    for code in TRANSIENT:
        assert transient(client_error(code))
    assert not transient(client_error("ValidationException"))
    assert not transient(client_error("ConditionalCheckFailedException"))
    assert not transient(ValueError("ThrottlingException"))  # words in a message are not a code
    # no answer from AWS at all
    assert transient(EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com"))
    assert transient(ReadTimeoutError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com"))
    # an error raised from a throttled call (a storage wrapper) is transient too
    try:
        try:
            raise client_error("ThrottlingException", "Query")
        except ClientError as inner:
            raise RuntimeError("reading the pool failed") from inner
    except RuntimeError as outer:
        assert transient(outer)
