"""What the Slack notifications say (PRODUCT.md "Notifications"): no function posts them.

`Account Routed`, `Routing SLA Breached` and `Account Reassigned` carry a `slack` object in
their bus detail (`slack_detail`): short strings that the input transformer of the template's
`SlackNotifyRule` drops into a Slack message (text + blocks, mrkdwn) for the API destination
to post to the incoming webhook. An input path takes one value, so what needs a list (the
top reasons) or a choice (a mention or a name) is formatted here, once.

Every string is *transformer-transparent*: it holds no character JSON escapes (`"`, `\\`, the
control characters, newlines), so the transformed message is the same valid JSON whether
EventBridge escapes a value it drops inside quotes or not (its documentation has said both),
and a value never needs the event to be trusted. Slack's own control characters are escaped
as Slack documents (`&` `<` `>` as `&amp;` `&lt;` `&gt;`), so an account name can neither
mention `@channel` nor forge a link; only the mention (`<@U0123ABCD>`, an id routing.yaml
validated) and the SLA's date token are Slack markup. Lengths are capped so that the message
stays inside Block Kit's limits (a section's text 3,000 characters, a header's 150).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from leadscore.domain.values import SLACK_USER_ID

__all__ = ["SLACK_EVENTS", "slack_detail", "transparent", "mrkdwn"]

#: the bus events the Slack rule posts (template.yaml SlackNotifyRule matches these detail-types)
SLACK_EVENTS = ("Account Routed", "Routing SLA Breached", "Account Reassigned")
#: how many of the score's reasons the message names, highest first
TOP_REASONS = 3
#: caps per field (characters, after escaping): with the template's own text the section
#: stays well under Block Kit's 3,000, the header (`<detail-type>: <title>`) under 150
LIMITS = {"title": 110, "account": 400, "mention": 120, "score": 200, "reasons": 1200, "sla": 500,
          "text": 900}

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_SPACES = re.compile(r"\s{2,}")
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def transparent(value: Any) -> str:
    """`value` as text with nothing JSON would escape: `"` becomes `'`, `\\` becomes `/`,
    control characters and line breaks a space; runs of spaces one."""
    text = "" if value is None else str(value)
    text = text.replace('"', "'").replace("\\", "/")
    text = _CONTROL.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def mrkdwn(value: Any, limit: int) -> str:
    """Transparent text escaped for Slack (`&`, `<`, `>`), at most `limit` characters (an
    entity is never cut in half; a cut text ends with `…`)."""
    text = transparent(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if len(text) <= limit:
        return text
    return _PARTIAL_ENTITY.sub("", text[: limit - 1]).rstrip() + "…"


def plain(value: Any, limit: int) -> str:
    """Transparent text for a `plain_text` object (a header): no markup at all, so the three
    characters Slack treats specially are replaced by look-alikes rather than entities."""
    text = transparent(value).replace("&", "+").replace("<", "‹").replace(">", "›")
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return "?"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "?"
    if number != number or number in (float("inf"), float("-inf")):
        return "?"
    return str(int(number)) if number == int(number) else f"{round(number, 2):g}"


def _epoch(moment: Any) -> int | None:
    if not isinstance(moment, str) or not moment:
        return None
    try:
        parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(parsed.timestamp()) if parsed.tzinfo is not None else None


def when(moment: Any) -> str:
    """Slack's date token for an ISO moment: each reader sees it in their own time zone; the
    fallback (clients that cannot format dates) is the UTC time."""
    epoch = _epoch(moment)
    if epoch is None:
        return "unknown"
    fallback = mrkdwn(moment, 40)
    return f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{fallback}>"


def _sdr_name(sdr: Any) -> str:
    if isinstance(sdr, Mapping):
        return str(sdr.get("name") or sdr.get("id") or "")
    return str(sdr or "")


def mention(sdr: Any, *, ping: bool = True) -> str:
    """`<@U0123ABCD>` for an SDR with a valid `slackUserId` (with `ping`), else their name in bold."""
    if ping and isinstance(sdr, Mapping):
        user = sdr.get("slackUserId")
        if isinstance(user, str) and SLACK_USER_ID.fullmatch(user):
            return f"<@{user}>"
    name = mrkdwn(_sdr_name(sdr), LIMITS["mention"] - 2)
    return f"*{name}*" if name else "nobody yet"


def reasons_text(breakdown: Iterable[Mapping[str, Any]] | None) -> str:
    """The score's top reasons, highest first: `demo_requested +50 (jane@acme.com) · ...`."""
    lines = sorted((line for line in breakdown or () if isinstance(line.get("points"), int | float)
                    and line["points"] > 0), key=lambda line: -float(line["points"]))
    parts = []
    for line in lines[:TOP_REASONS]:
        who = f" ({transparent(line['contactId'])})" if line.get("contactId") else ""
        parts.append(f"{transparent(line.get('rule'))} +{_number(line['points'])}{who}")
    if not parts:
        return "the account's score breakdown (GET /v1/accounts/{id})"
    return mrkdwn(" · ".join(parts), LIMITS["reasons"])


