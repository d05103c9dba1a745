"""The local runner's EventBridge API destinations (local/api_destinations.py): the input
transformer as documented, and which answers are retried, which dead-lettered."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.api_destinations import (
    BACKOFF_CAP,
    BACKOFF_START,
    MISSING,
    ApiDestination,
    deliver,
    resolve_path,
    transform,
)

EVENT: dict[str, Any] = {
    "version": "0", "id": "e-1", "detail-type": "Account Routed", "source": "leadscore", "account": "1",
    "time": "2026-11-25T12:00:00Z", "region": "us-east-1", "resources": ["arn:1", "arn:2"],
    "detail": {"name": 'Acme "A"\nInc', "score": 105, "ok": True, "none": None, "sdr": {"id": "ana"},
               "tags": ["x", "y"]},
}


def test_paths_take_dots_dashes_and_indices() -> None:
    assert resolve_path(EVENT, "$.detail-type") == "Account Routed"
    assert resolve_path(EVENT, "$.resources[1]") == "arn:2"
    assert resolve_path(EVENT, "$.detail.sdr.id") == "ana"
    assert resolve_path(EVENT, "$") == EVENT
    assert resolve_path(EVENT, "$.detail.nope") is MISSING
    assert resolve_path(EVENT, "$.resources[2]") is MISSING and resolve_path(EVENT, "detail") is MISSING


@pytest.mark.parametrize(("template", "expected"), [
    # outside quotes: JSON values (a string quoted)
    ('{"n": <name>, "s": <score>, "b": <ok>, "z": <none>, "o": <sdr>, "t": <tags>}',
     {"n": 'Acme "A"\nInc', "s": 105, "b": True, "z": None, "o": {"id": "ana"}, "t": ["x", "y"]}),
    # inside quotes: a string JSON-escaped, numbers as written, objects without their quotes
    # (the documentation's example: "Detail is {key1: value1}")
    ('{"text": "<name> scored <score> (<ok>) for <sdr>"}', {"text": 'Acme "A"\nInc scored 105 (true) for {id: ana}'}),
    # a path the event lacks: nothing inside a string, null outside
    ('{"a": "[<missing>]", "b": <missing>}', {"a": "[]", "b": None}),
    # reserved variables, and a placeholder the map does not define stays as written
    ('{"rule": "<aws.events.rule-name>", "e": <aws.events.event>, "x": "<unknown>"}',
     {"rule": "SlackNotifyRule", "e": {k: v for k, v in EVENT.items() if k != "detail"}, "x": "<unknown>"}),
    # an escaped quote in the template does not end the string
    ('{"a": "say \\"<name>\\""}', {"a": 'say "Acme "A"\nInc"'}),
])
def test_the_input_transformer_fills_placeholders_by_where_they_stand(template: str, expected: Any) -> None:
    transformer = {"InputPathsMap": {"name": "$.detail.name", "score": "$.detail.score", "ok": "$.detail.ok",
                                     "none": "$.detail.none", "sdr": "$.detail.sdr", "tags": "$.detail.tags",
                                     "missing": "$.detail.missing"},
                   "InputTemplate": template}
    assert json.loads(transform(transformer, EVENT, rule_name="SlackNotifyRule")) == expected


class Scripted(ApiDestination):
    """A destination whose invocations answer from a script (no network)."""

    script: list[int | None]

    def post(self, body: str) -> tuple[int | None, str]:
        return self.script.pop(0), "said"


def scripted(*answers: int | None) -> Scripted:
    destination = Scripted(logical_id="D", arn="arn:d", endpoint="http://127.0.0.1:1/x", pace=False)
    destination.script = list(answers)
    return destination


@pytest.mark.parametrize("retried", [None, 401, 407, 409, 429, 500, 502, 503, 504])
def test_what_eventbridge_retries_is_retried(retried: int | None) -> None:
    result = deliver(scripted(retried, 200), "{}", {"MaximumRetryAttempts": 3}, sleep=lambda s: None)
    assert (result.delivered, result.attempts, result.answers) == (True, 2, [retried, 200])


@pytest.mark.parametrize("final", [400, 403, 404, 410, 413])
def test_other_4xx_are_final_at_once(final: int) -> None:
    result = deliver(scripted(final, 200), "{}", {"MaximumRetryAttempts": 3}, sleep=lambda s: None)
    assert (result.delivered, result.attempts, result.status) == (False, 1, final)
    assert result.error is not None and result.error.startswith(f"HTTP {final}")


def test_retries_end_at_the_policy() -> None:
    result = deliver(scripted(*[503] * 5), "{}", {"MaximumRetryAttempts": 2}, sleep=lambda s: None)
    assert (result.delivered, result.attempts) == (False, 3)
    assert result.error is not None and "retries exhausted (3 attempts), last HTTP 503" in result.error


def test_retries_end_at_the_maximum_event_age() -> None:
    result = deliver(scripted(*[503] * 5), "{}", {"MaximumRetryAttempts": 10, "MaximumEventAgeInSeconds": 0},
                     sleep=lambda s: None)
    assert (result.delivered, result.attempts) == (False, 1)


def test_the_back_off_between_retries_doubles_up_to_its_cap() -> None:
    waits: list[float] = []
    result = deliver(scripted(*[503] * 8), "{}", {"MaximumRetryAttempts": 7}, sleep=waits.append)
    assert (result.delivered, result.attempts) == (False, 8)
    assert waits == [BACKOFF_START * 2 ** n if BACKOFF_START * 2 ** n < BACKOFF_CAP else BACKOFF_CAP
                     for n in range(7)]
    assert waits[-1] == BACKOFF_CAP and waits[0] == BACKOFF_START
