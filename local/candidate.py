"""A candidate `scoring.yaml` from a calibration: the current file with only the suggested
numbers changed, and the diff to review. Nothing is applied.

Each rule's `suggestedPoints` (where the calibration gives one) replaces that rule's
`points`, and the suggested SDR-ready threshold replaces `account.thresholds.sdr_ready`.
The edit is made in the file's text, at the exact place of each number (found through the
YAML node tree, keyed by the rule id), so comments, order and layout stay as they are. Two
more numbers change only when the suggestion would otherwise not take effect or not
validate, and the output says so: a rule's `cap` under its new points (the cap would hold it
back) is raised to them, and a `requalify_below` at or above the new threshold is lowered
in the same proportion to it. The candidate is then loaded with the rules loader: it must
validate and carry exactly the suggested values.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from leadscore.rulesfiles.loading import load_scoring

if TYPE_CHECKING:
    from leadscore.rulesfiles.scoring import EngagementRule, FitRule, ScoringConfig

CANDIDATE_FILE = "scoring.candidate.yaml"
DIFF_FILE = "scoring.diff"
#: where rules live in scoring.yaml
RULE_LISTS = (("fit",), ("engagement",), ("account", "fit"))


@dataclass(frozen=True)
class Change:
    key: str  # the key path: engagement[demo_requested].points
    line: int  # 1-based, in the current file
    old: float
    new: float


@dataclass
class Candidate:
    text: str
    changes: list[Change] = field(default_factory=list)
    #: suggestions not applied, or numbers changed beyond the suggested ones, and why
    notes: list[str] = field(default_factory=list)
    #: what the candidate must carry: rule id -> points, and the threshold
    points: dict[str, float] = field(default_factory=dict)
    threshold: float | None = None


class CandidateError(ValueError):
    """The candidate cannot be made or does not carry the suggestion."""


def number(value: float) -> str:
    """A number as YAML text: 28, not 28.0."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def current_points(scoring: ScoringConfig) -> dict[str, float | None]:
    """Each rule's points in the current rules (None for one scored by buckets)."""
    rules: list[FitRule | EngagementRule] = [*scoring.fit, *scoring.engagement, *scoring.account.fit]
    return {rule.id: rule.points for rule in rules}


