"""The real RudderStack Python SDK (`rudder-sdk-python`) pointed at the local stack by its host.

What a back-end team on RudderStack does to adopt the product: change the data plane URL,
keep their tracking code. The SDK posts `/v1/batch` (gzipped by default, the write key as
HTTP Basic user) and sends an identify's traits only as `context.traits`: they must score
as a Segment identify's `traits` do (title and company kept, fit 50, not 0).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import pytest
from rudderstack.analytics import Client

from local.serve_client import WEB_KEY, LocalServer
from tests.e2e.journey import Errors, assert_scored, journey

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def driven_version() -> None:
    print(f"\nrudder-sdk-python {version('rudder-sdk-python')} against make serve")


@pytest.fixture
def client_of(server: LocalServer, errors: Errors) -> Iterator[Any]:
    """SDK clients on the local API (their defaults otherwise: gzip on); each is shut down after the test."""
    made: list[Client] = []

    def make(**options: Any) -> Client:
        options = {"host": server.api, "on_error": errors, "max_retries": 1, "timeout": 10, **options}
        client = Client(write_key=WEB_KEY, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        if not client.sync_mode:
            client.shutdown()


def assert_identify_traits_scored(server: LocalServer, user: str, domain: str) -> None:
    """The title and the company of the identify's context.traits are the contact's, and score fit 50."""
    contact = server.contact(user)
    assert (contact["title"], contact["email"], contact["fit"]) == ("VP Sales", f"jo@{domain}", 50)
    fit_rules = {line["rule"] for line in contact["breakdown"] if line["category"] == "fit"}
    # the title, then the company's industry and size, then the address
    assert fit_rules == {"title_executive", "industry_technology", "company_size", "country_focus"}


def test_identify_traits_sent_as_context_traits_are_scored(server: LocalServer, client_of: Any, errors: Errors,
                                                           rules: Any) -> None:
    suffix = uuid.uuid4().hex[:8]
    user, domain = f"rs-{suffix}", f"rudder-{suffix}.com"
    client = client_of(sync_mode=True)

    # what the SDK builds (send=False hands the message back): the traits only in context.traits
    _, message = client_of(send=False).identify(user, {"title": "VP Sales"})
    assert "traits" not in message and message["context"]["traits"] == {"title": "VP Sales"}
    assert client.gzip is True  # its default: the bodies come gzipped

    journey(client, user, domain)
    server.drain()

    assert errors.seen == []
    assert_identify_traits_scored(server, user, domain)
    assert_scored(server, rules, user, domain)


def test_queued_mode_sends_one_batch_on_flush(server: LocalServer, client_of: Any, errors: Errors,
                                              rules: Any) -> None:
    suffix = uuid.uuid4().hex[:8]
    user, domain = f"rsq-{suffix}", f"rudder-queued-{suffix}.com"
    client = client_of(upload_interval=0.05)

    journey(client, user, domain)
    client.flush()
    server.drain()

    assert errors.seen == []
    assert_identify_traits_scored(server, user, domain)
    assert_scored(server, rules, user, domain)
