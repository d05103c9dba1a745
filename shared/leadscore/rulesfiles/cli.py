"""`python -m leadscore.rulesfiles validate [--write] [DIR]`: check the three rules files
and `compiled.json` (`make validate-config`), or write it (`make config`); `--only FILE`
checks one rules file."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from leadscore.rulesfiles.errors import ConfigError, format_loc, with_line
from leadscore.rulesfiles.loading import (
    COMPILED_FILE,
    ROUTING_FILE,
    SCORING_FILE,
    SOURCES_FILE,
    compiled_text,
    default_config_dir,
    load_rules,
    read_yaml,
    write_compiled,
)
from leadscore.rulesfiles.model import RulesObject
from leadscore.rulesfiles.routing import RoutingConfig
from leadscore.rulesfiles.scoring import ScoringConfig
from leadscore.rulesfiles.sources import SourcesConfig

PROG = "python -m leadscore.rulesfiles"


def config_warnings(path: Path, loaded: RulesObject) -> list[str]:
    """`warning: file: key path: reason (line N)` for what a valid file says but probably does
    not mean (its `config_warnings()`); not errors: the file still loads."""
    found = loaded.config_warnings()
    if not found:
        return []
    _, node = read_yaml(path, os.fspath(path))
    return [f"warning: {path}: {format_loc(loc)}: {with_line(reason, node, loc)}" for loc, reason in found]


def _routing_summary(cfg: RoutingConfig) -> str:
    active = sum(1 for s in cfg.sdrs if s.active)
    return f"{cfg.mode}, {active} active SDRs, {len(cfg.pools)} pools, {len(cfg.territories)} territories"


FILES: list[tuple[str, type[Any], Callable[[Any], str]]] = [
    (SCORING_FILE, ScoringConfig, lambda c: f"{c.rule_count} rules"),
    (SOURCES_FILE, SourcesConfig, lambda c: f"{len(c.sources)} sources, {len(c.forms)} forms"),
    (ROUTING_FILE, RoutingConfig, _routing_summary),
]


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 1 when a rules file has errors, or when DIR/compiled.json (the pre-validated form
    the functions load) is out of date; `--write` (re)writes it."""
    parser = argparse.ArgumentParser(prog=PROG, description="Check the rules files.")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="validate scoring.yaml, sources.yaml and routing.yaml, "
                                                    f"and check {COMPILED_FILE}")
    validate.add_argument("dir", nargs="?", help="config directory (default: the functions' one)", default=None)
    validate.add_argument("--write", action="store_true",
                          help=f"(re)write {COMPILED_FILE}, the pre-validated rules the functions load")
    validate.add_argument("--only", choices=[name for name, _, _ in FILES],
                          help=f"validate this file alone (not {COMPILED_FILE})")
    args = parser.parse_args(argv)
    directory = Path(args.dir) if args.dir else default_config_dir()
    status = 0
    valid: list[tuple[Path, RulesObject]] = []
    for name, model, summary in FILES:
        if args.only not in (None, name):
            continue
        path = directory / name
        try:
            loaded = load_rules(model, path, prevalidated=False)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            status = 1
        else:
            valid.append((path, loaded))
            print(f"ok: {path} ({summary(loaded)})")
            for line in config_warnings(path, loaded):
                print(line, file=sys.stderr)
    if status or args.only:
        return status
    compiled = directory / COMPILED_FILE
    if args.write:
        print(f"{'wrote' if write_compiled(directory, valid) else 'up to date:'} {compiled}")
    elif not compiled.exists():
        print(f"note: no {compiled}: the functions validate the rules on their first invocation (a slower "
              f"cold start); `{PROG} validate --write {directory}` writes it")
    elif compiled.read_text(encoding="utf-8") != compiled_text(valid):
        print(f"{compiled}: out of date (the rules files or the code that validates them changed); the functions "
              f"would validate the rules on their first invocation: run `make config` (`{PROG} validate --write "
              f"{directory}`)", file=sys.stderr)
        return 1
    else:
        print(f"up to date: {compiled}")
    return 0
