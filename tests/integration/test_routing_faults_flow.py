"""Routing faults on the stack of template.yaml (moto): a routing pass working from a stale
index page, a corrupt account item on the routing index (issue 21, items 2 and 13)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

import pytest

from tests.integration.conftest import Pipeline
from tests.integration.test_route_flow import item, qualify, routed_messages, sdr, use_routing

if TYPE_CHECKING:
    from leadscore.services.router import Router


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def router_at(pipeline: Pipeline, now: datetime) -> Router:
    """A routing pass's router with its own clock (the one the function would build)."""
    from leadscore.adapters import runtime
    from leadscore.adapters.storage import Store
    from leadscore.services.router import Router

    return Router(Store(pipeline.stack.name_of("Table")), runtime.config().scoring, runtime.routing(), now)


class TestItem2:
    def test_item2_a_stale_nobody_available_write_does_not_overwrite_a_newer_sla_reroute(
            self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
        # Given ana has the account (routed 2026-11-02 09:00, SLA 11-04 09:00); on 11-04 both
        # are out of office, on 11-05 both are back
        use_routing(monkeypatch, mode="round_robin", sdrs=[
            sdr("ana", out_of_office=[{"from": "2026-11-04", "to": "2026-11-04"}]),
            sdr("ben", out_of_office=[{"from": "2026-11-03", "to": "2026-11-04"}])])
        qualify(pipeline)
        pipeline.settle()
        assert [m["group"] for m in routed_messages(pipeline)] == ["ana"]
        # A pass started late on 11-04 reads its page of due accounts...
        slow = router_at(pipeline, at("2026-11-04T23:58:00+00:00"))
        (stale,) = list(slow.store.query_route_due(slow.now))
        # ...while the next pass, just after midnight, re-routes the account to ben
        pipeline.set_clock(at("2026-11-05T00:03:00+00:00"))
        assert pipeline.stack.run_schedule("RoutingPassFunction", pipeline.now)["rerouted"] == 1
        pipeline.settle()
        # When the slow pass reaches it (nobody available as of its clock), its write conflicts:
        # it reads again and finds the account routed to ben, SLA running
        outcome = slow.route_due(stale)
        assert (outcome.status, outcome.sdr) == ("already_routed", "ben")
        stored, assignment = item(pipeline, "A#acmetech.io", "P"), item(pipeline, "A#acmetech.io", "RT#000001")
        assert stored is not None and assignment is not None
        assert stored["sdr"]["id"] == assignment["sdr"] == "ben"
        assert int(stored["rt"]["n"]) == int(assignment["att"]) == 2 and "w" not in stored["rt"]
        assert pipeline.account("acmetech.io")["sdr"]["id"] == "ben"
        # and ben's SLA, when it runs out, re-routes it (no transaction cancelled for ever)
        pipeline.set_clock(at("2026-11-07T01:00:00+00:00"))
        result = pipeline.stack.run_schedule("RoutingPassFunction", pipeline.now)
        assert (result["rerouted"], result["conflicts"], result["failed"]) == (1, 0, 0)
        pipeline.settle()
        assert [m["group"] for m in routed_messages(pipeline)] == ["ben", "ana"]


class TestItem13:
    def test_item13_a_corrupt_account_on_the_index_is_parked_and_the_pass_goes_on(
            self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
        from leadscore.adapters import items
        from leadscore.adapters.storage import marshal

        # Given three accounts routed, and the oldest one's item corrupt (its traits unreadable)
        use_routing(monkeypatch, mode="round_robin", sdrs=[sdr("ana"), sdr("ben"), sdr("cy")])
        for n, domain in enumerate(["first.io", "second.io", "third.io"]):
            qualify(pipeline, n, domain=domain)
            pipeline.settle()
            pipeline.advance(minutes=1)
        assert len(routed_messages(pipeline)) == 3
        pipeline.stack.client("dynamodb").update_item(
            TableName=pipeline.stack.name_of("Table"), Key=marshal({"pk": "A#first.io", "sk": "P"}),
            UpdateExpression="SET #body = :bad", ExpressionAttributeNames={"#body": items.ACCOUNT_BODY},
            ExpressionAttributeValues=marshal({":bad": b"x\x9cnot deflate"}))  # entries and traits, compressed
        # When their SLAs run out, the pass re-routes the two others and parks the corrupt one
        pipeline.advance(hours=49)
        with caplog.at_level(logging.ERROR):
            result = pipeline.stack.run_schedule("RoutingPassFunction", pipeline.now)
        assert (result["due"], result["rerouted"], result["failed"]) == (3, 2, 1)
        assert any("first.io" in r.getMessage() and "does not decompress" in r.getMessage() for r in caplog.records)
        pipeline.settle()
        assert sorted(m["body"]["accountId"] for m in routed_messages(pipeline)) == ["second.io", "third.io"]
        # parked an hour: the next runs go on without it, then it is tried again
        parked = item(pipeline, "A#first.io", "P")
        assert parked is not None and parked["due_at"] > pipeline.now.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert pipeline.stack.run_schedule("RoutingPassFunction", pipeline.now)["due"] == 0
        pipeline.advance(hours=2)
        assert pipeline.stack.run_schedule("RoutingPassFunction", pipeline.now)["failed"] == 1
