"""`make bench` / `python -m bench.run`: measure the PRODUCT budgets and print one table.

Every figure is counted on the local stack of template.yaml (moto, in-process), from the
calls the functions make: DynamoDB requests and capacity units, EventBridge entries, Lambda
invocations; CPU time only where a budget is about CPU (rules engine, cold start, compute
cost). Exit status 1 when any budget fails. Results also go to bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT / "shared") not in sys.path:  # the layer, as in Lambda (also when not pip-installed)
    sys.path.insert(0, str(REPO_ROOT / "shared"))

RESULTS = Path(__file__).resolve().parent / "results.json"


@dataclass
class Row:
    section: str
    metric: str
    measured: float | str
    budget: str = ""
    ok: bool | None = None  # None: for information

    @property
    def status(self) -> str:
        return "info" if self.ok is None else "ok" if self.ok else "FAIL"


def _fmt(value: float | str) -> str:
    if isinstance(value, str):
        return value
    if math.isnan(value):
        return "n/a"
    if value == 0:
        return "0"
    if value == int(value) and abs(value) >= 1:
        return f"{int(value)}"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


#: How far a pass's own CPU time per item due may move between table sizes: CPU time (unlike the
#: counted figures) varies between runs on a shared machine; a pass that read the table would
#: grow 10x from 10,000 to 100,000 contacts.
CPU_FLAT = 1.5


def budget_row(section: str, metric: str, measured: float, limit: float, unit: str = "") -> Row:
    return Row(section, metric, measured, f"<= {_fmt(limit)}{unit}", bool(measured <= limit + 1e-9))


# ------------------------------------------------------------------ sections


def pipeline_rows(args: argparse.Namespace, raw: dict[str, Any]) -> list[Row]:
    from bench.pipeline import Population, run_pipeline
    from bench.stack import metered_stack

    population = Population(args.contacts, per_account=args.contacts_per_account, mix=args.mix)
    with metered_stack() as bench:
        result = run_pipeline(bench, population, args.burst)
    singles, batched = result.singles, result.batched
    rows: list[Row] = []
    s = "1 collection"
    req_single = singles.per_event(singles.collect.get("ddb_requests", 0))
    wcu_single = singles.per_event(singles.collect.get("wcu", 0))
    req_batch = batched.per_event(batched.collect.get("ddb_requests", 0))
    wcu_batch = batched.per_event(batched.collect.get("wcu", 0))
    rows += [
        budget_row(s, f"DynamoDB requests / accepted event, {singles.events} single /v1/track", req_single, 2),
        budget_row(s, "write units / accepted event, single", wcu_single, 2),
        budget_row(s, "DynamoDB requests / event, /v1/batch of 100", req_batch, req_single),
        budget_row(s, "write units / event, /v1/batch of 100", wcu_batch, wcu_single),
        Row(s, "largest stored event (bytes; one WCU under 1024)", result.item_bytes["event"]),
        Row(s, "Collect own CPU per single request (ms)", singles.own_cpu_ms.get("CollectFunction", math.nan)),
        Row(s, "Collect own CPU per batch of 100 (ms)", batched.own_cpu_ms.get("CollectFunction", math.nan)),
    ]

    s = "2 aggregation"
    batches = singles.batches + batched.batches
    contact_ratio = max((b["contact_writes"] / b["contacts"] for b in batches if b["contacts"]), default=0.0)
    account_ratio = max((b["account_writes"] / b["accounts"] for b in batches if b["accounts"]), default=0.0)
    read_ratio = max((b["keys_read"] / (b["contacts"] + b["accounts"]) for b in batches
                      if b["contacts"] + b["accounts"]), default=0.0)
    stray_reads = sum(b["keys_read"] for b in batches if not b["contacts"] + b["accounts"])
    rows += [
        Row(s, "stream batches measured", len(batches)),
        budget_row(s, "contact writes / distinct contact, per stream batch (max)", contact_ratio, 1),
        budget_row(s, "account writes / distinct account, per stream batch (max)", account_ratio, 1),
        budget_row(s, "keys read / distinct keys of the batch (max)", read_ratio, 1),
        budget_row(s, "keys read by batches with no contact or account to fold", stray_reads, 0),
    ]
    s = "2b history"
    history_ratio = max((b["history_writes"] / b["account_records"] for b in batches if b["account_records"]),
                        default=0.0)
    collect_history = singles.collect.get("write:history", 0) + batched.collect.get("write:history", 0)
    rows += [
        budget_row(s, "history writes on the collection path", collect_history, 0),
        budget_row(s, "history writes / account written, per stream batch (max)", history_ratio, 1),
        Row(s, "largest history item (bytes)", max((b["history_bytes"] for b in batches), default=0)),
    ]
    if result.history_read:
        hr = result.history_read
        rows += [
            Row(s, "history read, an account's whole history: steps / items read",
                f"{hr['all_steps']} / {hr['all_items']}"),
            budget_row(s, f"history read, its last {hr['window_steps']} steps: items read "
                          "(<= steps + the account + the item before `from` + 1)",
                       hr["window_items"], hr["window_steps"] + 3),
        ]
    if result.burst is not None:
        limit = math.ceil(result.burst_events / result.stream_batch_size)
        burst = result.burst
        burst_batches = burst.batches
        rows += [
            budget_row(s, f"burst: account writes, {result.burst_events} events of one account "
                          f"(<= events / BatchSize {result.stream_batch_size})", result.burst_account_writes, limit),
            Row(s, "burst: stream batches (Aggregate invocations)", burst.invocations.get("AggregateFunction", 0)),
            budget_row(s, "burst: account writes per stream batch (max)",
                       max((b["account_writes"] for b in burst_batches), default=0), 1),
            budget_row(s, "burst: contact writes / distinct contact, per stream batch (max)",
                       max((b["contact_writes"] / b["contacts"] for b in burst_batches if b["contacts"]), default=0),
                       1),
            # Contention: an account write conditional on a version another batch moved, then
            # re-read and retried. The local stream is one shard, read a batch at a time; in AWS one
            # function per shard, so at most the account writes above can meet each other.
            Row(s, "burst: refused conditional writes of the account (contention; one shard here)",
                burst.aggregate.get("ddb_failed", 0)),
            Row(s, "burst: account write units, all told", burst.aggregate.get("wcu:account", 0)),
            Row(s, "burst: collection write units / event (the stored events)",
                burst.per_event(burst.collect.get("wcu", 0))),
        ]

    s = "4 state changes"
    phases = [singles, batched] + ([result.burst] if result.burst else [])
    worst = max(p.max_score_changed_per_account_per_batch for p in phases)
    rows += [
        budget_row(s, "`Account Score Changed` entries per account per stream batch (max)", worst, 1),
        Row(s, "bus entries / event, singles", singles.per_event(singles.aggregate.get("bus_entries", 0))),
    ]
    if result.burst is not None:
        rows.append(Row(s, f"burst: bus entries for {result.burst_events} events of one account",
                        result.burst.aggregate.get("bus_entries", 0)))

    s = "7 cost"
    assumption = (f"{args.contacts} existing contacts, {args.contacts_per_account} per account, one `track` "
                  f"per contact per phase, sent in contact order ('{args.mix}' mix)")
    rows.append(Row(s, "assumption", assumption))
    total_single = sum(result.cost_singles.values())
    total_batched = sum(result.cost_batched.values())
    rows.append(budget_row(s, "USD / million single HTTP events, distinct contacts", total_single, 3.50))
    rows += [Row(s, f"  single: {k}", v) for k, v in result.cost_singles.items()]
    rows.append(budget_row(s, "USD / million events in /v1/batch of 100, distinct contacts", total_batched, 1.50))
    rows += [Row(s, f"  batch: {k}", v) for k, v in result.cost_batched.items()]
    rows.append(Row(s, "USD / million events in /v1/batch of 100, 10 contacts x 10 events per batch",
                    sum(result.cost_batched_local.values())))
    rows += front_door_rows(args, raw, result)
    raw["pipeline"] = {
        "population": asdict(population),
        "singles": asdict(singles), "batched": asdict(batched),
        "burst": asdict(result.burst) if result.burst else None,
        "cost_singles": result.cost_singles, "cost_batched": result.cost_batched,
        "cost_batched_local": result.cost_batched_local, "item_bytes": result.item_bytes,
        "function_url": {name: asdict(f) for name, f in result.function_url.items()},
    }
    return rows


def front_door_rows(args: argparse.Namespace, raw: dict[str, Any], result: Any) -> list[Row]:
    """Section 7b (bench/frontdoor.py): the cost per million events behind each front door,
    single and batched, the Function URL's budgets, and what a batch would need for $1.00."""
    from bench import frontdoor as fd
    from bench.stack import TEMPLATE
    from local.stack import load_template

    s = "7b front doors"
    singles = fd.door_costs(result.singles, result.cost_singles)
    batched = fd.door_costs(result.batched, result.cost_batched)
    rows: list[Row] = []
    for door in fd.DOORS:
        rows.append(Row(s, f"USD / million single events, {door}", sum(singles[door].values())))
        rows.append(Row(s, f"USD / million events in batches of 100, {door}", sum(batched[door].values())))
    # The Function URL door measured on a sample: collection asks DynamoDB the same per event.
    for name, http in (("single", result.singles), ("batch", result.batched)):
        url = result.function_url.get(name)
        if url is None:
            continue
        def per_event(f: Any) -> tuple[float, ...]:
            return tuple(round(f.per_event(f.collect.get(k, 0)), 6) for k in ("ddb_requests", "wcu", "rcu"))
        rows += [
            Row(s, f"{name} through the Function URL ({url.events} events): collection's DynamoDB requests / "
                   "write units / read units per event as through the HTTP API",
                " / ".join(f"{v:g}" for v in per_event(url)), "same", per_event(url) == per_event(http)),
            Row(s, f"  {name}: Collect own CPU per request, HTTP API / Function URL (ms)",
                f"{http.own_cpu_ms.get('CollectFunction', math.nan):.2f} / "
                f"{url.own_cpu_ms.get('CollectFunction', math.nan):.2f}"),
        ]
    single_url = sum(singles["Function URL"].values())
    batch_url = sum(batched["Function URL"].values())
    rows.append(budget_row(s, "USD / million single events, Function URL, distinct contacts", single_url,
                           fd.FUNCTION_URL_SINGLE_BUDGET))
    met = batch_url <= fd.FUNCTION_URL_BATCH_TARGET + 1e-9
    rows.append(Row(s, "USD / million events in batches of 100, Function URL (target where PRODUCT allows)",
                    batch_url, f"<= {fd.FUNCTION_URL_BATCH_TARGET:.2f} target", True if met else None))
    # What the batched cost is made of, and what $1.00 would take (each lever priced from the counters).
    figures = {"single": (result.singles, singles["Function URL"]), "batch": (result.batched, batched["Function URL"])}
    anatomies = {name: fd.anatomy(phase, costs) for name, (phase, costs) in figures.items()}
    for name, limit in (("single", fd.FUNCTION_URL_SINGLE_BUDGET), ("batch", fd.FUNCTION_URL_BATCH_TARGET)):
        a = anatomies[name]
        top = a.components[0]
        rows.append(Row(s, f"  {name}, Function URL: largest part, {top.name} (USD)", top.usd))
        for lever in a.levers:
            rows.append(Row(s, f"  {name} would take: {lever.name} (saves {lever.saves:.3f}); total", lever.after))
        rows.append(Row(s, f"  {name}, Function URL, with every lever (printed below)", a.with_levers,
                        f"vs {limit:.2f}"))
    template_rules = fd.template_waf_rules(load_template(TEMPLATE))
    rules = fd.DEFAULT_WAF_RULES if template_rules is None else template_rules
    rows.append(Row(s, f"WAF's monthly charge: a web ACL and {rules} rules (USD a month, on top of the per-million "
                       "figures)", fd.waf_monthly(rules)))
    raw["front_doors"] = {
        "single": singles, "batch": batched, "waf_rules": rules, "waf_monthly": fd.waf_monthly(rules),
        "single_budget": fd.FUNCTION_URL_SINGLE_BUDGET, "batch_target": fd.FUNCTION_URL_BATCH_TARGET,
        "anatomy": {name: {"total": a.total, "with_levers": a.with_levers,
                           "components": [vars(c) for c in a.components], "levers": [vars(lv) for lv in a.levers]}
                    for name, a in anatomies.items()},
    }
    return rows


