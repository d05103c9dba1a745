"""`make preview` (python -m local.preview): a rules change previewed on the local stack names
exactly the accounts a full replay of the same events on a fresh stack under the new rules
puts over the line, with the same scores; the table is the same before and after; a broken
candidate is refused naming the file, the key path and the reason."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from local import preview
from tests.integration.conftest import START, Pipeline
from tests.support.stack import TemplateStack

CONFIG = Path(__file__).resolve().parents[2] / "config"
#: account -> the events of its one contact (a VP at a 200-person US software company: fit 30)
JOURNEYS = {
    "below.io": ["Demo Link Clicked", "Webinar Attended"],                         # 75 -> 90
    "crosses.io": ["Demo Link Clicked", "Webinar Attended", "Case Study Downloaded"],  # 85 -> 100
    "ready.io": ["Demo Link Clicked", "Demo Requested"],                           # 105 -> 110 (capped)
    "untouched.io": ["Webinar Attended", "Case Study Downloaded"],                 # 60 -> 60
}


def _candidate(tmp_path: Path, points: int = 40) -> Path:
    """config/ with the demo link click worth `points` instead of 25."""
    folder = tmp_path / "candidate"
    folder.mkdir()
    for name in ("scoring.yaml", "sources.yaml", "routing.yaml"):
        shutil.copy(CONFIG / name, folder / name)
    scoring = folder / "scoring.yaml"
    text = scoring.read_text()
    old = "  - id: demo_link_clicked\n    category: content\n    points: 25\n"
    assert old in text
    scoring.write_text(text.replace(old, old.replace("points: 25", f"points: {points}")))
    return folder


def _journeys(pipeline: Pipeline, journeys: dict[str, list[str]] | None = None) -> None:
    for n, (domain, events) in enumerate((journeys or JOURNEYS).items()):
        user = f"u-{domain}"
        company = {"name": domain, "website": f"https://{domain}", "industry": "Software", "employees": 200,
                   "address": {"country": "US"}}
        batch = [{"type": "identify", "userId": user, "traits": {"email": f"vp@{domain}", "title": "VP Sales"}},
                 {"type": "group", "userId": user, "groupId": domain, "traits": company}]
        batch += [{"type": "track", "userId": user, "event": event} for event in events]
        stamped = [{**m, "timestamp": pipeline.now.isoformat(), "messageId": f"{user}-{i}"}
                   for i, m in enumerate(batch)]
        response = pipeline.http("POST", "/v1/batch", body={"batch": stamped}, basic_user="wk_demo_website")
        assert response["statusCode"] == 200, response
        pipeline.settle()
        pipeline.advance(minutes=10 + n)


def _fresh_stack(pipeline: Pipeline, rules: Path, monkeypatch: pytest.MonkeyPatch,
                 journeys: dict[str, list[str]]) -> Pipeline:
    """The same journeys, at the same moments, on a fresh stack whose functions score with the
    rules folder `rules`: what a preview of those rules must name."""
    from leadscore.adapters import runtime

    runtime.reset()
    fresh = TemplateStack.create(stack_name="candidate", session=pipeline.stack.session)
    for spec in fresh.functions.values():
        spec.environment["LEADSCORE_CONFIG_DIR"] = str(rules)
    replayed = Pipeline(fresh, monkeypatch)
    replayed.set_clock(START)
    _journeys(replayed, journeys)
    return replayed


def _report(capsys: pytest.CaptureFixture[str], rules: Path) -> dict[str, Any]:
    capsys.readouterr()  # what the functions printed before (their logs and metrics)
    assert preview.main(["--rules", str(rules), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_preview_names_the_accounts_a_full_replay_under_the_new_rules_puts_over_the_line(
        pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:

    _journeys(pipeline)
    rules = _candidate(tmp_path)
    before = pipeline.table_items()
    report = _report(capsys, rules / "scoring.yaml")
    assert pipeline.table_items() == before  # a preview writes nothing
    current = {d: pipeline.account(d)["score"] for d in JOURNEYS}
    assert {row["id"]: row["current"] for row in report["accountsMovingMost"]} == \
        {d: s for d, s in current.items() if d in {row["id"] for row in report["accountsMovingMost"]}}

    # the same events, the same moments, on a fresh stack under the candidate rules
    replayed = _fresh_stack(pipeline, rules, monkeypatch, JOURNEYS)
    truth = {d: replayed.account(d) for d in JOURNEYS}
    over_the_line = {d for d, a in truth.items() if a["score"] >= a["threshold"]}
    assert over_the_line == {"crosses.io", "ready.io"}  # the journeys do what they say
    assert report["newlySdrReady"] == ["crosses.io"] and report["noLongerSdrReady"] == []
    assert report["sdrReady"] == {"current": 1, "candidate": 2}
    moved = {row["id"]: row["candidate"] for row in report["accountsMovingMost"]}
    assert moved == {d: a["score"] for d, a in truth.items() if d in moved}
    assert set(moved) == {"below.io", "crosses.io", "ready.io"}
    demo = next(row for row in report["rules"] if row["rule"] == "demo_link_clicked")
    assert (demo["current"], demo["candidate"]) == (75.0, 120.0)
    # the SDR load: US accounts route to the North America territory's pool
    assert report["sdrLoad"] == [{"territory": "na", "pool": "na", "current": 1, "candidate": 2}]


def test_a_broken_candidate_is_refused_naming_the_file_the_key_and_the_reason(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], pipeline: Pipeline) -> None:
    rules = _candidate(tmp_path)
    scoring = rules / "scoring.yaml"
    scoring.write_text(scoring.read_text().replace("    points: 40\n", "    points: forty\n"))
    assert preview.main(["--rules", str(scoring)]) == 2
    err = capsys.readouterr().err
    assert str(scoring) in err and "points" in err


def test_the_readme_shows_what_a_preview_prints(pipeline: Pipeline, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    shown = re.search(r"make preview RULES=.*?```text\n(.*?)```", readme, re.S)
    assert shown
    _journeys(pipeline)
    rules = _candidate(tmp_path)
    capsys.readouterr()
    assert preview.main(["--rules", str(rules / "scoring.yaml")]) == 0
    assert capsys.readouterr().out == shown.group(1)


def test_a_new_rule_is_previewed_on_the_events_it_would_have_matched(
        pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Collection stores each event with the rules it matched then; a candidate rule that matches
    other events (here a new one, on an event no live rule scores) is matched again in the
    replay, as collection under the candidate would have matched it: the preview names what a
    fresh stack under the candidate says."""

    rules = _candidate(tmp_path, points=25)  # the demo link as it is
    scoring = rules / "scoring.yaml"
    text = scoring.read_text()
    anchor = "  - id: demo_link_clicked\n"
    new_rule = ("  - id: trial_started\n    category: product\n    points: 30\n    when: {event: Trial Started}\n")
    scoring.write_text(text.replace(anchor, new_rule + anchor, 1))
    journeys = {"trial.io": ["Demo Link Clicked", "Webinar Attended", "Trial Started"],  # 75 -> 105
                "plain.io": ["Webinar Attended"]}
    _journeys(pipeline, journeys)
    assert pipeline.account("trial.io")["score"] < 100  # no live rule scores a trial
    report = _report(capsys, scoring)

    truth = _fresh_stack(pipeline, rules, monkeypatch, journeys).account("trial.io")
    assert truth["score"] >= truth["threshold"]
    assert report["newlySdrReady"] == ["trial.io"]
    moved = {row["id"]: row for row in report["accountsMovingMost"] if row["change"]}
    assert set(moved) == {"trial.io"} and moved["trial.io"]["candidate"] == truth["score"]
    trial = next(row for row in report["rules"] if row["rule"] == "trial_started")
    assert (trial["current"], trial["candidate"]) == (0.0, 30.0)


