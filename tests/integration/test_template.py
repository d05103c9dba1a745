"""template.yaml: it validates, the stack built from it on moto is what the design needs,
and the local runner (tests/support/stack.py) delivers as AWS would.

The runner's own tests use a small template of fake handlers (tests/support/fixtures)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.apigw import (
    decode_body,
    form_event,
    http_event,
    iam_authorizer,
    lambda_context,
    route_params,
)
from tests.support.digests import needs_log_key
from tests.support.stack import HandlerError, TemplateStack, expand_template, load_template

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"
FIXTURE_TEMPLATE = REPO_ROOT / "tests" / "support" / "fixtures" / "template.yaml"
BIN = Path(sys.executable).parent

INGESTION_ROUTES = {
    "POST /v1/batch",
    "POST /v1/track",
    "POST /v1/identify",
    "POST /v1/page",
    "POST /v1/group",
    "POST /v1/alias",
    "POST /v1/screen",
    "GET /v1/pixel.gif",
    "POST /v1/forms/{formId}",
    "GET /v1/projects/{writeKey}/settings",
}
IAM_ROUTES = {"GET /v1/accounts/{accountId}", "GET /v1/contacts/{contactId}",
              "POST /v1/accounts/{accountId}/feedback", "POST /v1/accounts/{accountId}/assign",
              "POST /v1/sdrs/{sdrId}/reassign",
              "GET /v1/sdrs", "GET /v1/sdrs/{sdrId}/accounts", "PUT /v1/sdrs/{sdrId}/availability",
              "DELETE /v1/contacts/{contactId}"}


def _tool_env() -> dict[str, str]:
    return {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}


# ---------------------------------------------------------------- validation


def test_sam_validate_lint_passes() -> None:
    # Given the SAM CLI of the project's virtualenv (installed by `make install`)
    sam = BIN / "sam"
    assert sam.exists(), f"sam CLI not found next to {sys.executable}: run `make install`"
    # When the template is validated with its linter
    result = subprocess.run(
        [str(sam), "validate", "--lint", "--template-file", str(TEMPLATE), "--region", "us-east-1"],
        capture_output=True,
        text=True,
        env=_tool_env(),
        cwd=REPO_ROOT,
        timeout=300,
    )
    # Then it is valid
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_cfn_lint_is_clean() -> None:
    result = subprocess.run(
        [str(BIN / "cfn-lint"), str(TEMPLATE)],
        capture_output=True,
        text=True,
        env=_tool_env(),
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


# ---------------------------------------------------------------- the template itself


@pytest.fixture(scope="module")
def sam_template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def test_functions_run_python312_on_arm64_with_both_layers(sam_template: dict[str, Any]) -> None:
    globals_ = sam_template["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.12"
    assert globals_["Architectures"] == ["arm64"]
    # tracing off: no function carries a tracer, so Active would trace nothing of ours (issue 15)
    assert "Tracing" not in globals_
    assert globals_["Layers"] == [{"Ref": "SharedLayer"}, {"Ref": "ConfigLayer"}]
    shared = sam_template["Resources"]["SharedLayer"]
    assert shared["Properties"]["ContentUri"] == "shared/"
    assert shared["Metadata"]["BuildMethod"] == "python3.12"
    config = sam_template["Resources"]["ConfigLayer"]
    assert config["Properties"]["ContentUri"] == "config/"
    assert "Metadata" not in config  # no build: the files land in /opt as they are
    for name, function in _functions(sam_template).items():
        code_uri = function["Properties"]["CodeUri"]
        assert code_uri.startswith("functions/"), name


def test_routes(sam_template: dict[str, Any]) -> None:
    routes: dict[str, dict[str, Any]] = {}
    for function in _functions(sam_template).values():
        for event in (function["Properties"].get("Events") or {}).values():
            if event["Type"] == "HttpApi":
                props = event["Properties"]
                assert props["ApiId"] == {"Ref": "Api"}
                routes[f"{props['Method']} {props['Path']}"] = props
    api = sam_template["Resources"]["Api"]["Properties"]
    # the collection routes: paths of the API's definition, there only with IngestEndpoint
    # HttpApi (with FunctionUrl the collect function's URL serves them: test_front_door.py)
    for path, item in api["DefinitionBody"]["paths"].items():
        condition, operations, otherwise = item["Fn::If"]
        assert (condition, otherwise) == ("UseHttpApiIngest", {"Ref": "AWS::NoValue"}), path
        for method, operation in operations.items():
            routes[f"{method.upper()} {path}"] = operation
    assert set(routes) >= INGESTION_ROUTES
    assert set(routes) >= IAM_ROUTES
    for route in IAM_ROUTES:
        assert routes[route]["Auth"]["Authorizer"] == "AWS_IAM", route
    for route in INGESTION_ROUTES:
        # public: the write key is checked by the code
        assert "Auth" not in routes[route] and "security" not in routes[route], route
    assert api["Auth"]["EnableIamAuthorizer"] is True
    # CORS is per source, answered by the collect function (an API-level config would override it)
    assert "CorsConfiguration" not in api


def test_every_stream_and_queue_source_has_bounded_retries_and_a_failure_destination(
    sam_template: dict[str, Any],
) -> None:
    sources = 0
    queues = sam_template["Resources"]
    for name, function in _functions(sam_template).items():
        timeout = function["Properties"].get("Timeout", sam_template["Globals"]["Function"]["Timeout"])
        for event_name, event in (function["Properties"].get("Events") or {}).items():
            props = event["Properties"]
            where = f"{name}.{event_name}"
            if event["Type"] in ("DynamoDB", "Kinesis"):
                sources += 1
                assert 0 <= props["MaximumRetryAttempts"] <= 100, where
                assert props["BisectBatchOnFunctionError"] is True, where
                assert "ReportBatchItemFailures" in props["FunctionResponseTypes"], where
                on_failure = props["DestinationConfig"]["OnFailure"]
                assert on_failure["Type"] in ("SQS", "SNS", "S3"), where
                assert on_failure["Destination"], where
            elif event["Type"] == "SQS":
                sources += 1
                assert "ReportBatchItemFailures" in props["FunctionResponseTypes"], where
                queue = queues[props["Queue"]["Fn::GetAtt"][0]]["Properties"]
                assert queue["RedrivePolicy"]["maxReceiveCount"] >= 1, where
                assert queue.get("VisibilityTimeout", 30) >= 6 * timeout, where
            elif event["Type"] in ("EventBridgeRule", "CloudWatchEvent"):
                assert props["RetryPolicy"]["MaximumRetryAttempts"] >= 0, where
                assert props["DeadLetterConfig"], where
    assert sources >= 1


def test_aggregate_reads_the_table_stream(sam_template: dict[str, Any]) -> None:
    props = sam_template["Resources"]["AggregateFunction"]["Properties"]["Events"]["TableStream"][
        "Properties"
    ]
    assert props["Stream"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["AggregateFailureQueue", "Arn"]
    }


# ---------------------------------------------------------------- least privilege, derived from the code

LAYER = REPO_ROOT / "shared" / "leadscore"
FUNCTIONS_DIR = REPO_ROOT / "functions"
#: What AWS adds to every function role on its own: logs (basic execution).
ALLOWED_MANAGED = ("service-role/AWSLambdaBasicExecutionRole",)
#: Transaction parts and the IAM action each is authorized by (DynamoDB transactions have none of their own).
TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                    "ConditionCheck": "ConditionCheckItem"}
STREAM_READ = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator")


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _store_operations() -> dict[str, set[tuple[str, str]]]:
    """Store method -> the (IAM action, resource) pairs of the DynamoDB calls it makes, read
    from the repositories (adapters/storage.py) and the table they share (adapters/table.py):
    every `self.client.<operation>`, and the methods it reaches (`self.<method>`,
    `self.table.<method>`). A transaction is authorized by the parts the methods reached
    build (`{"Put": ...}`), a Query by the indexes they name (`IndexName=DUE_INDEX`)."""
    trees = [_parse(LAYER / "adapters" / name) for name in ("storage.py", "table.py")]
    classes = [n for tree in trees for n in tree.body if isinstance(n, ast.ClassDef)]
    assert {"Table", "Store"} <= {c.name for c in classes}
    # the indexes (DUE_INDEX = "DueIndex", OWNER_INDEX = ...), wherever they are named
    indexes = {t.id: n.value.value for tree in trees for n in ast.walk(tree) if isinstance(n, ast.Assign)
               for t in n.targets if isinstance(t, ast.Name) and t.id.endswith("_INDEX")}
    assert {"DUE_INDEX", "OWNER_INDEX"} <= set(indexes)
    # module-level helpers a method calls by name (`_owned_by(...)`)
    helpers = {n.name: n for tree in trees for n in tree.body if isinstance(n, ast.FunctionDef)}
    methods: dict[str, ast.FunctionDef] = {}
    for cls in classes:
        for method in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
            # one name, one method: a store method's grants are those of the one it names
            assert method.name == "__init__" or method.name not in methods, f"{method.name} defined twice"
            methods[method.name] = method
    operations: dict[str, set[str]] = {}
    calls: dict[str, set[str]] = {}
    parts: dict[str, set[str]] = {}
    named: dict[str, set[str]] = {}
    for name, function in {**methods, **helpers}.items():
        operations[name], calls[name] = set(), set()
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in helpers:
                calls[name].add(node.func.id)
            if not isinstance(node, ast.Attribute):
                continue
            owner = node.value
            if (isinstance(owner, ast.Attribute) and owner.attr == "client"
                    and isinstance(owner.value, ast.Name) and owner.value.id == "self"
                    and node.attr != "exceptions"):
                operations[name].add("".join(part.title() for part in node.attr.split("_")))
            elif (isinstance(owner, ast.Name) and owner.id == "self") or (
                    isinstance(owner, ast.Attribute) and owner.attr == "table"
                    and isinstance(owner.value, ast.Name) and owner.value.id == "self"):
                calls[name].add(node.attr)
        parts[name] = {k.value for d in ast.walk(function) if isinstance(d, ast.Dict)
                       for k in d.keys if isinstance(k, ast.Constant) and k.value in TRANSACT_ACTIONS}
        named[name] = ({indexes[n.id] for n in ast.walk(function) if isinstance(n, ast.Name) and n.id in indexes}
                       if "IndexName" in ast.unparse(function) else set())
    resolved: dict[str, set[tuple[str, str]]] = {}
    for name in methods:
        seen, todo = set(), [name]
        while todo:
            current = todo.pop()
            if current in seen or current not in operations:
                continue
            seen.add(current)
            todo += calls[current]
        reached_operations = set().union(*(operations[m] for m in seen))
        reached_parts = set().union(*(parts[m] for m in seen))
        reached_indexes = set().union(*(named[m] for m in seen))
        grants: set[tuple[str, str]] = set()
        for operation in reached_operations:
            if operation == "TransactWriteItems":
                if name == "transact":
                    continue  # the generic call: authorized by the parts its callers build
                assert reached_parts, f"{name}: no transaction parts found"
                grants |= {(f"dynamodb:{TRANSACT_ACTIONS[p]}", "Table.Arn") for p in reached_parts}
            elif operation in ("Query", "Scan") and reached_indexes:
                grants |= {(f"dynamodb:{operation}", f"Table.Arn/index/{index}") for index in reached_indexes}
            else:
                grants.add((f"dynamodb:{operation}", "Table.Arn"))
        resolved[name] = grants
    return resolved


def _handler_modules(code_uri: str) -> tuple[set[str], bool, bool, bool]:
    """(leadscore modules the handler imports, whether it builds the bus publisher, whether it
    builds the routed queue's sender, whether it builds the parked queue's)."""
    tree = _parse(REPO_ROOT / code_uri / "app.py")
    modules: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("leadscore."):
            module = n.module.split(".", 1)[1]
            if (LAYER / module.replace(".", "/")).is_dir():  # `from leadscore.adapters import runtime`
                modules |= {f"{module}.{alias.name}" for alias in n.names}
            else:
                modules.add(module)

    def builds(getter: str) -> bool:
        return any(isinstance(n, ast.Attribute) and n.attr == getter
                   and isinstance(n.value, ast.Name) and n.value.id == "runtime" for n in ast.walk(tree))

    return modules, builds("publisher"), builds("routed_queue"), builds("parked_queue")


#: Definitions whose store is in memory, not the table: rebuild.replay folds over ScratchContacts.
IN_MEMORY = {("leadscore.services.rebuild", "replay")}


def _reached_definitions(modules: set[str]) -> list[ast.AST]:
    """The code a handler's use cases reach: the modules it imports, whole, and in turn the
    definitions those take by name from other use cases (aggregate -> rebuild.Rebuilder,
    which reads a contact's events), following the names each of those uses."""
    trees = {m: _parse(LAYER / f"{m.replace('.', '/')}.py") for m in modules}
    reached: list[ast.AST] = list(trees.values())
    pending: list[tuple[ast.AST, ast.Module]] = [(tree, tree) for tree in trees.values()]
    seen: set[tuple[str, str]] = set()
    seen_local: set[tuple[int, str]] = set()
    while pending:
        node, tree = pending.pop()
        used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        if node is not tree:  # the module's own definitions it uses (Rebuilder -> gather)
            for definition in tree.body:
                if (isinstance(definition, ast.FunctionDef | ast.ClassDef) and definition.name in used
                        and (id(tree), definition.name) not in seen_local):
                    seen_local.add((id(tree), definition.name))
                    reached.append(definition)
                    pending.append((definition, tree))
        for imported in (n for n in tree.body if isinstance(n, ast.ImportFrom)):
            module = imported.module or ""
            if not module.startswith("leadscore.services."):
                continue
            source = _parse(LAYER / f"{module.split('.', 1)[1].replace('.', '/')}.py")
            for alias in imported.names:
                if ((module, alias.name) in seen or (alias.asname or alias.name) not in used
                        or (module, alias.name) in IN_MEMORY):
                    continue
                seen.add((module, alias.name))
                for definition in source.body:
                    if isinstance(definition, ast.FunctionDef | ast.ClassDef) and definition.name == alias.name:
                        reached.append(definition)
                        pending.append((definition, source))
    return reached


def _store_methods_used(modules: set[str], methods: set[str]) -> set[str]:
    """Store methods the modules reach through a store (`store.get`, `self.store.put_event`...)."""
    used = set()
    for tree in _reached_definitions(modules):
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in methods:
                owner = node.value
                name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
                if "store" in name:
                    used.add(node.attr)
    return used


def _symbol(value: Any) -> str:
    """An IAM resource as the template writes it, in a comparable form ("Table.Arn/index/X")."""
    if isinstance(value, str):
        return value
    (key, arg), = value.items()
    if key == "Fn::GetAtt":
        return ".".join(arg) if isinstance(arg, list) else arg
    if key == "Ref":
        return f"Ref:{arg}"
    if key == "Fn::Sub":
        text, variables = (arg, {}) if isinstance(arg, str) else arg
        for name, variable in variables.items():
            text = text.replace("${" + name + "}", _symbol(variable))
        return text.replace("${", "").replace("}", "")
    raise AssertionError(f"unexpected IAM resource {value}")


@pytest.fixture(scope="module")
def expanded() -> dict[str, Any]:
    template = load_template(TEMPLATE)
    defaults = {k: str(v.get("Default", "")) for k, v in template["Parameters"].items()}
    return expand_template(template, defaults)


def _role_of(expanded: dict[str, Any], function: str) -> dict[str, Any]:
    role = expanded["Resources"][function]["Properties"]["Role"]
    return expanded["Resources"][role["Fn::GetAtt"][0]]["Properties"]


def _granted(role: dict[str, Any]) -> set[tuple[str, str]]:
    grants = set()
    for policy in role.get("Policies") or []:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            assert "NotAction" not in statement and "NotResource" not in statement
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            grants |= {(a, _symbol(r)) for a in actions for r in resources}
    return grants


def _invokes_itself(modules: set[str]) -> bool:
    """Whether a handler's modules make a Lambda client (the erase function's continuation)."""
    return any('LazyClient("lambda")' in (LAYER / f"{m.replace('.', '/')}.py").read_text() for m in modules
               if (LAYER / f"{m.replace('.', '/')}.py").is_file())


def _shards_needs(store_ops: dict[str, set[tuple[str, str]]], bucket: str) -> set[tuple[str, str]]:
    """What adapters/shards.py calls (the evidence function's steps, issue 25): the table's
    Scans (`table.client.scan`), the Store methods a shard reads a foreign person with
    (`self._store().<method>`), and S3ShardStore's `self.client.<operation>` on the bucket
    (ListObjectsV2 is authorized by s3:ListBucket on the bucket, the others on its objects)."""
    tree = _parse(LAYER / "adapters" / "shards.py")
    needed: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        if isinstance(owner, ast.Attribute) and owner.attr == "client" and isinstance(owner.value, ast.Name) \
                and owner.value.id == "table":
            needed.add((f"dynamodb:{''.join(p.title() for p in node.attr.split('_'))}", "Table.Arn"))
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Attribute) and owner.func.attr == "_store":
            needed |= store_ops[node.attr]
    (s3_store,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "S3ShardStore"]
    operations = {n.attr for n in ast.walk(s3_store) if isinstance(n, ast.Attribute)
                  and isinstance(n.value, ast.Attribute) and n.value.attr == "client" and n.attr != "exceptions"}
    for operation in operations:
        if operation == "list_objects_v2":
            needed.add(("s3:ListBucket", bucket))
        else:
            needed.add((f"s3:{''.join(p.title() for p in operation.split('_'))}", f"{bucket}/*"))
    assert ("dynamodb:Scan", "Table.Arn") in needed and ("s3:PutObject", f"{bucket}/*") in needed
    return needed


