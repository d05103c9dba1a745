"""The one check of ids across a rules file: ids given twice, and references to ids that do
not exist (rule ids, source ids and write keys, form ids, SDRs, pools, territories)."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from leadscore.rulesfiles.errors import Loc, Problem, format_loc, names


def id_problems(
    items: Iterable[tuple[Loc, str]],
    *,
    key: str | None = None,
    repeated: str | None = None,
    known: Collection[str] | None = None,
    unknown: str = "",
) -> list[Problem]:
    """The problems of `(where, value)` pairs in file order, each at `where` (+ `key`): a
    value not in `known` (`unknown`, formatted with `value` and `known`, the known ids
    sorted), else a value met before (`repeated`, formatted with `value` and `first`, where
    it was first met)."""
    problems: list[Problem] = []
    first: dict[str, Loc] = {}
    for where, value in items:
        at = (*where, key) if key is not None else where
        if known is not None and value not in known:
            problems.append((at, unknown.format(value=value, known=names(known))))
        elif repeated is not None and value in first:
            problems.append((at, repeated.format(value=value, first=format_loc(first[value]))))
        first.setdefault(value, where)
    return problems
