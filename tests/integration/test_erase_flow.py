"""Erasure through the real path: the stack of template.yaml on moto, `DELETE
/v1/contacts/{contactId}` on the erase function (IAM route), collection's suppression check,
the stream, and a scan of the whole table afterwards."""

from __future__ import annotations

import contextlib
import json
import re
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from local.apigw import LambdaContext
from tests.integration.conftest import WEB_KEY, Pipeline
from tests.integration.test_route_flow import routed_messages
from tests.support.apigw import http_event, iam_authorizer, json_body

ROUTE = "DELETE /v1/contacts/{contactId}"
DOMAIN = "acmetech.io"
JO = {"userId": "u-jo-erase", "anonymousId": "anon-jo-7f3a", "email": "jo.erasmus@acmetech.io",
      "name": "Joanna Erasmus"}
#: what must not survive the erasure anywhere in the table, in any attribute (JSON text included)
JO_TRACES = (JO["userId"], JO["anonymousId"], JO["email"], JO["name"], "Erasmus")


def erase(pipeline: Pipeline, contact_id: str, context: Any = None) -> tuple[int, Any]:
    event = http_event("DELETE", f"/v1/contacts/{quote(contact_id, safe='')}", route_key=ROUTE, now=pipeline.now,
                       path_parameters={"contactId": quote(contact_id, safe="")},
                       authorizer=iam_authorizer(user="privacy-officer"))
    response = pipeline.stack.invoke("EraseFunction", event, context)
    return response["statusCode"], json_body(response)


