"""The routed-message outbox: what SDRs get on the routed queue, and its delivery.

The routing transaction is the outbox (see router.py): the table's stream carries an account's
change to `routed` (or to the next attempt of an SLA re-route), and the aggregate function
builds the message from it here (`routed_sends`) and sends each on its own
(`deliver_routed`), parking one that still fails on the parked queue. A message is always
sendable: the characters SQS refuses are escaped (`sqs_text`) and a body over SQS's limit is
trimmed, saying what was left out (`fit_body`). `make replay` re-sends a parked or
dead-lettered message while the account is still in that routing (`still_owed`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leadscore.domain.records import Account, Assignment
from leadscore.engine.account_views import decision_view
from leadscore.engine.accounts import account_card, effective_traits

if TYPE_CHECKING:
    from leadscore.rulesfiles.scoring import ScoringConfig
    from leadscore.services.ports import MessageQueue

SCHEMA = "account-routed/v1"
_DEDUP_ID = re.compile(r"[!-~]{1,128}")

def deduplication_id(account_id: str, cycle: int, attempt: int = 1) -> str:
    """The routed message's FIFO deduplication id: account + cycle (+ attempt after an SLA
    re-route, so the new SDR's message is not taken for the first one). An account id SQS
    would refuse (over 128 characters, or not printable ASCII) is replaced by its hash."""
    text = f"{account_id}#{cycle}" + (f"#{attempt}" if attempt > 1 else "")
    if _DEDUP_ID.fullmatch(text):
        return text
    digest = hashlib.sha256(account_id.encode("utf-8")).hexdigest()[:64]
    return f"sha256:{digest}#{cycle}" + (f"#{attempt}" if attempt > 1 else "")


def routed_message(scoring: ScoringConfig, account: Account, assignment: Assignment, sdr: Mapping[str, Any],
                   now: datetime) -> dict[str, Any]:
    """The body of `account-routed/v1` (PRODUCT.md "The routed queue"), valued as of `now`:
    the reasons are the rules behind the score (points, contact), the contacts the top ones."""
    card = account_card(scoring, effective_traits(account.traits), account.entries, now)
    return {
        "schema": SCHEMA,
        "accountId": account.id,
        "accountName": account.name,
        "domain": account.domain,
        "score": card.score,
        "fit": card.fit,
        "engagement": card.engagement,
        "velocity": card.velocity,
        "threshold": scoring.account.thresholds.sdr_ready,
        "sdr": {"id": sdr.get("id"), "name": sdr.get("name"), "email": sdr.get("email")},
        "territory": assignment.territory,
        "routing": assignment.mode,
        "reasons": [{"rule": line["rule"], "points": line["points"], "contactId": line.get("contactId")}
                    for line in card.breakdown],
        "contacts": [{"contactId": c["contactId"], "email": c.get("email"), "title": c.get("title"),
                      "persona": c.get("persona"), "score": c.get("score")} for c in card.contacts],
        "routedAt": assignment.routed_at,
        "slaDueAt": assignment.sla_due_at,
        "cycle": assignment.cycle,
        **decision_view(account.routing, sdr.get("id")),
    }


# ---------------------------------------------------------------------- the outbox

#: SQS's (and PRODUCT's) limit on a routed message body, in UTF-8 bytes.
SQS_MAX_BYTES = 256 * 1024
#: The routed body is trimmed to this, so that its parked envelope fits SQS_MAX_BYTES too.
MAX_BODY_BYTES = SQS_MAX_BYTES - 4096
#: Tries of one send in the invocation before it is parked (transient errors only).
SEND_TRIES = 3
PARKED_SCHEMA = "routed-send-parked/v1"
#: What SQS refuses in a body: anything outside #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD
#: #x10000-#x10FFFF. In JSON text from json.dumps such a character can only sit in a string
#: (controls below #x20 are escaped already); lone surrogates (#xD800-#xDFFF) included.
_SQS_REFUSED = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEXT_CAP = 1024  # characters kept of a long free-text field when the lists alone cannot make room


class SendRefused(Exception):
    """The queue refused this message itself (its contents, its size): trying the same body
    again cannot help, so it is parked at once. Any other send error is taken as transient."""


@dataclass(frozen=True)
class RoutedSend:
    """One routed message owed to the queue (and which routing it is: account, cycle, attempt)."""

    body: dict[str, Any]
    group_id: str
    deduplication_id: str
    account_id: str = ""
    cycle: int = 0
    attempt: int = 1


def sqs_text(value: Any) -> str:
    """`value` as JSON that SQS accepts: UTF-8 where it can (half the bytes of ASCII escapes
    for most scripts), a `\\u` escape (four hex digits) for each character SQS refuses (U+FFFE, U+FFFF, a
    lone surrogate). Lossless: a JSON parser reads back exactly `value`."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return _SQS_REFUSED.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _size(value: Any) -> int:
    return len(sqs_text(value).encode("utf-8", "surrogatepass"))


