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

COUNTED = ("1 collection", "2 aggregation", "3 decay", "4 state changes", "8 routing", "9 team lead")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out: Path = tmp_path_factory.mktemp("bench") / "results.json"
    run.main(["--contacts", "200", "--burst", "300", "--decay-sizes", "300,1200", "--decay-due", "40",
              "--engine-iterations", "200", "--coldstart-runs", "1", "--routing-accounts", "20",
              "--routing-teams", "3,12", "--routing-full", "4", "--routing-burst", "30", "--routing-sizes", "200,600",
              "--team-accounts", "10", "--json", str(out)])
    return json.loads(out.read_text())


def test_every_section_produces_numbers(results: dict) -> None:
    sections = {row["section"] for row in results["rows"]}
    assert {"1 collection", "2 aggregation", "3 decay", "4 state changes", "5 rules engine", "6 cold start",
            "7 cost", "8 routing", "9 team lead"} <= sections
    for row in results["rows"]:
        if isinstance(row["measured"], float | int):
            assert not math.isnan(row["measured"]), row


def test_counted_budgets_hold(results: dict) -> None:
    failed = [row for row in results["rows"] if row["section"] in COUNTED and row["status"] == "FAIL"]
    assert failed == []


def test_collection_is_one_conditional_write_per_event(results: dict) -> None:
    singles = results["pipeline"]["singles"]
    # the event's conditional write, and the request's one read of the erased ids (the budget's 2)
    assert singles["collect"]["ddb_requests"] == 2 * singles["events"] == 400
    assert singles["collect"]["wcu"] == 200


def test_single_events_cost_within_budget(results: dict) -> None:
    row = next(r for r in results["rows"] if r["metric"].startswith("USD / million single HTTP events"))
    assert 0 < row["measured"] <= 3.50


def test_decay_reads_do_not_grow_with_the_table(results: dict) -> None:
    small, large = results["decay"]
    assert small["due"] == large["due"] == 40
    assert small["items_read"] == large["items_read"] == 40


def test_a_routed_account_costs_one_transaction_two_reads_one_send_one_bus_entry(results: dict) -> None:
    small, large, full = results["routing"]["routes"]
    for figures in (small, large, full):
        route, stream = figures["counts"], figures["stream"]
        assert figures["routed"] == figures["messages"] == 20
        assert route["ddb:TransactWriteItems"] == 20 and route["ddb:BatchGetItem"] == 40
        assert not any(route.get(f"ddb:{op}") for op in ("PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"))
        assert stream["sqs:SendMessage"] == stream["bus:Account Routed"] == 20
    # a pool of 12 SDRs reads what a pool of 3 does, also with 4 of them full
    assert small["counts"]["keys_read"] == large["counts"]["keys_read"] == full["counts"]["keys_read"] == 60


def test_item9_full_sdrs_cost_no_refused_transaction_and_no_read_per_sdr(results: dict) -> None:
    *_, full = results["routing"]["routes"]
    assert (full["team_size"], full["full"], full["routed"]) == (12, 4, 20)
    assert full["to_full"] == 0 and not full["counts"].get("ddb_failed")
    assert full["counts"]["ddb:TransactWriteItems"] == 20 and full["counts"]["keys_read"] == 60


def test_item10_a_burst_into_one_pool_ends_all_routed_fair_and_without_function_errors(results: dict) -> None:
    burst = results["routing_burst"]
    assert burst["accounts"] == burst["routed"] == burst["messages"] == 30
    assert burst["function_errors"] == 0
    counts = burst["per_sdr"].values()
    assert sum(counts) == 30 and max(counts) - min(counts) <= 1


def test_the_sla_pass_reads_about_one_item_per_account_due_at_both_sizes(results: dict) -> None:
    small, large = results["routing"]["passes"]
    for figures in (small, large):
        assert figures["due"] == figures["rerouted"] == figures["transactions"] == figures["sends"] == 21
        assert figures["scans"] == 0 and figures["items_read"] <= 1.2 * figures["due"]
    assert small["items_read"] == large["items_read"]


def test_the_team_list_reads_one_query_and_two_items_per_sdr_whatever_the_history(results: dict) -> None:
    small, large = results["team"]
    assert (small["team_size"], small["routed"], large["team_size"], large["routed"]) == (3, 10, 12, 30)
    for figures in (small, large):
        counts = figures["counts"]
        assert counts["ddb:Query"] == figures["listed"] == figures["team_size"]
        assert not any(counts.get(f"ddb:{op}") for op in ("Scan", "GetItem", "BatchGetItem"))
        assert counts["items_read"] == 2 * figures["listed"]  # her record and today's count
        assert figures["open_listed"] == figures["routed"]
        assert figures["book"]["ddb:Query"] == figures["book"]["ddb:BatchGetItem"] == 1
