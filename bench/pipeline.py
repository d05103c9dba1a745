"""Scenarios on the whole pipeline: collection, aggregation, state changes and their cost.

Contacts `u-b<i>` belong to account `acct<i // contacts_per_account>.io` (their email's
domain), so 10 consecutive contacts share an account. Every phase sends one `track` event
per contact, with a fresh messageId, in contact order, after the contacts exist (steady
state). Event names cycle through `MIXES[mix]`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.meter import Invocation
from bench.stack import Bench
from local.apigw import http_event

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
WEB_KEY, EMAIL_KEY, PRODUCT_KEY = "wk_demo_website", "wk_demo_email", "wk_demo_product"

#: Event names per mix. "typical": one event in five earns points (the others are product or
#: marketing events no rule scores, the bulk of real traffic). "scored": every event earns points.
MIXES: dict[str, tuple[str, ...]] = {
    "typical": ("Case Study Downloaded", "Feature Used", "Report Exported", "Settings Changed", "Logged In"),
    "scored": ("Case Study Downloaded", "Webinar Attended", "Email Opened", "Email Link Clicked",
               "Demo Link Clicked"),
}

PRICES = {  # list prices, USD (us-east-1)
    "http_request": 1.00 / 1e6,
    "lambda_request": 0.20 / 1e6,
    "wcu": 0.625 / 1e6,
    "rcu": 0.125 / 1e6,
    "bus_entry": 1.00 / 1e6,
    "gb_second_arm64": 0.0000133334,
}


@dataclass
class Population:
    contacts: int
    per_account: int = 10
    mix: str = "typical"

    def account(self, i: int) -> str:
        return f"acct{i // self.per_account}.io"

    def message(self, i: int, phase: str, name: str | None = None) -> dict[str, Any]:
        names = MIXES[self.mix]
        return {
            "type": "track",
            "userId": f"u-b{i}",
            "event": name or names[i % len(names)],
            "messageId": f"{phase}-{i}",
            "properties": {"plan": "team", "seats": 12},
            "context": {"traits": {"email": f"c{i}@{self.account(i)}"},
                        "library": {"name": "analytics-python", "version": "2.3.2"}},
        }


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def body_bytes(body: Any) -> int:
    """Bytes of a JSON body as sent (`local.apigw.http_event` serializes it the same way)."""
    return len(json.dumps(body).encode("utf-8"))


def send_batches(bench: Bench, messages: Sequence[dict[str, Any]], now: datetime, size: int = 100,
                 key: str = PRODUCT_KEY, door: str = "http") -> int:
    """POST /v1/batch of `size` messages each (through `door`: "http", the HTTP API, or
    "function_url"); returns the request bodies' bytes."""
    sent = 0
    send = getattr(bench, door)
    for part in chunks(messages, size):
        body = {"batch": list(part)}
        sent += body_bytes(body)
        response = send("POST", "/v1/batch", now, body=body, basic_user=key)
        if response["statusCode"] != 200:
            raise RuntimeError(f"/v1/batch answered {response['statusCode']}: {response.get('body')}")
    return sent


def send_singles(bench: Bench, messages: Sequence[dict[str, Any]], now: datetime, key: str = PRODUCT_KEY,
                 door: str = "http") -> int:
    """POST /v1/track of each message (through `door`); returns the request bodies' bytes."""
    sent = 0
    send = getattr(bench, door)
    for message in messages:
        sent += body_bytes(message)
        response = send("POST", "/v1/track", now, body=message, basic_user=key)
        if response["statusCode"] != 200:
            raise RuntimeError(f"/v1/track answered {response['statusCode']}: {response.get('body')}")
    return sent


# ------------------------------------------------------------------ per-phase figures


@dataclass
class PhaseFigures:
    """What one phase cost, per accepted event."""

    name: str
    events: int
    http_requests: int
    request_bytes: int = 0  # the HTTP request bodies (a front door's data transfer to its origin)
    invocations: dict[str, int] = field(default_factory=dict)
    own_cpu_ms: dict[str, float] = field(default_factory=dict)  # per invocation, mean
    billed_gb_s: dict[str, float] = field(default_factory=dict)  # total
    collect: dict[str, float] = field(default_factory=dict)
    aggregate: dict[str, float] = field(default_factory=dict)
    batches: list[dict[str, Any]] = field(default_factory=list)
    max_score_changed_per_account_per_batch: int = 0
    score_changed_entries: int = 0

    def per_event(self, value: float) -> float:
        return value / self.events if self.events else math.nan


