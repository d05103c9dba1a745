"""Reading the rules files: the YAML validated, or its pre-validated form from `compiled.json`.

`compiled.json`, next to the rules files (so in the config layer), holds each file's
validated form: every key, default and shorthand resolved, keyed by the file's SHA-256 and
by the code that validated it (the modules of this package). `python -m leadscore.rulesfiles
validate --write` writes it (every file valid); `validate` alone fails when it is out of date
(`make validate-config`, so CI). A function's first invocation builds its rules from it with
the classes' own constructors, in a few milliseconds, importing neither pydantic nor yaml; a
file edited since (or other code) does not match, and is read and validated: slower, never
different.

Pure: no AWS. pydantic and yaml are imported only to validate.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

from leadscore.rulesfiles.errors import ConfigError, kind, problems_of
from leadscore.rulesfiles.model import RulesObject, plain_data
from leadscore.rulesfiles.routing import RoutingConfig
from leadscore.rulesfiles.scoring import ScoringConfig
from leadscore.rulesfiles.sources import SourcesConfig

FORMAT_VERSION = 1
SCORING_FILE = "scoring.yaml"
SOURCES_FILE = "sources.yaml"
ROUTING_FILE = "routing.yaml"
COMPILED_FILE = "compiled.json"

_R = TypeVar("_R", bound=RulesObject)


# ------------------------------------------------------------------------- YAML


class YamlReaders:
    """The YAML readers, built on first use (a function whose rules files are pre-validated
    never imports yaml). Both are SafeLoaders with YAML 1.2 booleans and duplicate keys as
    errors: YAML 1.1 reads `NO`, `yes`, `on` as booleans, which turns Norway's country code
    into `false`, and a repeated key silently keeps the last value. Both are config bugs.

    `fast` parses with libyaml (PyYAML's C extension, some 8x faster) where it is there;
    `pure` is PyYAML's own parser, whose messages (and marks) an error is reported with.
    """

    def __init__(self) -> None:
        import yaml  # validating only: never at cold start

        class DuplicateKey(yaml.constructor.ConstructorError):
            pass

        class Rules(yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
            def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
                seen: set[Any] = set()
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=deep)
                    if isinstance(key, str | int | float | bool) and key in seen:
                        raise DuplicateKey(None, None, f"duplicate key {key!r}", key_node.start_mark)
                    seen.add(key if isinstance(key, str | int | float | bool) else id(key))
                return super().construct_mapping(node, deep=deep)

        Rules.yaml_implicit_resolvers = {
            first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
            for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
        }
        Rules.add_implicit_resolver(
            "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
        )

        class Pure(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer, Rules):
            def __init__(self, stream: str) -> None:
                yaml.reader.Reader.__init__(self, stream)
                yaml.scanner.Scanner.__init__(self)
                yaml.parser.Parser.__init__(self)
                yaml.composer.Composer.__init__(self)
                Rules.__init__(self)

        self.yaml = yaml
        self.DuplicateKey = DuplicateKey
        self.pure: Any = Pure
        self.fast: Any = Pure
        c_parser: Any = getattr(getattr(yaml, "cyaml", None), "CParser", None)  # libyaml, if PyYAML has it
        if c_parser is not None:

            class Fast(c_parser, Rules):
                def __init__(self, stream: str) -> None:
                    c_parser.__init__(self, stream)
                    Rules.__init__(self)

            self.fast = Fast


@functools.cache
def yaml_readers() -> YamlReaders:
    return YamlReaders()


def compose(loader_class: Any, text: str) -> tuple[Any, Any]:
    """The data of a YAML text and its node tree (whose marks give an error its line)."""
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


def read_yaml(path: Path, label: str) -> tuple[Any, Any]:
    """The data of a rules file and its node tree; `ConfigError` when it is not YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(label, "(file)", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(label, "(file)", f"cannot read: {exc}") from None
    kit = yaml_readers()
    yaml = kit.yaml
    try:
        try:
            return compose(kit.fast, text)
        except yaml.YAMLError:
            if kit.fast is kit.pure:
                raise
            # the error again from the pure parser: its messages and marks are the documented ones
            return compose(kit.pure, text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark else "(file)"
        col = f" (column {mark.column + 1})" if mark else ""
        if isinstance(exc, kit.DuplicateKey):
            raise ConfigError(label, where, f"{exc.problem}{col}") from None
        problem = ": ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise ConfigError(label, where, f"YAML syntax error: {problem}{col}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(label, "(file)", f"YAML syntax error: {exc}") from None


# ------------------------------------------------------------------ one file


def load_rules(model: type[_R], path: str | os.PathLike[str], *, prevalidated: bool = True) -> _R:
    """A rules file as `model`: its pre-validated form when `compiled.json` next to it holds
    one for these exact bytes (and `prevalidated`), else read and validated now;
    `ConfigError` lists every problem found."""
    if prevalidated:
        found = prevalidated_rules(model, Path(path))
        if found is not None:
            return found
    label = os.fspath(path)
    data, node = read_yaml(Path(path), label)
    if data is None:
        raise ConfigError(label, "(root)", f"the file is empty; it starts with `version: {FORMAT_VERSION}`")
    if not isinstance(data, dict):
        raise ConfigError(label, "(root)", f"expected a mapping of keys, got {kind(data)}")
    # Checked first: a file in another format version would otherwise drown the one
    # useful message in a page of unknown-key errors.
    version = data.get("version")
    if "version" not in data:
        raise ConfigError(
            label, "version", f"required key missing (this format: `version: {FORMAT_VERSION}`)"
        )
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise ConfigError(
            label, "version", f"unsupported version {version!r}; this release reads version {FORMAT_VERSION}"
        )
    from pydantic import ValidationError  # validating only: never at cold start

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(label, errors=problems_of(exc, model, node)) from None


def load_scoring(path: str | os.PathLike[str]) -> ScoringConfig:
    """Read and validate a `scoring.yaml`; `ConfigError` lists every problem found."""
    return load_rules(ScoringConfig, path)


def load_sources(path: str | os.PathLike[str]) -> SourcesConfig:
    """Read and validate a `sources.yaml`; `ConfigError` lists every problem found."""
    return load_rules(SourcesConfig, path)


def load_routing(path: str | os.PathLike[str]) -> RoutingConfig:
    """Read and validate a `routing.yaml`; `ConfigError` lists every problem found."""
    return load_rules(RoutingConfig, path)


# ------------------------------------------------------------- the pre-validated form


@functools.cache
def _code_digest() -> str:
    """The validating code: the modules of this package (their source bytes; "" when they
    cannot be read, which no compiled.json matches)."""
    digest = hashlib.sha256()
    try:
        for module in sorted(Path(__file__).parent.glob("*.py")):
            digest.update(module.name.encode() + b"\0" + module.read_bytes())
    except OSError:
        return ""
    return digest.hexdigest()


def _compiled_document(directory: Path) -> dict[str, Any] | None:
    path = directory / COMPILED_FILE
    try:
        stat = path.stat()
    except OSError:
        return None
    return _read_compiled(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _read_compiled(path: Path, mtime_ns: int, size: int) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    code = _code_digest()
    return document if isinstance(document, dict) and code and document.get("code") == code else None


def prevalidated_rules(model: type[_R], path: Path) -> _R | None:
    """The rules of `path` from `compiled.json` next to it; None unless it holds them for
    these exact bytes, validated by this code."""
    document = _compiled_document(path.parent)
    if document is None:
        return None
    entry = (document.get("files") or {}).get(path.name)
    if not isinstance(entry, dict) or entry.get("model") != model.__name__:
        return None
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if entry.get("sha256") != hashlib.sha256(raw).hexdigest():
        return None
    return _built(model, entry["rules"])


def compiled_text(files: Sequence[tuple[Path, RulesObject]]) -> str:
    """The text of `compiled.json` for rules files and what validating them gave."""
    document = {
        "about": "The validated form of the rules files next to it, which the functions load: written "
                 "by `python -m leadscore.rulesfiles validate --write`. Do not edit.",
        "code": _code_digest(),
        "files": {
            path.name: {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "model": type(rules).__name__,
                        "rules": plain_data(rules)}
            for path, rules in files
        },
    }
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def write_compiled(directory: Path, files: Sequence[tuple[Path, RulesObject]]) -> bool:
    """Write `directory/compiled.json` for these validated files; False when it was up to date."""
    text = compiled_text(files)
    path = directory / COMPILED_FILE
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    path.write_text(text, encoding="utf-8")
    return True


# The pre-validated JSON back into the classes, by their type hints: nested rules objects as
# objects, dates from their ISO text, everything else as JSON has it. compiled.json holds every
# field of every object, validated: each object gets its fields as they are, without the
# constructor's look-up of defaults (a cold start builds a few hundred of them).

_Decode = Callable[[Any], Any]


def _built(cls: type[_R], data: dict[str, Any]) -> _R:
    out = object.__new__(cls)
    values = out.__dict__
    for name, decode in _plan(cls):
        value = data[name]
        values[name] = value if decode is None or value is None else decode(value)
    return out


_PLANS: dict[type[RulesObject], tuple[tuple[str, _Decode | None], ...]] = {}


def _plan(cls: type[RulesObject]) -> tuple[tuple[str, _Decode | None], ...]:
    """Each field of `cls` and how to rebuild it (from the type hints, once per class)."""
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        plan = _PLANS[cls] = tuple((f.name, _decoder(hints[f.name])) for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    return plan


def _decoder(tp: Any) -> _Decode | None:
    """How to rebuild a value of type `tp` from its pre-validated JSON (None: as it is)."""
    if isinstance(tp, type) and issubclass(tp, RulesObject):
        return functools.partial(_built, tp)
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        inner = [_decoder(arg) for arg in args if arg is not type(None)]
        if all(d is None for d in inner):
            return None
        if len(inner) == 1:
            return inner[0]
        raise TypeError(f"no pre-validated form for {tp}")
    if origin is list:
        item = _decoder(args[0])
        return None if item is None else (lambda v: [x if x is None else item(x) for x in v])
    if origin is dict:
        entry = _decoder(args[1])
        return None if entry is None else (lambda v: {k: x if x is None else entry(x) for k, x in v.items()})
    if tp is date:
        return date.fromisoformat
    return None


# ------------------------------------------------------------------ a directory


@dataclass(frozen=True)
class Config:
    """The scoring and sources rules of one config directory."""

    scoring: ScoringConfig
    sources: SourcesConfig
    dir: Path


def default_config_dir() -> Path:
    """`LEADSCORE_CONFIG_DIR`, else the config layer under `/opt`, else the repo's `config/`."""
    env = os.environ.get("LEADSCORE_CONFIG_DIR")
    if env:
        return Path(env)
    # A layer built from `config/` unpacks at /opt; one that keeps the folder at /opt/config.
    for candidate in (Path("/opt/config"), Path("/opt")):
        if (candidate / SCORING_FILE).is_file():
            return candidate
    return Path(__file__).resolve().parents[3] / "config"


@functools.lru_cache(maxsize=8)
def _load_dir(directory: Path) -> Config:
    return Config(
        scoring=load_scoring(directory / SCORING_FILE),
        sources=load_sources(directory / SOURCES_FILE),
        dir=directory,
    )


class _ConfigLoader:
    """`load_config(dir=None)`: both files of a directory, cached per resolved directory."""

    def __call__(self, config_dir: str | os.PathLike[str] | None = None) -> Config:
        directory = Path(config_dir) if config_dir is not None else default_config_dir()
        return _load_dir(directory.resolve())

    def cache_clear(self) -> None:
        _load_dir.cache_clear()


load_config = _ConfigLoader()
