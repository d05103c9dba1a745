"""Moved to `local/slack_format.py` (the local webhook receiver checks with it too); re-exported."""

from local.slack_format import *  # noqa: F403
from local.slack_format import problems  # noqa: F401
