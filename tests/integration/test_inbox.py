"""`python -m local.inbox`: the routed FIFO queue read as one SDR, on moto.

Messages are put as the route function sends them (PRODUCT.md "The routed queue"):
MessageGroupId = the SDR's id, MessageDeduplicationId = account + cycle, body
`account-routed/v1`. Time goes into the tool (`--now`); nothing freezes the clock (moto's
SQS needs the real one) and receives do not wait (`--wait 0`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from local import inbox

if TYPE_CHECKING:
    from tests.integration.conftest import Pipeline
    from tests.support.stack import TemplateStack

NOW = "2026-11-23T12:00:00Z"
ANA = {"id": "ana", "name": "Ana Ruiz", "email": "ana@example.com"}
BEN = {"id": "ben", "name": "Ben Okafor", "email": "ben@example.com"}


@dataclass
class Routed:
    sqs: Any
    url: str

    def put(self, body: dict[str, Any] | str, group: str, dedup: str) -> None:
        self.sqs.send_message(QueueUrl=self.url, MessageBody=body if isinstance(body, str) else json.dumps(body),
                              MessageGroupId=group, MessageDeduplicationId=dedup)

    def route(self, body: dict[str, Any]) -> None:
        self.put(body, body["sdr"]["id"], f"{body['accountId']}#{body['cycle']}")

    def visible(self) -> list[dict[str, Any]]:
        """Every message a reader can receive now (each group's head and what follows), put back."""
        seen: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, VisibilityTimeout=30,
                                             MessageSystemAttributeNames=["MessageGroupId"]).get("Messages", [])
            if not batch:
                break
            seen += batch
        for message in seen:
            self.sqs.change_message_visibility(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"],
                                               VisibilityTimeout=0)
        return seen

    def bodies(self, group: str) -> list[str]:
        return [m["Body"] for m in self.visible() if m["Attributes"]["MessageGroupId"] == group]


@pytest.fixture
def routed(stack: TemplateStack) -> Routed:
    """The template stack's RoutedQueue; a FIFO queue of the same name when the stack has none."""
    sqs = stack.client("sqs")
    info = stack.resources.get("RoutedQueue")
    if info is not None:
        return Routed(sqs, info["url"])
    url = sqs.create_queue(QueueName="leadscore-routed.fifo",
                           Attributes={"FifoQueue": "true", "VisibilityTimeout": "300"})["QueueUrl"]
    return Routed(sqs, url)


def routed_body(account_id: str, name: str, sdr: dict[str, str], routed_at: str, sla_due_at: str, *,
                fit: float, engagement: float, velocity: float, cycle: int = 1,
                territory: str = "emea-enterprise") -> dict[str, Any]:
    """An `account-routed/v1` body: a VP's demo request and a director's pricing visits."""
    domain = account_id
    return {
        "schema": "account-routed/v1",
        "accountId": account_id, "accountName": name, "domain": domain,
        "score": fit + engagement, "fit": fit, "engagement": engagement, "velocity": velocity, "threshold": 100,
        "sdr": sdr, "territory": territory, "routing": "territory",
        "reasons": [
            {"rule": "fit_employees_200_999", "points": fit, "contactId": None},
            {"rule": "pricing_page_visit", "points": engagement - 50, "contactId": f"{domain}-dir"},
            {"rule": "demo_request", "points": 50, "contactId": f"{domain}-vp"},
        ],
        "contacts": [
            {"contactId": f"{domain}-vp", "email": f"jo.park@{domain}", "title": "VP Sales",
             "persona": "decision_maker", "score": 95},
            {"contactId": f"{domain}-dir", "email": f"sam.lee@{domain}", "title": "Director of Engineering",
             "persona": "influencer", "score": 40},
        ],
        "routedAt": routed_at, "slaDueAt": sla_due_at, "cycle": cycle,
    }


ACME = routed_body("acme.com", "Acme", ANA, "2026-11-21T09:00:00Z", "2026-11-23T09:00:00Z",
                   fit=45, engagement=86.5, velocity=38)
GLOBEX = routed_body("globex.de", "Globex", ANA, "2026-11-22T10:00:00Z", "2026-11-24T10:00:00Z",
                     fit=30, engagement=75, velocity=12.5)
INITECH = routed_body("initech.com", "Initech", BEN, "2026-11-22T11:00:00Z", "2026-11-24T11:00:00Z",
                      fit=40, engagement=70, velocity=20, territory="na-enterprise")


def _inbox(*args: str) -> int:
    return inbox.main(["--now", NOW, "--wait", "0", *args])


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = _inbox(*args, "--json")
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def three(routed: Routed) -> Routed:
    """Ana's older account first, Ben's, then Ana's newer one (the order the router sent them)."""
    for body in (ACME, INITECH, GLOBEX):
        routed.route(body)
    return routed


