"""History and `?at=` through the real path: a simulated month of an account (events, decay
steps, routing, an SLA re-route, feedback) on the stack of template.yaml, its history read back
against what the read API answered along the way, and `?at=` for past moments."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.integration.conftest import Pipeline, vp_identify
from tests.integration.test_feedback_flow import feedback, new_engagement, pass_
from tests.integration.test_route_flow import qualify
from tests.support.apigw import http_event, json_body

ACCOUNT = "acmetech.io"
#: what a history step and a read answer both say of an account
SAME = ("score", "fit", "engagement", "velocity", "threshold", "state", "cycle")


def history(pipeline: Pipeline, kind: str, ident: str, **query: str) -> tuple[int, Any]:
    route = f"GET /v1/{kind}/{{{'accountId' if kind == 'accounts' else 'contactId'}}}/history"
    event = http_event("GET", f"/v1/{kind}/{ident}/history", route_key=route, now=pipeline.now, query=query,
                       path_parameters={"accountId" if kind == "accounts" else "contactId": ident})
    response = pipeline.stack.invoke("ReadApiFunction", event)
    return response["statusCode"], json_body(response)


def all_steps(pipeline: Pipeline, kind: str, ident: str, **query: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        status, page = history(pipeline, kind, ident, limit="3", **query, **({"cursor": cursor} if cursor else {}))
        assert status == 200, page
        steps += page["steps"]
        cursor = page["next"]
        if cursor is None:
            return steps


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def read_at(pipeline: Pipeline, path: str, at: str) -> tuple[int, Any]:
    return pipeline.read(path, query={"at": at})


def _a_month(pipeline: Pipeline) -> list[tuple[str, dict[str, Any]]]:
    """The account through a month; what the read API answered after each thing that happened."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def look() -> None:
        seen.append((pipeline.now.isoformat(), pipeline.account(ACCOUNT)))

    pipeline.send("identify", vp_identify() | {"messageId": "h-id"})
    pipeline.send("group", {"userId": "u-jo", "groupId": ACCOUNT, "traits": {"website": f"https://{ACCOUNT}"},
                            "messageId": "h-group"})
    pipeline.settle()
    look()
    pipeline.advance(hours=20)
    pipeline.send("track", {"userId": "u-jo", "event": "Email Opened", "messageId": "h-open"})
    pipeline.settle()
    look()
    pipeline.advance(days=1)
    qualify(pipeline)  # over the threshold: SDR-ready, routed (route function, from the bus)
    pipeline.settle()
    look()
    pipeline.advance(hours=49)  # past the SLA: the routing pass re-routes it
    pass_(pipeline)
    pipeline.settle()
    look()
    pipeline.advance(hours=2)
    status, answer = feedback(pipeline, {"outcome": "not_ready", "sdr": seen[-1][1]["sdr"]["id"],
                                         "note": "next quarter"})
    assert status == 200, answer
    pipeline.settle()
    look()
    for _ in range(4):  # the email touches go stale (30 days), then halve: decay steps
        pipeline.advance(days=12)
        pipeline.stack.run_schedule("DecayFunction", pipeline.now)
        pipeline.settle()
        look()
    pipeline.advance(days=1)
    new_engagement(pipeline, "kim")
    pipeline.settle()
    look()
    return seen


@pytest.fixture
def month(pipeline: Pipeline) -> list[tuple[str, dict[str, Any]]]:
    return _a_month(pipeline)


