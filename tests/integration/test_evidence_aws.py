"""`make preview|calibrate STACK=<stack>` (local/evidence_aws.py, `--on-aws`) against moto.

Real (moto): CloudFormation's DescribeStacks (the stack's outputs, put there by the test with
the local stack's names), DynamoDB (the table the journeys filled, its DescribeTable), S3
(the job the client uploads, the partial results, the report it fetches), Step Functions'
StartExecution and DescribeExecution (the execution and its status as the client polls it).
Faked at the boundary: Step Functions *running* the execution. moto only records it, so a
thread runs the template's own definition on the execution's input with local/statemachine.py's
interpreter (each Task the EvidenceFunction handler in-process) and sets moto's execution to
its outcome; ListMapRuns / DescribeMapRun (stubs in moto) answer with the interpreter's map
runs, shaped as Step Functions answers."""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from local import evidence_aws, preview
from local.statemachine import Interpreter, StatesError, stack_invoker
from tests.integration.conftest import Pipeline
from tests.integration.test_evidence_state_machine import _candidate, _journeys, _local
from tests.support.stack import TemplateStack

# moto's CloudFormation keeps the outputs of a stack whose one resource it does not build
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS.+WaitConditionHandle")


class StepFunctionsRuns:
    """Step Functions' execution of what moto's StartExecution records (see the module's docstring)."""

    def __init__(self, stack: TemplateStack, monkeypatch: pytest.MonkeyPatch,
                 invoke: Any = None, item_seconds: float = 0.02) -> None:
        from moto.stepfunctions.models import stepfunctions_backends

        self.stack, self.invoke, self.item_seconds = stack, invoke or stack_invoker(stack), item_seconds
        self.backend = stepfunctions_backends[stack.account_id][stack.region]
        self.runs: dict[str, tuple[Interpreter, datetime]] = {}
        self.threads: list[threading.Thread] = []
        backend_class = type(self.backend)
        recorded = backend_class.start_execution

        def start_execution(backend: Any, state_machine_arn: str, name: str, execution_input: str) -> Any:
            execution = recorded(backend, state_machine_arn, name, execution_input)
            thread = threading.Thread(target=self._execute, args=(execution,), daemon=True)
            self.threads.append(thread)
            thread.start()
            return execution

        monkeypatch.setattr(backend_class, "start_execution", start_execution)
        monkeypatch.setattr(backend_class, "list_map_runs", lambda backend, arn: self.list_map_runs(arn))
        monkeypatch.setattr(backend_class, "describe_map_run", lambda backend, arn: self.describe_map_run(arn))

    def _execute(self, execution: Any) -> None:
        interpreter = Interpreter(self.stack.state_machines["EvidenceStateMachine"], self.invoke,
                                  on_progress=lambda runs: time.sleep(self.item_seconds))
        self.runs[execution.execution_arn] = (interpreter, datetime.now(UTC))
        try:
            output = interpreter.run(json.loads(execution.execution_input))
        except StatesError as failed:
            execution.error, execution.cause, execution.status = failed.error, failed.cause, "FAILED"
        else:
            execution.output, execution.status = json.dumps(output), "SUCCEEDED"
        execution.stop_date = datetime.now(UTC)

    def _arn(self, execution_arn: str, index: int) -> str:
        interpreter, _ = self.runs[execution_arn]
        machine = execution_arn.split(":execution:", 1)[1].split(":", 1)[0]
        prefix = execution_arn.split(":execution:", 1)[0]
        return f"{prefix}:mapRun:{machine}/{interpreter.map_runs[index].state}:{index}"

    def list_map_runs(self, execution_arn: str) -> dict[str, Any]:
        interpreter, started = self.runs.get(execution_arn, (None, None))
        runs = [] if interpreter is None else list(interpreter.map_runs)
        return {"mapRuns": [{"executionArn": execution_arn, "mapRunArn": self._arn(execution_arn, i),
                             "stateMachineArn": f"{execution_arn}/{run.state}", "startDate": started}
                            for i, run in enumerate(runs)]}

    def describe_map_run(self, map_run_arn: str) -> dict[str, Any]:
        for execution_arn, (interpreter, started) in self.runs.items():
            for index, run in enumerate(list(interpreter.map_runs)):
                if self._arn(execution_arn, index) == map_run_arn:
                    counts = {"pending": run.total - run.succeeded - run.failed, "running": 0,
                              "succeeded": run.succeeded, "failed": run.failed, "timedOut": 0, "aborted": 0,
                              "total": run.total, "resultsWritten": run.succeeded}
                    return {"mapRunArn": map_run_arn, "executionArn": execution_arn,
                            "status": "SUCCEEDED" if run.done and not run.failed else
                            "FAILED" if run.failed else "RUNNING",
                            "startDate": started, "maxConcurrency": 40, "toleratedFailurePercentage": 0.0,
                            "toleratedFailureCount": 0, "itemCounts": counts, "executionCounts": counts}
        raise KeyError(map_run_arn)


