"""`make preview|calibrate STACK=<stack>` (`--on-aws`): the run on AWS, past one machine (issue 25).

The job (adapters/shards.new_job, as the local run makes it) is uploaded to the stack's
evidence bucket as `<run>/job.json`, and the stack's `EvidenceStateMachine` is started on it
(the execution is named after the run) with the Scan segments and shards as its items. Its
progress is one line on stderr: each Distributed Map run's items done (DescribeExecution,
ListMapRuns, DescribeMapRun). When it succeeds, the report (`<run>/report.json`, written by
the reduce) is fetched and returned: the command prints it as the local run does. When it
fails, times out or is aborted, `EvidenceRunFailed` says so with the error, its cause and the
execution's ARN (docs/OPERATIONS.md, "A preview or calibration on AWS failed"). Interrupted
(Ctrl-C), the execution goes on: its ARN and how to stop it are printed.

The stack is found by its CloudFormation outputs (`EvidenceStateMachineArn`,
`EvidenceBucketName`), with the caller's credentials and region. The caller needs
cloudformation:DescribeStacks on the stack, dynamodb:DescribeTable on the table (to size the
run), s3:PutObject and s3:GetObject on the bucket, and states:StartExecution,
DescribeExecution, ListMapRuns and DescribeMapRun on the state machine (SECURITY.md).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

#: Items per Scan segment (and per shard) when the run is sized from the table: a segment's Scan
#: and a shard's replay then take a few minutes of one Lambda (900 s at most).
ITEMS_PER_SEGMENT = 200_000
#: At most this many segments and shards: a Distributed Map's results (a few dozen bytes an
#: item) stay far under Step Functions' 256 KB, and the input array under its limit too.
MAX_ITEMS = 1000
#: Seconds between two looks at the execution (each look: 2 calls, and one per map run).
POLL_SECONDS = 3.0
DONE = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
UNITS = {"ScanSegments": "segments", "FindOutcomes": "shards", "ReplayShards": "shards"}


class EvidenceError(RuntimeError):
    """The run could not be started (no such stack, no evidence resources, no access)."""


class EvidenceRunFailed(RuntimeError):
    """The execution failed, timed out or was aborted."""


def add_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--on-aws", action="store_true",
                        help="run on the stack's Step Functions state machine (make ... STACK=<stack>) "
                             "instead of processes on this machine")


@dataclass(frozen=True)
class EvidenceStack:
    name: str
    state_machine_arn: str
    bucket: str
    table_name: str


def find(stack_name: str, session: Any) -> EvidenceStack:
    """The stack's evidence resources, from its CloudFormation outputs."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except (ClientError, BotoCoreError) as problem:
        raise EvidenceError(f"stack {stack_name!r}: {problem} (STACK=<the deployed stack's name>, with its "
                            "account's credentials and region)") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs") or []}
    missing = [key for key in ("EvidenceStateMachineArn", "EvidenceBucketName", "TableName") if key not in outputs]
    if missing:
        raise EvidenceError(f"stack {stack_name!r} has no output {', '.join(missing)}: deploy this version's "
                            "template.yaml (sam deploy) to run previews and calibrations on AWS")
    return EvidenceStack(stack_name, outputs["EvidenceStateMachineArn"], outputs["EvidenceBucketName"],
                         outputs["TableName"])


def segments_for(item_count: int) -> int:
    """Scan segments (and shards) for a table of `item_count` items (DescribeTable's count,
    refreshed by DynamoDB about every 6 hours)."""
    return max(1, min(MAX_ITEMS, math.ceil(item_count / ITEMS_PER_SEGMENT)))


def size(session: Any, stack: EvidenceStack, given: int | None) -> int:
    """The segments of the run: `given` (--segments, at most MAX_ITEMS), else from the table's size."""
    if given is not None:
        if not 1 <= given <= MAX_ITEMS:
            raise EvidenceError(f"--segments: {given} is not from 1 to {MAX_ITEMS} (a Distributed Map's items on AWS)")
        return given
    table = session.client("dynamodb").describe_table(TableName=stack.table_name)["Table"]
    return segments_for(int(table.get("ItemCount") or 0))


