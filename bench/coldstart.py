"""Cold start: a function's whole first invocation against `import boto3` + the same clients.

Each measurement runs in a fresh interpreter (as a new Lambda execution environment would),
several times, the function's and the baseline's interleaved; the median is kept. The
function's interpreter has only its code folder and the layer (`shared/`) on `sys.path`,
and the template's environment variables. It times, one after the other:

- **init**: `import app` and creating the AWS clients the handler uses (`runtime.store()`,
  `runtime.publisher()`, `runtime.routed_queue()`), what Lambda's INIT phase runs;
- **config**: loading and validating the rules files the handler reads (`runtime.config()`,
  and `runtime.routing()` where the handler calls it), which the first invocation pays;
- **handle**: `app.lambda_handler` on one sample event (`SAMPLES`), its AWS calls answered
  in-process by `_FAKE_AWS` (no network; the fake's own time is subtracted). The requests
  are still built, signed and their answers parsed by botocore, as in AWS.

The first invocation (init + config + handle) is held to PRODUCT's 1.5x of the floor:
`import boto3` and creating the same clients (`_BASELINE_SCRIPT`).
"""

from __future__ import annotations

import argparse
import base64
import compileall
import functools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stack import AWS_ENV, CONFIG_DIR, REPO_ROOT

FUNCTIONS_DIR = REPO_ROOT / "functions"
EVENTS_DIR = REPO_ROOT / "events"
LAYER_DIR = REPO_ROOT / "shared"
BUDGET = 1.5
#: The clock of the first invocation (the sample events are from 2026-11-02 09:00 UTC).
NOW = "2026-11-02T09:10:00+00:00"

#: runtime getter -> the AWS service of its client
CLIENTS = {"store": "dynamodb", "publisher": "events", "routed_queue": "sqs"}
#: runtime getters that load rules files
CONFIG_GETTERS = ("config", "routing")
#: heavy packages a first invocation may or may not need (reported: which ones it loaded)
WATCHED = ("pydantic", "yaml", "pycountry", "countryinfo", "tldextract", "crawlerdetect", "requests")

# The account the routing and feedback samples act on: SDR-ready, in cycle 1, in NA.
ACCOUNT_ID = "acme.com"

# Answers the function's AWS calls in the measured interpreter: DynamoDB reads from `WORLD`
# (items by "pk|sk", in DynamoDB's JSON), every write succeeds, PutEvents and SendMessage
# are accepted. It is defined after the init clock stops; its own time is subtracted.
_FAKE_AWS = '''
import hashlib
from botocore.awsrequest import AWSResponse

WORLD = json.loads({world!r})
calls = []
fake_s = 0.0


class _Raw:
    def stream(self, **_):
        yield b""


def _item(key):
    return WORLD.get(key["pk"]["S"] + "|" + key["sk"]["S"])


def _answer(op, body):
    if op == "GetItem":
        item = _item(body["Key"])
        return {{"Item": item}} if item else {{}}
    if op == "BatchGetItem":
        found = {{table: [i for i in map(_item, ask["Keys"]) if i] for table, ask in body["RequestItems"].items()}}
        return {{"Responses": found, "UnprocessedKeys": {{}}}}
    if op == "TransactGetItems":
        items = [_item(t["Get"]["Key"]) for t in body["TransactItems"]]
        return {{"Responses": [{{"Item": i}} if i else {{}} for i in items]}}
    if op in ("Query", "Scan"):
        return {{"Items": [], "Count": 0, "ScannedCount": 0}}
    if op == "BatchWriteItem":
        return {{"UnprocessedItems": {{}}}}
    if op == "PutEvents":
        return {{"FailedEntryCount": 0, "Entries": [{{"EventId": str(i)}} for i, _ in enumerate(body["Entries"])]}}
    if op == "SendMessage":
        return {{"MessageId": "m-1", "MD5OfMessageBody": hashlib.md5(body["MessageBody"].encode()).hexdigest()}}
    if op == "GetSecretValue":  # the log key (adapters/log_key.py), read on the first contact digest
        return {{"ARN": body["SecretId"], "Name": "leadscore-log-key", "SecretString": "k" * 48}}
    return {{}}


def _send(request, **_):
    global fake_s
    started = time.perf_counter()
    target = request.headers.get("X-Amz-Target") or b""
    op = (target.decode() if isinstance(target, bytes) else target).rsplit(".", 1)[-1]
    if not op:  # S3's REST calls (the evidence function's blobs): a put, answered with no body
        op = {{"PUT": "PutObject", "GET": "GetObject"}}.get(request.method, request.method)
    calls.append(op)
    response = AWSResponse(request.url, 200, {{"x-amzn-requestid": "cold-start"}}, _Raw())
    if op == "PutObject":
        response._content = b""
        fake_s += time.perf_counter() - started
        return response
    raw = request.body.read() if hasattr(request.body, "read") else request.body
    answer = _answer(op, json.loads(raw or b"{{}}"))
    response._content = json.dumps(answer).encode()
    fake_s += time.perf_counter() - started
    return response


for client in clients:
    client.meta.events.register("before-send", _send)
# clients the first invocation makes itself (the log key's secretsmanager client) copy these
import boto3
boto3.DEFAULT_SESSION.events.register("before-send", _send)


class _Context:
    function_name = "leadscore-cold-start"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:leadscore-cold-start"
    memory_limit_in_mb = 256
    aws_request_id = "cold-start"
    log_group_name = "/aws/lambda/leadscore-cold-start"
    log_stream_name = "cold-start"

    def get_remaining_time_in_millis(self):
        return 300_000
'''

