"""EventBridge API destinations for the local stack: what a rule with an API destination target
sends, and where (`make serve`, the tests), so a local webhook receiver sees what Slack would.

- `transform`: an input transformer applied as EventBridge documents it
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html):
  `InputPathsMap` values are JSON paths (dot notation, `[n]` indices) into the event; each
  `<name>` of `InputTemplate` becomes its value: outside a JSON string as JSON (a string
  quoted), inside one a string JSON-escaped, a number or boolean as written, an object or an
  array as JSON without its quotes. A path the event lacks creates no variable: its
  placeholder becomes nothing inside a string and `null` outside one (the documentation says
  only that the variable "won't appear in the output"; the Slack rule never relies on it: a
  test checks each of its paths is on every event it matches). The reserved
  `aws.events.rule-arn`, `aws.events.rule-name`, `aws.events.event` (the event without
  `detail`), `aws.events.event.json` and `aws.events.event.ingestion-time` are known.
- `ApiDestination.post`: one invocation: the HTTP method to the endpoint with the
  connection's API key header, `Content-Type: application/json; charset=utf-8`, a 5 second
  timeout (the limit EventBridge gives an endpoint).
- `deliver`: EventBridge's delivery to an API destination: at most
  `InvocationRateLimitPerSecond` invocations a second per destination (loosely: one process,
  sleeps), retries per the target's `RetryPolicy` (`MaximumRetryAttempts`,
  `MaximumEventAgeInSeconds` in real time) of what EventBridge retries (401, 407, 409, 429,
  5xx, timeouts, refused connections) with a short back-off, and the event itself to the
  target's dead-letter queue when Slack refuses it outright (other 4xx) or the retries run
  out; without a dead-letter queue it is dropped, as EventBridge drops it.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MISSING", "ApiDestination", "Delivery", "deliver", "resolve_path", "transform"]

#: EventBridge gives an API destination's endpoint this long to answer.
ENDPOINT_TIMEOUT = 5.0
#: Answers EventBridge retries (besides timeouts and connection errors); other 4xx are final.
RETRIED_STATUS = frozenset({401, 407, 409, 429})
#: Back-off between local retries: short, doubling, capped (EventBridge's is minutes; a local
#: receiver that fails a few times should not stall the delivery loop).
BACKOFF_START = 0.05
BACKOFF_CAP = 0.5

_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
MISSING = object()


# ---------------------------------------------------------------- the input transformer


def resolve_path(event: Any, path: str) -> Any:
    """The value at a JSON path (`$.detail.slack.text`, `$.resources[0]`, `$.detail-type`), or
    `MISSING`."""
    if not path.startswith("$"):
        return MISSING
    value: Any = event
    rest = path[1:]
    for match in _PATH_PART.finditer(rest):
        name, index = match.groups()
        if name is not None:
            if not isinstance(value, Mapping) or name not in value:
                return MISSING
            value = value[name]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                return MISSING
            value = value[int(index)]
    return value


def _reserved(event: Mapping[str, Any], rule_arn: str, rule_name: str) -> dict[str, Any]:
    return {
        "aws.events.rule-arn": rule_arn,
        "aws.events.rule-name": rule_name,
        "aws.events.event.ingestion-time": event.get("time"),
        "aws.events.event": {k: v for k, v in event.items() if k != "detail"},
        "aws.events.event.json": dict(event),
    }


def _in_string(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)[1:-1]
    if isinstance(value, Mapping | list):
        return json.dumps(value, ensure_ascii=False).replace('"', "")
    return json.dumps(value)


def transform(transformer: Mapping[str, Any], event: Mapping[str, Any], *, rule_arn: str = "",
              rule_name: str = "") -> str:
    """The text EventBridge sends the target for `event` through this input transformer."""
    variables: dict[str, Any] = {}
    for name, path in (transformer.get("InputPathsMap") or {}).items():
        value = resolve_path(event, str(path))
        if value is not MISSING:
            variables[name] = value
    reserved = _reserved(event, rule_arn, rule_name)
    template = str(transformer.get("InputTemplate") or "")
    out: list[str] = []
    in_string = escaped = False
    i = 0
    while i < len(template):
        char = template[i]
        if char == "<":
            match = _PLACEHOLDER.match(template, i)
            if match is not None and (match.group(1) in transformer.get("InputPathsMap", {})
                                      or match.group(1) in reserved):
                name = match.group(1)
                value = variables.get(name, reserved.get(name, MISSING))
                if value is MISSING:
                    out.append("" if in_string else "null")
                elif in_string:
                    out.append(_in_string(value))
                else:
                    out.append(json.dumps(value, ensure_ascii=False))
                i = match.end()
                escaped = False
                continue
        out.append(char)
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        i += 1
    return "".join(out)


# ---------------------------------------------------------------- delivery


@dataclass
class ApiDestination:
    """An `AWS::Events::ApiDestination` with its connection's header, as the stack built it."""

    logical_id: str
    arn: str
    endpoint: str
    method: str = "POST"
    rate_per_second: float = 300.0
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = ENDPOINT_TIMEOUT
    #: whether to keep to `rate_per_second` (tests that are not about the rate turn it off)
    pace: bool = True
    _last: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def wait_turn(self, sleep: Callable[[float], None] = time.sleep) -> None:
        """Keep to the invocation rate: one invocation per 1/rate seconds."""
        with self._lock:
            if self.pace and self.rate_per_second > 0:
                gap = 1.0 / self.rate_per_second - (time.monotonic() - self._last)
                if gap > 0:
                    sleep(gap)
            self._last = time.monotonic()

    def post(self, body: str) -> tuple[int | None, str]:
        """One invocation: (HTTP status, or None for a timeout or connection error; what it said)."""
        self.wait_turn()
        request = urllib.request.Request(self.endpoint, data=body.encode("utf-8"), method=self.method,
                                         headers={"Content-Type": "application/json; charset=utf-8",
                                                  "User-Agent": "Amazon/EventBridge/ApiDestinations (local)",
                                                  **self.headers})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - the template's endpoint
                return int(response.status), response.read(2048).decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            return int(error.code), error.read(2048).decode("utf-8", "replace")
        except TimeoutError as error:
            return None, f"timed out after {self.timeout:g} s: {error}"
        except (urllib.error.URLError, ConnectionError, OSError) as error:
            return None, f"no answer: {getattr(error, 'reason', error)}"


