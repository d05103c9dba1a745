"""The team lead's reads: what `GET /v1/sdrs` and a page of `GET /v1/sdrs/{sdrId}/accounts` cost.

PRODUCT "Team lead": who owns what from an index by owner, never a scan. Measured on the local
stack at two sizes (a pool of 3 SDRs after `accounts` routes, then a pool of 12 after three
times as many): the SdrsFunction's DynamoDB requests, items read and read units for one
`GET /v1/sdrs` (divided by the SDRs listed) and for one page of 25 of an SDR's book. The
accounts are routed as the route function does (one invocation each) and the stream keeps the
SDRs' books (the aggregate function), so the list reads what it reads in production.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.pipeline import START
from bench.routing import route_rule_paused, routing_config, sdr_ready_event, seed_ready_accounts, team
from bench.stack import metered_stack

LIST_ROUTE = "GET /v1/sdrs"
BOOK_ROUTE = "GET /v1/sdrs/{sdrId}/accounts"


@dataclass
class TeamFigures:
    team_size: int
    routed: int
    listed: int
    open_listed: int  # the accounts the list says are open (all of them: none accepted)
    book_accounts: int  # accounts on the book page read
    counts: dict[str, float] = field(default_factory=dict)  # SdrsFunction, one GET /v1/sdrs
    book: dict[str, float] = field(default_factory=dict)  # SdrsFunction, one book page

    def per_sdr(self, key: str) -> float:
        return float(self.counts.get(key, 0)) / self.listed if self.listed else float("nan")


def _event(route: str, sdr_id: str | None = None, query: dict[str, str] | None = None) -> dict[str, Any]:
    from local.apigw import http_event, iam_authorizer

    path = route.split(" ", 1)[1].replace("{sdrId}", sdr_id or "")
    return http_event("GET", path, route_key=route, query=query, now=START,
                      path_parameters={"sdrId": sdr_id} if sdr_id else None, authorizer=iam_authorizer(user="bench"))


def run_team(team_size: int, accounts: int) -> TeamFigures:
    import json

    with metered_stack() as bench, routing_config(team(team_size)), route_rule_paused(bench):
        ids = seed_ready_accounts(bench, accounts)
        routed = sum(bench.stack.invoke("RouteFunction", sdr_ready_event(a))["status"] == "routed" for a in ids)
        bench.pump()  # the stream: routed messages, and the SDRs' books
        with bench.meter.measuring("list"):
            listed = bench.stack.invoke("SdrsFunction", _event(LIST_ROUTE))
        with bench.meter.measuring("book"):
            page = bench.stack.invoke("SdrsFunction", _event(BOOK_ROUTE, "sdr00", {"limit": "25"}))
        assert listed["statusCode"] == 200 and page["statusCode"] == 200, (listed, page)
        views = json.loads(listed["body"])["sdrs"]
        return TeamFigures(team_size=team_size, routed=routed, listed=len(views),
                           open_listed=sum(v["open"] for v in views),
                           book_accounts=len(json.loads(page["body"])["accounts"]),
                           counts=dict(bench.meter.totals("list", "SdrsFunction")),
                           book=dict(bench.meter.totals("book", "SdrsFunction")))