def test_an_accounts_history_is_what_the_read_api_answered_along_the_way(
        pipeline: Pipeline, month: list[tuple[str, dict[str, Any]]]) -> None:
    steps = all_steps(pipeline, "accounts", ACCOUNT)
    assert [s["at"] for s in steps] == sorted(s["at"] for s in steps)
    for moment, answered in month:
        # the step in force at that moment is the account the read API valued then
        step = [s for s in steps if _moment(s["at"]) <= _moment(moment)][-1]
        # its state always; its numbers when it was written right then (between writes, the read
        # API values the same step as of its own moment: what `?at=` does, tested below)
        same = SAME if _moment(step["at"]) == _moment(moment) else ("threshold", "state", "cycle")
        assert {k: step[k] for k in same} == {k: answered[k] for k in same}, moment
    kinds = {cause["kind"] for step in steps for cause in step["causes"]}
    assert {"created", "event", "state", "routing", "sla", "feedback", "decay"} <= kinds, kinds
    # the events and the rules they met, with the contact
    demo = [c for s in steps for c in s["causes"] if c["kind"] == "event" and c["rule"] == "demo_requested"]
    assert demo and demo[0]["contactId"] == "u-0-acmetech.io" and demo[0]["points"] == 50
    routed = [s for s in steps if any(c["kind"] == "routing" for c in s["causes"])][0]
    assert routed["state"] == "routed" and routed["sdr"]
    sla = [s for s in steps if any(c["kind"] == "sla" for c in s["causes"])][0]
    assert [c for c in sla["causes"] if c["kind"] == "sla"][0]["attempt"] == 2
    fed = [c for s in steps for c in s["causes"] if c["kind"] == "feedback"]
    assert fed == [{"kind": "feedback", "outcome": "not_ready", "sdr": month[3][1]["sdr"]["id"]}]


def test_at_a_past_moment_answers_what_the_read_api_answered_then(
        pipeline: Pipeline, month: list[tuple[str, dict[str, Any]]]) -> None:
    for moment, answered in month:
        status, then = read_at(pipeline, f"/v1/accounts/{ACCOUNT}", moment)
        assert status == 200, then
        for name in ("updatedAt",):
            answered = {k: v for k, v in answered.items() if k != name}
            then = {k: v for k, v in then.items() if k != name}
        assert then == answered, moment


def test_a_moment_before_an_event_does_not_count_it(pipeline: Pipeline) -> None:
    pipeline.send("identify", vp_identify() | {"messageId": "b-id"})
    pipeline.settle()
    start = pipeline.now
    pipeline.advance(days=2)
    pipeline.send("track", {"userId": "u-jo", "event": "Demo Requested", "messageId": "b-demo"})
    pipeline.settle()
    before = (start + timedelta(days=1)).isoformat()
    status, contact = read_at(pipeline, "/v1/contacts/u-jo", before)
    assert status == 200, contact
    assert contact["engagement"] == 0 and "demo_requested" not in {b["rule"] for b in contact["breakdown"]}
    status, account = read_at(pipeline, f"/v1/accounts/{ACCOUNT}", before)
    assert status == 200 and account["engagement"] == 0
    assert pipeline.contact("u-jo")["engagement"] == 50  # today it counts
    # before anything at all: no record of either
    earlier = (start - timedelta(days=1)).isoformat()
    assert read_at(pipeline, "/v1/contacts/u-jo", earlier)[0] == 404
    assert read_at(pipeline, f"/v1/accounts/{ACCOUNT}", earlier)[0] == 404


def test_a_contacts_history_names_each_event_its_rules_and_the_decay_steps(pipeline: Pipeline) -> None:
    pipeline.send("page", {"anonymousId": "anon-h", "properties": {"url": "https://acmetech.io/pricing"},
                           "messageId": "c-page"})
    pipeline.advance(hours=1)
    pipeline.send("identify", vp_identify() | {"anonymousId": "anon-h", "messageId": "c-id"})
    pipeline.advance(hours=1)
    pipeline.send("track", {"userId": "u-jo", "event": "Email Opened", "messageId": "c-open"})
    pipeline.settle()
    pipeline.advance(days=40)
    steps = all_steps(pipeline, "contacts", "u-jo")
    events = [s for s in steps if s["cause"]["kind"] == "event"]
    assert [s["cause"]["messageId"] for s in events] == ["c-page", "c-id", "c-open"]
    assert events[0]["cause"]["via"] == "a" and events[0]["cause"]["rules"] == {"pricing_page": 15}
    assert events[2]["cause"]["rules"] == {"email_opened": 5}
    decay = [s for s in steps if s["cause"]["kind"] == "decay"]
    assert decay and all(a["engagement"] > b["engagement"] for a, b in zip([events[-1], *decay], decay, strict=False))
    now = pipeline.contact("u-jo")
    assert {k: steps[-1][k] for k in ("fit", "lifecycle")} == {k: now[k] for k in ("fit", "lifecycle")}
    # a window
    window = all_steps(pipeline, "contacts", "u-jo", **{"from": events[1]["at"], "to": events[2]["at"]})
    assert [s["cause"].get("messageId") for s in window] == ["c-id", "c-open"]


