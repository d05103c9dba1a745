"""`DELETE /v1/contacts/{contactId}` (IAM-authorized): erase a contact (`leadscore.services.erase`),
answered `202` with what was erased and whether it is `done` or `in_progress`.

An erasure that runs out of time (a contact with many thousands of events) hands the rest to
a continuation: an asynchronous invocation of the erase function itself (`SelfInvoke`) whose
payload names the contact key and the phase to resume at. The payload lives only in Lambda's
invocation queue, never in a table, a queue of ours or a log; should the continuation fail
for good, the contact is already suppressed and the same DELETE again finishes the erasure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from leadscore.adapters.api import no_route, path_id, refusal
from leadscore.adapters.clients import LazyClient
from leadscore.adapters.http import HttpError, Request, json_response
from leadscore.engine.identity import key_digest
from leadscore.services.erase import PHASES, EraseService, Erasure
from leadscore.services.errors import ServiceError

ROUTE = "DELETE /v1/contacts/{contactId}"
#: What marks an invocation as an erasure's continuation (not an HTTP request).
CONTINUATION = "leadscore/erase-continuation"

logger = logging.getLogger(__name__)


class SelfInvoke:
    """Hands an erasure's rest to the erase function itself: one asynchronous Invoke
    (`InvocationType=Event`) of `function`, the running function's name (unqualified: the
    version API Gateway calls, the one ARN its policy names)."""

    client = LazyClient("lambda")

    def __init__(self, function: str, client: Any = None) -> None:
        self.function = function
        self._client = client

    def __call__(self, payload: Mapping[str, Any]) -> None:
        import json  # cold start: only an erasure that runs out of time continues

        self.client.invoke(FunctionName=self.function, InvocationType="Event", Payload=json.dumps(payload).encode())


def continuation_payload(erasure: Erasure) -> dict[str, Any]:
    return {"kind": CONTINUATION, "contactKey": erasure.contact_key, "phase": erasure.phase}


def is_continuation(event: Mapping[str, Any]) -> bool:
    return isinstance(event, Mapping) and event.get("kind") == CONTINUATION


def answer(erasure: Erasure, *, continued: bool) -> dict[str, Any]:
    """The 202's body: what this call erased, and whether the erasure is done. In progress:
    `continued` says whether the rest was handed on (else the same request again goes on)."""
    body = erasure.as_json()
    if erasure.status == "in_progress":
        body["continued"] = continued
    return body


class EraseRoutes:
    def __init__(self, service: EraseService, *, out_of_time: Callable[[], bool] = lambda: False,
                 continuation: Callable[[Mapping[str, Any]], None] | None = None) -> None:
        self.service = service
        self.out_of_time = out_of_time
        self.continuation = continuation

    def handle(self, request: Request) -> dict[str, Any]:
        try:
            if request.route != ROUTE:
                raise no_route(request)
            erasure = self.service.erase(path_id(request, "contactId"), out_of_time=self.out_of_time)
            return json_response(202, answer(erasure, continued=self._continue(erasure)))
        except ServiceError as problem:
            return refusal(problem).response()
        except HttpError as problem:
            return problem.response()

    def resume(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A continuation's invocation: go on from its phase, and hand on again if need be.
        Its answer goes nowhere (an asynchronous invocation); it is what a test reads."""
        key, phase = event.get("contactKey"), event.get("phase")
        if not isinstance(key, str) or not key or phase not in PHASES:
            raise ValueError("an erasure continuation names a contact key and a phase")
        erasure = self.service.resume(key, str(phase), out_of_time=self.out_of_time)
        return answer(erasure, continued=self._continue(erasure))

    def _continue(self, erasure: Erasure) -> bool:
        if erasure.status != "in_progress" or self.continuation is None:
            return False
        try:
            self.continuation(continuation_payload(erasure))
        except Exception as error:  # noqa: BLE001 - the contact is suppressed; the same request again goes on
            logger.error("the erasure of %s could not be continued (%s); repeat the request",
                         key_digest(erasure.contact_key or ""), type(error).__name__)
            return False
        return True
