"""Read the routed queue as one SDR would: their accounts, newest first, and acknowledge them.

    python -m local.inbox --sdr ana [--stack leadscore] [--ack all | <accountId>...] [--json]
    make inbox SDR=ana [ACK="all" | ACK="acme.com globex.com"] [STACK=leadscore]

Works against AWS (the credentials and region of the environment; the queue is the stack's
`RoutedQueue`, found through CloudFormation) or the local stack (`AWS_ENDPOINT_URL`, as
`make serve` prints it; the queue is the one template.yaml names). `--queue` takes another
logical id or a queue URL.

Each message shows the account (name and id), its score = fit + engagement (velocity
beside it), the threshold, territory and routing mode, the cycle, when it was routed, the
SLA due time ("OVERDUE" once past, as of `--now`, `LEADSCORE_NOW` or the clock), the
reasons (rule, points, and the contact behind each, by name, email and title from the
message's own `contacts`) and the top contacts.

How one SDR's messages are read out of the shared FIFO queue (MessageGroupId = SDR id):
SQS cannot receive by group, so the tool receives batches of 10 with a short visibility
timeout (30 s) until a receive returns nothing (at most 100 rounds), keeps this SDR's
messages and makes every other SDR's visible again (visibility 0) as soon as the scan
ends, seconds later. They are held during the scan on purpose: released at once, they
would come back first in the next receive (they head their groups) and the scan could
never get past them. While a message is held its whole group is blocked, so one run
shows at most the first batch of an SDR's group (10) until some are acknowledged.

`--ack all` deletes every readable message shown; `--ack <accountId>...` deletes those
accounts' messages; the rest become visible again at once. Without `--ack` nothing is
deleted. A message that is not `account-routed/v1` is shown as unreadable and left in the
queue (after the queue's maxReceiveCount receives SQS moves it to the dead-letter queue).
Exit status: 0; 1 when an acknowledged account was not in the inbox or a delete failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.replay import Stack

ROUTED_QUEUE = "RoutedQueue"
SCHEMA = "account-routed/v1"
#: Messages per receive (the SQS maximum).
BATCH = 10
#: How long a received message stays hidden while the tool reads (and acknowledges) it.
VISIBILITY_SECONDS = 30
#: Receives after which the scan stops even if the queue still answers.
MAX_ROUNDS = 100
TOP_CONTACTS = 5
ACK_ALL = "all"


@dataclass
class Received:
    """One message of the queue, as received (body parsed when it is `account-routed/v1`)."""

    message_id: str
    receipt_handle: str
    group: str
    raw: str
    receive_count: int
    sent_ms: int
    body: dict[str, Any] | None = None
    problem: str | None = None

    @property
    def account_id(self) -> str | None:
        return str(self.body["accountId"]) if self.body is not None else None


@dataclass
class Inbox:
    sdr: str
    queue_url: str
    now: datetime
    messages: list[Received] = field(default_factory=list)
    """This SDR's readable messages, newest first (by routedAt)."""
    unreadable: list[Received] = field(default_factory=list)
    others: int = 0
    """Other SDRs' messages received during the scan (made visible again)."""
    complete: bool = True
    """False when the scan stopped after MAX_ROUNDS with the queue still answering."""
    acknowledged: list[Received] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    max_receive_count: int | None = None


# ---------------------------------------------------------------- reading the queue


def parse_body(raw: str) -> tuple[dict[str, Any] | None, str | None]:
    """(body, None) for an `account-routed/v1` message, else (None, what is wrong)."""
    try:
        body = json.loads(raw)
    except ValueError as error:
        return None, f"not JSON ({error})"
    if not isinstance(body, dict):
        return None, f"not a JSON object ({type(body).__name__})"
    if body.get("schema") != SCHEMA:
        return None, f"schema {body.get('schema')!r}, not {SCHEMA!r}"
    if not isinstance(body.get("accountId"), str) or not body["accountId"]:
        return None, "no accountId"
    return body, None


def _received(message: Mapping[str, Any]) -> Received:
    attributes = message.get("Attributes") or {}
    item = Received(
        message_id=str(message["MessageId"]),
        receipt_handle=str(message["ReceiptHandle"]),
        group=str(attributes.get("MessageGroupId", "")),
        raw=str(message.get("Body", "")),
        receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
        sent_ms=int(attributes.get("SentTimestamp", 0)),
    )
    item.body, item.problem = parse_body(item.raw)
    return item


