"""Routing's budget: what routing an SDR-ready account costs, and what the routing pass reads.

PRODUCT "Budgets", Routing: per routed account at most one DynamoDB transaction plus the
reads it needs, one SQS send and one bus event; the SLA and no-SDR-available passes read at
most 1.2 items per account due, through an index, never a scan; routing cost does not grow
with the number of accounts or SDRs.

- **Per routed account**, at two team sizes (one pool of 3 SDRs, then of 30): one real
  SDR-ready account is made through the pipeline (a VP who requested a demo), then cloned into
  `accounts` accounts with an uncounted client; each gets its `Account SDR Ready` (the route
  function invoked as the bus rule would), then the stream runs (the aggregate function sends
  the routed message and `Account Routed`: the routing transaction is the outbox). Counted:
  the route function's DynamoDB requests, items read and capacity units, the aggregate
  function's SQS sends and bus entries, the messages on the queue.
- **The routing pass** at two table sizes (`sizes` contacts preloaded as the decay section does):
  `accounts` accounts routed as above, the clock moved past their SLA, the pass run once on
  its schedule: every account is due and re-routed to the pool's next SDR. Counted: items
  read (index Query items + BatchGetItem items) per account due, Scan calls, transactions.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bench.pipeline import PRICES, START
from bench.stack import Bench, light_transaction_backups, metered_stack

PRICES_ROUTING = {  # list prices, USD (us-east-1), on top of bench.pipeline.PRICES
    "sqs_fifo_request": 0.50 / 1e6,
}
QUALIFYING_USER = "u-vp-template.io"


@dataclass
class RouteFigures:
    team_size: int
    routed: int
    messages: int
    full: int = 0  # SDRs of the pool at their daily capacity while measured
    to_full: int = 0  # accounts routed to one of them (none: the capacity holds)
    counts: dict[str, float] = field(default_factory=dict)  # route function, summed
    stream: dict[str, float] = field(default_factory=dict)  # aggregate function (the outbox), summed
    cost: dict[str, float] = field(default_factory=dict)  # USD per million routed accounts

    def per_routed(self, value: float) -> float:
        return value / self.routed if self.routed else float("nan")


@dataclass
class PassFigures:
    table_contacts: int
    due: int
    rerouted: int
    items_read: int
    scans: int
    transactions: int
    sends: int
    rcu: float = 0.0
    wcu: float = 0.0  # the transactions (2x) and their index entries
    cpu_ms: float = 0.0  # the pass function's own CPU

    @property
    def items_read_per_due(self) -> float:
        return self.items_read / self.due if self.due else float("nan")


def full_members(size: int, full: int) -> set[str]:
    """`full` SDRs of a pool of `size`, spread over it (every third, for 10 of 30)."""
    step = max(1, size // full) if full else 1
    return {f"sdr{i:02d}" for i in range(0, size, step)[:full]}


def team(size: int, full: int = 0) -> Any:
    """One pool of `size` equal SDRs (a capacity no run reaches), round-robin; `full` of them
    (`full_members`) take one account a day."""
    from leadscore.rulesfiles.routing import RoutingConfig

    one = full_members(size, full)
    sdrs = [{"id": f"sdr{i:02d}", "name": f"SDR {i}", "email": f"sdr{i:02d}@example.com",
             "daily_capacity": 1 if f"sdr{i:02d}" in one else 10_000} for i in range(size)]
    return RoutingConfig.model_validate({"version": 1, "mode": "round_robin", "sdrs": sdrs,
                                         "pools": [{"id": "team", "sdrs": [s["id"] for s in sdrs]}],
                                         "fallback_pool": "team"})


@contextmanager
def routing_config(config: Any) -> Iterator[None]:
    from leadscore.adapters import runtime
    original = runtime.routing
    runtime.routing = functools.cache(lambda: config)
    try:
        yield
    finally:
        runtime.routing = original


@contextmanager
def route_rule_paused(bench: Bench) -> Iterator[None]:
    """The route function's bus rule delivers nothing meanwhile: the bench invokes it itself."""
    spec = bench.stack.functions["RouteFunction"]
    events, spec.events = spec.events, {}
    try:
        yield
    finally:
        spec.events = events


