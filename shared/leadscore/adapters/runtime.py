"""Process-wide wiring for the handlers: settings from the environment, cached clients.

Nothing here runs at import (but handing the engine the log key's provider, which reads
nothing until the first digest): each getter builds its object on first use and keeps it for
the warm container. Tests reset the caches with `reset()`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

from leadscore.adapters import log_key
from leadscore.engine.identity import use_log_key

if TYPE_CHECKING:
    from leadscore.adapters.bus import BusPublisher, RoutedQueue
    from leadscore.adapters.storage import Store
    from leadscore.rulesfiles.loading import Config
    from leadscore.rulesfiles.routing import RoutingConfig


# Contact digests in logs are keyed by the deployment's secret (LOG_KEY_SECRET), read on the
# first digest a container makes, never at import (adapters/log_key.py).
use_log_key(log_key.from_environment)


def now() -> datetime:
    """The time every function sees. `LEADSCORE_NOW` pins it (the local stack's clock)."""
    pinned = os.environ.get("LEADSCORE_NOW")
    if pinned:
        moment = datetime.fromisoformat(pinned.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.now(UTC)


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"environment variable {name} is not set (see template.yaml Globals)")
    return value


@cache
def config() -> Config:
    from leadscore.rulesfiles.loading import load_config  # cold start: on first use

    return load_config(os.environ.get("LEADSCORE_CONFIG_DIR") or None)


@cache
def store() -> Store:
    from leadscore.adapters.storage import Store  # cold start: on first use

    return Store(_required("TABLE_NAME"))


@cache
def publisher() -> BusPublisher:
    from leadscore.adapters.bus import BusPublisher  # cold start: on first use

    return BusPublisher(_required("EVENT_BUS_NAME"))


@cache
def routing() -> RoutingConfig:
    """`routing.yaml` of the config directory (validated; cached for the warm container)."""
    from leadscore.rulesfiles.loading import ROUTING_FILE, default_config_dir, load_routing  # cold start: on first use

    return load_routing(default_config_dir() / ROUTING_FILE)


@cache
def routed_queue() -> RoutedQueue:
    from leadscore.adapters.bus import RoutedQueue  # cold start: on first use

    return RoutedQueue(_required("ROUTED_QUEUE_URL"))


@cache
def parked_queue() -> RoutedQueue | None:
    """Where the aggregate function parks a routed message it could not send (None: unset,
    the stream retries the account's records instead)."""
    from leadscore.adapters.bus import RoutedQueue  # cold start: on first use

    url = os.environ.get("ROUTED_PARKED_QUEUE_URL")
    return RoutedQueue(url) if url else None


def retention_days() -> int:
    return int(os.environ.get("EVENT_RETENTION_DAYS", "400"))


def public_api_url() -> str | None:
    """Where SDKs reach the API (`PUBLIC_API_URL`, e.g. a custom domain); unset: its own domain."""
    return os.environ.get("PUBLIC_API_URL") or None


def reset() -> None:
    for getter in (config, store, publisher, routing, routed_queue, parked_queue):
        getter.cache_clear()
    log_key.reset()