def scan(sqs: Any, queue_url: str, sdr: str, *, wait_seconds: int, visibility: int = VISIBILITY_SECONDS,
         max_rounds: int = MAX_ROUNDS) -> tuple[list[Received], list[str], bool]:
    """Receive until the queue has nothing more to give: (this SDR's messages, receipt
    handles of the others', complete). Everything received stays hidden until released."""
    mine: dict[str, Received] = {}
    others: dict[str, str] = {}
    for _ in range(max_rounds):
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=BATCH, VisibilityTimeout=visibility,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["MessageGroupId", "ApproximateReceiveCount", "SentTimestamp"],
        ).get("Messages", [])
        if not messages:
            return list(mine.values()), list(others.values()), True
        for message in messages:
            item = _received(message)
            if item.group == sdr:
                mine[item.message_id] = item  # received again (a slow scan): the newest handle
            else:
                others[item.message_id] = item.receipt_handle
    return list(mine.values()), list(others.values()), False


def release(sqs: Any, queue_url: str, handles: Iterable[str]) -> list[str]:
    """Make the messages visible again at once; what could not be released (they come back
    when their visibility timeout ends)."""
    failures: list[str] = []
    pending = list(handles)
    for start in range(0, len(pending), BATCH):
        chunk = pending[start:start + BATCH]
        answer = sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)])
        failures += [f"release failed ({f.get('Code')}): {f.get('Message')}" for f in answer.get("Failed", [])]
    return failures


def delete(sqs: Any, queue_url: str, items: Sequence[Received]) -> tuple[list[Received], list[str]]:
    """Delete the messages by receipt handle: (deleted, failures)."""
    deleted: list[Received] = []
    failures: list[str] = []
    for start in range(0, len(items), BATCH):
        chunk = list(items[start:start + BATCH])
        entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)]
        answer = sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
        failed = {f["Id"]: f for f in answer.get("Failed", [])}
        for i, item in enumerate(chunk):
            if str(i) in failed:
                failures.append(f"delete of {item.account_id} ({item.message_id}) failed: "
                                f"{failed[str(i)].get('Code')} {failed[str(i)].get('Message')}")
            else:
                deleted.append(item)
    return deleted, failures


def max_receive_count(sqs: Any, queue_url: str) -> int | None:
    """The queue's redrive maxReceiveCount (None: no redrive policy, or not allowed to ask)."""
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])["Attributes"]
        return int(json.loads(attributes["RedrivePolicy"])["maxReceiveCount"])
    except Exception:  # noqa: BLE001 - only used for a warning
        return None


def _newest_first(item: Received) -> tuple[datetime, int]:
    routed = _moment((item.body or {}).get("routedAt"))
    return routed or datetime.fromtimestamp(item.sent_ms / 1000, UTC), item.sent_ms


def read_inbox(sqs: Any, queue_url: str, sdr: str, *, now: datetime, ack: Sequence[str] = (),
               wait_seconds: int = 0, max_rounds: int = MAX_ROUNDS) -> Inbox:
    """Read `sdr`'s messages; delete those `ack` names (`all`, or account ids); leave every
    other message visible again. Never raises for a message's content."""
    inbox = Inbox(sdr=sdr, queue_url=queue_url, now=now, max_receive_count=max_receive_count(sqs, queue_url))
    mine, others, inbox.complete = scan(sqs, queue_url, sdr, wait_seconds=wait_seconds, max_rounds=max_rounds)
    held = [m.receipt_handle for m in mine]
    try:
        inbox.others = len(others)
        inbox.failures += release(sqs, queue_url, others)  # other SDRs' tools see them again now
        inbox.messages = sorted((m for m in mine if m.body is not None), key=_newest_first, reverse=True)
        inbox.unreadable = sorted((m for m in mine if m.body is None), key=lambda m: m.sent_ms, reverse=True)
        wanted = [a for a in ack if a != ACK_ALL]
        chosen = inbox.messages if ACK_ALL in ack else [m for m in inbox.messages if m.account_id in wanted]
        shown = {m.account_id for m in inbox.messages}
        inbox.not_found = [a for a in dict.fromkeys(wanted) if a not in shown]
        inbox.acknowledged, failures = delete(sqs, queue_url, chosen) if chosen else ([], [])
        inbox.failures += failures
        deleted = {m.receipt_handle for m in inbox.acknowledged}
        held = [h for h in held if h not in deleted]
    finally:
        inbox.failures += release(sqs, queue_url, held)  # not acknowledged: visible again now
    return inbox


