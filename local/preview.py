"""What a rules change would do, before it ships: the retained events replayed under the
current rules and a candidate `scoring.yaml`, writing nothing.

    python -m local.preview --rules <candidate scoring.yaml> [--config config/] [--stack leadscore] [--json]
    make preview RULES=<candidate scoring.yaml> [ROUTING=<candidate routing.yaml>] [STACK=leadscore] [ARGS=--json]

The candidate is validated first (file, key path, reason: exit 2). The table is read in
parallel Scan segments (consistent reads; against AWS or the local stack with
`AWS_ENDPOINT_URL`) by `--processes` processes (default: one per CPU), its items grouped by
partition into shards, each person's events folded with the code that scores live under each
rules set as of now, their accounts valued under each (adapters/shards.py, services/preview.py;
a progress line per step on stderr). Prints the accounts that would newly cross the
SDR-ready threshold or leave it, how many are SDR-ready under each, the accounts and contacts
whose score moves most, and each rule's point total under each; `--json` prints it as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leadscore.adapters.shards import MAX_DAYS
from leadscore.rulesfiles.errors import ConfigError
from leadscore.rulesfiles.loading import Config, load_config, load_routing, load_scoring

from local import evidence, evidence_aws
from local.mapreduce import flags as mapreduce_flags

#: The window a preview replays by default (days of engagement), as `make preview DAYS=` says.
DAYS = 90


def candidate_config(rules: Path, current: Config) -> Config:
    """The current rules with `rules` as scoring.yaml, validated (ConfigError names the file,
    the key path and the reason)."""
    return Config(scoring=load_scoring(rules), sources=current.sources, dir=current.dir)


def render(report: dict[str, Any]) -> str:
    days = (report.get("window") or {}).get("days")
    window = f"the last {days} days' engagement" if days else "every retained event's engagement"
    lines = [f"{report['persons']} contacts, {report['events']} events replayed under both rules sets ({window})",
             f"SDR-ready threshold: {report['threshold']['current']} -> {report['threshold']['candidate']}",
             f"SDR-ready accounts: {report['sdrReady']['current']} -> {report['sdrReady']['candidate']}",
             f"newly SDR-ready: {', '.join(report['newlySdrReady']) or '-'}",
             f"no longer SDR-ready: {', '.join(report['noLongerSdrReady']) or '-'}", "",
             f"{'account':<32} {'current':>9} {'candidate':>10} {'change':>8}"]
    lines += [f"{row['id']:<32} {row['current']:>9} {row['candidate']:>10} {row['change']:>+8}"
              for row in report["accountsMovingMost"]]
    lines += ["", f"{'contact':<32} {'current':>9} {'candidate':>10} {'change':>8}"]
    lines += [f"{row['id']:<32} {row['current']:>9} {row['candidate']:>10} {row['change']:>+8}"
              for row in report["contactsMovingMost"]]
    lines += ["", f"{'rule (points over every contact)':<32} {'current':>9} {'candidate':>10}"]
    lines += [f"{row['rule']:<32} {row['current']:>9} {row['candidate']:>10}" for row in report["rules"]
              if row["current"] != row["candidate"]]
    lines += ["", f"{'SDR-ready accounts per territory / pool':<40} {'current':>9} {'candidate':>10}"]
    lines += [f"{row['territory'] + ' / ' + row['pool']:<40} {row['current']:>9} {row['candidate']:>10}"
              for row in report["sdrLoad"]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.preview", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", required=True, help="the candidate scoring.yaml")
    parser.add_argument("--config", help="the current rules folder (default: config/)")
    parser.add_argument("--routing", help="a candidate routing.yaml (default: the current one) for the SDR load")
    parser.add_argument("--stack", default=os.environ.get("STACK_NAME", "leadscore"),
                        help="the stack's name (default: $STACK_NAME or leadscore, the local stack's)")
    parser.add_argument("--days", type=int, default=DAYS,
                        help=f"the window: events of the last N days earn points under each rules set, older ones "
                             f"still set who a contact is (default {DAYS}; 0: every retained event)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    mapreduce_flags(parser)
    evidence.add_flags(parser)
    evidence_aws.add_flag(parser)
    args = parser.parse_args(argv)
    if not 0 <= args.days <= MAX_DAYS:
        print(f"--days: {args.days} is not a number of days (1 to {MAX_DAYS}; 0: every retained event)",
              file=sys.stderr)
        return 2

    current = load_config(args.config) if args.config else load_config()
    try:
        # validated here, so a problem names the user's files; the steps load them again
        candidate_config(Path(args.rules), current)
        load_routing(current.dir / "routing.yaml")
        if args.routing:
            load_routing(Path(args.routing))
    except ConfigError as problem:
        print(f"the candidate rules are not valid:\n{problem}", file=sys.stderr)
        return 2

    import boto3
    from leadscore.adapters import runtime
    from leadscore.adapters.shards import new_job
    from leadscore.adapters.table import Table

    from local import mapreduce
    from local.replay import Stack

    stack = Stack(args.stack, boto3.Session())
    table = Table(stack.table_name(), client=stack.client("dynamodb"))
    processes, segments = mapreduce.sizes(args, mapreduce.item_count(table))
    given = {"dir": str(current.dir)} if args.config else None
    job = new_job("preview", segments=segments, as_of=runtime.now(), current=given,
                  candidate_scoring=Path(args.rules).read_text(encoding="utf-8"),
                  candidate_routing=Path(args.routing).read_text(encoding="utf-8") if args.routing else None,
                  days=args.days or None)
    report = (evidence_aws.run_command(job, args.stack, args.segments) if args.on_aws
              else mapreduce.run(job, table, processes=processes))
    if report is None:  # on AWS: not started, or failed (said on stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else render(report))
    return evidence.preview_outputs(report, args)


if __name__ == "__main__":
    sys.exit(main())