def print_front_doors(raw: dict[str, Any]) -> None:
    """The cost per million events behind each front door, side by side, by component."""
    doors = raw.get("front_doors")
    if not doors:
        return
    names = list(doors["single"])
    short = {"HTTP API": "HTTP API", "Function URL": "Fn URL", "Function URL + CloudFront": "Fn URL+CF",
             "Function URL + CloudFront + WAF": "Fn URL+CF+WAF"}
    for phase, title in (("single", "single events"), ("batch", "events in /v1/batch of 100")):
        table = doors[phase]
        components = list(dict.fromkeys(k for door in names for k in table[door]))
        width = max(len(c) for c in components) + 2
        print(f"\nUSD per million {title}, by front door (the same Lambda, DynamoDB and bus requests behind each):")
        print(f"{'component':<{width}}" + "".join(f"{short.get(d, d):>15}" for d in names))
        for component in components:
            print(f"{component:<{width}}" + "".join(
                f"{table[d][component]:>15.4f}" if component in table[d] else f"{'-':>15}" for d in names))
        print(f"{'total':<{width}}" + "".join(f"{sum(table[d].values()):>15.3f}" for d in names))
    print(f"WAF adds ${doors['waf_monthly']:.2f} a month (a web ACL and {doors['waf_rules']} rules); CloudFront's "
          "flat-rate plans include WAF (bench/frontdoor.py)")
    for phase, limit in (("single", doors["single_budget"]), ("batch", doors["batch_target"])):
        a = doors["anatomy"][phase]
        what = "single events" if phase == "single" else "events in batches of 100"
        print(f"\nFunction URL, {what}: ${a['total']:.3f} per million, by part (largest first):")
        for c in a["components"]:
            floor = f"  floor: {c['floor']}" if c["floor"] else ""
            print(f"  {c['usd']:7.4f}  {c['units']:.3f} {c['unit']} / event  {c['name']}{floor}")
        print(f"What ${limit:.2f} would take (each lever priced from the same counters, in turn):")
        for lever in a["levers"]:
            print(f"  -{lever['saves']:.4f} -> {lever['after']:.3f}  {lever['name']}: {lever['needs']}")
        verdict = "reaches" if a["with_levers"] <= limit + 1e-9 else f"is short by ${a['with_levers'] - limit:.3f} of"
        print(f"  with every lever: ${a['with_levers']:.3f}, which {verdict} ${limit:.2f}")


