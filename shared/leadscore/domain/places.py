"""Places as people type them: countries (ISO 3166-1), their sales regions (UN M49) and states
(ISO 3166-2), from `pycountry` with `countryinfo`'s alternative spellings (`Deutschland`,
`Russia`, `UAE`) as a second try. The scoring rules' derived `country_code` and routing's
territories read the same answers."""

from __future__ import annotations

import functools
from typing import Literal

Region = Literal["NA", "LATAM", "EMEA", "APAC"]
REGIONS: tuple[Region, ...] = ("NA", "LATAM", "EMEA", "APAC")

# What people type that neither pycountry nor countryinfo knows. Keep it tiny: anything
# more belongs in those libraries.
_COUNTRY_ALIASES = {
    "UK": "GB",
    "GREAT BRITAIN": "GB",
    "ENGLAND": "GB",
    "SCOTLAND": "GB",
    "WALES": "GB",
    "NORTHERN IRELAND": "GB",
    "US": "US",
    "USA": "US",
    "AMERICA": "US",
}


@functools.lru_cache(maxsize=2048)
def _country(text: str) -> str | None:
    code = _COUNTRY_ALIASES.get(text.replace(".", "").strip().upper())
    if code is None:
        import pycountry  # kept local: most cold starts never name a country

        try:
            code = pycountry.countries.lookup(text).alpha_2
        except LookupError:
            code = None
    if code is None:
        from countryinfo import CountryInfo, CountryNotFoundError

        try:
            code = CountryInfo(text).iso(2) or None
        except (CountryNotFoundError, ValueError):
            code = None
    if code is None:
        return None
    import pycountry

    # Only ISO 3166-1 codes leave this function (countryinfo also knows non-ISO places).
    return code.upper() if pycountry.countries.get(alpha_2=code.upper()) is not None else None


def country_code(value: object) -> str | None:
    """ISO 3166-1 alpha-2 of a country in any common spelling (`"UK"`, `"usa"`,
    `"United States"`, `"Deutschland"`); `None` when it names no country."""
    if not isinstance(value, str) or not value.strip():
        return None
    return _country(value.strip())


def _region_of(subregion: str, region: str) -> Region | None:
    if subregion == "Northern America":
        return "NA"
    if subregion == "Latin America and the Caribbean":
        return "LATAM"
    if region in ("Europe", "Africa") or subregion == "Western Asia":
        return "EMEA"
    if region in ("Asia", "Oceania"):
        return "APAC"
    return None


@functools.lru_cache(maxsize=512)
def _region(alpha2: str) -> Region | None:
    from countryinfo import CountryInfo, CountryNotFoundError

    try:
        info = CountryInfo(alpha2)
        return _region_of(info.subregion() or "", info.region() or "")
    except (CountryNotFoundError, ValueError):
        return None


def region_of(country: object) -> Region | None:
    """`NA`, `LATAM`, `EMEA` or `APAC` for a country in any spelling (UN M49 regions);
    `None` for places in none of them (Antarctica) or no country."""
    code = country_code(country)
    return _region(code) if code else None


@functools.lru_cache(maxsize=4096)
def _subdivisions(text: str, countries: frozenset[str]) -> frozenset[str]:
    import pycountry

    folded = text.casefold()
    upper = text.upper()
    found: set[str] = set()
    exact = pycountry.subdivisions.get(code=upper)
    if exact is not None:
        found.add(exact.code)
    for country in countries:
        bare = pycountry.subdivisions.get(code=f"{country}-{upper}")
        if bare is not None:
            found.add(bare.code)
    if not found:
        pool = (
            [s for c in countries for s in pycountry.subdivisions.get(country_code=c) or ()]
            if countries
            else list(pycountry.subdivisions)
        )
        found.update(s.code for s in pool if s.name.casefold() == folded)
    return frozenset(found)


def subdivision_codes(value: object, countries: frozenset[str] = frozenset()) -> frozenset[str]:
    """ISO 3166-2 codes a state value can mean: a full code (`US-CA`), a name
    (`California`), or, within `countries`, a bare code (`CA` with `{"US"}`)."""
    if not isinstance(value, str) or not value.strip():
        return frozenset()
    return _subdivisions(value.strip(), countries)