def test_history_reads_refuse_bad_parameters_naming_them(pipeline: Pipeline) -> None:
    pipeline.send("identify", vp_identify() | {"messageId": "p-id"})
    pipeline.settle()
    for query, name in (({"from": "yesterday"}, "from"), ({"to": "2026-13-01T00:00:00Z"}, "to"),
                        ({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"), ({"cursor": "%%%"}, "cursor"),
                        ({"from": "2026-12-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "from")):
        status, body = history(pipeline, "accounts", ACCOUNT, **query)
        assert status == 400 and body["field"] == name, (query, body)
    assert history(pipeline, "accounts", "nobody.example")[0] == 404
    assert history(pipeline, "contacts", "nobody")[0] == 404


def _readme_block(after: str) -> Any:
    import json
    import re
    from pathlib import Path

    readme = Path(__file__).resolve().parents[2].joinpath("README.md").read_text()
    found = re.search(re.escape(after) + r".*?```json\n(.*?)```", readme, re.S)
    assert found, after
    return json.loads(found.group(1))


def test_the_readme_shows_what_history_answers(pipeline: Pipeline, month: list[tuple[str, dict[str, Any]]]) -> None:
    shown = _readme_block("**An account's history**")
    steps = all_steps(pipeline, "accounts", ACCOUNT)
    by_version = {s["version"]: s for s in steps}
    for step in shown["steps"]:  # each shown step is a real one (some fields left out)
        real = by_version[step["version"]]
        assert {k: v for k, v in step.items() if k != "causes"} == {k: real[k] for k in step if k != "causes"}
        for cause in step["causes"]:
            assert {k: v for k, v in cause.items() if k != "..."} in [
                {k: c[k] for k in cause if k != "..."} for c in real["causes"] if set(cause) - {"..."} <= set(c)]
    shown = _readme_block("**A contact's history**")
    status, page = history(pipeline, "contacts", shown["contactId"], limit="3")
    assert status == 200 and page["next"] == shown["next"]
    assert all(step in page["steps"] for step in shown["steps"])


def test_an_erasure_shows_in_the_accounts_history_as_a_cause_with_no_personal_data(pipeline: Pipeline) -> None:
    import json

    from tests.integration.test_erase_flow import erase

    pipeline.send("identify", vp_identify("u-erased", "erin.gone@acmetech.io")
                  | {"messageId": "e-id", "traits": {**vp_identify()["traits"], "email": "erin.gone@acmetech.io",
                                                     "name": "Erin Gone"}})
    pipeline.send("track", {"userId": "u-erased", "event": "Demo Requested", "messageId": "e-demo"})
    pipeline.send("identify", vp_identify("u-stays", "sam@acmetech.io") | {"messageId": "s-id"})
    pipeline.settle()
    before = pipeline.account(ACCOUNT)["score"]
    pipeline.advance(hours=1)
    status, answer = erase(pipeline, "u-erased")
    assert status == 202 and answer["status"] == "done", answer
    pipeline.settle()
    steps = all_steps(pipeline, "accounts", ACCOUNT)
    erased = [s for s in steps if any(c["kind"] == "erasure" for c in s["causes"])]
    assert len(erased) == 1 and erased[0]["score"] < before
    assert [c for c in erased[0]["causes"] if c["kind"] == "erasure"] == [{"kind": "erasure", "contacts": 1}]
    shown = json.dumps(steps)
    for trace in ("u-erased", "erin.gone", "Erin Gone"):
        assert trace not in shown, trace
    # nor does a moment before the erasure bring it back
    status, then = read_at(pipeline, f"/v1/accounts/{ACCOUNT}", steps[0]["at"])
    assert status == 200 and "erin.gone" not in json.dumps(then) and "u-erased" not in json.dumps(then)