# What the Lambda Python runtime does not have, though the dev virtualenv does: botocore
# imports awscrt (CRT signing) and pyOpenSSL (urllib3.contrib) when they are there, which
# would add some 70 ms to both sides here and flatter every ratio. Hidden on both sides.
_LAMBDA_ABSENT = ("awscrt", "OpenSSL")

_FUNCTION_SCRIPT = """
import sys, time, json
sys.modules.update(dict.fromkeys({absent!r}))
sys.path[:0] = [{code!r}, {layer!r}]
started = time.perf_counter()
import app
from leadscore.adapters import runtime
clients = [getattr(runtime, name)().client for name in {clients!r}]
ready = time.perf_counter()
{fake}
resumed = time.perf_counter()
for name in {config_getters!r}:
    getattr(runtime, name)()
configured = time.perf_counter()
result = app.lambda_handler(json.loads({event!r}), _Context())
done = time.perf_counter()
print(json.dumps({{"init": ready - started, "config": configured - resumed, "handle": done - configured - fake_s,
                  "calls": calls, "result": result, "loaded": [m for m in {watched!r} if m in sys.modules]}},
                 default=str))
"""

_BASELINE_SCRIPT = """
import sys, time, json
sys.modules.update(dict.fromkeys({absent!r}))
started = time.perf_counter()
import boto3
for service in {services!r}:
    boto3.client(service)
print(json.dumps({{"init": time.perf_counter() - started}}))
"""


@dataclass
class ColdStart:
    function: str
    clients: list[str]
    function_s: float  # init: import + clients (median)
    baseline_s: float  # import boto3 + the same clients (median)
    config_s: float  # rules files loaded and validated (median)
    handle_s: float = 0.0  # the handler on one event, config already loaded (median)
    first_s: float = 0.0  # init + config + handle, summed per run (median)
    calls: list[str] = field(default_factory=list)  # the AWS calls of the first invocation
    loaded: list[str] = field(default_factory=list)  # the WATCHED packages it imported
    top_imports: list[tuple[str, float]] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """Import and client set-up over the floor."""
        return self.function_s / self.baseline_s

    @property
    def first_ratio(self) -> float:
        """The whole first invocation (config included) over the floor: PRODUCT's budget."""
        return self.first_s / self.baseline_s


