"""`make demo` / `python -m local.demo`: the sample journeys replayed on the local stack.

moto runs in-process (fake credentials, nothing leaves the machine); the stack is built
from template.yaml itself (`local.stack`). Every step of every journey in
`events/journeys/*.json` (format: events/journeys/README.md) is replayed in time order with
the clock every function reads pinned to the step's time (LEADSCORE_NOW); the table's
stream, the bus rules and the queues are pumped after each step, and the decay schedule
(DecayFunction) runs once per simulated day at midnight UTC. Then everything is read back
through the read API's handler (ReadApiFunction), as a RevOps engineer or an SDR tool would:
each account's score and why (and its routing decision), the top contacts, what an SDR
would get, the Slack messages (the stack's SlackWebhookUrl is a local webhook receiver on a
free port of 127.0.0.1: `local.webhook.Receiver`) and the state changes that went out on
the bus.

Exit status: 0 when every step was accepted and no handler failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import sys
import textwrap
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from local.durations import parse_iso_duration
from local.env import LOCAL_AWS_ENV, UNSET_AWS_ENV, drop_disabled_metrics, patched_env

REPO_ROOT = Path(__file__).resolve().parents[1]
JOURNEYS_DIR = REPO_ROOT / "events" / "journeys"
TEMPLATE = REPO_ROOT / "template.yaml"
#: Day 0 of the journeys' "+<N>d HH:MM" offsets (a Monday).
EPOCH = datetime(2026, 9, 7, tzinfo=UTC)
#: The report is read the morning after the last step, at this hour (UTC).
REPORT_HOUR = 9
DEFAULT_BUS_SOURCE = "com.example.product"
FEEDBACK_ROUTE = "POST /v1/accounts/{accountId}/feedback"
#: The IAM user the demo's feedback steps are signed as (a CRM integration's).
FEEDBACK_CALLER = "crm-bot"
ASSIGN_ROUTE = "POST /v1/accounts/{accountId}/assign"
#: The IAM user the demo's reassignments are signed as (a team lead's console).
ASSIGN_CALLER = "lead-console"
AVAILABILITY_ROUTE = "PUT /v1/sdrs/{sdrId}/availability"
AVAILABILITY_CHANGED = "SDR Availability Changed"
#: The routing pass (SLA re-routes, waiting accounts) runs once per simulated hour; the
#: template schedules it every 15 minutes.
ROUTING_PASS = "RoutingPassFunction"
#: the rules change the demo previews: the demo link click from 25 to 40 points
PREVIEW_CHANGE = ("demo_link_clicked", 40)
EVIDENCE_SEGMENTS = 2
EVIDENCE_RULES_SHOWN = 5
PASS_EVERY = timedelta(hours=1)

#: Fake credentials and a fixed region: the demo never talks to AWS.
DEMO_ENV = {
    **LOCAL_AWS_ENV,
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_DISABLED": "true",
}
UNSET_ENV = UNSET_AWS_ENV

SEGMENT_ROUTES = ("/v1/identify", "/v1/track", "/v1/page", "/v1/group", "/v1/alias", "/v1/screen", "/v1/batch")
REPORT = Path("demo-report.html")
STATE_EVENTS = ("Account SDR Ready", "Account Routed", "Account Recycled", "Account Disqualified",
                "Routing SLA Breached")


#: The signed-route steps of a journey: the key each body must name, and the error's hint.
SIGNED_STEPS = {
    "feedback": ("account", "an 'account' (and 'outcome', 'sdr', 'note')"),
    "assign": ("account", "an 'account' (and 'sdr', 'by', 'note')"),
    "availability": ("sdr", "an 'sdr' (and 'available', 'until', 'reason')"),
}


class JourneyError(ValueError):
    """A journey file is malformed (names the file and the step)."""


# ------------------------------------------------------------------------------ journeys


@dataclass
class Step:
    journey: str
    index: int
    at: datetime
    route: str
    body: Any
    key: str | None = None
    note: str | None = None
    source: str | None = None
    encoding: str = "urlencoded"

    @property
    def label(self) -> str:
        return f"{self.journey} step {self.index + 1}"


@dataclass
class Journey:
    name: str
    file: str
    description: str
    expect: dict[str, Any]
    steps: list[Step]


_OFFSET = re.compile(r"^\+?(?P<days>\d+)d(?:\s+(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?)?$")


def parse_at(text: str, epoch: datetime = EPOCH) -> datetime:
    """A step's time: "+3d 09:30" (day 3 after the epoch, 09:30 UTC), an ISO-8601 duration
    from the epoch ("P3DT9H30M"), or an absolute ISO-8601 time with a zone."""
    value = str(text).strip()
    match = _OFFSET.match(value)
    if match:
        parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
        return epoch + timedelta(days=parts["days"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"])
    duration = parse_iso_duration(value)
    if duration is not None:
        return epoch + duration
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"'at': {text!r} is neither '+<N>d HH:MM', an ISO-8601 duration nor an ISO time") from None
    if moment.tzinfo is None:
        raise ValueError(f"'at': {text!r} needs a time zone (e.g. Z)")
    return moment.astimezone(UTC)


def load_journeys(directory: Path = JOURNEYS_DIR, epoch: datetime = EPOCH) -> list[Journey]:
    journeys = []
    for path in sorted(directory.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except ValueError as error:
            raise JourneyError(f"{path.name}: not JSON ({error})") from None
        raw_steps = doc.get("steps") if isinstance(doc, dict) else doc
        if not isinstance(raw_steps, list) or not raw_steps:
            raise JourneyError(f"{path.name}: 'steps' must be a non-empty list")
        name = str(doc.get("name") or path.stem) if isinstance(doc, dict) else path.stem
        steps = []
        for index, raw in enumerate(raw_steps):
            where = f"{path.name} steps[{index}]"
            kinds = ([kind for kind in ("route", "feedback", "run", "assign", "availability") if kind in raw]
                     if isinstance(raw, dict) else [])
            if not isinstance(raw, dict) or "at" not in raw or len(kinds) != 1:
                raise JourneyError(f"{where}: a step needs 'at' and one of 'route', 'feedback', 'run', 'assign' "
                                   "or 'availability'")
            try:
                at = parse_at(raw["at"], epoch)
            except ValueError as error:
                raise JourneyError(f"{where}: {error}") from None
            signed = SIGNED_STEPS.get(kinds[0])
            if signed is not None:
                needed, hint = signed
                body = raw[kinds[0]]
                if not isinstance(body, dict) or not body.get(needed):
                    raise JourneyError(f"{where}: '{kinds[0]}' needs {hint}")
                steps.append(Step(journey=path.stem, index=index, at=at, route=kinds[0], body=dict(body),
                                  note=raw.get("note")))
                continue
            if kinds == ["run"]:
                if not isinstance(raw["run"], str) or not raw["run"]:
                    raise JourneyError(f"{where}: 'run' names a scheduled function (e.g. RoutingPassFunction)")
                steps.append(Step(journey=path.stem, index=index, at=at, route="run", body={"function": raw["run"]},
                                  note=raw.get("note")))
                continue
            route = str(raw["route"])
            if route not in SEGMENT_ROUTES and route not in ("pixel", "bus") and not route.startswith("form:"):
                raise JourneyError(f"{where}: unknown route {route!r}")
            if route in SEGMENT_ROUTES + ("pixel",) and not raw.get("key"):
                raise JourneyError(f"{where}: route {route} needs a write 'key'")
            steps.append(Step(journey=path.stem, index=index, at=at, route=route, body=raw.get("body") or {},
                              key=raw.get("key"), note=raw.get("note"), source=raw.get("source"),
                              encoding=str(raw.get("encoding") or "urlencoded")))
        journeys.append(Journey(name=name, file=path.name, description=str(doc.get("description") or ""),
                                expect=dict(doc.get("expect") or {}) if isinstance(doc, dict) else {},
                                steps=steps))
    if not journeys:
        raise JourneyError(f"no journeys (*.json) in {directory}")
    return journeys


# ------------------------------------------------------------------------------ results


@dataclass
class StepResult:
    step: Step
    request: str
    status: int | str
    ok: bool
    detail: str = ""


@dataclass
class DemoResult:
    start: datetime
    end: datetime
    steps: list[StepResult] = field(default_factory=list)
    decay_runs: int = 0
    decayed: int = 0
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)  # GET /v1/accounts/{id} bodies
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # GET /v1/contacts/{id} bodies, by contactId
    #: GET /v1/accounts/{free-mail domain} status for individuals' domains (404: no such account)
    free_mail_accounts: dict[str, int] = field(default_factory=dict)
    journeys: list[Journey] = field(default_factory=list)
    bus_events: list[dict[str, Any]] = field(default_factory=list)
    routed: list[dict[str, Any]] = field(default_factory=list)  # messages on the routed queue, if any
    routing_function: str | None = None
    routing_passes: int = 0
    #: the pass's counts summed over the run (due, routed, rerouted, ...)
    routing_pass_counts: Counter[str] = field(default_factory=Counter)
    #: config/routing.yaml as the functions read it (pools, territories, sla_hours, cooldown_days)
    routing_rules: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the Slack messages the local webhook receiver got (the stack's SlackWebhookUrl), in order
    slack: list[dict[str, Any]] = field(default_factory=list)
    #: Slack posts that were not delivered (status, error), if any
    slack_failed: list[str] = field(default_factory=list)
    #: `make calibrate` over the journeys' own outcomes (the CRM's Opportunity Won/Lost, feedback)
    calibration: dict[str, Any] | None = None
    #: `make preview` of PREVIEW_CHANGE, and the rule's points now (for the page's chart)
    preview: dict[str, Any] | None = None
    current_points: dict[str, float | None] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors and all(s.ok for s in self.steps)

    def individuals(self) -> list[dict[str, Any]]:
        return [c for c in self.contacts.values() if not c.get("accountId")]

    def sdr_ready(self) -> list[dict[str, Any]]:
        """Accounts that qualified this cycle: waiting for an SDR, or routed to one."""
        return [a for a in self.accounts.values() if a.get("state") in ("sdr_ready", "routed")]

    def inboxes(self) -> dict[str, list[dict[str, Any]]]:
        """The routed queue's messages by SDR (its MessageGroupId), newest first."""
        by_sdr: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for message in self.routed:
            by_sdr[str((message.get("sdr") or {}).get("id"))].append(message)
        return {sdr: sorted(messages, key=lambda m: str(m.get("routedAt")), reverse=True)
                for sdr, messages in sorted(by_sdr.items())}

    def journey_outcome(self, journey: Journey) -> dict[str, Any]:
        """The account (or the contacts, for individuals) a journey produced."""
        wanted = set(contacts_of(journey))
        contacts = [c for c in self.contacts.values()
                    if wanted & {c.get("contactId"), str(c.get("email") or "").lower()}]
        account_ids = sorted({c["accountId"] for c in contacts if c.get("accountId")})
        return {"contacts": contacts, "accounts": [self.accounts[a] for a in account_ids if a in self.accounts]}