def _needed(sam_template: dict[str, Any], function: str, store_ops: dict[str, set[tuple[str, str]]]
            ) -> set[tuple[str, str]]:
    """What the function's code and its event sources use, and nothing else."""
    props = sam_template["Resources"][function]["Properties"]
    modules, publishes, routes, parks = _handler_modules(props["CodeUri"])
    needed: set[tuple[str, str]] = set()
    # adapters.shards: its `store.put`/`get` are a ShardStore's (S3), its table calls read by _shards_needs
    for method in _store_methods_used(modules - {"adapters.shards"}, set(store_ops)):
        needed |= store_ops[method]
    if _invokes_itself(modules):  # an erasure's continuation: itself, by the name the template gives it
        needed.add(("lambda:InvokeFunction", "arn:AWS::Partition:lambda:AWS::Region:AWS::AccountId:function:"
                    + _symbol(props["FunctionName"])))
    if publishes:
        needed.add(("events:PutEvents", "EventBus.Arn"))
    if routes:
        needed.add(("sqs:SendMessage", "RoutedQueue.Arn"))
    if parks:
        needed.add(("sqs:SendMessage", "RoutedParkedQueue.Arn"))
    if "adapters.shards" in modules:  # previews and calibration on AWS: the table's Scan, the evidence bucket
        bucket = _symbol((props.get("Environment") or {}).get("Variables", {})["EVIDENCE_BUCKET"]).removeprefix("Ref:")
        needed |= _shards_needs(store_ops, f"{bucket}.Arn")
    if needs_log_key(props["CodeUri"]):  # its log key, that secret only (tests/support/digests.py)
        needed.add(("secretsmanager:GetSecretValue", "Ref:LogKeySecret"))
    destinations = [((props.get("EventInvokeConfig") or {}).get("DestinationConfig") or {}).get("OnFailure")]
    for event in (props.get("Events") or {}).values():
        if event["Type"] == "DynamoDB":
            stream = _symbol(event["Properties"]["Stream"])
            needed |= {(action, stream) for action in STREAM_READ}
            needed.add(("dynamodb:ListStreams", stream.replace(".StreamArn", ".Arn/stream/*")))
            destinations.append((event["Properties"].get("DestinationConfig") or {}).get("OnFailure"))
    for destination in filter(None, destinations):
        assert destination["Type"] == "SQS"
        needed.add(("sqs:SendMessage", _symbol(destination["Destination"])))
    return needed


