"""The rules engine: fit on traits, engagement on events, caps, limits, buckets, decay.

Pure and deterministic: no AWS, no clock (event times come from the events, `now` is a
parameter), configuration in, plain data out.

A contact's engagement is kept as one `RuleLedger` per rule rather than as a list of
events, so a contact item stays small however long the contact lives and scoring an
event never needs the contact's history:
- touches of decaying categories are kept one per UTC day (they must stay dated to
  decay), and dropped once they are worth less than half a hundredth of a point;
- touches of other categories are kept dated only while they count for velocity, then
  folded into `base`.
"""

from __future__ import annotations

import math
from bisect import insort
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from leadscore.domain.events import NON_ENGAGEMENT_TYPES
from leadscore.domain.ledgers import ContactState, RuleLedger
from leadscore.domain.places import country_code
from leadscore.domain.values import as_number, match_keys, number_text

if TYPE_CHECKING:
    from leadscore.domain.events import TrackingEvent
    from leadscore.rulesfiles.scoring import Bucket, EngagementRule, FitRule, Match, ScoringConfig, When

DAY = 86400.0
# Below this a decayed touch is noise in a 2-decimal breakdown: it may be forgotten.
_NEGLIGIBLE = 0.005
# Scheduling more decay re-evaluations is worth it only while a touch still shows.
_VISIBLE = 0.01
# Counters never decay whatever their category: their ledgers use this pseudo category.
_COUNTER = "\x00counter"


@dataclass
class Hit:
    """One line of an explanation: a rule and the points it gave."""

    rule: str
    category: str
    points: float
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class ScoreCard:
    fit: float
    engagement: float
    score: float
    velocity: float
    lifecycle: str
    breakdown: list[Hit]  # fit hits, then engagement hits as of `now`

    def as_dict(self) -> dict[str, Any]:
        return {
            "fit": self.fit,
            "engagement": self.engagement,
            "score": self.score,
            "velocity": self.velocity,
            "lifecycle": self.lifecycle,
            "breakdown": [h.as_dict() for h in self.breakdown],
        }


# ------------------------------------------------------------------------- traits


def derive_traits(cfg: ScoringConfig, traits: Mapping[str, Any]) -> dict[str, Any]:
    """The traits plus `seniority`, `email_domain_type`, `email_domain`, `country_code`.

    A derived key is set only when it can be derived; a `seniority` trait sent by the
    tracker wins over the one read from `title`.
    """
    from leadscore.engine import identity  # kept local for cold start: its domain lists load on first use

    out = dict(traits)
    seniority = _seniority(cfg, traits.get("seniority"), traits.get("title"))
    if seniority:
        out["seniority"] = seniority
    email = traits.get("email")
    if isinstance(email, str) and "@" in email:
        domain = email.rsplit("@", 1)[1].strip().lower()
        if domain:
            out["email_domain"] = domain
            kind = identity.email_domain_type(email)
            if kind:
                out["email_domain_type"] = kind
    country = _lookup(traits, ("address", "country"))
    if not isinstance(country, str) or not country.strip():
        country = traits.get("country")
    code = country_code(country) if isinstance(country, str) else None
    if code:
        out["country_code"] = code
    return out


def seniority_of(cfg: ScoringConfig, title: Any) -> str | None:
    """The first seniority level whose regexes match the title, else `None`."""
    if not isinstance(title, str) or not title.strip():
        return None
    for level, patterns in cfg.seniority_patterns:
        if any(p.search(title) for p in patterns):
            return level
    return None


def _seniority(cfg: ScoringConfig, sent: Any, title: Any) -> str | None:
    if isinstance(sent, str) and sent.strip():
        level = "_".join(sent.strip().lower().replace("-", " ").split())
        if level in cfg.seniority:
            return level
        # "Vice President" sent as a seniority is still a vp.
        return seniority_of(cfg, sent) or level
    return seniority_of(cfg, title)


def evaluate_fit(cfg: ScoringConfig, rules: Sequence[FitRule], traits: Mapping[str, Any]) -> list[Hit]:
    """Fit hits for traits (pass `derive_traits(...)` for the derived ones), in rule order."""
    hits: list[Hit] = []
    for rule in rules:
        value = _lookup(traits, rule.path)
        if value is None:
            continue
        if rule.buckets is not None:
            x = as_number(value)
            bucket = _bucket(rule.buckets, x) if x is not None else None
            if bucket is not None:
                hits.append(
                    Hit(rule.id, "fit", bucket.points, f"{rule.trait} = {_show(value)}: {bucket.describe()}")
                )
        elif rule.points is not None and _matches(rule, value):
            hits.append(Hit(rule.id, "fit", rule.points, f"{rule.trait} = {_show(value)}"))
    return hits