def _child(node: Any, key: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


def _rules(root: Any) -> Iterator[tuple[str, str, Any]]:
    """(key path of the list, rule id, the rule's mapping node) of every rule in the file."""
    for path in RULE_LISTS:
        node = root
        for key in path:
            node = _child(node, key)
        if isinstance(node, yaml.SequenceNode):
            for item in node.value:
                rule_id = _child(item, "id")
                if isinstance(rule_id, yaml.ScalarNode):
                    yield ".".join(path), rule_id.value, item


def _value(node: Any) -> float | None:
    if not isinstance(node, yaml.ScalarNode) or node.style is not None:
        return None
    try:
        return float(node.value)
    except ValueError:
        return None


def candidate(text: str, report: Mapping[str, Any]) -> Candidate:
    """`text` (the current scoring.yaml) with the calibration's suggested points and threshold."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as problem:
        raise CandidateError(f"the current scoring.yaml is not YAML: {problem}") from None
    made = Candidate(text)
    edits: list[tuple[Any, float, str]] = []  # (scalar node, new value, key path)

    def edit(node: Any, new: float, key: str) -> None:
        old = _value(node)
        if old is None:
            raise CandidateError(f"{key}: {node.value!r} is not a plain number to change")
        if old != new:
            edits.append((node, new, key))
            made.changes.append(Change(key, node.start_mark.line + 1, old, new))

    rules = {rule_id: (where, node) for where, rule_id, node in _rules(root)}
    for row in report.get("rules") or []:
        suggested = row.get("suggestedPoints")
        if suggested is None:
            continue
        if row["rule"] not in rules:
            made.notes.append(f"{row['rule']}: not in scoring.yaml, not changed (suggested {number(suggested)})")
            continue
        where, node = rules[row["rule"]]
        points = _child(node, "points")
        if points is None:
            made.notes.append(f"{row['rule']}: scored by buckets, not changed (suggested {number(suggested)} points "
                              "for it firing: set its buckets by hand)")
            continue
        key = f"{where}[{row['rule']}]"
        edit(points, float(suggested), f"{key}.points")
        made.points[row["rule"]] = float(suggested)
        cap = _child(node, "cap")
        if cap is not None and (_value(cap) or 0) < abs(suggested):
            # the cap would hold the rule under its new points: raised to them, else the suggestion is not applied
            edit(cap, float(abs(suggested)), f"{key}.cap")
            made.notes.append(f"{key}.cap raised from {cap.value} to {number(abs(suggested))}: "
                              "under the new points it would hold them back")
    suggested_threshold = (report.get("threshold") or {}).get("suggested")
    if suggested_threshold is not None:
        new = float(suggested_threshold["threshold"])
        thresholds = _child(_child(root, "account"), "thresholds")
        sdr_ready = _child(thresholds, "sdr_ready")
        if sdr_ready is None:
            made.notes.append(f"account.thresholds.sdr_ready is not in the file: add `sdr_ready: {number(new)}` "
                              "by hand")
        else:
            old = _value(sdr_ready)
            edit(sdr_ready, new, "account.thresholds.sdr_ready")
            made.threshold = new
            requalify = _child(thresholds, "requalify_below")
            below = _value(requalify) if requalify is not None else None
            if old and below is not None and below >= new:
                # the same proportion of the threshold as now, a whole number under it
                lowered = float(min(math.floor(new * below / old), math.ceil(new) - 1))
                edit(requalify, lowered, "account.thresholds.requalify_below")
                made.notes.append(f"account.thresholds.requalify_below lowered from {requalify.value} to "
                                  f"{number(lowered)}: it must stay below sdr_ready")
    for node, new, _key in sorted(edits, key=lambda e: -e[0].start_mark.index):
        made.text = made.text[:node.start_mark.index] + number(new) + made.text[node.end_mark.index:]
    return made


def diff(old: str, new: str, old_name: str, new_name: str) -> str:
    """The unified diff of the current file and the candidate ("" when they are the same)."""
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=old_name, tofile=new_name))


def verify(path: Path, made: Candidate) -> None:
    """The written candidate validates (ConfigError names the file, key path and reason) and
    carries exactly the suggested values."""
    scoring = load_scoring(path)
    points = current_points(scoring)
    wrong = [f"{rule}: {'-' if points.get(rule) is None else number(points[rule] or 0)} instead of {number(value)}"
             for rule, value in made.points.items() if points.get(rule) != value]
    if made.threshold is not None and scoring.account.thresholds.sdr_ready != made.threshold:
        wrong.append(f"sdr_ready: {number(scoring.account.thresholds.sdr_ready)} instead of {number(made.threshold)}")
    if wrong:
        raise CandidateError(f"{path} does not carry the suggestion: {'; '.join(wrong)}")


def write(report: Mapping[str, Any], current: Path, out: Path) -> tuple[Candidate, str, list[str]]:
    """Write `out/scoring.candidate.yaml` and `out/scoring.diff`; the candidate, its diff and
    the lines to print (the notes, and what to do next). Raises CandidateError / ConfigError
    / OSError."""
    text = current.read_text(encoding="utf-8")
    made = candidate(text, report)
    out.mkdir(parents=True, exist_ok=True)
    path = out / CANDIDATE_FILE
    path.write_text(made.text, encoding="utf-8")
    verify(path, made)
    patch = diff(text, made.text, str(current), str(path))
    (out / DIFF_FILE).write_text(patch, encoding="utf-8")
    lines = [f"note: {note}" for note in made.notes]
    if made.threshold is not None and any(c.key.endswith(".points") for c in made.changes):
        lines.append("note: the threshold was fitted to the scores under the current points: the preview shows "
                     "what both changes do together")
    if not made.changes:
        why = ("no rule has enough support for suggested points, and no threshold was suggested"
               if not made.points and made.threshold is None else "the suggested values are the current ones")
        lines.append(f"no change suggested: {path} is the current scoring.yaml and {out / DIFF_FILE} is empty ({why})")
    else:
        lines.append(f"candidate: {path} ({len(made.changes)} numbers changed; the diff is in {out / DIFF_FILE})."
                     " Nothing is applied: preview it with "
                     f"`make preview RULES={path}`, then copy it over scoring.yaml to adopt it.")
    return made, patch, lines