def _sla(detail_type: str, detail: Mapping[str, Any]) -> str:
    due = when(detail.get("slaDueAt"))
    previous = detail.get("previousSdr")
    reroute = detail.get("reroute") if isinstance(detail.get("reroute"), Mapping) else None
    if detail_type == "Routing SLA Breached" and reroute is not None:
        text = f"ran out ({due}); nobody else in the pool is available, so it stays with its SDR"
    elif detail_type == "Routing SLA Breached":
        text = f"ran out with {mrkdwn(_sdr_name(previous), 60)}; re-routed, accept by {due}"
    elif detail_type == "Account Reassigned":
        by = detail.get("assignedBy") or detail.get("by")  # the lead (accounts.routing_detail)
        who = f" by {mrkdwn(by, 60)}" if by else ""
        note = f": {mrkdwn(detail.get('note'), 200)}" if detail.get("note") else ""
        text = f"accept by {due} (reassigned from {mrkdwn(_sdr_name(previous), 60) or 'the pool'}{who}{note})"
    elif previous and detail.get("previousState") == "routed":
        text = f"accept by {due} (re-routed from {mrkdwn(_sdr_name(previous), 60)}: SLA ran out)"
    else:
        text = f"accept by {due}"
    return text[: LIMITS["sla"]]


def slack_detail(detail_type: str, detail: Mapping[str, Any],
                 breakdown: Iterable[Mapping[str, Any]] | None = None) -> dict[str, str]:
    """The `slack` object of a bus event's detail (`detail` as built by
    `accounts.account_detail`, the SDR under `sdr`): the strings SlackNotifyRule's input
    transformer reads. `breakdown`: the account's score lines (`accounts.account_card`), when
    the caller could value them."""
    name = detail.get("name") or detail.get("domain") or detail.get("accountId")
    domain = detail.get("domain")
    account = mrkdwn(name, LIMITS["account"] - 80)
    if domain and domain != name:
        account += f" ({mrkdwn(domain, 70)})"
    score = (f"{_number(detail.get('score'))} (fit {_number(detail.get('fit'))}, engagement "
             f"{_number(detail.get('engagement'))}, committee {_number(detail.get('committeeBonus'))};"
             f" threshold {_number(detail.get('threshold'))})")
    # An SLA re-route posts the breach and then `Account Routed` to the new SDR: only the
    # latter pings them. A breach that leaves the account with its SDR pings her.
    rerouted = detail_type == "Routing SLA Breached" and detail.get("reroute") is None and detail.get("previousSdr")
    who = mention(detail.get("sdr"), ping=not rerouted)
    title = plain(name, LIMITS["title"])
    text = mrkdwn(f"{detail_type}: {transparent(name)}, score {_number(detail.get('score'))}", LIMITS["text"] - 130)
    return {
        "title": title,
        "account": account,
        "mention": who,
        "score": score[: LIMITS["score"]],
        "reasons": reasons_text(breakdown),
        "sla": _sla(detail_type, detail),
        "text": f"{text} for {who}",
    }
