"""The stack of `template.yaml`, built on moto and run in-process.

The template is the single source of truth: it is expanded offline with `samtranslator`
(managed-policy lookups answered locally) and every DynamoDB table, EventBridge bus, SQS
queue, Secrets Manager secret (a generated value: a random one), S3 bucket, Step Functions
state machine and (non-Lambda-targeted) EventBridge rule is created in moto from the expanded
template's own properties (a state machine is not run by moto: local/statemachine.py runs its
definition with the handlers in-process). The
functions are not deployed: `invoke` imports their code and calls the handler with the
template's environment, and the runner delivers what AWS would deliver to them:

- the table streams, shaped as Lambda's DynamoDB event, in the mapping's batch size, with
  `ReportBatchItemFailures` (re-delivery from the first failed sequence number),
  `BisectBatchOnFunctionError`, `MaximumRetryAttempts` and the `OnFailure` destination;
- the bus events, matched against the template's `EventBridgeRule` patterns (see
  `eventbridge.py`) and passed in Lambda's EventBridge shape;
- SQS event sources, with partial batch responses;
- schedules, on request (`run_schedule`);
- asynchronous invocations (bus rules): Lambda's retries, then the function's
  `EventInvokeConfig` `OnFailure` destination with Lambda's invocation record.

Works inside `moto.mock_aws()` or against an endpoint (moto's server) given `endpoint_url`.
Never freezes time: pass `now` to what needs it.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib.util
import itertools
import json
import os
import re
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
from botocore.exceptions import ClientError

from local.api_destinations import ApiDestination, Delivery, deliver, transform
from local.apigw import LambdaContext
from local.eventbridge import matches

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ACCOUNT = "123456789012"
LOCAL_URI_PREFIX = "s3://local-sam-artifacts/"
BUS_EVENT_TYPES = ("EventBridgeRule", "CloudWatchEvent")
SCHEDULE_EVENT_TYPES = ("Schedule", "ScheduleV2")
STREAM_EVENT_TYPES = ("DynamoDB", "Kinesis")
#: Lambda retries a failing asynchronous invocation twice (EventBridge -> Lambda is asynchronous).
ASYNC_RETRIES = 2
#: Cap on retries of a stream batch whose mapping retries forever (MaximumRetryAttempts -1).
UNBOUNDED_RETRY_CAP = 20
#: Environment set for every local invocation on top of the template's.
LOCAL_ENV = {"POWERTOOLS_TRACE_DISABLED": "true"}

_INVOKE_LOCK = threading.RLock()
#: Re-entrant: a transaction holds it for its whole run (`light_transaction_backups`) while its
#: own writes append their stream records.
_STREAM_APPEND_LOCK = threading.RLock()


def serialize_stream_appends() -> None:
    """moto numbers a stream record by the shard's length when it appends it, so two threads
    writing at once (collect puts a batch's events in parallel; `make serve` answers requests
    on several threads) can give two records the same sequence number, and a reader asking
    for what follows the last one is handed the tail again, forever. DynamoDB numbers them
    strictly; so does moto once its appends take turns (idempotent, for this process)."""
    from moto.dynamodb.models.table import StreamShard

    if getattr(StreamShard.add, "_serialized", False):
        return
    append = StreamShard.add

    def add(self: Any, old: Any, new: Any) -> None:
        with _STREAM_APPEND_LOCK:
            append(self, old, new)

    add._serialized = True  # type: ignore[attr-defined]
    StreamShard.add = add  # type: ignore[method-assign]


def light_transaction_backups() -> None:
    """moto backs a transaction up by deep-copying every table it touches, stream included,
    before running it: on a table that has seen a few thousand writes that copy is most of
    the suite's time and all a routing pass would measure. The backup here shares every item
    but those the transaction touches (deep-copied), which is all a rollback needs, and a
    cancelled transaction's stream records are dropped (the shared stream kept them), as
    DynamoDB never makes them. Transactions take turns with each other and with stream
    appends, so a rollback never drops another writer's record (idempotent, for this process)."""
    import types
    from collections import defaultdict

    import moto.dynamodb.models as models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    backend = models.DynamoDBBackend
    if getattr(backend.transact_write_items, "_light", False):
        return
    original = backend.transact_write_items
    real_copy = models.copy

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        touched: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for action in transact_items:
            for op in action.values():
                if isinstance(op, dict) and op.get("TableName") in self.tables:
                    table = self.tables[op["TableName"]]
                    key = op.get("Key") or {k: (op.get("Item") or {}).get(k)
                                            for k in (table.hash_key_attr, table.range_key_attr) if k}
                    touched[table.name].append(key)

        def backup(value: Any, memo: Any = None) -> Any:
            if not isinstance(value, Table) or any(v is None for key in touched[value.name] for v in key.values()):
                return real_copy.deepcopy(value, memo)
            clone = real_copy.copy(value)
            # the partitions map copied as a whole (its keys' hashes reused: no DynamoType hashed
            # again, which at 100,000 partitions was seconds a transaction), the touched ones below
            clone.items = defaultdict(dict, value.items)
            for key in touched[value.name]:
                hash_value = DynamoType(key[value.hash_key_attr])
                range_value = DynamoType(key[value.range_key_attr]) if value.range_key_attr else None
                if isinstance(value.items.get(hash_value), dict) and clone.items[hash_value] is value.items[hash_value]:
                    clone.items[hash_value] = dict(value.items[hash_value])  # a partition the transaction writes
                item: Any = value.get_item(hash_value, range_value)
                if item is not None:
                    item = real_copy.deepcopy(item)
                    if range_value is None:
                        clone.items[hash_value] = item
                    else:
                        clone.items[hash_value][range_value] = item
            return clone

        with _STREAM_APPEND_LOCK:
            shards = {name: t.stream_shard for name, t in self.tables.items() if t.stream_shard is not None}
            lengths = {name: len(shard.items) for name, shard in shards.items()}
            models.copy = types.SimpleNamespace(deepcopy=backup, copy=real_copy.copy)  # type: ignore[assignment]
            try:
                original(self, transact_items)
            except Exception:
                for name, shard in shards.items():
                    del shard.items[lengths[name]:]
                raise
            finally:
                models.copy = real_copy

    transact_write_items._light = True  # type: ignore[attr-defined]
    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]


#: What SQS accepts in a message body (anything else: InvalidMessageContents).
_SQS_REFUSED = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def refuse_what_sqs_refuses() -> None:
    """moto accepts any body up to its queue's size counted in characters; SQS refuses a body
    with a character outside #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF
    (`InvalidMessageContents`) and one over the queue's `MaximumMessageSize` in UTF-8 bytes.
    Patched so that local runs and tests see the failures AWS gives (idempotent). A batch
    send fails as a whole here, per entry in SQS: nothing of ours sends batches."""
    from moto.sqs.exceptions import InvalidParameterValue, SQSException
    from moto.sqs.models import SQSBackend

    if getattr(SQSBackend._validate_message, "_strict", False):
        return
    validate = SQSBackend._validate_message

    def strict(self: Any, queue: Any, message_body: str, *args: Any, **kwargs: Any) -> None:
        refused = _SQS_REFUSED.search(message_body)
        if refused:
            raise SQSException("InvalidMessageContents",
                               f"Invalid binary character '#x{ord(refused.group()):X}' was found in the message "
                               "body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | "
                               "#xE000 to #xFFFD | #x10000 to #x10FFFF")
        size = len(message_body.encode("utf-8"))
        if size > int(queue.maximum_message_size):
            raise InvalidParameterValue("One or more parameters are invalid. Reason: Message must be shorter than "
                                        f"{queue.maximum_message_size} bytes.")
        validate(self, queue, message_body, *args, **kwargs)

    strict._strict = True  # type: ignore[attr-defined]
    SQSBackend._validate_message = strict  # type: ignore[method-assign]


class _LazyKeyPair:
    """A KMS key's key pair, made when first used."""

    def __init__(self, key_spec: str, generate: Callable[[str], Any]) -> None:
        self._key_spec = key_spec
        self._generate = generate
        self._made: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if self._made is None:
            self._made = self._generate(self._key_spec)
        return getattr(self._made, name)


def lazy_kms_key_pairs() -> None:
    """moto makes an RSA key pair for every KMS key, symmetric ones included, and a table with
    server-side encryption creates DynamoDB's default key: 2048-bit RSA generation on every
    stack, about 0.1 s, for a pair nothing signs with. Made on first use instead (idempotent,
    for this process)."""
    import moto.kms.models as kms

    if isinstance(kms.generate_private_key, functools.partial):
        return
    kms.generate_private_key = functools.partial(_LazyKeyPair, generate=kms.generate_private_key)  # type: ignore[assignment]