def test_every_function_is_granted_exactly_the_calls_its_code_makes(
        sam_template: dict[str, Any], expanded: dict[str, Any]) -> None:
    store_ops = _store_operations()
    # the derivation sees the calls the design names (a guard against a vacuous comparison)
    assert store_ops["query_due"] == {("dynamodb:Query", "Table.Arn/index/DueIndex")}
    assert store_ops["put_versioned_many"] == {("dynamodb:PutItem", "Table.Arn")}
    assert store_ops["query_book"] == {("dynamodb:Query", "Table.Arn/index/OwnerIndex")}
    assert store_ops["load_feedback"] == {("dynamodb:Query", "Table.Arn")}
    assert store_ops["save_assignment"] == {("dynamodb:PutItem", "Table.Arn"), ("dynamodb:UpdateItem", "Table.Arn")}
    for function in _functions(sam_template):
        needed = _needed(sam_template, function, store_ops)
        assert any(action.startswith("dynamodb:") for action, _ in needed), function
        role = _role_of(expanded, function)
        assert _granted(role) == needed, function
        for arn in role.get("ManagedPolicyArns") or []:
            assert _symbol(arn).endswith(ALLOWED_MANAGED), (function, arn)


def test_no_function_can_scan_delete_or_read_any_stream(expanded: dict[str, Any]) -> None:
    for logical_id, resource in expanded["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        role = resource["Properties"]
        for arn in role.get("ManagedPolicyArns") or []:
            assert "DynamoDB" not in _symbol(arn), (logical_id, arn)  # AWSLambdaDynamoDBExecutionRole: every stream
        for action, resource_arn in _granted(role):
            if logical_id != "EvidenceFunctionRole":  # previews and calibration alone read the whole table
                assert action != "dynamodb:Scan", logical_id
            if logical_id != "EraseFunctionRole":  # erasure alone deletes (DELETE /v1/contacts/{id})
                assert action != "dynamodb:DeleteItem", logical_id
            if logical_id not in ("EraseFunctionRole", "AggregateFunctionRole"):  # and the history's batch of puts
                assert action != "dynamodb:BatchWriteItem", logical_id
            assert "*" not in action and resource_arn != "*", (logical_id, action, resource_arn)


# ---------------------------------------------------------------- failure destinations, alarms, concurrency


def _failure_queues(sam_template: dict[str, Any]) -> dict[str, str]:
    """Every queue an asynchronous path ends in -> what sends to it."""
    queues: dict[str, str] = {}
    for name, function in _functions(sam_template).items():
        props = function["Properties"]
        on_failure = ((props.get("EventInvokeConfig") or {}).get("DestinationConfig") or {}).get("OnFailure")
        if on_failure:
            queues[on_failure["Destination"]["Fn::GetAtt"][0]] = f"{name} (Lambda async OnFailure)"
        for event_name, event in (props.get("Events") or {}).items():
            event_props = event["Properties"]
            stream = (event_props.get("DestinationConfig") or {}).get("OnFailure")
            if stream:
                queues[stream["Destination"]["Fn::GetAtt"][0]] = f"{name}.{event_name} (stream OnFailure)"
            if event_props.get("DeadLetterConfig"):
                queues[event_props["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]] = f"{name}.{event_name} (DLQ)"
    return queues


def test_every_asynchronous_invocation_has_a_failure_destination(sam_template: dict[str, Any]) -> None:
    asynchronous = 0
    for name, function in _functions(sam_template).items():
        props = function["Properties"]
        for event_name, event in (props.get("Events") or {}).items():
            if event["Type"] not in ("EventBridgeRule", "CloudWatchEvent", "Schedule", "ScheduleV2"):
                continue
            asynchronous += 1
            where = f"{name}.{event_name}"
            # EventBridge -> Lambda: retried, then the rule's DLQ
            assert event["Properties"]["RetryPolicy"]["MaximumRetryAttempts"] >= 0, where
            assert event["Properties"]["DeadLetterConfig"]["Arn"], where
            # Lambda's own async retries, then the function's OnFailure destination
            config = props["EventInvokeConfig"]
            assert 0 <= config["MaximumRetryAttempts"] <= 2, where
            assert config["DestinationConfig"]["OnFailure"]["Type"] == "SQS", where
    assert asynchronous >= 2  # the bus rule and the decay schedule


def test_failure_queues_are_encrypted_kept_14_days_and_open_to_eventbridge_only_where_it_sends(
        sam_template: dict[str, Any]) -> None:
    resources = sam_template["Resources"]
    queues = _failure_queues(sam_template)
    assert set(queues) >= {"AggregateFailureQueue", "BusDeadLetterQueue", "ScoreFromBusFailureQueue",
                           "DecayDeadLetterQueue"}
    policies = {p["Properties"]["Queues"][0]["Ref"]: p["Properties"]["PolicyDocument"]
                for p in resources.values() if p["Type"] == "AWS::SQS::QueuePolicy"}
    for queue, sender in queues.items():
        props = resources[queue]["Properties"]
        assert props["MessageRetentionPeriod"] == 14 * 24 * 3600, queue
        assert props.get("SqsManagedSseEnabled") is True or props.get("KmsMasterKeyId"), queue
        if sender.endswith("(DLQ)"):  # EventBridge sends: a queue policy scoped to the rule
            rule = sender.split(" ")[0].replace(".", "")
            (statement,) = policies[queue]["Statement"]
            assert statement["Principal"] == {"Service": "events.amazonaws.com"}
            assert statement["Action"] == "sqs:SendMessage"
            assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": [rule, "Arn"]}, queue


def test_every_failure_queue_has_an_alarm_to_the_alarm_topic(sam_template: dict[str, Any]) -> None:
    resources = sam_template["Resources"]
    alarms: dict[str, dict[str, Any]] = {}
    for alarm in (r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"):
        (dimension,) = alarm["Dimensions"]
        assert dimension["Name"] == "QueueName"
        alarms[dimension["Value"]["Fn::GetAtt"][0]] = alarm
    for queue in _failure_queues(sam_template):
        alarm = alarms[queue]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
        assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": [queue, "QueueName"]}
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0), queue
        assert alarm["TreatMissingData"] == "notBreaching", queue
        assert {"Ref": "AlarmTopic"} in alarm["AlarmActions"], queue
        assert "make replay" in alarm["AlarmDescription"], queue
    assert resources["AlarmTopic"]["Type"] == "AWS::SNS::Topic"


def test_the_alarm_email_is_optional(sam_template: dict[str, Any]) -> None:
    parameter = sam_template["Parameters"]["AlarmEmail"]
    assert parameter["Default"] == ""
    subscriptions = [r for r in sam_template["Resources"].values() if r["Type"] == "AWS::SNS::Subscription"]
    assert subscriptions and all(s["Condition"] == "SubscribeAlarmEmail" for s in subscriptions)
    assert subscriptions[0]["Properties"]["TopicArn"] == {"Ref": "AlarmTopic"}
    assert sam_template["Conditions"]["SubscribeAlarmEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
    }


def test_collect_concurrency_is_capped_by_a_parameter_and_0_reserves_nothing(
        sam_template: dict[str, Any]) -> None:
    parameter = sam_template["Parameters"]["CollectReservedConcurrency"]
    assert parameter["Type"] == "Number" and parameter["MinValue"] == 0
    assert 1 <= parameter["Default"] <= 900  # leaves the 100 unreserved executions Lambda requires
    reserved = sam_template["Resources"]["CollectFunction"]["Properties"]["ReservedConcurrentExecutions"]
    assert reserved == {"Fn::If": ["ReserveCollectConcurrency", {"Ref": "CollectReservedConcurrency"},
                                   {"Ref": "AWS::NoValue"}]}
    assert sam_template["Conditions"]["ReserveCollectConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CollectReservedConcurrency"}, 0]}]
    }
    for name, function in _functions(sam_template).items():  # nothing else takes from the pool
        if name != "CollectFunction":
            assert "ReservedConcurrentExecutions" not in function["Properties"], name


