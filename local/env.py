"""The environment every local run uses: fake credentials, one region, nothing of the machine's AWS setup."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

#: Fake credentials and a fixed region: local runs never talk to AWS.
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    # botocore >= 1.38 sends stream-ARN calls to account-ID endpoints that moto does not route.
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}
#: Settings of the machine that would send a local run to a real account.
UNSET_AWS_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL")


@contextmanager
def patched_env(values: Mapping[str, str], unset: tuple[str, ...] = (), *,
                restore: tuple[str, ...] = ()) -> Iterator[None]:
    """`values` set and `unset` removed from the environment meanwhile; afterwards each of
    them, and each name of `restore` (set by the caller meanwhile), is as it was."""
    saved = {name: os.environ.get(name) for name in (*values, *unset, *restore)}
    for name in unset:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def drop_disabled_metrics() -> None:
    """With POWERTOOLS_METRICS_DISABLED, Powertools never clears what the handlers add, and
    prints the whole set once a metric reaches 100 values (thousands of routing passes do):
    local runs drop them after each invocation, step or tick, as a flush would."""
    from leadscore.adapters.observability import metrics

    metrics.clear_metrics()


@contextmanager
def quiet_handlers() -> Iterator[None]:
    """The handlers log warnings only meanwhile (their INFO lines would drown a bench table or
    a fuzz report); whatever runs afterwards gets its log level back. Import the handlers
    first: Powertools' Metrics reads the functions' environment when it is made."""
    from leadscore.adapters.observability import logger

    level = logger.log_level
    logger.setLevel("WARNING")
    try:
        yield
    finally:
        logger.setLevel(level)
