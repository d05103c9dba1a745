"""A free-form JSON object (traits, properties) bounded in size, what matters kept: the keys
the rules read go last."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

#: The bytes of JSON an event keeps of its traits, and of its properties: so that a stored
#: event stays under 1 KB (one write unit).
EVENT_JSON_BYTES = 600
_STRING = 200


def bounded_json_object(value: Any, budget: int = EVENT_JSON_BYTES, rank: Callable[[str], int] | None = None) -> Any:
    """`value` bounded to `budget` bytes of JSON (bounded again, it stays the same).

    Strings are cut to 200 characters, keys to 64, lists and what is nested below the
    second level dropped. If the JSON is still over `budget` bytes, keys go one by one: the
    lowest `rank` first (`rank` takes a dotted path, `company.industry`; none: all equal),
    within a rank the last first, a nested key before its object. An object ranks as its
    best key, so a known nested trait never goes with its unknown siblings.
    """
    if not value:
        return None

    def trim(node: Any, depth: int = 0) -> Any:
        if isinstance(node, str):
            return node[:_STRING]
        if isinstance(node, dict):
            return {str(k)[:64]: trim(v, depth + 1) for k, v in node.items()
                    if depth < 2 and not isinstance(v, list)}
        return node

    trimmed = trim(value)
    size = _size(trimmed)
    if size <= budget or not isinstance(trimmed, dict):
        return trimmed
    rank_of = rank or (lambda path: 0)
    # Every key once, with its rank and its `"key":value` bytes; sizes are kept exact as
    # keys go (a comma goes with a key unless it was its object's last), so one pass.
    order: list[tuple[int, int, tuple[str, ...]]] = []
    cost: dict[tuple[str, ...], int] = {}
    for key, node in trimmed.items():
        top = len(order)
        order.append((rank_of(key), top, (key,)))
        cost[(key,)] = _size(key) + 1 + _size(node)
        for child, inner in (node.items() if isinstance(node, dict) else ()):
            order.append((rank_of(f"{key}.{child}"), len(order), (key, child)))
            cost[(key, child)] = _size(child) + 1 + _size(inner)
        best = max(entry[0] for entry in order[top:])
        order[top] = (best, top, (key,))
    for _, _, path in sorted(order, key=lambda entry: (entry[0], -entry[1])):
        if size <= budget:
            break
        parent = trimmed if len(path) == 1 else trimmed.get(path[0])
        if not isinstance(parent, dict) or path[-1] not in parent:
            continue  # its object went before it
        size -= cost[path] + (1 if len(parent) > 1 else 0)
        if len(path) == 2:
            cost[path[:1]] -= cost[path] + (1 if len(parent) > 1 else 0)
        del parent[path[-1]]
    return trimmed


def json_text(value: Any) -> str:
    """Compact JSON, as an event keeps it (and as its size is counted)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _size(value: Any) -> int:
    return len(json_text(value).encode())
