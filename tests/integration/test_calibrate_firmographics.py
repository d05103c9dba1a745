"""Calibration values an account's firmographics as they stood at its close (issue 25), through
the local stack: a group call after the close that gives the company a technology industry
does not make `account_industry_technology` count as fired before it, and one that takes the
industry away does not unfire it. `make calibrate`'s map/reduce over shards (local.calibrate)
and one process reading the table whole (services/calibrate.calibrate) agree. A trait that no
retained event explains (the contact whose group call set it was erased) is still read from
the stored account."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from leadscore.adapters.snapshot import TableSnapshot
from leadscore.rulesfiles.loading import load_config
from leadscore.services.calibrate import calibrate, parse_outcomes

from local import calibrate as local_calibrate
from tests.integration.conftest import Pipeline
from tests.integration.test_erase_flow import erase

RULE = "account_industry_technology"


def _group(pipeline: Pipeline, user: str, domain: str, traits: dict[str, Any], n: int) -> list[dict[str, Any]]:
    return [{"type": "group", "userId": user, "groupId": domain, "traits": {"name": domain, **traits},
             "timestamp": pipeline.now.isoformat(), "messageId": f"{user}-group-{n}"}]


def _company(pipeline: Pipeline, domain: str, industry: str | None, user: str | None = None) -> list[dict[str, Any]]:
    user = user or f"u-{domain}"
    return [{"type": "identify", "userId": user, "traits": {"email": f"{user}@{domain}", "title": "VP Sales"},
             "timestamp": pipeline.now.isoformat(), "messageId": f"{user}-identify"},
            *_group(pipeline, user, domain, {"industry": industry} if industry else {}, 1),
            {"type": "track", "userId": user, "event": "Webinar Attended", "timestamp": pipeline.now.isoformat(),
             "messageId": f"{user}-webinar"}]


def _send(pipeline: Pipeline, messages: list[dict[str, Any]]) -> None:
    response = pipeline.http("POST", "/v1/batch", body={"batch": messages}, basic_user="wk_demo_website")
    assert response["statusCode"] == 200, response
    pipeline.settle()


def _fired(report: dict[str, Any]) -> tuple[int, int]:
    row = next((row for row in report["rules"] if row["rule"] == RULE), None)
    return (row["fired"], row["wins"]) if row else (0, 0)


@pytest.fixture
def outcomes(pipeline: Pipeline, tmp_path: Path) -> Path:
    """became0-2.io: retail at their close (lost), software after it; was0-1.io: software at their
    close (won), retail after it; erased.io: software by a contact erased since (lost), its other
    contact's group call naming no industry."""
    messages: list[dict[str, Any]] = []
    for i in range(3):
        messages += _company(pipeline, f"became{i}.io", "Retail")
    for i in range(2):
        messages += _company(pipeline, f"was{i}.io", "Software")
    messages += _company(pipeline, "erased.io", "Software", user="u-gone")
    messages += _company(pipeline, "erased.io", None, user="u-stays")
    _send(pipeline, messages)
    closed = pipeline.now + timedelta(days=2)
    pipeline.advance(days=5)  # after the close: the companies' new industries
    later: list[dict[str, Any]] = []
    for i in range(3):
        later += _group(pipeline, f"u-became{i}.io", f"became{i}.io", {"industry": "Software"}, 2)
    for i in range(2):
        later += _group(pipeline, f"u-was{i}.io", f"was{i}.io", {"industry": "Retail"}, 2)
    _send(pipeline, later)
    status, body = erase(pipeline, "u-gone")
    assert status == 202, body
    pipeline.settle()
    rows = ["accountId,outcome,closedAt"]
    rows += [f"became{i}.io,lost,{closed.isoformat()}" for i in range(3)]
    rows += [f"was{i}.io,won,{closed.isoformat()}" for i in range(2)]
    rows += [f"erased.io,lost,{closed.isoformat()}"]
    path = tmp_path / "outcomes.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_an_account_is_valued_with_the_industry_it_had_at_its_close(
        pipeline: Pipeline, outcomes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the stored accounts say the industry of now: what calibration must not read
    fit_now = {domain: any(line["rule"] == RULE for line in pipeline.account(domain)["breakdown"])
               for domain in ("became0.io", "was0.io", "erased.io")}
    assert fit_now == {"became0.io": True, "was0.io": False, "erased.io": True}

    capsys.readouterr()
    assert local_calibrate.main(["--data", str(outcomes), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["closed"] == 6
    # fired at the close on was0-1.io (both won) and erased.io (its stored industry, no event left
    # behind it); not on became0-2.io (all lost), whose technology industry came after
    assert _fired(report) == (3, 2)

    # one process reading the table whole values them the same
    snapshot = TableSnapshot(pipeline.table_items())
    by_account: dict[str, list[Any]] = defaultdict(list)
    for person in snapshot.persons():
        contact = snapshot.contacts.get(person.root)
        if contact is not None and contact.account:
            by_account[contact.account].append(person)
    one = calibrate(by_account, snapshot.accounts, parse_outcomes(outcomes.read_text()), load_config(),
                    (0.10, 0.15))
    assert one["rules"] == report["rules"] and _fired(one) == (3, 2)