def portable(job: Mapping[str, Any]) -> dict[str, Any]:
    """The job as a Lambda can read it: a current rules folder of this machine (`--config`)
    sent as its scoring.yaml and routing.yaml (the function has the deployment's otherwise)."""
    out = dict(job)
    current = dict(out.get("current") or {})
    folder = current.pop("dir", None)
    if folder:
        current.setdefault("scoring", (Path(folder) / "scoring.yaml").read_text(encoding="utf-8"))
        current.setdefault("routing", (Path(folder) / "routing.yaml").read_text(encoding="utf-8"))
        out["current"] = current
    return out


def start(session: Any, stack: EvidenceStack, job: Mapping[str, Any]) -> str:
    """The job uploaded and the execution started: its ARN."""
    key = f"{job['run']}/job.json"
    session.client("s3").put_object(Bucket=stack.bucket, Key=key, Body=json.dumps(portable(job)).encode(),
                                    ContentType="application/json")
    execution_input = {"kind": job["kind"], "job": key, "segments": list(range(job["segments"])),
                       "shards": list(range(job["shards"]))}
    started = session.client("stepfunctions").start_execution(
        stateMachineArn=stack.state_machine_arn, name=job["run"], input=json.dumps(execution_input))
    return str(started["executionArn"])


@dataclass(frozen=True)
class MapRunCount:
    label: str
    done: int
    total: int
    failed: int


def _label(map_run_arn: str) -> str:
    """A map run's state label: `...:mapRun:<state machine>/<label>:<id>`."""
    tail = map_run_arn.split(":mapRun:", 1)[-1]
    return tail.split("/", 1)[-1].rsplit(":", 1)[0] if "/" in tail else tail


def map_runs(sfn: Any, execution_arn: str) -> list[MapRunCount]:
    """The execution's Distributed Map runs so far, oldest first, with their item counts."""
    runs: list[dict[str, Any]] = []
    request: dict[str, Any] = {"executionArn": execution_arn}
    while True:
        page = sfn.list_map_runs(**request)
        runs += page.get("mapRuns") or []
        if not page.get("nextToken"):
            break
        request["nextToken"] = page["nextToken"]
    counted = []
    for run in sorted(runs, key=lambda r: r.get("startDate") or datetime.min):
        counts = sfn.describe_map_run(mapRunArn=run["mapRunArn"])["itemCounts"]
        failed = sum(int(counts.get(k) or 0) for k in ("failed", "timedOut", "aborted"))
        counted.append(MapRunCount(_label(run["mapRunArn"]), int(counts.get("succeeded") or 0),
                                   int(counts.get("total") or 0), failed))
    return counted


