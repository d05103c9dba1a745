"""The scheduled routing pass: accounts due on the routing index (DueIndex partition `ROUTE`).

Waiting accounts are routed once someone is available, accounts whose SLA ran out are
re-routed to the pool's next SDR (same cycle, a new message, `Routing SLA Breached` from the
stream), accounts that became SDR-ready a while ago without being routed (a lost event)
are routed, and accounts recycled by `not_ready` are valued again when their cooldown ends
(SDR-ready again, a new cycle, when engagement earned since crosses the threshold). The
index projects what the router needs, so the pass reads one item per account due (three for
a cooldown's end: the whole account), plus each pool's counter once per run (the router keeps
it up to date with its own writes). Never a scan.

One account at a time: the pool's counter serializes a pool anyway (parallel transactions
on it would only conflict), so at most one transaction is in flight. The
deadline (`out_of_time`) is asked before each account; what is left stays due for the
next run. A separate module from `router.py` so the route function's role, derived from
the code it imports, has no Query on the index.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from leadscore.domain.records import Account, TransactionConflict, VersionConflict
from leadscore.services.router import Router, RoutingConflict

logger = logging.getLogger(__name__)

#: An account the pass failed on is looked at again this much later (not at every run).
PARK = timedelta(hours=1)
#: ... unless AWS only asked to slow down or had a passing fault (`transient`): then the next
#: run (every 15 minutes) tries it again; an hour would hold it back for nothing.
PARK_TRANSIENT = timedelta(minutes=5)
#: The error codes of a botocore `ClientError` that say "try again shortly", not "this item is bad".
TRANSIENT_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable",
})
#: botocore's network errors (no answer from AWS at all), by class name: this module imports
#: no AWS SDK.
_TRANSIENT_CLASSES = frozenset({"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
                                "ConnectionClosedError"})


@dataclass
class PassResult:
    due: int = 0
    routed: int = 0
    rerouted: int = 0
    waiting: int = 0
    already_routed: int = 0
    requalified: int = 0  # a not_ready account SDR-ready again at the end of its cooldown
    not_due: int = 0
    skipped: int = 0
    conflicts: int = 0
    failed: int = 0  # an account the pass could not handle: logged and parked (PARK later)
    transient: int = 0  # of `failed`: throttled or a passing AWS fault, parked PARK_TRANSIENT only
    stopped_early: bool = False


def run_routing_pass(router: Router, *, out_of_time: Callable[[], bool] | None = None) -> PassResult:
    """Route every account due on the routing index by `router.now`: waiting accounts once
    someone is available, SLA re-routes, lost `Account SDR Ready`s. One account at a time (one
    transaction in flight); the deadline (`out_of_time`) is asked before each, and
    what is left stays due for the next run."""
    result = PassResult()
    for account in router.store.query_route_due(router.now):
        if out_of_time is not None and out_of_time():
            result.stopped_early = True
            break
        result.due += 1
        try:
            outcome = router.route_due(account)
        except RoutingConflict:
            result.conflicts += 1
            continue
        except Exception as error:  # one bad account must not stop the pass (the oldest first: every run)
            result.failed += 1
            if transient(error):
                result.transient += 1
                logger.warning("routing pass: %s failed (%s: %s), a passing fault; parked until %s", account.id,
                               type(error).__name__, error, router.now + PARK_TRANSIENT)
                _park(router, account, PARK_TRANSIENT)
            else:
                logger.exception("routing pass: %s failed (%s: %s); parked until %s", account.id,
                                 type(error).__name__, error, router.now + PARK)
                _park(router, account, PARK)
            continue
        setattr(result, outcome.status, getattr(result, outcome.status) + 1)
    return result


def transient(error: BaseException) -> bool:
    """Whether `error` (or what it was raised from) is AWS throttling or a passing fault:
    a botocore `ClientError` whose code is in TRANSIENT_CODES, or no answer at all."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response = getattr(current, "response", None)
        code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
        if code in TRANSIENT_CODES:
            return True
        if any(cls.__name__ in _TRANSIENT_CLASSES for cls in type(current).__mro__):
            return True
        current = current.__cause__ or current.__context__
    return False


def _park(router: Router, account: Account, delay: timedelta) -> None:
    """Push a failed account back on the index (`delay` later), so the runs until then go on
    without it; it is tried again then (fixed meanwhile, it routes)."""
    try:
        router.store.park_route_due(account, router.now + delay)
    except (TransactionConflict, VersionConflict):
        pass  # written meanwhile: no longer what failed, the index has its new time
    except Exception:
        logger.exception("routing pass: %s could not be parked; the next run tries it again", account.id)
