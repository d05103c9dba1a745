"""`config/sources.yaml`: who may post events (each tracker's write key), and the HTML forms.

Validated as the other rules files are (`model.py`): unknown keys and loose types are
errors; ids and write keys given twice, and forms of unknown or trusted sources, too.
"""

from __future__ import annotations

import re
from dataclasses import field
from functools import cached_property
from typing import Annotated, Literal

from leadscore.rulesfiles.checks import id_problems
from leadscore.rulesfiles.errors import Problem
from leadscore.rulesfiles.model import Limits, NonEmpty, RuleId, RulesObject

_ORIGIN = re.compile(r"^https?://[^/\s?#]+$")
_REDIRECT = re.compile(r"^(https?://[^\s]+|/[^\s]*)$")


class Source(RulesObject):
    """A tracker that posts events; its write key is the HTTP Basic username."""

    id: RuleId
    name: str | None = None
    write_key: NonEmpty
    cors_origins: list[NonEmpty] = field(default_factory=list)
    trusted: bool = False
    """A server-side source (a CRM sync) whose group calls may set the account's CRM `owner`
    (routing gives the account to that SDR first); collection drops `owner` from the group
    calls of every other source. Its write key stays on a server: no `cors_origins`."""

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if ":" in self.write_key or any(c.isspace() for c in self.write_key):
            problems.append((("write_key",), "must not contain ':' or spaces (it is an HTTP Basic username)"))
        if self.trusted and self.cors_origins:
            problems.append((("trusted",), "a trusted source's write key stays on a server: a browser source "
                                           "(cors_origins) cannot be trusted"))
        for i, origin in enumerate(self.cors_origins):
            if origin != "*" and not _ORIGIN.match(origin):
                problems.append(
                    (
                        ("cors_origins", i),
                        f"{origin!r} is not an origin like 'https://app.example.com' (no path)",
                    )
                )
        return problems


class BusSource(RulesObject):
    """EventBridge `source` (exact, or a prefix ending in `*`) -> source id."""

    match: NonEmpty
    source: RuleId

    def matches(self, eventbridge_source: str) -> bool:
        if self.match.endswith("*"):
            return eventbridge_source.startswith(self.match[:-1])
        return eventbridge_source == self.match


class Form(RulesObject):
    """An HTML form posting to `/v1/forms/{id}`."""

    id: RuleId
    name: str | None = None
    stage: Literal["top", "middle", "bottom"]
    source: RuleId
    redirect: str | None = None

    def problems(self) -> list[Problem]:
        if self.redirect is not None and not _REDIRECT.match(self.redirect):
            return [(("redirect",), f"{self.redirect!r} is not an http(s) URL or an absolute path")]
        return []


class SourcesConfig(RulesObject):
    """`sources.yaml`: who may post events, and the forms."""

    version: Literal[1]
    sources: Annotated[list[Source], Limits(min_length=1)]
    bus_sources: list[BusSource] = field(default_factory=list)
    forms: list[Form] = field(default_factory=list)

    def problems(self) -> list[Problem]:
        trusted = {s.id: s.trusted for s in reversed(self.sources)}  # by the first of an id
        known = trusted.keys()
        forms = [(("forms", i), f.source) for i, f in enumerate(self.forms)]
        sources = [
            *id_problems(((("sources", i), s.id) for i, s in enumerate(self.sources)), key="id",
                         repeated="duplicate source id {value!r} (first at {first})"),
            *id_problems(((("sources", i), s.write_key) for i, s in enumerate(self.sources)), key="write_key",
                         repeated="write key already used by {first}"),
        ]
        form_problems = [
            *id_problems(((("forms", i), f.id) for i, f in enumerate(self.forms)), key="id",
                         repeated="duplicate form id {value!r} (first at {first})"),
            *id_problems(forms, key="source", known=known, unknown="unknown source {value!r} (known: {known})"),
            *(((*where, "source"), f"{source!r} is trusted: a form posts from browsers, its source cannot be "
                                   "trusted") for where, source in forms if trusted.get(source)),
        ]
        return [
            *_by_item(sources),
            *id_problems(((("bus_sources", i), b.source) for i, b in enumerate(self.bus_sources)), key="source",
                         known=known, unknown="unknown source {value!r} (known: {known})"),
            *_by_item(form_problems),
        ]

    @cached_property
    def _by_key(self) -> dict[str, Source]:
        return {s.write_key: s for s in self.sources}

    @cached_property
    def _by_id(self) -> dict[str, Source]:
        return {s.id: s for s in self.sources}

    @cached_property
    def _forms(self) -> dict[str, Form]:
        return {f.id: f for f in self.forms}

    def by_write_key(self, key: str | None) -> Source | None:
        return self._by_key.get(key) if key else None

    def source(self, source_id: str) -> Source | None:
        return self._by_id.get(source_id)

    def trusted(self, source_id: str) -> bool:
        """Whether events of `source_id` may set an account's CRM `owner` (`bus:<x>`: never)."""
        source = self._by_id.get(source_id)
        return source is not None and source.trusted

    def form(self, form_id: str) -> Form | None:
        return self._forms.get(form_id)

    def bus_source(self, eventbridge_source: str) -> str:
        """The source id for an EventBridge `source`; unmapped ones stay visible as `bus:<source>`."""
        for b in self.bus_sources:
            if b.matches(eventbridge_source):
                return b.source
        return "bus:" + eventbridge_source


def _by_item(problems: list[Problem]) -> list[Problem]:
    """Problems of one section in file order: by item, then as found."""
    return sorted(problems, key=lambda problem: problem[0][1])
