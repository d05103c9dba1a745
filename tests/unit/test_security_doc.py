"""SECURITY.md names the test behind each guarantee: every name it cites must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _defined_tests() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests").rglob("*.py"):
        names.update(re.findall(r"^\s*(?:def|class) ((?:test_|Test)\w+)", path.read_text(), re.MULTILINE))
    return names


def test_every_test_security_md_cites_exists() -> None:
    text = re.sub(r"tests/[\w/]+\.py", "", (ROOT / "SECURITY.md").read_text())  # file names are checked below
    cited = set(re.findall(r"\b((?:test_|Test)\w+\*?)", text))
    assert len(cited) > 20
    defined = _defined_tests()
    missing = sorted(name for name in cited
                     if not (any(d.startswith(name[:-1]) for d in defined) if name.endswith("*") else name in defined))
    assert missing == []


def test_every_test_file_security_md_cites_exists() -> None:
    text = (ROOT / "SECURITY.md").read_text()
    files = set(re.findall(r"(tests/[\w/]+\.py)", text))
    assert files and [f for f in sorted(files) if not (ROOT / f).is_file()] == []
