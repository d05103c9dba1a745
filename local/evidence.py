"""The outputs of `make calibrate` and `make preview` besides the terminal table and JSON:
`--html <path>` (the report as a self-contained page with charts, local/evidence_html.py)
and, for a calibration, `--candidate <dir>` (a candidate scoring.yaml and its diff,
local/candidate.py). Each CLI adds the flags with `add_flags` and hands its report to
`calibration_outputs` / `preview_outputs` where it prints it; what these say goes to stdout,
or to stderr with `--json` (stdout stays one JSON document). Returns the exit code: 2 when
an output cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from leadscore.rulesfiles.loading import Config


def add_flags(parser: argparse.ArgumentParser, candidate: bool = False) -> None:
    parser.add_argument("--html", metavar="PATH", help="also write the report as an HTML page with charts")
    if candidate:
        parser.add_argument("--candidate", metavar="DIR",
                            help="write DIR/scoring.candidate.yaml (the current rules with the suggested points and"
                                 " threshold) and DIR/scoring.diff; nothing is applied")


def _say(args: argparse.Namespace) -> TextIO:
    return sys.stderr if getattr(args, "json", False) else sys.stdout


def _write_html(path: str, text: str, args: argparse.Namespace) -> int:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as problem:
        print(f"--html {path}: {problem.strerror or problem}", file=sys.stderr)
        return 2
    print(f"HTML page: {path}", file=_say(args))
    return 0


def calibration_outputs(report: Mapping[str, Any], args: argparse.Namespace, config: Config) -> int:
    from leadscore.rulesfiles.errors import ConfigError

    from local import candidate

    code = 0
    if getattr(args, "html", None):
        from local.evidence_html import calibration_page  # cold start of the CLI: matplotlib only for a page

        code = _write_html(args.html, calibration_page(report, candidate.current_points(config.scoring)), args)
    if getattr(args, "candidate", None):
        try:
            _, patch, lines = candidate.write(report, config.dir / "scoring.yaml", Path(args.candidate))
        except (candidate.CandidateError, ConfigError) as problem:
            print(f"--candidate: {problem}", file=sys.stderr)
            return 2
        except OSError as problem:
            print(f"--candidate {args.candidate}: {problem.strerror or problem}", file=sys.stderr)
            return 2
        out = _say(args)
        if patch:
            print(patch, end="" if patch.endswith("\n") else "\n", file=out)
        for line in lines:
            print(line, file=out)
    return code


def preview_outputs(report: Mapping[str, Any], args: argparse.Namespace) -> int:
    if getattr(args, "html", None):
        from local.evidence_html import preview_page  # cold start of the CLI: matplotlib only for a page

        return _write_html(args.html, preview_page(report), args)
    return 0