# ---------------------------------------------------------------------- engagement


def matching_rules(cfg: ScoringConfig, event: TrackingEvent) -> list[str]:
    """Ids of the engagement rules an event matches, ignoring caps, limits and counters."""
    if event.type in NON_ENGAGEMENT_TYPES or event.bot:
        return []
    haystack = f"{event.url or ''}\n{event.path or ''}".casefold()  # once per event, not per rule
    return [rule.id for rule in cfg.candidate_rules(event.type, event.event)
            if rule.when is not None and _event_matches(rule.when, event, haystack)]


def apply_event(cfg: ScoringConfig, state: ContactState, event: TrackingEvent,
                matched: Sequence[str] | None = None) -> list[Hit]:
    """Fold one event into the contact at `event.timestamp`; the points actually credited.

    identify merges traits; identify, group and alias earn no engagement; bot traffic is
    ignored. A cap is measured against the rule's value decayed as of the event time, so
    a rule whose touches have faded can earn again.
    """
    t = _epoch(event.timestamp)
    if event.type == "identify":
        _merge_into(state.traits, event.traits)
    if event.email and not state.traits.get("email"):
        state.traits["email"] = event.email
    if event.type in NON_ENGAGEMENT_TYPES or event.bot:
        return []
    hits: list[Hit] = []
    if matched is None:
        rules = [r for r in cfg.candidate_rules(event.type, event.event) if r.when and _event_matches(r.when, event)]
    else:  # what collection already matched (stored on the event): no second pass
        rules = [cfg.rules_by_id[rule_id] for rule_id in matched if rule_id in cfg.rules_by_id]
    for rule in rules:
        if rule.points is None or rule.counter is not None:
            continue
        ledger = state.rules.get(rule.id) or RuleLedger()
        credited = _credit(cfg, ledger, rule, t, rule.points)
        if credited:
            state.rules[rule.id] = ledger
            detail = (
                f"capped at {number_text(rule.cap)}" if rule.cap is not None and credited != rule.points else None
            )
            hits.append(Hit(rule.id, rule.category, credited, detail))
    if event.type == "page":
        before = state.visits
        _count_visit(cfg, state, t)
        if state.visits != before:
            hits += _counter_hits(cfg, state, before, t)
    return hits


def _event_matches(when: When, event: TrackingEvent, haystack: str | None = None) -> bool:
    if event.type not in when.types:
        return False
    if when.events is not None and (event.event or "").casefold() not in when.events:
        return False
    if when.urls:
        if haystack is None:
            haystack = f"{event.url or ''}\n{event.path or ''}".casefold()
        if not any(u in haystack for u in when.urls):
            return False
    if when.forms is not None:
        form_id = event.properties.get("form_id", event.properties.get("formId"))
        if form_id is None or str(form_id).casefold() not in when.forms:
            return False
    for path, condition in when.props:
        value = _lookup(event.properties, path)
        if value is None or not _matches(condition, value):
            return False
    return True


def _credit(cfg: ScoringConfig, ledger: RuleLedger, rule: EngagementRule, t: float, points: float) -> float:
    """Credit `points` at `t` honouring the rule's limit and cap; what was credited."""
    limit = rule.limit
    if limit is not None and ledger.recent:  # (no recent hits: nothing to count, the usual case)
        window = limit.per_days * DAY
        ledger.recent = [x for x in ledger.recent if x > t - window]
        if sum(1 for x in ledger.recent if abs(x - t) < window) >= limit.max:
            return 0.0
    amount = points
    if rule.cap is not None:
        value = _value(cfg, ledger, rule.category, t)
        amount = min(points, rule.cap - value) if points > 0 else max(points, -rule.cap - value)
        if amount * points <= 0:
            return 0.0
    amount = round(amount, 4)
    if not amount:
        return 0.0
    _add_touch(cfg, ledger, rule.category, t, amount)
    ledger.count += 1
    if limit is not None:
        insort(ledger.recent, round(t, 4))
        del ledger.recent[: -limit.max]
    return amount


def _add_touch(cfg: ScoringConfig, ledger: RuleLedger, category: str, t: float, amount: float) -> None:
    t = round(t, 4)
    if category in cfg.decay:
        day = t // DAY
        for touch in ledger.touches:
            if touch[0] // DAY == day:
                touch[0] = min(touch[0], t)
                touch[1] = round(touch[1] + amount, 4)
                break
        else:
            insort(ledger.touches, [t, amount])
        ledger.touches = [
            tp for tp in ledger.touches if abs(tp[1] * decay_factor(cfg, category, t - tp[0])) >= _NEGLIGIBLE
        ]
        return
    insort(ledger.touches, [t, amount])
    _fold_ledger(ledger, t - cfg.velocity_days * DAY)