class TestReading:
    def test_the_queue_is_found_by_its_logical_id_in_the_stack(self, routed: Routed) -> None:
        import boto3

        from local.replay import Stack

        assert Stack("leadscore", boto3.Session()).queue_url("RoutedQueue") == routed.url

    def test_ana_sees_her_two_accounts_newest_first_with_the_score_parts(
            self, three: Routed, capsys: pytest.CaptureFixture[str]) -> None:
        code, answer = _json(capsys, "--sdr", "ana")
        assert code == 0
        assert [m["accountId"] for m in answer["messages"]] == ["globex.de", "acme.com"]
        globex = answer["messages"][0]
        assert (globex["score"], globex["fit"], globex["engagement"], globex["velocity"]) == (105, 30, 75, 12.5)
        assert globex["threshold"] == 100 and globex["cycle"] == 1
        # the reasons, biggest first, each with its contact as the message names it
        assert [(r["rule"], r["points"], r["contact"]) for r in globex["reasons"]] == [
            ("demo_request", 50, "jo.park@globex.de, VP Sales"),
            ("fit_employees_200_999", 30, "(the account)"),
            ("pricing_page_visit", 25, "sam.lee@globex.de, Director of Engineering"),
        ]
        # SLA due as of --now: Acme's ran out at 09:00, Globex's is tomorrow
        assert [(m["slaDueAt"], m["overdue"]) for m in answer["messages"]] == [
            ("2026-11-24T10:00:00Z", False), ("2026-11-23T09:00:00Z", True)]
        assert answer["otherSdrsMessages"] == 1 and answer["acknowledged"] == []

    def test_the_text_inbox_shows_what_an_sdr_acts_on(
            self, three: Routed, capsys: pytest.CaptureFixture[str]) -> None:
        assert _inbox("--sdr", "ana") == 0
        out = capsys.readouterr().out
        assert "Inbox of ana (Ana Ruiz <ana@example.com>) as of 2026-11-23T12:00:00Z" in out
        assert "2 routed account(s), newest first, 1 overdue" in out
        assert out.index("1. Globex (globex.de)") < out.index("2. Acme (acme.com)")
        assert "score 131.5 = fit 45 + engagement 86.5   (velocity 38)   threshold 100" in out
        assert "territory emea-enterprise, routing territory; routed 2026-11-21T09:00:00Z" in out
        assert "SLA due 2026-11-23T09:00:00Z  OVERDUE by 3h 00m" in out
        assert "SLA due 2026-11-24T10:00:00Z  (in 22h 00m)" in out
        assert "  +36.5  pricing_page_visit     sam.lee@acme.com, Director of Engineering" in out
        assert "95  jo.park@acme.com, VP Sales  (decision_maker)" in out
        assert "initech" not in out
        assert "2 message(s) left in the queue, visible again" in out

    def test_reading_deletes_nothing_and_leaves_every_message_visible(
            self, three: Routed, capsys: pytest.CaptureFixture[str]) -> None:
        assert _inbox("--sdr", "ana") == 0
        # Ben's message was received during Ana's scan and is visible again at once
        assert [json.loads(b)["accountId"] for b in three.bodies("ben")] == ["initech.com"]
        assert sorted(json.loads(b)["accountId"] for b in three.bodies("ana")) == ["acme.com", "globex.de"]
        capsys.readouterr()
        # and Ben's own inbox has it, and only it
        _, answer = _json(capsys, "--sdr", "ben")
        assert [m["accountId"] for m in answer["messages"]] == ["initech.com"]
        assert answer["messages"][0]["territory"] == "na-enterprise"

    def test_an_empty_inbox_says_so(self, three: Routed, capsys: pytest.CaptureFixture[str]) -> None:
        assert _inbox("--sdr", "carla") == 0
        assert "The inbox is empty: no routed accounts for carla." in capsys.readouterr().out
        assert len(three.visible()) == 3

    def test_an_empty_queue_says_so(self, routed: Routed, capsys: pytest.CaptureFixture[str]) -> None:
        assert _inbox("--sdr", "ana") == 0
        assert "The inbox is empty" in capsys.readouterr().out


