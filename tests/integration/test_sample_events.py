"""Every sample in events/*.json (the ones `sam local invoke -e` takes) runs on its function.

Each sample is invoked on the function its file name names (local/make_events.py's
prefix map) in the moto stack of template.yaml, with the clock pinned at the samples' time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local.apigw import decode_body, json_body
from local.make_events import EVENTS_DIR, SAMPLE_TIME, USER_ID, function_of
from local.make_events import main as make_events

SAMPLES = sorted(EVENTS_DIR.glob("*.json"))

#: The documented answer of each HTTP sample (PRODUCT.md "Interfaces").
HTTP_STATUS = {
    "collect-identify": 200,
    "collect-track": 200,
    "collect-batch": 200,
    "collect-pixel": 200,
    "collect-form": 303,  # a plain HTML form is redirected to the form's configured page
    "collect-settings": 200,
    "read-account": 200,
    "read-contact": 200,
}
#: Read samples ask about the contact and account the collect samples create.
SEEDS = ("collect-identify", "collect-track")


def _load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / f"{name}.json").read_text())


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    from leadscore.adapters import runtime
    monkeypatch.setenv("LEADSCORE_NOW", SAMPLE_TIME.replace(minute=10).isoformat())
    runtime.reset()


def test_every_function_and_route_kind_has_a_sample() -> None:
    names = {path.stem for path in SAMPLES}
    assert set(HTTP_STATUS) | {"bus-tracking-event", "aggregate-stream", "decay-schedule"} <= names
    assert {function_of(name) for name in names} == {
        "CollectFunction", "ScoreFromBusFunction", "AggregateFunction", "DecayFunction", "ReadApiFunction"}


def test_the_committed_samples_are_what_the_generator_makes(tmp_path: Path) -> None:
    assert make_events(["--check"]) == 0, "events/*.json are stale: run python -m local.make_events"


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_sample_runs_on_its_function(path: Path, stack: Any, clock: None) -> None:
    name = path.stem
    function = function_of(name)
    assert function in stack.functions, f"{name}: {function} is not in template.yaml"
    if name.startswith("read-"):
        for seed in SEEDS:
            assert stack.invoke("CollectFunction", _load(seed))["statusCode"] == 200
        stack.pump()

    answer = stack.invoke(function, json.loads(path.read_text()))

    if name in HTTP_STATUS:
        assert answer["statusCode"] < 500, answer
        assert answer["statusCode"] == HTTP_STATUS[name], answer
        if name == "collect-pixel":
            assert answer["headers"]["content-type"] == "image/gif"
            assert decode_body(answer).startswith(b"GIF89a") and len(decode_body(answer)) == 43
        elif name == "collect-form":
            assert answer["headers"]["location"].startswith("http")
        else:
            body = json_body(answer)
            assert body.get("success", True) is True, body
    elif name == "bus-tracking-event":
        assert answer == {"accepted": 1, "duplicates": 0, "rejected": 0}
    elif name == "aggregate-stream":
        assert answer == {"batchItemFailures": []}
    elif name == "decay-schedule":
        assert isinstance(answer, dict) and answer.get("due", 0) >= 0
    stack.pump()
    assert stack.errors == []


def test_samples_score_what_they_say(stack: Any, clock: None) -> None:
    """The collect, bus and stream samples together: Jo's contact and Acme's account read back."""
    for name in ("collect-identify", "collect-track", "collect-batch", "collect-pixel"):
        stack.invoke("CollectFunction", _load(name))
    stack.invoke("ScoreFromBusFunction", _load("bus-tracking-event"))
    stack.pump()
    contact = json_body(stack.invoke("ReadApiFunction", _load("read-contact")))
    rules = {line["rule"]: line["points"] for line in contact["breakdown"]}
    assert contact["contactId"] == USER_ID and contact["accountId"] == "acme.com"
    assert rules == {"title_executive": 20, "industry_technology": 15, "company_size": 10, "country_focus": 5,
                     "demo_link_clicked": 25, "pricing_page": 15, "case_study_downloaded": 10,
                     "email_opened": 5, "webinar_attended": 20}
    account = json_body(stack.invoke("ReadApiFunction", _load("read-account")))
    assert account["accountId"] == "acme.com" and account["name"] == "Acme"
    assert round(sum(line["points"] for line in account["breakdown"]), 2) == account["score"]