#: The members of DynamoDB's AttributeValue shape, in its model's order.
_ATTRIBUTE_VALUE_MEMBERS = ("S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL")


def _attribute_value_json(value: Mapping[str, Any]) -> dict[str, Any]:
    """An AttributeValue as moto's model-driven JSON serializer writes it: strings as `str`,
    blobs in base64, maps and lists recursively (a missing map value left out, a missing list
    item kept as null), booleans as they are, absent members left out."""
    out: dict[str, Any] = {}
    for name in _ATTRIBUTE_VALUE_MEMBERS:
        member = value.get(name)
        if member is None:
            continue
        if name in ("S", "N"):
            out[name] = _json_string(member)
        elif name == "B":
            out[name] = _base64(member)
        elif name in ("SS", "NS"):
            out[name] = [_json_string(m) for m in member]
        elif name == "BS":
            out[name] = [_base64(m) for m in member]
        elif name == "M":
            out[name] = {k: _attribute_value_json(v) for k, v in member.items() if v is not None}
        elif name == "L":
            out[name] = [None if v is None else _attribute_value_json(v) for v in member]
        else:
            out[name] = member
    return out


def _json_string(value: Any) -> Any:
    return str(value) if value not in (None, {}, []) else value


def _base64(value: str | bytes) -> str:
    import base64

    return base64.b64encode(value.encode("utf-8") if isinstance(value, str) else value).strip().decode("utf-8")


def fast_attribute_values() -> None:
    """moto writes every response through the service's model, member by member, each looked
    up under several aliases: for an item's attribute values (the bulk of a DynamoDB read, a
    query page, a stream batch) that is about 80% of a 20-item query's CPU, and the largest
    part of the suite's. Their JSON form is their own shape with blobs in base64, written here
    directly; every other shape still goes through the model (idempotent, for this process)."""
    from moto.core.serialize import BaseJSONSerializer

    if getattr(BaseJSONSerializer._serialize_type_structure, "_fast", False):
        return
    serialize = BaseJSONSerializer._serialize_type_structure
    attribute_value_shapes: dict[int, bool] = {}

    def _serialize_type_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        is_attribute_value = attribute_value_shapes.get(id(shape))
        if is_attribute_value is None:
            is_attribute_value = attribute_value_shapes[id(shape)] = (
                shape.name == "AttributeValue" and tuple(shape.members) == _ATTRIBUTE_VALUE_MEMBERS)
        if is_attribute_value and key and isinstance(value, dict):
            serialized[self.get_serialized_name(shape, key)] = _attribute_value_json(value)
            return
        serialize(self, serialized, value, shape, key)

    _serialize_type_structure._fast = True  # type: ignore[attr-defined]
    BaseJSONSerializer._serialize_type_structure = _serialize_type_structure  # type: ignore[method-assign]


class TemplateError(RuntimeError):
    """The template uses something the local stack cannot build or resolve."""


class HandlerError(RuntimeError):
    """A handler raised while the runner delivered to it (with `raise_errors`)."""

    def __init__(self, logical_id: str, source: str, error: BaseException) -> None:
        super().__init__(f"{logical_id} raised on {source}: {error!r}")
        self.logical_id = logical_id
        self.source = source
        self.error = error


class NotSettled(RuntimeError):
    """`pump` ran out of rounds while there was still something to deliver."""


@dataclass
class FunctionSpec:
    """What the template says about one function, resolved against the local resources."""

    logical_id: str
    name: str
    arn: str
    code_uri: Path
    handler: str
    environment: dict[str, str]
    events: dict[str, dict[str, Any]]
    timeout: int = 3
    memory_size: int = 128
    layer_paths: list[Path] = field(default_factory=list)
    #: EventInvokeConfig: retries of an asynchronous invocation and its OnFailure destination
    async_retries: int = 2
    async_on_failure: str | None = None

    @property
    def module_path(self) -> Path:
        module, _, _ = self.handler.rpartition(".")
        return self.code_uri / (module.replace(".", "/") + ".py")

    @property
    def function_name(self) -> str:
        return self.handler.rpartition(".")[2]

    def events_of(self, *types: str) -> dict[str, dict[str, Any]]:
        """The function's events of the given SAM types, by event name."""
        return {name: ev for name, ev in self.events.items() if ev["Type"] in types}


@dataclass
class DeliveryError:
    """A handler exception seen by the runner (kept also when not raised)."""

    logical_id: str
    source: str
    error: BaseException
    traceback: str


@dataclass
class _StreamMapping:
    function: str
    event_name: str
    stream_arn: str
    batch_size: int
    max_retries: int
    bisect: bool
    report_failures: bool
    on_failure: str | None
    filters: list[dict[str, Any]]
    starting_position: str
    positions: dict[str, str | None] = field(default_factory=dict)


class _PolicyMap(dict[str, str]):
    """Answers every managed-policy lookup of samtranslator locally (no IAM call)."""

    def get(self, key: str, default: object = None) -> str:
        return f"arn:aws:iam::aws:policy/{key}"

    def __contains__(self, key: object) -> bool:
        return True


# ---------------------------------------------------------------- template


#: Parsed and expanded templates, by their text (and parameters, region): parsing and
#: samtranslator take most of a stack's creation, and the suite creates one per test.
_PARSED: dict[str, dict[str, Any]] = {}
_EXPANDED: dict[str, dict[str, Any]] = {}


def load_template(path: str | Path) -> dict[str, Any]:
    """The template as a dict (CloudFormation short-form tags become their long form).
    A fresh copy on every call: parsed once per content."""
    from samtranslator.yaml_helper import yaml_parse

    text = Path(path).read_text()
    if text not in _PARSED:
        _PARSED[text] = yaml_parse(text)
    return copy.deepcopy(_PARSED[text])


def expand_template(
    sam_template: Mapping[str, Any], parameters: Mapping[str, Any] | None = None, region: str = "us-east-1"
) -> dict[str, Any]:
    """The template expanded by samtranslator, offline. Local code paths stay readable:
    `Code.S3Key` / `Content.S3Key` of functions and layers hold the path relative to the template.
    A fresh copy on every call: expanded once per template, parameters and region."""
    key = json.dumps([sam_template, parameters or {}, region], sort_keys=True, default=str)
    if key not in _EXPANDED:
        _EXPANDED[key] = _translate(sam_template, parameters, region)
    return copy.deepcopy(_EXPANDED[key])


def _translate(
    sam_template: Mapping[str, Any], parameters: Mapping[str, Any] | None, region: str
) -> dict[str, Any]:
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = copy.deepcopy(dict(sam_template))
    sections = [template.get("Resources", {}).values(), [template.get("Globals", {}).get("Function", {})]]
    for resource in itertools.chain(*sections):
        props = resource.get("Properties", resource) if "Type" in resource else resource
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = LOCAL_URI_PREFIX + props[key]
    translator = Translator(_PolicyMap(), Parser(), boto_session=boto3.Session(region_name=region))
    try:
        return translator.translate(
            template, parameter_values=dict(parameters or {}), passthrough_metadata=True
        )
    finally:
        translator.metrics.publish()  # to the dummy publisher: keeps its destructor quiet


def _local_path(base: Path, s3_key_or_uri: Any) -> Path | None:
    if isinstance(s3_key_or_uri, str):
        rel = s3_key_or_uri.removeprefix(LOCAL_URI_PREFIX)
        return (base / rel).resolve()
    return None


# ---------------------------------------------------------------- the stack


