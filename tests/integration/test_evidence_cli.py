"""`make calibrate HTML=<page> CANDIDATE=<dir>` and `make preview HTML=<page>` on the local stack:
the calibration's page and its candidate scoring.yaml with the diff, then the preview of that
candidate with its page; nothing applied, the table unchanged; an output that cannot be
written exits 2 naming it; the Makefile passes the variables as the flags."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from leadscore.rulesfiles.loading import load_scoring

from local import calibrate, candidate, preview
from tests.integration.conftest import Pipeline
from tests.integration.test_calibrate import _outcomes

ROOT = Path(__file__).resolve().parents[2]


def test_a_calibration_writes_its_page_and_a_candidate_whose_preview_writes_its_own(
        pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _outcomes(pipeline, tmp_path / "outcomes.csv", demos=36, demo_wins=24, others=36, other_wins=6)
    before = pipeline.table_items()
    page, out = tmp_path / "calibration.html", tmp_path / "candidate"
    capsys.readouterr()
    assert calibrate.main(["--data", str(data), "--json", "--html", str(page), "--candidate", str(out)]) == 0
    printed = capsys.readouterr()
    report = json.loads(printed.out)  # with --json, stdout stays one JSON document; the rest goes to stderr
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.count("<svg") == 3
    for row in report["rules"]:
        assert row["rule"] in text
    assert f"HTML page: {page}" in printed.err

    suggested = {row["rule"]: row["suggestedPoints"] for row in report["rules"]
                 if row.get("suggestedPoints") is not None}
    assert suggested["demo_requested"] > 0 and suggested["webinar_attended"] < 0
    rules = candidate.current_points(load_scoring(out / "scoring.candidate.yaml"))
    assert {rule: rules[rule] for rule in suggested} == suggested
    diff = (out / "scoring.diff").read_text()
    assert diff and diff in printed.err and f"candidate: {out / 'scoring.candidate.yaml'}" in printed.err
    assert pipeline.table_items() == before  # nothing applied, nothing written to the table

    preview_page = tmp_path / "preview.html"
    assert preview.main(["--rules", str(out / "scoring.candidate.yaml"), "--json", "--html", str(preview_page)]) == 0
    previewed = json.loads(capsys.readouterr().out)
    shown = preview_page.read_text()
    assert shown.count("<svg") >= 2
    for account in previewed["newlySdrReady"] + previewed["noLongerSdrReady"]:
        assert f"<li>{account}</li>" in shown
    for row in previewed["accountsMovingMost"]:
        assert row["id"] in shown
    assert pipeline.table_items() == before

    # without --json the diff and what to do next follow the table on stdout
    assert calibrate.main(["--data", str(data), "--candidate", str(out)]) == 0
    shown = capsys.readouterr().out
    assert shown.index("lift chart (close rate by score band):") < shown.index(diff)
    assert shown.rstrip("\n").splitlines()[-1].startswith(f"candidate: {out / 'scoring.candidate.yaml'} (")


def test_an_output_that_cannot_be_written_exits_2_naming_it(pipeline: Pipeline, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    data = _outcomes(pipeline, tmp_path / "outcomes.csv", demos=2, demo_wins=1, others=2, other_wins=0)
    missing = tmp_path / "no" / "such" / "folder" / "page.html"
    capsys.readouterr()
    assert calibrate.main(["--data", str(data), "--html", str(missing)]) == 2
    assert f"--html {missing}: No such file or directory" in capsys.readouterr().err
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert calibrate.main(["--data", str(data), "--candidate", str(blocked)]) == 2
    assert f"--candidate {blocked}:" in capsys.readouterr().err


def test_the_makefile_passes_html_and_candidate_as_the_flags() -> None:
    def dry(*variables: str) -> str:
        return subprocess.run(["make", "-n", *variables], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    calibrating = dry("calibrate", "DATA=o.csv", "HTML=c.html", "CANDIDATE=out")
    assert '--html "c.html"' in calibrating and '--candidate "out"' in calibrating
    assert "--html" not in dry("calibrate", "DATA=o.csv") and "--candidate" not in dry("calibrate", "DATA=o.csv")
    assert '--html "p.html"' in dry("preview", "RULES=s.yaml", "HTML=p.html")
    assert "--html" not in dry("preview", "RULES=s.yaml")
