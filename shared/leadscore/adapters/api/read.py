"""`GET /v1/accounts/{accountId}` and `GET /v1/contacts/{contactId}` (IAM-authorized), with
`?at=<ISO-8601>`: the item valued as of that moment (decay arithmetic included)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leadscore.adapters.api import no_route, parse_moment, path_id, refusal
from leadscore.adapters.http import HttpError, Request, json_response
from leadscore.services.errors import ServiceError
from leadscore.services.read import ReadService

ACCOUNT_ROUTE = "GET /v1/accounts/{accountId}"
CONTACT_ROUTE = "GET /v1/contacts/{contactId}"


class ReadRoutes:
    def __init__(self, service: ReadService) -> None:
        self.service = service

    def handle(self, request: Request) -> dict[str, Any]:
        try:
            now = moment_asked(request)
            if request.route == ACCOUNT_ROUTE:
                return json_response(200, self.service.account(path_id(request, "accountId"), now))
            if request.route == CONTACT_ROUTE:
                return json_response(200, self.service.contact(path_id(request, "contactId"), now))
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