def _outputs(stack: TemplateStack) -> None:
    """The deployed stack's outputs as CloudFormation has them (in moto), named as the local stack names them."""
    outputs = {"EvidenceStateMachineArn": stack.resources["EvidenceStateMachine"]["arn"],
               "EvidenceBucketName": stack.name_of("EvidenceBucket"), "TableName": stack.name_of("Table")}
    template = {"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs": {key: {"Value": value} for key, value in outputs.items()}}
    boto3.client("cloudformation").create_stack(StackName=stack.stack_name, TemplateBody=json.dumps(template))


@pytest.fixture
def on_aws(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> StepFunctionsRuns:
    _outputs(pipeline.stack)
    monkeypatch.setattr(evidence_aws, "POLL_SECONDS", 0.01)
    return StepFunctionsRuns(pipeline.stack, monkeypatch)


def test_a_preview_on_aws_shows_its_progress_and_prints_the_local_report(
        pipeline: Pipeline, on_aws: StepFunctionsRuns, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _journeys(pipeline)
    rules = _candidate(tmp_path)
    local = _local(preview.main, ["--rules", str(rules)], capsys)

    assert preview.main(["--rules", str(rules), "--json", "--on-aws", "--segments", "3"]) == 0
    out, err = capsys.readouterr()
    # the handler's log lines (one JSON object a line) come first: here it runs in this process
    assert json.loads(out[out.index("{\n"):]) == local
    lines = err.splitlines()
    assert lines[0].startswith("started arn:aws:states:us-east-1:")
    assert ":execution:leadscore-evidence:preview-" in lines[0]
    assert lines[-1] == ("succeeded ScanSegments 3/3 · ReplayShards [####################] 3/3 shards")
    # one line per change, the counts only ever growing
    seen = [line for line in lines[1:] if "ScanSegments" in line]
    scanned = [int(line.split("ScanSegments", 1)[1].split("/")[0].split()[-1]) for line in seen]
    assert scanned == sorted(scanned) and len(seen) == len(set(seen)) and len(seen) >= 2
    # the job and the report are in the bucket, named after the run (the execution's name)
    run = lines[0].rsplit(":", 1)[1]
    keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(
        Bucket=pipeline.stack.name_of("EvidenceBucket"))["Contents"]}
    assert {f"{run}/job.json", f"{run}/report.json"} <= keys


def test_the_run_is_sized_from_the_table(pipeline: Pipeline, on_aws: StepFunctionsRuns,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    stack = evidence_aws.find("leadscore", boto3.Session())
    assert evidence_aws.size(boto3.Session(), stack, None) == 1  # a handful of items: one segment
    assert [evidence_aws.segments_for(n) for n in (0, 200_000, 200_001, 10**9)] == [1, 1, 2, 1000]
    with pytest.raises(evidence_aws.EvidenceError, match="--segments: 1001 is not from 1 to 1000"):
        evidence_aws.size(boto3.Session(), stack, 1001)


def test_a_failed_execution_is_said_with_its_error_cause_and_arn(
        pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _journeys(pipeline)
    _outputs(pipeline.stack)
    monkeypatch.setattr(evidence_aws, "POLL_SECONDS", 0.01)
    invoke = stack_invoker(pipeline.stack)

    def replay_fails(function: str, payload: Any) -> Any:
        if payload["step"] == "replay":
            raise StatesError("Sandbox.Timedout", "Task timed out after 900.00 seconds")
        return invoke(function, payload)

    StepFunctionsRuns(pipeline.stack, monkeypatch, invoke=replay_fails)
    capsys.readouterr()
    assert preview.main(["--rules", str(_candidate(tmp_path)), "--on-aws", "--segments", "2"]) == 1
    out, err = capsys.readouterr()
    assert out == ""  # no report printed
    progress = [line for line in err.splitlines() if line.startswith(("running", "failed"))]
    assert progress[-1] == "failed    ScanSegments 2/2 · ReplayShards [....................] 0/2 shards (1 failed)"
    assert "execution preview-" in err and " failed: States.ExceedToleratedFailureThreshold: " in err
    assert "Sandbox.Timedout: Task timed out after 900.00 seconds" in err
    assert ":execution:leadscore-evidence:preview-" in err and "docs/OPERATIONS.md" in err


def test_a_stack_without_the_evidence_resources_is_named(pipeline: Pipeline, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert preview.main(["--rules", str(_candidate(tmp_path)), "--on-aws", "--stack", "prod"]) == 1
    err = capsys.readouterr().err
    assert "stack 'prod': " in err and "Stack with id prod does not exist" in err
    template = {"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs": {"TableName": {"Value": "old-Table"}}}
    boto3.client("cloudformation").create_stack(StackName="old", TemplateBody=json.dumps(template))
    with pytest.raises(evidence_aws.EvidenceError, match="stack 'old' has no output EvidenceStateMachineArn, "
                                                         "EvidenceBucketName: deploy this version's template"):
        evidence_aws.find("old", boto3.Session())


def test_the_local_stack_is_refused_before_anything_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """`make serve`'s moto creates the state machine but never runs an execution: a run sent there
    would wait forever, so the command says so and asks nothing of the endpoint."""
    from datetime import UTC, datetime

    from leadscore.adapters.shards import new_job

    class NoCalls:
        def client(self, service: str) -> Any:
            raise AssertionError(f"{service} called")

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    job = new_job("calibrate", segments=1, as_of=datetime(2026, 12, 1, tzinfo=UTC))
    err = io.StringIO()
    assert evidence_aws.run_command(job, "leadscore", session=NoCalls(), stream=err) is None
    assert "http://127.0.0.1:5000 is a local stack (make serve)" in err.getvalue()
    assert "Leave STACK= off" in err.getvalue()
    for elsewhere in ("https://dynamodb.eu-west-1.amazonaws.com", "http://10.0.0.7:4566", ""):
        monkeypatch.setenv("AWS_ENDPOINT_URL", elsewhere)
        assert evidence_aws.local_endpoint() is None


# ---------------------------------------------------------------- the progress line and the job


def test_the_progress_line_is_redrawn_on_a_terminal_and_written_on_change_elsewhere() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    runs = [evidence_aws.MapRunCount("ScanSegments", 8, 8, 0), evidence_aws.MapRunCount("ReplayShards", 4, 8, 1)]
    terminal = Terminal()
    progress = evidence_aws.Progress(terminal, clock=iter([0.0, 95.2]).__next__)
    progress.show("RUNNING", runs)
    progress.end()
    assert terminal.getvalue() == ("\rrunning   ScanSegments 8/8 · ReplayShards [##########..........] 4/8 shards"
                                   " (1 failed) · 95 s\x1b[K\n")
    log = io.StringIO()
    plain = evidence_aws.Progress(log)
    for shown in ([], [], runs[:1], runs[:1]):
        plain.show("RUNNING", shown)
    assert log.getvalue().splitlines() == [
        "running   starting", "running   ScanSegments [####################] 8/8 segments"]
    assert evidence_aws._label("arn:aws:states:us-east-1:1:mapRun:prod-evidence/FindOutcomes:7c1f") == "FindOutcomes"


def test_a_local_rules_folder_goes_with_the_job(tmp_path: Path) -> None:
    (tmp_path / "scoring.yaml").write_text("scoring: mine\n")
    (tmp_path / "routing.yaml").write_text("routing: mine\n")
    job = {"kind": "preview", "run": "r", "current": {"dir": str(tmp_path)}}
    assert evidence_aws.portable(job)["current"] == {"scoring": "scoring: mine\n", "routing": "routing: mine\n"}
    assert evidence_aws.portable({"kind": "preview"}) == {"kind": "preview"}


def test_a_calibration_on_aws_prints_the_local_report(
        pipeline: Pipeline, on_aws: StepFunctionsRuns, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from local import calibrate
    from tests.integration.test_calibrate import _outcomes

    data = _outcomes(pipeline, tmp_path / "outcomes.csv")
    local = _local(calibrate.main, ["--data", str(data)], capsys)
    assert calibrate.main(["--data", str(data), "--json", "--on-aws", "--segments", "2"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out[out.index("{\n"):]) == local
    assert err.splitlines()[-1] == ("succeeded ScanSegments 2/2 · FindOutcomes 2/2 · "
                                    "ReplayShards [####################] 2/2 shards")


@pytest.mark.parametrize(("given", "on_aws"), [(["STACK=prod"], True), ([], False)])
def test_make_runs_on_aws_when_stack_is_given_on_the_command_line(given: list[str], on_aws: bool) -> None:
    import subprocess

    root = Path(__file__).resolve().parents[2]
    for target in (["preview", "RULES=candidate.yaml"], ["calibrate", "DATA=outcomes.csv"]):
        shown = subprocess.run(["make", "-n", *target, *given], cwd=root, capture_output=True, text=True,
                               check=True, env={"PATH": "/usr/bin:/bin", "STACK": "from-the-environment"}).stdout
        (command,) = [line for line in shown.splitlines() if f"-m local.{target[0]}" in line]
        assert ("--on-aws" in command) is on_aws, command
        assert f'--stack "{"prod" if on_aws else "from-the-environment"}"' in command


def test_interrupted_the_command_leaves_the_execution_running_and_says_how_to_stop_it(
        pipeline: Pipeline, on_aws: StepFunctionsRuns, tmp_path: Path) -> None:
    from leadscore.adapters import runtime
    from leadscore.adapters.shards import new_job

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    stack = evidence_aws.find("leadscore", boto3.Session())
    job = new_job("preview", segments=1, as_of=runtime.now(), candidate_scoring=_candidate(tmp_path).read_text())
    on_aws.item_seconds = 0.5  # still running at the first look
    err = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        evidence_aws.run(job, stack, boto3.Session(), stream=err, sleep=interrupt)
    said = err.getvalue()
    assert f"its report will be s3://{stack.bucket}/{job['run']}/report.json" in said
    assert f"aws stepfunctions stop-execution --execution-arn arn:aws:states:us-east-1:{pipeline.stack.account_id}" \
           f":execution:leadscore-evidence:{job['run']}" in said
    for thread in on_aws.threads:
        thread.join(timeout=30)
