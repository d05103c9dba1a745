"""`make calibrate` without DATA on the local stack: the outcomes a CRM posts (`Opportunity Won` /
`Opportunity Lost` through the collection API and on the bus, an `opportunityStatus` group
trait) and the sales feedback kept, with a file over them; bad fit among the SDR-ready; the
threshold against the SDRs of routing.yaml from the accounts' score history."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from local import calibrate
from tests.integration.conftest import Pipeline
from tests.integration.test_calibrate import _account, _send
from tests.integration.test_feedback_flow import feedback
from tests.integration.test_history import all_steps

REPO = Path(__file__).resolve().parents[2]


def _crm(pipeline: Pipeline, messages: list[dict[str, Any]]) -> None:
    """Messages from the CRM sync's source (its own write key)."""
    stamped = [{"timestamp": pipeline.now.isoformat(), "messageId": f"crm-{pipeline.now:%s}-{i}", **m}
               for i, m in enumerate(messages)]
    response = pipeline.http("POST", "/v1/batch", body={"batch": stamped}, basic_user="wk_demo_crm")
    assert response["statusCode"] == 200 and json.loads(response["body"]).get("rejected") in (None, []), response
    pipeline.settle()


def _bus(pipeline: Pipeline, detail: dict[str, Any]) -> None:
    events = pipeline.stack.client("events")
    for _ in range(2):  # EventBridge delivers at least once: one outcome all the same
        events.put_events(Entries=[{"EventBusName": pipeline.stack.name_of("EventBus"), "Source": "com.example.crm",
                                    "DetailType": "Tracking Event", "Detail": json.dumps(detail)}])
    pipeline.settle()


