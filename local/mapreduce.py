"""The map/reduce of previews and calibration (leadscore.adapters.shards) run on one machine:
each step's segments or shards spread over a pool of processes, a progress line per step on
stderr, the blobs in a temporary folder (LocalShardStore).

Each process builds its own table client from the table's name and the environment (the
credentials and region, `AWS_ENDPOINT_URL` for `make serve`'s moto or another endpoint).
Under an in-process moto (`moto.mock_aws`, the tests' stack) with no endpoint to reach it by,
no other process can see the table, so the steps run one after the other in this process:
the same code path, processes=1.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Any

from leadscore.adapters import shards
from leadscore.adapters.table import Table

_TABLE: Table | None = None
_STORE: shards.LocalShardStore | None = None


def default_processes() -> int:
    return os.cpu_count() or 1


def in_process_moto() -> bool:
    """Whether moto's mock is active in this process (another process would not see it)."""
    models = sys.modules.get("moto.core.models")
    mock = getattr(models, "MockAWS", None)
    return bool(mock is not None and getattr(mock, "_nested_count", 0) > 0)


class StepProgress:
    """One line per step on `stream`: on a terminal redrawn in place,
    `replay   [##########..........] 3/8 shards`; elsewhere (a pipe, a log, a test) one plain
    line when the step ends."""

    WIDTH = 20
    EVERY = 0.1

    def __init__(self, stream: Any, step: str, total: int, unit: str) -> None:
        self.stream, self.step, self.total, self.unit = stream, step, max(total, 1), unit
        isatty = getattr(stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.started = self.drawn = time.monotonic()

    def line(self, done: int, note: str = "") -> str:
        filled = round(self.WIDTH * done / self.total)
        return (f"{self.step:<9}[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{self.total} {self.unit}"
                + (f"  {note}" if note else ""))

    def update(self, done: int, note: str = "") -> None:
        if self.tty and (done == self.total or time.monotonic() - self.drawn >= self.EVERY):
            self.stream.write("\r" + self.line(done, note) + "\x1b[K")
            self.stream.flush()
            self.drawn = time.monotonic()

    def finish(self, note: str = "") -> None:
        elapsed = f"{time.monotonic() - self.started:.1f} s"
        text = self.line(self.total, f"{note}, {elapsed}" if note else elapsed)
        if self.tty:
            self.stream.write("\r" + text + "\x1b[K\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _init(table_name: str, store_path: str) -> None:
    global _TABLE, _STORE
    _TABLE = Table(table_name)  # its client on first use, from this process's environment
    _STORE = shards.LocalShardStore(store_path)


def _call(step: str, job: dict[str, Any], number: int) -> dict[str, Any]:
    assert _TABLE is not None and _STORE is not None
    if step == "scan":
        return shards.scan_segment(_TABLE, _STORE, job, number)
    if step == "outcomes":
        return shards.find_outcomes(_TABLE, _STORE, job, number)
    return shards.replay_shard(_TABLE, _STORE, job, number)


def run(job: dict[str, Any], table: Table, *, processes: int | None = None, stream: Any = None,
        store_path: str | None = None, pool: bool | None = None,
        timings: dict[str, float] | None = None) -> dict[str, Any]:
    """Every step of `job` over `table`, in `processes` processes (default: one per CPU;
    one, in this process, under an in-process moto); returns the report. `pool`: whether
    the steps run in a pool of processes (default: when more than one; the bench compares a
    pool of 1 with a pool of 2). `timings` gets each step's seconds."""
    stream = stream if stream is not None else sys.stderr
    processes = processes or default_processes()
    if in_process_moto() and not os.environ.get("AWS_ENDPOINT_URL"):
        processes, pool = 1, False  # no other process could reach the table
    with tempfile.TemporaryDirectory(prefix="leadscore-evidence-") as scratch:
        path = store_path or scratch
        store = shards.LocalShardStore(path)
        if not (pool if pool is not None else processes > 1):
            global _TABLE, _STORE
            _TABLE, _STORE = table, store

            def each(step: str, numbers: Iterable[int]) -> Iterable[dict[str, Any]]:
                for n in numbers:
                    yield _call(step, job, n)

            return _steps(job, store, each, stream, timings)
        import multiprocessing  # cold start: not a Lambda path

        context = multiprocessing.get_context("spawn")  # no fork of a process with threads
        with ProcessPoolExecutor(processes, mp_context=context, initializer=_init,
                                 initargs=(table.name, path)) as executor:
            def each_parallel(step: str, numbers: Iterable[int]) -> Iterable[dict[str, Any]]:
                futures: list[Future[dict[str, Any]]] = [executor.submit(_call, step, job, n) for n in numbers]
                for future in as_completed(futures):
                    yield future.result()

            return _steps(job, store, each_parallel, stream, timings)


def _steps(job: dict[str, Any], store: shards.LocalShardStore,
           each: Callable[[str, Iterable[int]], Iterable[dict[str, Any]]], stream: Any,
           timings: dict[str, float] | None = None) -> dict[str, Any]:
    timings = timings if timings is not None else {}

    def step(name: str, count: int, unit: str, note: Callable[[list[dict[str, Any]]], str]) -> list[dict[str, Any]]:
        progress = StepProgress(stream, name, count, unit)
        progress.update(0)
        results: list[dict[str, Any]] = []
        for result in each(name, range(count)):
            results.append(result)
            progress.update(len(results), note(results))
        progress.finish(note(results))
        timings[name] = time.monotonic() - progress.started
        return results

    step("scan", job["segments"], "segments",
         lambda r: f"{sum(x['items'] for x in r)} items, {sum(x['events'] for x in r)} events")
    if job["kind"] == "calibrate":
        step("outcomes", job["shards"], "shards", lambda r: f"{sum(x['outcomes'] for x in r)} outcomes in the table")
        shards.merge_outcomes(store, job)
    step("replay", job["shards"], "shards",
         lambda r: f"{sum(x['persons'] for x in r)} contacts, {sum(x['events'] for x in r)} events")
    started = time.monotonic()
    report = shards.reduce(store, job)
    timings["reduce"] = time.monotonic() - started
    return report


def flags(parser: Any) -> None:
    """--processes and --segments on a command's parser."""
    parser.add_argument("--processes", type=int, default=None,
                        help="processes to run the steps in (default: one per CPU; 1 under an in-process moto)")
    parser.add_argument("--segments", type=int, default=None,
                        help="parallel Scan segments, also the shards replayed (default: 4 per process)")


#: Items per shard at most, by default: a shard is held in memory whole while it is replayed.
ITEMS_PER_SHARD = 200_000


def item_count(table: Table) -> int:
    """The table's item count as DynamoDB gives it (updated about every six hours; 0 unknown)."""
    try:
        return int(table.client.describe_table(TableName=table.name)["Table"].get("ItemCount") or 0)
    except Exception:  # noqa: BLE001 - no DescribeTable right: size by processes alone
        return 0


def sizes(args: Any, items: int = 0) -> tuple[int, int]:
    """(processes, segments) from the flags: by default one process per CPU and 4 segments (and
    shards) per process, or one per ITEMS_PER_SHARD of the table's `items` when that is more.
    SystemExit(2) naming a bad flag."""
    processes = args.processes if args.processes is not None else default_processes()
    if processes < 1:
        print(f"--processes: {processes} is not a number of processes (1 or more)", file=sys.stderr)
        raise SystemExit(2)
    segments = args.segments if args.segments is not None else \
        max(4 * processes, min(-(-items // ITEMS_PER_SHARD), 1_000_000))
    if not 1 <= segments <= 1_000_000:
        print(f"--segments: {segments} is not a number of Scan segments (1 to 1000000)", file=sys.stderr)
        raise SystemExit(2)
    return processes, segments
