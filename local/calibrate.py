"""Calibration from outcomes: which rules raise the chance of closing, measured on your data.

    python -m local.calibrate [--data <outcomes.csv | .jsonl>] [--config config/] [--stack leadscore] [--json]
    make calibrate [DATA=<outcomes.csv | .jsonl>] [TARGET=0.10-0.15] [STACK=leadscore] [ARGS=--json]

The outcomes the table holds (a CRM's `Opportunity Won`/`Lost` events and group traits, sales
feedback: services/outcomes.py) are read in any case, a file's over them. The outcomes file
(CSV with the header `accountId,outcome,closedAt`, or JSON Lines with those keys; `outcome` is
won, lost or open, `closedAt` an ISO-8601 time with a zone, required for won and lost) is read
first: a bad row exits 2 naming its line and field. The table is read in parallel Scan
segments by `--processes` processes (against AWS or the local stack with `AWS_ENDPOINT_URL`;
a progress line per step on stderr); each closed account is rebuilt as it stood before its
outcome and every rule's lift on closing is measured (adapters/shards.py,
services/calibrate.py). Prints a table, or JSON with `--json`. Nothing is written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leadscore.rulesfiles.loading import load_config
from leadscore.services.calibrate import OutcomeError, parse_outcomes

from local import evidence, evidence_aws
from local.calibrate_sections import render_sections
from local.mapreduce import flags as mapreduce_flags


def render(report: dict[str, Any]) -> str:
    lines = [*(f"warning: {w}" for w in report["warnings"]),
             f"{report['closed']} closed accounts, {report['wins']} won (base close rate {report['baseRate']:.1%})",
             "", f"{'rule':<28} {'fired':>6} {'with':>7} {'without':>8} {'lift (pp)':>10} {'95% interval':>16}"
             f" {'points':>6}  support"]
    for row in report["rules"]:
        if row["liftPoints"] is None:
            lines.append(f"{row['rule']:<28} {row['fired']:>6} {row['closeRateWith']:>7.1%} {'-':>8} {'-':>10}"
                         f" {'-':>16} {'-':>6}  {row['support']}")
            continue
        low, high = row["liftInterval"]
        interval = f"[{low:+.1f}, {high:+.1f}]"
        points = "-" if row["suggestedPoints"] is None else f"{row['suggestedPoints']:+d}"
        lines.append(f"{row['rule']:<28} {row['fired']:>6} {row['closeRateWith']:>7.1%}"
                     f" {row['closeRateWithout']:>8.1%} {row['liftPoints']:>+10.1f} {interval:>16} {points:>6}"
                     f"  {row['support']}")
    threshold = report["threshold"]
    lines += ["", f"SDR-ready threshold {threshold['current']}: {threshold['accountsAtOrAbove']} closed accounts at or"
              f" above it" + (f", closing at {threshold['closeRateAtOrAbove']:.1%}"
                              if threshold["closeRateAtOrAbove"] is not None else ""),
              f"on fit alone: {threshold['sdrReadyOnFitAlone']} ({threshold['sdrReadyOnFitAloneShare']:.1%};"
              " the guides want about 5% or less)"]
    suggested = threshold["suggested"]
    low, high = threshold["target"]
    if suggested is None:
        lines.append(f"suggested threshold: none reaches a {low:.0%} close rate")
    else:
        below = suggested["closeRateBelow"]
        lines.append(f"suggested threshold for a {low:.0%}-{high:.0%} close rate: {suggested['threshold']}"
                     f" ({suggested['accountsAtOrAbove']} accounts at or above, closing at"
                     f" {suggested['closeRateAtOrAbove']:.1%}"
                     + (f"; below it {below:.1%}" if below is not None else "")
                     + ("" if suggested["withinTarget"] else "; above the target's range: no score gives less") + ")")
    lines += ["", f"backtest on {report['backtest']['heldOut']} held-out accounts (fitted without them):"]
    for name in ("current", "suggested"):
        test = report["backtest"][name]
        if test is None:
            continue
        shown = {k: "-" if test[k] is None else f"{test[k]:.1%}" for k in
                 ("closeRateAtOrAbove", "closeRateBelow", "precision", "recall")}
        lines.append(f"  {name} {test['threshold']}: {test['atOrAbove']} at or above, closing at "
                     f"{shown['closeRateAtOrAbove']} (below: {shown['closeRateBelow']});"
                     f" precision {shown['precision']}, recall {shown['recall']}")
    lines += ["", "lift chart (close rate by score band):"]
    lines += [f"  {band['scoreFrom']:>6} - {band['scoreTo']:<6} {band['accounts']:>4} accounts  "
              f"{band['closeRate']:>6.1%}  {'#' * round(40 * band['closeRate'])}" for band in report["liftChart"]]
    lines += render_sections(report)  # outcomes' sources, bad fit, the threshold against the team
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="the outcomes file (CSV or JSON Lines); over the outcomes the table holds "
                        "(CRM events and group traits, sales feedback), which are read anyway")
    parser.add_argument("--config", help="the rules folder (default: config/)")
    parser.add_argument("--stack", default=os.environ.get("STACK_NAME", "leadscore"),
                        help="the stack's name (default: $STACK_NAME or leadscore, the local stack's)")
    parser.add_argument("--target", default="0.10-0.15",
                        help="the close rate the SDR-ready accounts should have: a range (0.10-0.15) or one rate")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    mapreduce_flags(parser)
    evidence.add_flags(parser, candidate=True)
    evidence_aws.add_flag(parser)
    args = parser.parse_args(argv)
    try:
        low, _, high = args.target.partition("-")
        target = (float(low), float(high or low))
        if not 0 < target[0] <= target[1] <= 1:
            raise ValueError
    except ValueError:
        print(f"--target: {args.target!r} is not a close rate or a range of them, e.g. 0.10-0.15", file=sys.stderr)
        return 2

    path = Path(args.data or "")
    try:
        outcomes = parse_outcomes(path.read_text(encoding="utf-8"), path.name) if args.data else []
    except OSError as problem:
        print(f"{path}: {problem.strerror}", file=sys.stderr)
        return 2
    except OutcomeError as problem:
        print(f"{path}: {problem}", file=sys.stderr)
        return 2

    import boto3
    from leadscore.adapters import runtime
    from leadscore.adapters.shards import new_job
    from leadscore.adapters.table import Table

    from local import mapreduce
    from local.replay import Stack

    config = load_config(args.config) if args.config else load_config()
    stack = Stack(args.stack, boto3.Session())
    table = Table(stack.table_name(), client=stack.client("dynamodb"))
    processes, segments = mapreduce.sizes(args, mapreduce.item_count(table))
    given = {"dir": str(config.dir)} if args.config else None
    job = new_job("calibrate", segments=segments, as_of=runtime.now(), current=given, outcomes=outcomes,
                  target=target)
    report = (evidence_aws.run_command(job, args.stack, args.segments) if args.on_aws
              else mapreduce.run(job, table, processes=processes))
    if report is None:  # on AWS: not started, or failed (said on stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else render(report))
    return evidence.calibration_outputs(report, args, config)


if __name__ == "__main__":
    sys.exit(main())