@pytest.fixture
def table_outcomes(pipeline: Pipeline) -> dict[str, Any]:
    """Six accounts that requested a demo, their outcomes in the table: two won by CRM events
    (one by a group trait), two lost by CRM events (one on the bus by the CRM's own company id,
    one with a close date that cannot be read), one disqualified by a lead, one still open; and
    a CRM event naming no account."""
    domains = ["crmwon.io", "traitwon.io", "buslost.io", "baddate.io", "dq.io", "open.io"]
    messages: list[dict[str, Any]] = []
    for domain in domains:
        messages += _account(domain, ["Demo Requested"], pipeline)
    _send(pipeline, messages)
    start = pipeline.now
    pipeline.advance(days=3)
    close = (start + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _crm(pipeline, [
        {"type": "track", "userId": "u-crmwon.io", "event": "Opportunity Won",
         "properties": {"closeDate": close, "amount": 24000, "opportunityId": "006-1"}},
        {"type": "group", "userId": "crm-sync", "groupId": "traitwon.io",
         "traits": {"opportunityStatus": "Closed Won", "closeDate": close}},
        {"type": "group", "userId": "crm-sync", "groupId": "0015CRMbuslost",  # the CRM's id for buslost.io
         "traits": {"website": "https://buslost.io"}},
        {"type": "track", "userId": "u-baddate.io", "event": "opportunity lost", "properties": {"closeDate": "soon"}},
        {"type": "track", "userId": "someone-else", "event": "Opportunity Won"},  # no account anywhere
    ])
    # by another user than the group call's: another partition, in another shard of 8 (test below)
    _bus(pipeline, {"type": "track", "userId": "crm-bus", "event": "Opportunity Lost", "messageId": "bus-lost-1",
                    "context": {"groupId": "0015CRMbuslost"}, "properties": {"closeDate": close[:10]},
                    "timestamp": pipeline.now.isoformat()})
    status, answer = feedback(pipeline, {"outcome": "disqualified", "sdr": "amara", "note": "student project"},
                              account_id="dq.io")
    assert status == 200, answer
    disqualified_at = pipeline.now
    pipeline.advance(days=1)
    # after their close: a demo link click at crmwon.io must not count for its outcome
    _send(pipeline, [m for m in _account("crmwon.io", ["Demo Link Clicked"], pipeline) if m["type"] == "track"])
    return {"start": start, "close": close, "disqualifiedAt": disqualified_at, "baddateAt": start + timedelta(days=3)}


def _report(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    capsys.readouterr()
    assert calibrate.main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_without_a_file_the_crm_events_and_the_feedback_are_the_outcomes(
        table_outcomes: dict[str, Any], pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    report = _report(capsys)
    outcomes = report["outcomes"]
    assert outcomes["accounts"] == {"file": 0, "crm": 4, "feedback": 1}
    assert (outcomes["closeDateFallback"], outcomes["noAccount"]) == (1, 1)  # baddate.io's; someone-else's
    # one per event or group call (the bus's second delivery is the same message: stored once)
    assert outcomes["read"] == {"file": 0, "crm": 4, "feedback": 1} and outcomes["setAside"] == 0
    assert (report["closed"], report["wins"]) == (5, 2)  # open.io has no outcome at all
    # each as it stood at its close: crmwon.io's later demo link click does not count for it
    demo_link = next((row for row in report["rules"] if row["rule"] == "demo_link_clicked"), None)
    assert demo_link is None
    demo = next(row for row in report["rules"] if row["rule"] == "demo_requested")
    assert (demo["fired"], demo["wins"]) == (5, 2)


def test_a_crm_id_is_tied_to_its_account_across_shards(
        table_outcomes: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from leadscore.adapters import items
    from leadscore.adapters.shards import shard_of

    # the bus event and the group call tying the CRM's id to buslost.io are in different shards
    assert shard_of(items.contact_pk("u:crm-bus"), 8) != shard_of(items.contact_pk("u:crm-sync"), 8)
    for segments in ("1", "8"):
        report = _report(capsys, "--segments", segments)
        assert report["outcomes"]["accounts"] == {"file": 0, "crm": 4, "feedback": 1}, segments
        assert report["outcomes"]["noAccount"] == 1 and not any("not in the table" in w for w in report["warnings"])


def test_a_file_wins_over_the_table_for_the_accounts_it_names(
        table_outcomes: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "outcomes.csv"
    data.write_text(f"accountId,outcome,closedAt\nbuslost.io,won,{table_outcomes['close']}\ndq.io,open,\n")
    report = _report(capsys, "--data", str(data))
    assert report["outcomes"]["accounts"] == {"file": 2, "crm": 3, "feedback": 0}
    assert report["outcomes"]["setAside"] == 2  # buslost.io's CRM loss, dq.io's disqualification
    assert (report["closed"], report["wins"]) == (4, 3)


def test_the_report_prints_where_outcomes_came_from_bad_fit_and_the_team(
        table_outcomes: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert calibrate.main([]) == 0
    out = capsys.readouterr().out
    assert ("outcomes: 0 accounts from the file, 4 accounts from CRM events and traits, 1 accounts from sales"
            " feedback (1 CRM close date(s) unreadable: the event's time used; 1 CRM outcome(s) naming no account)"
            ) in out
    assert "bad fit (account fit under 15) and low engagement" in out
    assert "the threshold against the team: 155 accounts a day (310 within the 48-hour SLA), 8 SDRs" in out


def test_the_threshold_against_the_team_counts_accounts_by_their_score_history(
        table_outcomes: dict[str, Any], pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    report = _report(capsys)
    team = report["team"]
    assert team["team"]["perDay"] == 25 + 20 * 5 + 15 * 2 and team["team"]["slaHours"] == 48
    # every account's highest score, as its history keeps it
    peaks = {domain: max(step["score"] for step in all_steps(pipeline, "accounts", domain))
             for domain in ["crmwon.io", "traitwon.io", "buslost.io", "baddate.io", "dq.io", "open.io"]}
    for row in team["candidates"]:
        assert row["accounts"] == sum(peak >= row["threshold"] for peak in peaks.values()), row
        assert row["fits"] is True  # a handful of accounts: far under 155 a day
    # the SDRs have room: lower it, down to the threshold for the target close rate (68 would fit too)
    suggested = report["threshold"]["suggested"]["threshold"]
    assert team["candidates"][0]["threshold"] < suggested < 100
    assert team["verdict"] == "lower" and team["to"] == suggested


def test_make_calibrate_needs_no_data() -> None:
    dry = subprocess.run(["make", "-n", "calibrate"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "-m local.calibrate" in dry and "--data" not in dry and "usage" not in dry
    dry = subprocess.run(["make", "-n", "calibrate", "DATA=o.csv"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert '--data "o.csv"' in dry