def compact(cfg: ScoringConfig, state: ContactState, now: datetime) -> None:
    """Keep the stored ledger small: non-decaying touches older than the velocity window
    only matter as a sum. Values are unchanged; done once per write, not per event."""
    _fold(cfg, state, _epoch(now))


def _fold(cfg: ScoringConfig, state: ContactState, t: float) -> None:
    """Fold every non-decaying touch that left the velocity window into its ledger's base."""
    cutoff = t - cfg.velocity_days * DAY
    keep_touches = cfg.decaying_rule_ids
    for rule_id, ledger in state.rules.items():
        # the cheap test first: most ledgers have nothing old enough to fold
        if ledger.touches and ledger.touches[0][0] < cutoff and rule_id not in keep_touches:
            _fold_ledger(ledger, cutoff)


def _fold_ledger(ledger: RuleLedger, cutoff: float) -> None:
    if ledger.touches and ledger.touches[0][0] < cutoff:
        old = [tp for tp in ledger.touches if tp[0] < cutoff]
        ledger.touches = [tp for tp in ledger.touches if tp[0] >= cutoff]
        ledger.base = round(ledger.base + sum(p for _, p in old), 4)


def _value(cfg: ScoringConfig, ledger: RuleLedger, category: str, at: float) -> float:
    if category not in cfg.decay:
        return ledger.total()
    return ledger.base + sum(p * decay_factor(cfg, category, at - ts) for ts, p in ledger.touches)


# -------------------------------------------------------------------------- visits


def _count_visit(cfg: ScoringConfig, state: ContactState, t: float) -> None:
    gap = cfg.visit_gap_minutes * 60
    first, last = state.first_page_at, state.last_page_at
    if first is None or last is None:
        state.visits += 1
        state.first_page_at = state.last_page_at = round(t, 4)
        return
    # An out-of-order page view inside the known span cannot be placed in a visit:
    # counting it would risk counting a visit twice, so only clear new visits count.
    if t > last + gap or t < first - gap:
        state.visits += 1
    state.first_page_at = round(min(first, t), 4)
    state.last_page_at = round(max(last, t), 4)


def _counter_hits(cfg: ScoringConfig, state: ContactState, before: int, t: float) -> list[Hit]:
    hits: list[Hit] = []
    for rule in cfg.counter_rules:
        old, new = _bucket_points(rule, before), _bucket_points(rule, state.visits)
        if new != old:
            ledger = state.rules.setdefault(rule.id, RuleLedger())
            _add_touch(cfg, ledger, _COUNTER, t, new - old)
            ledger.count += 1
            bucket = _bucket(rule.buckets or [], state.visits)
            detail = f"{state.visits} visits" + (f": {bucket.describe()}" if bucket else "")
            hits.append(Hit(rule.id, rule.category, new - old, detail))
    return hits


def _bucket_points(rule: EngagementRule, visits: int) -> float:
    bucket = _bucket(rule.buckets or [], visits)
    return bucket.points if bucket else 0.0


def _bucket(buckets: Sequence[Bucket], x: float) -> Bucket | None:
    for bucket in buckets:  # a loop, not next(genexpr): this runs on every page view
        if bucket.contains(x):
            return bucket
    return None


# --------------------------------------------------------------------------- merge