def fit_body(body: dict[str, Any], limit: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The routed body within `limit` bytes. Too big (an account with very many reasons or
    long contact fields): `reasons` then `contacts` are cut from their end (the lowest-ranked
    ones) and `omitted` says how many of each were left out; if that is not enough, long text
    fields are cut to their first characters too (`omitted.text`). Unchanged when it fits."""
    if _size(body) <= limit:
        return body
    fitted = dict(body)
    omitted: dict[str, int] = {}
    for key in ("reasons", "contacts"):
        items = list(fitted.get(key) or [])
        if not items:
            continue
        fitted["omitted"] = {**omitted, key: len(items)}
        fitted[key] = []
        if _size(fitted) > limit:  # not even with none of them: drop them all, try the next list
            omitted[key] = len(items)
            continue
        low, high = 0, len(items)  # the most of them that fit: keep[:low] fits, keep[:high+1] does not
        while low < high:
            middle = (low + high + 1) // 2
            fitted["omitted"] = {**omitted, key: len(items) - middle}
            fitted[key] = items[:middle]
            if _size(fitted) <= limit:
                low = middle
            else:
                high = middle - 1
        fitted[key] = items[:low]
        fitted["omitted"] = {**omitted, key: len(items) - low}
        return fitted
    fitted["omitted"] = {**omitted, "text": _TEXT_CAP}
    return _cap_text(fitted, _TEXT_CAP)


def _cap_text(value: Any, cap: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= cap else value[:cap]
    if isinstance(value, dict):
        return {k: (v if k in ("accountId", "schema") else _cap_text(v, cap)) for k, v in value.items()}
    if isinstance(value, list):
        return [_cap_text(v, cap) for v in value]
    return value


def routed_sends(scoring: ScoringConfig, changes: Iterable[tuple[Account | None, Account]]) -> list[RoutedSend]:
    """The routed messages a stream batch's account changes owe, in order: one each time an
    account became `routed` (a new cycle) or moved to the next attempt of an SLA re-route.
    The message is valued as of the routing (`routedAt`), so a retry builds the same body;
    it is always sendable (`sqs_text`, `fit_body`)."""
    sends: list[RoutedSend] = []
    for old, new in changes:
        status = new.routing
        if new.state != "routed" or status is None or not new.sdr or not status.routed_at:
            continue
        if (old is not None and old.state == "routed" and old.cycle == new.cycle
                and (old.routing.attempt if old.routing else 0) >= status.attempt):
            continue  # the same routing, rewritten (a waiting note, a score change)
        cycle = int(new.cycle or 0)
        sdr_id = str(new.sdr.get("id"))
        assignment = Assignment(account_id=new.id, cycle=cycle, sdr=sdr_id, pool=status.pool or "",
                                territory=status.territory, mode=status.mode or "", routed_at=status.routed_at,
                                sla_due_at=status.sla_due_at or "", attempt=status.attempt or 1,
                                tried=list(status.tried))
        routed_at = datetime.fromisoformat(status.routed_at.replace("Z", "+00:00"))
        body = fit_body(routed_message(scoring, new, assignment, new.sdr, routed_at))
        sends.append(RoutedSend(body, sdr_id, deduplication_id(new.id, cycle, assignment.attempt),
                                account_id=new.id, cycle=cycle, attempt=assignment.attempt))
    return sends


def send_routed(queue: MessageQueue, sends: Iterable[RoutedSend]) -> int:
    """Send what the outbox owes, in order, all or nothing (a failure stops here). The
    aggregate function uses `deliver_routed`, where each send stands alone."""
    count = 0
    for send in sends:
        queue.send(send.body, group_id=send.group_id, deduplication_id=send.deduplication_id)
        count += 1
    return count


@dataclass
class Delivery:
    """What `deliver_routed` did with each send."""

    sent: list[RoutedSend] = field(default_factory=list)
    parked: list[RoutedSend] = field(default_factory=list)
    #: neither sent nor parked (no parking queue, or it failed too): the caller reports them
    failed: list[RoutedSend] = field(default_factory=list)


def deliver_routed(queue: MessageQueue, sends: Iterable[RoutedSend], *, parking: MessageQueue | None,
                   tries: int = SEND_TRIES, pause: Callable[[int], None] | None = None) -> Delivery:
    """Send each routed message on its own: one that fails never holds back the others. A
    transient error is tried again (`tries` in all, `pause(n)` between); one that still fails,
    or that the queue refused (`SendRefused`), is parked alone on `parking` with why (same
    group and deduplication id, so a stream retry parking it again is dropped)."""
    delivery = Delivery()
    for send in sends:
        error = _send(queue, send, tries, pause)
        if error is None:
            delivery.sent.append(send)
            continue
        if parking is None:
            delivery.failed.append(send)
            continue
        try:
            parking.send(parked_envelope(send, _reason(error)), group_id=send.group_id,
                         deduplication_id=send.deduplication_id)
        except Exception:  # noqa: BLE001 - not even parked: the caller has the stream retry it
            delivery.failed.append(send)
        else:
            delivery.parked.append(send)
    return delivery


def _send(queue: MessageQueue, send: RoutedSend, tries: int, pause: Callable[[int], None] | None
          ) -> Exception | None:
    for attempt in range(max(1, tries)):
        try:
            queue.send(send.body, group_id=send.group_id, deduplication_id=send.deduplication_id)
            return None
        except SendRefused as refused:
            return refused
        except Exception as error:  # noqa: BLE001 - throttling, a timeout, a 5xx: try again, then park
            if attempt == max(1, tries) - 1:
                return error
            if pause is not None:
                pause(attempt)
    return None


def _reason(error: Exception) -> str:
    """Why a send failed, for the operator: the error's type and code, never its text (it may
    quote the body: names, emails)."""
    code = getattr(error, "response", {}).get("Error", {}).get("Code") if hasattr(error, "response") else None
    return f"{type(error).__name__}: {code}" if code else type(error).__name__


def parked_envelope(send: RoutedSend, reason: str) -> dict[str, Any]:
    """The parked queue's body (routed-send-parked/v1): the routed message as it was owed."""
    return {"schema": PARKED_SCHEMA, "accountId": send.account_id, "cycle": send.cycle, "attempt": send.attempt,
            "groupId": send.group_id, "deduplicationId": send.deduplication_id, "reason": reason[:500],
            "message": send.body}


