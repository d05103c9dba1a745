"""`python -m local.inbox`: an SDR's inbox from what was assigned to them (a Query on the
table's OwnerIndex), beside what the routed queue holds (its counts, never a receive), on
the local stack of template.yaml. Reading an inbox changes nobody's delivery (issue 21,
item 11). Time goes into the tool (`--now`); nothing freezes the clock."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from local import inbox
from tests.integration.test_feedback_flow import feedback
from tests.integration.test_route_flow import qualify

if TYPE_CHECKING:
    from tests.integration.conftest import Pipeline

DOMAINS = ["acmetech.io", "globex.io", "initech.io"]
#: Calls that would change delivery (or read the whole table): the inbox makes none.
DISTURBING = {"ReceiveMessage", "ChangeMessageVisibility", "ChangeMessageVisibilityBatch", "DeleteMessage",
              "DeleteMessageBatch", "PurgeQueue", "Scan"}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """The AWS operations the inbox tool calls, by name."""
    seen: Counter[str] = Counter()

    def session() -> boto3.Session:
        made = boto3.Session()
        made.events.register("before-call", lambda event_name, **_: seen.update([event_name.split(".")[-1]]))
        return made

    monkeypatch.setattr(inbox, "_session", session, raising=False)
    return seen


def _now(pipeline: Pipeline) -> str:
    return pipeline.now.strftime("%Y-%m-%dT%H:%M:%SZ")


def run_inbox(pipeline: Pipeline, capsys: pytest.CaptureFixture[str], sdr: str, *args: str) -> dict[str, Any]:
    capsys.readouterr()  # the functions' own output
    assert inbox.main(["--sdr", sdr, "--now", _now(pipeline), "--json", *args]) == 0
    answer: dict[str, Any] = json.loads(capsys.readouterr().out)
    return answer


def receive_all(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Every message on the routed queue, received once, as the one dispatcher would."""
    sqs, url = pipeline.stack.client("sqs"), pipeline.stack.url_of("RoutedQueue")
    out: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                       MessageSystemAttributeNames=["All"]).get("Messages", []):
        out += batch
    return out


@pytest.fixture
def three(pipeline: Pipeline) -> dict[str, str]:
    """Three US accounts routed in the NA pool: account id -> its SDR."""
    for n, domain in enumerate(DOMAINS):
        qualify(pipeline, n, domain)
        pipeline.settle()
    return {d: pipeline.account(d)["sdr"]["id"] for d in DOMAINS}


class TestItem11:
    def test_item11_make_inbox_changes_no_ones_delivery(
            self, pipeline: Pipeline, three: dict[str, str], calls: Counter[str],
            capsys: pytest.CaptureFixture[str]) -> None:
        # Given three routed messages, When every SDR (and one with nothing) reads their inbox, three times
        for _ in range(3):
            for sdr in [*sorted(set(three.values())), "kenji"]:
                run_inbox(pipeline, capsys, sdr)
        # Then nothing is in flight, and each message reaches its consumer on its first receive
        sqs, url = pipeline.stack.client("sqs"), pipeline.stack.url_of("RoutedQueue")
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]) == ("3", "0")
        received = receive_all(pipeline)
        assert sorted(json.loads(m["Body"])["accountId"] for m in received) == DOMAINS
        assert [m["Attributes"]["ApproximateReceiveCount"] for m in received] == ["1", "1", "1"]
        # read by a Query on the owner index and the queue's counts: no receive, no delete, no scan
        assert calls["Query"] == 3 * 4 and not DISTURBING & set(calls), calls

    def test_item11_the_inbox_is_what_was_assigned_to_the_sdr(
            self, pipeline: Pipeline, three: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
        account_id, owner = "globex.io", three["globex.io"]
        answer = run_inbox(pipeline, capsys, owner)
        mine = sorted(d for d, sdr in three.items() if sdr == owner)
        assert sorted(m["accountId"] for m in answer["messages"]) == mine
        message = next(m for m in answer["messages"] if m["accountId"] == account_id)
        account = pipeline.account(account_id)
        assert message["schema"] == "account-routed/v1" and message["sdr"]["id"] == owner
        assert (message["score"], message["fit"], message["engagement"]) == (
            account["score"], account["fit"], account["engagement"])
        assert (message["territory"], message["routing"], message["cycle"], message["overdue"]) == (
            "na", "territory", 1, False)
        assert {r["contact"] for r in message["reasons"]} >= {"vp1@globex.io, VP Sales"}
        assert answer["queue"] == {"messages": 3, "inFlight": 0, "deadLetters": 0}
        # another SDR's inbox does not have it
        other = next(s for s in ("maya", "lucas", "sofia") if s != owner)
        assert account_id not in [m["accountId"] for m in run_inbox(pipeline, capsys, other)["messages"]]

    def test_item11_an_sla_reroute_moves_the_account_to_the_new_sdrs_inbox(
            self, pipeline: Pipeline, three: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
        before = three["acmetech.io"]
        pipeline.advance(hours=49)
        pipeline.stack.run_schedule("RoutingPassFunction", pipeline.now)
        pipeline.settle()
        after = pipeline.account("acmetech.io")["sdr"]["id"]
        assert after != before
        assert "acmetech.io" not in [m["accountId"] for m in run_inbox(pipeline, capsys, before)["messages"]]
        moved = next(m for m in run_inbox(pipeline, capsys, after)["messages"] if m["accountId"] == "acmetech.io")
        assert moved["sdr"]["id"] == after and moved["cycle"] == 1 and moved["routedAt"] == _now(pipeline)

    def test_item11_an_accepted_account_leaves_the_open_list(
            self, pipeline: Pipeline, three: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
        owner = three["initech.io"]
        status, body = feedback(pipeline, {"outcome": "accepted", "sdr": owner}, "initech.io")
        assert status == 200, body
        pipeline.settle()
        answer = run_inbox(pipeline, capsys, owner)
        assert "initech.io" not in [m["accountId"] for m in answer["messages"]]
        assert {"accountId": "initech.io", "cycle": 1, "state": "accepted"} in answer["closed"]

    def test_item11_the_text_inbox(
            self, pipeline: Pipeline, three: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
        owner = three["acmetech.io"]
        capsys.readouterr()
        assert inbox.main(["--sdr", owner, "--now", _now(pipeline)]) == 0
        out = capsys.readouterr().out
        assert f"Inbox of {owner} ({owner.title()} " in out
        assert "routed account(s), newest first" in out
        assert "1. Acmetech (acmetech.io)   cycle 1" in out
        assert "score 105 = fit 30 + engagement 75" in out and "territory na, routing territory" in out
        assert "the routed queue holds 3 message(s) for all SDRs, 0 in flight, 0 in its dead-letter queue" in out
        assert "read from the assignments (table leadscore-Table, OwnerIndex), valued as of now; the queue was " \
               "not received from" in out

    def test_item11_an_empty_inbox_says_so(
            self, pipeline: Pipeline, three: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
        capsys.readouterr()
        assert inbox.main(["--sdr", "kenji", "--now", _now(pipeline)]) == 0
        assert "The inbox is empty: nothing is assigned to kenji." in capsys.readouterr().out

    def test_item11_ack_is_refused_the_consumer_deletes(
            self, pipeline: Pipeline, three: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit) as stopped:
            inbox.main(["--sdr", three["acmetech.io"], "--ack", "all"])
        assert stopped.value.code == 2
        err = capsys.readouterr().err
        assert "--ack: make inbox no longer deletes" in err and "the one dispatcher" in err
        assert len(receive_all(pipeline)) == 3
