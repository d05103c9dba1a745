"""`make serve SLACK_WEBHOOK_URL=...` with `make webhook`: the local stack's API destination
posts to a local webhook receiver exactly what EventBridge would post to Slack."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from local.serve_client import WEB_KEY, LocalServer
from local.slack_format import problems
from local.webhook import Receiver, main, readable, render

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver(log=print).start()
    yield found
    found.stop()


@pytest.fixture(scope="module")
def server(receiver: Receiver) -> Iterator[LocalServer]:
    with LocalServer.running(args=["--parameter", f"SlackWebhookUrl={receiver.url}"]) as local:
        yield local


def qualify(server: LocalServer, domain: str) -> None:
    user = f"vp@{domain}"
    batch = [
        {"type": "identify", "userId": user, "traits": {"email": user, "title": "VP Sales",
                                                        "address": {"country": "US"}}},
        {"type": "group", "userId": user, "groupId": domain,
         "traits": {"name": 'Zeta "Z" Labs', "website": f"https://{domain}", "industry": "Software",
                    "employees": 200, "address": {"country": "US"}}},
        {"type": "track", "userId": user, "event": "Demo Requested"},
        {"type": "track", "userId": user, "event": "Demo Link Clicked"},
    ]
    answer = server.request("POST", "/v1/batch", basic_user=WEB_KEY, body={"batch": batch})
    assert answer.status == 200, answer.body


def test_a_routed_account_reaches_the_local_webhook_as_slack_json(server: LocalServer, receiver: Receiver) -> None:
    # the banner says where Slack messages go (the webhook's path hidden: in AWS it is the secret)
    assert "SlackDestination" in server.output() and receiver.url.rsplit("/", 1)[0] + "/..." in server.output()
    qualify(server, "zetalabs.io")
    deadline = time.monotonic() + 30
    while not receiver.messages() and time.monotonic() < deadline:
        server.drain()
        time.sleep(0.2)
    (message,) = receiver.messages()
    assert problems(message) == []
    assert message["blocks"][0]["text"]["text"] == "Account Routed: Zeta 'Z' Labs"
    section = message["blocks"][1]["text"]["text"]
    assert "*Zeta 'Z' Labs (zetalabs.io)*\nScore 105" in section and "*Why:* demo_requested +50" in section
    (request,) = receiver.requests
    assert request["path"] == "/slack" and request["headers"]["Content-Type"].startswith("application/json")
    assert json.loads(request["body"]) == message


def test_the_receiver_prints_what_an_sdr_reads_and_refuses_what_slack_refuses(receiver: Receiver) -> None:
    message: dict[str, Any] = {"text": "t", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Account Routed: Acme"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "<@U0ANA1234>: *Acme*\n*SLA:* accept by "
                                     "<!date^1793782800^{date_short_pretty} {time}|2026-11-04T09:00:00Z> &amp; more"}}]}
    shown = render(message)
    assert shown.splitlines()[:3] == ["# Account Routed: Acme", "  @U0ANA1234: *Acme*",
                                      "  *SLA:* accept by 2026-11-04T09:00:00Z & more"]
    assert shown.endswith("(Slack's format: ok)")
    assert "NOT VALID FOR SLACK" in render({"text": "a <b>"})
    assert readable("<https://x.io|x>") == "x"


def test_the_webhook_command_answers_the_status_it_is_told(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--status" in capsys.readouterr().out