class Countdown(LambdaContext):
    """A Lambda context with plenty of time for `checks` looks at the clock, then none."""

    def __init__(self, *, checks: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.checks = checks

    def get_remaining_time_in_millis(self) -> int:
        self.checks -= 1
        return 60_000 if self.checks >= 0 else 0


def jo_journey(pipeline: Pipeline) -> None:
    """Jo visits anonymously, fills a form (an email-only contact), is identified (both merged
    into her userId), joins the account by a group call and requests a demo: the account,
    with a colleague's webinar, crosses sdr_ready (30 fit + 50 + 25 + the colleague's 20)."""
    pipeline.send("page", {"anonymousId": JO["anonymousId"], "messageId": "jo-1",
                           "properties": {"url": f"https://{DOMAIN}/pricing"}})
    form = pipeline.http("POST", "/v1/forms/demo-request", route_key="POST /v1/forms/{formId}",
                         body={"email": JO["email"], "anonymousId": JO["anonymousId"]})
    assert form["statusCode"] in (200, 303), form
    pipeline.send("identify", {"userId": JO["userId"], "anonymousId": JO["anonymousId"], "messageId": "jo-2",
                               "traits": {"email": JO["email"], "name": JO["name"], "title": "VP Sales",
                                          "address": {"country": "US"}}})
    pipeline.send("group", {"userId": JO["userId"], "groupId": DOMAIN, "messageId": "jo-3",
                            "traits": {"name": "Acme Tech", "website": f"https://{DOMAIN}", "industry": "Software",
                                       "employees": 200, "address": {"country": "US"}}})
    pipeline.send("track", {"userId": JO["userId"], "event": "Demo Requested", "messageId": "jo-4"})
    pipeline.send("track", {"userId": JO["userId"], "event": "Demo Link Clicked", "messageId": "jo-5"})


def colleague(pipeline: Pipeline) -> None:
    pipeline.send("identify", {"userId": "u-kim", "messageId": "kim-1",
                               "traits": {"email": "kim@acmetech.io", "name": "Kim Lee", "title": "Engineer"}})
    pipeline.send("track", {"userId": "u-kim", "event": "Webinar Attended", "messageId": "kim-2"})


def stream_only(pipeline: Pipeline) -> None:
    """Deliver the table's stream, not the bus (the account stays sdr_ready, not routed yet)."""
    while pipeline.stack.stream_batches():
        pass


def rejected_naming(pipeline: Pipeline, user_id: str, message_id: str) -> None:
    # a track without an event name: kept as a rejected record with its raw input
    response = pipeline.http("POST", "/v1/batch", basic_user=WEB_KEY,
                             body={"batch": [{"type": "track", "userId": user_id, "messageId": message_id}]})
    assert json_body(response)["rejectedCount"] == 1, response


def traces(pipeline: Pipeline, needles: tuple[str, ...] = JO_TRACES) -> list[str]:
    """Every attribute of every item holding one of `needles` (case-insensitive), walking maps,
    lists, sets and JSON text."""
    pattern = re.compile("|".join(re.escape(n) for n in needles), re.IGNORECASE)
    found: list[str] = []

    def walk(where: str, value: Any) -> None:
        if isinstance(value, bytes | bytearray):  # a compressed attribute (an account's history steps)
            with contextlib.suppress(zlib.error, UnicodeDecodeError):
                walk(where + "(zlib)", zlib.decompress(bytes(value)).decode())
        elif isinstance(value, str):
            if pattern.search(value):
                found.append(f"{where}: {value[:120]}")
            if value[:1] in "[{":
                with contextlib.suppress(ValueError):
                    walk(where + "(json)", json.loads(value))
        elif isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{where}.{key}", key)
                walk(f"{where}.{key}", inner)
        elif isinstance(value, list | set | tuple):
            for i, inner in enumerate(value):
                walk(f"{where}[{i}]", inner)

    for item in pipeline.table_items():
        walk(f"{item['pk']}|{item['sk']}", item)
    return found


@pytest.fixture
def jo(pipeline: Pipeline) -> Iterator[Pipeline]:
    jo_journey(pipeline)
    colleague(pipeline)
    rejected_naming(pipeline, JO["userId"], "bad-jo")
    rejected_naming(pipeline, "u-kim", "bad-kim")
    stream_only(pipeline)
    yield pipeline


class TestErasure:
    def test_nothing_of_the_contact_is_left_and_its_points_leave_the_account(self, jo: Pipeline) -> None:
        pipeline = jo
        assert traces(pipeline)  # the check would see her: she is everywhere before
        before = pipeline.account(DOMAIN)
        assert before["state"] == "sdr_ready" and before["score"] >= 100
        jo_share = sum(line["points"] for line in before["breakdown"] if line["contactId"] == JO["userId"])
        assert jo_share > 0
        merged = pipeline.contact(JO["email"])  # the email-only contact answers as her
        assert merged["contactId"] == JO["userId"]

        status, answer = erase(pipeline, JO["email"])  # by email: the person it joined is erased

        assert status == 202, answer
        assert answer["status"] == "done"
        # her contact, the anonymous and email-only contacts merged into it, and every event
        assert answer["erased"]["contact"] == 3
        assert answer["erased"]["event"] >= 7
        assert answer["erased"]["rejected"] == 1  # the one naming her; Kim's stays
        assert answer["suppressionRecords"] >= 3  # userId, email, anonymousId
        (rescored,) = answer["accountsRescored"]
        assert rescored["accountId"] == DOMAIN and rescored["stateBefore"] == "sdr_ready"
        assert traces(pipeline) == []
        # the account: her share gone, the rest kept, the state re-evaluated (sdr_ready -> recycled)
        after = pipeline.account(DOMAIN)
        # her share, and the buying-committee bonus her persona made (Kim alone is one persona)
        assert before["committeeBonus"] > 0 and after["committeeBonus"] == 0
        assert after["score"] == pytest.approx(before["score"] - jo_share - before["committeeBonus"], abs=0.01)
        assert after["score"] == rescored["score"] and after["state"] == rescored["state"] == "recycled"
        assert {line["contactId"] for line in after["breakdown"] if line["contactId"]} == {"u-kim"}
        assert [c["contactId"] for c in after["contacts"]] == ["u-kim"]
        kept = [i for i in pipeline.table_items() if i["pk"].startswith("R#")]
        assert len(kept) == 1 and "u-kim" in kept[0]["raw"]
        # she is unknown now, by any of her ids
        for contact_id in (JO["userId"], JO["email"], JO["anonymousId"]):
            assert pipeline.read(f"/v1/contacts/{contact_id}")[0] == 404

    def test_the_account_write_says_an_erasure_happened_without_personal_data(self, jo: Pipeline) -> None:
        from leadscore.adapters import items

        erase(jo, JO["userId"])
        (account,) = [i for i in jo.table_items() if i["pk"] == items.account_pk(DOMAIN) and i["sk"] == items.PROFILE]
        assert account[items.ERASED_COUNT] == 1 and account[items.ERASED_AT] == jo.now.isoformat()
        # the stream's copy of the write carries it: the history can name the cause
        images = [r["dynamodb"]["NewImage"] for r in jo.stream_records()
                  if r["dynamodb"]["Keys"] == {"pk": {"S": items.account_pk(DOMAIN)}, "sk": {"S": items.PROFILE}}]
        assert images[-1][items.ERASED_COUNT] == {"N": "1"}
        # and it does: the account's history ends with a step whose cause is the erasure, naming no one
        from tests.integration.test_history import all_steps

        jo.settle()
        last = all_steps(jo, "accounts", DOMAIN)[-1]
        assert {"kind": "erasure", "contacts": 1} in last["causes"]
        assert all("contactId" not in cause for cause in last["causes"]), last["causes"]
        assert traces(jo) == []  # history does not bring her back

    def test_later_events_for_any_of_its_ids_are_dropped_at_collection_with_the_reason(self, jo: Pipeline) -> None:
        pipeline = jo
        erase(pipeline, JO["userId"])
        keys_before = {(i["pk"], i["sk"]) for i in pipeline.table_items()}
        score = pipeline.account(DOMAIN)["score"]
        pipeline.advance(hours=1)
        for ids in ({"userId": JO["userId"]}, {"anonymousId": JO["anonymousId"]},
                    {"userId": "u-jo-new-device", "traits": {"email": JO["email"].upper()}}):
            kind = "identify" if "traits" in ids else "track"
            body = {**ids, "event": "Demo Requested", "messageId": f"later-{len(ids)}-{kind}"}
            response = pipeline.send(kind, body)
            answer = json_body(response)
            assert answer["success"] is True
            (dropped,) = answer["dropped"]
            assert dropped["reason"] == "erased" and "asked to be erased" in dropped["message"]
            assert response["headers"]["x-leadscore-not-scored"].startswith("erased")
        # a batch: the erased one dropped (named by index), the stranger's stored
        batch = [{"type": "track", "userId": "u-stranger", "event": "Webinar Attended", "messageId": "s-1"},
                 {"type": "page", "anonymousId": JO["anonymousId"], "messageId": "j-9",
                  "properties": {"url": f"https://{DOMAIN}/pricing"}}]
        answer = json_body(pipeline.http("POST", "/v1/batch", body={"batch": batch}, basic_user=WEB_KEY))
        assert answer["accepted"] == 1 and answer["droppedCount"] == 1 and answer["dropped"][0]["index"] == 1
        # an alias naming her anonymous id as the previous one, and her form: dropped too
        alias = json_body(pipeline.send("alias", {"userId": "u-fresh", "previousId": JO["anonymousId"],
                                                  "messageId": "later-alias"}))
        assert alias["dropped"][0]["reason"] == "erased"
        form = pipeline.http("POST", "/v1/forms/demo-request", route_key="POST /v1/forms/{formId}",
                             body={"email": JO["email"]})
        assert form["statusCode"] in (200, 303) and form["headers"]["x-leadscore-not-scored"].startswith("erased")
        # the pixel still answers its GIF, and says why
        gif = pipeline.http("GET", "/v1/pixel.gif", query={"k": WEB_KEY, "aid": JO["anonymousId"]})
        assert gif["statusCode"] == 200 and gif["headers"]["x-leadscore-not-scored"].startswith("erased")
        # from the bus too (another system's event naming her email)
        bus = pipeline.stack.invoke("ScoreFromBusFunction", {
            "version": "0", "id": "e-jo", "detail-type": "Tracking Event", "source": "com.example.product",
            "time": pipeline.now.isoformat(),
            "detail": {"type": "identify", "userId": "u-jo-crm", "traits": {"email": JO["email"]}}})
        assert bus == {"accepted": 0, "duplicates": 0, "rejected": 0, "dropped": 1}
        pipeline.settle()
        # nothing of hers was stored (no event, no rejected record with her raw input), nothing scored
        assert traces(pipeline) == []
        from leadscore.adapters import items

        new = {(i["pk"], i["sk"]) for i in pipeline.table_items()} - keys_before
        # the stranger's event and contact, and the account's history item of the erasure's step
        assert {pk for pk, sk in new if not items.is_history_key((pk, sk))} == {"C#u:u-stranger"}
        assert pipeline.account(DOMAIN)["score"] == score

    def test_a_second_erasure_finds_nothing_left(self, jo: Pipeline) -> None:
        first = erase(jo, JO["userId"])
        assert first[0] == 202
        for contact_id in (JO["userId"], JO["email"], JO["anonymousId"]):
            status, answer = erase(jo, contact_id)
            assert status == 202, answer
            assert answer == {"status": "done", "erased": {"contact": 0, "event": 0, "rejected": 0},
                              "redacted": {"feedback": 0, "account": 0, "history": 0}, "accountsRescored": [],
                              "suppressionRecords": 0}

    def test_an_interrupted_erasure_resumes_and_ends_the_same(self, jo: Pipeline,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
        from leadscore.adapters.api import erase as erase_api

        handed: list[dict[str, Any]] = []
        monkeypatch.setattr(erase_api.SelfInvoke, "__call__", lambda self, payload: handed.append(payload))
        spec = jo.stack.functions["EraseFunction"]
        # a deadline already near: the first pass stops before its first page of events
        status, answer = erase(jo, JO["userId"], LambdaContext(function_name=spec.name, timeout_s=5))
        assert status == 202 and answer["status"] == "in_progress" and answer["continued"] is True
        assert answer["erased"]["event"] == 0 and answer["suppressionRecords"] >= 3
        (payload,) = handed
        assert payload["phase"] == "partitions" and payload["contactKey"] == f"u:{JO['userId']}"
        assert not any(str(v).startswith(JO["email"]) for v in payload.values())  # her key, never more
        # meanwhile: her events are suppressed, her points already out of the account
        assert jo.account(DOMAIN)["state"] == "recycled"
        # the continuation (Lambda's asynchronous invocation of the function itself) finishes it
        rest = jo.stack.invoke("EraseFunction", payload)
        assert rest["status"] == "done" and rest["erased"]["contact"] == 3 and rest["erased"]["event"] >= 7
        assert traces(jo) == []
        assert len(handed) == 1

    def test_an_interrupted_erasure_is_finished_by_the_same_request_again(self, jo: Pipeline,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
        from leadscore.adapters.api import erase as erase_api

        def refuse(self: Any, payload: Any) -> None:
            raise RuntimeError("Lambda refused the invocation")

        monkeypatch.setattr(erase_api.SelfInvoke, "__call__", refuse)
        spec = jo.stack.functions["EraseFunction"]
        status, answer = erase(jo, JO["anonymousId"], LambdaContext(function_name=spec.name, timeout_s=5))
        assert (status, answer["status"], answer["continued"]) == (202, "in_progress", False)
        status, answer = erase(jo, JO["anonymousId"])
        assert (status, answer["status"]) == (202, "done")
        assert answer["accountsRescored"] == []  # out of it already: no second write
        assert traces(jo) == []

    def test_an_erasure_interrupted_between_merged_contacts_still_finds_the_rest(
            self, jo: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
        # her anonymous visits were merged into her form's email contact, merged into her: a
        # chain. Stopped after the first partition, the rest must still be found from what is left.
        from leadscore.adapters.api import erase as erase_api

        monkeypatch.setattr(erase_api.SelfInvoke, "__call__", lambda self, payload: None)
        spec = jo.stack.functions["EraseFunction"]
        status, answer = erase(jo, JO["userId"], Countdown(function_name=spec.name, timeout_s=300, checks=2))
        assert (status, answer["status"], answer["erased"]["contact"]) == (202, "in_progress", 1)
        status, answer = erase(jo, JO["userId"])
        assert (status, answer["status"], answer["erased"]["contact"]) == (202, "done", 2)
        assert traces(jo) == []

    def test_events_still_in_the_stream_when_the_erasure_runs_do_not_bring_it_back(self, jo: Pipeline) -> None:
        # collected before the erasure, not yet aggregated: the stream still carries their images
        jo.send("track", {"userId": JO["userId"], "event": "Webinar Attended", "messageId": "jo-in-flight"})
        status, answer = erase(jo, JO["userId"])
        assert status == 202 and answer["status"] == "done"
        jo.settle()
        assert traces(jo) == []
        assert [c["contactId"] for c in jo.account(DOMAIN)["contacts"]] == ["u-kim"]

    def test_a_large_contact_is_erased_in_pages(self, pipeline: Pipeline) -> None:
        batch = [{"type": "track", "userId": "u-busy", "event": "Feature Used", "messageId": f"b-{i}"}
                 for i in range(250)]
        response = pipeline.http("POST", "/v1/batch", body={"batch": batch}, basic_user=WEB_KEY)
        assert json_body(response)["accepted"] == 250
        pipeline.settle()
        status, answer = erase(pipeline, "u-busy")
        assert (status, answer["status"], answer["erased"]["event"]) == (202, "done", 250)
        assert traces(pipeline, ("u-busy",)) == []


def _readme_example(name: str) -> Any:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    found = re.search(rf"<!-- example: {name} -->\n```json\n(.*?)\n```", text, re.S)
    assert found, name
    return json.loads(found.group(1))


class TestTheReadme:
    def test_the_erasure_example_is_what_the_route_answers(self, jo: Pipeline) -> None:
        status, answer = erase(jo, JO["email"])
        assert status == 202 and answer == _readme_example("erasure")


def test_every_answer_is_what_openapi_yaml_documents(jo: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    from leadscore.adapters.api import erase as erase_api

    from tests.integration.test_openapi import _response_schema, _schema_allows

    monkeypatch.setattr(erase_api.SelfInvoke, "__call__", lambda self, payload: None)
    spec = jo.stack.functions["EraseFunction"]
    answers = [erase(jo, JO["userId"], LambdaContext(function_name=spec.name, timeout_s=5)),  # in progress
               erase(jo, JO["userId"]), erase(jo, JO["userId"]),  # done, then nothing left
               erase(jo, "u-nobody"), erase(jo, " ")]
    assert [status for status, _ in answers] == [202, 202, 202, 404, 400]
    for status, answer in answers:
        schema = _response_schema(ROUTE, status)
        assert schema is not None and _schema_allows(schema, answer), (status, answer)


class TestNotes:
    def test_feedback_and_reassignment_notes_naming_it_are_redacted_the_rest_kept(self, jo: Pipeline) -> None:
        from tests.integration.test_assign_flow import assign
        from tests.integration.test_feedback_flow import feedback

        pipeline = jo
        pipeline.settle()  # the account is routed now
        assert [m["group"] for m in routed_messages(pipeline)] == ["maya"]
        status, answer = assign(pipeline, DOMAIN, {"sdr": "sofia", "by": "amara",
                                                   "note": f"{JO['name'].split()[0]} asked for a Spanish speaker"})
        assert status == 200, answer
        note = f"Met {JO['name']} ({JO['email']}) and Kim: budget approved"
        status, answer = feedback(pipeline, {"outcome": "accepted", "sdr": "sofia", "note": note}, DOMAIN)
        assert status == 200, answer
        status, answer = erase(pipeline, JO["userId"])
        assert status == 202 and answer["redacted"]["feedback"] == 1 and answer["redacted"]["account"] == 1
        account = pipeline.account(DOMAIN)
        (kept,) = account["feedback"]
        assert kept["note"] == "Met [erased] ([erased]) and Kim: budget approved"
        assert account["routing"]["assigned"]["note"] == "[erased] asked for a Spanish speaker"
        assert traces(pipeline) == []
        # a routed (or accepted) account keeps its state: the cycle is its SDR's, the score shows the dip
        assert pipeline.account(DOMAIN)["state"] == "accepted"


class TestRefusals:
    def test_an_unknown_contact_is_404(self, pipeline: Pipeline) -> None:
        status, answer = erase(pipeline, "u-nobody")
        assert status == 404 and answer["error"] == "unknown_contact", answer

    @pytest.mark.parametrize(("contact_id", "reason"), [
        (" ", "required"), ("x" * 257, "at most 256"), ("a\x00b", "control characters")])
    def test_bad_ids_are_400_naming_the_field(self, pipeline: Pipeline, contact_id: str, reason: str) -> None:
        status, answer = erase(pipeline, contact_id)
        assert status == 400 and answer["field"] == "contactId" and reason in answer["message"], answer
