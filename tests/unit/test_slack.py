"""The Slack notifications' strings (leadscore/engine/slack.py), the `slack_user_id` key of routing.yaml,
and the message the template's input transformer makes of them, checked against Slack's format."""

from __future__ import annotations

import json
import re
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from leadscore.adapters import items
from leadscore.adapters.streams import change_of
from leadscore.domain.ledgers import ContactEntry, RuleLedger
from leadscore.domain.records import Account, RoutingStatus
from leadscore.engine.slack import SLACK_EVENTS, slack_detail
from leadscore.rulesfiles.errors import ConfigError
from leadscore.rulesfiles.loading import load_config, load_routing
from leadscore.services.aggregate import Change, state_changes

from local.api_destinations import resolve_path, transform
from local.stack import load_template
from tests.support.slack_format import problems

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
REPO_ROOT = Path(__file__).resolve().parents[2]
#: the characters JSON escapes inside a string: a Slack field must hold none
JSON_ESCAPED = re.compile(r'["\\\x00-\x1f]')
HOSTILE = [
    'Acme "Rockets" Inc',
    "Back\\slash \\n \\u0000 Corp",
    "Two\nlines\r\tand a tab",
    "<!channel> & <@U999> <https://evil.example|click>",
    "nul\x00 and \u2028 separators \u2029",
    "emoji 🚀 and ünïcödé",
    "x" * 5000,
    "",
]


@pytest.fixture(scope="module")
def transformer() -> dict[str, Any]:
    rule = load_template(REPO_ROOT / "template.yaml")["Resources"]["SlackNotifyRule"]
    (target,) = rule["Properties"]["Targets"]
    return dict(target["InputTransformer"])


def detail(name: str = "Acme Inc", **extra: Any) -> dict[str, Any]:
    return {"accountId": "acme.com", "name": name, "domain": "acme.com", "score": 105, "fit": 30, "engagement": 75,
            "committeeBonus": 0, "velocity": 20, "threshold": 100, "state": "routed", "cycle": 1,
            "sdr": {"id": "ana", "name": "Ana Ruiz", "email": "ana@example.com", "slackUserId": "U0ANA1234"},
            "slaDueAt": "2026-11-27T12:00:00Z", "routedAt": "2026-11-25T12:00:00Z", "attempt": 1, **extra}


def event(detail_type: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"version": "0", "id": "e-1", "detail-type": detail_type, "source": "leadscore",
            "account": "123456789012", "time": "2026-11-25T12:00:00Z", "region": "us-east-1", "resources": [],
            "detail": body}


def verbatim(transformer: dict[str, Any], source: dict[str, Any]) -> str:
    """The template with each value dropped in as it is, unescaped (what the EventBridge
    documentation once said it does)."""
    text = transformer["InputTemplate"]
    for name, path in transformer["InputPathsMap"].items():
        value = resolve_path(source, path)
        text = text.replace(f"<{name}>", value if isinstance(value, str) else json.dumps(value))
    return text


# ---------------------------------------------------------------- the checker can fail


@pytest.mark.parametrize(("message", "problem"), [
    ({}, "a message has text or blocks"),
    ({"text": "a <b> c"}, "unescaped '<'"),
    ({"text": "fish & chips"}, "unescaped '&'"),
    ({"blocks": [{"type": "divider"}] * 51}, "blocks: 1 to 50"),
    ({"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]}, "151 characters"),
    ({"blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]}, "expected plain_text"),
    ({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}}]}, "3001 characters"),
    ({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": ""}}]}, "a non-empty string"),
    ({"blocks": [{"type": "section"}]}, "a section has text or fields"),
    ({"blocks": [{"type": "context", "elements": []}]}, "1 to 10 elements"),
    ({"blocks": [{"type": "carousel"}]}, "not a block this checker knows"),
    ({"text": "t", "attachments": []}, "attachments: not a key"),
])
def test_the_checker_refuses_what_slack_refuses(message: dict[str, Any], problem: str) -> None:
    found = problems(message)
    assert any(problem in p for p in found), found


def test_the_checker_takes_slack_markup() -> None:
    message = {"text": "<@U0ANA1234> &amp; <!date^1793782800^{date_short_pretty} {time}|2026-11-04T09:00:00Z>",
               "blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": "<https://x.io|x> &lt;"}]}]}
    assert problems(message) == []


# ---------------------------------------------------------------- the message