# ---------------------------------------------------------------- the stack on moto


def test_table_is_built_from_the_template(stack: TemplateStack) -> None:
    ddb = boto3.client("dynamodb")
    name = stack.name_of("Table")
    table = ddb.describe_table(TableName=name)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {
        ("pk", "HASH"),
        ("sk", "RANGE"),
    }
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["LatestStreamArn"] == stack.resources["Table"]["stream_arn"]
    (due,) = [ix for ix in table["GlobalSecondaryIndexes"] if ix["IndexName"] == "DueIndex"]
    assert {(k["AttributeName"], k["KeyType"]) for k in due["KeySchema"]} == {
        ("due_pk", "HASH"),
        ("due_at", "RANGE"),
    }
    assert due["Projection"]["ProjectionType"] == "INCLUDE"
    assert {"lg", "ver", "ck"} <= set(due["Projection"]["NonKeyAttributes"])
    ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}
    backups = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_bus_and_queues_exist(stack: TemplateStack) -> None:
    bus = boto3.client("events").describe_event_bus(Name=stack.name_of("EventBus"))
    assert bus["Name"] == "leadscore-events"
    sqs = boto3.client("sqs")
    for logical_id in ("AggregateFailureQueue", "BusDeadLetterQueue", "ScoreFromBusFailureQueue",
                       "DecayDeadLetterQueue"):
        attributes = sqs.get_queue_attributes(QueueUrl=stack.url_of(logical_id), AttributeNames=["All"])[
            "Attributes"
        ]
        assert attributes["MessageRetentionPeriod"] == str(14 * 24 * 3600)
        assert attributes["QueueArn"] == stack.resources[logical_id]["arn"]


