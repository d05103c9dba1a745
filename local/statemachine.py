"""The evidence state machine of template.yaml (`EvidenceStateMachine`), checked and run locally.

    python -m local.statemachine --check      # make lint: the definition against the function

`check` reads the definition as the template writes it and says what is wrong with it: a
`Next`, `Default` or `StartAt` naming no state, a state that is never reached or never ends,
a Task that does not invoke the evidence function through `${EvidenceFunctionArn}` (a
substitution of `EvidenceFunction`'s ARN) or that is not retried on Lambda's throttling and
service errors, a Map that is not a Distributed Map over an input array with a
`MaxConcurrency`, and steps (`Payload.step`) other than those the handler accepts
(`STEPS` in functions/evidence/app.py), or a step of the handler the definition never runs.
cfn-lint checks the definition's shape, not these.

`Interpreter` runs a definition with the subset of the Amazon States Language it uses:
Task (`arn:aws:states:::lambda:invoke`, its `Retry`), Map (`ItemsPath`, `ItemSelector` or
`Parameters`, `ItemProcessor` or `Iterator`, inline or distributed), Choice, Pass, Succeed,
Fail, and the paths `InputPath`, `Parameters`, `ResultSelector`, `ResultPath`, `OutputPath`
(reference paths `$`, `$.a.b`, `$.a[0]`, the context's `$$.Map.Item.Value|Index` and
`$$.Execution.Input`). A field it does not know is refused, never ignored. moto can run a
state machine too, but it invokes Lambda tasks through moto's Lambda, which needs Docker;
here each Task calls a function given to the interpreter (`stack_invoker`: the handler
in-process on the local stack, tests/integration/test_evidence_state_machine.py).
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "template.yaml"
STATE_MACHINE = "EvidenceStateMachine"
FUNCTION = "EvidenceFunction"
HANDLER = REPO_ROOT / "functions" / "evidence" / "app.py"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
#: What every Task must be retried on: Lambda throttling and its service errors.
LAMBDA_ERRORS = ("Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                 "Lambda.TooManyRequestsException")
#: The Payload field naming each step's item, beside `job`.
STEP_ITEM: dict[str, str | None] = {"scan": "segment", "outcomes": "shard", "merge": None, "replay": "shard",
                                    "reduce": None}

# ---------------------------------------------------------------- reading the template


def template_definition(template: Path = TEMPLATE, logical_id: str = STATE_MACHINE
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the definition, its DefinitionSubstitutions) as the template writes them."""
    from local.stack import load_template

    resource = load_template(template)["Resources"].get(logical_id)
    if resource is None or resource.get("Type") != "AWS::Serverless::StateMachine":
        raise SystemExit(f"{template.name}: no AWS::Serverless::StateMachine {logical_id}")
    props = resource.get("Properties") or {}
    return props.get("Definition") or {}, props.get("DefinitionSubstitutions") or {}


def handler_steps(path: Path = HANDLER) -> tuple[str, ...]:
    """The steps the handler accepts: its module-level `STEPS` tuple, read without importing it."""
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "STEPS" for t in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, tuple | list) and all(isinstance(v, str) for v in value):
                return tuple(value)
    raise SystemExit(f"{path}: no STEPS = (...) of step names")


def _scopes(states: Mapping[str, Any], where: str = "") -> Iterator[tuple[str, Mapping[str, Any], str]]:
    """(where, the scope's States, its StartAt) of the definition and of every Map's processor."""
    for name, state in states.items():
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if isinstance(processor, Mapping):
            inner = f"{where}{name}."
            yield inner, processor.get("States") or {}, processor.get("StartAt", "")
            yield from _scopes(processor.get("States") or {}, inner)


def _targets(state: Mapping[str, Any]) -> list[str]:
    found = [state["Next"]] if "Next" in state else []
    found += [choice["Next"] for choice in state.get("Choices") or [] if "Next" in choice]
    return found + ([state["Default"]] if "Default" in state else [])


