"""The CRM's owner first, on the local stack of template.yaml: a group trait `owner` sent by
the trusted CRM sync (sources.yaml `trusted: true`) routes the account to that SDR before
territories, without a counter step; the same trait from the website (a browser source) is
dropped at collection; an owner out of office leaves the account to the pool, saying why.
Why each account went where it went: on `GET /v1/accounts/{id}` (`routing.decision`), on
`Account Routed`, in the routed message and in `make inbox`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from local import inbox
from tests.integration.test_route_flow import qualify, routed_messages

if TYPE_CHECKING:
    from tests.integration.conftest import Pipeline

CRM_KEY = "wk_demo_crm"


def name_owner(pipeline: Pipeline, domain: str, owner: str, key: str, n: int = 0) -> None:
    """The owner of `domain` in a group call (as a CRM sync sends it), for the user `qualify` makes."""
    pipeline.send("group", {"userId": f"u-{n}-{domain}", "groupId": domain, "messageId": f"owner-{domain}-{key}",
                            "traits": {"website": f"https://www.{domain}", "owner": owner}}, key=key)
    pipeline.settle()


def decision(pipeline: Pipeline, domain: str) -> dict[str, Any]:
    routing = pipeline.account(domain)["routing"]
    assert isinstance(routing.get("decision"), dict), routing
    return routing["decision"]


class TestCrmOwner:
    def test_a_trusted_owner_gets_the_account_before_territories_with_no_counter_step(
            self, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
        # Given the CRM sync naming ben (of the EMEA pool, by his email) the owner of a US account
        name_owner(pipeline, "acmetech.io", "BEN@example.com", CRM_KEY)
        qualify(pipeline, 0, "acmetech.io")
        pipeline.settle()
        # Then it went to ben, not to the NA territory's pool
        account = pipeline.account("acmetech.io")
        assert account["sdr"]["id"] == "ben"
        assert decision(pipeline, "acmetech.io") == {
            "by": "crm_owner", "territory": "na", "pool": "na", "skipped": [],
            "crmOwner": {"owner": "ben", "routed": True},
            "text": "ben: the account's owner in the CRM (territory na, pool na)"}
        # and the NA pool's turn did not move: the next US account goes to its first SDR
        qualify(pipeline, 1, "globex.io")
        pipeline.settle()
        assert pipeline.account("globex.io")["sdr"]["id"] == "maya"
        messages = {m["body"]["accountId"]: m for m in routed_messages(pipeline)}
        assert messages["acmetech.io"]["group"] == "ben"
        assert messages["acmetech.io"]["body"]["decision"]["by"] == "crm_owner"
        routed = {e["detail"]["accountId"]: e["detail"] for e in pipeline.bus("Account Routed")}
        assert routed["acmetech.io"]["decision"] == decision(pipeline, "acmetech.io")
        assert routed["globex.io"]["decision"]["by"] == "round_robin"
        # and make inbox prints why
        capsys.readouterr()
        now = pipeline.now.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert inbox.main(["--sdr", "ben", "--now", now]) == 0
        assert "   routed: ben: the account's owner in the CRM (territory na, pool na)" in capsys.readouterr().out

    def test_the_same_trait_from_a_browser_source_is_ignored(
            self, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
        name_owner(pipeline, "acmetech.io", "ben", "wk_demo_website")
        qualify(pipeline, 0, "acmetech.io")
        pipeline.settle()
        assert pipeline.account("acmetech.io")["sdr"]["id"] == "maya"
        got = decision(pipeline, "acmetech.io")
        assert got["by"] == "round_robin" and "crmOwner" not in got
        stored = [i for i in pipeline.table_items() if i.get("k") == "E" and i.get("ty") == "group"]
        assert stored and all("owner" not in (i.get("tr") or "") for i in stored)
        capsys.readouterr()
        assert inbox.main(["--sdr", "maya", "--now", pipeline.now.strftime("%Y-%m-%dT%H:%M:%SZ")]) == 0
        assert "   routed: maya: the pool's weighted round-robin (territory na, pool na)\n" in capsys.readouterr().out

    def test_an_owner_out_of_office_leaves_it_to_the_pool_and_says_why(
            self, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
        # Given ana (out of office 2026-12-21 to 2027-01-01 in routing.yaml) the CRM owner
        pipeline.set_clock(datetime(2026, 12, 22, 10, 0, tzinfo=UTC))
        name_owner(pipeline, "acmetech.io", "ana", CRM_KEY)
        qualify(pipeline, 0, "acmetech.io")
        pipeline.settle()
        # Then the NA pool's round-robin has it, and the account says why not ana
        assert pipeline.account("acmetech.io")["sdr"]["id"] == "maya"
        got = decision(pipeline, "acmetech.io")
        assert got["by"] == "round_robin"
        assert got["crmOwner"] == {"owner": "ana", "routed": False, "reason": "out_of_office", "until": "2027-01-01"}
        assert got["text"] == ("maya: the pool's weighted round-robin (territory na, pool na); CRM owner ana out of "
                               "office until 2027-01-01")
        capsys.readouterr()
        assert inbox.main(["--sdr", "maya", "--now", pipeline.now.strftime("%Y-%m-%dT%H:%M:%SZ")]) == 0
        assert "CRM owner ana out of office until 2027-01-01" in capsys.readouterr().out


def test_an_sdr_of_no_pool_is_read_with_her_pause_in_one_request(pipeline: Pipeline) -> None:
    """What the router reads for a CRM owner who is a lead of no pool: her day count and her
    own record's pause (no pool record copies it), in one BatchGetItem."""
    from datetime import date

    from leadscore.adapters.storage import Store
    from leadscore.domain.records import SdrPause

    store = Store(pipeline.stack.name_of("Table"), client=pipeline.stack.client("dynamodb"))
    day = date(2026, 11, 2)
    pauses: dict[str, str | None] = {}
    assert store.load_pool_state(None, [("lee", day)], pauses=pauses) == (None, {("lee", day): 0})
    assert pauses == {}
    store.save_pause("lee", SdrPause(until="2026-11-09T09:00:00Z", reason="leave", at="2026-11-02T09:00:00Z"),
                     pools=[], expected_version=0, at="2026-11-02T09:00:00Z")
    assert store.load_pool_state(None, [("lee", day)], pauses=pauses) == (None, {("lee", day): 0})
    assert pauses == {"lee": "2026-11-09T09:00:00Z"}