def _called(code_dir: Path, names: tuple[str, ...] | dict[str, str]) -> list[str]:
    source = (code_dir / "app.py").read_text()
    return [name for name in names if f"runtime.{name}()" in source]


def clients_of(code_dir: Path) -> list[str]:
    """The runtime clients a handler uses (`runtime.store()`, `.publisher()`, `.routed_queue()`)."""
    return _called(code_dir, CLIENTS)


def floor_services(code_dir: Path) -> list[str]:
    """The clients of the floor: those of `clients_of`, and Secrets Manager's for a function the
    template hands the log key (`LOG_KEY_SECRET`), which it creates on its first digest: the
    same clients, as PRODUCT's budget says."""
    services = [CLIENTS[c] for c in clients_of(code_dir)]
    # and those the handler makes itself (the evidence function's S3 client)
    services += re.findall(r'boto3\.client\("([a-z0-9-]+)"\)', (code_dir / "app.py").read_text())
    return services + (["secretsmanager"] if _uses_log_key(code_dir) else [])


@functools.cache
def _log_key_code_dirs() -> frozenset[str]:
    from local.stack import load_template

    resources = load_template(REPO_ROOT / "template.yaml")["Resources"]
    return frozenset(str(r["Properties"].get("CodeUri", "")).strip("/") for r in resources.values()
                     if r.get("Type") == "AWS::Serverless::Function"
                     and "LOG_KEY_SECRET" in ((r["Properties"].get("Environment") or {}).get("Variables") or {}))


def _uses_log_key(code_dir: Path) -> bool:
    return f"functions/{code_dir.name}" in _log_key_code_dirs()


def config_of(code_dir: Path) -> list[str]:
    """The rules the handler loads (`runtime.config()`, `runtime.routing()`)."""
    return _called(code_dir, CONFIG_GETTERS)


# --------------------------------------------------------------------------- samples


def _sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    return event


def _account_world() -> dict[str, Any]:
    """The table as the routing and feedback samples find it: one SDR-ready account."""
    sys.path.insert(0, str(LAYER_DIR))
    try:
        from leadscore.adapters.items import account_item, table_key
        from leadscore.adapters.storage import marshal
        from leadscore.domain.records import Account
    finally:
        sys.path.remove(str(LAYER_DIR))
    account = Account(id=ACCOUNT_ID, version=3, name="Acme", domain=ACCOUNT_ID, state="sdr_ready", cycle=1,
                      threshold=100, score=120, fit=40, engagement=80, state_at=NOW, first_seen=NOW,
                      traits={"name": "Acme", "industry": "Software", "employees": 200,
                              "address": {"country": "US", "state": "NY"}})
    item = account_item(account)
    pk, sk = table_key(item)
    # as DynamoDB's JSON wire format holds it: a Binary (its compressed entries and traits) in base64
    wire = {name: {"B": base64.b64encode(value["B"]).decode("ascii")} if "B" in value else value
            for name, value in marshal(item).items()}
    return {f"{pk}|{sk}": wire}


def _erased_world() -> dict[str, Any]:
    """The suppression record of a contact erased before (under the log key _answer gives)."""
    sys.path.insert(0, str(LAYER_DIR))
    try:
        from leadscore.adapters.items import suppression_item, table_key
        from leadscore.adapters.keyed import keyed_digest
        from leadscore.adapters.storage import marshal
    finally:
        sys.path.remove(str(LAYER_DIR))
    item = suppression_item(keyed_digest("u:c-gone", root=b"k" * 48), NOW)
    pk, sk = table_key(item)
    return {f"{pk}|{sk}": marshal(item)}


def _erase() -> dict[str, Any]:
    from local.apigw import http_event, iam_authorizer

    return http_event("DELETE", "/v1/contacts/c-gone", route_key="DELETE /v1/contacts/{contactId}",
                      path_parameters={"contactId": "c-gone"}, authorizer=iam_authorizer())


