"""local/statemachine.py: `make lint`'s check of the evidence state machine finds what would
break it on AWS, and the interpreter runs the ASL subset the definition uses as Step
Functions does (paths, Choice, Map, Retry)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local.statemachine import HANDLER, TEMPLATE, Interpreter, StatesError, check, handler_steps

# ---------------------------------------------------------------- the check


def _template(tmp_path: Path, old: str, new: str) -> Path:
    text = TEMPLATE.read_text()
    assert old in text, old
    path = tmp_path / "template.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_the_shipped_definition_passes_and_runs_every_step_the_handler_accepts() -> None:
    assert check() == []
    assert handler_steps() == ("scan", "outcomes", "merge", "replay", "reduce")


@pytest.mark.parametrize(("old", "new", "problem"), [
    ("Next: NeedsOutcomes", "Next: NeedOutcomes", "ScanSegments: its next state 'NeedOutcomes' is not a state"),
    ("                Next: FindOutcomes", "                Next: ReplayShards",
     "FindOutcomes: never reached from 'ScanSegments'"),
    ("step: replay", "step: replays", "step 'replays' is not one the handler accepts"),
    ("step: replay", "step: scan", "the handler's steps ['replay'] are never run by the definition"),
    ("FunctionName: ${EvidenceFunctionArn}\n                    Payload:\n                      step: outcomes",
     "FunctionName: arn:aws:lambda:us-east-1:1:function:other\n                    Payload:\n"
     "                      step: outcomes", "FindShardOutcomes: FunctionName"),
    ("                        - Lambda.TooManyRequestsException\n", "",
     "ScanSegment: not retried on Lambda.TooManyRequestsException"),
    ("            MaxConcurrency: 40\n", "", "ScanSegments: no MaxConcurrency"),
    ("                Mode: DISTRIBUTED\n                ExecutionType: STANDARD\n              StartAt: ReplayShard",
     "                Mode: INLINE\n              StartAt: ReplayShard", "ReplayShards: not a Distributed Map"),
    ("                      shard.$: $.shard\n                  OutputPath: $.Payload\n"
     "                  Retry:\n                    - ErrorEquals:\n                        - Lambda.ServiceException\n"
     "                        - Lambda.AWSLambdaException\n                        - Lambda.SdkClientException\n"
     "                        - Lambda.TooManyRequestsException\n                      IntervalSeconds: 2\n"
     "                      MaxAttempts: 6\n                      BackoffRate: 2\n"
     "                      JitterStrategy: FULL\n                  End: true\n            ResultPath: null\n"
     "            Next: Reduce",
     "                  OutputPath: $.Payload\n"
     "                  Retry:\n                    - ErrorEquals:\n                        - States.ALL\n"
     "                  End: true\n            ResultPath: null\n            Next: Reduce",
     "ReplayShard: step 'replay' is given no shard"),
    ("        EvidenceFunctionArn: !GetAtt EvidenceFunction.Arn", "        EvidenceFunctionArn: !GetAtt Table.Arn",
     "DefinitionSubstitutions: none is EvidenceFunction's ARN"),
])
def test_the_check_names_what_is_wrong(tmp_path: Path, old: str, new: str, problem: str) -> None:
    problems = check(_template(tmp_path, old, new))
    assert any(problem in p for p in problems), problems


def test_the_check_reads_the_handlers_steps_from_its_code(tmp_path: Path) -> None:
    handler = tmp_path / "app.py"
    handler.write_text(HANDLER.read_text().replace('"outcomes", ', ""))
    problems = check(handler=handler)
    assert any("step 'outcomes' is not one the handler accepts" in p for p in problems), problems


# ---------------------------------------------------------------- the interpreter

MACHINE: dict[str, Any] = {
    "StartAt": "Each",
    "States": {
        "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2,
                 "ItemSelector": {"job.$": "$.job", "n.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
                 "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                                   "StartAt": "Call", "States": {"Call": {
                                       "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                                       "Parameters": {"FunctionName": "f", "Payload": {"step": "x", "job.$": "$.job",
                                                                                       "n.$": "$.n", "i.$": "$.i"}},
                                       "OutputPath": "$.Payload",
                                       "Retry": [{"ErrorEquals": ["Lambda.TooManyRequestsException"],
                                                  "IntervalSeconds": 2, "MaxAttempts": 2, "BackoffRate": 3}],
                                       "End": True}}},
                 "ResultPath": "$.mapped", "Next": "Which"},
        "Which": {"Type": "Choice", "Choices": [
            {"And": [{"Variable": "$.kind", "StringEquals": "b"}, {"Variable": "$.flag", "IsPresent": True}],
             "Next": "B"}], "Default": "A"},
        "A": {"Type": "Pass", "Parameters": {"went": "A", "mapped.$": "$.mapped"}, "End": True},
        "B": {"Type": "Pass", "Result": {"went": "B"}, "ResultPath": "$.pass", "OutputPath": "$.pass", "End": True},
    },
}


def test_maps_choices_and_paths_run_as_step_functions_runs_them() -> None:
    calls: list[tuple[str, Any]] = []

    def invoke(function: str, payload: Any) -> Any:
        calls.append((function, payload))
        return {"got": payload["n"] * 10, "index": payload["i"]}

    interpreter = Interpreter(MACHINE, invoke)
    output = interpreter.run({"kind": "a", "job": "jobs/1.json", "items": [3, 4]})
    assert calls == [("f", {"step": "x", "job": "jobs/1.json", "n": 3, "i": 0}),
                     ("f", {"step": "x", "job": "jobs/1.json", "n": 4, "i": 1})]
    assert output == {"went": "A", "mapped": [{"got": 30, "index": 0}, {"got": 40, "index": 1}]}
    assert [(r.state, r.total, r.succeeded, r.failed) for r in interpreter.map_runs] == [("Each", 2, 2, 0)]
    # the other branch only when both conditions hold
    assert Interpreter(MACHINE, invoke).run({"kind": "b", "job": "j", "items": []}) == {"went": "A", "mapped": []}
    assert Interpreter(MACHINE, invoke).run({"kind": "b", "flag": 1, "job": "j", "items": []}) == {"went": "B"}


def test_a_throttled_invocation_is_retried_with_backoff_then_fails_the_map_run() -> None:
    waits: list[float] = []
    throttles = {3: 2, 4: 3}  # item -> how many times it is throttled

    def invoke(function: str, payload: Any) -> Any:
        if throttles[payload["n"]]:
            throttles[payload["n"]] -= 1
            raise StatesError("Lambda.TooManyRequestsException", "Rate exceeded")
        return payload["n"]

    interpreter = Interpreter(MACHINE, invoke, sleep=waits.append)
    with pytest.raises(StatesError) as failed:
        interpreter.run({"kind": "a", "job": "j", "items": [3, 4]})
    assert failed.value.error == "States.ExceedToleratedFailureThreshold"  # item 4: throttled past 2 retries
    assert waits == [2, 6, 2, 6]  # IntervalSeconds * BackoffRate ** attempt
    (run,) = interpreter.map_runs
    assert (run.succeeded, run.failed) == (1, 1)


def test_a_function_error_is_not_retried_when_only_throttling_is() -> None:
    def invoke(function: str, payload: Any) -> Any:
        raise StatesError("KeyError", "'job'")

    interpreter = Interpreter(MACHINE, invoke)
    with pytest.raises(StatesError):
        interpreter.run({"kind": "a", "job": "j", "items": [1]})
    assert ("Call", "retry") not in interpreter.history


def test_what_the_interpreter_does_not_know_is_refused_not_ignored() -> None:
    machine = json.loads(json.dumps(MACHINE))
    machine["States"]["A"]["Catch"] = [{"ErrorEquals": ["States.ALL"], "Next": "B"}]
    with pytest.raises(StatesError, match="does not run.*Catch"):
        Interpreter(machine, lambda f, p: {}).run({"kind": "a", "job": "j", "items": []})
    with pytest.raises(StatesError, match="not in"):
        Interpreter(MACHINE, lambda f, p: {}).run({"kind": "a", "items": [1]})  # $.job missing
