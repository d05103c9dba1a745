"""An SDR's inbox: what was assigned to them, beside what the routed queue holds, read
without changing anybody's delivery.

    python -m local.inbox --sdr ana [--stack leadscore] [--limit 50] [--json]
    make inbox SDR=ana [STACK=leadscore] [ARGS=--json]

Works against AWS (the credentials and region of the environment; the table and the queue
of the stack, found through CloudFormation) or the local stack (`AWS_ENDPOINT_URL`, as
`make serve` prints it).

The inbox comes from the table, not from the queue: one Query on the OwnerIndex (each
assignment carries the SDR who holds its cycle now, so an SLA re-route moves it to the new
SDR's inbox), then the accounts in one BatchGetItem. Each open account (routed to this SDR
in its current cycle) is shown as its `account-routed/v1` message would carry it, valued as
of now: the score = fit + engagement (velocity beside it), the threshold, territory and
routing mode, the cycle, when it was routed and why there (the CRM owner, the previous
owner or the pool's round-robin; who was passed over and why), the SLA due time ("OVERDUE"
once past, as of `--now`, `LEADSCORE_NOW` or the clock), the reasons (rule, points, the contact behind each)
and the top contacts. Accounts this SDR held whose cycle closed (accepted, recycled, moved
on) are listed by state.

The queue is only counted (messages, in flight, in its dead-letter queue), never received
from: a receive would raise every message's receive count and hide it from its real
consumer (the one dispatcher, README "Consuming the routed queue"). The tool deletes
nothing; an SDR accepts an account with feedback (`POST /v1/accounts/{id}/feedback`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.replay import Stack

ROUTED_QUEUE = "RoutedQueue"
TOP_CONTACTS = 5
#: Assignments read at most (newest first).
LIMIT = 50


@dataclass
class Inbox:
    sdr: str
    table: str
    queue_url: str | None
    now: datetime
    sdr_card: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    """This SDR's open accounts as `account-routed/v1` bodies valued now, newest first."""
    closed: list[dict[str, Any]] = field(default_factory=list)
    """Accounts this SDR holds the assignment of whose cycle is no longer routed to them."""
    queue: dict[str, int | None] = field(default_factory=dict)
    complete: bool = True
    """False when `limit` assignments were read: older ones are not shown."""


# ---------------------------------------------------------------- reading


def _session() -> Any:
    import boto3

    return boto3.Session()


def queue_counts(sqs: Any, queue_url: str) -> dict[str, int | None]:
    """The queue's approximate counts and its dead-letter queue's (None: not known). No receive."""
    def count(url: str, name: str) -> int | None:
        try:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[name, "RedrivePolicy"])
            return int(attributes["Attributes"][name])
        except Exception:  # noqa: BLE001 - shown as unknown
            return None

    counts = {"messages": count(queue_url, "ApproximateNumberOfMessages"),
              "inFlight": count(queue_url, "ApproximateNumberOfMessagesNotVisible"), "deadLetters": None}
    try:
        policy = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])["Attributes"]
        name = json.loads(policy["RedrivePolicy"])["deadLetterTargetArn"].rsplit(":", 1)[-1]
        counts["deadLetters"] = count(sqs.get_queue_url(QueueName=name)["QueueUrl"], "ApproximateNumberOfMessages")
    except Exception:  # noqa: BLE001 - no redrive policy, or not allowed to ask
        pass
    return counts