def check(template: Path = TEMPLATE, handler: Path = HANDLER) -> list[str]:
    """What is wrong with the evidence state machine's definition (nothing: an empty list)."""
    definition, substitutions = template_definition(template)
    steps = handler_steps(handler)
    problems: list[str] = []
    function_keys = [k for k, v in substitutions.items() if v == {"Fn::GetAtt": [FUNCTION, "Arn"]}
                     or v == {"Fn::GetAtt": f"{FUNCTION}.Arn"}]
    if not function_keys:
        problems.append(f"DefinitionSubstitutions: none is {FUNCTION}'s ARN (!GetAtt {FUNCTION}.Arn)")
    used = set(re.findall(r"\$\{([^}]+)\}", json.dumps(definition)))
    problems += [f"${{{key}}} is used but not in DefinitionSubstitutions" for key in sorted(used - set(substitutions))]
    run_steps: list[str] = []
    for where, states, start in [("", definition.get("States") or {}, definition.get("StartAt", "")),
                                 *_scopes(definition.get("States") or {})]:
        if start not in states:
            problems.append(f"{where or 'the definition'}: StartAt {start!r} is not a state")
        for name, state in states.items():
            kind = state.get("Type")
            for target in _targets(state):
                if target not in states:
                    problems.append(f"{where}{name}: its next state {target!r} is not a state")
            if kind not in ("Choice", "Succeed", "Fail") and not state.get("End") and "Next" not in state:
                problems.append(f"{where}{name}: neither Next nor End")
            if kind == "Task":
                run_steps += _check_task(f"{where}{name}", state, function_keys, steps, problems)
            elif kind == "Map":
                _check_map(f"{where}{name}", state, problems)
            elif kind not in ("Choice", "Pass", "Succeed", "Fail"):
                problems.append(f"{where}{name}: a {kind} state (the local interpreter runs Task, Map, Choice, "
                                "Pass, Succeed, Fail)")
        reached, todo = set(), [start]
        while todo:
            current = todo.pop()
            if current in reached or current not in states:
                continue
            reached.add(current)
            todo += _targets(states[current])
        problems += [f"{where}{name}: never reached from {start!r}" for name in states if name not in reached]
    missing = [step for step in steps if step not in run_steps]
    if missing:
        problems.append(f"the handler's steps {missing} are never run by the definition")
    return problems


def _check_task(where: str, state: Mapping[str, Any], function_keys: list[str], steps: Sequence[str],
                problems: list[str]) -> list[str]:
    if state.get("Resource") != LAMBDA_INVOKE:
        problems.append(f"{where}: Resource is {state.get('Resource')!r}, not {LAMBDA_INVOKE}")
        return []
    params = state.get("Parameters") or {}
    if params.get("FunctionName") not in [f"${{{key}}}" for key in function_keys]:
        problems.append(f"{where}: FunctionName {params.get('FunctionName')!r} is not {FUNCTION}'s ARN "
                        f"(${{{function_keys[0] if function_keys else 'EvidenceFunctionArn'}}})")
    retried = {error for rule in state.get("Retry") or [] for error in rule.get("ErrorEquals") or []
               if rule.get("MaxAttempts", 3) > 0}
    if "States.ALL" not in retried and not set(LAMBDA_ERRORS) <= retried:
        problems.append(f"{where}: not retried on {', '.join(sorted(set(LAMBDA_ERRORS) - retried))}")
    payload = params.get("Payload")
    if not isinstance(payload, Mapping) or not isinstance(payload.get("step"), str):
        problems.append(f"{where}: its Payload has no step")
        return []
    step = payload["step"]
    if step not in steps:
        problems.append(f"{where}: step {step!r} is not one the handler accepts ({', '.join(steps)})")
        return []
    item = STEP_ITEM.get(step)
    needed = {"job", item} if item else {"job"}
    given = {key.removesuffix(".$") for key in payload if key != "step"}
    if needed - given:
        problems.append(f"{where}: step {step!r} is given no {', '.join(sorted(needed - given))}")
    return [step]


def _check_map(where: str, state: Mapping[str, Any], problems: list[str]) -> None:
    processor = state.get("ItemProcessor") or {}
    if (processor.get("ProcessorConfig") or {}).get("Mode") != "DISTRIBUTED":
        problems.append(f"{where}: not a Distributed Map (ItemProcessor.ProcessorConfig.Mode)")
    if not isinstance(state.get("ItemsPath"), str):
        problems.append(f"{where}: no ItemsPath (the items are an array of the execution's input)")
    if not isinstance(state.get("MaxConcurrency"), int) or state["MaxConcurrency"] <= 0:
        problems.append(f"{where}: no MaxConcurrency (0 would start every item at once)")


