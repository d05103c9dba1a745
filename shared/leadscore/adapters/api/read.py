"""`GET /v1/accounts/{accountId}` and `GET /v1/contacts/{contactId}` (IAM-authorized), with
`?at=<ISO-8601>`: the item as it stood at that moment, valued then (decay arithmetic included);
and their history, `GET .../history?from=&to=&limit=&cursor=`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leadscore.adapters.api import no_route, parse_moment, path_id, refusal
from leadscore.adapters.http import HttpError, Request, json_response
from leadscore.services.errors import ServiceError
from leadscore.services.history import Window, window
from leadscore.services.read import ReadService

ACCOUNT_ROUTE = "GET /v1/accounts/{accountId}"
CONTACT_ROUTE = "GET /v1/contacts/{contactId}"
ACCOUNT_HISTORY_ROUTE = "GET /v1/accounts/{accountId}/history"
CONTACT_HISTORY_ROUTE = "GET /v1/contacts/{contactId}/history"


class ReadRoutes:
    def __init__(self, service: ReadService) -> None:
        self.service = service

    def handle(self, request: Request) -> dict[str, Any]:
        try:
            if request.route == ACCOUNT_ROUTE:
                return json_response(200, self.service.account(path_id(request, "accountId"),
                                                               at=moment_asked(request)))
            if request.route == CONTACT_ROUTE:
                return json_response(200, self.service.contact(path_id(request, "contactId"),
                                                               at=moment_asked(request)))
            if request.route == ACCOUNT_HISTORY_ROUTE:
                return json_response(200, self.service.account_history(path_id(request, "accountId"),
                                                                       window_asked(request)))
            if request.route == CONTACT_HISTORY_ROUTE:
                return json_response(200, self.service.contact_history(path_id(request, "contactId"),
                                                                       window_asked(request)))
            raise no_route(request)
        except ServiceError as problem:
            return refusal(problem).response()
        except HttpError as problem:
            return problem.response()


def moment_asked(request: Request) -> datetime | None:
    """`?at=`, None when absent or blank (now)."""
    at = request.query.get("at")
    if not at or not at.strip():
        return None
    return parse_moment(at)


def window_asked(request: Request) -> Window:
    """`?from=&to=&limit=&cursor=` of a history read; 400 naming the parameter that is wrong."""
    def moment(name: str) -> datetime | None:
        text = request.query.get(name)
        if not text or not text.strip():
            return None
        try:
            return parse_moment(text)
        except HttpError as problem:
            raise HttpError(400, f"invalid_{name}", f"{name}:{problem.message.partition(':')[2]}",
                            field=name) from None

    start, end = moment("from"), moment("to")
    return window(start.isoformat() if start else None, end.isoformat() if end else None,
                  request.query.get("limit"), request.query.get("cursor"))
