"""The team lead's routes (IAM-authorized): `GET /v1/sdrs`, `GET /v1/sdrs/{sdrId}/accounts`
(`?state=`, `?limit=`, `?cursor=`) and `PUT /v1/sdrs/{sdrId}/availability`, read at the edge,
then `leadscore.services.team`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from leadscore.adapters.api import has_surrogate, json_object, no_route, parse_moment, path_id, refusal
from leadscore.adapters.http import HttpError, Request, json_response
from leadscore.domain.records import utc_text
from leadscore.services.errors import ServiceError
from leadscore.services.team import (
    BOOK_STATES,
    MAX_PAUSE,
    MAX_REASON,
    PAGE_DEFAULT,
    PAGE_MAX,
    Availability,
    TeamService,
)

LIST_ROUTE = "GET /v1/sdrs"
BOOK_ROUTE = "GET /v1/sdrs/{sdrId}/accounts"
AVAILABILITY_ROUTE = "PUT /v1/sdrs/{sdrId}/availability"
MAX_BODY = 4 * 1024


def availability_from_json(data: Mapping[str, Any], now: datetime) -> Availability:
    """`{"available": false, "until": ISO (optional: until returned), "reason": "..."}` or
    `{"available": true}`. Strict JSON types; unknown keys refused; HttpError 400 naming the
    field."""
    def refuse(field: str, reason: str) -> HttpError:
        return HttpError(400, "invalid_availability", f"{field}: {reason}", field=field)

    available = data.get("available")
    if available is None:
        raise refuse("available", "required: true (back) or false (paused)")
    if not isinstance(available, bool):
        raise refuse("available", "must be true or false")
    until_text, reason = data.get("until"), data.get("reason")
    until: datetime | None = None
    if available and until_text is not None:
        raise refuse("until", "only with available: false (a pause's end)")
    if available and reason is not None:
        raise refuse("reason", "only with available: false (why the SDR is paused)")
    if until_text is not None:
        if not isinstance(until_text, str):
            raise refuse("until", "must be an ISO-8601 time with a zone, e.g. 2026-12-10T09:00:00Z")
        try:
            until = parse_moment(until_text)
        except HttpError as problem:
            raise refuse("until", problem.message.removeprefix("at: ")) from None
        if until <= now:
            raise refuse("until", f"{utc_text(until)} is in the past (now {utc_text(now)}); give a later time")
        if until > now + MAX_PAUSE:
            raise refuse("until", f"at most {MAX_PAUSE.days} days ahead; a longer absence belongs in "
                                  "routing.yaml (out_of_office)")
    if reason is not None:
        if not isinstance(reason, str):
            raise refuse("reason", "must be a string or null")
        if len(reason) > MAX_REASON:
            raise refuse("reason", f"must be at most {MAX_REASON} characters")
        if has_surrogate(reason):
            raise refuse("reason", "must be Unicode text: a lone surrogate (such as \\ud800) is not")
    unknown = [key for key in data if key not in ("available", "until", "reason")]
    if unknown:
        raise refuse(str(unknown[0])[:64], "unknown field (available, until, reason)")
    return Availability(available=available, until=until, reason=reason)


def book_query(query: Mapping[str, str]) -> dict[str, Any]:
    """`?state=` (one of BOOK_STATES), `?limit=` (1 to PAGE_MAX), `?cursor=`, as the book takes
    them; HttpError 400 naming the first one in error."""
    state = query.get("state") or None
    if state is not None and state not in BOOK_STATES:
        raise HttpError(400, "invalid_state", f"state: one of {', '.join(BOOK_STATES)}", field="state")
    limit_text = query.get("limit")
    limit = PAGE_DEFAULT
    if limit_text is not None:
        if not (limit_text.isascii() and limit_text.isdigit() and 1 <= int(limit_text) <= PAGE_MAX):
            raise HttpError(400, "invalid_limit", f"limit: a whole number from 1 to {PAGE_MAX}", field="limit")
        limit = int(limit_text)
    return {"state": state, "limit": limit, "cursor": query.get("cursor") or None}


class TeamRoutes:
    def __init__(self, service: TeamService) -> None:
        self.service = service

    def handle(self, request: Request) -> dict[str, Any]:
        try:
            if request.route == LIST_ROUTE:
                return json_response(200, self.service.list_sdrs())
            if request.route == BOOK_ROUTE:
                sdr = self.service.sdr(path_id(request, "sdrId"))
                return json_response(200, self.service.book(sdr, **book_query(request.query)))
            if request.route == AVAILABILITY_ROUTE:
                sdr = self.service.sdr(path_id(request, "sdrId"))
                now = self.service.clock()
                body = availability_from_json(json_object(request.body, MAX_BODY, "invalid_availability"), now)
                return json_response(200, self.service.set_availability(sdr, body, caller=request.caller, now=now))
            raise no_route(request)
        except ServiceError as problem:
            return refusal(problem).response()
        except HttpError as problem:
            return problem.response()
