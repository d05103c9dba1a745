"""Slack notifications through the real path: the stack of template.yaml with SlackWebhookUrl set
(its Connection, API destination, rule, dead-letter queue), a routed account's bus events, the
local runner posting them through the rule's input transformer to a webhook receiver started
here (a tiny http.server on 127.0.0.1), and what the receiver got checked against Slack's
message format. A receiver answering 5xx, timing out, 429 and 404 loses no message: each is
delivered or in the dead-letter queue."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import TEMPLATE, _stack_session
from tests.integration.conftest import Pipeline
from tests.integration.test_route_flow import qualify, sdr, use_routing
from tests.support.slack_format import problems
from tests.support.stack import TemplateStack

HOUR = timedelta(hours=1)


class Receiver:
    """A webhook on 127.0.0.1: answers each POST as scripted (an HTTP status, or "timeout": no
    answer in time), 200 `ok` once the script runs out, as Slack answers; keeps every request."""

    def __init__(self) -> None:
        self.script: list[int | str] = []
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    answer = receiver.script.pop(0) if receiver.script else 200
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                              "at": time.monotonic(), "answer": answer})
                if answer == "timeout":
                    time.sleep(0.6)  # past the destination's (shortened) timeout
                    return
                self.send_response(int(answer))
                if answer == 429:
                    self.send_header("Retry-After", "1")
                self.end_headers()
                self.wfile.write(b"ok" if answer == 200 else b"invalid_token" if answer == 404 else b"error")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/XXXX"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def messages(self, answered: int | None = 200) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests if answered is None or r["answer"] == answered]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()
    found.server.server_close()


@pytest.fixture
def slack(aws: None, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    stack = TemplateStack.create(TEMPLATE, session=_stack_session(), parameters={"SlackWebhookUrl": receiver.url})
    destination = stack.api_destinations["SlackDestination"]
    destination.timeout, destination.pace = 0.3, False  # fast tests; the rate has its own test
    use_routing(monkeypatch, sdrs=[sdr("maya", slack_user_id="U0MAYA123"), sdr("lucas")],
                pools=[{"id": "na", "sdrs": ["maya", "lucas"]}], fallback_pool="na", sla_hours=48)
    return Pipeline(stack, monkeypatch)


def dead_letters(stack: TemplateStack) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    url = stack.url_of("SlackDeadLetterQueue")
    out = []
    while True:
        page = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                   MessageAttributeNames=["All"]).get("Messages", [])
        if not page:
            return out
        for message in page:
            attributes = {k: v["StringValue"] for k, v in (message.get("MessageAttributes") or {}).items()}
            out.append({"event": json.loads(message["Body"]), "attributes": attributes})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def put(stack: TemplateStack, n: int) -> str:
    """An `Account Routed` as the aggregate function publishes it (its slack strings included)."""
    from leadscore.engine.slack import slack_detail

    body = {"accountId": f"a{n}.io", "name": f"A{n}", "domain": f"a{n}.io", "score": 100 + n, "fit": 30,
            "engagement": 70 + n, "committeeBonus": 0, "threshold": 100, "cycle": 1, "state": "routed",
            "sdr": {"id": "maya", "name": "Maya Johnson", "slackUserId": "U0MAYA123"},
            "slaDueAt": "2026-11-04T09:00:00Z"}
    body["slack"] = slack_detail("Account Routed", body)
    stack.put_event("Account Routed", body, source="leadscore")
    return body["accountId"]


# ---------------------------------------------------------------- off by default


def test_without_a_webhook_nothing_of_slack_is_created(stack: TemplateStack) -> None:
    assert stack.conditions["NotifySlack"] is False
    assert not stack.api_destinations
    assert not any(logical_id.startswith("Slack") for logical_id in stack.resources)
    assert not any(logical_id.startswith("Slack") for logical_id in stack.describe())


# ---------------------------------------------------------------- the real path


def test_a_routed_account_is_posted_to_the_webhook_mentioning_its_sdr(slack: Pipeline, receiver: Receiver) -> None:
    # Given an account that qualifies, routed to maya (slack_user_id U0MAYA123)
    qualify(slack)
    slack.settle()
    # Then the webhook got one message: Slack's format, the SDR mentioned, the account, score, reasons, SLA
    (request,) = receiver.requests
    assert request["path"] == "/services/T000/B000/XXXX"
    assert request["headers"]["Content-Type"].startswith("application/json")
    assert request["headers"]["X-Leadscore-Notifier"] == "slack-incoming-webhook"  # the connection's header
    message = json.loads(request["body"])
    assert problems(message) == []
    assert message["text"] == "Account Routed: Acmetech, score 105 for <@U0MAYA123>"
    header, section, _context = message["blocks"]
    assert header["text"]["text"] == "Account Routed: Acmetech"
    assert section["text"]["text"] == (
        "<@U0MAYA123>: *Acmetech (acmetech.io)*\n"
        "Score 105 (fit 30, engagement 75, committee 0; threshold 100)\n"
        "*Why:* demo_requested +50 (u-0-acmetech.io) · demo_link_clicked +25 (u-0-acmetech.io)"
        " · account_industry_technology +15\n"
        "*SLA:* accept by <!date^1793782800^{date_short_pretty} {time}|2026-11-04T09:00:00Z>")
    # and the bus event carried it: the SDR's Slack id on `sdr`, the strings under `slack`
    (routed,) = slack.bus("Account Routed")
    assert routed["detail"]["sdr"]["slackUserId"] == "U0MAYA123"
    assert routed["detail"]["slack"]["mention"] == "<@U0MAYA123>"


def test_an_sla_breach_tells_slack_and_pings_the_new_sdr_once(slack: Pipeline, receiver: Receiver,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    use_routing(monkeypatch, sdrs=[sdr("maya", slack_user_id="U0MAYA123"), sdr("lucas", slack_user_id="U0LUCAS99")],
                pools=[{"id": "na", "sdrs": ["maya", "lucas"]}], fallback_pool="na", sla_hours=48)
    qualify(slack)
    slack.settle()
    # When maya's SLA runs out and the routing pass re-routes to lucas
    slack.advance(hours=49)
    slack.stack.run_schedule("RoutingPassFunction", slack.now)
    slack.settle()
    first, breach, rerouted = receiver.messages()
    assert all(problems(m) == [] for m in (first, breach, rerouted))
    assert breach["blocks"][0]["text"]["text"] == "Routing SLA Breached: Acmetech"
    # the breach names lucas; the Account Routed that follows is what pings him
    assert breach["blocks"][1]["text"]["text"].startswith("*Lucas*: *Acmetech")
    assert rerouted["blocks"][1]["text"]["text"].startswith("<@U0LUCAS99>: *Acmetech")
    assert "*SLA:* ran out with maya; re-routed, accept by <!date^" in breach["blocks"][1]["text"]["text"]
    assert rerouted["blocks"][0]["text"]["text"] == "Account Routed: Acmetech"
    assert "(re-routed from maya: SLA ran out)" in rerouted["blocks"][1]["text"]["text"]


def test_an_account_name_with_quotes_newlines_and_markup_is_posted_as_valid_json(
        slack: Pipeline, receiver: Receiver) -> None:
    # Given a group call naming the company with quotes, a backslash, a line break and Slack markup
    user = "u-q"
    traits = {"name": 'Acme "Rockets"\\n\nInc <!channel> & co', "website": "https://www.rockets.io",
              "industry": "Software", "employees": 200, "address": {"country": "US"}}
    batch = [{"type": "identify", "userId": user, "traits": {"email": "vp@rockets.io", "title": "VP Sales"}},
             {"type": "group", "userId": user, "groupId": "rockets.io", "traits": traits},
             {"type": "track", "userId": user, "event": "Demo Requested"},
             {"type": "track", "userId": user, "event": "Demo Link Clicked"}]
    stamped = [{**m, "timestamp": slack.now.isoformat(), "messageId": f"q-{i}"} for i, m in enumerate(batch)]
    assert slack.http("POST", "/v1/batch", body={"batch": stamped}, basic_user="wk_demo_website")["statusCode"] == 200
    slack.settle()
    (request,) = receiver.requests
    message = json.loads(request["body"])  # valid JSON
    assert problems(message) == []
    assert message["blocks"][0]["text"]["text"] == "Account Routed: Acme 'Rockets'/n Inc ‹!channel› + co"
    assert "*Acme 'Rockets'/n Inc &lt;!channel&gt; &amp; co (rockets.io)*" in message["blocks"][1]["text"]["text"]
    assert b"<!channel>" not in request["body"]


# ---------------------------------------------------------------- faults


def test_5xx_timeouts_and_429_are_retried_and_404_goes_to_the_dead_letter_queue(
        slack: Pipeline, receiver: Receiver) -> None:
    stack = slack.stack
    # Given a webhook that fails the first message three ways before taking it, and refuses the second
    receiver.script = [500, "timeout", 429, 200, 404]
    first, second = put(stack, 1), put(stack, 2)
    stack.bus_events()
    # Then the first was delivered on its fourth attempt, the second went to the DLQ at once
    assert [r["answer"] for r in receiver.requests] == [500, "timeout", 429, 200, 404]
    (delivered,) = receiver.messages()
    assert delivered["blocks"][0]["text"]["text"] == "Account Routed: A1"
    (dead,) = dead_letters(stack)
    assert dead["event"]["detail"]["accountId"] == second  # the event itself
    assert dead["event"]["detail-type"] == "Account Routed"
    assert dead["attributes"]["ERROR_CODE"] == "HTTP_404" and "invalid_token" in dead["attributes"]["ERROR_MESSAGE"]
    assert dead["attributes"]["RULE_ARN"].endswith("/leadscore-SlackNotifyRule")
    assert [(d.delivered, d.attempts) for d in stack.api_deliveries] == [(True, 4), (False, 1)]
    assert first != second


def test_a_webhook_that_keeps_failing_loses_no_message(slack: Pipeline, receiver: Receiver,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import local.api_destinations

    # 2 x 13 tries: the back-off between them shortened (its doubling has its own unit test)
    monkeypatch.setattr(local.api_destinations, "BACKOFF_START", 0.001)
    monkeypatch.setattr(local.api_destinations, "BACKOFF_CAP", 0.004)
    stack = slack.stack
    retries = 12  # template.yaml: SlackNotifyRule's RetryPolicy
    # Given a webhook that answers 503 to every try of the first message, times out on every try
    # of the second, and takes the third
    receiver.script = [503] * (retries + 1) + ["timeout"] * (retries + 1)
    sent = [put(stack, n) for n in (1, 2, 3)]
    stack.bus_events()
    # Then each message is either delivered or in the dead-letter queue, after 1 + 12 tries
    delivered = [m["blocks"][0]["text"]["text"] for m in receiver.messages()]
    dead = dead_letters(stack)
    assert delivered == ["Account Routed: A3"]
    assert sorted(d["event"]["detail"]["accountId"] for d in dead) == sent[:2]
    assert {d["attributes"]["RETRY_ATTEMPTS"] for d in dead} == {str(retries)}
    assert {d["attributes"]["EXHAUSTED_RETRY_CONDITION"] for d in dead} == {"MaximumRetryAttempts"}
    assert len(receiver.requests) == 2 * (retries + 1) + 1


def test_the_destination_posts_at_most_once_a_second(slack: Pipeline, receiver: Receiver) -> None:
    destination = slack.stack.api_destinations["SlackDestination"]
    assert destination.rate_per_second == 1
    destination.pace = True
    for n in range(3):
        put(slack.stack, n)
    slack.stack.bus_events()
    moments = [r["at"] for r in receiver.requests]
    assert len(moments) == 3
    assert all(b - a >= 0.95 for a, b in zip(moments, moments[1:], strict=False)), moments


# ---------------------------------------------------------------- replay


def test_a_dead_letter_replayed_reaches_slack_and_nothing_else(slack: Pipeline, receiver: Receiver) -> None:
    from local import replay

    stack = slack.stack
    # Given a message the webhook refused (a revoked URL, say), now in the dead-letter queue
    receiver.script = [404]
    put(stack, 7)
    stack.bus_events()
    assert receiver.messages() == []
    # When the webhook works again and the queue is replayed
    assert replay.main(["--queue", stack.url_of("SlackDeadLetterQueue"), "--via", "local"]) == 0
    replayed = stack.bus_events()
    # Then Slack gets the message, the queue is empty, and only the Slack rule saw the event again
    (message,) = receiver.messages()
    assert problems(message) == [] and message["blocks"][0]["text"]["text"] == "Account Routed: A7"
    assert [e["source"] for e in replayed] == ["leadscore.slack-replay"]
    assert stack.rules_matching({**replayed[0], "resources": []}) == []  # no function rule matches it
    assert dead_letters(stack) == []


def test_a_reassignment_by_a_lead_tells_the_new_sdr_in_slack(slack: Pipeline, receiver: Receiver,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.integration.test_assign_flow import assign

    use_routing(monkeypatch, sdrs=[sdr("maya", slack_user_id="U0MAYA123"), sdr("lucas", slack_user_id="W0LUCAS12"),
                                   sdr("lena")],
                pools=[{"id": "na", "sdrs": ["maya", "lucas"]}], fallback_pool="na", leads=["lena"])
    qualify(slack)
    slack.settle()
    slack.advance(hours=5)
    status, answer = assign(slack, "acmetech.io", {"sdr": "lucas", "by": "lena", "note": "maya is out"})
    assert status == 200, answer
    slack.settle()
    routed, moved = receiver.messages()
    assert problems(moved) == []
    assert moved["blocks"][0]["text"]["text"] == "Account Reassigned: Acmetech"
    section = moved["blocks"][1]["text"]["text"]
    assert section.startswith("<@W0LUCAS12>: *Acmetech (acmetech.io)*")
    assert section.endswith("|2026-11-04T14:00:00Z> (reassigned from maya by lena)")
    assert "<@U0MAYA123>" in routed["text"] and "<@W0LUCAS12>" in moved["text"]


def test_make_serve_posts_from_its_own_thread_and_drain_waits_for_the_posts(slack: Pipeline,
                                                                          receiver: Receiver) -> None:
    from local.server import LocalService

    stack = slack.stack
    stack.api_destinations["SlackDestination"].pace = True  # 1/s, as in AWS
    service = LocalService(stack)
    try:
        for n in range(3):
            put(stack, n)
        # a delivery round queues the posts: the rate limit's sleeps hold neither it nor the API
        started = time.monotonic()
        assert service.deliver_once()["bus_events"] == 3
        assert time.monotonic() - started < 0.9
        # drain returns once the posts are done, paced a second apart
        assert service.drain()["errors"] == []
        moments = [r["at"] for r in receiver.requests]
        assert len(receiver.messages()) == 3
        assert all(b - a >= 0.95 for a, b in zip(moments, moments[1:], strict=False)), moments
    finally:
        service.stop_delivery()