class TemplateStack:
    """The template's resources in moto, and a runner that delivers to its functions."""

    def __init__(
        self,
        template_path: Path,
        stack_name: str,
        region: str,
        session: boto3.Session,
        endpoint_url: str | None,
        parameters: Mapping[str, Any] | None,
    ) -> None:
        self.template_path = template_path
        self.base_dir = template_path.parent
        self.stack_name = stack_name
        self.region = region
        self.session = session
        self.endpoint_url = endpoint_url
        self.sam_template = load_template(template_path)
        self.parameters = self._parameter_values(parameters or {})
        self.template = expand_template(self.sam_template, self.parameters, region)
        self.account_id = DEFAULT_ACCOUNT
        #: logical id -> {"type", "name", "arn", "url" (queues), "stream_arn" (tables)}
        self.resources: dict[str, dict[str, Any]] = {}
        #: function logical id -> its spec
        self.functions: dict[str, FunctionSpec] = {}
        #: every event seen on the stack's buses, in order
        self.bus_log: list[dict[str, Any]] = []
        #: handler exceptions seen while delivering
        self.errors: list[DeliveryError] = []
        #: batches and events given up on (also sent to their destination queue when there is one)
        self.dead_letters: list[dict[str, Any]] = []
        #: state machine logical id -> its definition, substitutions applied (local/statemachine.py runs it)
        self.state_machines: dict[str, dict[str, Any]] = {}
        #: the template's conditions, evaluated with the parameters (a resource whose condition
        #: is false is not created)
        self.conditions: dict[str, bool] = {}
        #: API destinations (logical id -> endpoint, rate, the connection's header) and what
        #: was posted to them (local/api_destinations.py)
        self.api_destinations: dict[str, ApiDestination] = {}
        self.api_deliveries: list[Delivery] = []
        #: None: posts are made inline (bus_events returns once they are done). `make serve` sets
        #: a function that queues each post for a worker thread, so the rate limit's sleeps hold
        #: neither its delivery loop nor its API (`dead_letter_lock` guards the DLQ sends then)
        self.api_executor: Callable[[Callable[[], None]], None] | None = None
        self.dead_letter_lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        self._api_targets: list[dict[str, Any]] = []  # {rule, arn, bus, pattern, target}
        self._clients: dict[str, Any] = {}
        self._modules: dict[str, ModuleType] = {}
        self._stream_mappings: list[_StreamMapping] = []
        self._bus_taps: dict[str, str] = {}  # bus name -> harness queue url
        self._token = uuid.uuid4().hex[:8]

    # ------------------------------------------------------------ creation

    @classmethod
    def create(
        cls,
        template_path: str | Path = "template.yaml",
        stack_name: str = "leadscore",
        region: str = "us-east-1",
        session: boto3.Session | None = None,
        *,
        endpoint_url: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> TemplateStack:
        """Create the template's resources in the active moto (or at `endpoint_url`)."""
        serialize_stream_appends()
        light_transaction_backups()
        refuse_what_sqs_refuses()
        fast_attribute_values()
        lazy_kms_key_pairs()
        path = Path(template_path)
        if not path.is_absolute():
            path = (REPO_ROOT / path) if not path.exists() else path.resolve()
        stack = cls(
            path, stack_name, region, session or boto3.Session(region_name=region), endpoint_url, parameters
        )
        stack._build()
        return stack

    def client(self, service: str) -> Any:
        """A boto3 client of the stack's session (and endpoint), cached."""
        if service not in self._clients:
            # boto3-stubs types a client per literal service name; this one is known at run time
            self._clients[service] = self.session.client(  # type: ignore[call-overload]
                service, region_name=self.region, endpoint_url=self.endpoint_url or None
            )
        return self._clients[service]

    def _parameter_values(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, spec in (self.sam_template.get("Parameters") or {}).items():
            if name in overrides:
                values[name] = overrides[name]
            elif "Default" in spec:
                values[name] = spec["Default"]
            else:
                raise TemplateError(f"parameter {name} has no default: pass parameters={{'{name}': ...}}")
            if spec.get("Type") == "CommaDelimitedList" and isinstance(values[name], str):
                values[name] = [v.strip() for v in values[name].split(",")]
            elif not isinstance(values[name], list):
                values[name] = str(values[name])
        return values

    def _build(self) -> None:
        with contextlib.suppress(Exception):
            self.account_id = self.client("sts").get_caller_identity()["Account"]
        self.conditions = self._evaluate_conditions()
        self.template["Resources"] = resources = {
            logical_id: resource for logical_id, resource in self.template["Resources"].items()
            if self.conditions.get(resource.get("Condition", ""), True)
        }
        # Names and ARNs first, so that properties can refer to any resource: a first pass
        # with default names, a second one resolving names that refer to other resources.
        for logical_id, resource in resources.items():
            self.resources[logical_id] = self._physical(logical_id, resource, resolve=False)
        for logical_id, resource in resources.items():
            self.resources[logical_id] = self._physical(logical_id, resource)
        for logical_id, resource in resources.items():
            if resource["Type"] == "AWS::SQS::Queue":
                self._create_queue(logical_id, resource.get("Properties") or {})
        for logical_id, resource in resources.items():
            if resource["Type"] == "AWS::SQS::Queue":
                self._set_redrive(logical_id, resource.get("Properties") or {})
            elif resource["Type"] == "AWS::DynamoDB::Table":
                self._create_table(logical_id, resource.get("Properties") or {})
            elif resource["Type"] == "AWS::Events::EventBus":
                self._create_bus(logical_id)
            elif resource["Type"] == "AWS::SecretsManager::Secret":
                self._create_secret(logical_id, resource.get("Properties") or {})
            elif resource["Type"] == "AWS::S3::Bucket":
                self._create_bucket(logical_id, resource.get("Properties") or {})
        for logical_id, resource in resources.items():
            if resource["Type"] == "AWS::Events::Connection":
                self._create_connection(logical_id, resource.get("Properties") or {})
        for logical_id, resource in resources.items():
            if resource["Type"] == "AWS::Events::ApiDestination":
                self._create_api_destination(logical_id, resource.get("Properties") or {})
        for logical_id, resource in resources.items():
            if resource["Type"] == "AWS::Events::Rule":
                self._create_rule(logical_id, resource.get("Properties") or {})
        for logical_id, resource in resources.items():
            if resource["Type"] == "AWS::StepFunctions::StateMachine":
                self._create_state_machine(logical_id, resource.get("Properties") or {})
        for logical_id, resource in self.sam_template.get("Resources", {}).items():
            if resource.get("Type") == "AWS::Serverless::Function":
                self.functions[logical_id] = self._function_spec(logical_id)
        self._setup_delivery()

    def _physical(self, logical_id: str, resource: Mapping[str, Any], resolve: bool = True) -> dict[str, Any]:
        kind = resource["Type"]
        props = dict(resource.get("Properties") or {})
        if not resolve:
            props = {k: v for k, v in props.items() if not isinstance(v, dict | list)}
        acct, region = self.account_id, self.region
        default_name = f"{self.stack_name}-{logical_id}"
        info: dict[str, Any] = {"type": kind}
        if kind == "AWS::DynamoDB::Table":
            name = self._resolve(props.get("TableName")) or default_name
            info.update(name=name, arn=f"arn:aws:dynamodb:{region}:{acct}:table/{name}")
        elif kind == "AWS::Events::EventBus":
            name = self._resolve(props.get("Name")) or default_name
            info.update(name=name, arn=f"arn:aws:events:{region}:{acct}:event-bus/{name}")
        elif kind == "AWS::SQS::Queue":
            fifo = str(props.get("FifoQueue", "")).lower() == "true"
            name = self._resolve(props.get("QueueName")) or (default_name + (".fifo" if fifo else ""))
            info.update(name=name, arn=f"arn:aws:sqs:{region}:{acct}:{name}", fifo=fifo)
        elif kind == "AWS::Lambda::Function":
            name = self._resolve(props.get("FunctionName")) or default_name[:64]
            info.update(name=name, arn=f"arn:aws:lambda:{region}:{acct}:function:{name}")
        elif kind == "AWS::Events::Rule":
            name = self._resolve(props.get("Name")) or default_name[:64]
            bus = self._resolve(props.get("EventBusName")) or "default"
            bus = bus.rsplit("/", 1)[-1]
            path = name if bus == "default" else f"{bus}/{name}"
            info.update(name=name, arn=f"arn:aws:events:{region}:{acct}:rule/{path}", bus=bus)
        elif kind == "AWS::Events::Connection":
            name = self._resolve(props.get("Name")) or default_name[:64]
            info.update(name=name, arn=f"arn:aws:events:{region}:{acct}:connection/{name}/{self._token}")
        elif kind == "AWS::Events::ApiDestination":
            name = self._resolve(props.get("Name")) or default_name[:64]
            info.update(name=name, arn=f"arn:aws:events:{region}:{acct}:api-destination/{name}/{self._token}")
        elif kind == "AWS::Logs::LogGroup":
            name = self._resolve(props.get("LogGroupName")) or default_name
            info.update(name=name, arn=f"arn:aws:logs:{region}:{acct}:log-group:{name}:*")
        elif kind == "AWS::ApiGatewayV2::Api":
            info.update(name=default_name, id="local", arn=f"arn:aws:apigateway:{region}::/apis/local")
        elif kind == "AWS::Lambda::LayerVersion":
            info.update(name=default_name, arn=f"arn:aws:lambda:{region}:{acct}:layer:{default_name}:1")
        elif kind == "AWS::IAM::Role":
            info.update(name=default_name, arn=f"arn:aws:iam::{acct}:role/{default_name}")
        elif kind == "AWS::SecretsManager::Secret":  # the ARN (its random suffix) once created
            name = self._resolve(props.get("Name")) or default_name
            info.update(name=name, arn=f"arn:aws:secretsmanager:{region}:{acct}:secret:{name}")
        elif kind == "AWS::S3::Bucket":  # bucket names are lower case
            name = self._resolve(props.get("BucketName")) or default_name.lower()
            info.update(name=name, arn=f"arn:aws:s3:::{name}")
        elif kind == "AWS::StepFunctions::StateMachine":
            name = self._resolve(props.get("StateMachineName")) or default_name
            info.update(name=name, arn=f"arn:aws:states:{region}:{acct}:stateMachine:{name}")
        else:
            info.update(name=default_name, arn=f"arn:aws:local:{region}:{acct}:{logical_id}")
        return info

    # ------------------------------------------------------------ intrinsics

    def _pseudo(self, name: str) -> Any:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": (
                f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/{self._token}"
            ),
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
            "AWS::NotificationARNs": [],
        }[name]

    def _ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self._pseudo(name)
        if name in self.parameters:
            return self.parameters[name]
        info = self.resources.get(name)
        if info is None:
            raise TemplateError(f"Ref to unknown {name!r}")
        kind = info["type"]
        if kind == "AWS::SQS::Queue":
            return info.get("url") or info["name"]
        if kind in ("AWS::Lambda::LayerVersion", "AWS::IAM::Role", "AWS::SecretsManager::Secret",
                    "AWS::StepFunctions::StateMachine") or kind.startswith("AWS::SQS::"):
            return info["arn"]
        if kind == "AWS::ApiGatewayV2::Api":
            return info["id"]
        return info["name"]

    def _get_att(self, logical_id: str, attribute: str) -> Any:
        info = self.resources.get(logical_id)
        if info is None:
            raise TemplateError(f"GetAtt of unknown {logical_id!r}")
        mapping = {
            "Arn": info.get("arn"),
            "StreamArn": info.get("stream_arn"),
            "QueueName": info.get("name"),
            "QueueUrl": info.get("url"),
            "Name": info.get("name"),
            "ApiEndpoint": f"https://{info.get('id')}.execute-api.{self.region}.amazonaws.com",
        }
        value = mapping.get(attribute)
        if value is None:
            raise TemplateError(f"GetAtt {logical_id}.{attribute} is not known locally")
        return value

    def _resolve(self, value: Any) -> Any:
        """Resolve the intrinsics the local stack needs (Ref, GetAtt, Sub, Join, Select, Split)."""
        if isinstance(value, list):
            return [self._resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._get_att(logical_id, attribute)
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                return self._sub(text, {k: self._resolve(v) for k, v in variables.items()})
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(v) for v in self._resolve(items))
            if key == "Fn::Select":
                index, items = arg
                return self._resolve(items)[int(self._resolve(index))]
            if key == "Fn::Split":
                sep, text = arg
                return str(self._resolve(text)).split(sep)
            if key == "Fn::If":
                condition, if_true, if_false = arg
                return self._resolve(if_true if self.conditions[condition] else if_false)
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} is not supported by the local stack")
        return {k: self._resolve(v) for k, v in value.items()}

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        out, i = [], 0
        while i < len(text):
            start = text.find("${", i)
            if start < 0:
                out.append(text[i:])
                break
            out.append(text[i:start])
            end = text.index("}", start)
            expr = text[start + 2 : end]
            if expr.startswith("!"):
                out.append("${" + expr[1:] + "}")
            elif expr in variables:
                out.append(str(variables[expr]))
            elif "." in expr and not expr.startswith("AWS::"):
                logical_id, attribute = expr.split(".", 1)
                out.append(str(self._get_att(logical_id, attribute)))
            else:
                out.append(str(self._ref(expr)))
            i = end + 1
        return "".join(out)

    # ------------------------------------------------------------ resources

    def _create_table(self, logical_id: str, props: Mapping[str, Any]) -> None:
        props = self._resolve(dict(props))
        info = self.resources[logical_id]
        ddb = self.client("dynamodb")
        args: dict[str, Any] = {
            "TableName": info["name"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if args["BillingMode"] == "PROVISIONED":
            args["ProvisionedThroughput"] = props.get(
                "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
            )
        index_keys = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")
        for section in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if props.get(section):
                args[section] = [{k: ix[k] for k in index_keys if k in ix} for ix in props[section]]
        if props.get("StreamSpecification"):
            view = props["StreamSpecification"]["StreamViewType"]
            args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
        sse = props.get("SSESpecification")
        if sse:
            args["SSESpecification"] = {"Enabled": str(sse.get("SSEEnabled")).lower() == "true"}
            for src, dst in (("SSEType", "SSEType"), ("KMSMasterKeyId", "KMSMasterKeyId")):
                if sse.get(src):
                    args["SSESpecification"][dst] = sse[src]
        if props.get("Tags"):
            args["Tags"] = props["Tags"]
        try:
            table = ddb.create_table(**args)["TableDescription"]
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceInUseException":
                raise
            table = ddb.describe_table(TableName=info["name"])["Table"]
        info["arn"] = table["TableArn"]
        if table.get("LatestStreamArn"):
            info["stream_arn"] = table["LatestStreamArn"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and str(ttl.get("Enabled")).lower() == "true":
            with contextlib.suppress(ClientError):  # already enabled on a reused table
                ddb.update_time_to_live(
                    TableName=info["name"],
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
                )
        pitr = props.get("PointInTimeRecoverySpecification")
        if pitr and str(pitr.get("PointInTimeRecoveryEnabled")).lower() == "true":
            with contextlib.suppress(ClientError):
                spec: dict[str, Any] = {"PointInTimeRecoveryEnabled": True}
                if pitr.get("RecoveryPeriodInDays") is not None:
                    spec["RecoveryPeriodInDays"] = int(pitr["RecoveryPeriodInDays"])
                ddb.update_continuous_backups(TableName=info["name"], PointInTimeRecoverySpecification=spec)

    _QUEUE_ATTRIBUTES = (
        "DelaySeconds",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
        "VisibilityTimeout",
        "FifoQueue",
        "ContentBasedDeduplication",
        "DeduplicationScope",
        "FifoThroughputLimit",
        "SqsManagedSseEnabled",
        "KmsMasterKeyId",
        "KmsDataKeyReusePeriodSeconds",
    )

    def _create_queue(self, logical_id: str, props: Mapping[str, Any]) -> None:
        props = self._resolve(dict(props))
        info = self.resources[logical_id]
        attributes = {}
        for key in self._QUEUE_ATTRIBUTES:
            if key in props:
                value = props[key]
                attributes[key] = str(value).lower() if isinstance(value, bool) else str(value)
        if info["fifo"]:
            attributes["FifoQueue"] = "true"
        url = self.client("sqs").create_queue(QueueName=info["name"], Attributes=attributes)["QueueUrl"]
        info["url"] = url

    def _set_redrive(self, logical_id: str, props: Mapping[str, Any]) -> None:
        for key in ("RedrivePolicy", "RedriveAllowPolicy"):
            if props.get(key):
                value = self._resolve(props[key])
                self.client("sqs").set_queue_attributes(
                    QueueUrl=self.resources[logical_id]["url"],
                    Attributes={key: value if isinstance(value, str) else json.dumps(value)},
                )

    def _create_bus(self, logical_id: str) -> None:
        info = self.resources[logical_id]
        events = self.client("events")
        try:
            info["arn"] = events.create_event_bus(Name=info["name"])["EventBusArn"]
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise
            info["arn"] = events.describe_event_bus(Name=info["name"])["Arn"]

    def _create_secret(self, logical_id: str, props: Mapping[str, Any]) -> None:
        """The secret, with a random value where the template has CloudFormation generate one
        (`GenerateSecretString`: `secrets.token_urlsafe`, as long as asked), so the functions
        of every local stack hash with a key of their own (the log key, adapters/log_key.py).
        A secret already there (a reused moto server) is kept as it is."""
        import secrets

        props = self._resolve(dict(props))
        info = self.resources[logical_id]
        value = props.get("SecretString")
        if value is None:
            length = int((props.get("GenerateSecretString") or {}).get("PasswordLength", 32))
            value = secrets.token_urlsafe(length)[:length]
        manager = self.client("secretsmanager")
        try:
            info["arn"] = manager.create_secret(Name=info["name"], SecretString=str(value),
                                                Description=str(props.get("Description", "")))["ARN"]
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceExistsException":
                raise
            info["arn"] = manager.describe_secret(SecretId=info["name"])["ARN"]

    def _create_bucket(self, logical_id: str, props: Mapping[str, Any]) -> None:
        """The bucket, with its encryption, public access block and expiry (what moto keeps
        of them). A bucket already there (a reused moto server) is kept."""
        props = self._resolve(dict(props))
        name = self.resources[logical_id]["name"]
        s3 = self.client("s3")
        args: dict[str, Any] = {"Bucket": name}
        if self.region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            s3.create_bucket(**args)
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        if props.get("BucketEncryption"):
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [
                {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]]})
        if props.get("PublicAccessBlockConfiguration"):
            s3.put_public_access_block(Bucket=name,
                                       PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
        rules = []
        for rule in (props.get("LifecycleConfiguration") or {}).get("Rules") or []:
            shaped: dict[str, Any] = {"ID": rule.get("Id", "rule"), "Status": rule["Status"],
                                      "Filter": {"Prefix": rule.get("Prefix", "")}}
            if "ExpirationInDays" in rule:
                shaped["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
            if "AbortIncompleteMultipartUpload" in rule:
                shaped["AbortIncompleteMultipartUpload"] = {
                    "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])}
            rules.append(shaped)
        if rules:
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})

    def _create_state_machine(self, logical_id: str, props: Mapping[str, Any]) -> None:
        """The state machine with its definition, `DefinitionSubstitutions` applied (kept in
        `state_machines` for local/statemachine.py: moto would run its Lambda tasks in Docker)."""
        props = self._resolve(dict(props))
        info = self.resources[logical_id]
        text = props.get("DefinitionString")
        if text is None:
            text = json.dumps(props.get("Definition") or {})
        for key, value in (props.get("DefinitionSubstitutions") or {}).items():
            text = text.replace("${" + key + "}", str(value))
        self.state_machines[logical_id] = json.loads(text)
        machines = self.client("stepfunctions")
        try:
            info["arn"] = machines.create_state_machine(
                name=info["name"], definition=text, roleArn=props["RoleArn"],
                type=props.get("StateMachineType", "STANDARD"))["stateMachineArn"]
        except ClientError as error:
            if error.response["Error"]["Code"] != "StateMachineAlreadyExists":
                raise

    def _evaluate_conditions(self) -> dict[str, bool]:
        """The template's Conditions (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition) with
        the stack's parameters."""
        conditions = self.template.get("Conditions") or {}
        values: dict[str, bool] = {}

        def holds(expression: Any) -> bool:
            if not isinstance(expression, dict) or len(expression) != 1:
                raise TemplateError(f"a condition must be one function: {expression!r}")
            ((key, arg),) = expression.items()
            if key == "Condition":
                return value_of(arg)
            if key == "Fn::Equals":
                left, right = (self._resolve(a) for a in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not holds(arg[0])
            if key == "Fn::And":
                return all(holds(a) for a in arg)
            if key == "Fn::Or":
                return any(holds(a) for a in arg)
            raise TemplateError(f"{key} is not supported in a condition by the local stack")

        def value_of(name: str) -> bool:
            if name not in values:
                values[name] = holds(conditions[name])
            return values[name]

        for name in conditions:
            value_of(name)
        return values

    def _create_connection(self, logical_id: str, props: Mapping[str, Any]) -> None:
        """Kept for its API key header (moto has the connection too, for `aws events` calls)."""
        props = self._resolve(dict(props))
        info = self.resources[logical_id]
        key = ((props.get("AuthParameters") or {}).get("ApiKeyAuthParameters") or {})
        info["headers"] = {str(key["ApiKeyName"]): str(key["ApiKeyValue"])} if key.get("ApiKeyName") else {}
        with contextlib.suppress(Exception):
            info["arn"] = self.client("events").create_connection(
                Name=info["name"], AuthorizationType=props.get("AuthorizationType", "API_KEY"),
                AuthParameters=props.get("AuthParameters") or {})["ConnectionArn"]

    def _create_api_destination(self, logical_id: str, props: Mapping[str, Any]) -> None:
        props = self._resolve(dict(props))
        info = self.resources[logical_id]
        connection = next((c for c in self.resources.values()
                           if c["type"] == "AWS::Events::Connection" and c["arn"] == props.get("ConnectionArn")), {})
        with contextlib.suppress(Exception):
            info["arn"] = self.client("events").create_api_destination(
                Name=info["name"], ConnectionArn=props["ConnectionArn"], InvocationEndpoint=props["InvocationEndpoint"],
                HttpMethod=props.get("HttpMethod", "POST"),
                InvocationRateLimitPerSecond=int(props.get("InvocationRateLimitPerSecond", 300)))["ApiDestinationArn"]
        self.api_destinations[logical_id] = ApiDestination(
            logical_id=logical_id, arn=info["arn"], endpoint=str(props["InvocationEndpoint"]),
            method=str(props.get("HttpMethod", "POST")),
            rate_per_second=float(props.get("InvocationRateLimitPerSecond", 300)),
            headers=dict(connection.get("headers") or {}))

    def _create_rule(self, logical_id: str, props: Mapping[str, Any]) -> None:
        """Plain rules with targets moto can deliver to (SQS, log groups, buses); Lambda
        targets and schedules are the runner's job."""
        props = self._resolve(dict(props))
        if "EventPattern" not in props:
            return
        function_arns = {i["arn"] for i in self.resources.values() if i["type"] == "AWS::Lambda::Function"}
        info = self.resources[logical_id]
        destinations = {d.arn for d in self.api_destinations.values()}
        for target in props.get("Targets", []):
            if target["Arn"] in destinations:  # the runner posts to these (deliver_api_destinations)
                self._api_targets.append({"rule": logical_id, "arn": info["arn"], "name": info["name"],
                                          "bus": info["bus"], "pattern": props["EventPattern"],
                                          "state": props.get("State", "ENABLED"), "target": target})
        targets = [t for t in props.get("Targets", [])
                   if t["Arn"] not in function_arns and t["Arn"] not in destinations]
        if not targets:
            return
        events = self.client("events")
        pattern = props["EventPattern"]
        events.put_rule(
            Name=info["name"],
            EventBusName=info["bus"],
            EventPattern=pattern if isinstance(pattern, str) else json.dumps(pattern),
            State=props.get("State", "ENABLED"),
        )
        keep = ("Id", "Arn", "Input", "InputPath", "InputTransformer", "SqsParameters", "RoleArn")
        events.put_targets(
            Rule=info["name"],
            EventBusName=info["bus"],
            Targets=[{k: v for k, v in t.items() if k in keep} for t in targets],
        )

    # ------------------------------------------------------------ functions

    def _function_spec(self, logical_id: str) -> FunctionSpec:
        expanded = self.template["Resources"][logical_id]["Properties"]
        sam_props = self.sam_template["Resources"][logical_id].get("Properties") or {}
        code_uri = _local_path(self.base_dir, expanded.get("Code", {}).get("S3Key"))
        if code_uri is None:
            raise TemplateError(f"{logical_id}: only local CodeUri folders can run locally")
        layer_paths, opt_dirs = self._layer_dirs(expanded.get("Layers") or [])
        environment: dict[str, str] = {}
        for key, value in ((expanded.get("Environment") or {}).get("Variables") or {}).items():
            resolved = self._resolve(value)
            if isinstance(resolved, list):
                resolved = ",".join(str(v) for v in resolved)
            text = "" if resolved is None else str(resolved)
            if (text == "/opt" or text.startswith("/opt/")) and opt_dirs:
                text = str(opt_dirs[0] / text[len("/opt/") :]) if text != "/opt" else str(opt_dirs[0])
            environment[key] = text
        events = {}
        for name, event in (sam_props.get("Events") or {}).items():
            events[name] = {"Type": event["Type"], "Properties": self._resolve(event.get("Properties") or {})}
        info = self.resources[logical_id]
        invoke_config = self._resolve(sam_props.get("EventInvokeConfig") or {})
        on_failure = ((invoke_config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        return FunctionSpec(
            logical_id=logical_id,
            name=info["name"],
            arn=info["arn"],
            code_uri=code_uri,
            handler=expanded["Handler"],
            environment=environment,
            events=events,
            timeout=int(expanded.get("Timeout", 3)),
            memory_size=int(expanded.get("MemorySize", 128)),
            layer_paths=layer_paths,
            async_retries=int(invoke_config.get("MaximumRetryAttempts", ASYNC_RETRIES)),
            async_on_failure=on_failure,
        )

    def _layer_dirs(self, layers: list[Any]) -> tuple[list[Path], list[Path]]:
        """(folders to put on sys.path, folders that stand in for /opt) of a function's layers.
        A layer with a Python BuildMethod is importable (SAM copies it into python/);
        one without is unpacked into /opt as is."""
        importable: list[Path] = []
        opt: list[Path] = []
        for layer in layers:
            ref = layer.get("Ref") if isinstance(layer, dict) else None
            resource = self.template["Resources"].get(ref) if ref else None
            if resource is None or resource["Type"] != "AWS::Lambda::LayerVersion":
                continue
            path = _local_path(self.base_dir, resource["Properties"].get("Content", {}).get("S3Key"))
            if path is None:
                continue
            build = (resource.get("Metadata") or {}).get("BuildMethod", "")
            (importable if str(build).startswith("python") else opt).append(path)
        return importable, opt

    def module(self, logical_id: str) -> ModuleType:
        """The function's handler module, imported once per stack (a warm container)."""
        if logical_id not in self._modules:
            spec = self.functions[logical_id]
            with self._function_env(spec):
                name = f"_localfn_{self._token}_{logical_id}"
                module_spec = importlib.util.spec_from_file_location(name, spec.module_path)
                if module_spec is None or module_spec.loader is None:
                    raise TemplateError(f"{logical_id}: cannot load {spec.module_path}")
                module = importlib.util.module_from_spec(module_spec)
                sys.modules[name] = module
                try:
                    module_spec.loader.exec_module(module)
                except BaseException:
                    sys.modules.pop(name, None)
                    raise
            self._modules[logical_id] = module
        return self._modules[logical_id]

    @contextlib.contextmanager
    def _function_env(self, spec: FunctionSpec) -> Iterator[None]:
        with _INVOKE_LOCK:
            env = {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region, **LOCAL_ENV}
            if self.endpoint_url:
                env["AWS_ENDPOINT_URL"] = self.endpoint_url
            env.update(spec.environment)
            saved = {key: os.environ.get(key) for key in env}
            paths = [str(p) for p in [spec.code_uri, *spec.layer_paths]]
            added = [p for p in paths if p not in sys.path]
            os.environ.update(env)
            sys.path[:0] = added
            try:
                yield
            finally:
                for p in added:
                    with contextlib.suppress(ValueError):
                        sys.path.remove(p)
                for key, old in saved.items():
                    if old is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = old

    def context(self, logical_id: str) -> LambdaContext:
        spec = self.functions[logical_id]
        return LambdaContext(
            function_name=spec.name,
            memory_limit_in_mb=spec.memory_size,
            timeout_s=spec.timeout,
            region=self.region,
            account_id=self.account_id,
        )

    def invoke(self, logical_id: str, event: Any, context: Any = None) -> Any:
        """Call the function's handler with `event` under its environment, as Lambda would."""
        spec = self.functions[logical_id]
        module = self.module(logical_id)
        handler = getattr(module, spec.function_name)
        with self._function_env(spec):
            return handler(event, context if context is not None else self.context(logical_id))

    # ------------------------------------------------------------ delivery setup

    def _setup_delivery(self) -> None:
        bus_names: set[str] = set()
        for spec in self.functions.values():
            for name, event in spec.events.items():
                props = event["Properties"]
                if event["Type"] in STREAM_EVENT_TYPES:
                    self._stream_mappings.append(self._stream_mapping(spec, name, props))
                elif event["Type"] in BUS_EVENT_TYPES:
                    bus_names.add(_bus_name(props.get("EventBusName")))
        bus_names.update(i["name"] for i in self.resources.values() if i["type"] == "AWS::Events::EventBus")
        for bus in sorted(bus_names):
            self._tap_bus(bus)

    def _stream_mapping(self, spec: FunctionSpec, name: str, props: Mapping[str, Any]) -> _StreamMapping:
        retries = int(props.get("MaximumRetryAttempts", -1))
        on_failure = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        filters = [
            json.loads(f["Pattern"]) if isinstance(f["Pattern"], str) else f["Pattern"]
            for f in (props.get("FilterCriteria") or {}).get("Filters", [])
        ]
        mapping = _StreamMapping(
            function=spec.logical_id,
            event_name=name,
            stream_arn=props["Stream"],
            batch_size=int(props.get("BatchSize", 100)),
            max_retries=UNBOUNDED_RETRY_CAP if retries < 0 else retries,
            bisect=str(props.get("BisectBatchOnFunctionError", False)).lower() == "true",
            report_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
            on_failure=on_failure,
            filters=filters,
            starting_position=props.get("StartingPosition", "LATEST"),
        )
        if mapping.starting_position == "LATEST":
            # Start after whatever is in the stream now.
            for shard_id, last in self._shard_ends(mapping.stream_arn).items():
                mapping.positions[shard_id] = last
        return mapping

    def _tap_bus(self, bus: str) -> None:
        """A catch-all rule on the bus into a harness queue, so the runner sees every event."""
        sqs, events = self.client("sqs"), self.client("events")
        queue_name = f"{self.stack_name}-tap-{bus}"[:70].replace(".", "-") + f"-{self._token}"
        url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        rule = f"local-tap-{self._token}"
        events.put_rule(
            Name=rule,
            EventBusName=bus,
            EventPattern=json.dumps({"account": [self.account_id]}),
            State="ENABLED",
        )
        events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "local-runner", "Arn": arn}])
        self._bus_taps[bus] = url

    # ------------------------------------------------------------ streams

    def _shard_ends(self, stream_arn: str) -> dict[str, str | None]:
        streams = self.client("dynamodbstreams")
        ends: dict[str, str | None] = {}
        for shard in streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
            last = None
            for record in self._read_shard(stream_arn, shard["ShardId"], None):
                last = record["dynamodb"]["SequenceNumber"]
            ends[shard["ShardId"]] = last
        return ends

    def _read_shard(self, stream_arn: str, shard_id: str, after: str | None) -> list[dict[str, Any]]:
        streams = self.client("dynamodbstreams")
        args: dict[str, Any] = {"StreamArn": stream_arn, "ShardId": shard_id}
        if after is None:
            args["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            args.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after)
        iterator = streams.get_shard_iterator(**args)["ShardIterator"]
        records: list[dict[str, Any]] = []
        last = int(after) if after is not None else -1
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            fresh = [r for r in page["Records"] if int(r["dynamodb"]["SequenceNumber"]) > last]
            if not fresh:  # the end (or a page that does not move on: never loop on it)
                break
            records.extend(fresh)
            last = int(fresh[-1]["dynamodb"]["SequenceNumber"])
            iterator = page.get("NextShardIterator")
        return records

    def _lambda_stream_record(self, record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
        ddb = dict(record["dynamodb"])
        created = ddb.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            ddb["ApproximateCreationDateTime"] = int(created.timestamp())
        shaped = {
            "eventID": record.get("eventID") or uuid.uuid4().hex,
            "eventName": record["eventName"],
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": self.region,
            "dynamodb": {
                k: ddb[k]
                for k in (
                    "ApproximateCreationDateTime",
                    "Keys",
                    "NewImage",
                    "OldImage",
                    "SequenceNumber",
                    "SizeBytes",
                    "StreamViewType",
                )
                if k in ddb
            },
            "eventSourceARN": stream_arn,
        }
        if record.get("userIdentity"):
            shaped["userIdentity"] = record["userIdentity"]
        return shaped

    def skip_stream_records(self) -> None:
        """Move every stream mapping past what its stream holds now: records of data seeded
        straight into a table (a benchmark's population) that no function should see."""
        for mapping in self._stream_mappings:
            mapping.positions.update(self._shard_ends(mapping.stream_arn))

    def stream_batches(self, *, raise_errors: bool = True) -> int:
        """Deliver the new records of every stream mapping; returns how many records were read."""
        count = 0
        streams = self.client("dynamodbstreams")
        for mapping in self._stream_mappings:
            description = streams.describe_stream(StreamArn=mapping.stream_arn)["StreamDescription"]
            for shard in description["Shards"]:
                shard_id = shard["ShardId"]
                raw = self._read_shard(mapping.stream_arn, shard_id, mapping.positions.get(shard_id))
                if not raw:
                    continue
                mapping.positions[shard_id] = raw[-1]["dynamodb"]["SequenceNumber"]
                count += len(raw)
                records = [self._lambda_stream_record(r, mapping.stream_arn) for r in raw]
                if mapping.filters:
                    records = [r for r in records if any(matches(f, r) for f in mapping.filters)]
                for start in range(0, len(records), mapping.batch_size):
                    batch = records[start : start + mapping.batch_size]
                    self._deliver_stream(mapping, shard_id, batch, mapping.max_retries, raise_errors)
        return count

    def _deliver_stream(
        self,
        mapping: _StreamMapping,
        shard_id: str,
        batch: list[dict[str, Any]],
        retries_left: int,
        raise_errors: bool,
    ) -> None:
        pending = batch
        invocations = 0
        while pending:
            invocations += 1
            function_error = False
            failed_from: int | None
            try:
                result = self.invoke(mapping.function, {"Records": pending})
            except Exception as error:  # noqa: BLE001 - Lambda's view: the batch failed
                self._record_error(mapping.function, f"stream {mapping.event_name}", error, raise_errors)
                function_error, failed_from = True, 0
            else:
                failed_from = self._first_failure(mapping, pending, result)
                if failed_from is None:
                    return
            pending = pending[failed_from:]
            if retries_left <= 0:
                self._stream_failed(mapping, shard_id, pending, invocations, function_error)
                return
            retries_left -= 1
            if function_error and mapping.bisect and len(pending) > 1:
                half = len(pending) // 2
                self._deliver_stream(mapping, shard_id, pending[:half], retries_left, raise_errors)
                self._deliver_stream(mapping, shard_id, pending[half:], retries_left, raise_errors)
                return

    @staticmethod
    def _first_failure(mapping: _StreamMapping, pending: list[dict[str, Any]], result: Any) -> int | None:
        """Index of the record to re-deliver from, or None when the batch succeeded."""
        if not mapping.report_failures or not isinstance(result, Mapping):
            return None
        failures = result.get("batchItemFailures")
        if not failures:
            return None
        sequence = [r["dynamodb"]["SequenceNumber"] for r in pending]
        indexes = []
        for failure in failures:
            identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
            if identifier not in sequence:
                return 0  # an invalid identifier fails the whole batch, as Lambda does
            indexes.append(sequence.index(identifier))
        return min(indexes)

    def _stream_failed(
        self,
        mapping: _StreamMapping,
        shard_id: str,
        records: list[dict[str, Any]],
        invocations: int,
        function_error: bool,
    ) -> None:
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        spec = self.functions[mapping.function]
        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": spec.arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": invocations,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled" if function_error else "",
            },
            "version": "1.0",
            "timestamp": _iso(datetime.now(UTC)),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso_epoch(first.get("ApproximateCreationDateTime")),
                "approximateArrivalOfLastRecord": _iso_epoch(last.get("ApproximateCreationDateTime")),
                "batchSize": len(records),
                "streamArn": mapping.stream_arn,
            },
        }
        self._dead_letter(mapping.function, mapping.on_failure, message)

    def _dead_letter(self, logical_id: str, destination: str | None, message: dict[str, Any]) -> None:
        self.dead_letters.append({"function": logical_id, "destination": destination, "message": message})
        url = self._queue_url_of(destination) if destination else None
        if url:
            args: dict[str, Any] = {"QueueUrl": url, "MessageBody": json.dumps(message)}
            if url.endswith(".fifo"):
                args.update(MessageGroupId=logical_id, MessageDeduplicationId=uuid.uuid4().hex)
            self.client("sqs").send_message(**args)

    def _queue_url_of(self, arn: str) -> str | None:
        for info in self.resources.values():
            if info["type"] == "AWS::SQS::Queue" and info["arn"] == arn:
                return info.get("url")
        return None

    def _record_error(self, logical_id: str, source: str, error: BaseException, raise_errors: bool) -> None:
        self.errors.append(DeliveryError(logical_id, source, error, traceback.format_exc()))
        if raise_errors:
            raise HandlerError(logical_id, source, error) from error

    # ------------------------------------------------------------ buses

    def bus_events(self, *, raise_errors: bool = True) -> list[dict[str, Any]]:
        """Drain the events put on the stack's buses since the last call, deliver each to the
        functions whose rule pattern matches, and return them (also appended to `bus_log`)."""
        sqs = self.client("sqs")
        drained: list[dict[str, Any]] = []
        for bus, url in self._bus_taps.items():
            while True:
                messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                    "Messages", []
                )
                if not messages:
                    break
                for message in messages:
                    event = json.loads(message["Body"])
                    event.pop("ingestion-time", None)
                    if not event.get("account"):  # moto's SQS target leaves it out
                        event["account"] = self.account_id
                    event["_bus"] = bus
                    drained.append(event)
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
                    ],
                )
        for event in drained:
            bus = event.pop("_bus")
            self.bus_log.append(event)
            self._deliver_bus_event(bus, event, raise_errors)
            self.deliver_api_destinations(bus, event)
        return drained

    def deliver_api_destinations(self, bus: str, event: Mapping[str, Any]) -> list[Delivery]:
        """Post `event` to the API destination of each rule on `bus` it matches, through the
        target's input transformer, with its retries; the event to the target's dead-letter
        queue when it cannot be delivered (local/api_destinations.py)."""
        shaped = {k: event.get(k) for k in ("version", "id", "detail-type", "source", "account", "time", "region",
                                             "resources", "detail")}
        done: list[Delivery] = []
        for rule in self._api_targets:
            if rule["bus"] != bus or str(rule["state"]).upper() == "DISABLED" or not matches(rule["pattern"], shaped):
                continue
            target = rule["target"]
            destination = next(d for d in self.api_destinations.values() if d.arn == target["Arn"])
            if target.get("InputTransformer"):
                body = transform(target["InputTransformer"], shaped, rule_arn=rule["arn"], rule_name=rule["name"])
            elif target.get("Input"):
                body = str(target["Input"])
            else:
                body = json.dumps(shaped)
            post = functools.partial(self._post, destination, body, rule, target, shaped, done)
            if self.api_executor is None:
                post()
            else:
                self.api_executor(post)
        return done

    def _post(self, destination: ApiDestination, body: str, rule: Mapping[str, Any], target: Mapping[str, Any],
              event: Mapping[str, Any], done: list[Delivery]) -> None:
        delivery = deliver(destination, body, target.get("RetryPolicy"))
        self.api_deliveries.append(delivery)
        done.append(delivery)
        if not delivery.delivered:
            with self.dead_letter_lock:
                self._api_dead_letter(rule, target, event, delivery)

    def _api_dead_letter(self, rule: Mapping[str, Any], target: Mapping[str, Any], event: Mapping[str, Any],
                         delivery: Delivery) -> None:
        """What EventBridge sends a target's dead-letter queue: the event itself, the error in
        message attributes."""
        dlq = (target.get("DeadLetterConfig") or {}).get("Arn")
        self.dead_letters.append({"function": delivery.destination, "destination": dlq, "message": dict(event)})
        url = self._queue_url_of(dlq) if dlq else None
        if not url:
            return
        status = delivery.status
        attributes = {
            "RULE_ARN": rule["arn"], "TARGET_ARN": str(target["Arn"]),
            "ERROR_CODE": "SDK_CLIENT_ERROR" if status is None or _retried_status(status) else f"HTTP_{status}",
            "ERROR_MESSAGE": (delivery.error or "")[:1000],
            "RETRY_ATTEMPTS": str(max(delivery.attempts - 1, 0)),
        }
        if status is None or _retried_status(status):
            attributes["EXHAUSTED_RETRY_CONDITION"] = "MaximumRetryAttempts"
        self.client("sqs").send_message(
            QueueUrl=url, MessageBody=json.dumps(event),
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v})

    def rules_matching(self, event: Mapping[str, Any], bus: str | None = None) -> list[tuple[str, str]]:
        """(function logical id, event name) of every template rule whose pattern matches."""
        found = []
        for spec in self.functions.values():
            for name, ev in spec.events_of(*BUS_EVENT_TYPES).items():
                props = ev["Properties"]
                if bus is not None and _bus_name(props.get("EventBusName")) != bus:
                    continue
                if str(props.get("State", "ENABLED")).upper() == "DISABLED" or props.get("Enabled") is False:
                    continue
                if matches(props.get("Pattern") or {}, event):
                    found.append((spec.logical_id, name))
        return found

    def _deliver_bus_event(self, bus: str, event: dict[str, Any], raise_errors: bool) -> None:
        lambda_event = {
            k: event.get(k)
            for k in (
                "version",
                "id",
                "detail-type",
                "source",
                "account",
                "time",
                "region",
                "resources",
                "detail",
            )
        }
        for logical_id, name in self.rules_matching(lambda_event, bus):
            props = self.functions[logical_id].events[name]["Properties"]
            payload = _target_input(props, lambda_event)
            self._invoke_async(logical_id, payload, f"bus rule {name}", raise_errors)

    def _invoke_async(self, logical_id: str, payload: Any, source: str, raise_errors: bool) -> None:
        """An asynchronous invocation: Lambda's retries, then the OnFailure destination (or dropped)."""
        spec = self.functions[logical_id]
        for attempt in range(spec.async_retries + 1):
            try:
                self.invoke(logical_id, payload)
                return
            except Exception as error:  # noqa: BLE001 - asynchronous invocation: retried, then dropped
                self._record_error(logical_id, source, error, raise_errors)
                if attempt == spec.async_retries:
                    self._dead_letter(logical_id, spec.async_on_failure,
                                      _async_failure_record(spec, payload, error, attempt + 1))

    def put_event(
        self,
        detail_type: str,
        detail: Mapping[str, Any],
        *,
        source: str = "local.test",
        bus: str | None = None,
    ) -> str:
        """Put one event on a bus of the stack (the only custom bus by default); returns its id."""
        name = bus or next(i["name"] for i in self.resources.values() if i["type"] == "AWS::Events::EventBus")
        result = self.client("events").put_events(
            Entries=[
                {
                    "Source": source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                    "EventBusName": name,
                }
            ]
        )
        if result.get("FailedEntryCount"):
            raise RuntimeError(f"put_events failed: {result['Entries']}")
        return str(result["Entries"][0]["EventId"])

    # ------------------------------------------------------------ queues

    def queue_batches(self, *, raise_errors: bool = True) -> int:
        """Deliver the visible messages of every SQS event source; returns how many were received.
        Failed messages stay invisible until their visibility timeout, as with Lambda."""
        sqs = self.client("sqs")
        count = 0
        for spec in self.functions.values():
            for name, ev in spec.events_of("SQS").items():
                props = ev["Properties"]
                url = self._queue_url_of(props["Queue"])
                if url is None:
                    raise TemplateError(
                        f"{spec.logical_id}.{name}: queue {props['Queue']} is not in the stack"
                    )
                batch_size = min(int(props.get("BatchSize", 10)), 10)
                report = "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])
                while True:
                    messages = sqs.receive_message(
                        QueueUrl=url,
                        MaxNumberOfMessages=batch_size,
                        WaitTimeSeconds=0,
                        AttributeNames=["All"],
                        MessageAttributeNames=["All"],
                    ).get("Messages", [])
                    if not messages:
                        break
                    count += len(messages)
                    records = [self._sqs_record(m, props["Queue"]) for m in messages]
                    failed: set[str] = set()
                    try:
                        result = self.invoke(spec.logical_id, {"Records": records})
                    except Exception as error:  # noqa: BLE001
                        self._record_error(spec.logical_id, f"queue {name}", error, raise_errors)
                        failed = {r["messageId"] for r in records}
                    else:
                        if report and isinstance(result, Mapping):
                            failed = {f.get("itemIdentifier") for f in result.get("batchItemFailures") or []}
                    done = [m for m in messages if m["MessageId"] not in failed]
                    if done:
                        sqs.delete_message_batch(
                            QueueUrl=url,
                            Entries=[
                                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                for i, m in enumerate(done)
                            ],
                        )
        return count

    def _sqs_record(self, message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
        attributes = {k: v for k, v in (message.get("Attributes") or {}).items()}
        message_attributes = {}
        for key, value in (message.get("MessageAttributes") or {}).items():
            message_attributes[key] = {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": value.get("BinaryListValues", []),
                "dataType": value.get("DataType"),
            }
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": self.region,
        }

    # ------------------------------------------------------------ the loop

    def pump(self, max_rounds: int = 100, *, raise_errors: bool = True) -> dict[str, int]:
        """Deliver stream records, bus events and queue messages until nothing new is left.

        Handler exceptions are raised (as HandlerError) unless `raise_errors=False`, in which
        case they are handled as Lambda would (retries, bisection, on-failure destinations)
        and kept in `errors`. Raises NotSettled after `max_rounds` rounds with work left."""
        totals = {"stream_records": 0, "bus_events": 0, "queue_messages": 0, "rounds": 0}
        for _ in range(max_rounds):
            records = self.stream_batches(raise_errors=raise_errors)
            events = len(self.bus_events(raise_errors=raise_errors))
            messages = self.queue_batches(raise_errors=raise_errors)
            if not (records or events or messages):
                return totals
            totals["rounds"] += 1
            totals["stream_records"] += records
            totals["bus_events"] += events
            totals["queue_messages"] += messages
        raise NotSettled(f"still delivering after {max_rounds} rounds: {totals}")

    def scheduled_event(self, logical_id: str, now: datetime | None = None) -> Any:
        """The event the function's schedule sends: its `Input` when set, else a Scheduled Event."""
        spec = self.functions[logical_id]
        schedules = spec.events_of(*SCHEDULE_EVENT_TYPES)
        if not schedules:
            raise TemplateError(f"{logical_id} has no Schedule event")
        name, schedule = next(iter(schedules.items()))
        props = schedule["Properties"]
        if props.get("Input"):
            return json.loads(props["Input"])
        rule = self.resources.get(f"{logical_id}{name}", {}).get("arn") or (
            f"arn:aws:events:{self.region}:{self.account_id}:rule/{self.stack_name}-{logical_id}{name}"
        )
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account_id,
            "time": _iso(now or datetime.now(UTC), millis=False),
            "region": self.region,
            "resources": [rule],
            "detail": {},
        }

    def run_schedule(self, logical_id: str, now: datetime | None = None) -> Any:
        """Invoke a scheduled function now with its schedule's event (its `time` is `now`)."""
        return self.invoke(logical_id, self.scheduled_event(logical_id, now))

    # ------------------------------------------------------------ introspection

    def name_of(self, logical_id: str) -> str:
        return str(self.resources[logical_id]["name"])

    def url_of(self, logical_id: str) -> str:
        return str(self.resources[logical_id]["url"])

    def describe(self) -> dict[str, dict[str, Any]]:
        """Each logical id of the template with its physical name, ARN or URL (JSON-ready)."""
        out: dict[str, dict[str, Any]] = {}
        for logical_id, resource in (self.sam_template.get("Resources") or {}).items():
            if not self.conditions.get(resource.get("Condition", ""), True):
                continue  # its condition is false: not created
            info = self.resources.get(logical_id)
            if info is None:  # SAM resources whose expanded id differs (layers, HttpApi)
                match = next((k for k in self.resources if k.startswith(logical_id)), None)
                info = self.resources.get(match) if match else None
            entry = {"type": resource.get("Type")}
            if info:
                entry.update({k: v for k, v in info.items() if k in ("name", "arn", "url", "stream_arn")})
            out[logical_id] = entry
        return out