def contacts_of(journey: Journey) -> list[str]:
    """The contact ids (userId, else email) a journey's steps name, in order of appearance."""
    seen: dict[str, None] = {}
    for step in journey.steps:
        if step.route in ("feedback", "run", "assign", "availability"):
            continue
        bodies = step.body.get("batch", []) if step.route == "/v1/batch" else [step.body]
        for body in bodies:
            if not isinstance(body, dict):
                continue
            ident = body.get("userId") or body.get("uid")
            if not ident and step.route.startswith("form:"):
                ident = body.get("email")
            if not ident:
                email = (body.get("traits") or {}).get("email") or ((body.get("context") or {}).get("traits")
                                                                    or {}).get("email")
                ident = email
            if ident:
                seen.setdefault(str(ident).lower() if "@" in str(ident) else str(ident))
    return list(seen)


# ------------------------------------------------------------------------------ the run


def demo_environment() -> contextlib.AbstractContextManager[None]:
    """Fake credentials and no machine AWS config for the duration; restored afterwards."""
    return patched_env({**DEMO_ENV, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull},
                       UNSET_ENV, restore=("LEADSCORE_NOW",))


class Progress:
    """The replay's progress on a terminal: one line, redrawn in place,
    `[#####.....] 42/120 steps  2026-10-12`. Anywhere else (a pipe, a CI log, a test) it
    writes no control characters: one plain line per quarter of the steps."""

    WIDTH = 30
    #: seconds between redraws on a terminal
    EVERY = 0.05

    def __init__(self, stream: Any, total: int) -> None:
        self.stream = stream
        self.total = max(total, 1)
        isatty = getattr(stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.shown = ""
        self.drawn_at = 0.0
        self.quarter = 0

    def line(self, done: int, now: datetime) -> str:
        filled = round(self.WIDTH * done / self.total)
        return f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{self.total} steps  {now:%Y-%m-%d}"

    def update(self, done: int, now: datetime, force: bool = False) -> None:
        if self.tty:
            moment = time.monotonic()
            if force or done == self.total or moment - self.drawn_at >= self.EVERY:
                text = self.line(done, now)
                if text != self.shown:
                    self.stream.write("\r" + text + "\x1b[K")
                    self.stream.flush()
                    self.shown, self.drawn_at = text, moment
            return
        quarter = 4 * done // self.total
        if quarter > self.quarter:
            self.quarter = quarter
            print(f"replayed {done}/{self.total} steps, simulated clock at {now:%Y-%m-%d %H:%M}", file=self.stream)

    def clear(self) -> None:
        """Erase the bar (before other output on the same terminal; redrawn by the next update)."""
        if self.tty and self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = ""


class Demo:
    def __init__(self, stack: Any, journeys: list[Journey], log: Any = None, function_logs: bool = False,
                 progress: Any = None) -> None:
        self.stack = stack
        self.journeys = journeys
        self.log = log
        self.progress_stream = progress
        self.progress: Progress | None = None
        self.now = EPOCH
        if not function_logs:
            # The template sets INFO; the demo's own report is what a reader wants to see.
            for spec in stack.functions.values():
                spec.environment["POWERTOOLS_LOG_LEVEL"] = "WARNING"

    # -- clock -------------------------------------------------------------------------------

    def set_clock(self, moment: datetime) -> None:
        self.now = moment
        os.environ["LEADSCORE_NOW"] = moment.isoformat()

    # -- steps -------------------------------------------------------------------------------

    def run_step(self, step: Step) -> StepResult:
        from local.apigw import http_event

        at = step.at.isoformat().replace("+00:00", "Z")
        if step.route in SEGMENT_ROUTES:
            body = step.body
            if step.route == "/v1/batch":
                body = {**body, "batch": [{"timestamp": at, **m} for m in body.get("batch", [])]}
            else:
                body = {"timestamp": at, **body}
            event = http_event("POST", step.route, body=body, basic_user=step.key, now=self.now)
            return self._http(step, f"POST {step.route}", event)
        if step.route == "pixel":
            query = {"k": step.key, **{k: str(v) for k, v in step.body.items()}}
            event = http_event("GET", "/v1/pixel.gif", query=query, now=self.now)
            return self._http(step, "GET /v1/pixel.gif", event, gif=True)
        if step.route.startswith("form:"):
            from local.apigw import form_event

            form_id = step.route.split(":", 1)[1]
            path, route = f"/v1/forms/{form_id}", "POST /v1/forms/{formId}"
            if step.encoding == "json":
                event = http_event("POST", path, body=step.body, route_key=route, now=self.now)
            else:
                event = form_event(path, step.body, route_key=route, now=self.now,
                                   headers={"referer": "https://www.leadscore.example/demo"})
            return self._http(step, f"POST {path}", event)
        if step.route == "feedback":
            return self._feedback(step)
        if step.route == "assign":
            return self._assign(step)
        if step.route == "availability":
            return self._availability(step)
        if step.route == "run":
            return self._run_schedule(step)
        return self._bus(step, at)

    def _feedback(self, step: Step) -> StepResult:
        """Sales feedback as a CRM would post it: `POST /v1/accounts/{accountId}/feedback`,
        SigV4-signed (the IAM route's authorizer context), to FeedbackFunction."""
        return self._signed(step, "POST", FEEDBACK_ROUTE, "account", "accountId", "FeedbackFunction",
                            FEEDBACK_CALLER, lambda parsed: f"-> {parsed.get('state')}")

    def _assign(self, step: Step) -> StepResult:
        """A team lead's reassignment: `POST /v1/accounts/{accountId}/assign`, SigV4-signed, to
        AssignFunction (the new SDR's message and `Account Reassigned` follow from the stream)."""
        return self._signed(step, "POST", ASSIGN_ROUTE, "account", "accountId", "AssignFunction", ASSIGN_CALLER,
                            lambda parsed: f"-> {(parsed.get('sdr') or {}).get('id')} "
                                           f"(from {parsed.get('previousSdr')})")

    def _availability(self, step: Step) -> StepResult:
        """A team lead pausing an SDR (or marking them back): `PUT /v1/sdrs/{sdrId}/availability`,
        SigV4-signed (the lead's console), to SdrsFunction; routes skip a paused SDR from then."""
        return self._signed(step, "PUT", AVAILABILITY_ROUTE, "sdr", "sdrId", "SdrsFunction", ASSIGN_CALLER,
                            lambda parsed: f"-> {'available' if parsed.get('available') else 'paused'} "
                                           f"(version {parsed.get('version')})")

    def _signed(self, step: Step, method: str, route_key: str, step_key: str, parameter: str, function: str,
                caller: str, describe: Callable[[dict[str, Any]], str]) -> StepResult:
        """One IAM route's call, as API Gateway hands it to `function`: the step's `step_key`
        fills the path parameter, the rest of the step is the JSON body; `describe(answer)`
        says what a 200 did, else the error's message is shown."""
        from urllib.parse import quote

        from local.apigw import http_event, iam_authorizer, json_body

        value = str(step.body[step_key])
        body = {k: v for k, v in step.body.items() if k != step_key}
        path = route_key.split(" ", 1)[1].replace("{" + parameter + "}", quote(value))
        event = http_event(method, path, body=body, route_key=route_key, now=self.now,
                           path_parameters={parameter: value}, authorizer=iam_authorizer(user=caller))
        answer = self.stack.invoke(function, event)
        status, parsed = int(answer.get("statusCode", 0)), json_body(answer)
        ok = status == 200
        detail = (describe(parsed) if ok and isinstance(parsed, dict)
                  else str(parsed.get("message") if isinstance(parsed, dict) else parsed))
        return StepResult(step, f"{method} {path}", status, ok, detail)

    def _run_schedule(self, step: Step) -> StepResult:
        function = str(step.body["function"])
        if function not in self.stack.functions:
            return StepResult(step, f"run {function}", "error", False, f"no function {function} in the template")
        answer = self.stack.run_schedule(function, self.now)
        return StepResult(step, f"run {function}", "ran", True, json.dumps(answer, default=str)[:200])

    def _http(self, step: Step, request: str, event: dict[str, Any], gif: bool = False) -> StepResult:
        from local.apigw import decode_body

        answer = self.stack.invoke("CollectFunction", event)
        status = int(answer.get("statusCode", 0))
        body = decode_body(answer)
        ok, detail = 200 <= status < 400, ""
        if gif:
            ok = ok and body.startswith(b"GIF")
        elif status != 303:
            try:
                parsed = json.loads(body or b"{}")
            except ValueError:
                parsed = {}
            if parsed.get("rejected"):
                ok, detail = False, json.dumps(parsed["rejected"])
            elif not ok:
                detail = parsed.get("message") or body[:200].decode("utf-8", "replace")
        else:
            detail = f"-> {answer.get('headers', {}).get('location')}"
        return StepResult(step, request, status, ok, detail)

    def _bus(self, step: Step, at: str) -> StepResult:
        detail = {"timestamp": at, **step.body}
        name = self.stack.name_of("EventBus")
        answer = self.stack.client("events").put_events(Entries=[{
            "EventBusName": name, "Source": step.source or DEFAULT_BUS_SOURCE, "DetailType": "Tracking Event",
            "Detail": json.dumps(detail), "Time": self.now}])
        ok = not answer.get("FailedEntryCount")
        return StepResult(step, f"PutEvents {name} (Tracking Event)", "put" if ok else "failed", ok,
                          "" if ok else json.dumps(answer.get("Entries")))

    # -- the loop ----------------------------------------------------------------------------

    def pump(self, result: DemoResult, what: str) -> None:
        before = len(self.stack.errors)
        try:
            self.stack.pump(raise_errors=False)
        except Exception as error:  # noqa: BLE001 - reported, the demo goes on
            result.errors.append(f"{what}: delivery did not settle: {error!r}")
        for failure in self.stack.errors[before:]:
            result.errors.append(f"{what}: {failure.logical_id} failed on {failure.source}: {failure.error!r}")

    def run(self) -> DemoResult:
        started = time.monotonic()
        steps = sorted((s for j in self.journeys for s in j.steps), key=lambda s: (s.at, s.journey, s.index))
        first_day = steps[0].at.replace(hour=0, minute=0, second=0, microsecond=0)
        last_day = steps[-1].at.replace(hour=0, minute=0, second=0, microsecond=0)
        end = last_day + timedelta(days=1, hours=REPORT_HOUR)
        result = DemoResult(start=steps[0].at, end=end, journeys=self.journeys, resources=self.stack.describe())
        result.routing_rules = routing_rules()
        if self.progress_stream is not None:
            self.progress = Progress(self.progress_stream, len(steps))
        day = first_day + timedelta(days=1)
        # the routing pass, on the hour, when the template has it (SLA re-routes, waiting accounts)
        passes = ROUTING_PASS in self.stack.functions
        hour = first_day + PASS_EVERY
        queue = list(steps)
        while True:
            # the next thing to happen: a step, the day's decay (00:00) or the hour's pass
            # (at the same moment: decay, then the pass, then the step)
            pending = [(day, 0)] if day <= end else []
            if passes and hour <= end:
                pending.append((hour, 1))
            if queue:
                pending.append((queue[0].at, 2))
            if not pending:
                break
            when, kind = min(pending)
            self.set_clock(when)
            if kind == 2:
                step = queue.pop(0)
                try:
                    outcome = self.run_step(step)
                except Exception as error:  # noqa: BLE001 - a failed step is reported, the demo goes on
                    outcome = StepResult(step, step.route, "error", False, repr(error))
                result.steps.append(outcome)
                self._print_step(outcome)
                self.pump(result, step.label)
            elif kind == 0:
                answer = self.stack.run_schedule("DecayFunction", day)
                result.decay_runs += 1
                result.decayed += int((answer or {}).get("written", 0))
                self.pump(result, f"decay {day.date()}")
                day += timedelta(days=1)
            else:
                self._routing_pass(result)
                hour += PASS_EVERY
            drop_disabled_metrics()
            if self.progress is not None:
                self.progress.update(len(result.steps), self.now)
        if self.progress is not None:
            self.progress.update(len(result.steps), self.now, force=True)
            self.progress.clear()
        self.set_clock(end)
        self.pump(result, "final drain")
        self._read_back(result)
        self._evidence(result)
        result.bus_events = [e for e in self.stack.bus_log if e.get("detail-type") != "Tracking Event"]
        result.slack_failed = [f"{d.destination}: {d.status} {d.error or ''}".rstrip()
                               for d in self.stack.api_deliveries if not d.delivered]
        result.seconds = time.monotonic() - started
        return result

    def _evidence(self, result: DemoResult) -> None:
        """The demo's calibration of its own journeys' outcomes and one preview of a rules change:
        `make calibrate` and `make preview` as they run on the local stack (the same jobs, steps
        and reports), in this process, writing nothing to the table."""
        import io

        from leadscore.adapters.shards import new_job
        from leadscore.adapters.table import Table
        from leadscore.rulesfiles.loading import load_config

        from local import mapreduce
        from local.candidate import candidate, current_points

        table = Table(self.stack.describe()["Table"]["name"], client=self.stack.client("dynamodb"))
        quiet = io.StringIO()  # each step's progress line: the demo has its own
        try:
            job = new_job("calibrate", segments=EVIDENCE_SEGMENTS, as_of=self.now)
            result.calibration = mapreduce.run(job, table, processes=1, stream=quiet)
            config = load_config()
            result.current_points = current_points(config.scoring)
            rule, points = PREVIEW_CHANGE
            changed = candidate((config.dir / "scoring.yaml").read_text(encoding="utf-8"),
                                {"rules": [{"rule": rule, "suggestedPoints": points}]})
            job = new_job("preview", segments=EVIDENCE_SEGMENTS, as_of=self.now, candidate_scoring=changed.text)
            result.preview = mapreduce.run(job, table, processes=1, stream=quiet)
        except Exception as error:  # noqa: BLE001 - reported, the rest of the demo stands
            result.errors.append(f"calibration and preview: {error!r}")

    def _routing_pass(self, result: DemoResult) -> None:
        answer = self.stack.run_schedule(ROUTING_PASS, self.now) or {}
        result.routing_passes += 1
        counts = {k: int(v) for k, v in answer.items() if isinstance(v, int) and not isinstance(v, bool) and v}
        result.routing_pass_counts.update(counts)
        if counts.get("due"):
            self.pump(result, f"routing pass {self.now:%Y-%m-%d %H:%M}")

    def _print_step(self, outcome: StepResult) -> None:
        if self.log is None:
            return
        if self.progress is not None:
            self.progress.clear()
        step = outcome.step
        mark = "  " if outcome.ok else "!!"
        line = (f"{mark}{step.at:%Y-%m-%d %H:%M}  {step.journey:<10} {outcome.request:<34} {outcome.status!s:<5}"
                f" {step.note or ''}")
        print(line.rstrip(), file=self.log)
        if not outcome.ok:
            print(f"    {outcome.detail}", file=self.log)

    # -- read back through the read API --------------------------------------------------------

    def read(self, path: str) -> tuple[int, Any]:
        from local.apigw import http_event, iam_authorizer, json_body

        route = "GET /v1/accounts/{accountId}" if path.startswith("/v1/accounts/") else "GET /v1/contacts/{contactId}"
        answer = self.stack.invoke("ReadApiFunction", http_event("GET", path, route_key=route, now=self.now,
                                                                 authorizer=iam_authorizer(user="demo")))
        return int(answer["statusCode"]), json_body(answer)

    def _read_back(self, result: DemoResult) -> None:
        from urllib.parse import quote

        account_ids: dict[str, None] = {}
        for journey in self.journeys:
            for contact_id in contacts_of(journey):
                status, body = self.read(f"/v1/contacts/{quote(contact_id, safe='@')}")
                if status == 200:
                    # an email or anonymous id answers as the contact it joined: keep one per contact
                    result.contacts.setdefault(body["contactId"], body)
                    if body.get("accountId"):
                        account_ids.setdefault(body["accountId"])
                    elif "@" in str(body.get("email") or ""):
                        domain = str(body["email"]).rsplit("@", 1)[1]
                        result.free_mail_accounts[domain] = self.read(f"/v1/accounts/{quote(domain)}")[0]
                else:
                    result.errors.append(f"GET /v1/contacts/{contact_id}: {status} {body.get('message')}")
            expected = journey.expect.get("account")
            if expected:
                account_ids.setdefault(expected)
            for step in journey.steps:
                if step.route in ("feedback", "assign"):
                    account_ids.setdefault(str(step.body["account"]))
        for event in self.stack.bus_log:
            account = (event.get("detail") or {}).get("accountId")
            if event.get("detail-type", "").startswith("Account") and account:
                account_ids.setdefault(account)
        for account_id in account_ids:
            status, body = self.read(f"/v1/accounts/{quote(account_id)}")
            if status == 200:
                result.accounts[account_id] = body
            else:
                result.errors.append(f"GET /v1/accounts/{account_id}: {status} {body.get('message')}")
        self._routing(result)

    def _routing(self, result: DemoResult) -> None:
        """Routing, when the template has it: a function subscribed to "Account SDR Ready"
        and the FIFO queue it feeds; the demo reads what landed there."""
        probe = {"version": "0", "id": "probe", "detail-type": "Account SDR Ready", "source": "leadscore",
                 "account": self.stack.account_id, "time": self.now.isoformat(), "region": self.stack.region,
                 "resources": [], "detail": {"accountId": "probe", "state": "sdr_ready"}}
        subscribed = self.stack.rules_matching(probe)
        result.routing_function = subscribed[0][0] if subscribed else None
        if result.routing_function is None:
            return
        sqs = self.stack.client("sqs")
        for logical_id, info in self.stack.resources.items():
            if logical_id == "RoutedQueue" and info.get("url"):
                while True:
                    page = sqs.receive_message(QueueUrl=info["url"], MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                               AttributeNames=["All"]).get("Messages", [])
                    if not page:
                        break
                    for message in page:
                        with contextlib.suppress(ValueError):
                            result.routed.append(json.loads(message["Body"]))


def routing_rules() -> dict[str, Any]:
    """config/routing.yaml as the functions read it (empty when there is none)."""
    from leadscore.adapters import runtime
    try:
        config = runtime.routing()
    except Exception:  # noqa: BLE001 - no routing in this configuration: the report says less
        return {}
    return {"mode": config.mode, "sla_hours": config.sla_hours, "cooldown_days": config.cooldown_days,
            "sdrs": {sdr.id: {"name": sdr.name, "weight": sdr.weight} for sdr in config.sdrs},
            "pools": {pool.id: list(pool.sdrs) for pool in config.pools},
            "territories": {t.id: {"pool": t.pool, "when": t.when.model_dump(exclude_none=True)}
                            for t in config.territories},
            "fallback_pool": config.fallback_pool}


def run(journeys_dir: Path = JOURNEYS_DIR, *, log: Any = None, template: Path = TEMPLATE,
        function_logs: bool = False, progress: Any = None) -> DemoResult:
    """Replay the journeys on a fresh in-process moto stack; the result holds what the read API said."""
    with demo_environment():
        if importlib.util.find_spec("leadscore") is None:  # not installed: use the layer's source
            sys.path.insert(0, str(REPO_ROOT / "shared"))
        from leadscore.adapters import runtime
        from moto import mock_aws

        from local.stack import TemplateStack
        from local.webhook import Receiver

        journeys = load_journeys(journeys_dir)
        runtime.reset()
        # Slack: a local incoming webhook on a free port; the stack's API destination posts to it
        # what EventBridge would post to Slack (at its 1/s rate), and the report shows what came
        receiver = Receiver("127.0.0.1", 0).start()
        try:
            with mock_aws(), warnings.catch_warnings():
                # a scheduled run with nothing to do flushes no metrics: Powertools warns
                warnings.filterwarnings("ignore", message="No application metrics to publish")
                stack = TemplateStack.create(template, parameters={"SlackWebhookUrl": receiver.url})
                result = Demo(stack, journeys, log=log, function_logs=function_logs, progress=progress).run()
                result.slack = [m for m in receiver.messages() if isinstance(m, dict)]
                return result
        finally:
            receiver.stop()
            runtime.reset()


# ------------------------------------------------------------------------------ the report


def sdr_message(account: Mapping[str, Any], routed: bool = False) -> dict[str, Any]:
    """What the routed queue would carry for this account (PRODUCT.md "The routed queue"),
    from the read API's answer. SDR, territory and routing times are left empty: they are
    the Route step's to fill."""
    reasons = sorted((line for line in account.get("breakdown", []) if line.get("points")),
                     key=lambda line: -abs(line["points"]))
    return {
        "schema": "account-routed/v1",
        "accountId": account.get("accountId"),
        "accountName": account.get("name"),
        "domain": account.get("domain"),
        "score": account.get("score"),
        "fit": account.get("fit"),
        "engagement": account.get("engagement"),
        "committeeBonus": account.get("committeeBonus"),
        "velocity": account.get("velocity"),
        "threshold": account.get("threshold"),
        "sdr": account.get("sdr"),
        "territory": None,
        "routing": None if not routed else "see the routed queue",
        "reasons": [{"rule": r["rule"], "points": r["points"], "contactId": r.get("contactId")} for r in reasons],
        "contacts": [{k: c.get(k) for k in ("contactId", "email", "title", "persona", "score")}
                     for c in account.get("contacts", [])],
        "sdrReadyAt": account.get("stateSince"),
        "routedAt": None,
        "slaDueAt": None,
        "cycle": account.get("cycle"),
    }


def _num(value: Any) -> str:
    if value is None:
        return "-"
    number = float(value)
    return str(int(number)) if number.is_integer() else f"{number:.2f}".rstrip("0").rstrip(".")


def _when(text: Any) -> str:
    if not text:
        return "-"
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M")
    return str(text)


def report(result: DemoResult, out: Any = None) -> None:
    def say(text: str = "") -> None:
        print(text, file=out or sys.stdout)

    steps = len(result.steps)
    failed = [s for s in result.steps if not s.ok]
    say()
    say(f"Replayed {steps} steps of {len(result.journeys)} journeys from {result.start:%Y-%m-%d} to "
        f"{result.end:%Y-%m-%d} ({failed and f'{len(failed)} FAILED' or 'all accepted'}); the decay job ran "
        f"{result.decay_runs} times (once a simulated day) and re-valued {result.decayed} contacts.")
    say(f"Everything below is read through GET /v1/accounts/{{id}} and GET /v1/contacts/{{id}} as of "
        f"{result.end:%Y-%m-%d %H:%M} UTC.")

    say()
    say("=" * 100)
    say("ACCOUNTS")
    say("=" * 100)
    for account in sorted(result.accounts.values(), key=lambda a: -float(a.get("score") or 0)):
        _account_block(say, account, result)

    individuals = result.individuals()
    if individuals:
        say()
        say("=" * 100)
        say("INDIVIDUALS (free-mail, no company: scored, not part of any account)")
        say("=" * 100)
        for contact in individuals:
            say(f"{contact.get('name') or contact['contactId']} <{contact.get('email')}>  {contact.get('title') or ''}"
                f"  persona {contact.get('persona')}")
            say(f"  score {_num(contact['score'])} = fit {_num(contact['fit'])} + engagement "
                f"{_num(contact['engagement'])}   velocity {_num(contact['velocity'])}   lifecycle "
                f"{contact['lifecycle']}   account: none")
            domain = str(contact.get("email") or "").rpartition("@")[2]
            if domain in result.free_mail_accounts:
                say(f"  GET /v1/accounts/{domain} -> {result.free_mail_accounts[domain]} (a free-mail domain is "
                    "not a company)")
            for line in contact.get("breakdown", []):
                say(f"    {float(line['points']):+8.2f}  {line['rule']:<28} {line['category']:<9} "
                    f"{line.get('detail') or ''}".rstrip())

    say()
    say("=" * 100)
    say("WHAT EACH SDR GOT (the routed FIFO queue, as `make inbox SDR=<id>` shows it)")
    say("=" * 100)
    if result.routing_function is None:
        say("(no function subscribes to \"Account SDR Ready\": routing is not in this template)")
    else:
        say(f"{result.routing_function} routes each \"Account SDR Ready\": the first matching territory of "
            "config/routing.yaml, then its pool's")
        say("weighted round-robin (one DynamoDB transaction steps the pool counter and records the "
            "assignment); one message per account")
        say("and cycle, MessageGroupId = the SDR's id. A reason's points are the contact's share after "
            "persona weight and cap,")
        say("so they add up to the account's score.")
    for account in result.sdr_ready():
        routing = account.get("routing") or {}
        if account.get("state") == "sdr_ready":
            say(f"  {account['accountId']}: SDR-ready, waiting for an SDR: {routing.get('reason') or '-'}")
    for sdr, messages in result.inboxes().items():
        say()
        first = messages[0].get("sdr") or {}
        say(f"{sdr} ({first.get('name')} <{first.get('email')}>): {len(messages)} account(s)")
        for message in messages:
            say(f"  {message.get('accountId')}  {message.get('accountName') or ''}  score {_num(message.get('score'))}"
                f" = fit {_num(message.get('fit'))} + engagement {_num(message.get('engagement'))}   territory "
                f"{message.get('territory') or '-'} ({message.get('routing')})   cycle {message.get('cycle')}"
                f"   routed {_when(message.get('routedAt'))}   SLA due {_when(message.get('slaDueAt'))}")
            contacts = {c.get("contactId"): c for c in message.get("contacts") or []}
            reasons = sorted(message.get("reasons") or [], key=lambda r: -abs(float(r.get("points") or 0)))
            for reason in reasons[:5]:
                contact = contacts.get(reason.get("contactId")) or {}
                who = f"{contact.get('email')} ({contact.get('title')})" if contact else reason.get("contactId") or ""
                say(f"    {float(reason.get('points') or 0):+8.2f}  {reason.get('rule'):<28} {who}")
    if result.routed:
        say()
        say("One message as the queue carries it:")
        say(json.dumps(result.routed[0], indent=2))

    moments = routing_moments(result)
    if moments:
        say()
        say("=" * 100)
        say("ROUTING MOMENTS (from the bus and the read API's feedback)")
        say("=" * 100)
        for at, account_id, text in moments:
            say(f"  {_when(at)}  {account_id:<13} {text}")
        notes = explanations(result)
        if notes:
            say()
            say("What the numbers do not say:")
            for note in notes:
                say(textwrap.fill(note, width=100, initial_indent="  - ", subsequent_indent="    "))

    say()
    say("=" * 100)
    say(f"SLACK (what the local webhook receiver got: {len(result.slack)} message(s), the stack's SlackWebhookUrl)")
    say("=" * 100)
    from local.webhook import render as slack_text

    for index, message in enumerate(result.slack):
        if index:
            say()
        say(slack_text(message))
    if not result.slack:
        say("  (none)")
    for failure in result.slack_failed:
        say(f"  NOT DELIVERED: {failure}")

    say()
    say("=" * 100)
    say("STATE CHANGES ON THE BUS (what other teams can subscribe to)")
    say("=" * 100)
    counts = Counter(e.get("detail-type") for e in result.bus_events)
    say("  " + ", ".join(f"{kind} x{n}" for kind, n in sorted(counts.items())) if counts else "  (none)")
    for event in result.bus_events:
        detail = event.get("detail") or {}
        if event.get("detail-type") in STATE_EVENTS:
            change = f"{detail.get('previousState') or detail.get('state')} -> {detail.get('state')}"
            if detail.get("previousSdr"):
                change += f" ({detail['previousSdr']} -> {(detail.get('sdr') or {}).get('id')})"
            elif (detail.get("sdr") or {}).get("id"):
                change += f" ({detail['sdr']['id']})"
            say(f"  {_when(detail.get('time'))}  {event['detail-type']:<20} {detail.get('accountId'):<12} "
                f"score {_num(detail.get('score'))} = fit {_num(detail.get('fit'))} + engagement "
                f"{_num(detail.get('engagement'))} + committee {_num(detail.get('committeeBonus'))}, "
                f"velocity {_num(detail.get('velocity'))}, {change}, cycle {detail.get('cycle')}")
    by_account: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in result.bus_events:
        if event.get("detail-type") == "Account Score Changed":
            by_account[str((event.get("detail") or {}).get("accountId"))].append(event["detail"])
    for account_id, changes in sorted(by_account.items()):
        scores = [_num(c.get("score")) for c in changes]
        if len(scores) > 10:
            scores = [*scores[:3], f"({len(scores) - 8} more)", *scores[-5:]]
        say(f"  Account Score Changed  {account_id:<12} x{len(changes):<3} {' -> '.join(scores)}  (last "
            f"{_when(changes[-1].get('time'))})")

    evidence_summary(result, say)

    say()
    say("=" * 100)
    say("JOURNEYS")
    say("=" * 100)
    for journey in result.journeys:
        outcome = result.journey_outcome(journey)
        if outcome["accounts"]:
            got = ", ".join(f"{a['accountId']} {a['state']} ({_num(a['score'])})" for a in outcome["accounts"])
        else:
            got = "no account; " + ", ".join(f"{c['contactId']} {c['lifecycle']} ({_num(c['score'])})"
                                              for c in outcome["contacts"])
        expected = journey.expect.get("state") or ("no account" if "account" in journey.expect else None)
        mark = ""
        if expected:
            states = {a["state"] for a in outcome["accounts"]} or {"no account"}
            mark = "  [as expected]" if expected in states else f"  [EXPECTED {expected}]"
        say(f"  {journey.name:<26} {got}{mark}")

    say()
    if result.errors or failed:
        say("PROBLEMS:")
        for item in failed:
            say(f"  {item.step.label} ({item.request}): {item.status} {item.detail}")
        for error in result.errors:
            say(f"  {error}")
    say(f"Done in {result.seconds:.1f} s. Stack: {len(result.resources)} resources of template.yaml on moto "
        "(in-process).")


def evidence_summary(result: DemoResult, say: Callable[..., None]) -> None:
    """The calibration of the journeys' outcomes and the preview of PREVIEW_CHANGE, short
    (the HTML report has them in full)."""
    calibration, preview = result.calibration, result.preview
    if calibration is None or preview is None:
        return
    say("")
    say("=" * 100)
    say("CALIBRATION of the journeys' outcomes (make calibrate: the CRM's Opportunity Won/Lost, feedback)")
    say("=" * 100)
    for warning in calibration["warnings"]:
        say(f"  warning: {warning}")
    say(f"  {calibration['closed']} closed accounts, {calibration['wins']} won "
        f"(base close rate {calibration['baseRate']:.0%})")
    for row in calibration["rules"][:EVIDENCE_RULES_SHOWN]:
        lift = "-" if row["liftPoints"] is None else f"{row['liftPoints']:+.0f} pp"
        say(f"  {row['rule']:<28} fired on {row['fired']:>2}, closing {row['closeRateWith']:>4.0%} with it, "
            f"lift {lift:>7}  ({row['support']})")
    if len(calibration["rules"]) > EVIDENCE_RULES_SHOWN:
        say(f"  ... {len(calibration['rules']) - EVIDENCE_RULES_SHOWN} more rules, and the threshold, the backtest "
            "and the lift chart: in the HTML report")
    rule, points = PREVIEW_CHANGE
    say("")
    say("=" * 100)
    say(f"PREVIEW of {rule}: {_num(result.current_points.get(rule))} -> {points} points (make preview, "
        "nothing written)")
    say("=" * 100)
    say(f"  SDR-ready accounts: {preview['sdrReady']['current']} -> {preview['sdrReady']['candidate']}; "
        f"newly SDR-ready: {', '.join(preview['newlySdrReady']) or '-'}; "
        f"no longer: {', '.join(preview['noLongerSdrReady']) or '-'}")
    for row in preview["accountsMovingMost"]:
        if row["change"]:
            say(f"  {row['id']:<28} {_num(row['current']):>7} -> {_num(row['candidate']):<7} ({row['change']:+})")


def _iso(text: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _territory_why(rules: Mapping[str, Any], territory: Any) -> str:
    when = ((rules.get("territories") or {}).get(territory) or {}).get("when") or {}
    parts = []
    for key, value in when.items():
        if isinstance(value, dict):
            value = "-".join(_num(value.get(k)) if value.get(k) is not None else "" for k in ("min", "max"))
        elif isinstance(value, list):
            value = "/".join(str(v) for v in value)
        parts.append(f"{key} {value}")
    return " and ".join(parts) or "no condition"


def routing_moments(result: DemoResult) -> list[tuple[str, str, str]]:
    """(time, account, what happened) for each routing moment: SDR-ready, routed (where and
    why), SLA breached and re-routed, and each sales feedback (who, when, the note)."""
    rules = result.routing_rules
    pools = rules.get("pools") or {}
    sdrs = rules.get("sdrs") or {}
    found: list[tuple[str, str, str]] = []
    for event in result.bus_events:
        kind, detail = event.get("detail-type"), event.get("detail") or {}
        account_id = str(detail.get("accountId"))
        sdr = detail.get("sdr") or {}
        if kind == "Account SDR Ready":
            text = (f"SDR-ready: score {_num(detail.get('score'))} crossed the threshold "
                    f"{_num(detail.get('threshold'))} (cycle {detail.get('cycle')})")
        elif kind == "Account Routed" and not detail.get("previousSdr"):
            pool = detail.get("pool")
            members = ", ".join(f"{m} x{(sdrs.get(m) or {}).get('weight', 1)}" for m in pools.get(pool, []))
            how = (f"territory {detail.get('territory')} (first match in routing.yaml: "
                   f"{_territory_why(rules, detail.get('territory'))}), pool {pool} [{members}]"
                   if detail.get("routing") == "territory" else f"{detail.get('routing')} over every active SDR")
            text = (f"routed to {sdr.get('id')} ({sdr.get('name')}): {how}, weighted round-robin; SLA due "
                    f"{_when(detail.get('slaDueAt'))}")
            skipped = (detail.get("decision") or {}).get("skipped") or []
            passed = [f"{s.get('sdr')} ({s.get('reason')})" for s in skipped]
            if passed:
                text += f"; passed over {', '.join(passed)}"
        elif kind == "Routing SLA Breached":
            text = (f"SLA breached: {detail.get('previousSdr')} did not accept within "
                    f"{_num(rules.get('sla_hours'))} h")
        elif kind == "Account Routed":
            text = (f"re-routed to {sdr.get('id')} ({sdr.get('name')}), pool {detail.get('pool')}'s next SDR "
                    f"(attempt {detail.get('attempt')}); SLA due {_when(detail.get('slaDueAt'))}")
        elif kind == "Account Reassigned":
            text = (f"reassigned by {detail.get('assignedBy')} (a lead) from {detail.get('previousSdr')} to "
                    f"{sdr.get('id')} ({sdr.get('name')}), attempt {detail.get('attempt')}; SLA due "
                    f"{_when(detail.get('slaDueAt'))}")
        elif kind == AVAILABILITY_CHANGED:  # a lead's pause (PUT /v1/sdrs/{sdrId}/availability)
            who = f"{sdr.get('id')} ({sdr.get('name')})"
            if detail.get("available"):
                text = f"{who} available again: routes may pick {sdr.get('id')} again"
            else:
                by = str(detail.get("by") or "a lead").rsplit("/", 1)[-1]  # the IAM caller, user/<name>
                text = (f"{who} paused by {by}"
                        + (f" until {_when(detail.get('until'))}" if detail.get("until") else " (until returned)")
                        + (f': "{detail["reason"]}"' if detail.get("reason") else "")
                        + f"; routes pass over {sdr.get('id')} meanwhile")
            found.append((str(detail.get("changedAt") or event.get("time")), "(team)", text))
            continue
        else:
            continue  # Account Recycled / Disqualified: shown with their feedback below
        found.append((str(detail.get("time")), account_id, text))
    for account in result.accounts.values():
        for feedback in account.get("feedback") or []:
            text = f"feedback {feedback.get('outcome')} from {feedback.get('sdr')}"
            if feedback.get("note"):
                text += f': "{feedback["note"]}"'
            text += f" -> {feedback.get('state')}"
            if feedback.get("outcome") == "not_ready" and account.get("cooldownUntil"):
                text += f", cooldown until {_when(account['cooldownUntil'])}"
            if feedback.get("outcome") == "accepted":
                text += " (the SLA stops)"
            found.append((str(feedback.get("at")), str(account["accountId"]), text))
    return sorted(found, key=lambda moment: _iso(moment[0]))


_FACTOR = re.compile(r"x (?P<factor>[\d.]+) \(persona (?P<persona>\w+) "
                     r"weight (?P<weight>[\d.]+), cap (?P<cap>[\d.]+)\)")


def explanations(result: DemoResult) -> list[str]:
    """What a reader would not guess from the numbers alone."""
    notes: list[str] = []
    rules = result.routing_rules
    routed_states = ("routed", "accepted", "sdr_ready")
    # a reason smaller than its rule: persona weight x the contact cap
    best: tuple[Any, ...] | None = None
    for account in result.accounts.values():
        contacts = {c.get("contactId"): c for c in account.get("contacts") or []}
        for line in account.get("breakdown") or []:
            match = _FACTOR.search(str(line.get("detail") or ""))
            contact = contacts.get(line.get("contactId"))
            if not match or not contact or float(match["factor"]) >= float(match["weight"]) - 1e-9:
                continue
            # an example where both the persona weight (< 1) and the cap apply says the most
            rank = (account.get("state") in routed_states, float(match["weight"]) < 1, float(line["points"]))
            if best is None or rank > best[0]:
                best = (rank, account, line, contact, match)
    if best is not None:
        _, account, line, contact, match = best
        factor, weight = float(match["factor"]), float(match["weight"])
        engagement, cap = float(contact.get("engagement") or 0), float(match["cap"])
        notes.append(
            f"{account['accountId']}: {line['rule']} counts {_num(line['points'])}, not the rule's "
            f"{_num(round(float(line['points']) / factor))}: {contact.get('name')} ({contact.get('title')}) is "
            f"{'an' if match['persona'][0] in 'aeiou' else 'a'} {match['persona']} (persona weight {_num(weight)}) "
            f"with {_num(engagement)} engagement, over the per-contact cap of {_num(cap)}, so each of their rules "
            f"counts {_num(weight)} x {_num(cap)}/{_num(engagement)} = {factor:.4f} of its points. That is why an "
            "SDR's reasons add up to the account's score.")
    for sdr_messages in [result.routed]:
        by_account: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for message in sdr_messages:
            by_account[str(message.get("accountId"))].append(message)
        for account_id, messages in sorted(by_account.items()):
            scores = sorted({float(m.get("score") or 0) for m in messages})
            if len(scores) > 1:
                notes.append(f"{account_id}: its messages say {' and '.join(_num(s) for s in scores)}: a message is "
                             "the account as it was when it was routed (the re-route is later, after more "
                             "engagement), and the read API values it now.")
    for account in result.accounts.values():
        account_id, state = account["accountId"], account.get("state")
        routing = account.get("routing") or {}
        tried = routing.get("tried") or []
        if len(tried) > 1:
            notes.append(f"{account_id}: the SLA pass (every 15 minutes in the template, every simulated hour "
                         f"here) re-routed it to {tried[-1]}, not back to {tried[0]}: a re-route goes to the "
                         f"pool's next SDR who has not had the account this cycle (tried: {', '.join(tried)}).")
        if state == "recycled":
            baseline = float(account.get("engagementBaseline") or 0)
            counted = round(float(account["score"]) - baseline, 2)
            notes.append(
                f"{account_id} scores {_num(account['score'])} but stays recycled: at not_ready its engagement "
                f"so far ({_num(baseline)}) stopped counting, so only new engagement can qualify it again (score "
                f"minus {_num(baseline)} = {_num(counted)}, needs {_num(account['threshold'])}), and not before "
                f"the cooldown ends on {_when(account.get('cooldownUntil'))} (cooldown_days "
                f"{_num(rules.get('cooldown_days'))}); then it goes back to its SDR (when available) as cycle "
                f"{int(account.get('cycle') or 0) + 1}.")
        if state == "disqualified":
            notes.append(f"{account_id} scores {_num(account['score'])}, over the threshold "
                         f"{_num(account['threshold'])}, yet was never SDR-ready nor routed: a disqualified "
                         "account is still scored but never routed, until a `reset` feedback.")
        if state == "accepted":
            notes.append(f"{account_id}: `accepted` has no bus event of its own; it closes the cycle and stops "
                         "the SLA, and the read API keeps who accepted it and when.")
    return notes


def _account_block(say: Any, account: Mapping[str, Any], result: DemoResult) -> None:
    say()
    state = account.get("state")
    excluded = f" ({account.get('excluded')})" if account.get("excluded") else ""
    sdr = account.get("sdr") or {}
    owner = f" to {sdr.get('id')} ({sdr.get('name')})" if sdr.get("id") else ""
    say(f"{account['accountId']}  {account.get('name') or ''}  -  {str(state).upper()}{owner}{excluded}"
        f"  since {_when(account.get('stateSince'))}")
    say(f"  score {_num(account['score'])} = fit {_num(account['fit'])} + engagement {_num(account['engagement'])}"
        f" + committee bonus {_num(account.get('committeeBonus'))}   velocity {_num(account['velocity'])}"
        f"   threshold {_num(account['threshold'])} (requalify below {_num(account.get('requalifyBelow'))})")
    decision = (account.get("routing") or {}).get("decision") or {}
    if decision.get("text"):
        say(f"  routing decision (GET /v1/accounts/{{id}} routing.decision.text): {decision['text']}")
    say("  breakdown (rule, points, contact):")
    for line in account.get("breakdown", []):
        contact = line.get("contactId") or ""
        say(f"    {float(line['points']):+8.2f}  {line['rule']:<28} {line['category']:<11} {contact:<22} "
            f"{line.get('detail') or ''}".rstrip())
    total = round(sum(float(line["points"]) for line in account.get("breakdown", [])), 2)
    say(f"    {total:8.2f}  (sum of the lines)")
    say("  top contacts:")
    for contact in account.get("contacts", []):
        say(f"    {contact.get('name') or '':<16} {contact.get('email') or '':<28} {contact.get('title') or '':<26} "
            f"{contact.get('persona'):<15} score {_num(contact.get('score'))} (engagement "
            f"{_num(contact.get('engagement'))})")


# ------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=Path, default=JOURNEYS_DIR, help="folder of journey files (*.json)")
    parser.add_argument("--quiet", action="store_true",
                        help="do not list the steps nor show progress while they are replayed")
    parser.add_argument("--json", action="store_true", help="print the accounts, contacts and bus events as JSON")
    parser.add_argument("--function-logs", action="store_true", help="show the functions' own (Powertools) logs")
    parser.add_argument("--report", type=Path, default=REPORT,
                        help="where to write the self-contained HTML report (default: %(default)s)")
    args = parser.parse_args(argv)
    log = None if args.quiet or args.json else sys.stdout
    if log:
        print(f"Building the stack of {TEMPLATE.name} on moto (in-process) and replaying "
              f"{args.journeys.relative_to(REPO_ROOT) if args.journeys.is_relative_to(REPO_ROOT) else args.journeys}"
              "/*.json ...", file=log)
    try:
        result = run(args.journeys, log=log, function_logs=args.function_logs,
                     progress=None if args.quiet else sys.stderr)
    except JourneyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({
            "ok": result.ok, "asOf": result.end.isoformat(), "accounts": result.accounts,
            "contacts": result.contacts, "sdrReady": [sdr_message(a) for a in result.sdr_ready()],
            "busEvents": result.bus_events, "routed": result.routed, "slack": result.slack,
            "calibration": result.calibration, "preview": result.preview,
            "failedSteps": [{"step": s.step.label, "status": s.status, "detail": s.detail}
                            for s in result.steps if not s.ok],
            "errors": result.errors}, indent=2, default=str))
    else:
        report(result)
    from local.report import render

    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(render(result), encoding="utf-8")
    if not args.json:
        print(f"HTML report (score over time, routing moments, routed messages): {args.report}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