@pytest.mark.parametrize("detail_type", SLACK_EVENTS)
def test_each_event_makes_a_valid_slack_message_mentioning_the_sdr(transformer: dict[str, Any],
                                                                   detail_type: str) -> None:
    body = detail(previousSdr="ben", assignedBy="lena")
    body["slack"] = slack_detail(detail_type, body, [
        {"rule": "demo_requested", "points": 50, "contactId": "jo@acme.com"},
        {"rule": "account_industry_technology", "points": 15, "contactId": None},
        {"rule": "careers_page", "points": -5, "contactId": "jo@acme.com"},
        {"rule": "pricing_page", "points": 15, "contactId": "al@acme.com"},
        {"rule": "email_opened", "points": 5, "contactId": "al@acme.com"},
    ])
    message = json.loads(transform(transformer, event(detail_type, body)))
    assert problems(message) == []
    header, section, context = message["blocks"]
    assert header["text"]["text"] == f"{detail_type}: Acme Inc"
    text = section["text"]["text"]
    # a re-route's breach names the new SDR: the Account Routed that follows pings her
    who = "*Ana Ruiz*" if detail_type == "Routing SLA Breached" else "<@U0ANA1234>"
    assert text.startswith(f"{who}: *Acme Inc (acme.com)*\nScore 105 (fit 30, engagement 75")
    # the top three reasons, highest first; nothing negative
    assert ("*Why:* demo_requested +50 (jo@acme.com) · account_industry_technology +15 · pricing_page +15"
            " (al@acme.com)\n") in text
    assert "<!date^1795780800^{date_short_pretty} {time}|2026-11-27T12:00:00Z>" in text
    assert who in message["text"] and detail_type in context["elements"][0]["text"]


def test_the_sla_line_says_what_happened() -> None:
    routed = slack_detail("Account Routed", detail())["sla"]
    rerouted = slack_detail("Account Routed", detail(previousSdr="ben", previousState="routed"))["sla"]
    breached = slack_detail("Routing SLA Breached", detail(previousSdr="ben"))["sla"]
    stays = slack_detail("Routing SLA Breached", detail(reroute={"reason": "no SDR available"}))["sla"]
    moved = slack_detail("Account Reassigned", detail(previousSdr="ben", assignedBy="lena", note="coverage"))["sla"]
    assert routed.startswith("accept by <!date^1795780800^")
    assert rerouted.endswith("(re-routed from ben: SLA ran out)")
    assert breached.startswith("ran out with ben; re-routed, accept by")
    assert "nobody else in the pool is available" in stays
    assert moved.endswith("(reassigned from ben by lena: coverage)")


def test_a_breach_pings_the_sdr_only_when_the_account_stays_with_her() -> None:
    rerouted = slack_detail("Routing SLA Breached", detail(previousSdr="ben"))
    stays = slack_detail("Routing SLA Breached", detail(reroute={"reason": "no SDR available"}))
    assert (rerouted["mention"], stays["mention"]) == ("*Ana Ruiz*", "<@U0ANA1234>")


def test_an_sdr_without_a_slack_id_is_named_and_a_bad_id_is_never_markup() -> None:
    assert slack_detail("Account Routed", detail(sdr={"id": "ben", "name": "Ben <Fischer>"}))["mention"] == \
        "*Ben &lt;Fischer&gt;*"
    forged = detail(sdr={"id": "ben", "name": "Ben", "slackUserId": "U1>|<!channel"})
    assert slack_detail("Account Routed", forged)["mention"] == "*Ben*"
    assert slack_detail("Account Routed", detail(sdr=None))["mention"] == "nobody yet"


def test_without_reasons_the_message_points_at_the_read_api() -> None:
    assert slack_detail("Account Routed", detail())["reasons"] == \
        "the account's score breakdown (GET /v1/accounts/{id})"


@pytest.mark.parametrize("name", HOSTILE)
def test_quotes_newlines_and_markup_in_values_still_make_valid_json_escaped_or_not(
        transformer: dict[str, Any], name: str) -> None:
    body = detail(name, domain=name or None, previousSdr=name, assignedBy=name, note=name,
                  sdr={"id": "x", "name": name})
    for detail_type in SLACK_EVENTS:
        body["slack"] = slack_detail(detail_type, body, [{"rule": name, "points": 7, "contactId": name}])
        # every value is transformer-transparent: nothing JSON would escape
        for key, value in body["slack"].items():
            assert isinstance(value, str) and not JSON_ESCAPED.search(value), (key, value)
        source = event(detail_type, body)
        escaped, raw = transform(transformer, source), verbatim(transformer, source)
        assert json.loads(escaped) == json.loads(raw)  # the same message whichever way EventBridge inserts
        message = json.loads(escaped)
        assert problems(message) == [], message
        assert "<!channel>" not in escaped and "<https://evil" not in escaped


