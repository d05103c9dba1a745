"""What a use case refuses, by kind; the HTTP adapter (`leadscore.adapters.api`) turns each
kind into its status code and the error envelope.

`code` is the refusal's name (the answer's `error`), `message` says why to a person, and
`details` what it concerns (`field`, `owner`, `state`...), passed on as they are.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class NotFound(ServiceError):
    """What the request is about (an account, a contact, an SDR of the path) does not exist."""


class Invalid(ServiceError):
    """A value the request gives cannot be used (an SDR it names is unknown, a cursor garbled)."""


class NotAllowed(ServiceError):
    """Who the request says acts may not do this (only a lead reassigns)."""


class Conflict(ServiceError):
    """The request does not fit the state things are in now."""


class Busy(ServiceError):
    """Not done now (the item kept changing, the bus refused): the same request again may do it."""