def parked_send(envelope: Mapping[str, Any]) -> RoutedSend:
    """The routed send a parked envelope holds (ValueError when it is not one)."""
    if envelope.get("schema") != PARKED_SCHEMA or not isinstance(envelope.get("message"), dict):
        raise ValueError("not a routed-send-parked/v1 body")
    return RoutedSend(dict(envelope["message"]), str(envelope["groupId"]), str(envelope["deduplicationId"]),
                      account_id=str(envelope["accountId"]), cycle=int(envelope["cycle"]),
                      attempt=int(envelope["attempt"]))


def still_owed(account: Account | None, send: RoutedSend) -> str | None:
    """None when `account` is still in the routing `send` announces (routed, same cycle and
    attempt, same SDR); else why it is not (the message would tell an SDR about an account
    that is no longer theirs, or no longer waiting for them)."""
    if account is None:
        return "the account no longer exists"
    owner = (account.sdr or {}).get("id")
    attempt = (account.routing.attempt if account.routing else 0) or 1
    current = deduplication_id(account.id, int(account.cycle or 0), attempt)
    if account.state != "routed":
        return f"the account is {account.state} now"
    if current != send.deduplication_id or owner != send.group_id:
        return f"the account was routed again since (cycle {account.cycle}, attempt {attempt}, SDR {owner})"
    return None
