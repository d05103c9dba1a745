"""Routing through the real path: the stack of template.yaml on moto, Account SDR Ready from the
stream, the route function, the routed FIFO queue, the routing pass on its schedule."""

from __future__ import annotations

import functools
import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.integration.conftest import Pipeline

HOUR = timedelta(hours=1)


def qualify(pipeline: Pipeline, n: int = 0, domain: str = "acmetech.io", country: str = "US") -> str:
    """One batch call that makes an account SDR-ready: a VP at a 200-person software company
    (account fit 30) who requested a demo and clicked a demo link (75): 105."""
    user = f"u-{n}-{domain}"
    company = {"name": domain.split(".")[0].title(), "website": f"https://www.{domain}", "industry": "Software",
               "employees": 200, "address": {"country": country}}
    batch = [
        {"type": "identify", "userId": user, "traits": {"email": f"vp{n}@{domain}", "name": f"Vp {n}",
                                                        "title": "VP Sales", "address": {"country": country}}},
        {"type": "group", "userId": user, "groupId": domain, "traits": company},
        {"type": "track", "userId": user, "event": "Demo Requested"},
        {"type": "track", "userId": user, "event": "Demo Link Clicked"},
    ]
    stamped = [{**m, "timestamp": pipeline.now.isoformat(), "messageId": f"{user}-{i}"} for i, m in enumerate(batch)]
    response = pipeline.http("POST", "/v1/batch", body={"batch": stamped}, basic_user="wk_demo_website")
    assert response["statusCode"] == 200, response
    return domain


