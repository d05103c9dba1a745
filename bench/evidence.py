"""`python -m bench.evidence`: how fast a preview reads and replays a table over parallel Scan
segments (adapters/shards.py run by local/mapreduce.py), with 1 and with 2 processes.

The table: planted accounts (local/plant.py: 1-3 contacts each, their identify, group and
engagement events, contacts and accounts as the pipeline leaves them) written into the
template's table in moto, served to the processes by moto's server on 127.0.0.1 (as `make
serve` does). Each run is a whole preview (a candidate with the demo link click at 40 points
instead of 25): the Scan segments, the replay of every person under both rules sets, the
reduce, in a pool of 1 and then of 2 processes (the processes' start included). Prints the
events per second of each, the ratio 2 / 1, and the time a million events would take at the
better replay rate (PRODUCT's goal: under 10 minutes on one machine).

The projection leaves the Scan out: moto answers every Scan page by walking the whole table
from the one process that serves it (a table of N items costs N^2 / page), where DynamoDB
reads each segment's pages at its own pace. The replay step is this code's, and where a
real table's time goes; it runs in the pool's processes, so it scales with them as far as
the machine's idle cores go (on a machine shared with other work the ratio moves from run
to run).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT / "shared") not in sys.path:  # the layer, as in Lambda (also when not pip-installed)
    sys.path.insert(0, str(REPO_ROOT / "shared"))

#: PRODUCT's goal for a preview of a million events on one machine, seconds.
GOAL_SECONDS = 600
MILLION = 1_000_000


@dataclass
class EvidenceRun:
    processes: int
    seconds: float
    events: int
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Events per second of the whole preview (moto's Scan included)."""
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def replay_rate(self) -> float:
        """Events per second of the replay and the reduce: this code's share, what scales."""
        spent = self.steps.get("replay", 0.0) + self.steps.get("reduce", 0.0)
        return self.events / spent if spent else 0.0


@dataclass
class EvidenceFigures:
    accounts: int
    items: int
    events: int
    segments: int
    runs: list[EvidenceRun]

    @property
    def scaling(self) -> float:
        """Replay events per second with the most processes over those with one."""
        return self.runs[-1].replay_rate / self.runs[0].replay_rate if self.runs[0].replay_rate else 0.0

    @property
    def best_rate(self) -> float:
        return max(run.replay_rate for run in self.runs)

    @property
    def million_seconds(self) -> float:
        """A million events replayed at the best rate (the Scan left out: see the module's doc)."""
        return MILLION / self.best_rate if self.best_rate else float("inf")


def _candidate_text() -> str:
    text = (REPO_ROOT / "config" / "scoring.yaml").read_text(encoding="utf-8")
    old = "  - id: demo_link_clicked\n    category: content\n    points: 25\n"
    return text.replace(old, old.replace("points: 25", "points: 40"))


def _write(client: Any, table_name: str, found: list[dict[str, Any]]) -> None:
    from leadscore.adapters.table import marshal

    for start in range(0, len(found), 25):
        request = {table_name: [{"PutRequest": {"Item": marshal(item)}} for item in found[start:start + 25]]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


def run_evidence(accounts: int = 4000, processes: tuple[int, ...] = (1, 2), segments: int | None = None,
                 stream: Any = None) -> EvidenceFigures:
    """Plant `accounts` accounts in a fresh moto table and time a preview over it with each
    pool size of `processes`."""
    from moto import mock_aws
    from moto.server import ThreadedMotoServer

    from bench.stack import AWS_ENV, TEMPLATE, UNSET
    from local.env import patched_env

    stream = stream if stream is not None else sys.stderr
    with patched_env(AWS_ENV, UNSET, restore=("AWS_ENDPOINT_URL", "LEADSCORE_NOW")), mock_aws(), \
            open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per moto call
        from leadscore.adapters import items, runtime
        from leadscore.adapters.shards import new_job
        from leadscore.adapters.table import Table
        from leadscore.rulesfiles.loading import load_config

        from local import mapreduce
        from local.plant import generate, table_items
        from local.stack import TemplateStack

        runtime.reset()
        config = load_config()
        planted = generate(config, accounts=accounts)
        found = table_items(planted, config)
        events = sum(items.is_event_key(items.table_key(item)) for item in found)
        stack = TemplateStack.create(TEMPLATE, stack_name="evidence")
        table = Table(stack.name_of("Table"), client=stack.client("dynamodb"))
        _write(table.client, table.name, found)
        as_of = max(at for at, _ in planted.messages()) + timedelta(days=1)
        # moto's server shares this process's moto state: the pool's processes read the table through it
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
            runs: list[EvidenceRun] = []
            for count in processes:
                size = segments or 4 * max(processes)
                job = new_job("preview", segments=size, as_of=as_of, candidate_scoring=_candidate_text(),
                              run=f"bench-{count}")
                timings: dict[str, float] = {}
                started = time.perf_counter()
                report = mapreduce.run(job, table, processes=count, pool=True, stream=stream, timings=timings)
                seconds = time.perf_counter() - started
                if report["events"] != events:
                    raise AssertionError(f"the preview replayed {report['events']} events of {events}")
                runs.append(EvidenceRun(count, round(seconds, 2), events,
                                        {k: round(v, 2) for k, v in timings.items()}))
        finally:
            server.stop()
    return EvidenceFigures(accounts, len(found), events, segments or 4 * max(processes), runs)


def describe(figures: EvidenceFigures) -> list[str]:
    lines = [f"preview over {figures.events} events ({figures.items} items, {figures.accounts} accounts), "
             f"{figures.segments} Scan segments and shards"]
    for run in figures.runs:
        steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in run.steps.items())
        lines.append(f"  {run.processes} process(es): {run.seconds:.1f} s in all ({steps}); "
                     f"replay {run.replay_rate:,.0f} events/s")
    minutes = figures.million_seconds / 60
    lines += [f"  replay scaling, {figures.runs[-1].processes} processes over 1: {figures.scaling:.2f}x",
              f"  a million events replayed at {figures.best_rate:,.0f} events/s: {minutes:.1f} min "
              f"(goal: under {GOAL_SECONDS // 60} min) {'ok' if figures.million_seconds <= GOAL_SECONDS else 'FAIL'}",
              "  (the Scan here is moto's, which reads the whole table for every page: not DynamoDB's pace)"]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.evidence", description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=4000,
                        help="planted accounts (4000: about 21,000 events, 33,000 items)")
    parser.add_argument("--processes", type=lambda v: tuple(int(x) for x in v.split(",")), default=(1, 2),
                        help="pool sizes to time, comma separated (1,2)")
    parser.add_argument("--segments", type=int, default=None, help="Scan segments (default: 4 per process)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = run_evidence(args.accounts, args.processes, args.segments, stream=io.StringIO())
    if args.json:
        print(json.dumps({**asdict(figures), "scaling": figures.scaling, "millionSeconds": figures.million_seconds},
                         indent=2))
    else:
        print("\n".join(describe(figures)))
    return 0 if figures.million_seconds <= GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
