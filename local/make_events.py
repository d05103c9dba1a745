"""Regenerate the sample Lambda events in `events/` (`python -m local.make_events`).

One sample per function and route kind, for `sam local invoke <Function> -e events/<file>.json`
and for tests/integration/test_sample_events.py. The HTTP ones are built by `local.apigw`
(API Gateway HTTP API payload 2.0, as the template's routes receive them); the stream one
holds an event item exactly as the collector stores it (`leadscore.adapters.items.event_item`).
Everything is deterministic (fixed time, request ids and trace ids) so the committed JSON
only changes when the shapes do: `--check` exits 1 when a file is out of date.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.apigw import DEFAULT_ACCOUNT, DEFAULT_REGION, form_event, http_event, iam_authorizer

REPO_ROOT = Path(__file__).resolve().parents[1]
EVENTS_DIR = REPO_ROOT / "events"
#: When the samples happen (the pinned clock of the integration tests).
SAMPLE_TIME = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
STACK_NAME = "leadscore"
WEB_KEY = "wk_demo_website"
EMAIL_KEY = "wk_demo_email"

#: Sample file name prefix -> the template's function that receives it.
FUNCTION_OF_PREFIX = {
    "collect-": "CollectFunction",
    "bus-": "ScoreFromBusFunction",
    "aggregate-": "AggregateFunction",
    "decay-": "DecayFunction",
    "read-": "ReadApiFunction",
}

#: The contact every sample talks about: a VP at Acme (DOMAIN.md's example contact).
USER_ID = "u-jo"
ACME_IDENTIFY = {
    "userId": USER_ID,
    "traits": {
        "email": "jo@acme.com",
        "name": "Jo Park",
        "title": "VP Sales",
        "company": {"name": "Acme", "domain": "acme.com", "industry": "Software", "employee_count": 200},
        "address": {"country": "US"},
    },
}


def function_of(file_name: str) -> str:
    """The function logical id a sample file is for (by its name's prefix)."""
    for prefix, logical_id in FUNCTION_OF_PREFIX.items():
        if file_name.startswith(prefix):
            return logical_id
    raise KeyError(f"{file_name}: no function for this prefix (known: {', '.join(FUNCTION_OF_PREFIX)})")


def _stable(event: dict[str, Any], name: str) -> dict[str, Any]:
    """Replace what `http_event` makes random (request id, trace id) with values derived from the name."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    event["requestContext"]["requestId"] = digest[:14] + "="
    event["headers"]["x-amzn-trace-id"] = f"Root=1-{int(SAMPLE_TIME.timestamp()):08x}-{digest[:24]}"
    return event


def _at(minutes: int = 0) -> str:
    moment = SAMPLE_TIME.replace(minute=minutes)
    return moment.isoformat().replace("+00:00", "Z")


def _post(path: str, body: Any, key: str = WEB_KEY) -> dict[str, Any]:
    return http_event("POST", path, body=body, basic_user=key, now=SAMPLE_TIME)


def http_samples() -> dict[str, dict[str, Any]]:
    page_context = {"page": {"url": "https://www.acme-vendor.example/pricing", "path": "/pricing"}}
    samples = {
        "collect-identify": _post("/v1/identify", {**ACME_IDENTIFY, "messageId": "sample-identify-1",
                                                   "timestamp": _at(0)}),
        "collect-track": _post("/v1/track", {
            "userId": USER_ID, "event": "Demo Link Clicked", "messageId": "sample-track-1",
            "properties": {"campaign": "nov-webinar-follow-up"}, "timestamp": _at(1)}),
        "collect-batch": _post("/v1/batch", {"batch": [
            {"type": "page", "userId": USER_ID, "messageId": "sample-batch-1", "name": "Pricing",
             "properties": {"url": "https://www.acme-vendor.example/pricing", "path": "/pricing"},
             "context": page_context, "timestamp": _at(2)},
            {"type": "track", "userId": USER_ID, "event": "Case Study Downloaded", "messageId": "sample-batch-2",
             "properties": {"title": "How Initech doubled pipeline"}, "timestamp": _at(3)},
            {"type": "group", "userId": USER_ID, "groupId": "acme.com", "messageId": "sample-batch-3",
             "traits": {"name": "Acme", "website": "https://www.acme.com", "industry": "Software",
                        "employees": 200, "address": {"country": "US"}}, "timestamp": _at(4)},
        ]}),
        "collect-pixel": http_event("GET", "/v1/pixel.gif", query={
            "k": EMAIL_KEY, "e": "Email Opened", "uid": USER_ID, "mid": "sample-open-1",
            "url": "https://mail.example/campaigns/nov-webinar"}, now=SAMPLE_TIME),
        "collect-form": form_event("/v1/forms/demo-request", {
            "email": "jo@acme.com", "name": "Jo Park", "title": "VP Sales", "company.name": "Acme",
            "company.domain": "acme.com", "messageId": "sample-form-1"},
            route_key="POST /v1/forms/{formId}", now=SAMPLE_TIME,
            headers={"referer": "https://www.acme-vendor.example/demo", "origin": "http://localhost:8000"}),
        "collect-settings": http_event(
            "GET", f"/v1/projects/{WEB_KEY}/settings", route_key="GET /v1/projects/{writeKey}/settings",
            now=SAMPLE_TIME),
        "read-account": http_event("GET", "/v1/accounts/acme.com", route_key="GET /v1/accounts/{accountId}",
                                   authorizer=iam_authorizer(), now=SAMPLE_TIME),
        "read-contact": http_event("GET", f"/v1/contacts/{USER_ID}", route_key="GET /v1/contacts/{contactId}",
                                   authorizer=iam_authorizer(), now=SAMPLE_TIME),
    }
    return {name: _stable(event, name) for name, event in samples.items()}


def bus_sample() -> dict[str, Any]:
    """A Segment Spec message other systems put on the bus, as the rule delivers it to Lambda."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "Tracking Event",
        "source": "com.example.product",
        "account": DEFAULT_ACCOUNT,
        "time": _at(5).replace(".000", ""),
        "region": DEFAULT_REGION,
        "resources": [],
        "detail": {"type": "track", "userId": USER_ID, "event": "Webinar Attended",
                   "messageId": "sample-bus-1", "properties": {"webinar": "ABM in practice"},
                   "timestamp": _at(5)},
    }


