"""CPU cost of the rules engine against parsing the same event's JSON.

For each sample body: `json.loads(body)` (the yardstick), `parse_message` (the edge:
validation and normalisation, reported for information), and the engine:
`matching_rules` (what collection stores as the event's hits) + `apply_event` on a
contact that already has history. Each is timed with `time.process_time` over many
iterations; states are prepared outside the timed loop.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bench.pipeline import START
from bench.stack import CONFIG_DIR

#: Bodies as SDKs send them (analytics.js adds a context of this size to every call).
_CONTEXT = {
    "library": {"name": "analytics.js", "version": "next-1.70.0"},
    "page": {"path": "/resources/case-studies", "referrer": "https://www.google.com/", "search": "",
             "title": "Case studies", "url": "https://www.example.com/resources/case-studies"},
    "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/131.0.0.0 Safari/537.36",
    "locale": "en-US",
    "ip": "203.0.113.7",
    "traits": {"email": "jo@acmetech.io"},
}
SAMPLES: dict[str, dict[str, Any]] = {
    "track (scored)": {"type": "track", "event": "Case Study Downloaded", "userId": "u-jo",
                       "anonymousId": "a-1f0c", "messageId": "m-1",
                       "properties": {"title": "How Acme cut churn", "format": "pdf"},
                       "timestamp": "2026-11-02T09:00:00Z", "context": _CONTEXT},
    "track (no rule)": {"type": "track", "event": "Feature Used", "userId": "u-jo", "messageId": "m-2",
                        "properties": {"feature": "export", "plan": "team"},
                        "timestamp": "2026-11-02T09:00:00Z", "context": _CONTEXT},
    "page (pricing)": {"type": "page", "name": "Pricing", "userId": "u-jo", "anonymousId": "a-1f0c",
                       "messageId": "m-3", "properties": {"url": "https://www.example.com/pricing",
                                                         "path": "/pricing", "title": "Pricing"},
                       "timestamp": "2026-11-02T09:00:00Z", "context": _CONTEXT},
}


@dataclass
class EngineFigures:
    sample: str
    body_bytes: int
    json_us: float
    parse_us: float
    engine_us: float

    @property
    def ratio(self) -> float:
        return self.engine_us / self.json_us


@contextmanager
def no_gc() -> Iterator[None]:
    """Both sides timed without the cyclic garbage collector, as `timeit` does: otherwise the
    heap the earlier sections left (a whole moto world) is traversed on the engine's clock,
    which allocates more than `json.loads`, and the ratio measures the heap, not the code."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _cpu_per_call(run: Callable[[int], None], iterations: int) -> float:
    """Microseconds of CPU per call; the best of three rounds (least disturbed)."""
    best = float("inf")
    for _ in range(3):
        with no_gc():
            started = time.process_time()
            run(iterations)
            best = min(best, (time.process_time() - started) / iterations)
    return best * 1e6


def _history(config: Any) -> str:
    """A contact with a few weeks of touches (its ledger, as stored)."""
    from leadscore.adapters import items
    from leadscore.domain.ledgers import ContactState
    from leadscore.engine.messages import parse_message
    from leadscore.engine.rules import apply_event

    state = ContactState()
    for day, name in enumerate(["Email Opened", "Webinar Attended", "Email Link Clicked", "Email Opened",
                                "Case Study Downloaded", "Feature Used", "Email Opened"]):
        raw: dict[str, object] = {"type": "track", "event": name, "userId": "u-jo", "messageId": f"h-{day}",
                                  "timestamp": (START - timedelta(days=20 - 3 * day)).isoformat()}
        apply_event(config.scoring, state, parse_message(raw, source_id="product", received_at=START))
    for day in range(3):
        raw = {"type": "page", "userId": "u-jo", "messageId": f"p-{day}", "properties": {"path": "/blog"},
               "timestamp": (START - timedelta(days=10 - day)).isoformat()}
        apply_event(config.scoring, state, parse_message(raw, source_id="website", received_at=START))
    return items.state_json(state)


def run_engine(iterations: int = 2000) -> list[EngineFigures]:
    from leadscore.adapters import items
    from leadscore.engine.messages import parse_message
    from leadscore.engine.rules import apply_event, matching_rules
    from leadscore.rulesfiles.loading import load_config

    config = load_config(CONFIG_DIR)
    scoring = config.scoring
    history = _history(config)
    figures = []
    for name, message in SAMPLES.items():
        body = json.dumps(message)
        event = parse_message(json.loads(body), source_id="website", received_at=START)

        def loads(n: int, body: str = body) -> None:
            for _ in range(n):
                json.loads(body)

        def parse(n: int, body: str = body) -> None:
            for _ in range(n):
                parse_message(json.loads(body), source_id="website", received_at=START)

        def engine(n: int, event: Any = event) -> None:
            states = [items.state_from_json(history) for _ in range(n)]  # prepared, then timed below
            with no_gc():
                started = time.process_time()
                for state in states:
                    # collection matches (and stores the hits); aggregation applies them
                    apply_event(scoring, state, event, matching_rules(scoring, event))
                engine.spent = time.process_time() - started  # type: ignore[attr-defined]

        json_us = _cpu_per_call(loads, iterations * 5)
        parse_us = _cpu_per_call(parse, iterations) - json_us
        best = float("inf")
        for _ in range(3):
            engine(iterations)
            best = min(best, engine.spent / iterations)  # type: ignore[attr-defined]
        figures.append(EngineFigures(name, len(body), json_us, parse_us, best * 1e6))
    return figures