def decay_rows(args: argparse.Namespace, raw: dict[str, Any]) -> list[Row]:
    from bench.decay import run_decay

    s = "3 decay"
    rows: list[Row] = []
    figures = [run_decay(size, args.decay_due) for size in args.decay_sizes]
    for f in figures:
        rows += [
            budget_row(s, f"items read / item due, table of {f.table_contacts} contacts, {f.due} due",
                       f.items_read_per_due, 1.2),
            Row(s, f"  table of {f.table_contacts}: read units / write units (DueIndex included) / requests "
                   "per item due", f"{f.per_due(f.rcu):.3f} / {f.per_due(f.wcu):.2f} / {f.per_due(f.requests):.3f}"),
            Row(s, f"  table of {f.table_contacts}: own CPU per item due (ms)", f.per_due(f.cpu_ms)),
        ]
    rows.append(budget_row(s, "Scan calls", sum(f.scans for f in figures), 0))
    if len(figures) > 1:
        small, large = figures[0], figures[-1]
        sizes = f"at {large.table_contacts} / at {small.table_contacts}"
        rows += [
            budget_row(s, f"flat: items read per due {sizes}", large.items_read_per_due / small.items_read_per_due,
                       1.1),
            budget_row(s, f"flat: read units and write units per due {sizes} (the larger)",
                       max(large.per_due(large.rcu) / small.per_due(small.rcu),
                           large.per_due(large.wcu) / small.per_due(small.wcu)), 1.1),
            # CPU time moves between runs on a shared machine: a looser ratio than the counted ones
            budget_row(s, f"flat: own CPU per due {sizes}", large.per_due(large.cpu_ms) / small.per_due(small.cpu_ms),
                       CPU_FLAT),
        ]
    raw["decay"] = [asdict(f) for f in figures]
    return rows


