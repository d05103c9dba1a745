"""Fakes and request builders for unit tests of the ingestion API (no moto, no network).

`FakeEventStore` is the collector's store (the `EventStore` port: `put_event`,
`put_rejected`): the shared in-memory `MemoryStore` of tests/support/fakes.py, which stores
an event once per contact, source and messageId, plus a switch that makes it fail and two
views the ingestion tests read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from local.apigw import form_event, http_event
from local.apigw import json_body as json_body  # re-exported for the tests
from tests.support.fakes import MemoryStore

NOW = datetime(2026, 5, 13, 10, 0, tzinfo=UTC)
WEB_KEY, EMAIL_KEY = "wk_demo_website", "wk_demo_email"  # config/sources.yaml
WEB_ORIGIN = "http://localhost:8000"  # in the website source's cors_origins
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
JSON = {"content-type": "application/json"}


@dataclass
class FakeEventStore(MemoryStore):
    fail: bool = False  # every write raises, as a store that is down would

    def put_event(self, event: Any, hits: Any, retention_days: int) -> bool:
        if self.fail:
            raise ConnectionError("the store is down")
        return super().put_event(event, hits, retention_days)

    def put_rejected(self, **record: Any) -> None:
        if self.fail:
            raise ConnectionError("the store is down")
        super().put_rejected(**record)

    @property
    def stored(self) -> list[Any]:
        """The accepted events (`TrackingEvent`), in the order they were stored."""
        return [s.event for s in self.events.values()]

    @property
    def rejections(self) -> list[dict[str, Any]]:
        """The rejection records, as dicts."""
        return [asdict(r) for r in self.rejected]

    @property
    def writes(self) -> int:
        return len(self.events) + len(self.rejected)


@cache
def shipped_config() -> Any:
    from leadscore.rulesfiles.loading import load_config

    return load_config()


def ingest_api(store: FakeEventStore, config: Any = None, public_url: str | None = None) -> Any:
    from leadscore.adapters.ingest import IngestApi
    from leadscore.services.collect import Collector

    config = config or shipped_config()
    return IngestApi(Collector(store, config), config, clock=lambda: NOW, public_url=public_url)


def request(method: str, path: str, route: str | None = None, **kwargs: Any) -> Any:
    """A `Request` as API Gateway hands it to the collect function."""
    from leadscore.adapters.http import Request

    kwargs.setdefault("now", NOW)
    route = route or path.split("?", 1)[0]
    return Request.from_event(http_event(method, path, route_key=f"{method} {route}", **kwargs))


def form_request(form_id: str, fields: Any, **kwargs: Any) -> Any:
    """An HTML form post (urlencoded) to `/v1/forms/{form_id}`."""
    from leadscore.adapters.http import Request

    return Request.from_event(form_event(f"/v1/forms/{form_id}", fields, route_key="POST /v1/forms/{formId}",
                                         now=NOW, **kwargs))


def headers_of(response: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): v for k, v in (response.get("headers") or {}).items()}
