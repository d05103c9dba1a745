"""The local stack (`python -m local.server`, what `make serve` runs) driven over HTTP.

Each test module gets its own server process on free ports of 127.0.0.1 (`--port 0
--aws-port 0`), started once and stopped (SIGTERM) after the module's last test: see
`local/serve_client.py`. Tests talk to it as a developer would: plain HTTP with urllib, boto3
against the AWS endpoint, real SDKs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from local.serve_client import REPO_ROOT, LocalServer
from tests.e2e.journey import Errors


@pytest.fixture(scope="module")
def server(ingest: str) -> Iterator[LocalServer]:
    """The local stack for this module's tests (its own process, free ports), its collection
    routes on the HTTP API or the collect function's Function URL (`ingest`: the SDKs', the
    browser's and the curl recipes' modules run on both, tests/conftest.py BOTH_SHAPES)."""
    with LocalServer.running(args=["--ingest", ingest]) as local:
        yield local


@pytest.fixture(autouse=True)
def no_proxy_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDKs and urllib honour machine proxies: keep 127.0.0.1 direct."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def errors() -> Errors:
    """What a Python SDK reported through `on_error` during the test."""
    return Errors()


@pytest.fixture
def restore_clock(server: LocalServer) -> Iterator[None]:
    """Put the local clock back on real time after a test that moved it."""
    yield
    server.control("POST", "/_local/clock", {"now": datetime.now(UTC).isoformat()})


@pytest.fixture
def uid() -> str:
    """A fresh suffix, so tests sharing one server never see each other's contacts."""
    return uuid.uuid4().hex[:10]


class Rules:
    """The shipped rules (config/scoring.yaml), to compute expected scores from."""

    def __init__(self, scoring: Mapping[str, Any]) -> None:
        self.scoring = scoring

    def points(self, *rule_ids: str) -> float:
        """The points of fit, engagement or account fit rules, added up."""
        rules = {r["id"]: r for r in [*self.scoring["fit"], *self.scoring["engagement"],
                                      *self.scoring["account"]["fit"]]}
        return sum(float(rules[rule_id]["points"]) for rule_id in rule_ids)


@pytest.fixture(scope="session")
def rules() -> Rules:
    return Rules(yaml.safe_load((REPO_ROOT / "config" / "scoring.yaml").read_text()))
