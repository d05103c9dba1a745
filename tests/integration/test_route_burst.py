"""A burst of `Account SDR Ready` into one pool: route functions running at once on the moto
stack (each DynamoDB call atomic, the functions interleaving between calls), all racing for
the pool's counter. `make bench` runs the same with 100 (bench/routing.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.integration.conftest import Pipeline
from tests.integration.test_route_flow import qualify, route_function_paused, routed_messages, sdr, use_routing

TEAM = ("ana", "ben", "cy")


def ready_accounts(pipeline: Pipeline, count: int) -> list[str]:
    """`count` SDR-ready accounts: one made through the pipeline (not routed: the route
    function is paused), cloned; the stream is moved past the clones."""
    from leadscore.adapters.storage import marshal, unmarshal

    with route_function_paused(pipeline):
        template_id = qualify(pipeline)
        pipeline.settle()
    client, table = pipeline.stack.client("dynamodb"), pipeline.stack.name_of("Table")
    template = unmarshal(client.get_item(TableName=table, Key=marshal({"pk": f"A#{template_id}", "sk": "P"}),
                                         ConsistentRead=True)["Item"])
    assert template["state"] == "sdr_ready"
    ids = [f"burst{i:03d}.io" for i in range(count)]
    for account_id in ids:
        client.put_item(TableName=table, Item=marshal({**template, "pk": f"A#{account_id}", "id": account_id,
                                                       "domain": account_id}))
    pipeline.stack.skip_stream_records()
    return ids


def test_item10_a_burst_of_40_routes_into_one_pool_all_routed_fairly_without_function_errors(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.routing import concurrent_routes

    # Given one pool of three equal SDRs and 40 SDR-ready accounts
    use_routing(monkeypatch, mode="round_robin", sdrs=[sdr(s) for s in TEAM])
    ids = ready_accounts(pipeline, 40)
    # When 40 route functions run at once, one account each
    burst = concurrent_routes(pipeline.stack, ids)
    pipeline.settle()
    # Then none failed, every account is routed once, and the pool's turns stayed fair
    assert burst.errors == {}
    assert Counter(o["status"] for o in burst.outcomes.values()) == {"routed": 40}
    counts = burst.per_sdr(TEAM)
    assert sum(counts.values()) == 40 and max(counts.values()) - min(counts.values()) <= 1, counts
    messages = routed_messages(pipeline)
    assert sorted(m["body"]["accountId"] for m in messages) == ids
    assert Counter(m["group"] for m in messages) == counts
    # the counter stepped once per account: nobody routed twice, no turn lost
    accounts: dict[str, Any] = {a: pipeline.account(a) for a in ids[:5]}
    assert all(a["state"] == "routed" for a in accounts.values())
