"""Replay what a failure destination of the stack holds, then delete each message replayed.

    python -m local.replay --queue <logical id | queue URL> [--stack leadscore] [--dry-run]
    make replay QUEUE=BusDeadLetterQueue [STACK=leadscore] [ARGS=--dry-run]

Works against AWS (the credentials and region of the environment) or the local stack
(`AWS_ENDPOINT_URL`, e.g. `make serve`'s moto on http://127.0.0.1:5000). What each queue
holds and what replaying it does (docs/OPERATIONS.md has the full story):

- `BusDeadLetterQueue`: "Tracking Event"s EventBridge could not deliver to the scoring
  function (the event itself). `ScoreFromBusFailureQueue`: those the function failed on
  after Lambda's retries (Lambda's invocation record, the event in `requestPayload`).
  Replay puts the Segment message back on the bus as "Tracking Event", with its original
  source and time. Collection stores an event once per source and `messageId`, so a replay
  of something that was scored after all changes nothing.
- `AggregateFailureQueue`: stream batches the aggregate function gave up on (Lambda's
  `DDBStreamBatchInfo`: stream, shard, first and last sequence number). Replay reads those
  records back from the stream (DynamoDB keeps them 24 hours) and runs the aggregation on
  them. A record at or below its contact's watermark rebuilds the contact from its stored
  events, so records applied before count once and those never applied count too.
- `DecayDeadLetterQueue`: decay runs that failed (invocation record) or schedule events
  that were not delivered. Replay runs the decay job once, as of now (it is idempotent).
- `RouteDeadLetterQueue`: "Account SDR Ready" events the route function failed on or
  never got. Replay routes the account again (once per account and cycle: a replay of one
  routed meanwhile changes nothing). `RoutingPassDeadLetterQueue`: routing passes that
  failed; replay runs the pass once, as of now.
- `RoutedParkedQueue`: routed messages the aggregate function could not send (after its
  tries), each parked alone (routed-send-parked/v1). `RoutedDeadLetterQueue`: routed
  messages an SDR tool received `maxReceiveCount` times without deleting (fix the consumer
  first). Replay sends each to the routed queue again, to its SDR's group with its own
  deduplication id (a send SQS already has is dropped: once, however often it is replayed),
  unless the account has moved on since (accepted, recycled, re-routed: the table says so);
  such a message is dropped as superseded, as it would tell an SDR about an account that is
  no longer theirs.
- `SlackDeadLetterQueue`: bus events EventBridge could not post to the Slack webhook (the
  event itself; the error in its message attributes). Replay puts each back on the bus with
  the source `leadscore.slack-replay`, which only the Slack rule matches, so Slack gets the
  message (as of when it happened) and nothing else sees the event twice.

Messages are deleted only after their replay succeeded; a failed one stays in the queue
(visible again when the run ends) and the exit status is 1. `--dry-run` shows
what would be done and leaves every message in place.

Aggregation and decay run either in the deployed function (`--via lambda`, a synchronous
invoke: its code, config and role) or in this process (`--via local`: the function's
handler from this repository, with `config/` or `--config`, and the caller's credentials).
The default is `local` when `AWS_ENDPOINT_URL` is set (the local stack has no Lambda),
else `lambda`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
TRACKING_EVENT = "Tracking Event"
SCHEDULED_EVENT = "Scheduled Event"
SDR_READY_EVENT = "Account SDR Ready"
ROUTED_SCHEMA = "account-routed/v1"
PARKED_SCHEMA = "routed-send-parked/v1"
#: the events the Slack rule posts, and the source a replay gives them (only that rule matches it)
SLACK_EVENTS = ("Account Routed", "Routing SLA Breached", "Account Reassigned")
SLACK_REPLAY_SOURCE = "leadscore.slack-replay"
#: How long a received message stays hidden from other readers while it is replayed.
VISIBILITY_SECONDS = 300
#: Records per synchronous invoke of the aggregate function (a stream batch is at most 100).
INVOKE_CHUNK = 100
#: Empty GetRecords pages in a row after which the range is taken as read.
EMPTY_PAGES = 3


class ReplayError(RuntimeError):
    """This message could not be replayed (it stays in its queue)."""


@dataclass
class Summary:
    replayed: int = 0
    failed: int = 0
    dry_run: int = 0
    lines: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)
        print(line, flush=True)


# ---------------------------------------------------------------- the stack's resources


class Stack:
    """Physical names of the stack's resources: CloudFormation first, else the local stack's names."""

    def __init__(self, name: str, session: Any) -> None:
        self.name = name
        self.session = session
        self._clients: dict[str, Any] = {}
        self._physical: dict[str, str | None] = {}

    @property
    def region(self) -> str:
        return str(self.session.region_name or "us-east-1")

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service)
        return self._clients[service]

    def physical_id(self, logical_id: str) -> str | None:
        if logical_id not in self._physical:
            try:
                answer = self.client("cloudformation").describe_stack_resource(
                    StackName=self.name, LogicalResourceId=logical_id)
                self._physical[logical_id] = answer["StackResourceDetail"]["PhysicalResourceId"]
            except Exception:  # noqa: BLE001 - no such stack (the local stack) or no access
                self._physical[logical_id] = None
        return self._physical[logical_id]

    def queue_url(self, queue: str) -> str:
        if queue.startswith(("https://", "http://")):
            return queue
        found = self.physical_id(queue)
        if found:
            return found
        named = template_queue_name(queue, self.name)
        if named:  # the template names it (e.g. RoutedQueue: <stack>-routed.fifo)
            try:
                return str(self.client("sqs").get_queue_url(QueueName=named)["QueueUrl"])
            except Exception:  # noqa: BLE001 - not created here: fall back to the default names
                pass
        prefix = f"{self.name}-{queue}"
        urls = self.client("sqs").list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
        exact = [u for u in urls if u.rsplit("/", 1)[-1] in (prefix, prefix + ".fifo")]
        candidates = exact or [u for u in urls if u.rsplit("/", 1)[-1].startswith(prefix + "-")]
        if len(candidates) != 1:
            raise SystemExit(f"queue {queue!r} of stack {self.name!r}: found {candidates or 'none'}; "
                             "pass --stack or the queue URL")
        return candidates[0]

    def table_name(self) -> str:
        return self.physical_id("Table") or f"{self.name}-Table"

    def bus_name(self) -> str:
        return self.physical_id("EventBus") or f"{self.name}-events"

    def function_name(self, logical_id: str) -> str:
        name = self.physical_id(logical_id)
        if not name:
            raise ReplayError(f"{logical_id} is not a resource of stack {self.name!r}: use --via local")
        return name


def template_queue_name(logical_id: str, stack_name: str, template: Path = REPO_ROOT / "template.yaml") -> str | None:
    """The `QueueName` template.yaml gives queue `logical_id` in stack `stack_name`, if it
    names it (a plain name or a `!Sub` of `${AWS::StackName}`); None when it does not."""
    from local.stack import load_template

    try:
        resource = (load_template(template).get("Resources") or {}).get(logical_id) or {}
    except Exception:  # noqa: BLE001 - no template here (an installed tool): no name from it
        return None
    name = (resource.get("Properties") or {}).get("QueueName") if resource.get("Type") == "AWS::SQS::Queue" else None
    if isinstance(name, dict) and isinstance(name.get("Fn::Sub"), str):
        name = name["Fn::Sub"].replace("${AWS::StackName}", stack_name)
    return name if isinstance(name, str) and "${" not in name else None


# ---------------------------------------------------------------- what a message holds


def classify(body: Mapping[str, Any]) -> tuple[str, Any]:
    """(kind, payload) of a failure-queue message: `tracking` (an EventBridge event),
    `stream` (DDBStreamBatchInfo), `decay` (a scheduled event), `parked` (a routed send the
    aggregate function parked), `routed` (a routed message from the routed DLQ) or `slack` (an
    event the Slack rule could not post)."""
    if "DDBStreamBatchInfo" in body:
        return "stream", body["DDBStreamBatchInfo"]
    if body.get("schema") == PARKED_SCHEMA:
        return "parked", body
    if body.get("schema") == ROUTED_SCHEMA:
        return "routed", body
    event: Any = body
    if "requestContext" in body and "requestPayload" in body:  # Lambda's async invocation record
        event = body["requestPayload"]
    if isinstance(event, Mapping):
        detail_type = event.get("detail-type")
        if detail_type == TRACKING_EVENT:
            return "tracking", event
        if detail_type == SDR_READY_EVENT:
            return "route", event
        if detail_type in SLACK_EVENTS:
            return "slack", event
        if detail_type == SCHEDULED_EVENT:
            # which schedule: its rule (resources) or the failed function (the record) names it
            return ("routing_pass" if "RoutingPass" in json.dumps(body) else "decay"), event
    raise ReplayError(f"not a message this tool knows how to replay: {json.dumps(body)[:200]}")


# ---------------------------------------------------------------- replays


def replay_tracking(stack: Stack, event: Mapping[str, Any], bus: str | None, dry_run: bool) -> str:
    """Put the Segment message back on the bus as it came (source, time, detail)."""
    bus_name = bus or stack.bus_name()
    detail = event.get("detail")
    message_id = detail.get("messageId") if isinstance(detail, Mapping) else None
    what = f"Tracking Event {message_id or '(no messageId)'} from {event.get('source')} -> bus {bus_name}"
    if dry_run:
        return what
    entry: dict[str, Any] = {
        "EventBusName": bus_name,
        "Source": str(event.get("source") or "leadscore.replay"),
        "DetailType": TRACKING_EVENT,
        "Detail": json.dumps(detail),
    }
    _put_back(stack, entry, event)
    return what


def replay_slack(stack: Stack, event: Mapping[str, Any], bus: str | None, dry_run: bool) -> str:
    """Put an event the Slack rule could not post back on the bus for that rule alone."""
    bus_name = bus or stack.bus_name()
    found = event.get("detail")
    detail: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    what = (f"{event.get('detail-type')} of {detail.get('accountId')} (cycle {detail.get('cycle')}) -> bus "
            f"{bus_name} as {SLACK_REPLAY_SOURCE} (the Slack rule)")
    if dry_run:
        return what
    _put_back(stack, {"EventBusName": bus_name, "Source": SLACK_REPLAY_SOURCE,
                      "DetailType": str(event.get("detail-type")), "Detail": json.dumps(detail)}, event)
    return what


def _put_back(stack: Stack, entry: dict[str, Any], event: Mapping[str, Any]) -> None:
    """One PutEvents of `entry`, stamped with the dead-lettered event's own time."""
    if event.get("time"):
        entry["Time"] = datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
    answer = stack.client("events").put_events(Entries=[entry])
    if answer.get("FailedEntryCount"):
        raise ReplayError(f"the bus refused the event: {answer.get('Entries')}")