def stream_sample() -> dict[str, Any]:
    """One event INSERT on the table's stream, its NewImage the item the collector stores."""
    from leadscore.adapters.items import event_item, key_item, table_key
    from leadscore.adapters.storage import marshal
    from leadscore.engine.messages import parse_message
    from leadscore.engine.rules import matching_rules
    from leadscore.rulesfiles.loading import load_config

    config = load_config(REPO_ROOT / "config")
    message = {"type": "track", "userId": USER_ID, "event": "Webinar Attended", "messageId": "sample-stream-1",
               "properties": {"webinar": "ABM in practice"}, "timestamp": _at(6)}
    event = parse_message(message, source_id="website", received_at=SAMPLE_TIME.replace(minute=6))
    item = event_item(event, matching_rules(config.scoring, event), retention_days=400)
    image = marshal(item)
    table_arn = f"arn:aws:dynamodb:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:table/{STACK_NAME}-Table"
    return {
        "Records": [{
            "eventID": "c81e728d9d4c2f636f067f89cc14862c",
            "eventName": "INSERT",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": DEFAULT_REGION,
            "dynamodb": {
                "ApproximateCreationDateTime": int(SAMPLE_TIME.timestamp()) + 360,
                "Keys": marshal(key_item(*table_key(item))),
                "NewImage": image,
                "SequenceNumber": "100000000000000000001",
                "SizeBytes": len(json.dumps(image)),
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
            "eventSourceARN": f"{table_arn}/stream/2026-11-02T08:00:00.000",
        }]
    }


def schedule_sample() -> dict[str, Any]:
    """What the DecaySchedule rule sends (a Scheduled Event)."""
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": DEFAULT_ACCOUNT,
        "time": "2026-11-02T10:00:00Z",
        "region": DEFAULT_REGION,
        "resources": [f"arn:aws:events:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:rule/"
                      f"{STACK_NAME}-DecayFunctionDecaySchedule"],
        "detail": {},
    }


def samples() -> dict[str, dict[str, Any]]:
    """Every sample by file name (without .json)."""
    out = http_samples()
    out["bus-tracking-event"] = bus_sample()
    out["aggregate-stream"] = stream_sample()
    out["decay-schedule"] = schedule_sample()
    return dict(sorted(out.items()))


def render(event: dict[str, Any]) -> str:
    return json.dumps(event, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed sample differs")
    parser.add_argument("--dir", type=Path, default=EVENTS_DIR)
    args = parser.parse_args(argv)
    stale = []
    for name, event in samples().items():
        path = args.dir / f"{name}.json"
        text = render(event)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
            continue
        args.dir.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    if stale:
        print(f"out of date: {', '.join(stale)} (run: python -m local.make_events)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
