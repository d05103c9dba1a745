"""Moved to `local/eventbridge.py` (the demo and `make serve` use it too); re-exported for the tests."""

from local.eventbridge import *  # noqa: F403
from local.eventbridge import (  # noqa: F401 - private names kept for callers
    _match_field,
    _match_matcher,
    _match_object,
)
