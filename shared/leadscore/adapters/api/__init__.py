"""The IAM-authorized routes' HTTP side, one module per function (read, feedback, team, assign):
each reads the request (path, query, body) into the plain values its use case
(`leadscore.services`) takes, calls it, and answers: its result as JSON, a refusal
(`leadscore.services.errors`) as the error envelope with the status its kind means.

Routing is by the event's `routeKey`, as in the ingestion API (docs/DESIGN.md, "HTTP routing:
resolver or hand-written").
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import unquote

from leadscore.adapters.http import HttpError, Request, parse_json
from leadscore.services.errors import Busy, Conflict, Invalid, NotAllowed, NotFound, ServiceError

#: the status each kind of refusal answers with
STATUS: dict[type[ServiceError], int] = {Invalid: 400, NotAllowed: 403, NotFound: 404, Conflict: 409, Busy: 503}


def refusal(problem: ServiceError) -> HttpError:
    status = next(status for kind, status in STATUS.items() if isinstance(problem, kind))
    return HttpError(status, problem.code, problem.message, **problem.details)


def no_route(request: Request) -> HttpError:
    return HttpError(404, "not_found", f"no route {request.route}")


def path_id(request: Request, name: str) -> str:
    """A path parameter, percent-decoded (API Gateway passes it as the client encoded it)."""
    return unquote(request.path_parameters.get(name, ""))


def json_object(raw: bytes, limit: int, error: str) -> dict[str, Any]:
    """The body as a JSON object: 413 over `limit` bytes, 400 `invalid_json` (http.parse_json),
    400 `error` naming `body` when it is JSON but not an object."""
    if len(raw) > limit:
        raise HttpError(413, "payload_too_large", f"the body is over {limit} bytes", field="body")
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise HttpError(400, error, "body: send a JSON object", field="body")
    return data


def has_surrogate(text: str) -> bool:
    """A lone surrogate (`"\\ud800"` is valid JSON) cannot be stored as UTF-8 text."""
    return any("\ud800" <= char <= "\udfff" for char in text)


# `?at=` moments the read API values: event times are epoch milliseconds, so nothing
# happened before 1970; the last year datetime can hold is left out, so no offset or
# window arithmetic near its end can overflow.
EARLIEST_MOMENT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_MOMENT = datetime(9999, 1, 1, tzinfo=UTC)
MAX_MOMENT_LENGTH = 64


def _invalid_at(message: str) -> HttpError:
    return HttpError(400, "invalid_at", f"at: {message}", field="at")


def parse_moment(text: str) -> datetime:
    """An ISO-8601 moment with a zone (`Z` or an offset), as aware UTC; HttpError 400 naming
    `at` for anything else: garbage, a date alone, no zone, an offset that takes it out of
    datetime's range, a moment before 1970 or after `LATEST_MOMENT`."""
    example = "e.g. 2026-11-25T10:00:00Z"
    shown = repr(text[:MAX_MOMENT_LENGTH]) + ("..." if len(text) > MAX_MOMENT_LENGTH else "")
    if len(text) > MAX_MOMENT_LENGTH or not text.isprintable():
        raise _invalid_at(f"{shown} is not an ISO-8601 time, {example}")
    text = text.strip()
    if "T" not in text.upper() and " " not in text:
        try:
            date.fromisoformat(text)
        except ValueError:
            raise _invalid_at(f"{shown} is not an ISO-8601 time, {example}") from None
        raise _invalid_at(f"{shown} is a date alone; give a time and a zone, {example}")
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text)
    except ValueError:
        raise _invalid_at(f"{shown} is not an ISO-8601 time, {example}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise _invalid_at(f"{shown} has no time zone; give one, {example}")
    try:
        moment = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise _invalid_at(f"{shown} is out of range once its offset is applied") from None
    if not EARLIEST_MOMENT <= moment < LATEST_MOMENT:
        raise _invalid_at(f"{shown} is out of range; give a time from {EARLIEST_MOMENT.isoformat()} "
                          f"to before {LATEST_MOMENT.isoformat()}")
    return moment
