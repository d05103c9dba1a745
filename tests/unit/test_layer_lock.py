"""The layer `sam build` makes runs the versions the tests ran: `shared/requirements.txt` is
generated from `constraints.txt` by `make lock` (local/lock.py), exact pins only."""

from __future__ import annotations

import re

from local import lock


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_the_layer_requirements_are_what_make_lock_generates() -> None:
    expected = lock.render(lock.CONSTRAINTS.read_text())
    assert lock.LAYER_REQUIREMENTS.read_text() == expected, (
        "shared/requirements.txt drifted from constraints.txt: run `make lock` (python -m local.lock)")


def test_every_layer_requirement_is_pinned_to_the_tested_version() -> None:
    pins = lock.read_constraints(lock.CONSTRAINTS.read_text())
    lines = _lines(lock.LAYER_REQUIREMENTS.read_text())
    assert lines
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s=<>!~;]+)", line)
        assert match, f"{line!r}: not an exact `name==version` pin"
        name, version = match.groups()
        assert pins[lock.canonical(name)][1] == version, f"{line!r}: constraints.txt pins {pins[lock.canonical(name)]}"


def test_the_layer_has_every_runtime_dependency_and_what_it_needs_but_not_the_runtime_s_boto3() -> None:
    names = {lock.canonical(line.split("==")[0]) for line in _lines(lock.LAYER_REQUIREMENTS.read_text())}
    direct = {lock.canonical(r.name) for r in lock.layer_roots()}
    assert direct <= names
    # transitive: pydantic's core and helpers, tldextract's
    assert {"pydantic-core", "annotated-types", "typing-extensions", "idna", "requests", "filelock"} <= names
    assert not names & {"boto3", "botocore"}


def test_markers_are_evaluated_for_the_lambda_runtime() -> None:
    from packaging.markers import Marker

    assert lock._applies(Marker('python_version >= "3.12" and sys_platform == "linux"'), "")
    assert not lock._applies(Marker('python_version < "3.11"'), "")
    assert not lock._applies(Marker('sys_platform == "win32"'), "")
    assert not lock._applies(Marker('extra == "socks"'), "")
    assert lock._applies(Marker('extra == "socks"'), "socks")