@dataclass
class Delivery:
    """What became of one event at one API destination target."""

    destination: str
    body: str
    status: int | None
    attempts: int
    delivered: bool
    error: str | None = None
    answers: list[int | None] = field(default_factory=list)


def _retried(status: int | None) -> bool:
    return status is None or status in RETRIED_STATUS or status >= 500


def deliver(destination: ApiDestination, body: str, retry_policy: Mapping[str, Any] | None,
            *, sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """Post `body` until it is taken (2xx), refused for good (a 4xx EventBridge does not retry)
    or the target's RetryPolicy runs out (185 retries and 24 hours without one)."""
    policy = retry_policy or {}
    retries = int(policy.get("MaximumRetryAttempts", 185))
    max_age = float(policy.get("MaximumEventAgeInSeconds", 86400))
    started = time.monotonic()
    answers: list[int | None] = []
    backoff = BACKOFF_START
    said = ""
    for attempt in range(1, retries + 2):
        status, said = destination.post(body)
        answers.append(status)
        if status is not None and 200 <= status < 300:
            return Delivery(destination.logical_id, body, status, attempt, True, answers=answers)
        if not _retried(status):
            return Delivery(destination.logical_id, body, status, attempt, False,
                            error=f"HTTP {status}: {said[:300]}", answers=answers)
        if attempt > retries or time.monotonic() - started + backoff > max_age:
            break
        sleep(backoff)
        backoff = min(backoff * 2, BACKOFF_CAP)
    what = f"HTTP {answers[-1]}" if answers[-1] is not None else "no answer"
    return Delivery(destination.logical_id, body, answers[-1], len(answers), False,
                    error=f"retries exhausted ({len(answers)} attempts), last {what}: {said[:300]}", answers=answers)
