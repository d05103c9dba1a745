"""`make bench` at small sizes: it runs end to end, produces numbers, and the counted budgets hold.

The CPU-timed budgets (rules engine, cold start) are checked to produce numbers only: on a
busy CI machine their ratios are noise, and `make bench` is where they are judged.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench import run

pytestmark = pytest.mark.slow

COUNTED = ("1 collection", "2 aggregation", "3 decay", "4 state changes")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out: Path = tmp_path_factory.mktemp("bench") / "results.json"
    run.main(["--contacts", "200", "--burst", "300", "--decay-sizes", "300,1200", "--decay-due", "40",
              "--engine-iterations", "200", "--coldstart-runs", "1", "--json", str(out)])
    return json.loads(out.read_text())


def test_every_section_produces_numbers(results: dict) -> None:
    sections = {row["section"] for row in results["rows"]}
    assert {"1 collection", "2 aggregation", "3 decay", "4 state changes", "5 rules engine", "6 cold start",
            "7 cost"} <= sections
    for row in results["rows"]:
        if isinstance(row["measured"], float | int):
            assert not math.isnan(row["measured"]), row


def test_counted_budgets_hold(results: dict) -> None:
    failed = [row for row in results["rows"] if row["section"] in COUNTED and row["status"] == "FAIL"]
    assert failed == []


def test_collection_is_one_conditional_write_per_event(results: dict) -> None:
    singles = results["pipeline"]["singles"]
    assert singles["collect"]["ddb_requests"] == singles["events"] == 200
    assert singles["collect"]["wcu"] == 200


def test_single_events_cost_within_budget(results: dict) -> None:
    row = next(r for r in results["rows"] if r["metric"].startswith("USD / million single HTTP events"))
    assert 0 < row["measured"] <= 3.50


def test_decay_reads_do_not_grow_with_the_table(results: dict) -> None:
    small, large = results["decay"]
    assert small["due"] == large["due"] == 40
    assert small["items_read"] == large["items_read"] == 40