def merge_states(cfg: ScoringConfig, into: ContactState, other: ContactState) -> None:
    """Fold `other` (an anonymous or email-only contact) into `into`, counting nothing twice.

    `into`'s traits win. Each rule's touches are replayed in time order through its cap
    and frequency limit, so two halves that each stayed under a cap stay under it
    together. A visit that spans both ids (browsing, then identifying) counts once.
    """
    into.traits = _merged(other.traits, into.traits)
    gap = cfg.visit_gap_minutes * 60
    overlap = 0
    if (
        into.first_page_at is not None
        and into.last_page_at is not None
        and other.first_page_at is not None
        and other.last_page_at is not None
        and into.first_page_at <= other.last_page_at + gap
        and other.first_page_at <= into.last_page_at + gap
        and into.visits
        and other.visits
    ):
        overlap = 1
    into.visits = into.visits + other.visits - overlap
    into.first_page_at = _min_opt(into.first_page_at, other.first_page_at)
    into.last_page_at = _max_opt(into.last_page_at, other.last_page_at)

    for rule_id, theirs in other.rules.items():
        mine = into.rules.get(rule_id)
        rule = cfg.rules_by_id.get(rule_id)
        if rule is None or rule.counter is not None or rule.points is None:
            into.rules[rule_id] = _concat(mine, theirs)
        elif mine is None:
            into.rules[rule_id] = _copy_ledger(theirs)
        else:
            into.rules[rule_id] = _replay(cfg, rule, mine, theirs)

    for rule in cfg.counter_rules:
        # The merged visit count decides the bucket; the ledger (kept for velocity) is
        # corrected to agree with it.
        ledger = into.rules.get(rule.id)
        diff = _bucket_points(rule, into.visits) - (ledger.total() if ledger else 0.0)
        if abs(diff) > 1e-9:
            ledger = into.rules.setdefault(rule.id, RuleLedger())
            at = into.last_page_at or (ledger.touches[-1][0] if ledger.touches else 0.0)
            _add_touch(cfg, ledger, _COUNTER, at, round(diff, 4))


def _replay(cfg: ScoringConfig, rule: EngagementRule, a: RuleLedger, b: RuleLedger) -> RuleLedger:
    merged = RuleLedger(base=round(a.base + b.base, 4))
    if rule.cap is not None:
        merged.base = min(merged.base, rule.cap) if (rule.points or 0) > 0 else max(merged.base, -rule.cap)
    rejected = 0
    for t, p in sorted(a.touches + b.touches):
        if not _credit(cfg, merged, rule, t, p):
            rejected += 1
    merged.count = a.count + b.count - rejected
    return merged


def _concat(a: RuleLedger | None, b: RuleLedger) -> RuleLedger:
    if a is None:
        return _copy_ledger(b)
    return RuleLedger(
        base=round(a.base + b.base, 4),
        touches=sorted([list(tp) for tp in a.touches + b.touches]),
        count=a.count + b.count,
        recent=sorted(a.recent + b.recent),
    )


def _copy_ledger(ledger: RuleLedger) -> RuleLedger:
    return RuleLedger(ledger.base, [list(tp) for tp in ledger.touches], ledger.count, list(ledger.recent))


# --------------------------------------------------------------------------- score


def score(cfg: ScoringConfig, state: ContactState, now: datetime) -> ScoreCard:
    """The contact's score as of `now`, with a breakdown that sums exactly to it."""
    at = _epoch(now)
    fit_hits = _visible(evaluate_fit(cfg, cfg.fit, derive_traits(cfg, state.traits)))
    engagement_hits: list[Hit] = []
    for rule in cfg.engagement:
        if rule.counter is not None:
            bucket = _bucket(rule.buckets or [], state.visits)
            if bucket is not None:
                detail = f"{state.visits} visits: {bucket.describe()}"
                engagement_hits.append(Hit(rule.id, rule.category, bucket.points, detail))
            continue
        ledger = state.rules.get(rule.id)
        if ledger is not None:
            engagement_hits.append(_engagement_hit(cfg, rule, ledger, at))
    engagement_hits = _visible(engagement_hits)
    fit = round(sum(h.points for h in fit_hits), 2)
    engagement = round(sum(h.points for h in engagement_hits), 2)
    total = round(fit + engagement, 2)
    return ScoreCard(
        fit=fit,
        engagement=engagement,
        score=total,
        velocity=velocity(cfg, state, now),
        lifecycle=lifecycle(cfg, total),
        breakdown=fit_hits + engagement_hits,
    )


def velocity(cfg: ScoringConfig, state: ContactState, now: datetime) -> float:
    """Engagement points credited in the last `velocity_days`, before decay."""
    at = _epoch(now)
    since = at - cfg.velocity_days * DAY
    total = 0.0
    for rule_id, ledger in state.rules.items():
        if rule_id in cfg.rules_by_id:
            total += sum(p for ts, p in ledger.touches if since <= ts <= at)
    return round(total, 2)


