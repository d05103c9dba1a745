"""The fuzz suite: hypothesis against the real handlers (in process, with an in-memory
DynamoDB) and schemathesis against openapi.yaml on the local stack.

At the end of a run it prints how many inputs were tried per route, so CI output shows
how much was fuzzed (tests/conftest.py adds up the tallies of the xdist workers). Under CI
(CI=true) hypothesis is derandomized: a run is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module", autouse=True)
def powertools_as_deployed() -> Iterator[None]:
    """The handlers' Powertools objects as template.yaml configures them (its Globals give a
    metrics namespace and a service name), logging only warnings during the fuzz tests so a
    failure report shows the input, not thousands of log lines. The namespace and service stay
    set afterwards: they are what every function has, and later tests invoke the same objects."""
    import sys

    from local.env import patched_env, quiet_handlers

    if "leadscore.adapters.observability" not in sys.modules:
        # first import here: made under the functions' environment, as local/stack.py does
        deployed = {"POWERTOOLS_SERVICE_NAME": "leadscore", "POWERTOOLS_METRICS_NAMESPACE": "LeadScore",
                    "POWERTOOLS_LOG_LEVEL": "INFO"}
        with patched_env(deployed):
            import leadscore.adapters.observability  # noqa: F401
    from leadscore.adapters.observability import metrics


    metrics.namespace = metrics.namespace or "LeadScore"
    metrics.service = metrics.service or "leadscore"
    with quiet_handlers():
        yield