def engine_rows(args: argparse.Namespace, raw: dict[str, Any]) -> list[Row]:
    from bench.engine import run_engine

    s = "5 rules engine"
    rows: list[Row] = []
    figures = run_engine(args.engine_iterations)
    for f in figures:
        rows.append(budget_row(s, f"{f.sample}: engine CPU / json.loads CPU ({f.body_bytes} B body)", f.ratio, 3))
        rows.append(Row(s, f"  {f.sample}: json.loads / engine / parse_message (us)",
                        f"{f.json_us:.1f} / {f.engine_us:.1f} / {f.parse_us:.1f}"))
    raw["engine"] = [asdict(f) | {"ratio": f.ratio} for f in figures]
    return rows


def coldstart_rows(args: argparse.Namespace, raw: dict[str, Any]) -> list[Row]:
    from bench.coldstart import BUDGET, FUNCTIONS_DIR, as_built, run_coldstart, top_imports

    s = "6 cold start"
    rows: list[Row] = []
    results = run_coldstart(args.coldstart_runs)
    for c in results:
        rows.append(budget_row(s, f"{c.function}: first invocation, config included, vs boto3 + "
                                  f"{'/'.join(c.clients)} client(s) ({c.first_s * 1000:.0f} / "
                                  f"{c.baseline_s * 1000:.0f} ms)", c.first_ratio, BUDGET))
        rows.append(budget_row(s, f"  {c.function}: of which import + client(s)", c.ratio, BUDGET))
        if c.first_ratio > BUDGET:
            c.top_imports = top_imports(FUNCTIONS_DIR / c.function)
            for name, ms in c.top_imports:
                rows.append(Row(s, f"  {c.function}: import {name} (cumulative ms)", ms))
    rows.append(Row(s, "first invocation: loading the rules files (ms, median)",
                    1000 * sorted(c.config_s for c in results)[len(results) // 2]))
    shipped = as_built("collect", args.coldstart_runs)  # why `make build` ships the layer's bytecode
    rows.append(Row(s, "collect: first invocation, layer without bytecode (a plain sam build; make build "
                       "compiles it) vs boto3",
                    shipped.first_ratio))
    raw["coldstart"] = [asdict(c) | {"ratio": c.ratio, "first_ratio": c.first_ratio} for c in [*results, shipped]]
    return rows


def routing_rows(args: argparse.Namespace, raw: dict[str, Any]) -> list[Row]:
    from bench.routing import run_burst, run_pass, run_routes

    s = "8 routing"
    rows: list[Row] = []
    routes = [run_routes(size, args.routing_accounts) for size in args.routing_teams]
    if args.routing_full:  # the largest pool again, some of its SDRs full
        routes.append(run_routes(args.routing_teams[-1], args.routing_accounts, args.routing_full))
    for f in routes:
        c, per = f.counts, f.per_routed
        pool = f"pool of {f.team_size} SDRs" + (f", {f.full} full" if f.full else "")
        outside = sum(c.get(f"ddb:{op}", 0) for op in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"))
        reads = sum(c.get(f"ddb:{op}", 0) for op in ("BatchGetItem", "GetItem", "Query", "Scan"))
        rows += [
            Row(s, f"{pool}: accounts routed / SDR-ready accounts", f"{f.routed} / {args.routing_accounts}",
                "all", f.routed == args.routing_accounts),
            budget_row(s, f"{pool}: transactions / routed account", per(c.get("ddb:TransactWriteItems", 0)), 1),
            budget_row(s, f"{pool}: DynamoDB writes outside the transaction / routed account", per(outside), 0),
            Row(s, f"{pool}: read requests / routed account (account + assignment, pool counter)", per(reads)),
            Row(s, f"{pool}: keys read / routed account", per(c.get("keys_read", 0))),
            Row(s, f"{pool}: write units / routed account (transaction 2x, DueIndex, OwnerIndex)",
                per(c.get("wcu", 0))),
            budget_row(s, f"{pool}: SQS sends / routed account (from the stream: the outbox)",
                       per(f.stream.get("sqs:SendMessage", 0)), 1),
            Row(s, f"{pool}: messages on the routed queue / routed account", per(f.messages), "= 1",
                f.messages == f.routed),
            budget_row(s, f"{pool}: `Account Routed` bus entries / routed account",
                       per(f.stream.get("bus:Account Routed", 0)), 1),
        ]
        if f.full:
            rows += [budget_row(s, f"{pool}: refused transactions / routed account", per(c.get("ddb_failed", 0)), 0),
                     Row(s, f"{pool}: accounts routed to a full SDR", f.to_full, "0", f.to_full == 0)]
    if len(routes) > 1:
        small = routes[0]
        for large in routes[1:]:
            growth = large.per_routed(large.counts.get("keys_read", 0)) / small.per_routed(
                small.counts.get("keys_read", 0))
            rows.append(budget_row(s, f"flat: keys read per routed account, pool of {large.team_size}"
                                      + (f" ({large.full} full)" if large.full else "") + f" / of {small.team_size}",
                                   growth, 1.0))
    if args.routing_burst:
        b = run_burst(args.routing_burst)
        rows += [
            Row(s, f"{b.accounts} routes at once into one pool of {b.team_size}: routed / accounts",
                f"{b.routed} / {b.accounts}", "all", b.routed == b.messages == b.accounts),
            budget_row(s, f"{b.accounts} routes at once: function errors", b.function_errors, 0),
            Row(s, f"{b.accounts} routes at once: most - fewest accounts per SDR", b.spread, "<= 1", b.spread <= 1),
            Row(s, f"{b.accounts} routes at once: transactions (refused) / routed account",
                f"{b.transactions / b.accounts:.2f} ({b.cancelled / b.accounts:.2f})"),
            Row(s, f"{b.accounts} routes at once: seconds, every DynamoDB call taking its turn", b.seconds),
        ]
        raw["routing_burst"] = vars(b)
    passes = [run_pass(size, args.routing_accounts) for size in args.routing_sizes]
    for p in passes:
        rows += [
            budget_row(s, f"SLA pass: items read / account due, table of {p.table_contacts} contacts, {p.due} due",
                       p.items_read_per_due, 1.2),
            Row(s, f"SLA pass: re-routed to the next SDR / due, table of {p.table_contacts}",
                f"{p.rerouted} / {p.due}", "all", p.rerouted == p.due),
            budget_row(s, f"SLA pass: transactions / account due, table of {p.table_contacts}",
                       p.transactions / p.due, 1),
            Row(s, f"  SLA pass, table of {p.table_contacts}: read units / write units / own CPU (ms) per account due",
                f"{p.rcu / p.due:.3f} / {p.wcu / p.due:.2f} / {p.cpu_ms / p.due:.2f}"),
        ]
    rows.append(budget_row(s, "SLA pass: Scan calls", sum(p.scans for p in passes), 0))
    if len(passes) > 1:
        first, last = passes[0], passes[-1]
        sizes = f"at {last.table_contacts} / at {first.table_contacts}"
        rows += [
            budget_row(s, f"flat: SLA pass items read per due {sizes}",
                       last.items_read_per_due / first.items_read_per_due, 1.1),
            budget_row(s, f"flat: SLA pass read units and write units per due {sizes} (the larger)",
                       max(last.rcu / first.rcu, last.wcu / first.wcu) * first.due / last.due, 1.1),
            budget_row(s, f"flat: SLA pass own CPU per due {sizes}",
                       (last.cpu_ms / last.due) / (first.cpu_ms / first.due), CPU_FLAT),
        ]
    cost = routes[0].cost
    total = sum(cost.values())
    rows.append(Row(s, f"USD / million routed accounts (pool of {routes[0].team_size})", total))
    rows += [Row(s, f"  routing: {k}", v) for k, v in cost.items()]
    singles = raw.get("pipeline", {}).get("cost_singles")
    if singles:
        per_event = sum(singles.values())
        share = total / args.events_per_route
        rows.append(Row(s, f"routing's share of the cost per million single events, one routed account per "
                           f"{args.events_per_route} events (USD, % of {per_event:.2f})",
                        f"{share:.4f} ({100 * share / (per_event + share):.2f}%)"))
    raw["routing"] = {"routes": [vars(f) for f in routes], "passes": [vars(p) for p in passes]}
    return rows


def team_rows(args: argparse.Namespace, raw: dict[str, Any]) -> list[Row]:
    """The team lead's reads (bench/team.py): GET /v1/sdrs per SDR listed, a page of a book."""
    from bench.team import run_team

    s = "9 team lead"
    runs = [run_team(3, args.team_accounts), run_team(12, 3 * args.team_accounts)]
    rows: list[Row] = []
    for f in runs:
        c, b = f.counts, f.book
        team = f"{f.team_size} SDRs, {f.routed} accounts routed"
        requests = sum(c.get(f"ddb:{op}", 0) for op in ("Query", "GetItem", "BatchGetItem", "Scan"))
        rows += [
            budget_row(s, f"{team}: GET /v1/sdrs requests / SDR listed (one Query of her partition)",
                       requests / f.listed, 1),
            Row(s, f"{team}: GET /v1/sdrs items read / SDR listed", f.per_sdr("items_read")),
            Row(s, f"{team}: GET /v1/sdrs read units / SDR listed", f.per_sdr("rcu")),
            budget_row(s, f"{team}: scans", float(c.get("ddb:Scan", 0) + b.get("ddb:Scan", 0)), 0),
            Row(s, f"{team}: open accounts listed / routed", f"{f.open_listed} / {f.routed}", "all",
                f.open_listed == f.routed),
            budget_row(s, f"{team}: a book page of {f.book_accounts}: requests (OwnerIndex Query, accounts)",
                       float(b.get("ddb:Query", 0) + b.get("ddb:BatchGetItem", 0)), 2),
            Row(s, f"{team}: a book page of {f.book_accounts}: read units", float(b.get("rcu", 0))),
        ]
    small, large = runs
    rows.append(budget_row(s, f"flat: items read per SDR listed, {large.team_size} SDRs and {large.routed} accounts "
                              f"/ {small.team_size} and {small.routed}",
                           large.per_sdr("items_read") / small.per_sdr("items_read"), 1.0))
    raw["team"] = [vars(f) for f in runs]
    return rows


SECTIONS = {  # in the order they run: the CPU-timed ones first, on the heap of a fresh process
    "engine": engine_rows,
    "coldstart": coldstart_rows,
    "pipeline": pipeline_rows,  # collection, aggregation, state changes, cost (one run)
    "decay": decay_rows,
    "routing": routing_rows,  # after pipeline: routing's share of the cost uses its figures
    "team": team_rows,
}


# --- 9b: preview / calibration at any size (bench/evidence.py; planted accounts: --contacts of them)
def evidence_rows(args: argparse.Namespace, raw: dict[str, Any]) -> list[Row]:
    from bench.evidence import GOAL_SECONDS, run_evidence

    s = "9b preview at any size"
    f = run_evidence(accounts=args.contacts)
    one, most = f.runs[0], f.runs[-1]
    raw["evidence"] = asdict(f)
    return [Row(s, f"preview of {f.events} events, {f.segments} Scan segments: replay events/s, 1 process",
                round(one.replay_rate)),
            Row(s, f"  replay events/s, {most.processes} processes (scaling {f.scaling:.2f}x)",
                round(most.replay_rate)),
            Row(s, "  seconds in moto's Scan (walks the table per page; not DynamoDB's pace), 1 process",
                one.steps.get("scan", 0.0)),
            budget_row(s, "a million events replayed (seconds, at the better rate)", round(f.million_seconds),
                       GOAL_SECONDS)]


SECTIONS["evidence"] = evidence_rows


def print_table(rows: list[Row]) -> None:
    width = max(len(r.metric) for r in rows if r.metric != "assumption") + 2
    print(f"{'metric':<{width}} {'measured':>12}  {'budget':<14} status")
    section = None
    for r in sorted(rows, key=lambda r: r.section[:1]):
        if r.section != section:
            section = r.section
            print(f"-- {section} " + "-" * (width + 30 - len(section)))
        if r.metric == "assumption":
            print(f"   assumption: {r.measured}")
            continue
        print(f"{r.metric:<{width}} {_fmt(r.measured):>12}  {r.budget:<14} {r.status}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=2000,
                        help="contacts (= events per phase) of the collection/aggregation/cost run (2000)")
    parser.add_argument("--contacts-per-account", type=int, default=10, help="contacts per account (10)")
    parser.add_argument("--mix", choices=("typical", "scored"), default="typical",
                        help="event names: 'typical' (1 in 5 scored) or 'scored' (every event earns points)")
    parser.add_argument("--burst", type=int, default=10000,
                        help="events of the one-account burst (10000, PRODUCT's size); 0 skips it")
    parser.add_argument("--decay-sizes", type=lambda v: [int(x) for x in v.split(",")], default=[10000, 100000],
                        help="table sizes of the decay job, comma separated (10000,100000: PRODUCT's sizes)")
    parser.add_argument("--decay-due", type=int, default=200, help="contacts due at each size (200)")
    parser.add_argument("--engine-iterations", type=int, default=2000)
    parser.add_argument("--coldstart-runs", type=int, default=9,
                        help="fresh interpreters per side (9: the median of fewer moves by 0.15 on a shared machine)")
    parser.add_argument("--routing-accounts", type=int, default=60,
                        help="SDR-ready accounts routed, and due in the SLA pass (60)")
    parser.add_argument("--routing-teams", type=lambda v: [int(x) for x in v.split(",")], default=[3, 30],
                        help="SDRs in the pool, comma separated (3,30)")
    parser.add_argument("--routing-full", type=int, default=10,
                        help="SDRs of the largest pool at their daily capacity, a run of its own (10; 0 skips it)")
    parser.add_argument("--routing-burst", type=int, default=100,
                        help="route functions at once into one pool of 3 (100; 0 skips it)")
    parser.add_argument("--routing-sizes", type=lambda v: [int(x) for x in v.split(",")], default=[10000, 100000],
                        help="table sizes (contacts) of the SLA pass, comma separated (10000,100000)")
    parser.add_argument("--events-per-route", type=int, default=1000,
                        help="events per routed account, for routing's share of the cost (1000)")
    parser.add_argument("--team-accounts", type=int, default=30,
                        help="accounts routed to a pool of 3 before GET /v1/sdrs is measured; 3x to a pool of 12 (30)")
    parser.add_argument("--only", action="append", choices=sorted(SECTIONS), help="run only these sections")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"results file ({RESULTS.name})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows: list[Row] = []
    raw: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "seconds": {}}
    for name, section in SECTIONS.items():
        if args.only and name not in args.only:
            continue
        started = time.perf_counter()
        print(f"bench: {name}...", file=sys.stderr, flush=True)
        rows += section(args, raw)
        raw["seconds"][name] = round(time.perf_counter() - started, 1)
    print_table(rows)
    print_front_doors(raw)
    failed = [r for r in rows if r.ok is False]
    raw["rows"] = [asdict(r) | {"status": r.status} for r in rows]
    raw["failed"] = [r.metric for r in failed]
    args.json.write_text(json.dumps(raw, indent=2, default=str) + "\n")
    print(f"\n{len(failed)} budget(s) failed; details in {args.json}" if failed
          else f"\nall budgets hold; details in {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
