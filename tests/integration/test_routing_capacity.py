"""Full SDRs on the moto stack: a route function learns who is full from the one pool read it
does (the pool record's day counts, kept by every routing transaction in the record of each
pool the SDR is in), so a full SDR costs no refused transaction and no read per SDR."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.integration.conftest import Pipeline
from tests.integration.test_route_burst import ready_accounts
from tests.integration.test_route_flow import qualify, route_function_paused, routed_messages, sdr, use_routing


def route(pipeline: Pipeline, account_id: str) -> dict[str, Any]:
    """One route function invocation (a fresh router: what one `Account SDR Ready` costs)."""
    event = {"detail-type": "Account SDR Ready", "source": "leadscore", "detail": {"accountId": account_id, "cycle": 1}}
    return pipeline.stack.invoke("RouteFunction", event)


def test_item9_full_sdrs_cost_no_refused_transaction_and_no_read_per_sdr(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    from leadscore.adapters import runtime

    from tests.integration.test_accounts import counting_calls

    # Given a pool of 9 whose s0, s3 and s6 take one account a day, and 15 SDR-ready accounts
    team = [f"s{i}" for i in range(9)]
    use_routing(monkeypatch, mode="round_robin",
                sdrs=[sdr(s, daily_capacity=1 if s in ("s0", "s3", "s6") else 50) for s in team])
    ids = ready_accounts(pipeline, 15)
    # When the first 9 go one each (the three are now full), then 6 more, one invocation each
    assert [route(pipeline, a)["sdr"] for a in ids[:9]] == team
    with counting_calls(runtime.store().client) as calls:
        outcomes = [route(pipeline, a) for a in ids[9:]]
    # Then the 6 went to the others, each with one transaction (none refused), two reads of
    # three keys (account + assignment, the pool record: not one per SDR), no other write
    assert [o["status"] for o in outcomes] == ["routed"] * 6
    assert [o["sdr"] for o in outcomes] == ["s1", "s2", "s4", "s5", "s7", "s8"]
    assert (calls["TransactWriteItems"], calls["BatchGetItem"], calls["keys_read"]) == (6, 12, 18)
    assert calls["UpdateItem"] == calls["PutItem"] == calls["GetItem"] == calls["Query"] == calls["Scan"] == 0
    pipeline.settle()
    assert Counter(m["group"] for m in routed_messages(pipeline)) == {s: 1 for s in team} | {
        s: 2 for s in ("s1", "s2", "s4", "s5", "s7", "s8")}


def test_item9_an_sdr_filled_through_another_pool_is_skipped_without_a_refused_transaction(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    from leadscore.adapters import runtime

    from tests.integration.test_accounts import counting_calls

    # Given ana (one account a day) in two pools: na (US) and the fallback pool
    use_routing(monkeypatch, mode="territory",
                sdrs=[sdr("ana", daily_capacity=1), sdr("ben"), sdr("cy")],
                pools=[{"id": "na", "sdrs": ["ana", "ben"]}, {"id": "rest", "sdrs": ["ana", "cy"]}],
                territories=[{"id": "us", "when": {"country": ["US"]}, "pool": "na"}], fallback_pool="rest")
    with route_function_paused(pipeline):
        qualify(pipeline, 0, domain="usco.io", country="US")
        qualify(pipeline, 1, domain="deco.io", country="DE")
        pipeline.settle()
    # When a US account fills her through na, then a German one comes to rest on her turn
    assert route(pipeline, "usco.io")["sdr"] == "ana"
    with counting_calls(runtime.store().client) as calls:
        outcome = route(pipeline, "deco.io")
    # Then rest's record already said she was full: cy, with one transaction and no refusal
    assert (outcome["status"], outcome["sdr"]) == ("routed", "cy")
    assert (calls["TransactWriteItems"], calls["BatchGetItem"], calls["UpdateItem"]) == (1, 2, 0)


def test_item9_a_count_made_outside_routing_costs_one_refused_transaction_once(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC

    from leadscore.adapters import runtime
    from leadscore.adapters.items import sdr_day_key
    from leadscore.adapters.storage import marshal

    from tests.integration.test_accounts import counting_calls

    # Given ana's day count at her capacity, written where no pool record saw it
    use_routing(monkeypatch, mode="round_robin", sdrs=[sdr("ana", daily_capacity=2), sdr("ben"), sdr("cy")])
    pk, sk = sdr_day_key("ana", pipeline.now.astimezone(UTC).date())
    pipeline.stack.client("dynamodb").put_item(TableName=pipeline.stack.name_of("Table"),
                                               Item=marshal({"pk": pk, "sk": sk, "k": "SD", "n": 2}))
    ids = ready_accounts(pipeline, 4)
    # When four accounts come, one invocation each
    with counting_calls(runtime.store().client) as calls:
        sdrs = [route(pipeline, a)["sdr"] for a in ids]
    # Then her day count refused the first once (the pool record learned it), never again
    assert sdrs == ["ben", "cy", "ben", "cy"]
    assert (calls["TransactWriteItems"], calls["UpdateItem"]) == (5, 1)