def test_function_specs_carry_the_real_names(stack: TemplateStack) -> None:
    assert {
        "CollectFunction",
        "ScoreFromBusFunction",
        "AggregateFunction",
        "DecayFunction",
        "ReadApiFunction",
    } <= set(stack.functions)
    for spec in stack.functions.values():
        env = spec.environment
        assert env["TABLE_NAME"] == stack.name_of("Table")
        assert env["EVENT_BUS_NAME"] == stack.name_of("EventBus")
        assert env["LEADSCORE_CONFIG_DIR"] == str(REPO_ROOT / "config")
        assert env["POWERTOOLS_SERVICE_NAME"] == "leadscore"
        assert env["EVENT_RETENTION_DAYS"] == "400"
        assert spec.handler == "app.lambda_handler"
        assert spec.code_uri.parent == REPO_ROOT / "functions"
        assert REPO_ROOT / "shared" in spec.layer_paths
    aggregate = stack.functions["AggregateFunction"]
    assert aggregate.timeout == 60
    stream = aggregate.events["TableStream"]["Properties"]
    assert stream["Stream"] == stack.resources["Table"]["stream_arn"]
    assert (
        stream["DestinationConfig"]["OnFailure"]["Destination"]
        == stack.resources["AggregateFailureQueue"]["arn"]
    )
    rule = stack.functions["ScoreFromBusFunction"].events["TrackingEvent"]["Properties"]
    assert rule["EventBusName"] == "leadscore-events"
    assert stack.rules_matching({"detail-type": "Tracking Event", "detail": {}}, "leadscore-events") == [
        ("ScoreFromBusFunction", "TrackingEvent")
    ]
    assert (
        stack.rules_matching({"detail-type": "Account Score Changed", "detail": {}}, "leadscore-events") == []
    )
    described = stack.describe()
    assert described["Table"]["name"] == stack.name_of("Table")
    assert described["AggregateFailureQueue"]["url"] == stack.url_of("AggregateFailureQueue")