def _sdr_ready() -> dict[str, Any]:
    return {"version": "0", "id": "0d7d3c6e-2f8c-4b8a-9a57-3f0c1c0e6b11", "detail-type": "Account SDR Ready",
            "source": "leadscore", "account": "123456789012", "time": "2026-11-02T09:05:00Z",
            "region": "us-east-1", "resources": [], "detail": {"accountId": ACCOUNT_ID, "cycle": 1}}


def _feedback() -> dict[str, Any]:
    from local.apigw import http_event, iam_authorizer

    return http_event("POST", f"/v1/accounts/{ACCOUNT_ID}/feedback", body={"outcome": "disqualified", "sdr": "amara"},
                      route_key="POST /v1/accounts/{accountId}/feedback", authorizer=iam_authorizer())


def _assign() -> dict[str, Any]:
    from local.apigw import http_event, iam_authorizer

    return http_event("POST", f"/v1/accounts/{ACCOUNT_ID}/assign", body={"sdr": "lucas", "by": "amara"},
                      route_key="POST /v1/accounts/{accountId}/assign", authorizer=iam_authorizer())


def _pause() -> dict[str, Any]:
    from local.apigw import http_event, iam_authorizer

    return http_event("PUT", "/v1/sdrs/maya/availability", body={"available": False, "reason": "cold start"},
                      route_key="PUT /v1/sdrs/{sdrId}/availability", path_parameters={"sdrId": "maya"},
                      authorizer=iam_authorizer())


def _evidence_scan() -> dict[str, Any]:
    job = {"kind": "preview", "run": "cold-start", "segments": 1, "shards": 1, "asOf": NOW,
           "candidate": {"scoring": (CONFIG_DIR / "scoring.yaml").read_text(), "routing": None}}
    return {"step": "scan", "job": job, "segment": 0}


#: function folder -> (its sample event, the table it finds): what its first invocation handles
SAMPLES: dict[str, Callable[[], tuple[dict[str, Any], dict[str, Any]]]] = {
    "collect": lambda: (_sample("collect-track"), {}),
    "aggregate": lambda: (_sample("aggregate-stream"), {}),
    "score_from_bus": lambda: (_sample("bus-tracking-event"), {}),
    "decay": lambda: (_sample("decay-schedule"), {}),
    "routing_pass": lambda: (_sample("decay-schedule"), {}),
    "read_api": lambda: (_sample("read-account"), _account_world()),
    "route": lambda: (_sdr_ready(), _account_world()),
    "feedback": lambda: (_feedback(), _account_world()),
    "assign": lambda: (_assign(), _account_world()),  # a lead routes the SDR-ready account to lucas
    # a contact erased before (202, nothing left): start-up and the first reads (the contact, the
    # log key, the suppression records). An erasure's own work grows with the contact (some 320
    # requests, 310 of them the rejected records' Queries), not with start-up: DESIGN "Erasure".
    "erase": lambda: (_erase(), _erased_world()),
    "sdrs": lambda: (_pause(), {}),  # a lead pauses maya: her record, the pool records' copies, the bus
    # a preview's first step on AWS: a Scan segment of the (empty) table into the shards' objects
    "evidence": lambda: (_evidence_scan(), {}),
}


# ----------------------------------------------------------------------- measuring


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "LEADSCORE_"))}
    env.update(AWS_ENV)
    env.update({"TABLE_NAME": "leadscore-Table", "EVENT_BUS_NAME": "leadscore-events",
                "ROUTED_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/leadscore-routed.fifo",
                "EVENT_RETENTION_DAYS": "400", "LEADSCORE_CONFIG_DIR": str(CONFIG_DIR), "LEADSCORE_NOW": NOW,
                "EVIDENCE_BUCKET": "leadscore-evidencebucket",
                "POWERTOOLS_SERVICE_NAME": "leadscore", "POWERTOOLS_METRICS_NAMESPACE": "LeadScore",
                "POWERTOOLS_LOG_LEVEL": "INFO", "POWERTOOLS_TRACE_DISABLED": "true",
                "LOG_KEY_SECRET": "arn:aws:secretsmanager:us-east-1:123456789012:secret:leadscore-log-key-AbCdEf",
                "PYTHONDONTWRITEBYTECODE": "1"})
    env.pop("PYTHONPATH", None)
    return env


