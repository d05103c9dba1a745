"""Moved to `local/apigw.py` (the demo and `make serve` use it too); re-exported for the tests."""

from local.apigw import *  # noqa: F403
from local.apigw import _query_string  # noqa: F401 - private name kept for callers