# ---------------------------------------------------------------- running a definition


class StatesError(Exception):
    """A state's failure, named as Step Functions names it (`States.TaskFailed`, an error type)."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


@dataclass
class MapRun:
    """A Map state's run, counted as DescribeMapRun's itemCounts counts it."""

    state: str
    total: int
    succeeded: int = 0
    failed: int = 0
    running: int = 0

    @property
    def done(self) -> bool:
        return self.succeeded + self.failed == self.total


_COMMON = {"Type", "Comment", "Next", "End", "InputPath", "OutputPath"}
FIELDS = {
    "Task": _COMMON | {"Resource", "Parameters", "ResultSelector", "ResultPath", "Retry", "TimeoutSeconds"},
    "Map": _COMMON | {"ItemsPath", "ItemSelector", "Parameters", "ItemProcessor", "Iterator", "MaxConcurrency",
                      "ResultSelector", "ResultPath", "Retry", "Label", "ToleratedFailurePercentage"},
    "Choice": {"Type", "Comment", "Choices", "Default", "InputPath", "OutputPath"},
    "Pass": _COMMON | {"Result", "Parameters", "ResultPath"},
    "Succeed": {"Type", "Comment", "InputPath", "OutputPath"},
    "Fail": {"Type", "Comment", "Error", "Cause"},
}
_NO_VALUE = object()


@dataclass
class Interpreter:
    """Runs a definition; each Task's `lambda:invoke` calls `invoke(function name or ARN, payload)`,
    which returns the function's result or raises `StatesError` (its error type: what `Retry`
    matches). Retries wait `sleep(seconds)` (nothing by default). `on_progress` is called with
    the map runs after each item."""

    definition: Mapping[str, Any]
    invoke: Callable[[str, Any], Any]
    sleep: Callable[[float], None] = lambda seconds: None
    workers: int = 1
    on_progress: Callable[[list[MapRun]], None] | None = None
    map_runs: list[MapRun] = field(default_factory=list)
    #: (state, what happened) in order: "entered", "retry", "failed", "succeeded"
    history: list[tuple[str, str]] = field(default_factory=list)

    def run(self, execution_input: Any) -> Any:
        self._execution_input = copy.deepcopy(execution_input)
        return self._run_scope(self.definition, copy.deepcopy(execution_input), {})

    def _run_scope(self, scope: Mapping[str, Any], data: Any, context: dict[str, Any]) -> Any:
        states = scope["States"]
        name = scope["StartAt"]
        while True:
            state = states[name]
            unknown = set(state) - FIELDS.get(state.get("Type", ""), set())
            if state.get("Type") not in FIELDS or unknown:
                raise StatesError("States.Runtime", f"{name}: the local interpreter does not run "
                                  f"{sorted(unknown) or state.get('Type')}")
            self.history.append((name, "entered"))
            data, following = self._state(name, state, data, context)
            if following is None:
                return data
            name = following

    def _state(self, name: str, state: Mapping[str, Any], data: Any, context: dict[str, Any]
               ) -> tuple[Any, str | None]:
        kind = state["Type"]
        effective = self._path(data, state.get("InputPath", "$"), context)
        if kind == "Fail":
            raise StatesError(state.get("Error", "States.Fail"), state.get("Cause", ""))
        if kind == "Choice":
            following = next((choice["Next"] for choice in state.get("Choices") or []
                              if self._matches(choice, effective, context)), state.get("Default"))
            if following is None:
                raise StatesError("States.NoChoiceMatched", f"{name}: no choice matched and no Default")
            return self._path(effective, state.get("OutputPath", "$"), context), following
        if kind == "Succeed":
            return self._path(effective, state.get("OutputPath", "$"), context), None
        if kind == "Pass":
            result = (state["Result"] if "Result" in state else
                      self._template(state["Parameters"], effective, context) if "Parameters" in state else effective)
        elif kind == "Task":
            result = self._task(name, state, effective, context)
        else:
            result = self._map(name, state, effective, context)
        if "ResultSelector" in state:
            result = self._template(state["ResultSelector"], result, context)
        output = self._result_path(data, state.get("ResultPath", "$"), result)
        output = self._path(output, state.get("OutputPath", "$"), context)
        self.history.append((name, "succeeded"))
        return output, None if state.get("End") else state["Next"]

    def _task(self, name: str, state: Mapping[str, Any], data: Any, context: dict[str, Any]) -> Any:
        if state["Resource"] != LAMBDA_INVOKE:
            raise StatesError("States.Runtime", f"{name}: the local interpreter runs {LAMBDA_INVOKE} only")
        params = self._template(state.get("Parameters") or {}, data, context)
        attempts: dict[int, int] = {}
        while True:
            try:
                payload = self.invoke(params["FunctionName"], params.get("Payload", data))
                return {"ExecutedVersion": "$LATEST", "Payload": payload, "StatusCode": 200}
            except StatesError as error:
                rule_index, rule = next(((i, r) for i, r in enumerate(state.get("Retry") or [])
                                         if error.error in r["ErrorEquals"] or "States.ALL" in r["ErrorEquals"]),
                                        (-1, None))
                done = attempts.get(rule_index, 0)
                if rule is None or done >= rule.get("MaxAttempts", 3):
                    self.history.append((name, "failed"))
                    raise
                attempts[rule_index] = done + 1
                self.history.append((name, "retry"))
                self.sleep(rule.get("IntervalSeconds", 1) * rule.get("BackoffRate", 2.0) ** done)

    def _map(self, name: str, state: Mapping[str, Any], data: Any, context: dict[str, Any]) -> list[Any]:
        items = self._path(data, state.get("ItemsPath", "$"), context)
        if not isinstance(items, list):
            raise StatesError("States.Runtime", f"{name}: ItemsPath {state.get('ItemsPath', '$')} is not an array")
        processor = state.get("ItemProcessor") or state.get("Iterator")
        selector = state.get("ItemSelector", state.get("Parameters"))
        distributed = ((processor or {}).get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED"
        run = MapRun(state.get("Label", name), len(items))
        self.map_runs.append(run)

        def one(index: int, item: Any) -> Any:
            item_context = {**context, "Map": {"Item": {"Index": index, "Value": item}}}
            item_input = self._template(selector, data, item_context) if selector is not None else item
            try:
                result = self._run_scope(processor or {}, item_input, {k: v for k, v in context.items() if k != "Map"})
            except StatesError:
                run.failed += 1
                raise
            else:
                run.succeeded += 1
            finally:
                if self.on_progress:
                    self.on_progress(self.map_runs)
            return result

        limit = max(1, min(self.workers, int(state.get("MaxConcurrency") or len(items) or 1)))
        try:
            if limit == 1:
                return [one(i, item) for i, item in enumerate(items)]
            with ThreadPoolExecutor(max_workers=limit) as pool:
                return list(pool.map(one, range(len(items)), items))
        except StatesError as error:
            if distributed:  # ToleratedFailurePercentage 0: one failed item fails the map run
                raise StatesError("States.ExceedToleratedFailureThreshold", f"{name}: {error}") from error
            raise

    # ------------------------------------------------------------ paths and choices

    def _path(self, data: Any, path: str | None, context: Mapping[str, Any]) -> Any:
        if path is None:
            return {}
        if path.startswith("$$"):
            root: Any = {**context, "Execution": {"Input": self._execution_input}}
            rest = path[2:]
        elif path.startswith("$"):
            root, rest = data, path[1:]
        else:
            raise StatesError("States.Runtime", f"{path!r} is not a reference path")
        value = root
        for key, index in re.findall(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]", rest):
            try:
                value = value[key] if key else value[int(index)]
            except (KeyError, IndexError, TypeError):
                raise StatesError("States.Runtime", f"{path} is not in {json.dumps(data)[:200]}") from None
        if re.sub(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]", "", rest):
            raise StatesError("States.Runtime", f"{path!r}: the local interpreter reads $.a.b and $.a[0] paths only")
        return value

    def _template(self, template: Any, data: Any, context: Mapping[str, Any]) -> Any:
        if isinstance(template, Mapping):
            out = {}
            for key, value in template.items():
                if key.endswith(".$"):
                    out[key[:-2]] = copy.deepcopy(self._path(data, value, context))
                else:
                    out[key] = self._template(value, data, context)
            return out
        if isinstance(template, list):
            return [self._template(value, data, context) for value in template]
        return template

    def _result_path(self, data: Any, path: str | None, result: Any) -> Any:
        if path is None:
            return data
        if path == "$":
            return result
        keys = re.findall(r"\.([A-Za-z_][\w-]*)", path)
        if "".join(f".{k}" for k in keys) != path[1:]:
            raise StatesError("States.Runtime", f"ResultPath {path!r}: the local interpreter sets $.a.b paths only")
        out = copy.deepcopy(data) if isinstance(data, dict) else {}
        target = out
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = result
        return out

    def _matches(self, rule: Mapping[str, Any], data: Any, context: Mapping[str, Any]) -> bool:
        if "And" in rule:
            return all(self._matches(r, data, context) for r in rule["And"])
        if "Or" in rule:
            return any(self._matches(r, data, context) for r in rule["Or"])
        if "Not" in rule:
            return not self._matches(rule["Not"], data, context)
        try:
            value = self._path(data, rule["Variable"], context)
        except StatesError:
            value = _NO_VALUE
        if "IsPresent" in rule:
            return (value is not _NO_VALUE) == rule["IsPresent"]
        if value is _NO_VALUE:
            raise StatesError("States.Runtime", f"Choice: {rule['Variable']} is not in the input")
        tests = {"StringEquals": lambda v, x: isinstance(v, str) and v == x,
                 "NumericEquals": lambda v, x: isinstance(v, int | float) and not isinstance(v, bool) and v == x,
                 "BooleanEquals": lambda v, x: isinstance(v, bool) and v == x,
                 "IsNull": lambda v, x: (v is None) == x}
        for operator, test in tests.items():
            if operator in rule:
                return bool(test(value, rule[operator]))
        raise StatesError("States.Runtime", f"Choice: the local interpreter does not test {sorted(rule)}")


# ---------------------------------------------------------------- on the local stack


def stack_invoker(stack: Any) -> Callable[[str, Any], Any]:
    """A Task's invoke on the local stack (local/stack.py TemplateStack): the function the ARN
    names, its handler in-process with the template's environment, the payload and the result
    through JSON as Lambda passes them; a handler's exception fails the Task with its type as
    the error (what Step Functions reports for a function error)."""
    by_arn = {spec.arn: logical_id for logical_id, spec in stack.functions.items()}
    by_arn.update({spec.name: logical_id for logical_id, spec in stack.functions.items()})

    def invoke(function: str, payload: Any) -> Any:
        logical_id = by_arn.get(function)
        if logical_id is None:
            raise StatesError("Lambda.ResourceNotFoundException", f"no function {function}")
        try:
            result = stack.invoke(logical_id, json.loads(json.dumps(payload)))
        except Exception as error:  # noqa: BLE001 - a function error, as Lambda reports it
            raise StatesError(type(error).__name__, str(error)) from error
        return json.loads(json.dumps(result))

    return invoke


def run_on_stack(stack: Any, execution_input: Any, logical_id: str = STATE_MACHINE, *,
                 invoke: Callable[[str, Any], Any] | None = None, **options: Any) -> tuple[Any, Interpreter]:
    """The stack's state machine run on `execution_input` with its functions in-process (or
    `invoke`; `options`: the Interpreter's). Returns (output, the interpreter: map runs, history)."""
    interpreter = Interpreter(stack.state_machines[logical_id], invoke or stack_invoker(stack), **options)
    return interpreter.run(execution_input), interpreter


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.statemachine", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="check the definition against the function")
    parser.add_argument("--template", default=str(TEMPLATE))
    args = parser.parse_args(argv)
    if not args.check:
        parser.error("nothing to do: --check")
    problems = check(Path(args.template))
    for problem in problems:
        print(f"{STATE_MACHINE}: {problem}", file=sys.stderr)
    if not problems:
        print(f"{STATE_MACHINE}: its definition runs the steps {FUNCTION} accepts, and every state leads on")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