def test_stack_parameters_can_be_overridden(aws: None) -> None:
    stack = TemplateStack.create(TEMPLATE, stack_name="other", parameters={"EventRetentionDays": 30})
    assert stack.name_of("EventBus") == "other-events"
    assert stack.functions["CollectFunction"].environment["EVENT_RETENTION_DAYS"] == "30"


@pytest.mark.parametrize(("parameters", "days"), [({}, 35), ({"PointInTimeRecoveryDays": 3}, 3)])
def test_the_point_in_time_recovery_window_is_the_deployers(aws: None, parameters: dict[str, Any],
                                                            days: int) -> None:
    # erased data lives on in the backups for this many days: a parameter, 35 unless set
    stack = TemplateStack.create(TEMPLATE, stack_name=f"pitr{days}", parameters=parameters)
    backups = stack.session.client("dynamodb").describe_continuous_backups(TableName=stack.name_of("Table"))
    description = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert description["PointInTimeRecoveryStatus"] == "ENABLED"
    assert description["RecoveryPeriodInDays"] == days
    bounds = load_template(TEMPLATE)["Parameters"]["PointInTimeRecoveryDays"]
    assert (bounds["MinValue"], bounds["MaxValue"]) == (1, 35)


# ---------------------------------------------------------------- the local runner (fixture template)


@pytest.fixture
def fx(aws: None) -> Iterator[TemplateStack]:
    yield TemplateStack.create(FIXTURE_TEMPLATE, stack_name="fx")


def _put(stack: TemplateStack, table: str, **attributes: str) -> None:
    stack.client("dynamodb").put_item(
        TableName=stack.name_of(table), Item={k: {"S": v} for k, v in attributes.items()}
    )


