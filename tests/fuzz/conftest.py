"""The fuzz suite: hypothesis against the real handlers (in process, with an in-memory
DynamoDB) and schemathesis against openapi.yaml on the local stack.

At the end of a run it prints how many inputs were tried per route, so CI output shows
how much was fuzzed. Under CI (CI=true) hypothesis is derandomized: a run is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fuzz.tally import TALLY


@pytest.fixture(scope="module", autouse=True)
def powertools_as_deployed() -> Iterator[None]:
    """The handlers' Powertools objects as template.yaml configures them (a metrics namespace),
    logging only warnings so a failure report shows the input, not thousands of log lines."""
    from leadscore.observability import logger, metrics

    namespace, service, level = metrics.namespace, metrics.service, logger.log_level
    metrics.namespace = namespace or "LeadScore"
    metrics.service = service or "leadscore"
    logger.setLevel("WARNING")
    try:
        yield
    finally:
        metrics.namespace, metrics.service = namespace, service
        logger.setLevel(level)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not TALLY:
        return
    terminalreporter.write_sep("-", "fuzz")
    for line in TALLY.summary_lines():
        terminalreporter.write_line(line)
