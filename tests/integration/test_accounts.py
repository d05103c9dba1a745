"""Accounts: roll-up, decay with simulated time, the state machine, explanations, cost."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

from tests.integration.conftest import EMAIL_KEY, Pipeline, vp_identify


@contextmanager
def counting_calls(client: Any) -> Iterator[Counter[str]]:
    """Count the API calls a boto3 client makes (and the items each touches)."""
    calls: Counter[str] = Counter()

    def count(event_name: str, params: dict[str, Any], **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        calls[operation] += 1
        if operation == "TransactWriteItems":
            calls["items_written"] += len(params["TransactItems"])
        elif operation in ("PutItem", "UpdateItem"):
            calls["items_written"] += 1
            key = (params.get("Item") or params.get("Key"))["pk"]["S"]
            calls[f"write:{key[:2]}"] += 1
        elif operation == "BatchGetItem":
            calls["keys_read"] += sum(len(t["Keys"]) for t in params["RequestItems"].values())
        elif operation == "GetItem":
            calls["keys_read"] += 1

    client.meta.events.register("provide-client-params.dynamodb.*", count)
    try:
        yield calls
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb.*", count)


def _store_client() -> Any:
    from leadscore.adapters import runtime
    return runtime.store().client


def _group(pipeline: Pipeline, user_id: str, **traits: Any) -> None:
    pipeline.send("group", {"userId": user_id, "groupId": "acct-1",
                            "traits": {"name": "Acme Tech", "website": "https://www.acmetech.io", **traits}})


def _email_touches(pipeline: Pipeline, user_id: str, opens: int, clicks: int = 0) -> None:
    for _ in range(opens):
        pipeline.send("track", {"userId": user_id, "event": "Email Opened"}, key=EMAIL_KEY)
        pipeline.advance(seconds=1)
    for _ in range(clicks):
        pipeline.send("track", {"userId": user_id, "event": "Email Link Clicked"}, key=EMAIL_KEY)
        pipeline.advance(seconds=1)


def _sum(body: dict[str, Any]) -> float:
    return round(sum(line["points"] for line in body["breakdown"]), 2)


class TestDecay:
    def test_five_email_opens_are_worth_full_points_then_half_one_half_life_after_stale(
            self, pipeline: Pipeline) -> None:
        # Given five email opens today
        opened = pipeline.now
        _email_touches(pipeline, "u-e", opens=5)
        pipeline.settle()
        assert pipeline.contact("u-e")["engagement"] == 25
        # Then they keep full value up to stale_after_days (30)...
        pipeline.set_clock(opened + timedelta(days=30))
        assert pipeline.contact("u-e")["engagement"] == 25
        # ...and are worth half one half-life (30 days) later, with the arithmetic shown
        pipeline.set_clock(opened + timedelta(days=60))
        contact = pipeline.contact("u-e")
        assert contact["engagement"] == 12.5
        line = next(b for b in contact["breakdown"] if b["rule"] == "email_opened")
        assert line["points"] == 12.5 and "0.5^" in line["detail"]
        assert _sum(contact) == contact["score"]
        # and ?at= answers as of another moment
        status, earlier = pipeline.read("/v1/contacts/u-e", query={"at": (opened + timedelta(days=1)).isoformat()})
        assert status == 200 and earlier["engagement"] == 25

    def test_other_categories_do_not_decay(self, pipeline: Pipeline) -> None:
        start = pipeline.now
        pipeline.send("track", {"userId": "u-w", "event": "Webinar Attended"})
        pipeline.settle()
        pipeline.set_clock(start + timedelta(days=365))
        assert pipeline.contact("u-w")["engagement"] == 20

    def test_decay_job_twice_at_the_same_instant_changes_nothing(self, pipeline: Pipeline) -> None:
        start = pipeline.now
        for user in ("u-1", "u-2", "u-3"):
            _email_touches(pipeline, user, opens=3)
        pipeline.settle()
        pipeline.set_clock(start + timedelta(days=45))
        first = pipeline.stack.run_schedule("DecayFunction", pipeline.now)
        pipeline.settle()
        assert first["written"] == 3
        snapshot = pipeline.table_items()
        second = pipeline.stack.run_schedule("DecayFunction", pipeline.now)
        pipeline.settle()
        assert second == {"due": 0, "written": 0, "unchanged": 0, "conflicts": 0, "stopped_early": False}
        assert pipeline.table_items() == snapshot
        contact = [i for i in snapshot if i.get("ck") == "u:u-1"][0]
        assert contact["eng"] == pipeline.contact("u-1")["engagement"] < 15

    def test_a_run_out_of_time_leaves_the_rest_due_for_the_next(self, pipeline: Pipeline) -> None:
        from leadscore.adapters import runtime
        from leadscore.services.decay import run_decay

        start = pipeline.now
        _email_touches(pipeline, "u-late", opens=2)
        pipeline.settle()
        later = start + timedelta(days=50)
        stopped = run_decay(runtime.store(), runtime.config(), later, out_of_time=lambda: True)
        assert stopped.stopped_early and stopped.written == 0
        finished = run_decay(runtime.store(), runtime.config(), later)
        assert finished.written == 1 and not finished.stopped_early

    def test_decay_reads_grow_with_the_contacts_due_not_the_table(self, pipeline: Pipeline) -> None:
        start = pipeline.now
        batch = [{"type": "track", "userId": f"web-{i}", "event": "Webinar Attended"} for i in range(150)]
        batch += [{"type": "track", "userId": f"mail-{i}", "event": "Email Opened"} for i in range(4)]
        pipeline.http("POST", "/v1/batch", body={"batch": batch}, basic_user=EMAIL_KEY)
        pipeline.settle()
        pipeline.set_clock(start + timedelta(days=40))
        with counting_calls(_store_client()) as calls:
            result = pipeline.stack.run_schedule("DecayFunction", pipeline.now)
        assert result["due"] == 4 and result["written"] == 4
        assert calls["Scan"] == 0
        assert calls["Query"] == 1 and calls["keys_read"] == 0  # the index carries what decay needs
        assert calls["items_written"] == 4


class TestAccountStateMachine:
    def _email_only_account(self, pipeline: Pipeline) -> None:
        """Account fit 30 + a VP's and a director's email touches + the committee bonus."""
        pipeline.send("identify", vp_identify("u-vp", "vp@acmetech.io"))
        pipeline.send("identify", {"userId": "u-dir", "traits": {"email": "dir@acmetech.io",
                                                                 "title": "Director of Engineering"}})
        for user in ("u-vp", "u-dir"):
            _group(pipeline, user, industry="Software", employees=200, address={"country": "US"})
            _email_touches(pipeline, user, opens=5, clicks=3)
        pipeline.settle()

    def test_account_rolls_up_with_personas_committee_and_explains_itself(self, pipeline: Pipeline) -> None:
        self._email_only_account(pipeline)
        account = pipeline.account("acmetech.io")
        # fit 30; engagement VP 55 x 1.0 + director 55 x 0.8; committee +15
        assert (account["fit"], account["engagement"], account["committeeBonus"]) == (30, 99, 15)
        assert account["score"] == 144 and _sum(account) == account["score"]
        # SDR-ready, and at once routed (the route function took its Account SDR Ready)
        assert account["state"] == "routed" and account["cycle"] == 1 and account["sdr"]["id"]
        assert [c["contactId"] for c in account["contacts"]] == ["u-vp", "u-dir"]
        assert {c["persona"] for c in account["contacts"]} == {"decision_maker", "influencer"}
        assert account["velocity"] == 99
        assert len(pipeline.bus("Account SDR Ready")) == 1
        ready = pipeline.bus("Account SDR Ready")[0]["detail"]
        assert ready["accountId"] == "acmetech.io" and ready["cycle"] == 1 and ready["score"] == 144

    def test_email_only_account_decays_but_stays_with_its_sdr_once_routed(self, pipeline: Pipeline) -> None:
        start = pipeline.now
        self._email_only_account(pipeline)
        owner = pipeline.account("acmetech.io")["sdr"]["id"]
        # When sixty days pass (one half-life after stale) and the decay job runs
        pipeline.set_clock(start + timedelta(days=60))
        pipeline.stack.run_schedule("DecayFunction", pipeline.now)
        pipeline.settle()
        # Then the score shows the dip under requalify_below, but the account stays routed to its
        # SDR: once routed, the cycle is hers until feedback or the SLA (issue 21, item 6)
        account = pipeline.account("acmetech.io")
        assert account["score"] == 30 + 49.5 and (account["state"], account["cycle"]) == ("routed", 1)
        assert account["sdr"]["id"] == owner and pipeline.bus("Account Recycled") == []
        # And engagement back over sdr_ready is the same cycle, not a new one
        pipeline.send("track", {"userId": "u-vp", "event": "Demo Link Clicked"})
        pipeline.send("track", {"userId": "u-dir", "event": "Demo Link Clicked"})
        pipeline.settle()
        account = pipeline.account("acmetech.io")
        assert account["score"] >= 100 and (account["state"], account["cycle"]) == ("routed", 1)
        assert [e["detail"]["cycle"] for e in pipeline.bus("Account SDR Ready")] == [1]

    def test_sdr_ready_is_announced_once_per_cycle(self, pipeline: Pipeline) -> None:
        self._email_only_account(pipeline)
        for _ in range(3):
            pipeline.send("track", {"userId": "u-vp", "event": "Case Study Downloaded"})
            pipeline.settle()
        assert len(pipeline.bus("Account SDR Ready")) == 1
        assert len(pipeline.bus("Account Score Changed")) >= 2

    @pytest.mark.parametrize("lifecycle", ["customer", "opportunity", "competitor", "partner"])
    def test_excluded_accounts_are_scored_but_never_sdr_ready(self, pipeline: Pipeline, lifecycle: str) -> None:
        pipeline.send("identify", vp_identify("u-x", "x@acmetech.io"))
        _group(pipeline, "u-x", industry="Software", employees=200, lifecycle=lifecycle)
        for name in ("Demo Link Clicked", "Webinar Attended", "Demo Requested", "Case Study Downloaded"):
            pipeline.send("track", {"userId": "u-x", "event": name})
        pipeline.settle()
        account = pipeline.account("acmetech.io")
        assert account["score"] >= 100
        assert account["state"] == "excluded" and account["excluded"] == lifecycle
        assert pipeline.bus("Account SDR Ready") == []

    def test_contacts_unsubscribed_from_everything_do_not_count_towards_routing(self, pipeline: Pipeline) -> None:
        pipeline.send("identify", vp_identify("u-u", "u@acmetech.io"))
        pipeline.send("track", {"userId": "u-u", "event": "Demo Requested"})
        pipeline.settle()
        assert pipeline.account("acmetech.io")["engagement"] == 50
        pipeline.send("track", {"userId": "u-u", "event": "Unsubscribed", "properties": {"all": True}},
                      key=EMAIL_KEY)
        pipeline.settle()
        assert pipeline.contact("u-u")["engagement"] == 40  # still scored
        assert pipeline.account("acmetech.io")["engagement"] == 0


class AtomicCalls:
    """A DynamoDB client whose every call is atomic, as each request is in DynamoDB.

    moto checks a write's condition and applies it without a lock, so two threads can both
    pass `ver = :expected`; the service never lets that happen. Calls still interleave
    freely, so a read and the write that follows it race as they do in AWS."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.exceptions = client.exceptions

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def atomic(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return atomic


class TestCost:
    def _contacts(self, pipeline: Pipeline, count: int, prefix: str) -> None:
        for start in range(0, count, 100):
            batch = [{"type": "identify", "userId": f"{prefix}-{i}",
                      "traits": {"company": {"domain": "acmetech.io"}, "title": "Engineer"}}
                     for i in range(start, min(count, start + 100))]
            pipeline.http("POST", "/v1/batch", body={"batch": batch}, basic_user=EMAIL_KEY)
        pipeline.settle()

    def _one_change_calls(self, pipeline: Pipeline, user_id: str) -> Counter[str]:
        pipeline.send("track", {"userId": user_id, "event": "Webinar Attended"})
        with counting_calls(_store_client()) as calls:
            pipeline.settle()
        return calls

    def test_a_contact_change_costs_the_same_for_5_or_2000_contacts(self, pipeline: Pipeline) -> None:
        self._contacts(pipeline, 5, "small")
        small = self._one_change_calls(pipeline, "small-1")
        self._contacts(pipeline, 2000, "big")
        big = self._one_change_calls(pipeline, "big-1")
        assert small == big
        # one read of the contact, one contact write, one read and one write of the account
        assert big["items_written"] == 2 and big["keys_read"] == 2 and big["Query"] == big["Scan"] == 0

    def test_a_burst_for_one_account_in_one_batch_is_one_account_write(self, pipeline: Pipeline) -> None:
        self._contacts(pipeline, 100, "burst")
        batch = [{"type": "track", "userId": f"burst-{i}", "event": "Webinar Attended"} for i in range(100)]
        pipeline.http("POST", "/v1/batch", body={"batch": batch}, basic_user=EMAIL_KEY)
        with counting_calls(_store_client()) as calls:
            pipeline.settle()
        assert calls["write:C#"] == 100  # one per contact
        assert calls["write:A#"] == 1  # the 100 contact changes arrive in one stream batch
        assert len(pipeline.bus("Account Score Changed")) <= 3

    def test_1000_concurrent_contact_changes_for_one_account_end_in_the_exact_sum(
            self, pipeline: Pipeline, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        """Ten Lambdas roll 1,000 contacts into one account at once (top K = 1,000 so every
        contact counts): optimistic locking must lose none of them."""
        import shutil

        import yaml
        from leadscore.adapters.storage import Store
        from leadscore.adapters.streams import change_of
        from leadscore.services.aggregate import AccountAggregator, Change

        shutil.copytree(pipeline.stack.functions["CollectFunction"].environment["LEADSCORE_CONFIG_DIR"], tmp_path,
                        dirs_exist_ok=True)
        scoring = yaml.safe_load((tmp_path / "scoring.yaml").read_text())
        scoring["account"]["top_contacts"] = 1000
        scoring["account"]["committee"]["points"] = 0
        (tmp_path / "scoring.yaml").write_text(yaml.safe_dump(scoring))
        from leadscore.rulesfiles.loading import load_config

        config = load_config(tmp_path)
        table = pipeline.stack.name_of("Table")
        now = pipeline.now
        from leadscore.adapters import items
        from leadscore.domain.ledgers import ContactState, RuleLedger

        ledger = ContactState(rules={"webinar_attended": RuleLedger(touches=[[now.timestamp(), 20]], count=1)})
        records = []
        for i in range(1000):
            item = {"pk": f"C#u:c-{i}", "sk": "P", "k": "C", "ck": f"u:c-{i}", "ver": 1, "acct": "big.io",
                    "lg": items.state_json(ledger)}
            change = change_of(str(10**20 + i), "INSERT", (item["pk"], "P"), item, None)
            assert change is not None
            records.append(change)
        failures: list[Any] = []
        service = AtomicCalls(pipeline.stack.client("dynamodb"))

        def lambda_worker(chunk: list[Change]) -> None:
            try:
                failures.extend(AccountAggregator(Store(table, client=service), config, now).apply(chunk).values())
            except Exception as error:  # noqa: BLE001 - surfaced by the assertion below
                failures.append(error)

        threads = [threading.Thread(target=lambda_worker, args=(records[i::10],)) for i in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        from leadscore.services.read import ReadService

        account = ReadService(Store(table), config, clock=lambda: now).account("big.io", now)
        assert len(account["contacts"]) == 1000
        assert account["engagement"] == 1000 * 20 * 0.5  # every contact, weight of persona "user"
        assert _sum(account) == account["score"]


class TestPoisonRecords:
    def test_a_poison_record_never_blocks_the_others_and_lands_in_the_failure_queue(
            self, pipeline: Pipeline) -> None:
        import json as _json

        from leadscore.adapters.storage import marshal

        # Given a stored event that cannot be read back (a corrupt item) and a good one
        client = pipeline.stack.client("dynamodb")
        table = pipeline.stack.name_of("Table")
        client.put_item(TableName=table, Item=marshal({"pk": "C#u:poison", "sk": "E#website#bad", "k": "E",
                                                       "ty": "track", "ts": "not-a-time"}))
        pipeline.send("track", {"userId": "u-good", "event": "Webinar Attended"})
        # When the stream is delivered as Lambda would (retries, then the on-failure queue)
        pipeline.stack.pump(raise_errors=False)
        # Then the good event is scored, the poison one is in the failure queue, nothing else moved
        assert pipeline.contact("u-good")["engagement"] == 20
        status, _ = pipeline.read("/v1/contacts/poison")
        assert status == 404
        sqs = pipeline.stack.client("sqs")
        queue = pipeline.stack.resources["AggregateFailureQueue"]["url"]
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        assert messages, "the batch info of the poison record reaches the on-failure destination"
        info = _json.loads(messages[0]["Body"])["DDBStreamBatchInfo"]
        assert info["batchSize"] >= 1


class TestMembership:
    def test_a_contact_that_moves_to_another_account_leaves_the_first(self, pipeline: Pipeline) -> None:
        pipeline.send("identify", vp_identify("u-move", "move@acmetech.io"))
        pipeline.send("track", {"userId": "u-move", "event": "Demo Link Clicked"})
        pipeline.settle()
        assert pipeline.account("acmetech.io")["engagement"] == 25
        # When a group call puts the contact in another company
        pipeline.send("group", {"userId": "u-move", "groupId": "g-2", "traits": {"website": "https://globex.com"}})
        pipeline.settle()
        # Then its points count there, and no longer at the first
        assert pipeline.account("globex.com")["engagement"] == 25
        first = pipeline.account("acmetech.io")
        assert first["engagement"] == 0 and first["contacts"] == []

    def test_an_account_reads_as_of_another_moment(self, pipeline: Pipeline) -> None:
        start = pipeline.now
        pipeline.send("identify", vp_identify("u-at", "at@acmetech.io"))
        _email_touches(pipeline, "u-at", opens=4)
        pipeline.settle()
        later = (start + timedelta(days=60)).isoformat()
        status, account = pipeline.read("/v1/accounts/acmetech.io", query={"at": later})
        assert status == 200 and account["engagement"] == 10 and _sum(account) == account["score"]
        status, problem = pipeline.read("/v1/accounts/acmetech.io", query={"at": "soon"})
        assert status == 400 and "at" in problem["message"]
        status, _ = pipeline.read("/v1/accounts/nope.io")
        assert status == 404


class TestReadAsOfHostileMoments:
    BAD_MOMENTS = [
        "0001-01-01T00:00:00Z",  # parses, but the arithmetic around it overflows
        "0001-01-01T00:00:00+01:00",  # the offset takes it before year 1
        "9999-12-31T23:59:59-05:00",  # the offset takes it past year 9999
        "9999-12-31T23:59:59.999999Z",
        "1969-12-31T23:59:59Z",  # before any event time (epoch milliseconds)
        "2026-11-25",  # a date alone: which moment of which zone?
        "2026-11-25T10:00:00",  # no zone
        "2026-11-25T10:00:00+24:00",
        "2026-13-01T00:00:00Z",
        "soon",
        "",
        " ",
        "2026-11-25T10:00:00Z\x00",
        "9" * 5000,
    ]

    def test_a_moment_that_is_not_usable_answers_400_naming_at_on_both_routes(self, pipeline: Pipeline) -> None:
        # Given an account with a contact whose touches decay and count towards velocity
        pipeline.send("identify", vp_identify("u-when", "when@acmetech.io"))
        _email_touches(pipeline, "u-when", opens=2, clicks=1)
        pipeline.send("track", {"userId": "u-when", "event": "Webinar Attended"})
        pipeline.settle()
        for path in ("/v1/accounts/acmetech.io", "/v1/contacts/u-when"):
            for at in self.BAD_MOMENTS:
                status, body = pipeline.read(path, query={"at": at})
                if at.strip() == "":
                    assert status == 200, (path, at, body)  # an empty ?at= means now
                    continue
                assert status == 400, (path, at, status, body)
                assert body["error"] == "invalid_at" and body["message"].startswith("at:"), (path, at, body)

    def test_the_usable_extremes_answer(self, pipeline: Pipeline) -> None:
        pipeline.send("identify", vp_identify("u-edge", "edge@acmetech.io"))
        _email_touches(pipeline, "u-edge", opens=2)
        pipeline.settle()
        for path in ("/v1/accounts/acmetech.io", "/v1/contacts/u-edge"):
            for at in ("9998-12-31T23:59:59Z", "2026-11-02T09:00:00.5-03:30"):
                status, body = pipeline.read(path, query={"at": at})
                assert status == 200, (path, at, body)
                assert body["asOf"].endswith("+00:00"), body["asOf"]  # answered in UTC
            # before anything happened (09:00 +14:00 is 19:00 the day before in UTC): no record of it then
            for at in ("1970-01-01T00:00:00Z", "2026-11-02T09:00:00+14:00"):
                status, body = pipeline.read(path, query={"at": at})
                assert status == 404 and body["error"] in ("unknown_account", "unknown_contact"), (path, at, body)
