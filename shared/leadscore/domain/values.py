"""How rule values and trait values compare and show (pure; used by the rules files and the engine)."""

from __future__ import annotations

import math
import re
from typing import Any

#: a Slack member id: U (users) or W (Enterprise Grid users), then capitals and digits
SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,31}")


def match_keys(value: Any) -> tuple[tuple[str, Any], ...]:
    """The keys a value compares equal by, across the spellings trackers send: "200" and 200,
    "TRUE" and true, " Software" and "software". A trait matches a rule value when they share
    a key; the rule's own value is kept by its first key (`match_key`)."""
    if isinstance(value, bool):
        return (("b", value), ("s", "true" if value else "false"))
    if isinstance(value, int | float):
        return (("n", float(value)), ("s", number_text(value)))
    text = str(value).strip().casefold()
    keys: list[tuple[str, Any]] = [("s", text)]
    x = as_number(text)
    if x is not None:
        keys.append(("n", x))
    if text in ("true", "false"):
        keys.append(("b", text == "true"))
    return tuple(keys)


def match_key(value: Any) -> tuple[str, Any]:
    """The one key a rule's value (`equals`, `in`) is kept by: its canonical spelling."""
    return match_keys(value)[0]


def as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        x = float(value)
    elif isinstance(value, str):
        text = value.strip()
        # Most trait strings are words: skip the costly failed float() for them.
        if not text or not (text[0].isdigit() or text[0] in "+-."):
            return None
        try:
            x = float(text.replace(",", ""))
        except ValueError:
            return None
    else:
        return None
    return x if math.isfinite(x) else None


def number_text(value: float | None) -> str:
    """A number as explanations and error messages show it: 20, not 20.0; 2.5 as is."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def text_key(value: object) -> str | None:
    """A word as the rules compare it: trimmed, case-folded (`" Software"` equals `software`)."""
    if not isinstance(value, str):
        return None
    text = value.strip().casefold()
    return text or None