def _run(script: str, cwd: Path, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *extra, "-c", script], cwd=cwd, env=_env(), capture_output=True,
                          text=True, check=False, timeout=120)


def _measure(script: str, cwd: Path) -> dict[str, Any]:
    done = _run(script, cwd)
    if done.returncode != 0:
        raise RuntimeError(f"cold start measurement failed in {cwd}:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def function_script(code_dir: Path, *, run_from: Path | None = None, layer: Path = LAYER_DIR) -> str:
    """The measured interpreter's program: init, config, then the handler on the function's sample
    (the function's code from `run_from`, a copy of `code_dir`, when given)."""
    event, world = SAMPLES[code_dir.name]()
    return _FUNCTION_SCRIPT.format(absent=_LAMBDA_ABSENT, code=str(run_from or code_dir), layer=str(layer),
                                   clients=clients_of(code_dir), watched=WATCHED,
                                   config_getters=config_of(code_dir), event=json.dumps(event),
                                   fake=_FAKE_AWS.format(world=json.dumps(world)))


def _handled(function: str, result: Any) -> str | None:
    """Why the sample's handling is not the real work (an error answer, nothing routed), else None."""
    if not isinstance(result, dict):
        return f"returned {result!r}"
    if "statusCode" in result and not 200 <= int(result["statusCode"]) < 400:
        return f"answered {result['statusCode']}: {str(result.get('body'))[:300]}"
    if function == "aggregate" and (result.get("batchItemFailures") or []):
        return f"failed records: {result}"
    if function == "route" and result.get("status") != "routed":
        return f"not routed: {result}"
    if function == "score_from_bus" and result.get("accepted") != 1:
        return f"not accepted: {result}"
    return None


def _import_times(script: str, cwd: Path) -> list[tuple[str, float]]:
    """(module, cumulative ms) of every import `python -X importtime` reports for `script`."""
    done = _run(script, cwd, ("-X", "importtime"))
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if parts[1].isdigit():
            rows.append((parts[2], int(parts[1]) / 1000))
    return rows


def top_imports(code_dir: Path, count: int = 12) -> list[tuple[str, float]]:
    """The heaviest imports (packages, and the layer's modules) of the function's first
    invocation that the floor (boto3 and the same clients) does not make
    (`python -X importtime`), cumulative ms."""
    services = floor_services(code_dir)
    floor = {name for name, _ in _import_times(_BASELINE_SCRIPT.format(absent=_LAMBDA_ABSENT, services=services),
                                                code_dir)}
    rows = _import_times(function_script(code_dir), code_dir)
    top_level = [(name, ms) for name, ms in rows
                 if ("." not in name or name.startswith("leadscore.")) and name not in floor]
    return sorted(top_level, key=lambda row: -row[1])[:count]


def measure_function(code_dir: Path, runs: int = 5, *, script: str | None = None, label: str | None = None
                     ) -> ColdStart:
    clients = clients_of(code_dir)
    script = script or function_script(code_dir)
    baseline = _BASELINE_SCRIPT.format(absent=_LAMBDA_ABSENT, services=floor_services(code_dir))
    # interleave so that a busy machine disturbs both sides alike
    function_runs, baseline_runs = [], []
    for _ in range(runs):
        function_runs.append(_measure(script, code_dir))
        baseline_runs.append(_measure(baseline, code_dir))
    first = function_runs[0]
    problem = _handled(code_dir.name, first["result"])
    if problem:
        raise RuntimeError(f"cold start of {code_dir.name}: the sample event was not handled: {problem}")
    return ColdStart(
        function=label or code_dir.name, clients=clients + (["log_key"] if _uses_log_key(code_dir) else []),
        function_s=statistics.median(r["init"] for r in function_runs),
        baseline_s=statistics.median(r["init"] for r in baseline_runs),
        config_s=statistics.median(r["config"] for r in function_runs),
        handle_s=statistics.median(r["handle"] for r in function_runs),
        first_s=statistics.median(r["init"] + r["config"] + r["handle"] for r in function_runs),
        calls=first["calls"], loaded=first["loaded"])


# ----------------------------------------------- Powertools' HTTP resolver (information)

_RESOLVER_SETUP = """
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
_resolver = APIGatewayHttpResolver()


def _via_app(**_):
    answer = app.lambda_handler(_resolver.current_event.raw_event, _resolver.lambda_context)
    return Response(status_code=answer["statusCode"], headers=answer.get("headers"), body=answer.get("body"))


for _method, _path in {routes!r}:
    _resolver.route(_path, _method)(_via_app)
"""


def http_routes(code_dir: Path) -> list[tuple[str, str]]:
    """(method, path) of the function's HTTP API routes in template.yaml, in the resolver's
    path syntax (`{id}` -> `<id>`, a greedy `{proxy+}` -> a pattern)."""
    from local.stack import load_template

    template = load_template(REPO_ROOT / "template.yaml")
    routes = []
    for resource in template["Resources"].values():
        props = resource.get("Properties") or {}
        if resource.get("Type") != "AWS::Serverless::Function" or \
                Path(str(props.get("CodeUri", ""))).name != code_dir.name:
            continue
        found = [(source["Properties"]["Method"], source["Properties"]["Path"])
                 for source in (props.get("Events") or {}).values() if source.get("Type") == "HttpApi"]
        if code_dir.name == "collect":  # its routes are paths of the API's definition (template.yaml, IngestEndpoint)
            paths = template["Resources"]["Api"]["Properties"]["DefinitionBody"]["paths"]
            found += [(method.upper(), path) for path, item in paths.items() for method in item["Fn::If"][1]]
        for method, path in found:
            routes.append((method, path.replace("{proxy+}", ".+").replace("{", "<").replace("}", ">")))
    return routes


def resolver_script(code_dir: Path) -> str:
    """The function's first invocation with Powertools' `APIGatewayHttpResolver` in front of its
    handler: imported and given the function's routes at init, the sample event resolved to
    the handler (whose own routing stays: a dictionary lookup)."""
    script = function_script(code_dir).replace("app.lambda_handler(", "_resolver.resolve(")
    return script.replace("import app\n", "import app\n" + _RESOLVER_SETUP.format(routes=http_routes(code_dir)), 1)


def measure_with_resolver(code_dir: Path, runs: int = 5) -> tuple[ColdStart, ColdStart]:
    """The function's first invocation as it is and with the resolver in front (`resolver_script`),
    each run's two and the floor's measured one after the other, so that a busy machine
    disturbs all three alike."""
    clients = clients_of(code_dir)
    baseline = _BASELINE_SCRIPT.format(absent=_LAMBDA_ABSENT, services=floor_services(code_dir))
    scripts = {code_dir.name: function_script(code_dir),
               f"{code_dir.name} (+ HTTP resolver)": resolver_script(code_dir)}
    measured: dict[str, list[dict[str, Any]]] = {label: [] for label in scripts}
    floors = []
    for _ in range(runs):
        for label, script in scripts.items():
            measured[label].append(_measure(script, code_dir))
        floors.append(_measure(baseline, code_dir)["init"])
    results = []
    for label, function_runs in measured.items():
        problem = _handled(code_dir.name, function_runs[0]["result"])
        if problem:
            raise RuntimeError(f"cold start of {label}: the sample event was not handled: {problem}")
        results.append(ColdStart(
            function=label, clients=clients, function_s=statistics.median(r["init"] for r in function_runs),
            baseline_s=statistics.median(floors), config_s=statistics.median(r["config"] for r in function_runs),
            handle_s=statistics.median(r["handle"] for r in function_runs),
            first_s=statistics.median(r["init"] + r["config"] + r["handle"] for r in function_runs),
            calls=function_runs[0]["calls"], loaded=function_runs[0]["loaded"]))
    return results[0], results[1]


_RESOLVER_CPU_SCRIPT = """
import sys, time, json
sys.modules.update(dict.fromkeys({absent!r}))
sys.path[:0] = [{code!r}, {layer!r}]
started = time.process_time()
import boto3
for service in {services!r}:
    boto3.client(service)
floor = time.process_time() - started
import app
started = time.process_time()
{setup}
print(json.dumps({{"floor": floor, "resolver": time.process_time() - started}}))
"""


def resolver_import_cpu(code_dir: Path, runs: int = 5) -> tuple[float, float]:
    """(CPU seconds of the floor, CPU seconds of importing the resolver and giving it the
    function's routes once the function's own imports are done), medians. CPU time, not the
    wall clock, so that a busy machine moves it little."""
    script = _RESOLVER_CPU_SCRIPT.format(
        absent=_LAMBDA_ABSENT, code=str(code_dir), layer=str(LAYER_DIR),
        services=floor_services(code_dir),
        setup=_RESOLVER_SETUP.format(routes=http_routes(code_dir)))
    measured = [_measure(script, code_dir) for _ in range(runs)]
    return statistics.median(r["floor"] for r in measured), statistics.median(r["resolver"] for r in measured)


def resolver_dispatch_us(rounds: int = 20_000) -> tuple[float, float]:
    """CPU per request (microseconds, best of three) of routing collect's sample event: the
    resolver's `resolve` with collect's routes to a handler answering a ready `Response`, and
    the hand-written way (`Request.from_event`, then `ROUTES` by route key)."""
    import time

    sys.path.insert(0, str(LAYER_DIR))
    try:
        from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
        from leadscore.adapters.http import Request
        from leadscore.adapters.ingest import ROUTES
    finally:
        sys.path.remove(str(LAYER_DIR))
    from local.apigw import lambda_context

    event = _sample("collect-track")
    resolver = APIGatewayHttpResolver()
    ready = Response(status_code=200, headers={"content-type": "application/json"}, body='{"success":true}')
    for method, path in http_routes(FUNCTIONS_DIR / "collect"):
        resolver.route(path, method)(lambda **_: ready)
    context: Any = lambda_context("CollectFunction")  # the fields Powertools reads

    def best(step: Callable[[], Any]) -> float:
        times = []
        for _ in range(3):
            started = time.process_time()
            for _ in range(rounds):
                step()
            times.append((time.process_time() - started) / rounds * 1e6)
        return min(times)

    assert resolver.resolve(event, context)["statusCode"] == 200
    return best(lambda: resolver.resolve(event, context)), best(lambda: ROUTES.get(Request.from_event(event).route))


def function_dirs() -> list[Path]:
    return sorted(p for p in FUNCTIONS_DIR.iterdir() if (p / "app.py").exists() and p.name in SAMPLES)


def run_coldstart(runs: int = 5, only: list[str] | None = None) -> list[ColdStart]:
    """Every function (or `only` these), with the layer's and the functions' bytecode written first,
    so that every run measures the same thing (see `as_built` for a layer without it)."""
    for tree in (LAYER_DIR / "leadscore", FUNCTIONS_DIR):
        compileall.compile_dir(tree, quiet=1)
    return [measure_function(code_dir, runs) for code_dir in function_dirs() if not only or code_dir.name in only]


def build_layer(dest: Path) -> Path:
    """The shared layer as `sam build` makes it, in `dest`: `shared/leadscore` and the
    distributions of `shared/requirements.txt`, sources only. sam build copies sources without
    `__pycache__` and extracts wheels without compiling them, and /opt is read-only in Lambda,
    so every cold start compiles each module of the layer it imports."""
    from importlib import metadata

    shutil.copytree(LAYER_DIR / "leadscore", dest / "leadscore", ignore=_NO_BYTECODE)
    for line in (LAYER_DIR / "requirements.txt").read_text().splitlines():
        name = line.split("#", 1)[0].split("==")[0].strip()
        if not name:
            continue
        dist = metadata.distribution(name)
        for file in dist.files or ():
            if file.parts[0] == ".." or "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            source = Path(str(dist.locate_file(file)))
            if source.is_file():
                (dest / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest / file)
    return dest


_NO_BYTECODE = shutil.ignore_patterns("__pycache__", "*.pyc")


def as_built(function: str = "collect", runs: int = 5) -> ColdStart:
    """A function's first invocation with its code and the layer as `sam build` ships them today
    (no bytecode: `build_layer`), against the same floor (the Lambda runtime's boto3 has its
    bytecode). For information: shipping the layer's bytecode is a build matter."""
    code_dir = FUNCTIONS_DIR / function
    with tempfile.TemporaryDirectory(prefix="leadscore-layer-") as tmp:
        layer = build_layer(Path(tmp) / "python")
        code = Path(shutil.copytree(code_dir, Path(tmp) / "function" / function, ignore=_NO_BYTECODE))
        script = function_script(code_dir, run_from=code, layer=layer)
        return measure_function(code_dir, runs, script=script, label=f"{function} (layer as sam build ships it)")


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.coldstart [--runs N] [FUNCTION ...]`: the cold-start table alone."""
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("functions", nargs="*", help="function folders (default: all)")
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per side (5)")
    parser.add_argument("--imports", action="store_true", help="list the heaviest imports of each function")
    parser.add_argument("--as-built", action="store_true",
                        help="also each function with the layer as sam build ships it (no bytecode)")
    parser.add_argument("--resolver", action="store_true",
                        help="the HTTP functions only, each also with Powertools' APIGatewayHttpResolver in front "
                             "of its handler, and the CPU per request of routing collect's sample both ways")
    parser.add_argument("--sample", action="append", default=[], metavar="FUNCTION=EVENT",
                        help="another sample for a function, from events/EVENT.json (collect=collect-identify)")
    args = parser.parse_args(argv)
    for choice in args.sample:
        function, _, name = choice.partition("=")
        SAMPLES[function] = functools.partial(lambda n: (_sample(n), {}), name)
    if args.resolver:  # each HTTP function as it is and with the resolver, interleaved
        for tree in (LAYER_DIR / "leadscore", FUNCTIONS_DIR):
            compileall.compile_dir(tree, quiet=1)
        results = [c for d in function_dirs() if http_routes(d) and (not args.functions or d.name in args.functions)
                   for c in measure_with_resolver(d, args.runs)]
    else:
        results = run_coldstart(args.runs, args.functions)
    if args.as_built:
        results += [as_built(c.function, args.runs) for c in list(results)]
    width = max(len(c.function) for c in results) + 2
    print(f"{'function':<{width}}{'init x':>8}{'first x':>9}   ms: init / config / handle / floor   AWS calls")
    failed = 0
    for c in results:
        failed += c.first_ratio > BUDGET
        print(f"{c.function:<{width}}{c.ratio:>8.2f}{c.first_ratio:>9.2f}   "
              f"{c.function_s * 1000:.0f} / {c.config_s * 1000:.0f} / {c.handle_s * 1000:.0f} / "
              f"{c.baseline_s * 1000:.0f}   {' '.join(c.calls)}   loaded: {', '.join(c.loaded) or '-'}")
        if args.imports:
            for name, ms in top_imports(FUNCTIONS_DIR / c.function):
                print(f"    import {name}: {ms:.1f} ms")
    if args.resolver:
        for code_dir in function_dirs():
            if http_routes(code_dir) and (not args.functions or code_dir.name in args.functions):
                floor_s, resolver_s = resolver_import_cpu(code_dir, args.runs)
                print(f"{code_dir.name}: the resolver's import and routes {resolver_s * 1000:.0f} ms CPU, "
                      f"+{resolver_s / floor_s:.2f}x of the floor ({floor_s * 1000:.0f} ms CPU)")
        resolver_us, by_hand_us = resolver_dispatch_us()
        print(f"routing collect's sample, CPU per request: resolver {resolver_us:.1f} us, "
              f"by route key {by_hand_us:.1f} us")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