def test_stream_records_have_the_lambda_dynamodb_event_shape(fx: TemplateStack) -> None:
    # Given an item written and then changed
    _put(fx, "Records", pk="C#1", sk="P", name="first")
    _put(fx, "Records", pk="C#1", sk="P", name="second")
    # When the runner delivers the stream
    counts = fx.pump()
    # Then the handler got one batch in Lambda's shape, INSERT then MODIFY with both images
    assert counts["stream_records"] == 2
    (batch,) = fx.module("RecorderFunction").BATCHES
    insert, modify = batch["Records"]
    assert insert["eventName"] == "INSERT" and modify["eventName"] == "MODIFY"
    assert insert["eventSource"] == "aws:dynamodb"
    assert insert["eventVersion"] == "1.1"
    assert insert["awsRegion"] == "us-east-1"
    assert insert["eventSourceARN"] == fx.resources["Records"]["stream_arn"]
    ddb = modify["dynamodb"]
    assert set(ddb) == {
        "ApproximateCreationDateTime",
        "Keys",
        "NewImage",
        "OldImage",
        "SequenceNumber",
        "SizeBytes",
        "StreamViewType",
    }
    assert isinstance(ddb["ApproximateCreationDateTime"], int)
    assert ddb["Keys"] == {"pk": {"S": "C#1"}, "sk": {"S": "P"}}
    assert ddb["OldImage"]["name"] == {"S": "first"} and ddb["NewImage"]["name"] == {"S": "second"}
    assert ddb["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert int(ddb["SequenceNumber"]) > int(insert["dynamodb"]["SequenceNumber"])
    assert "OldImage" not in insert["dynamodb"]
    json.dumps(batch)  # plain JSON, as Lambda passes it
    # And nothing is delivered twice
    assert fx.pump()["stream_records"] == 0


def test_stream_batches_follow_the_batch_size(fx: TemplateStack) -> None:
    for i in range(5):
        _put(fx, "Records", pk=f"C#{i}", sk="P")
    fx.pump()
    assert [len(b["Records"]) for b in fx.module("RecorderFunction").BATCHES] == [2, 2, 1]


def test_partial_failure_is_redelivered_from_the_first_failed_sequence_number(fx: TemplateStack) -> None:
    # Given three records, the second reported failed the first time it is seen
    _put(fx, "Flaky", pk="a")
    _put(fx, "Flaky", pk="b", poison="yes")
    _put(fx, "Flaky", pk="c")
    # When delivered
    fx.pump()
    # Then the batch is retried from b on, as Lambda does, and nothing is given up
    assert fx.module("FailOnceFunction").CALLS == [["a", "b", "c"], ["b", "c"]]
    assert fx.dead_letters == []


def test_exhausted_retries_go_to_the_on_failure_queue(fx: TemplateStack) -> None:
    # Given a record that always fails (MaximumRetryAttempts: 2) followed by a good one
    _put(fx, "Records", pk="bad", sk="P", fail="always")
    _put(fx, "Records", pk="good", sk="P")
    fx.pump()
    batches = fx.module("RecorderFunction").BATCHES
    # Then it was tried 1 + 2 times, then its batch info went to the OnFailure queue
    assert [[r["dynamodb"]["Keys"]["pk"]["S"] for r in b["Records"]] for b in batches] == [
        ["bad", "good"]
    ] * 3
    messages = boto3.client("sqs").receive_message(
        QueueUrl=fx.url_of("StreamFailures"), MaxNumberOfMessages=10
    )
    (message,) = messages["Messages"]
    info = json.loads(message["Body"])
    assert info["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert info["requestContext"]["approximateInvokeCount"] == 3
    batch_info = info["DDBStreamBatchInfo"]
    assert batch_info["batchSize"] == 2
    assert batch_info["startSequenceNumber"] == batches[0]["Records"][0]["dynamodb"]["SequenceNumber"]
    assert batch_info["streamArn"] == fx.resources["Records"]["stream_arn"]
    # And later records still flow
    _put(fx, "Records", pk="later", sk="P")
    fx.pump()
    assert batches[-1]["Records"][0]["dynamodb"]["Keys"]["pk"]["S"] == "later"


def test_handler_exceptions_raise_by_default(fx: TemplateStack) -> None:
    _put(fx, "Flaky", pk="x", crash="yes")
    with pytest.raises(HandlerError) as raised:
        fx.pump()
    assert raised.value.logical_id == "FailOnceFunction"
    assert isinstance(raised.value.error, RuntimeError)


def test_function_errors_bisect_the_batch_when_not_raised(fx: TemplateStack) -> None:
    # Given x, y (crashes the handler), z in one batch (MaximumRetryAttempts: 1)
    _put(fx, "Flaky", pk="x")
    _put(fx, "Flaky", pk="y", crash="yes")
    _put(fx, "Flaky", pk="z")
    # When delivered with Lambda's error handling
    fx.pump(raise_errors=False)
    # Then the batch is split in two and the crashing half given up after its retry
    assert fx.module("FailOnceFunction").CALLS == [["x", "y", "z"], ["x"], ["y", "z"]]
    assert len(fx.errors) == 2
    (dead,) = fx.dead_letters
    assert dead["function"] == "FailOnceFunction"
    assert dead["message"]["DDBStreamBatchInfo"]["batchSize"] == 2
    assert dead["message"]["responseContext"]["functionError"] == "Unhandled"


def test_bus_events_reach_matching_rules_only(fx: TemplateStack) -> None:
    # Given two items: the recorder puts "Thing Happened" with items [Z-0, <sku>] for each
    _put(fx, "Records", pk="1", sk="P", sku="A-1")
    _put(fx, "Records", pk="2", sk="P", sku="B-1")
    # And an event of another type
    fx.put_event("Something Else", {"items": [{"sku": "A-9"}]})
    # When the stack is pumped
    counts = fx.pump()
    # Then the bus handler got the one event with an item whose sku starts with A-
    events = fx.module("BusRecorderFunction").EVENTS
    assert [e["detail"]["items"][1]["sku"] for e in events] == ["A-1"]
    (event,) = events
    assert set(event) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert event["account"] == fx.account_id
    assert event["source"] == "fixture.recorder"
    # And every event on the bus was seen
    assert counts["bus_events"] == 3
    assert sorted(e["detail-type"] for e in fx.bus_log) == [
        "Something Else",
        "Thing Happened",
        "Thing Happened",
    ]


def test_functions_see_the_template_environment_only_while_they_run(fx: TemplateStack) -> None:
    fx.put_event("Thing Happened", {"items": [{"sku": "A-2"}]})
    fx.pump()
    (seen,) = fx.module("BusRecorderFunction").SEEN_ENV
    assert seen["GREETING"] == "hello"
    assert seen["ORIGINS"] == "https://a.example,https://b.example"
    assert seen["config"] == "greeting: from the config layer\n"  # /opt -> the config layer's folder
    assert seen["function_name"] == "fx-BusRecorderFunction"
    assert 0 < seen["remaining"] <= 10_000
    assert "GREETING" not in os.environ
    assert fx.functions["BusRecorderFunction"].environment["EVENT_BUS_NAME"] == "fx-bus"


def test_plain_rules_deliver_to_their_fifo_queue(fx: TemplateStack) -> None:
    fx.put_event("Thing Routed", {"account": "acme.com"})
    messages = boto3.client("sqs").receive_message(
        QueueUrl=fx.url_of("Routed"), MaxNumberOfMessages=10, AttributeNames=["All"]
    )["Messages"]
    (message,) = messages
    assert json.loads(message["Body"])["detail"] == {"account": "acme.com"}
    assert message["Attributes"]["MessageGroupId"] == "things"
    assert fx.url_of("Routed").endswith(".fifo")


def test_queue_sources_keep_failed_messages(fx: TemplateStack) -> None:
    sqs = boto3.client("sqs")
    for body in ("ok", "fail"):
        sqs.send_message(QueueUrl=fx.url_of("Work"), MessageBody=body)
    counts = fx.pump()
    assert counts["queue_messages"] == 2
    assert sorted(fx.module("QueueWorkerFunction").BODIES) == ["fail", "ok"]
    attributes = sqs.get_queue_attributes(QueueUrl=fx.url_of("Work"), AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"  # back after its visibility timeout


def test_run_schedule_sends_a_scheduled_event_at_the_given_time(fx: TemplateStack) -> None:
    result = fx.run_schedule("TickFunction", now=datetime(2026, 11, 22, 10, 0, tzinfo=UTC))
    assert result["time"] == "2026-11-22T10:00:00Z"
    assert result["detail-type"] == "Scheduled Event"
    assert result["resources"][0].startswith("arn:aws:events:us-east-1:")


def test_invoke_restores_the_environment_after_an_error(fx: TemplateStack) -> None:
    with pytest.raises(KeyError):
        fx.invoke("TickFunction", {})
    assert "GREETING" not in os.environ
    assert str(fx.functions["TickFunction"].code_uri) not in sys.path


# ---------------------------------------------------------------- API Gateway events


def test_http_event_is_payload_format_2() -> None:
    event = http_event(
        "post",
        "/v1/track?x=1",
        body={"type": "track"},
        headers={"X-Custom": ["a", "b"], "Cookie": "s=1; t=2"},
        query={"x": "2", "y": "3"},
        basic_user="wk_123",
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /v1/track"
    assert event["rawPath"] == "/v1/track"
    assert event["rawQueryString"] == "x=1&x=2&y=3"
    assert event["queryStringParameters"] == {"x": "1,2", "y": "3"}
    assert event["headers"]["x-custom"] == "a,b"
    assert event["headers"]["content-type"] == "application/json"
    assert event["headers"]["authorization"] == "Basic d2tfMTIzOg=="
    assert event["cookies"] == ["s=1", "t=2"] and "cookie" not in event["headers"]
    assert json.loads(event["body"]) == {"type": "track"} and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"]["method"] == "POST" and context["http"]["sourceIp"] == "203.0.113.7"
    assert "Chrome" in context["http"]["userAgent"]
    assert context["stage"] == "$default" and context["routeKey"] == "POST /v1/track"
    assert isinstance(context["timeEpoch"], int)
    assert "pathParameters" not in event


def test_form_posts_are_base64_encoded_and_routes_fill_path_parameters() -> None:
    event = form_event(
        "/v1/forms/contact-us",
        {"email": "jo@acme.com", "title": "VP Sales"},
        route_key="POST /v1/forms/{formId}",
    )
    assert event["isBase64Encoded"] is True
    assert decode_body(event) == b"email=jo%40acme.com&title=VP+Sales"
    assert event["pathParameters"] == {"formId": "contact-us"}
    assert event["routeKey"] == "POST /v1/forms/{formId}"
    pixel = http_event("GET", "/v1/pixel.gif", query={"k": "wk", "e": "Email Opened"})
    assert "body" not in pixel and pixel["queryStringParameters"] == {"k": "wk", "e": "Email Opened"}
    signed = http_event(
        "GET", "/v1/accounts/acme.com", route_key="GET /v1/accounts/{accountId}", authorizer=iam_authorizer()
    )
    assert signed["requestContext"]["authorizer"]["iam"]["accountId"] == "123456789012"
    assert route_params("GET /v1/projects/{writeKey}/settings", "/v1/projects/k1/settings") == {
        "writeKey": "k1"
    }


def test_lambda_context() -> None:
    context = lambda_context("collect", timeout_s=3)
    assert context.function_name == "collect"
    assert context.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:collect"
    assert 0 < context.get_remaining_time_in_millis() <= 3000
    assert context.aws_request_id != lambda_context().aws_request_id


# ---------------------------------------------------------------- routing (issue 16)


def test_the_routed_queue_is_fifo_with_explicit_deduplication_and_a_fifo_dead_letter_queue(
        sam_template: dict[str, Any]) -> None:
    resources = sam_template["Resources"]
    routed = resources["RoutedQueue"]["Properties"]
    assert routed["FifoQueue"] is True and routed["ContentBasedDeduplication"] is False
    assert routed["QueueName"]["Fn::Sub"].endswith(".fifo")
    assert routed["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["RoutedDeadLetterQueue", "Arn"]}
    dead = resources["RoutedDeadLetterQueue"]["Properties"]
    assert dead["FifoQueue"] is True and dead["QueueName"]["Fn::Sub"].endswith(".fifo")
    # the routing transaction is the outbox: the stream's aggregate function sends the message,
    # and only it may
    env = resources["AggregateFunction"]["Properties"]["Environment"]["Variables"]
    assert env["ROUTED_QUEUE_URL"] == {"Ref": "RoutedQueue"}
    for function in ("RouteFunction", "RoutingPassFunction"):
        assert "ROUTED_QUEUE_URL" not in resources[function]["Properties"].get("Environment", {}).get("Variables", {})
    rule = resources["RouteFunction"]["Properties"]["Events"]["SdrReady"]["Properties"]
    assert rule["Pattern"] == {"source": ["leadscore"], "detail-type": ["Account SDR Ready"]}
    assert rule["EventBusName"] == {"Ref": "EventBus"}
    schedule = resources["RoutingPassFunction"]["Properties"]["Events"]["RoutingSchedule"]["Properties"]
    assert schedule["Schedule"] == {"Ref": "RoutingPassSchedule"}


def test_the_due_index_carries_what_the_routing_pass_needs(sam_template: dict[str, Any]) -> None:
    (index,) = [ix for ix in sam_template["Resources"]["Table"]["Properties"]["GlobalSecondaryIndexes"]
                if ix["IndexName"] == "DueIndex"]
    assert {"id", "top", "tr", "state", "cycle", "sdr", "rt", "ver"} <= set(index["Projection"]["NonKeyAttributes"])


def test_the_routed_queues_exist_in_the_stack(stack: TemplateStack) -> None:
    sqs = boto3.client("sqs")
    assert stack.url_of("RoutedQueue").endswith("leadscore-routed.fifo")
    attributes = sqs.get_queue_attributes(QueueUrl=stack.url_of("RoutedQueue"), AttributeNames=["All"])["Attributes"]
    assert attributes["FifoQueue"] == "true" and attributes["ContentBasedDeduplication"] == "false"
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"] == stack.resources[
        "RoutedDeadLetterQueue"]["arn"]
    assert {"RouteFunction", "RoutingPassFunction"} <= set(stack.functions)
    assert stack.rules_matching({"source": "leadscore", "detail-type": "Account SDR Ready", "detail": {}}) == [
        ("RouteFunction", "SdrReady")]