# ---------------------------------------------------------------- showing it


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "?" if value is None else str(value)
    return f"{round(float(value), 2):g}"


def _signed(value: Any) -> str:
    positive = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    return ("+" if positive else "") + _num(value)


def _span(seconds: float) -> str:
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def sla(body: Mapping[str, Any], now: datetime) -> tuple[str, bool]:
    """("due 2026-11-24T10:00:00Z (in 1d 0h)", overdue)."""
    raw = body.get("slaDueAt")
    due = _moment(raw)
    if due is None:
        return f"SLA due {raw or 'unknown'}", False
    left = (due - now).total_seconds()
    if left <= 0:
        return f"SLA due {raw}  OVERDUE by {_span(left)}", True
    return f"SLA due {raw}  (in {_span(left)})", False


def _contacts(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = body.get("contacts")
    return [c for c in found if isinstance(c, Mapping)] if isinstance(found, list) else []


def contact_label(contact: Mapping[str, Any] | None, contact_id: Any = None) -> str:
    """Who a contact is: name (if the message has one), email, title; else its id."""
    if not contact:
        return str(contact_id) if contact_id else "(the account)"
    name, email, title = contact.get("name"), contact.get("email"), contact.get("title")
    who = f"{name} <{email}>" if name and email else str(name or email or contact.get("contactId") or contact_id)
    return f"{who}, {title}" if title else who


def reasons(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The reasons, biggest first, each with its contact resolved from the message's `contacts`."""
    by_id = {str(c.get("contactId")): c for c in _contacts(body)}
    lines = [r for r in body.get("reasons") or [] if isinstance(r, Mapping)]
    resolved = [{**r, "contact": contact_label(by_id.get(str(r.get("contactId"))), r.get("contactId"))} for r in lines]
    return sorted(resolved, key=lambda r: -float(r["points"]) if isinstance(r.get("points"), int | float) else 0.0)


def render_message(index: int, body: Mapping[str, Any], now: datetime) -> list[str]:
    due, overdue = sla(body, now)
    velocity = body.get("velocity")
    score = (f"score {_num(body.get('score'))} = fit {_num(body.get('fit'))} + engagement "
             f"{_num(body.get('engagement'))}" + (f"   (velocity {_num(velocity)})" if velocity is not None else "")
             + f"   threshold {_num(body.get('threshold'))}")
    lines = [
        f"{index}. {body.get('accountName') or body.get('domain') or body['accountId']} ({body['accountId']})"
        f"   cycle {body.get('cycle', '?')}" + ("   ** OVERDUE **" if overdue else ""),
        f"   {score}",
        f"   territory {body.get('territory') or '-'}, routing {body.get('routing') or '-'}; "
        f"routed {body.get('routedAt') or '?'}",
        f"   {due}",
    ]
    why = reasons(body)
    if why:
        lines.append("   why:")
        width = max(len(str(r.get("rule"))) for r in why)
        lines += [f"     {_signed(r.get('points')):>7}  {str(r.get('rule')):<{width}}  {r['contact']}" for r in why]
    contacts = _contacts(body)[:TOP_CONTACTS]
    if contacts:
        lines.append("   top contacts:")
        lines += [f"     {_num(c.get('score')):>6}  {contact_label(c)}"
                  + (f"  ({c['persona']})" if c.get("persona") else "") for c in contacts]
    return lines


def render(inbox: Inbox) -> str:
    sdr = next((m.body["sdr"] for m in inbox.messages if m.body and isinstance(m.body.get("sdr"), Mapping)), None)
    who = inbox.sdr + (f" ({sdr.get('name')} <{sdr.get('email')}>)" if sdr and sdr.get("name") else "")
    lines = [f"Inbox of {who} as of {inbox.now.strftime('%Y-%m-%dT%H:%M:%SZ')}", f"queue {inbox.queue_url}", ""]
    if not inbox.messages and not inbox.unreadable:
        lines.append(f"The inbox is empty: no routed accounts for {inbox.sdr}.")
    elif inbox.messages:
        overdue = sum(sla(m.body, inbox.now)[1] for m in inbox.messages if m.body)
        lines.append(f"{len(inbox.messages)} routed account(s), newest first"
                     + (f", {overdue} overdue" if overdue else "") + ":")
        for index, message in enumerate(inbox.messages, 1):
            lines += ["", *render_message(index, message.body or {}, inbox.now)]
            if inbox.max_receive_count and message.receive_count >= inbox.max_receive_count - 1:
                lines.append(f"   ! received {message.receive_count} times: after {inbox.max_receive_count} "
                             "SQS moves it to the dead-letter queue; acknowledge it")
    for message in inbox.unreadable:
        lines += ["", f"UNREADABLE message {message.message_id} ({message.problem}); left in the queue:",
                  f"   {message.raw[:200]!r}"]
    lines.append("")
    if inbox.acknowledged:
        lines.append("Acknowledged (deleted from the queue): "
                     + ", ".join(str(m.account_id) for m in inbox.acknowledged))
    for account_id in inbox.not_found:
        lines.append(f"Not in this inbox, nothing acknowledged: {account_id}")
    kept = len(inbox.messages) - len(inbox.acknowledged)
    if kept:
        lines.append(f"{kept} message(s) left in the queue, visible again"
                     + ("" if inbox.acknowledged else " (acknowledge with --ack all | <accountId>...)"))
    if not inbox.complete:
        lines.append(f"Stopped after {MAX_ROUNDS} receives: the queue may hold more.")
    lines += [f"WARNING: {failure}" for failure in inbox.failures]
    return "\n".join(lines)


def as_json(inbox: Inbox) -> dict[str, Any]:
    return {
        "sdr": inbox.sdr,
        "queueUrl": inbox.queue_url,
        "now": inbox.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "messages": [{**(m.body or {}), "messageId": m.message_id, "receiveCount": m.receive_count,
                      "overdue": sla(m.body or {}, inbox.now)[1], "reasons": reasons(m.body or {})}
                     for m in inbox.messages],
        "unreadable": [{"messageId": m.message_id, "problem": m.problem, "body": m.raw} for m in inbox.unreadable],
        "acknowledged": [m.account_id for m in inbox.acknowledged],
        "notFound": inbox.not_found,
        "otherSdrsMessages": inbox.others,
        "complete": inbox.complete,
        "failures": inbox.failures,
    }


# ---------------------------------------------------------------- the command


def _now(text: str | None) -> datetime:
    value = text or os.environ.get("LEADSCORE_NOW")
    if not value:
        return datetime.now(UTC)
    moment = _moment(value)
    if moment is None:
        raise SystemExit(f"--now / LEADSCORE_NOW: not an ISO-8601 moment: {value!r}")
    return moment


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.inbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sdr", required=True, help="the SDR's id (their messages' MessageGroupId)")
    parser.add_argument("--stack", default=os.environ.get("STACK_NAME", "leadscore"),
                        help="the stack's name (default: $STACK_NAME or leadscore, the local stack's)")
    parser.add_argument("--queue", default=ROUTED_QUEUE, help="logical id or URL of the queue (default: RoutedQueue)")
    parser.add_argument("--ack", nargs="+", default=[], metavar="all|ACCOUNT_ID",
                        help="delete these accounts' messages (all: every message shown)")
    parser.add_argument("--json", action="store_true", help="print the inbox as JSON")
    parser.add_argument("--now", help="the moment SLA due times are measured against (default: "
                                      "$LEADSCORE_NOW, else the clock)")
    parser.add_argument("--wait", type=int, choices=range(0, 21), metavar="0-20",
                        default=0 if os.environ.get("AWS_ENDPOINT_URL") else 1,
                        help="receive wait time in seconds (default: 1 on AWS, 0 on a local endpoint)")
    args = parser.parse_args(argv)
    ack = [a for value in args.ack for a in value.replace(",", " ").split()]

    import boto3

    stack = Stack(args.stack, boto3.Session())
    url = stack.queue_url(args.queue)
    inbox = read_inbox(stack.client("sqs"), url, args.sdr, now=_now(args.now), ack=ack, wait_seconds=args.wait)
    print(json.dumps(as_json(inbox), indent=2, default=str) if args.json else render(inbox), flush=True)
    return 1 if inbox.not_found or inbox.failures else 0


if __name__ == "__main__":
    sys.exit(main())