def _sequence(value: str) -> int:
    return int(value)


def stream_records(stack: Stack, info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The records of `info`'s range, read back from the stream, in Lambda's event shape."""
    streams = stack.client("dynamodbstreams")
    stream_arn, shard_id = info["streamArn"], info["shardId"]
    first, last = _sequence(info["startSequenceNumber"]), _sequence(info["endSequenceNumber"])
    try:
        iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard_id,
                                              ShardIteratorType="AT_SEQUENCE_NUMBER",
                                              SequenceNumber=info["startSequenceNumber"])["ShardIterator"]
    except Exception as error:  # noqa: BLE001 - trimmed (older than 24 h) or the shard is gone
        raise ReplayError(f"cannot read shard {shard_id} from {info['startSequenceNumber']}: {error} "
                          "(stream records are kept 24 hours; see docs/OPERATIONS.md)") from error
    records: list[dict[str, Any]] = []
    region = stream_arn.split(":")[3]
    empty_pages = 0
    while iterator and empty_pages < EMPTY_PAGES:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        empty_pages = 0 if page["Records"] else empty_pages + 1
        iterator = page.get("NextShardIterator")
        for record in page["Records"]:
            number = _sequence(record["dynamodb"]["SequenceNumber"])
            if number >= first and number <= last:
                records.append(lambda_stream_record(record, stream_arn, region))
            if number >= last:
                iterator = None
                break
    if not records or _sequence(records[0]["dynamodb"]["SequenceNumber"]) != first:
        raise ReplayError(f"the records from {info['startSequenceNumber']} are no longer in the stream "
                          "(kept 24 hours; see docs/OPERATIONS.md)")
    return records


def lambda_stream_record(record: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A DynamoDB Streams record as Lambda passes it to a function."""
    body = dict(record["dynamodb"])
    created = body.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        body["ApproximateCreationDateTime"] = int(created.timestamp())
    keep = ("ApproximateCreationDateTime", "Keys", "NewImage", "OldImage", "SequenceNumber", "SizeBytes",
            "StreamViewType")
    shaped = {
        "eventID": record.get("eventID"),
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": {k: body[k] for k in keep if k in body},
        "eventSourceARN": stream_arn,
    }
    if record.get("userIdentity"):
        shaped["userIdentity"] = record["userIdentity"]
    return shaped


def _lambda_json(value: Any) -> Any:
    """A value JSON has no form for, as Lambda's event JSON holds it: a Binary (an account's
    compressed body in a stream image) as base64 text, the rest as text."""
    if isinstance(value, bytes | bytearray):
        import base64  # cold start: a replay to the deployed functions only

        return base64.b64encode(value).decode("ascii")
    return str(value)


def _invoke(stack: Stack, logical_id: str, payload: Any, via: str, config_dir: str | None) -> Any:
    """Run the function on `payload`, synchronously: the deployed one (`lambda`) or its handler
    from this repository in this process (`local`). Raises ReplayError when it fails."""
    if via == "local":
        try:
            return _local_handler(stack, logical_id, payload, config_dir)
        except Exception as error:  # noqa: BLE001 - the handler's failure is this replay's failure
            raise ReplayError(f"{logical_id} failed: {error!r}") from error
    answer = stack.client("lambda").invoke(FunctionName=stack.function_name(logical_id),
                                           InvocationType="RequestResponse",
                                           Payload=json.dumps(payload, default=_lambda_json).encode())
    result = json.loads(answer["Payload"].read() or b"null")
    if answer.get("FunctionError"):
        raise ReplayError(f"{logical_id} failed: {json.dumps(result)[:500]}")
    return result


def _local_handler(stack: Stack, logical_id: str, payload: Any, config_dir: str | None) -> Any:
    """The function's handler (its CodeUri in template.yaml) called here, with the environment
    the template gives it: the stack's table and bus, the rules in `config_dir`."""
    import importlib.util

    from leadscore.adapters import runtime

    from local.apigw import LambdaContext
    from local.stack import load_template

    template = load_template(REPO_ROOT / "template.yaml")
    props = template["Resources"][logical_id]["Properties"]
    handler = str(props.get("Handler") or template["Globals"]["Function"]["Handler"])
    module_name, _, function_name = handler.rpartition(".")
    path = REPO_ROOT / str(props["CodeUri"]) / (module_name.replace(".", "/") + ".py")
    env = {
        "TABLE_NAME": stack.table_name(),
        "EVENT_BUS_NAME": stack.bus_name(),
        "ROUTED_QUEUE_URL": stack.queue_url("RoutedQueue"),
        "LEADSCORE_CONFIG_DIR": config_dir or os.environ.get("LEADSCORE_CONFIG_DIR") or str(REPO_ROOT / "config"),
        "POWERTOOLS_SERVICE_NAME": "leadscore",
        "POWERTOOLS_METRICS_NAMESPACE": "LeadScore",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    runtime.reset()
    try:
        spec = importlib.util.spec_from_file_location(f"_replay_{logical_id}", path)
        if spec is None or spec.loader is None:
            raise ReplayError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        context = LambdaContext(function_name=f"{stack.name}-{logical_id}", region=stack.region)
        return getattr(module, function_name)(payload, context)
    finally:
        runtime.reset()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def replay_stream(stack: Stack, info: Mapping[str, Any], via: str, config_dir: str | None,
                  dry_run: bool) -> str:
    """Re-read the batch's records and run the aggregate function on them again (records
    at or below a contact's watermark rebuild it from its stored events)."""
    what = (f"stream batch of {info.get('batchSize')} records, shard {info.get('shardId')}, "
            f"{info.get('startSequenceNumber')}..{info.get('endSequenceNumber')}")
    records = stream_records(stack, info)
    what += f" ({len(records)} still in the stream) -> AggregateFunction via {via}"
    if dry_run:
        return what
    failed: list[str] = []
    for start in range(0, len(records), INVOKE_CHUNK):
        result = _invoke(stack, "AggregateFunction", {"Records": records[start:start + INVOKE_CHUNK]},
                         via, config_dir)
        failed += [f.get("itemIdentifier") for f in (result or {}).get("batchItemFailures") or []]
    if failed:
        raise ReplayError(f"aggregation failed again for sequence numbers {failed[:10]}")
    return what


def replay_function(stack: Stack, logical_id: str, event: Mapping[str, Any], via: str, config_dir: str | None,
                    dry_run: bool) -> str:
    """Invoke the function on the event again: routing (`Account SDR Ready`: an account is
    routed once per cycle, so a replay of a routed one changes nothing) or the routing pass
    (as of now)."""
    what = f"{event.get('detail-type')} of {event.get('time')} -> {logical_id} via {via}"
    if dry_run:
        return what
    result = _invoke(stack, logical_id, dict(event), via, config_dir)
    return f"{what}: {json.dumps(result, default=str)[:300]}"


def routed_send(kind: str, payload: Mapping[str, Any], attributes: Mapping[str, str]) -> Any:
    """The routed send a `parked` envelope holds, or a routed DLQ message is (its group and
    deduplication id are the message's own FIFO attributes)."""
    from leadscore.services.outbox import RoutedSend, parked_send

    if kind == "parked":
        return parked_send(payload)
    group = attributes.get("MessageGroupId") or str((payload.get("sdr") or {}).get("id") or "")
    dedup = attributes.get("MessageDeduplicationId")
    if not group or not dedup:
        raise ReplayError("a routed message without its MessageGroupId / MessageDeduplicationId")
    return RoutedSend(dict(payload), group, dedup, account_id=str(payload.get("accountId")),
                      cycle=int(payload.get("cycle") or 0))


def replay_routed(stack: Stack, send: Any, dry_run: bool) -> str:
    """Send a routed message to the routed queue again (its SDR's group, its deduplication
    id), if the account is still in that routing; else drop it as superseded."""
    from leadscore.adapters.bus import RoutedQueue
    from leadscore.adapters.storage import Store
    from leadscore.services.outbox import still_owed

    what = f"routed message {send.deduplication_id} of {send.account_id} -> SDR {send.group_id}, RoutedQueue"
    account = Store(stack.table_name(), client=stack.client("dynamodb")).load_account(send.account_id)
    why = still_owed(account, send)
    if why:
        return f"{what}: superseded, not sent ({why})"
    if not dry_run:
        RoutedQueue(stack.queue_url("RoutedQueue"), client=stack.client("sqs")).send(
            send.body, group_id=send.group_id, deduplication_id=send.deduplication_id)
    return what


def replay_decay(stack: Stack, event: Mapping[str, Any], via: str, config_dir: str | None,
                 dry_run: bool) -> str:
    """Run the decay job once, as of now: what the failed run would have done, and more."""
    what = f"decay run (failed or undelivered run of {event.get('time')}) -> DecayFunction via {via}"
    if dry_run:
        return what
    result = _invoke(stack, "DecayFunction", dict(event), via, config_dir)
    return f"{what}: {json.dumps(result, default=str)}"


# ---------------------------------------------------------------- the loop


def replay_queue(stack: Stack, queue_url: str, *, via: str, dry_run: bool = False, bus: str | None = None,
                 config_dir: str | None = None, limit: int | None = None) -> Summary:
    """Replay every message of the queue (or `limit` of them); delete each one that succeeded."""
    summary = Summary()
    sqs = stack.client("sqs")
    held: list[str] = []  # receipt handles of messages left in place (failed, or a dry run)
    seen = 0
    while limit is None or seen < limit:
        wanted = 10 if limit is None else max(1, min(10, limit - seen))
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=wanted, WaitTimeSeconds=1,
                                       VisibilityTimeout=VISIBILITY_SECONDS, AttributeNames=["All"],
                                       MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            break
        for message in messages:
            seen += 1
            try:
                kind, payload = classify(json.loads(message["Body"]))
                if kind == "tracking":
                    what = replay_tracking(stack, payload, bus, dry_run)
                elif kind == "slack":
                    what = replay_slack(stack, payload, bus, dry_run)
                elif kind == "stream":
                    what = replay_stream(stack, payload, via, config_dir, dry_run)
                elif kind == "route":
                    what = replay_function(stack, "RouteFunction", payload, via, config_dir, dry_run)
                elif kind == "routing_pass":
                    what = replay_function(stack, "RoutingPassFunction", payload, via, config_dir, dry_run)
                elif kind in ("parked", "routed"):
                    what = replay_routed(stack, routed_send(kind, payload, message.get("Attributes") or {}),
                                         dry_run)
                else:
                    what = replay_decay(stack, payload, via, config_dir, dry_run)
            except Exception as error:  # noqa: BLE001 - reported; the message stays for a later try
                summary.failed += 1
                held.append(message["ReceiptHandle"])
                summary.say(f"FAILED  {message['MessageId']}: {error}")
                continue
            if dry_run:
                summary.dry_run += 1
                held.append(message["ReceiptHandle"])
                summary.say(f"would replay {message['MessageId']}: {what}")
            else:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                summary.replayed += 1
                summary.say(f"replayed {message['MessageId']}: {what}")
    for handle in held:  # visible again at once: the next run (or a dry run) sees them
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue", required=True,
                        help="logical id of the failure queue (e.g. BusDeadLetterQueue) or its URL")
    parser.add_argument("--stack", default=os.environ.get("STACK_NAME", "leadscore"),
                        help="the stack's name (default: $STACK_NAME or leadscore, the local stack's)")
    parser.add_argument("--dry-run", action="store_true", help="show what would be replayed; change nothing")
    parser.add_argument("--via", choices=("lambda", "local"),
                        default="local" if os.environ.get("AWS_ENDPOINT_URL") else "lambda",
                        help="run aggregation and decay in the deployed function or in this process")
    parser.add_argument("--bus", help="event bus to put tracking events on (default: the stack's)")
    parser.add_argument("--config", help="rules folder for --via local (default: config/)")
    parser.add_argument("--limit", type=int, help="replay at most this many messages")
    args = parser.parse_args(argv)

    import boto3

    stack = Stack(args.stack, boto3.Session())
    url = stack.queue_url(args.queue)
    print(f"{'dry run: ' if args.dry_run else ''}replaying {url}", flush=True)
    summary = replay_queue(stack, url, via=args.via, dry_run=args.dry_run, bus=args.bus,
                           config_dir=args.config, limit=args.limit)
    print(f"{summary.replayed} replayed, {summary.dry_run} would be replayed, "
          f"{summary.failed} failed (left in the queue)")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
