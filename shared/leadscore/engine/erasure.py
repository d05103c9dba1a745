"""Erasure's rules (pure): which ids an event names, and how free text that names a person is
redacted. The erasure itself (what is read, deleted, rescored) is services/erase.py; the
suppression check at collection is services/collect.py."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable

from leadscore.domain.events import TrackingEvent

#: What replaces a name, an address or an id in a note.
REDACTED = "[erased]"
#: Id kinds of a contact key (`u:<userId>`, `e:<email>`, `a:<anonymousId>`).
ID_KINDS = ("u", "e", "a")


def ids_of(event: TrackingEvent) -> list[str]:
    """Every contact key an event names: its own, its userId, email and anonymousId, and an
    alias's previousId (as either kind). A later event naming any erased one is dropped."""
    keys = [event.contact_key]
    if event.user_id:
        keys.append(f"u:{event.user_id}")
    if event.email:
        keys.append(f"e:{event.email}")
    if event.anonymous_id:
        keys.append(f"a:{event.anonymous_id}")
    if event.type == "alias" and event.previous_id:
        keys += [f"a:{event.previous_id}", f"u:{event.previous_id}"]
    return list(dict.fromkeys(keys))


def id_value(contact_key: str) -> str:
    """The id a contact key holds (`u:jo` -> `jo`)."""
    kind, separator, value = contact_key.partition(":")
    return value if separator and kind in ID_KINDS else contact_key


def name_terms(name: str | None) -> list[str]:
    """A person's name and each of its words of two letters or more (a note says "Jo", not "Jo Park")."""
    if not name or not name.strip():
        return []
    words = [word for word in re.split(r"\s+", name.strip()) if len(word) >= 2]
    return list(dict.fromkeys([name.strip(), *words]))


def _pattern(terms: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern of every term (and its JSON-escaped spelling), longest
    first, each standing alone: `jo` matches in "call jo" and `"jo"`, not in "joined"."""
    spellings = set()
    for term in terms:
        term = term.strip()
        if term:
            spellings |= {term, json.dumps(term)[1:-1], json.dumps(term, ensure_ascii=False)[1:-1]}
    if not spellings:
        return None
    alternatives = "|".join(re.escape(s) for s in sorted(spellings, key=lambda s: (-len(s), s)))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def redactor(terms: Iterable[str]) -> Callable[[str], str]:
    """A function that replaces each of `terms` in a text with `REDACTED`, keeping the rest."""
    pattern = _pattern(terms)
    if pattern is None:
        return lambda text: text
    return lambda text: pattern.sub(REDACTED, text)


def finder(terms: Iterable[str]) -> Callable[[str], bool]:
    """A function that says whether a text holds one of `terms` (as `redactor` would find it)."""
    pattern = _pattern(terms)
    if pattern is None:
        return lambda text: False
    return lambda text: pattern.search(text) is not None
