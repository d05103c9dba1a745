"""Moved to `local/stack.py` (the demo and `make serve` use it too); re-exported for the tests."""

from local.stack import *  # noqa: F403
from local.stack import (  # noqa: F401 - private names some tests reach for
    _bus_name,
    _iso,
    _iso_epoch,
    _local_path,
    _PolicyMap,
    _StreamMapping,
    _target_input,
)