def test_the_window_counts_the_engagement_of_its_days_only(pipeline: Pipeline, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`make preview DAYS=30`: events older than 30 days earn nothing under either rules set (who
    the contact is, its title and company, still count: fit); DAYS=0 replays every retained event."""
    _journeys(pipeline, {"old.io": ["Demo Link Clicked", "Webinar Attended"]})
    pipeline.advance(days=40)
    _journeys(pipeline, {"new.io": ["Demo Link Clicked"]})
    rules = _candidate(tmp_path) / "scoring.yaml"

    def run(*flags: str) -> dict[str, Any]:
        capsys.readouterr()
        assert preview.main(["--rules", str(rules), "--json", *flags]) == 0
        return json.loads(capsys.readouterr().out)

    windowed = run("--days", "30")
    assert windowed["window"]["days"] == 30
    assert windowed["window"]["since"] == (pipeline.now - timedelta(days=30)).isoformat()
    demo = next(row for row in windowed["rules"] if row["rule"] == "demo_link_clicked")
    assert (demo["current"], demo["candidate"]) == (25.0, 40.0)  # new.io's click alone
    moved = {row["id"] for row in windowed["accountsMovingMost"] if row["change"]}
    assert moved == {"new.io"}
    contacts = {row["id"]: row for row in windowed["contactsMovingMost"]}
    assert "u-old.io" not in contacts or contacts["u-old.io"]["current"] == contacts["u-old.io"]["candidate"]

    every = run("--days", "0")
    assert every["window"] == {"days": None, "since": None}
    demo = next(row for row in every["rules"] if row["rule"] == "demo_link_clicked")
    assert (demo["current"], demo["candidate"]) == (50.0, 80.0)  # both clicks
    assert {row["id"] for row in every["accountsMovingMost"] if row["change"]} == {"old.io", "new.io"}
    assert run()["window"]["days"] == 90  # the default
    capsys.readouterr()
    assert preview.main(["--rules", str(rules), "--days", "-1"]) == 2
    assert "--days: -1 is not a number of days" in capsys.readouterr().err


def test_make_preview_passes_the_window() -> None:
    import subprocess

    root = Path(__file__).resolve().parents[2]
    dry = subprocess.run(["make", "-n", "preview", "RULES=candidate.yaml", "DAYS=30"], cwd=root,
                         capture_output=True, text=True, check=True).stdout
    assert '--days "30"' in dry
    dry = subprocess.run(["make", "-n", "preview", "RULES=candidate.yaml"], cwd=root,
                         capture_output=True, text=True, check=True).stdout
    assert "--days" not in dry  # the command's default: 90
