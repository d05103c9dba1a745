"""The local stack of template.yaml (moto, in-process) with a `Meter` on the functions' clients."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.meter import Meter
from local.apigw import function_url_event, http_event
from local.env import LOCAL_AWS_ENV, patched_env, quiet_handlers

if TYPE_CHECKING:
    from local.stack import TemplateStack

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "template.yaml"
CONFIG_DIR = REPO_ROOT / "config"

AWS_ENV = {
    **LOCAL_AWS_ENV,
    "AWS_CONFIG_FILE": str(REPO_ROOT / ".no-aws-config"),
    "AWS_SHARED_CREDENTIALS_FILE": str(REPO_ROOT / ".no-aws-credentials"),
}
UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL")


@dataclass
class Bench:
    """A metered stack: send events, pump, read what was counted."""

    stack: TemplateStack
    meter: Meter
    table: str

    def set_clock(self, moment: datetime) -> None:
        os.environ["LEADSCORE_NOW"] = moment.isoformat()

    def http(self, method: str, path: str, now: datetime, **kwargs: Any) -> dict[str, Any]:
        return self.stack.invoke("CollectFunction", http_event(method, path, now=now, **kwargs))

    def function_url(self, method: str, path: str, now: datetime, **kwargs: Any) -> dict[str, Any]:
        """The same request as the collect function's Function URL delivers it (payload 2.0,
        no route key: the function routes it by its path)."""
        return self.stack.invoke("CollectFunction", function_url_event(method, path, now=now, **kwargs))

    def pump(self) -> dict[str, int]:
        return self.stack.pump(max_rounds=1000)


@contextmanager
def light_transaction_backups() -> Iterator[None]:
    """moto's transaction backups as the local stack makes them (`local.stack.
    light_transaction_backups`: only the touched items copied, a cancelled transaction's stream
    records dropped), also for a moto world no TemplateStack was created in."""
    from local.stack import light_transaction_backups as install

    install()
    yield


@contextmanager
def metered_stack() -> Iterator[Bench]:
    """A fresh moto world holding template.yaml's resources, with the meter attached."""
    from moto import mock_aws

    from local.stack import TemplateStack

    # The handlers print their metrics (EMF) on stdout as in Lambda: kept out of the table.
    with patched_env({**AWS_ENV, "LEADSCORE_NOW": os.environ.get("LEADSCORE_NOW", "")}, UNSET), mock_aws(), \
            open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        from leadscore.adapters import runtime
        # Powertools warns on every invocation that publishes no metric (the stream and schedule ones).
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        runtime.reset()
        try:
            stack = TemplateStack.create(TEMPLATE)
            spec = stack.functions["AggregateFunction"]
            with patched_env({k: spec.environment[k] for k in ("TABLE_NAME", "EVENT_BUS_NAME", "ROUTED_QUEUE_URL")}):
                store_client = runtime.store().client
                events_client = runtime.publisher().client
                sqs_client = runtime.routed_queue().client
                table = runtime.store().table_name
            for logical_id in stack.functions:  # import the handlers before anything is measured
                stack.module(logical_id)
            with quiet_handlers():
                meter = Meter(stack, store_client, events_client, table)
                meter.watch_sqs(sqs_client)
                yield Bench(stack, meter, table)
        finally:
            runtime.reset()