@settings(max_examples=150, deadline=None)
@given(name=st.text(max_size=300), rule=st.text(max_size=80), note=st.text(max_size=300),
       score=st.one_of(st.none(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True)))
def test_any_value_makes_a_valid_message(transformer: dict[str, Any], name: str, rule: str, note: str,
                                         score: Any) -> None:
    body = detail(name, score=score, note=note, assignedBy=note, previousSdr=name, sdr={"id": "x", "name": note})
    for detail_type in SLACK_EVENTS:
        body["slack"] = slack_detail(detail_type, body, [{"rule": rule, "points": 3, "contactId": name}])
        source = event(detail_type, body)
        message = json.loads(transform(transformer, source))
        assert message == json.loads(verbatim(transformer, source))
        assert problems(message) == [], message


def test_every_path_of_the_rule_is_a_string_of_the_event(transformer: dict[str, Any]) -> None:
    body = detail()
    body["slack"] = slack_detail("Account Routed", body)
    source = event("Account Routed", body)
    for name, path in transformer["InputPathsMap"].items():
        value = resolve_path(source, path)
        assert isinstance(value, str) and value, name


# ---------------------------------------------------------------- on the bus


def _record(sequence: int, old: dict[str, Any] | None, new: dict[str, Any]) -> Change:
    change = change_of(str(sequence), "MODIFY" if old else "INSERT", ("A#acme.com", "P"), new, old)
    assert change is not None
    return change


def test_routed_events_carry_the_slack_strings_and_the_reasons_of_the_account() -> None:
    scoring = load_config().scoring
    entry = ContactEntry(key="u:jo", version=1, persona="decision_maker",
                         rules={"demo_requested": RuleLedger(touches=[[NOW.timestamp(), 50]], count=1)},
                         recent=[[NOW.timestamp(), 50]], last_engaged=NOW.timestamp())
    before = Account(id="acme.com", version=1, name="Acme", domain="acme.com", score=104, state="sdr_ready", cycle=1,
                     entries=[entry])
    after = Account(id="acme.com", version=2, name="Acme", domain="acme.com", score=104, state="routed", cycle=1,
                    entries=[entry],
                    sdr={"id": "ana", "name": "Ana Ruiz", "email": "a@x.io", "slackUserId": "U0ANA1234"},
                    routing=RoutingStatus(pool="na", territory="na", mode="territory", routed_at=NOW.isoformat(),
                                          sla_due_at="2026-11-27T12:00:00Z", attempt=1, tried=["ana"]))
    events = state_changes([_record(1, dict(items.account_item(before)), dict(items.account_item(after)))],
                           NOW, scoring)
    (routed,) = [d for t, d in events if t == "Account Routed"]
    assert routed["sdr"]["slackUserId"] == "U0ANA1234"
    assert routed["slack"]["mention"] == "<@U0ANA1234>"
    assert routed["slack"]["reasons"].startswith("demo_requested +50 (jo)")
    # without the scoring rules (a summary read) the message still goes, pointing at the read API
    (summary,) = [d for t, d in state_changes([_record(1, dict(items.account_item(before)),
                                                       dict(items.account_item(after)))], NOW) if t == "Account Routed"]
    assert summary["slack"]["reasons"].startswith("the account's score breakdown")
    assert all("slack" not in d for t, d in events if t not in SLACK_EVENTS)


# ---------------------------------------------------------------- routing.yaml


BASE = """
version: 1
sdrs:
  - {id: ana, name: Ana Ruiz, email: ana@example.com, slack_user_id: U0ANA1234}
  - {id: ben, name: Ben Fischer, email: ben@example.com}
pools:
  - {id: emea, sdrs: [ana, ben]}
fallback_pool: emea
"""


def test_slack_user_id_is_optional(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(textwrap.dedent(BASE), encoding="utf-8")
    config = load_routing(path)
    assert (config.sdr_by_id["ana"].slack_user_id, config.sdr_by_id["ben"].slack_user_id) == ("U0ANA1234", None)


@pytest.mark.parametrize("value", ["@ben", "ben", "u0ben123", "C0CHANNEL1", "U0BEN>|<!channel"])
def test_a_slack_user_id_that_is_no_member_id_is_refused_by_key_path(tmp_path: Path, value: str) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(textwrap.dedent(BASE).replace("email: ben@example.com}",
                                                  f"email: ben@example.com, slack_user_id: {json.dumps(value)}}}"),
                    encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_routing(path)
    assert [p for p, r in caught.value.errors if p == "sdrs[1].slack_user_id" and "not a Slack member id" in r], \
        caught.value.errors
