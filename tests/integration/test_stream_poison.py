"""Hostile stream records: a poison record fails alone, never its contact's good events.

A stored event item that cannot be read back (missing or garbage attributes, traits or
properties that are not JSON objects, a time out of range) is set aside; the good events
of the same contact in the same batch are applied once; the poison record alone reaches
the on-failure destination; and a replay of the batch changes nothing.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.integration.conftest import WEB_KEY, Pipeline

POISONS: dict[str, dict[str, Any]] = {
    "missing attributes": {"ty": "track"},
    "garbage time": {"ty": "track", "mid": "bad", "src": "website", "ts": "not-a-time"},
    "time out of range": {"ty": "track", "mid": "bad", "src": "website", "ts": 10**30},
    "traits not JSON": {"ty": "identify", "mid": "bad", "src": "website", "ts": 1_793_000_000_000,
                        "tr": "{not json"},
    "properties not an object": {"ty": "track", "mid": "bad", "src": "website", "ts": 1_793_000_000_000,
                                 "ev": "Webinar Attended", "pr": "[1, 2]", "hits": ["webinar_attended"]},
    "hits not a list of rule ids": {"ty": "track", "mid": "bad", "src": "website", "ts": 1_793_000_000_000,
                                    "ev": "Webinar Attended", "hits": {"webinar_attended": 1}},
    "unknown type": {"ty": "launch", "mid": "bad", "src": "website", "ts": 1_793_000_000_000},
}


def _put_poison(pipeline: Pipeline, contact_pk: str, attributes: dict[str, Any]) -> None:
    from leadscore.adapters.storage import marshal

    item = {"pk": contact_pk, "sk": "E#website#bad", "k": "E", **attributes}
    pipeline.stack.client("dynamodb").put_item(TableName=pipeline.stack.name_of("Table"), Item=marshal(item))


def _failure_messages(pipeline: Pipeline) -> list[dict[str, Any]]:
    sqs = pipeline.stack.client("sqs")
    queue = pipeline.stack.resources["AggregateFailureQueue"]["url"]
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def _poison_sequence(pipeline: Pipeline) -> str:
    return next(r["dynamodb"]["SequenceNumber"] for r in pipeline.stream_records()
                if r["dynamodb"]["Keys"]["sk"]["S"] == "E#website#bad")


class TestPoisonInAContactsBatch:
    @pytest.mark.parametrize("poison", list(POISONS), ids=list(POISONS))
    def test_the_good_events_around_a_poison_record_are_applied_once(
            self, pipeline: Pipeline, poison: str) -> None:
        # Given one batch: a good event, a poison record of the same contact, two more good events
        pipeline.send("track", {"userId": "u-p", "event": "Webinar Attended"})  # +20
        _put_poison(pipeline, "C#u:u-p", POISONS[poison])
        pipeline.send("track", {"userId": "u-p", "event": "Case Study Downloaded"})  # +10
        pipeline.send("page", {"userId": "u-p", "properties": {"url": "https://www.acmetech.io/pricing"}})  # +15
        bad = _poison_sequence(pipeline)
        # When the stream is delivered as Lambda would (partial failures, bisection, retries)
        pipeline.stack.pump(raise_errors=False)
        # Then the three good events count, once
        assert pipeline.contact("u-p")["engagement"] == 45
        # and the poison record alone reaches the on-failure destination
        failures = _failure_messages(pipeline)
        assert len(failures) == 1, failures
        info = failures[0]["DDBStreamBatchInfo"]
        assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (bad, bad, 1)

    def test_a_replay_of_the_batch_changes_nothing_and_reports_only_the_poison(self, pipeline: Pipeline) -> None:
        pipeline.send("track", {"userId": "u-r", "event": "Webinar Attended"})
        _put_poison(pipeline, "C#u:u-r", POISONS["traits not JSON"])
        pipeline.send("track", {"userId": "u-r", "event": "Case Study Downloaded"})
        pipeline.send("page", {"userId": "u-r", "properties": {"url": "https://www.acmetech.io/pricing"}})
        bad = _poison_sequence(pipeline)
        pipeline.stack.pump(raise_errors=False)
        before = {(i["pk"], i["sk"]): i for i in pipeline.table_items()}
        # When the whole stream so far is delivered again
        answer = pipeline.stack.invoke("AggregateFunction", {"Records": pipeline.stream_records()})
        # Then only the poison record is reported, and no item moved
        assert answer == {"batchItemFailures": [{"itemIdentifier": bad}]}
        pipeline.settle()
        assert {(i["pk"], i["sk"]): i for i in pipeline.table_items()} == before
        assert pipeline.contact("u-r")["engagement"] == 45

    def test_a_batch_of_only_good_events_still_succeeds(self, pipeline: Pipeline) -> None:
        pipeline.send("track", {"userId": "u-g", "event": "Webinar Attended"})
        pipeline.http("GET", "/v1/pixel.gif", query={"k": WEB_KEY, "e": "Demo Link Clicked", "uid": "u-g"})
        pipeline.settle()
        assert pipeline.contact("u-g")["engagement"] == 45
        assert _failure_messages(pipeline) == []


class TestNoPersonalDataInLogs:
    def test_a_poison_record_of_an_email_keyed_contact_logs_no_email(
            self, pipeline: Pipeline, caplog: pytest.LogCaptureFixture) -> None:
        # the garbage itself carries the address, as a hostile or corrupt item may
        _put_poison(pipeline, "C#e:jo.secret@acmetech.io",
                    {"ty": "track", "mid": "bad", "src": "website", "ts": "jo.secret@acmetech.io"})
        with caplog.at_level(logging.INFO):  # what a deployed function logs
            pipeline.stack.pump(raise_errors=False)
        assert caplog.records, "the failure is logged"
        assert "jo.secret" not in caplog.text
        assert all("jo.secret" not in _everything_of(r) for r in caplog.records)

    def test_a_contact_that_cannot_be_applied_logs_a_hash_of_its_key_not_its_email(
            self, pipeline: Pipeline, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
        from leadscore.services import contact_fold

        def broken(*_: Any, **__: Any) -> Any:
            raise ValueError("cannot apply the event of jo.secret@acmetech.io")

        monkeypatch.setattr(contact_fold, "apply_event", broken)  # the contact fold's own name of the engine's
        posted = pipeline.http("POST", "/v1/forms/demo-request", route_key="POST /v1/forms/{formId}",
                               body={"email": "jo.secret@acmetech.io"})
        assert posted["statusCode"] in (200, 303), posted
        with caplog.at_level(logging.INFO):  # what a deployed function logs
            pipeline.stack.pump(raise_errors=False)
        failures = [r for r in caplog.records if r.name == "leadscore.services.contact_fold"]
        assert failures, "the failure is logged"
        assert "jo.secret" not in caplog.text
        assert all("jo.secret" not in _everything_of(r) for r in caplog.records)
        # and the key is there as its kind and a short keyed hash (the stack's log key), so one
        # contact's failures can be found by whoever holds that key (python -m local.logkey)
        from local.logkey import digests, read_key

        (digest,) = digests(["jo.secret@acmetech.io"], read_key(pipeline.stack.resources["LogKeySecret"]["arn"],
                                                                pipeline.stack.session))
        assert any(digest in _everything_of(r) for r in failures)
        # not the digest anyone could recompute: a plain hash, or one under the public dev key
        import hashlib

        from leadscore.engine.identity import DEV_LOG_KEY, key_digest

        plain = hashlib.sha256(b"e:jo.secret@acmetech.io").hexdigest()[:12]
        dev = key_digest("e:jo.secret@acmetech.io", log_key=DEV_LOG_KEY)
        assert all(plain not in _everything_of(r) and dev not in _everything_of(r) for r in caplog.records)


def _everything_of(record: logging.LogRecord) -> str:
    """The message, its arguments, the exception and every extra attribute of a log record."""
    text = [record.getMessage(), repr(record.args), repr(record.__dict__)]
    if record.exc_info and record.exc_info[1] is not None:
        import traceback

        text.append("".join(traceback.format_exception(*record.exc_info)))
    if record.exc_text:
        text.append(record.exc_text)
    return "\n".join(text)


class TestTheHandlersAnswer:
    """`stream_response`, pure: report the lowest failure, or fail the invocation so Lambda
    bisects when a poison record heads a batch of several."""

    @staticmethod
    def _raw(*sequences: str) -> list[dict[str, Any]]:
        return [{"dynamodb": {"SequenceNumber": s}} for s in sequences]

    def test_nothing_failed(self) -> None:
        from leadscore.adapters.streams import stream_response
        from leadscore.services.aggregate import BatchOutcome

        assert stream_response(self._raw("1", "2"), BatchOutcome([], [])) == {"batchItemFailures": []}

    def test_a_poison_record_after_the_first_is_reported(self) -> None:
        from leadscore.adapters.streams import stream_response
        from leadscore.services.aggregate import BatchOutcome

        answer = stream_response(self._raw("1", "2", "3"), BatchOutcome(["2"], ["2"]))
        assert answer == {"batchItemFailures": [{"itemIdentifier": "2"}]}

    def test_a_poison_record_heading_several_fails_the_invocation_so_lambda_bisects(self) -> None:
        from leadscore.adapters.streams import PoisonBatch, stream_response
        from leadscore.services.aggregate import BatchOutcome

        with pytest.raises(PoisonBatch):
            stream_response(self._raw("2", "3"), BatchOutcome(["2"], ["2"]))

    def test_a_poison_record_alone_is_reported(self) -> None:
        from leadscore.adapters.streams import stream_response
        from leadscore.services.aggregate import BatchOutcome

        assert stream_response(self._raw("2"), BatchOutcome(["2"], ["2"])) == {
            "batchItemFailures": [{"itemIdentifier": "2"}]}

    def test_a_failed_contact_heading_the_batch_is_reported_not_bisected(self) -> None:
        from leadscore.adapters.streams import stream_response
        from leadscore.services.aggregate import BatchOutcome

        answer = stream_response(self._raw("1", "2"), BatchOutcome(["1", "2"], ["2"]))
        assert answer == {"batchItemFailures": [{"itemIdentifier": "1"}, {"itemIdentifier": "2"}]}


def test_the_collectors_own_items_decode() -> None:
    """What collection writes is never poison (the strict decoder accepts the real thing)."""
    from datetime import UTC, datetime

    from leadscore.adapters.items import decode_event, event_item
    from leadscore.domain.events import TrackingEvent

    moment = datetime(2026, 11, 2, 9, tzinfo=UTC)
    for event in (
        TrackingEvent(type="identify", message_id="m1", source_id="website", contact_key="e:jo@acme.com",
                      timestamp=moment, received_at=moment, email="jo@acme.com",
                      traits={"title": "VP", "company": {"name": "Acme", "employee_count": 200}}),
        TrackingEvent(type="page", message_id="m2", source_id="website", contact_key="a:anon",
                      timestamp=moment, received_at=moment, anonymous_id="anon", url="https://acme.com/pricing",
                      path="/pricing", properties={"url": "https://acme.com/pricing"}, bot=True),
    ):
        stored = decode_event(event_item(event, ["pricing_page"], 400))
        decoded, hits = stored.event, stored.hits
        assert decoded.message_id == event.message_id and hits == ["pricing_page"]
        assert decoded.traits == event.traits and decoded.bot == event.bot