def routed_messages(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Every message on the routed queue, received and deleted (FIFO holds back a group's next
    messages while one of it is in flight), as an SDR tool would."""
    sqs = pipeline.stack.client("sqs")
    url = pipeline.stack.url_of("RoutedQueue")
    out: list[dict[str, Any]] = []
    while True:
        page = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                   AttributeNames=["All"]).get("Messages", [])
        if not page:
            return out
        out += [{"body": json.loads(m["Body"]), "group": m["Attributes"]["MessageGroupId"],
                 "dedup": m["Attributes"]["MessageDeduplicationId"]} for m in page]
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(page)])


def item(pipeline: Pipeline, pk: str, sk: str) -> dict[str, Any] | None:
    from leadscore.adapters.storage import marshal, unmarshal

    answer = pipeline.stack.client("dynamodb").get_item(TableName=pipeline.stack.name_of("Table"),
                                                         Key=marshal({"pk": pk, "sk": sk}))
    return unmarshal(answer["Item"]) if "Item" in answer else None


def counter(pipeline: Pipeline, pool: str) -> int:
    found = item(pipeline, f"POOL#{pool}", "RR")
    return int(found["n"]) if found else 0


@contextmanager
def route_function_paused(pipeline: Pipeline) -> Iterator[None]:
    """The route function's bus rule delivers nothing meanwhile (the account stays sdr_ready)."""
    spec = pipeline.stack.functions["RouteFunction"]
    events, spec.events = spec.events, {}
    try:
        yield
    finally:
        spec.events = events


def use_routing(monkeypatch: pytest.MonkeyPatch, **data: Any) -> None:
    """Run the functions with this routing.yaml content instead of the shipped one."""
    from leadscore.adapters import runtime
    from leadscore.rulesfiles.routing import RoutingConfig

    config = RoutingConfig.model_validate({"version": 1, **data})
    monkeypatch.setattr(runtime, "routing", functools.cache(lambda: config))


def sdr(sdr_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": sdr_id, "name": sdr_id.title(), "email": f"{sdr_id}@example.com", **extra}


class TestRoute:
    def test_an_account_crossing_the_threshold_is_routed_to_its_territory_sdr_once(self, pipeline: Pipeline) -> None:
        # Given a US technology account that crosses sdr_ready
        qualify(pipeline)
        pipeline.settle()
        # Then one message went to the NA pool's first SDR, exactly PRODUCT's account-routed/v1
        # (and, after its fields, why it went there: `decision`)
        (message,) = routed_messages(pipeline)
        assert message["group"] == "maya" and message["dedup"] == "acmetech.io#1"
        body = message["body"]
        assert list(body) == ["schema", "accountId", "accountName", "domain", "score", "fit", "engagement",
                              "velocity", "threshold", "sdr", "territory", "routing", "reasons", "contacts",
                              "routedAt", "slaDueAt", "cycle", "decision"]
        assert body["decision"] == {"by": "round_robin", "territory": "na", "pool": "na", "skipped": [],
                                    "text": "maya: the pool's weighted round-robin (territory na, pool na)"}
        assert body["schema"] == "account-routed/v1" and body["accountId"] == "acmetech.io"
        assert (body["score"], body["fit"], body["engagement"], body["threshold"]) == (105, 30, 75, 100)
        assert body["sdr"] == {"id": "maya", "name": "Maya Johnson", "email": "maya@example.com"}
        assert (body["territory"], body["routing"], body["cycle"]) == ("na", "territory", 1)
        assert {"rule": "demo_requested", "points": 50, "contactId": "u-0-acmetech.io"} in body["reasons"]
        assert round(sum(r["points"] for r in body["reasons"]), 2) == body["score"]
        (contact,) = body["contacts"]
        assert contact == {"contactId": "u-0-acmetech.io", "email": "vp0@acmetech.io", "title": "VP Sales",
                           "persona": "decision_maker", "score": contact["score"]}
        routed_at = datetime.fromisoformat(body["routedAt"].replace("Z", "+00:00"))
        assert routed_at == pipeline.now.replace(microsecond=0)
        assert body["slaDueAt"] == (routed_at + 48 * HOUR).strftime("%Y-%m-%dT%H:%M:%SZ")
        # and the read API and the bus say so
        account = pipeline.account("acmetech.io")
        assert account["state"] == "routed" and account["sdr"]["id"] == "maya"
        assert account["routing"]["status"] == "routed" and account["routing"]["slaDueAt"] == body["slaDueAt"]
        (routed,) = pipeline.bus("Account Routed")
        detail = routed["detail"]
        assert (detail["accountId"], detail["sdr"]["id"], detail["territory"], detail["cycle"]) == (
            "acmetech.io", "maya", "na", 1)
        assert {"score", "fit", "engagement", "velocity", "time"} <= set(detail)
        assert counter(pipeline, "na") == 1

    def test_the_same_account_sdr_ready_delivered_20_times_gives_one_message(self, pipeline: Pipeline) -> None:
        qualify(pipeline)
        pipeline.settle()
        (event,) = pipeline.bus("Account SDR Ready")
        answers = [pipeline.stack.invoke("RouteFunction", event)["status"] for _ in range(19)]
        pipeline.settle()
        assert answers == ["already_routed"] * 19
        assert len(routed_messages(pipeline)) == 1 and counter(pipeline, "na") == 1
        assert len(pipeline.bus("Account Routed")) == 1

    def test_a_route_costs_two_reads_one_transaction_one_send_and_a_redelivery_reads_only(
            self, pipeline: Pipeline) -> None:
        # PRODUCT's routing budget: one transaction plus the reads it needs, one SQS send (from
        # the stream, the transaction being the outbox) and one bus event; nothing else written
        from leadscore.adapters import runtime

        from tests.integration.test_accounts import counting_calls

        with route_function_paused(pipeline):
            qualify(pipeline)
            pipeline.settle()
        (event,) = pipeline.bus("Account SDR Ready")
        with counting_calls(runtime.store().client) as calls:
            assert pipeline.stack.invoke("RouteFunction", event)["status"] == "routed"
        assert (calls["BatchGetItem"], calls["TransactWriteItems"]) == (2, 1)
        assert calls["keys_read"] == 3  # the account, its assignment, the pool counter: not one per SDR
        assert calls["Query"] == calls["Scan"] == calls["GetItem"] == calls["PutItem"] == calls["UpdateItem"] == 0
        assert routed_messages(pipeline) == []  # not yet: the stream has not run
        with counting_calls(runtime.store().client) as again:
            assert pipeline.stack.invoke("RouteFunction", event)["status"] == "already_routed"
        assert dict(again) == {"BatchGetItem": 1, "keys_read": 2}
        pipeline.settle()
        assert [m["group"] for m in routed_messages(pipeline)] == ["maya"]
        assert len(pipeline.bus("Account Routed")) == 1

    def test_an_sdr_at_capacity_is_passed_over_by_the_transactions_condition(self, pipeline: Pipeline) -> None:
        from zoneinfo import ZoneInfo

        from leadscore.adapters import runtime
        from leadscore.adapters.items import sdr_day_key
        from leadscore.adapters.storage import marshal

        from tests.integration.test_accounts import counting_calls

        # Given maya (NA, capacity 25) already has 25 accounts on her local day
        day = pipeline.now.astimezone(ZoneInfo("America/New_York")).date()
        pk, sk = sdr_day_key("maya", day)
        pipeline.stack.client("dynamodb").put_item(TableName=pipeline.stack.name_of("Table"),
                                                   Item=marshal({"pk": pk, "sk": sk, "k": "SD", "n": 25}))
        with route_function_paused(pipeline):
            qualify(pipeline)
            pipeline.settle()
        (event,) = pipeline.bus("Account SDR Ready")
        # When the account is routed (maya's turn by the counter)
        with counting_calls(runtime.store().client) as calls:
            outcome = pipeline.stack.invoke("RouteFunction", event)
        pipeline.settle()
        # Then the transaction's condition on maya's day count refused her (and nothing else):
        # the pool records she is in now say she is full (one UpdateItem each: her count was
        # written outside routing), and the router chose the next SDR without reading again;
        # maya stays at 25
        assert outcome["status"] == "routed" and outcome["sdr"] != "maya"
        assert calls["TransactWriteItems"] == 2 and calls["BatchGetItem"] == 2
        assert calls["UpdateItem"] == 2  # the records of her pools, na and catch-all
        assert [m["group"] for m in routed_messages(pipeline)] == [outcome["sdr"]]
        assert item(pipeline, pk, sk)["n"] == 25

    def test_20_concurrent_deliveries_give_one_sdr_one_message_one_counter_step(self, pipeline: Pipeline) -> None:
        from leadscore.adapters import runtime
        from leadscore.adapters.storage import Store
        from leadscore.services.router import Router

        with route_function_paused(pipeline):
            qualify(pipeline)
            pipeline.settle()
        lock = threading.Lock()  # moto in one process is not thread-safe: AWS calls one at a time

        class Serialized:
            def __init__(self, client: Any) -> None:
                self._client = client

            def __getattr__(self, name: str) -> Any:
                attribute = getattr(self._client, name)
                if not callable(attribute):
                    return attribute

                def call(*args: Any, **kwargs: Any) -> Any:
                    with lock:
                        return attribute(*args, **kwargs)
                return call

        barrier = threading.Barrier(20, timeout=10)
        waited = threading.local()

        class EveryoneReadsFirst(Store):
            def load_pool_state(self, *args: Any, **kwargs: Any) -> Any:
                state = super().load_pool_state(*args, **kwargs)
                if not getattr(waited, "done", False):  # all 20 decide on the same counter value
                    waited.done = True
                    barrier.wait()
                return state

        store = EveryoneReadsFirst(pipeline.stack.name_of("Table"), client=Serialized(runtime.store().client))
        outcomes: list[str] = []

        def deliver() -> None:
            router = Router(store, runtime.config().scoring, runtime.routing(), pipeline.now)
            outcomes.append(router.route_ready("acmetech.io", 1).status)

        threads = [threading.Thread(target=deliver) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        pipeline.settle()
        assert len(outcomes) == 20 and Counter(outcomes)["routed"] == 1
        assert set(outcomes) <= {"routed", "already_routed"}
        messages = routed_messages(pipeline)
        assert [m["group"] for m in messages] == ["maya"] and counter(pipeline, "na") == 1
        assert len(pipeline.bus("Account Routed")) == 1

    def test_a_fault_between_the_transaction_and_the_send_converges_to_one_message_for_the_same_sdr(
            self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
        from leadscore.adapters.bus import RoutedQueue
        from leadscore.adapters.storage import Store

        save_assignment, send = Store.save_assignment, RoutedQueue.send
        faults = {"route": 1, "send": 1}

        def crash_after_the_transaction(self: Store, *args: Any, **kwargs: Any) -> None:
            save_assignment(self, *args, **kwargs)
            if faults["route"]:
                faults["route"] -= 1
                raise ConnectionError("the route function died right after its transaction")

        def failing_send(self: RoutedQueue, *args: Any, **kwargs: Any) -> None:
            if faults["send"]:
                faults["send"] -= 1
                raise ConnectionError("SendMessage failed (the stream's first attempt)")
            send(self, *args, **kwargs)

        monkeypatch.setattr(Store, "save_assignment", crash_after_the_transaction)
        monkeypatch.setattr(RoutedQueue, "send", failing_send)
        qualify(pipeline)
        pipeline.stack.pump(raise_errors=False)  # Lambda's retries (async and stream) do the rest
        # the route function failed once (retried by Lambda); the stream batch reported its
        # account record failed (ReportBatchItemFailures) and was delivered again
        assert [e.logical_id for e in pipeline.stack.errors] == ["RouteFunction"]
        assert faults == {"route": 0, "send": 0}
        (message,) = routed_messages(pipeline)
        assert message["group"] == "maya" and message["dedup"] == "acmetech.io#1"
        assignment = item(pipeline, "A#acmetech.io", "RT#000001")
        assert assignment is not None and (assignment["sdr"], assignment["att"]) == ("maya", 1)
        assert counter(pipeline, "na") == 1 and pipeline.stack.dead_letters == []
        assert len(pipeline.bus("Account Routed")) == 1


class TestFairness:
    def test_30_accounts_into_a_pool_of_three_equal_sdrs_give_10_each(
            self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
        use_routing(monkeypatch, mode="round_robin", sdrs=[sdr("ana"), sdr("ben"), sdr("cy")])
        for i in range(30):
            qualify(pipeline, i, domain=f"acct{i}.io")
        pipeline.settle()
        messages = routed_messages(pipeline)
        assert Counter(m["group"] for m in messages) == {"ana": 10, "ben": 10, "cy": 10}
        assert {m["body"]["routing"] for m in messages} == {"round_robin"}
        assert counter(pipeline, "*") == 30


class TestSla:
    def test_an_account_not_accepted_in_time_is_rerouted_to_another_sdr_in_the_same_cycle(
            self, pipeline: Pipeline) -> None:
        qualify(pipeline)
        pipeline.settle()
        # Before the SLA runs out, the pass leaves it alone
        pipeline.advance(hours=47)
        assert pipeline.stack.run_schedule("RoutingPassFunction", pipeline.now)["due"] == 0
        # After it, the pass re-routes it to the pool's next SDR
        pipeline.advance(hours=2)
        result = pipeline.stack.run_schedule("RoutingPassFunction", pipeline.now)
        assert (result["due"], result["rerouted"]) == (1, 1)
        pipeline.settle()
        first, second = routed_messages(pipeline)
        assert first["group"] == "maya" and second["group"] == "lucas"
        assert second["dedup"] == "acmetech.io#1#2" and second["body"]["cycle"] == 1
        assert second["body"]["slaDueAt"] == (pipeline.now + 48 * HOUR).strftime("%Y-%m-%dT%H:%M:%SZ")
        (breach,) = pipeline.bus("Routing SLA Breached")
        assert (breach["detail"]["previousSdr"], breach["detail"]["sdr"]["id"], breach["detail"]["cycle"]) == (
            "maya", "lucas", 1)
        account = pipeline.account("acmetech.io")
        assert (account["state"], account["cycle"], account["sdr"]["id"]) == ("routed", 1, "lucas")
        assert account["routing"]["tried"] == ["maya", "lucas"] and account["routing"]["attempt"] == 2
        # the same pass again changes nothing
        assert pipeline.stack.run_schedule("RoutingPassFunction", pipeline.now)["due"] == 0


class TestNobodyAvailable:
    def test_everyone_out_of_office_then_someone_back_routes_once(
            self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
        # Given the only SDR is out of office until the day after tomorrow (pipeline starts 2026-11-02)
        use_routing(monkeypatch, mode="round_robin",
                    sdrs=[sdr("ana", out_of_office=[{"from": "2026-11-01", "to": "2026-11-03"}])])
        qualify(pipeline)
        pipeline.settle()
        # Then the account waits, sdr_ready, with the reason on the read API
        assert routed_messages(pipeline) == []
        account = pipeline.account("acmetech.io")
        assert account["state"] == "sdr_ready" and "sdr" not in account
        waiting = account["routing"]
        assert waiting["status"] == "waiting" and waiting["why"] == "out_of_office"
        assert waiting["reason"] == "no SDR available in pool *: ana out of office until 2026-11-03"
        assert waiting["retryAt"] == "2026-11-04T00:00:00Z"
        # A pass while she is away values it again and changes nothing
        pipeline.advance(hours=12)
        result = pipeline.stack.run_schedule("RoutingPassFunction", pipeline.now)
        assert (result["due"], result["waiting"], result["routed"]) == (1, 1, 0)
        # The first pass after she is back routes it, once
        pipeline.set_clock(datetime.fromisoformat("2026-11-04T00:15:00+00:00"))
        result = pipeline.stack.run_schedule("RoutingPassFunction", pipeline.now)
        assert (result["due"], result["routed"]) == (1, 1)
        assert pipeline.stack.run_schedule("RoutingPassFunction", pipeline.now)["due"] == 0
        pipeline.settle()
        (message,) = routed_messages(pipeline)
        assert message["group"] == "ana" and message["dedup"] == "acmetech.io#1"
        assert len(pipeline.bus("Account Routed")) == 1
        assert pipeline.account("acmetech.io")["state"] == "routed"
