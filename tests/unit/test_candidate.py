"""The candidate scoring.yaml a calibration suggests (local/candidate.py): the current file with
only the suggested numbers changed (comments, order and layout kept), loaded back with the
rules loader to carry exactly the suggested values; its diff names exactly the changed lines;
with no suggestion the candidate is the current file and the diff is empty, said so; a cap
that would hold back new points is raised and a requalify_below at or over a new threshold is
lowered, each said; what cannot be applied (a bucket rule, an unknown rule) is said, not
guessed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from leadscore.rulesfiles.errors import ConfigError
from leadscore.rulesfiles.loading import load_scoring

from local import candidate

CURRENT = Path(__file__).resolve().parents[2] / "config" / "scoring.yaml"


def _report(points: dict[str, int | None], threshold: float | None = None) -> dict[str, Any]:
    """A calibration report's parts the candidate reads: the rules' suggested points, the suggested threshold."""
    return {"warnings": [], "rules": [{"rule": rule, "suggestedPoints": value} for rule, value in points.items()],
            "threshold": {"current": 100.0, "suggested": None if threshold is None else {"threshold": threshold}}}


def _changed_lines(diff: str) -> tuple[list[str], list[str]]:
    lines = [line for line in diff.splitlines() if not line.startswith(("---", "+++", "@@"))]
    return [x[1:] for x in lines if x.startswith("-")], [x[1:] for x in lines if x.startswith("+")]


def test_the_candidate_carries_exactly_the_suggested_numbers_and_changes_nothing_else(tmp_path: Path) -> None:
    report = _report({"demo_requested": 35, "title_executive": 12, "account_size": 4, "webinar_attended": -6,
                      "email_opened": None}, threshold=90.0)
    made, diff, lines = candidate.write(report, CURRENT, tmp_path)
    written = (tmp_path / "scoring.candidate.yaml").read_text()
    scoring = load_scoring(tmp_path / "scoring.candidate.yaml")
    now = candidate.current_points(load_scoring(CURRENT))
    after = candidate.current_points(scoring)
    assert {rule: after[rule] for rule in ("demo_requested", "title_executive", "account_size",
                                           "webinar_attended")} == {"demo_requested": 35, "title_executive": 12,
                                                                    "account_size": 4, "webinar_attended": -6}
    assert {rule: value for rule, value in after.items() if value != now[rule]} == {
        "demo_requested": 35, "title_executive": 12, "account_size": 4, "webinar_attended": -6}
    assert scoring.account.thresholds.sdr_ready == 90 and scoring.account.thresholds.requalify_below == 80
    # the text: the same lines but the four points and the threshold, comments and order kept
    old, new = CURRENT.read_text().splitlines(), written.splitlines()
    assert len(old) == len(new)
    differing = [n for n, (a, b) in enumerate(zip(old, new, strict=True), start=1) if a != b]
    assert differing == sorted(change.line for change in made.changes) and len(differing) == 5
    for n in differing:
        assert re.sub(r"-?\d+(\.\d+)?$", "", old[n - 1]) == re.sub(r"-?\d+(\.\d+)?$", "", new[n - 1])
    assert [line for line in new if line.lstrip().startswith("#")] == [
        line for line in old if line.lstrip().startswith("#")]
    # the diff names exactly those lines, as they were and as they are
    removed, added = _changed_lines(diff)
    assert removed == [old[n - 1] for n in differing] and added == [new[n - 1] for n in differing]
    assert (tmp_path / "scoring.diff").read_text() == diff
    assert diff.startswith(f"--- {CURRENT}\n+++ {tmp_path / 'scoring.candidate.yaml'}\n")
    assert lines[-1].startswith(f"candidate: {tmp_path / 'scoring.candidate.yaml'} (5 numbers changed")
    assert "make preview RULES=" in lines[-1] and "Nothing is applied" in lines[-1]


def test_without_a_suggestion_the_candidate_is_the_current_file_and_the_diff_is_empty(tmp_path: Path) -> None:
    report = _report({"demo_requested": None, "webinar_attended": None})
    made, diff, lines = candidate.write(report, CURRENT, tmp_path)
    assert (tmp_path / "scoring.candidate.yaml").read_text() == CURRENT.read_text()
    assert diff == "" and (tmp_path / "scoring.diff").read_text() == "" and made.changes == []
    assert lines == [f"no change suggested: {tmp_path / 'scoring.candidate.yaml'} is the current scoring.yaml and "
                     f"{tmp_path / 'scoring.diff'} is empty (no rule has enough support for suggested points, and "
                     "no threshold was suggested)"]
    # suggestions equal to the current numbers change nothing either, and say why
    _, diff, lines = candidate.write(_report({"demo_requested": 50}, threshold=100.0), CURRENT, tmp_path)
    assert diff == "" and lines[-1].endswith("(the suggested values are the current ones)")


def test_a_cap_that_would_hold_back_the_new_points_is_raised_and_a_requalify_below_over_the_threshold_lowered(
        tmp_path: Path) -> None:
    # demo_requested: points 50, cap 50; the threshold 100 with requalify_below 80
    made, diff, lines = candidate.write(_report({"demo_requested": 70, "unsubscribed": -14}, threshold=60.0),
                                        CURRENT, tmp_path)
    scoring = load_scoring(tmp_path / "scoring.candidate.yaml")
    demo = next(rule for rule in scoring.engagement if rule.id == "demo_requested")
    unsubscribed = next(rule for rule in scoring.engagement if rule.id == "unsubscribed")
    assert (demo.points, demo.cap) == (70, 70) and (unsubscribed.points, unsubscribed.cap) == (-14, 14)
    assert (scoring.account.thresholds.sdr_ready, scoring.account.thresholds.requalify_below) == (60, 48)
    assert "note: engagement[demo_requested].cap raised from 50 to 70: under the new points it would hold them " \
           "back" in lines
    assert "note: account.thresholds.requalify_below lowered from 80 to 48: it must stay below sdr_ready" in lines
    assert any(line.startswith("note: the threshold was fitted to the scores under the current points")
               for line in lines)
    assert _changed_lines(diff)[1] == ["    points: -14", "    cap: 14", "    points: 70", "    cap: 70",
                                       "    sdr_ready: 60", "    requalify_below: 48"]
    # a threshold of 0 (every account): requalify_below goes under it
    candidate.write(_report({}, threshold=0.0), CURRENT, tmp_path)
    thresholds = load_scoring(tmp_path / "scoring.candidate.yaml").account.thresholds
    assert (thresholds.sdr_ready, thresholds.requalify_below) == (0, -1)


def test_what_cannot_be_applied_is_said_and_left_as_it_is(tmp_path: Path) -> None:
    made, diff, lines = candidate.write(_report({"site_visits": 9, "no_such_rule": 5}), CURRENT, tmp_path)
    assert diff == "" and made.changes == []
    assert "note: site_visits: scored by buckets, not changed (suggested 9 points for it firing: set its buckets " \
           "by hand)" in lines
    assert "note: no_such_rule: not in scoring.yaml, not changed (suggested 5)" in lines


def test_the_edit_is_made_where_the_number_is_flow_style_and_trailing_comments_included(tmp_path: Path) -> None:
    text = CURRENT.read_text()
    block = "  - id: demo_link_clicked\n    category: content\n    points: 25\n    cap: 50\n" \
            "    when: {event: Demo Link Clicked}\n"
    assert block in text
    text = text.replace(block, "  - {id: demo_link_clicked, category: content, points: 25, cap: 50, "
                               "when: {event: Demo Link Clicked}}  # the flow style\n")
    text = text.replace("    points: 10\n    cap: 30\n    when: {event: Case Study Downloaded}",
                        "    points: 10  # was 5 in 2025\n    cap: 30\n    when: {event: Case Study Downloaded}")
    current = tmp_path / "scoring.yaml"
    current.write_text(text)
    _, diff, _ = candidate.write(_report({"demo_link_clicked": 40, "case_study_downloaded": 12}), current,
                                 tmp_path / "out")
    assert _changed_lines(diff) == (
        ["    points: 10  # was 5 in 2025",
         "  - {id: demo_link_clicked, category: content, points: 25, cap: 50, when: {event: Demo Link Clicked}}"
         "  # the flow style"],
        ["    points: 12  # was 5 in 2025",
         "  - {id: demo_link_clicked, category: content, points: 40, cap: 50, when: {event: Demo Link Clicked}}"
         "  # the flow style"])
    points = candidate.current_points(load_scoring(tmp_path / "out" / "scoring.candidate.yaml"))
    assert (points["demo_link_clicked"], points["case_study_downloaded"]) == (40, 12)


def test_a_number_that_is_not_plain_or_a_candidate_that_does_not_validate_is_refused(tmp_path: Path) -> None:
    current = tmp_path / "scoring.yaml"
    current.write_text(CURRENT.read_text().replace("    points: 50\n    cap: 50\n    when: {event: Demo Requested}",
                                                   '    points: "50"\n    cap: 50\n    when: {event: Demo Requested}'))
    with pytest.raises(candidate.CandidateError, match=r"engagement\[demo_requested\]\.points: '50' is not a plain"):
        candidate.write(_report({"demo_requested": 30}), current, tmp_path / "out")
    # the current file broken elsewhere: the candidate does not validate, named by the loader
    current.write_text(CURRENT.read_text().replace("  contact_cap: 80\n", "  contact_cap: many\n"))
    with pytest.raises(ConfigError, match="contact_cap"):
        candidate.write(_report({"demo_requested": 30}), current, tmp_path / "out")