def seed_ready_accounts(bench: Bench, count: int) -> list[str]:
    """`count` SDR-ready accounts: one made through the pipeline, cloned with the uncounted
    client; the stream is moved past the clones (nothing but the bench acts on them)."""
    from dataclasses import replace

    from leadscore.adapters.items import account_from_item, account_item, account_pk, key_item
    from leadscore.adapters.storage import marshal, unmarshal

    domain = "template.io"
    company = {"name": "Template", "website": f"https://www.{domain}", "industry": "Software", "employees": 200,
               "address": {"country": "US"}}
    batch: list[dict[str, Any]] = [
        {"type": "identify", "userId": QUALIFYING_USER,
         "traits": {"email": f"vp@{domain}", "name": "Vp Template", "title": "VP Sales"}},
        {"type": "group", "userId": QUALIFYING_USER, "groupId": domain, "traits": company},
        {"type": "track", "userId": QUALIFYING_USER, "event": "Demo Requested"},
        {"type": "track", "userId": QUALIFYING_USER, "event": "Demo Link Clicked"},
    ]
    now = START
    bench.set_clock(now)
    stamped = [{**m, "timestamp": now.isoformat(), "messageId": f"seed-{i}"} for i, m in enumerate(batch)]
    answer = bench.http("POST", "/v1/batch", now, body={"batch": stamped}, basic_user="wk_demo_website")
    assert answer["statusCode"] == 200, answer
    bench.pump()
    found = bench.meter.shadow.get_item(TableName=bench.table, Key=marshal(key_item(account_pk(domain))),
                                        ConsistentRead=True)
    template = account_from_item(unmarshal(found["Item"]))
    assert template.state == "sdr_ready", f"the template account is {template.state}"
    ids = [f"acct{i:05d}.io" for i in range(count)]
    requests = []
    for account_id in ids:
        clone = replace(template, id=account_id, domain=account_id, name=account_id.split(".")[0].title())
        requests.append({"PutRequest": {"Item": marshal(account_item(clone))}})
        if len(requests) == 25:
            bench.meter.shadow.batch_write_item(RequestItems={bench.table: requests})
            requests = []
    if requests:
        bench.meter.shadow.batch_write_item(RequestItems={bench.table: requests})
    bench.stack.skip_stream_records()
    return ids


def sdr_ready_event(account_id: str, cycle: int = 1) -> dict[str, Any]:
    """What the route function's bus rule delivers."""
    return {"version": "0", "id": f"bench-{account_id}", "detail-type": "Account SDR Ready", "source": "leadscore",
            "account": "123456789012", "time": START.isoformat(), "region": "us-east-1", "resources": [],
            "detail": {"accountId": account_id, "cycle": cycle}}


def queued_messages(bench: Bench) -> int:
    sqs = bench.stack.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=bench.stack.url_of("RoutedQueue"),
                                          AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def route_cost(bench: Bench, figures: RouteFigures, phase: str) -> dict[str, float]:
    """USD per million routed accounts, by component: the route function's invocation, compute
    and DynamoDB, and the outbox's share of the aggregate function (its compute for the routed
    records, the SQS send, the bus entry). The aggregate invocation itself is not charged: it
    runs for the stream batch anyway."""
    million = 1e6 / figures.routed
    route, stream = figures.counts, figures.stream

    def gb_s(function: str) -> float:
        memory_gb = bench.stack.functions[function].memory_size / 1024
        return sum(math.ceil(i.own_cpu * 1000) / 1000 * memory_gb for i in bench.meter.of(phase, function))

    return {
        "Lambda requests (route)": figures.routed * PRICES["lambda_request"] * million,
        "Lambda compute (arm64, route + outbox)": (gb_s("RouteFunction") + gb_s("AggregateFunction"))
        * PRICES["gb_second_arm64"] * million,
        "DynamoDB writes (the transaction, DueIndex)": route.get("wcu", 0) * PRICES["wcu"] * million,
        "DynamoDB reads": route.get("rcu", 0) * PRICES["rcu"] * million,
        "SQS FIFO send": stream.get("sqs:SendMessage", 0) * PRICES_ROUTING["sqs_fifo_request"] * million,
        "EventBridge entry (Account Routed)": stream.get("bus:Account Routed", 0) * PRICES["bus_entry"] * million,
    }


def run_routes(team_size: int, accounts: int, full: int = 0) -> RouteFigures:
    """With `full`: the pool's first `team_size` accounts are routed first (not measured), one
    each, which fills the `full` SDRs who take one a day; then `accounts` are measured, each
    in an invocation of its own (a fresh router: what every `Account SDR Ready` pays)."""
    with metered_stack() as bench, routing_config(team(team_size, full)), route_rule_paused(bench):
        ids = seed_ready_accounts(bench, accounts + (team_size if full else 0))
        if full:
            filling, ids = ids[:team_size], ids[team_size:]
            assert all(bench.stack.invoke("RouteFunction", sdr_ready_event(a))["status"] == "routed" for a in filling)
            bench.pump()
        with bench.meter.measuring("route"):
            answers = [bench.stack.invoke("RouteFunction", sdr_ready_event(a)) for a in ids]
            bench.pump()
        outcomes = [a["status"] for a in answers]
        messages = queued_messages(bench) - (team_size if full else 0)
        figures = RouteFigures(team_size=team_size, routed=outcomes.count("routed"), messages=messages, full=full,
                               to_full=sum(a.get("sdr") in full_members(team_size, full) for a in answers),
                               counts=dict(bench.meter.totals("route", "RouteFunction")),
                               stream=dict(bench.meter.totals("route", "AggregateFunction")))
        figures.cost = route_cost(bench, figures, "route")
    return figures