def read_inbox(store: Any, sdr: str, *, now: datetime, scoring: Any, routing: Any, limit: int = LIMIT) -> Inbox:
    """`sdr`'s inbox from their assignments (`store`: a `leadscore.adapters.storage.Store`)."""
    from leadscore.services.outbox import routed_message

    known = routing.sdr_by_id.get(sdr)
    card = {"id": sdr, "name": known.name if known else None, "email": known.email if known else None}
    inbox = Inbox(sdr=sdr, table=store.table_name, queue_url=None, now=now, sdr_card=card)
    assignments = store.query_assigned(sdr, limit=limit)
    inbox.complete = len(assignments) < limit
    accounts = store.load_accounts({a.account_id for a in assignments}) if assignments else {}
    for assignment in assignments:
        account = accounts.get(assignment.account_id)
        holder = (account.sdr or {}).get("id") if account is not None else None
        if account is not None and account.state == "routed" and account.cycle == assignment.cycle \
                and holder == sdr:
            inbox.messages.append(routed_message(scoring, account, assignment, card, now))
            continue
        if account is None:
            state = "gone (erased or never stored)"
        elif account.cycle == assignment.cycle:
            state = str(account.state) if holder in (None, sdr) else f"{account.state} ({holder})"
        else:
            state = f"cycle {account.cycle}: {account.state}"
        inbox.closed.append({"accountId": assignment.account_id, "cycle": assignment.cycle, "state": state})
    inbox.messages.sort(key=lambda m: str(m.get("routedAt") or ""), reverse=True)
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
    decision = body.get("decision")
    if isinstance(decision, Mapping) and decision.get("text"):
        lines.append(f"   routed: {decision['text']}")
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
    card = inbox.sdr_card
    who = inbox.sdr + (f" ({card.get('name')} <{card.get('email')}>)" if card.get("name") else "")
    lines = [f"Inbox of {who} as of {inbox.now.strftime('%Y-%m-%dT%H:%M:%SZ')}",
             f"read from the assignments (table {inbox.table}, OwnerIndex), valued as of now; "
             "the queue was not received from", ""]
    if inbox.messages:
        overdue = sum(sla(m, inbox.now)[1] for m in inbox.messages)
        lines.append(f"{len(inbox.messages)} routed account(s), newest first"
                     + (f", {overdue} overdue" if overdue else "") + ":")
        for index, body in enumerate(inbox.messages, 1):
            lines += ["", *render_message(index, body, inbox.now)]
    elif inbox.closed:
        lines.append(f"No routed account is open for {inbox.sdr}.")
    else:
        lines.append(f"The inbox is empty: nothing is assigned to {inbox.sdr}.")
    if inbox.closed:
        lines += ["", "Closed or moved on: " + ", ".join(
            f"{c['accountId']} (cycle {c['cycle']}, {c['state']})" for c in inbox.closed)]
    if not inbox.complete:
        lines.append(f"Only the newest {len(inbox.messages) + len(inbox.closed)} assignments read (--limit).")
    q = inbox.queue
    if q:
        def n(key: str) -> str:
            return "?" if q.get(key) is None else str(q[key])

        lines += ["", f"the routed queue holds {n('messages')} message(s) for all SDRs, {n('inFlight')} in flight, "
                      f"{n('deadLetters')} in its dead-letter queue: {inbox.queue_url}"]
    return "\n".join(lines)


def as_json(inbox: Inbox) -> dict[str, Any]:
    return {
        "sdr": inbox.sdr,
        "table": inbox.table,
        "queueUrl": inbox.queue_url,
        "now": inbox.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "messages": [{**m, "overdue": sla(m, inbox.now)[1], "reasons": reasons(m)} for m in inbox.messages],
        "closed": inbox.closed,
        "queue": inbox.queue,
        "complete": inbox.complete,
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
    parser.add_argument("--sdr", required=True, help="the SDR's id (as in routing.yaml)")
    parser.add_argument("--stack", default=os.environ.get("STACK_NAME", "leadscore"),
                        help="the stack's name (default: $STACK_NAME or leadscore, the local stack's)")
    parser.add_argument("--queue", default=ROUTED_QUEUE, help="logical id or URL of the queue (default: RoutedQueue)")
    parser.add_argument("--limit", type=int, default=LIMIT, help="assignments read at most, newest first")
    parser.add_argument("--config", help="config directory (default: $LEADSCORE_CONFIG_DIR or the repo's config/)")
    parser.add_argument("--json", action="store_true", help="print the inbox as JSON")
    parser.add_argument("--now", help="the moment scores and SLA due times are valued at (default: "
                                      "$LEADSCORE_NOW, else the clock)")
    parser.add_argument("--ack", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ack:
        parser.error("--ack: make inbox no longer deletes (it never receives, so it disturbs no delivery); the one "
                     "dispatcher that consumes the routed queue deletes what it delivers (README, \"Consuming the "
                     "routed queue\"); an SDR accepts an account with feedback")
    if args.config:
        os.environ["LEADSCORE_CONFIG_DIR"] = args.config
    from leadscore.adapters import runtime
    from leadscore.adapters.storage import Store

    stack = Stack(args.stack, _session())
    store = Store(stack.table_name(), client=stack.client("dynamodb"))
    inbox = read_inbox(store, args.sdr, now=_now(args.now), scoring=runtime.config().scoring,
                       routing=runtime.routing(), limit=max(1, args.limit))
    inbox.queue_url = stack.queue_url(args.queue)
    inbox.queue = queue_counts(stack.client("sqs"), inbox.queue_url)
    print(json.dumps(as_json(inbox), indent=2, default=str) if args.json else render(inbox), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
