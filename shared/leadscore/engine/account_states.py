"""The account state machine (pure): below_threshold, sdr_ready, routed, recycled, excluded,
disqualified and accepted, with hysteresis, exclusions and the cooldown after `not_ready`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leadscore.rulesfiles.scoring import ScoringConfig


def exclusion_of(scoring: ScoringConfig, account_id: str, traits: Mapping[str, Any]) -> str | None:
    """Why an account is never routed (customer, open opportunity, own domain...), or None."""
    rules = scoring.account.exclusions
    lifecycle = str(traits.get("lifecycle") or "").strip().lower()
    if lifecycle and lifecycle in {str(x).lower() for x in rules.lifecycles}:
        return lifecycle
    if account_id.lower() in {str(d).lower() for d in rules.own_domains}:
        return "own_domain"
    return None


@dataclass
class Transition:
    state: str
    cycle: int
    reason: str | None = None


def next_state(scoring: ScoringConfig, *, state: str, cycle: int, score: float, excluded: str | None,
               cooldown_until: str | None = None, baseline: float | None = None, now: datetime) -> Transition:
    """The account state machine with hysteresis.

    below_threshold/recycled --score >= sdr_ready--> sdr_ready (a new cycle)
    sdr_ready --score < requalify_below--> recycled
    Excluded accounts are scored but never SDR-ready; routed, disqualified and accepted are
    left to people (sales feedback) and the SLA, not to the score: once routed, the cycle is
    its SDR's, and a dip shows in the score, never by taking the account from her. An
    `sdr_ready` account (waiting for an SDR) is nobody's yet, so a dip still recycles it
    (recycled by the score: no cooldown, no baseline; it qualifies again on its whole score).
    After `not_ready` feedback the account is held until `cooldown_until`, and the engagement
    it had then (`baseline`) no longer counts toward the threshold: it qualifies again on
    `score - baseline`.
    """
    thresholds = scoring.account.thresholds
    if state == "disqualified":
        return Transition(state, cycle)
    if excluded:
        return Transition("excluded", cycle, excluded)
    if state == "excluded":
        state = "below_threshold"  # the exclusion was lifted: earn your way in like anyone
    if state in ("below_threshold", "recycled"):
        cooling = cooldown_until is not None and _before(now, cooldown_until)
        if score - (baseline or 0.0) >= thresholds.sdr_ready and not cooling:
            return Transition("sdr_ready", cycle + 1, "crossed sdr_ready")
        return Transition(state, cycle)
    if state == "sdr_ready" and score < thresholds.requalify_below:
        return Transition("recycled", cycle, "fell below requalify_below")
    return Transition(state, cycle)


def _before(now: datetime, moment: str) -> bool:
    """Whether `now` is before an ISO-8601 moment as stored (`Z` or an offset)."""
    try:
        until = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return False
    return now < until if until.tzinfo is not None else now.replace(tzinfo=None) < until