class TestAcknowledging:
    def test_ack_of_one_account_deletes_exactly_its_message(
            self, three: Routed, capsys: pytest.CaptureFixture[str]) -> None:
        code, answer = _json(capsys, "--sdr", "ana", "--ack", "acme.com")
        assert code == 0 and answer["acknowledged"] == ["acme.com"]
        assert [json.loads(b)["accountId"] for b in three.bodies("ana")] == ["globex.de"]
        assert len(three.bodies("ben")) == 1

    def test_ack_all_deletes_this_sdrs_messages_only(
            self, three: Routed, capsys: pytest.CaptureFixture[str]) -> None:
        assert _inbox("--sdr", "ana", "--ack", "all") == 0
        assert "Acknowledged (deleted from the queue): globex.de, acme.com" in capsys.readouterr().out
        assert three.bodies("ana") == []
        assert len(three.bodies("ben")) == 1
        assert _inbox("--sdr", "ana") == 0
        assert "The inbox is empty" in capsys.readouterr().out

    def test_acking_another_sdrs_account_deletes_nothing_and_fails(
            self, three: Routed, capsys: pytest.CaptureFixture[str]) -> None:
        code, answer = _json(capsys, "--sdr", "ana", "--ack", "initech.com")
        assert code == 1 and answer["notFound"] == ["initech.com"] and answer["acknowledged"] == []
        assert len(three.visible()) == 3

    def test_the_make_style_list_of_accounts_is_accepted(
            self, three: Routed, capsys: pytest.CaptureFixture[str]) -> None:
        code, answer = _json(capsys, "--sdr", "ana", "--ack", "acme.com,globex.de")
        assert code == 0 and sorted(answer["acknowledged"]) == ["acme.com", "globex.de"]


    def test_a_message_near_the_queues_max_receive_count_is_flagged(
            self, routed: Routed, capsys: pytest.CaptureFixture[str]) -> None:
        # a queue redriving after 3 receives (the template's RoutedQueue allows 1,000)
        dead_letters = routed.sqs.get_queue_attributes(QueueUrl=routed.url, AttributeNames=["RedrivePolicy"])
        target = json.loads(dead_letters["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"]
        routed.sqs.set_queue_attributes(QueueUrl=routed.url, Attributes={"RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": target, "maxReceiveCount": 3})})
        limit = inbox.max_receive_count(routed.sqs, routed.url)
        assert limit == 3
        routed.route(GLOBEX)
        for _ in range(limit - 1):  # every inbox run receives the message once
            assert _inbox("--sdr", "ben") == 0
        assert _inbox("--sdr", "ana") == 0
        assert f"! received {limit} times: after {limit} SQS moves it to the dead-letter queue" \
            in capsys.readouterr().out


class TestUnreadable:
    def test_a_malformed_body_is_shown_as_unreadable_and_left_in_the_queue(
            self, three: Routed, capsys: pytest.CaptureFixture[str]) -> None:
        three.put("{not json", "ana", "broken-1")
        three.put(json.dumps({"schema": "account-routed/v9", "accountId": "x.com"}), "ana", "broken-2")
        assert _inbox("--sdr", "ana", "--ack", "all") == 0
        out = capsys.readouterr().out
        assert out.count("UNREADABLE message") == 2
        assert "not JSON" in out and "schema 'account-routed/v9', not 'account-routed/v1'" in out
        assert "Acknowledged (deleted from the queue): globex.de, acme.com" in out
        # the two broken ones stay (the queue's redrive takes them to the DLQ eventually)
        assert sorted(three.bodies("ana")) == sorted(["{not json", json.dumps(
            {"schema": "account-routed/v9", "accountId": "x.com"})])
        assert len(three.bodies("ben")) == 1

    def test_fields_of_the_wrong_type_never_crash_the_tool(
            self, routed: Routed, capsys: pytest.CaptureFixture[str]) -> None:
        odd = {"schema": "account-routed/v1", "accountId": "odd.io", "score": "high", "reasons": [1, {"rule": None}],
               "contacts": "nobody", "slaDueAt": "tomorrow", "routedAt": None, "sdr": "ana"}
        routed.put(json.dumps(odd), "ana", "odd-1")
        assert _inbox("--sdr", "ana") == 0
        out = capsys.readouterr().out
        assert "1. odd.io (odd.io)" in out and "score high" in out and "SLA due tomorrow" in out


class TestWithThePipeline:
    def test_an_account_the_route_function_routed_is_in_its_sdrs_inbox(
            self, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
        from tests.integration.conftest import EMAIL_KEY, vp_identify

        # a VP and a director of acmetech.io open and click emails until it is SDR-ready
        pipeline.send("identify", vp_identify("u-vp", "vp@acmetech.io"))
        pipeline.send("identify", {"userId": "u-dir", "traits": {"email": "dir@acmetech.io",
                                                                 "title": "Director of Engineering"}})
        for user in ("u-vp", "u-dir"):
            pipeline.send("group", {"userId": user, "groupId": "acct-1", "traits": {
                "name": "Acme Tech", "website": "https://www.acmetech.io", "industry": "Software",
                "employees": 200, "address": {"country": "US"}}})
            for event in ["Email Opened"] * 5 + ["Email Link Clicked"] * 3:
                pipeline.send("track", {"userId": user, "event": event}, key=EMAIL_KEY)
                pipeline.advance(seconds=1)
        pipeline.settle()
        account = pipeline.account("acmetech.io")
        assert account["state"] == "routed"
        sdr = account["sdr"]["id"]

        now = pipeline.now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        capsys.readouterr()  # the functions' metrics
        assert inbox.main(["--sdr", sdr, "--now", now, "--wait", "0", "--json"]) == 0
        answer = json.loads(capsys.readouterr().out)
        [message] = answer["messages"]
        assert message["accountId"] == "acmetech.io" and message["sdr"]["id"] == sdr
        assert message["score"] == account["score"] and message["overdue"] is False
        assert {r["contact"] for r in message["reasons"]} >= {"vp@acmetech.io, VP Sales"}
        assert datetime.fromisoformat(message["slaDueAt"].replace("Z", "+00:00")) > pipeline.now