class Progress:
    """One line on `stream`: `running   ScanSegments 8/8 · ReplayShards [#####.....] 4/8 shards · 95 s`.
    On a terminal it is redrawn in place; elsewhere (a pipe, a log, a test) a line is written
    when it changes."""

    WIDTH = 20

    def __init__(self, stream: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.clock = stream, clock
        isatty = getattr(stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.started = clock()
        self.last = ""

    def line(self, status: str, runs: list[MapRunCount]) -> str:
        parts = [f"{run.label} {run.done}/{run.total}" + (f" ({run.failed} failed)" if run.failed else "")
                 for run in runs[:-1]]
        if runs:
            run = runs[-1]
            filled = round(self.WIDTH * run.done / max(run.total, 1))
            parts.append(f"{run.label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {run.done}/{run.total} "
                         f"{UNITS.get(run.label, 'items')}" + (f" ({run.failed} failed)" if run.failed else ""))
        elif status == "RUNNING":
            parts.append("starting")
        return f"{status.lower().replace('_', ' '):<10}{' · '.join(parts)}"

    def show(self, status: str, runs: list[MapRunCount]) -> None:
        text = self.line(status, runs)
        if self.tty:
            self.stream.write(f"\r{text} · {self.clock() - self.started:.0f} s\x1b[K")
            self.stream.flush()
        elif text != self.last:
            self.stream.write(text + "\n")
            self.stream.flush()
        self.last = text

    def end(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def wait(sfn: Any, execution_arn: str, progress: Progress, *, sleep: Callable[[float], None] = time.sleep,
         poll: float = POLL_SECONDS) -> dict[str, Any]:
    """DescribeExecution until the execution is done, the progress line updated on each look."""
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        progress.show(described["status"], map_runs(sfn, execution_arn))
        if described["status"] in DONE:
            progress.end()
            return described
        sleep(poll)


def fetch_report(session: Any, stack: EvidenceStack, described: Mapping[str, Any]) -> dict[str, Any]:
    """The report the execution wrote, or EvidenceRunFailed saying why there is none."""
    status = described["status"]
    if status != "SUCCEEDED":
        raise EvidenceRunFailed(
            f"execution {described.get('name', '')} {status.lower().replace('_', ' ')}: "
            f"{described.get('error') or 'no error given'}: {described.get('cause') or 'no cause given'}\n"
            f"  {described['executionArn']}\n"
            "  what to do: docs/OPERATIONS.md, \"A preview or calibration on AWS failed\" (the Step Functions "
            "console shows the failed item and its Lambda log)")
    key = json.loads(described.get("output") or "{}").get("report")
    if not key:
        raise EvidenceRunFailed(f"execution {described['executionArn']} succeeded without a report key: "
                                f"{described.get('output')!r}")
    body = session.client("s3").get_object(Bucket=stack.bucket, Key=key)["Body"].read()
    report: dict[str, Any] = json.loads(body)
    return report


def run(job: Mapping[str, Any], stack: EvidenceStack, session: Any, *, stream: Any = None,
        sleep: Callable[[float], None] = time.sleep, poll: float = POLL_SECONDS) -> dict[str, Any]:
    """The job run on the stack's state machine: its report (EvidenceRunFailed if it failed)."""
    stream = stream if stream is not None else sys.stderr
    execution_arn = start(session, stack, job)
    stream.write(f"started {execution_arn}\n")
    sfn = session.client("stepfunctions")
    try:
        described = wait(sfn, execution_arn, Progress(stream), sleep=sleep, poll=poll)
    except KeyboardInterrupt:
        stream.write(f"\nthe execution goes on without this command; its report will be s3://{stack.bucket}/"
                     f"{job['run']}/report.json. Stop it with:\n  aws stepfunctions stop-execution "
                     f"--execution-arn {execution_arn}\n")
        raise
    return fetch_report(session, stack, described)


def local_endpoint() -> str | None:
    """AWS_ENDPOINT_URL when it names this machine (`make serve`'s moto), else None."""
    import os
    from urllib.parse import urlsplit

    endpoint = os.environ.get("AWS_ENDPOINT_URL") or ""
    host = urlsplit(endpoint).hostname or ""
    return endpoint if host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.") else None


def run_command(job: Mapping[str, Any], stack_name: str, given_segments: int | None = None, *,
                session: Any = None, stream: Any = None, **options: Any) -> dict[str, Any] | None:
    """For the commands' mains: the job resized for the stack and run there; None (the
    problem said on stderr) when it could not start or failed."""
    import boto3
    from leadscore.adapters.shards import check_job

    stream = stream if stream is not None else sys.stderr
    session = session or boto3.Session()
    endpoint = local_endpoint()
    if endpoint:
        stream.write(f"{endpoint} is a local stack (make serve): its moto holds the evidence state machine but "
                     "does not run it, so the execution would never end. Leave STACK= off (ARGS=--processes N "
                     "runs the same steps in this machine's processes against the same table).\n")
        return None
    try:
        stack = find(stack_name, session)
        segments = size(session, stack, given_segments)
        sized = {**job, "segments": segments, "shards": segments}
        check_job(sized)
        return run(sized, stack, session, stream=stream, **options)
    except (EvidenceError, EvidenceRunFailed) as problem:
        stream.write(f"{problem}\n")
        return None