def phase_figures(bench: Bench, phase: str, events: int, http_requests: int, request_bytes: int = 0) -> PhaseFigures:
    meter = bench.meter
    figures = PhaseFigures(phase, events, http_requests, request_bytes)
    for invocation in meter.of(phase):
        figures.invocations[invocation.function] = figures.invocations.get(invocation.function, 0) + 1
    for function, count in figures.invocations.items():
        runs = meter.of(phase, function)
        memory_gb = bench.stack.functions[function].memory_size / 1024
        figures.own_cpu_ms[function] = 1000 * sum(i.own_cpu for i in runs) / count
        # Lambda bills each invocation by the millisecond (rounded up)
        figures.billed_gb_s[function] = sum(math.ceil(i.own_cpu * 1000) / 1000 * memory_gb for i in runs)
    figures.collect = dict(meter.totals(phase, "CollectFunction"))
    figures.aggregate = dict(meter.totals(phase, "AggregateFunction"))
    for invocation in meter.of(phase, "AggregateFunction"):
        figures.batches.append(batch_row(invocation))
        if invocation.score_changed:
            figures.max_score_changed_per_account_per_batch = max(
                figures.max_score_changed_per_account_per_batch, max(invocation.score_changed.values()))
        figures.score_changed_entries += sum(invocation.score_changed.values())
    return figures


def batch_row(invocation: Invocation) -> dict[str, Any]:
    counts = invocation.counts
    return {**invocation.records, "contact_writes": counts["write:contact"], "account_writes": counts["write:account"],
            "history_writes": counts["write:history"], "history_bytes": counts["max_history_bytes"],
            "keys_read": counts["keys_read"], "ddb_requests": counts["ddb_requests"],
            "bus_entries": counts["bus_entries"]}


def cost_breakdown(bench: Bench, figures: PhaseFigures) -> dict[str, float]:
    """USD per million accepted events, by component."""
    million = 1e6 / figures.events
    collect, aggregate = figures.collect, figures.aggregate
    lambda_requests = sum(figures.invocations.values())
    gb_s = sum(figures.billed_gb_s.values())
    return {
        "HTTP API requests": figures.http_requests * PRICES["http_request"] * million,
        "Lambda requests": lambda_requests * PRICES["lambda_request"] * million,
        "Lambda compute (arm64)": gb_s * PRICES["gb_second_arm64"] * million,
        "DynamoDB writes: collect (events)": collect.get("wcu", 0) * PRICES["wcu"] * million,
        "DynamoDB writes: contacts": aggregate.get("wcu:contact", 0) * PRICES["wcu"] * million,
        "DynamoDB writes: accounts": aggregate.get("wcu:account", 0) * PRICES["wcu"] * million,
        "DynamoDB writes: account history": aggregate.get("wcu:history", 0) * PRICES["wcu"] * million,
        "DynamoDB writes: DueIndex (GSI)": aggregate.get("gsi_wcu", 0) * PRICES["wcu"] * million,
        "DynamoDB reads": (collect.get("rcu", 0) + aggregate.get("rcu", 0)) * PRICES["rcu"] * million,
        "EventBridge entries": aggregate.get("bus_entries", 0) * PRICES["bus_entry"] * million,
    }


# ------------------------------------------------------------------ the runs


@dataclass
class PipelineResult:
    population: Population
    singles: PhaseFigures
    batched: PhaseFigures
    burst: PhaseFigures | None
    burst_account_writes: int = 0
    burst_events: int = 0
    stream_batch_size: int = 100
    cost_singles: dict[str, float] = field(default_factory=dict)
    cost_batched: dict[str, float] = field(default_factory=dict)
    cost_batched_local: dict[str, float] = field(default_factory=dict)
    item_bytes: dict[str, int] = field(default_factory=dict)
    #: a history read of the burst account: whole, and its last steps only (items read each)
    history_read: dict[str, int] = field(default_factory=dict)
    #: the same events through the collect function's Function URL: "single", "batch"
    function_url: dict[str, PhaseFigures] = field(default_factory=dict)