class SerializedClient:
    """A DynamoDB client whose calls take turns: each call is atomic, as one request to
    DynamoDB is, and concurrent routes interleave between calls (moto in one process is not
    thread-safe). Counts the calls and the cancelled transactions."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.seconds: dict[str, float] = {}

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] += 1
                started = time.perf_counter()
                try:
                    return attribute(*args, **kwargs)
                except self._client.exceptions.TransactionCanceledException:
                    self.calls["cancelled"] += 1
                    raise
                finally:
                    self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
        return call


@dataclass
class Burst:
    """What N route functions running at once, one `Account SDR Ready` each, gave."""

    outcomes: dict[str, dict[str, Any]]  # account -> the function's answer
    errors: dict[str, str]  # account -> the function error
    calls: Counter[str]  # DynamoDB calls of the route functions (and cancelled transactions)
    seconds: float
    client: SerializedClient

    def per_sdr(self, sdrs: Iterable[str]) -> dict[str, int]:
        counts = Counter(o.get("sdr") for o in self.outcomes.values() if o.get("status") == "routed")
        return {sdr: counts.get(sdr, 0) for sdr in sdrs}


def concurrent_routes(stack: Any, account_ids: list[str], cycle: int = 1) -> Burst:
    """Run the route function's handler on one thread per account, all released at once (a
    burst of `Account SDR Ready` into one pool; Lambda runs one invocation per container at
    a time, so each thread is a container of its own). The function's DynamoDB calls go
    through one `SerializedClient`."""
    from leadscore.adapters import runtime
    spec = stack.functions["RouteFunction"]
    handler = getattr(stack.module("RouteFunction"), spec.function_name)
    outcomes: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    barrier = threading.Barrier(len(account_ids), timeout=60)
    # moto backs a transaction up by deep-copying its table, stream included: 90 ms a call
    # here, where DynamoDB takes about 10; the light backup keeps moto's calls near that
    with stack._function_env(spec), light_transaction_backups():
        store = runtime.store()
        client = store.client
        serialized = SerializedClient(client)
        store.table._client = serialized

        def one(account_id: str) -> None:
            barrier.wait()
            try:
                outcomes[account_id] = handler(sdr_ready_event(account_id, cycle), stack.context("RouteFunction"))
            except Exception as error:  # a function error: Lambda would retry the event
                errors[account_id] = f"{type(error).__name__}: {error}"

        started = time.perf_counter()
        threads = [threading.Thread(target=one, args=(a,)) for a in account_ids]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            store.table._client = client
    return Burst(outcomes, errors, serialized.calls, time.perf_counter() - started, serialized)


@dataclass
class BurstFigures:
    accounts: int
    team_size: int
    routed: int
    function_errors: int
    messages: int
    per_sdr: dict[str, int]
    transactions: int
    cancelled: int
    reads: int
    seconds: float

    @property
    def spread(self) -> int:
        """The most and the fewest accounts an SDR got, apart (0 or 1 is fair for equal weights)."""
        return max(self.per_sdr.values()) - min(self.per_sdr.values())


def run_burst(accounts: int, team_size: int = 3) -> BurstFigures:
    """`accounts` route functions at once into one pool of `team_size` equal SDRs."""
    config = team(team_size)
    with metered_stack() as bench, routing_config(config), route_rule_paused(bench):
        ids = seed_ready_accounts(bench, accounts)
        burst = concurrent_routes(bench.stack, ids)
        bench.pump()
        return BurstFigures(
            accounts=accounts, team_size=team_size,
            routed=sum(o.get("status") == "routed" for o in burst.outcomes.values()),
            function_errors=len(burst.errors), messages=queued_messages(bench),
            per_sdr=burst.per_sdr(s.id for s in config.sdrs), transactions=burst.calls["transact_write_items"],
            cancelled=burst.calls["cancelled"], reads=burst.calls["batch_get_item"], seconds=burst.seconds)


def run_pass(table_contacts: int, accounts: int, team_size: int = 3) -> PassFigures:
    from bench.decay import preload_contacts

    with metered_stack() as bench, routing_config(team(team_size)), route_rule_paused(bench), \
            light_transaction_backups():
        ids = seed_ready_accounts(bench, accounts)
        for account_id in ["template.io", *ids]:  # the template too: else the pass finds it waiting
            assert bench.stack.invoke("RouteFunction", sdr_ready_event(account_id))["status"] == "routed"
        bench.pump()
        later = START + timedelta(hours=49)  # every SLA (48 h) has run out
        preload_contacts(bench, table_contacts, min(200, table_contacts // 10), later)
        bench.stack.skip_stream_records()
        bench.set_clock(later)
        with bench.meter.measuring("pass"):
            result = bench.stack.run_schedule("RoutingPassFunction", later)
            bench.pump()
        counts = bench.meter.totals("pass", "RoutingPassFunction")
        stream = bench.meter.totals("pass", "AggregateFunction")
        cpu = sum(i.own_cpu for i in bench.meter.of("pass", "RoutingPassFunction"))
    return PassFigures(table_contacts=table_contacts, due=int(result["due"]), rerouted=int(result["rerouted"]),
                       items_read=int(counts["items_read"]), scans=int(counts["ddb:Scan"]),
                       transactions=int(counts["ddb:TransactWriteItems"]), sends=int(stream["sqs:SendMessage"]),
                       rcu=float(counts["rcu"]), wcu=float(counts["wcu"]), cpu_ms=1000 * cpu)
