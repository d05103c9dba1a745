"""The evidence state machine of template.yaml run over the local stack: its own definition
(local/statemachine.py's interpreter: Step Functions' part), each Task the EvidenceFunction's
handler in-process (Lambda's part) against moto's DynamoDB table and S3 bucket. Real here:
the definition, the handler, the layer's steps, the table, the bucket. Not real: Step
Functions' and Lambda's services (moto would run the tasks in Docker).

It gives the same report as the one-machine `make preview` / `make calibrate` on the same
table, writes nothing to the table, and a step run twice or retried after throttling
changes nothing (each step overwrites its own objects)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from local import calibrate, preview
from local.statemachine import StatesError, run_on_stack, stack_invoker
from tests.integration.conftest import Pipeline
from tests.integration.test_calibrate import _outcomes
from tests.integration.test_preview import _journeys

CONFIG = Path(__file__).resolve().parents[2] / "config"
def _candidate(tmp_path: Path) -> Path:
    """scoring.yaml with the demo link click worth 40 points instead of 25."""
    scoring = tmp_path / "scoring.yaml"
    text = (CONFIG / "scoring.yaml").read_text()
    old = "  - id: demo_link_clicked\n    category: content\n    points: 25\n"
    assert old in text
    scoring.write_text(text.replace(old, old.replace("points: 25", "points: 40")))
    return scoring


def _local(main: Any, argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The one-machine run's report (its --json output)."""
    capsys.readouterr()  # what the functions printed before
    assert main([*argv, "--json"]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def _job(pipeline: Pipeline, kind: str, segments: int, shards: int, **given: Any) -> tuple[str, dict[str, Any]]:
    """A job as the client makes it, uploaded to the evidence bucket: (its key, the job)."""
    from leadscore.adapters import runtime
    from leadscore.adapters.shards import new_job

    job = new_job(kind, segments=segments, shards=shards, as_of=runtime.now(), **given)
    key = f"{job['run']}/job.json"
    boto3.client("s3").put_object(Bucket=pipeline.stack.name_of("EvidenceBucket"), Key=key,
                                  Body=json.dumps(job).encode())
    return key, job


def _input(kind: str, key: str, segments: int, shards: int) -> dict[str, Any]:
    return {"kind": kind, "job": key, "segments": list(range(segments)), "shards": list(range(shards))}


def _report(pipeline: Pipeline, output: dict[str, Any]) -> dict[str, Any]:
    body = boto3.client("s3").get_object(Bucket=pipeline.stack.name_of("EvidenceBucket"), Key=output["report"])["Body"]
    report: dict[str, Any] = json.loads(body.read())
    return report


def _objects(pipeline: Pipeline) -> dict[str, str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=pipeline.stack.name_of("EvidenceBucket"))
    return {o["Key"]: o["ETag"] for o in listed.get("Contents", [])}


def test_a_preview_on_the_state_machine_gives_the_local_report_and_writes_nothing_to_the_table(
        pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _journeys(pipeline)
    rules = _candidate(tmp_path)
    local = _local(preview.main, ["--rules", str(rules)], capsys)
    assert local["newlySdrReady"] == ["crosses.io"]  # the preview says something (test_preview checks what)
    before = pipeline.table_items()

    key, job = _job(pipeline, "preview", 3, 2, candidate_scoring=rules.read_text(), days=90)
    output, machine = run_on_stack(pipeline.stack, _input("preview", key, 3, 2))

    assert output == {"report": f"{job['run']}/report.json"}
    assert _report(pipeline, output) == local
    assert pipeline.table_items() == before
    # a preview skips the outcomes: the scan over every segment, the replay over every shard
    assert [(run.state, run.total, run.succeeded, run.failed) for run in machine.map_runs] == [
        ("ScanSegments", 3, 3, 0), ("ReplayShards", 2, 2, 0)]
    assert ("FindOutcomes", "entered") not in machine.history and ("MergeOutcomes", "entered") not in machine.history


def test_a_calibration_on_the_state_machine_gives_the_local_report(
        pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from leadscore.services.calibrate import parse_outcomes

    data = _outcomes(pipeline, tmp_path / "outcomes.csv")
    local = _local(calibrate.main, ["--data", str(data)], capsys)
    assert local["closed"] == 41

    rows = parse_outcomes(data.read_text(), data.name)
    key, _ = _job(pipeline, "calibrate", 2, 3, outcomes=rows, target=(0.10, 0.15))
    output, machine = run_on_stack(pipeline.stack, _input("calibrate", key, 2, 3))

    assert _report(pipeline, output) == local
    assert [(run.state, run.total, run.succeeded) for run in machine.map_runs] == [
        ("ScanSegments", 2, 2), ("FindOutcomes", 3, 3), ("ReplayShards", 3, 3)]
    assert ("MergeOutcomes", "succeeded") in machine.history


def test_steps_run_twice_or_retried_after_throttling_give_the_same_report(
        pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _journeys(pipeline)
    rules = _candidate(tmp_path)
    local = _local(preview.main, ["--rules", str(rules)], capsys)
    key, _ = _job(pipeline, "preview", 2, 2, candidate_scoring=rules.read_text(), days=90)
    run_on_stack(pipeline.stack, _input("preview", key, 2, 2))
    objects = _objects(pipeline)

    # Lambda throttles every step's first call, and runs each step twice (at least once:
    # a step whose answer was lost runs again)
    invoke, calls, waits = stack_invoker(pipeline.stack), [], []

    def at_least_once(function: str, payload: Any) -> Any:
        calls.append(payload)
        if calls.count(payload) == 1:
            raise StatesError("Lambda.TooManyRequestsException", "Rate Exceeded.")
        invoke(function, payload)
        return invoke(function, payload)

    output, machine = run_on_stack(pipeline.stack, _input("preview", key, 2, 2), invoke=at_least_once,
                                   sleep=waits.append)
    assert _report(pipeline, output) == local
    assert _objects(pipeline).keys() == objects.keys()  # the same objects overwritten, none added
    assert machine.history.count(("ScanSegment", "retry")) == 2 and waits[:2] == [2, 2]


def test_a_step_refuses_what_it_cannot_run_naming_it(pipeline: Pipeline, tmp_path: Path) -> None:
    _journeys(pipeline)
    key, job = _job(pipeline, "preview", 2, 2, candidate_scoring=_candidate(tmp_path).read_text())
    invoke = pipeline.stack.invoke
    with pytest.raises(ValueError, match="step: 'rescan' is not one of scan, outcomes, merge, replay, reduce"):
        invoke("EvidenceFunction", {"step": "rescan", "job": key})
    with pytest.raises(ValueError, match="job: no object 'gone/job.json' in the evidence bucket"):
        invoke("EvidenceFunction", {"step": "scan", "job": "gone/job.json", "segment": 0})
    with pytest.raises(ValueError, match="segment: '1' is not a whole number"):
        invoke("EvidenceFunction", {"step": "scan", "job": key, "segment": "1"})
    with pytest.raises(ValueError, match="segment: 2 is not one of 0..1"):
        invoke("EvidenceFunction", {"step": "scan", "job": key, "segment": 2})
    # a replay before every segment is scanned, a reduce before every shard is replayed: said, not guessed
    invoke("EvidenceFunction", {"step": "scan", "job": key, "segment": 0})
    with pytest.raises(RuntimeError, match=r"segment\(s\) 1 not scanned yet"):
        invoke("EvidenceFunction", {"step": "replay", "job": key, "shard": 0})
    with pytest.raises(RuntimeError, match=r"shard\(s\) 0, 1 not replayed yet"):
        invoke("EvidenceFunction", {"step": "reduce", "job": job})
    # the state machine fails the map run with the function's error
    with pytest.raises(StatesError) as failed:
        run_on_stack(pipeline.stack, {"kind": "preview", "job": "gone/job.json", "segments": [0], "shards": [0]})
    assert failed.value.error == "States.ExceedToleratedFailureThreshold" and "no object" in failed.value.cause



def test_the_evidence_bucket_is_private_encrypted_tls_only_and_forgets_in_3_days() -> None:
    from tests.support.stack import load_template

    resources = load_template(Path(__file__).resolve().parents[2] / "template.yaml")["Resources"]
    bucket = resources["EvidenceBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"}
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert (rule["Status"], rule["ExpirationInDays"], "Prefix" in rule) == ("Enabled", 3, False)  # every object
    (statement,) = resources["EvidenceBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Action"]) == ("Deny", "s3:*")
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # the state machine may invoke the evidence function and run its own map runs, nothing else
    machine = resources["EvidenceStateMachine"]["Properties"]
    (policy,) = machine["Policies"]
    grants = {(s["Action"] if isinstance(s["Action"], str) else tuple(s["Action"]), json.dumps(s["Resource"]))
              for s in policy["Statement"]}
    name = "${AWS::StackName}-evidence"
    assert machine["Name"] == {"Fn::Sub": name}
    assert grants == {
        ("lambda:InvokeFunction", json.dumps({"Fn::GetAtt": ["EvidenceFunction", "Arn"]})),
        ("states:StartExecution", json.dumps({"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:"
                                                         f"${{AWS::AccountId}}:stateMachine:{name}"})),
        (("states:DescribeExecution", "states:StopExecution"), json.dumps(
            [{"Fn::Sub": f"arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:execution:{name}{end}"}
             for end in (":*", "/*")]))}


def test_the_local_stack_builds_the_bucket_and_the_state_machine_from_the_template(pipeline: Pipeline) -> None:
    stack = pipeline.stack
    described = boto3.client("stepfunctions").describe_state_machine(
        stateMachineArn=stack.resources["EvidenceStateMachine"]["arn"])
    definition = json.loads(described["definition"])
    assert definition == stack.state_machines["EvidenceStateMachine"]
    assert described["name"] == "leadscore-evidence" and described["roleArn"].endswith("EvidenceStateMachineRole")
    reduce = definition["States"]["Reduce"]["Parameters"]
    assert reduce["FunctionName"] == stack.functions["EvidenceFunction"].arn  # the substitution applied
    bucket = stack.name_of("EvidenceBucket")
    assert stack.functions["EvidenceFunction"].environment["EVIDENCE_BUCKET"] == bucket
    s3 = boto3.client("s3")
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert set(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values()) == {True}
    (expiry,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert expiry["Expiration"] == {"Days": 3}


def test_the_stack_outputs_what_the_client_looks_up() -> None:
    """local/evidence_aws.find reads these outputs of the deployed stack."""
    import inspect

    from local import evidence_aws
    from tests.support.stack import load_template

    outputs = load_template(Path(__file__).resolve().parents[2] / "template.yaml")["Outputs"]
    assert outputs["EvidenceStateMachineArn"]["Value"] == {"Ref": "EvidenceStateMachine"}  # Ref: the ARN
    assert outputs["EvidenceBucketName"]["Value"] == {"Ref": "EvidenceBucket"}
    assert outputs["TableName"]["Value"] == {"Ref": "Table"}
    looked_up = inspect.getsource(evidence_aws.find)
    assert all(f'"{key}"' in looked_up for key in ("EvidenceStateMachineArn", "EvidenceBucketName", "TableName"))