def _async_failure_record(spec: FunctionSpec, payload: Any, error: BaseException, invocations: int) -> dict[str, Any]:
    """What Lambda sends to an asynchronous invocation's OnFailure destination."""
    return {
        "version": "1.0",
        "timestamp": _iso(datetime.now(UTC)),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"{spec.arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": invocations,
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__},
    }


def _retried_status(status: int) -> bool:
    from local.api_destinations import RETRIED_STATUS

    return status in RETRIED_STATUS or status >= 500


def _bus_name(value: Any) -> str:
    if not value:
        return "default"
    return str(value).rsplit("/", 1)[-1] if str(value).startswith("arn:") else str(value)


def _target_input(props: Mapping[str, Any], event: dict[str, Any]) -> Any:
    if props.get("Input"):
        return json.loads(props["Input"])
    path = props.get("InputPath")
    if path:
        value: Any = event
        for part in path.removeprefix("$").strip(".").split("."):
            if part:
                value = value.get(part) if isinstance(value, Mapping) else None
        return value
    if props.get("InputTransformer"):
        raise TemplateError("InputTransformer is not supported by the local runner")
    return event


def _iso(moment: datetime, millis: bool = True) -> str:
    moment = moment.astimezone(UTC)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_epoch(value: Any) -> str | None:
    if value is None:
        return None
    return _iso(datetime.fromtimestamp(float(value), UTC))