def _engagement_hit(cfg: ScoringConfig, rule: EngagementRule, ledger: RuleLedger, at: float) -> Hit:
    decay = cfg.decay.get(rule.category)
    fresh = ledger.base
    terms: list[str] = []
    value = ledger.base
    for ts, p in ledger.touches:
        factor = decay_factor(cfg, rule.category, at - ts)
        value += p * factor
        if factor >= 1.0 or decay is None:
            fresh += p
        else:
            excess = (at - ts) / DAY - decay.stale_after_days
            terms.append(f"{p:.1f} x 0.5^({excess:.1f}/{decay.half_life_days:g})")
    details: list[str] = []
    if terms:
        if fresh:
            terms.insert(0, f"{fresh:.1f}")
        if len(terms) <= 3:
            details.append(" + ".join(terms) + f" = {number_text(round(value, 2))}")
        else:
            details.append(f"{ledger.total():.1f} decayed to {number_text(round(value, 2))}")
    elif ledger.count > 1:
        details.append(f"{ledger.count} hits")
    if rule.cap is not None and abs(value) > rule.cap:
        # A cap lowered after the points were earned still holds.
        value = math.copysign(rule.cap, value)
        details.append(f"capped at {number_text(rule.cap)}")
    return Hit(rule.id, rule.category, value, ", ".join(details) or None)


def _visible(hits: list[Hit]) -> list[Hit]:
    out: list[Hit] = []
    for hit in hits:
        points = round(hit.points, 2)
        if points:
            hit.points = points
            out.append(hit)
    return out


def lifecycle(cfg: ScoringConfig, score: float) -> str:
    """`sql`, `mql` or `subscriber` for a contact score."""
    if score >= cfg.lifecycle.sql:
        return "sql"
    if score >= cfg.lifecycle.mql:
        return "mql"
    return "subscriber"


# --------------------------------------------------------------------------- decay


def decay_factor(cfg: ScoringConfig, category: str, age_seconds: float) -> float:
    """Full value up to `stale_after_days`, then halving every `half_life_days`."""
    decay = cfg.decay.get(category)
    if decay is None:
        return 1.0
    excess = age_seconds / DAY - decay.stale_after_days
    if excess <= 0:
        return 1.0
    return float(0.5 ** (excess / decay.half_life_days))


def next_decay_at(cfg: ScoringConfig, state: ContactState, now: datetime) -> datetime | None:
    """When this contact's stored scores next need re-evaluating for decay, if ever."""
    at = _epoch(now)
    due: float | None = None
    for rule_id, ledger in state.rules.items():
        rule = cfg.rules_by_id.get(rule_id)
        if rule is None or rule.counter is not None:
            continue
        decay = cfg.decay.get(rule.category)
        if decay is None:
            continue
        for ts, p in ledger.touches:
            stale_at = ts + decay.stale_after_days * DAY
            if stale_at > at:
                candidate = stale_at
            elif abs(p * decay_factor(cfg, rule.category, at - ts)) >= _VISIBLE:
                candidate = at + DAY
            else:
                continue
            due = candidate if due is None else min(due, candidate)
    return datetime.fromtimestamp(due, tz=UTC) if due is not None else None


# ------------------------------------------------------------------------- helpers


def _matches(m: Match, value: Any) -> bool:
    if isinstance(value, list | tuple):
        return any(_matches(m, v) for v in value)
    if value is None or isinstance(value, dict):
        return False
    if m.equals is not None or m.in_ is not None:
        return any(k in m.values for k in match_keys(value))
    if m.needle is not None:
        return not isinstance(value, bool) and m.needle in str(value).casefold()
    if m.regex is not None:
        return not isinstance(value, bool) and m.regex.search(str(value)) is not None
    x = as_number(value)
    return x is not None and (m.min is None or x >= m.min) and (m.max is None or x <= m.max)


def _lookup(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    if len(path) > 1:
        # Some trackers flatten nested traits into dotted keys.
        flat = data.get(".".join(path))
        if flat is not None:
            return flat
    value: Any = data
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _merge_into(dst: dict[str, Any], src: Mapping[str, Any]) -> None:
    for key, value in src.items():
        if isinstance(value, Mapping) and isinstance(dst.get(key), dict):
            _merge_into(dst[key], value)
        else:
            dst[key] = _plain(value)


def _merged(base: Mapping[str, Any], winner: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = _plain(base)
    _merge_into(out, winner)
    return out


def _plain(value: Any) -> Any:
    # Copied so that later changes to a state never alias an event's traits.
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _epoch(when: datetime) -> float:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _show(value: Any) -> str:
    if isinstance(value, float | int) and not isinstance(value, bool):
        return number_text(value)
    return str(value)


def _min_opt(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _max_opt(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def rule_value(cfg: ScoringConfig, rule_id: str, ledger: RuleLedger, now: datetime) -> Hit | None:
    """One engagement rule's points from a ledger as of `now` (decay and cap applied), the
    same arithmetic as `score`; None for a rule no longer in the configuration."""
    rule = cfg.rules_by_id.get(rule_id)
    if rule is None or rule.counter is not None:
        return None
    return _engagement_hit(cfg, rule, ledger, _epoch(now))