def run_pipeline(bench: Bench, population: Population, burst_events: int) -> PipelineResult:
    n = population.contacts
    now = START
    # Setup (not measured): every contact exists with its account, as in steady state.
    bench.set_clock(now)
    send_batches(bench, [population.message(i, "seed", "Signed Up") for i in range(n)], now)
    bench.pump()

    now += timedelta(hours=2)
    bench.set_clock(now)
    with bench.meter.measuring("single"):
        sent = send_singles(bench, [population.message(i, "single") for i in range(n)], now)
        bench.pump()
    singles = phase_figures(bench, "single", n, http_requests=n, request_bytes=sent)

    now += timedelta(hours=2)
    bench.set_clock(now)
    with bench.meter.measuring("batch"):
        sent = send_batches(bench, [population.message(i, "batch") for i in range(n)], now)
        bench.pump()
    batched = phase_figures(bench, "batch", n, http_requests=math.ceil(n / 100), request_bytes=sent)

    # For information: batches with locality (each batch of 100 = 10 contacts x 10 events, one account).
    now += timedelta(hours=2)
    bench.set_clock(now)
    local = [population.message(i // 10, f"local-{i}") for i in range(n)]
    with bench.meter.measuring("batch-local"):
        sent = send_batches(bench, local, now)
        bench.pump()
    batched_local = phase_figures(bench, "batch-local", n, http_requests=math.ceil(n / 100), request_bytes=sent)
    url_figures: dict[str, PhaseFigures] = {}

    # The Function URL's door: a sample of the same events (singles, then batches of 100) as the
    # function's URL delivers them, to check that collection does what it does behind the HTTP API.
    sample = min(n, 200)
    for name, send in (("single", send_singles), ("batch", send_batches)):
        now += timedelta(hours=2)
        bench.set_clock(now)
        with bench.meter.measuring(f"url-{name}"):
            sent = send(bench, [population.message(i, f"url-{name}") for i in range(sample)], now,
                        door="function_url")
            bench.pump()
        url_figures[name] = phase_figures(bench, f"url-{name}", sample, request_bytes=sent,
                                          http_requests=sample if name == "single" else math.ceil(sample / 100))

    result = PipelineResult(population, singles, batched, None, function_url=url_figures)
    result.cost_batched_local = cost_breakdown(bench, batched_local)
    result.stream_batch_size = bench.stack.functions["AggregateFunction"].events["TableStream"]["Properties"].get(
        "BatchSize", 100)
    result.cost_singles = cost_breakdown(bench, singles)
    result.cost_batched = cost_breakdown(bench, batched)
    result.item_bytes = {"event": int(singles.collect.get("max_item_bytes", 0)),
                         "contact or account (largest)": int(singles.aggregate.get("max_item_bytes", 0))}

    if burst_events:
        # A burst for one account: its 50 contacts send `burst_events` events between two stream polls.
        now += timedelta(hours=2)
        bench.set_clock(now)
        burst_population = Population(contacts=50, per_account=50, mix=population.mix)
        messages = []
        for k in range(burst_events):
            message = burst_population.message(k % 50, f"burst-{k}")
            message["userId"] = f"u-burst{k % 50}"
            message["timestamp"] = (now - timedelta(seconds=burst_events) + timedelta(seconds=k)).isoformat()
            message["context"]["traits"]["email"] = f"burst{k % 50}@burst-account.io"
            messages.append(message)
        with bench.meter.measuring("burst"):
            sent = send_batches(bench, messages, now)
            bench.pump()
        result.burst = phase_figures(bench, "burst", burst_events, http_requests=math.ceil(burst_events / 100),
                                     request_bytes=sent)
        result.burst_account_writes = int(result.burst.aggregate.get("write:account", 0))
        result.burst_events = burst_events
    result.history_read = measure_history_read(bench, now, population.account(0))
    return result


def measure_history_read(bench: Bench, now: datetime, account_id: str) -> dict[str, int]:
    """Items a history read reads: the account's whole history, then only its last two steps
    (`from` the second step from the end): the second reads what the range holds, not the rest."""
    def read(phase: str, **query: str) -> tuple[list[dict[str, Any]], int]:
        route = "GET /v1/accounts/{accountId}/history"
        event = http_event("GET", f"/v1/accounts/{account_id}/history", route_key=route, now=now,
                           query={"limit": "200", **query}, path_parameters={"accountId": account_id})
        with bench.meter.measuring(phase):
            response = bench.stack.invoke("ReadApiFunction", event)
        if response["statusCode"] != 200:
            raise RuntimeError(f"history answered {response['statusCode']}: {response.get('body')}")
        items = int(bench.meter.totals(phase, "ReadApiFunction").get("items_read", 0))
        return json.loads(response["body"])["steps"], items

    steps, all_items = read("history-all")
    window = steps[-2:]
    _, window_items = read("history-window", **{"from": window[0]["at"]}) if window else ([], 0)
    return {"all_steps": len(steps), "all_items": all_items, "window_steps": len(window),
            "window_items": window_items}
