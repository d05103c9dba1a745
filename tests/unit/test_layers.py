"""The layer check `make lint` runs (local/layers.py): on the shipped package, and on small
packages with each mistake it must catch."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from local import layers


def _package(root: Path, files: dict[str, str]) -> Path:
    package = root / "leadscore"
    for folder in ("", *layers.LAYERS):
        (package / folder).mkdir(parents=True, exist_ok=True)
        (package / folder / "__init__.py").write_text("")
    for name, text in files.items():
        (package / name).write_text(textwrap.dedent(text))
    return package


def _problems(tmp_path: Path, files: dict[str, str]) -> list[str]:
    return layers.problems(layers.read_package(_package(tmp_path, files)))


def test_the_shipped_package_keeps_its_layers() -> None:
    assert layers.problems(layers.read_package()) == []


def test_the_design_notes_show_the_current_picture() -> None:
    design = layers.DESIGN.read_text(encoding="utf-8")
    drawn = layers.picture(layers.read_package())
    assert layers.design_with_picture(design, drawn) == design, "run `python -m local.layers --write`"
    # every folder is in the picture, and no arrow points up
    for layer in layers.LAYERS:
        assert f'subgraph {layer}["{layer}/"]' in drawn
    arrows = [line.split() for line in drawn.splitlines() if "-->" in line]
    assert arrows and all(layers.LAYERS.index(a[0]) > layers.LAYERS.index(a[2]) for a in arrows)


def test_downward_and_same_folder_imports_pass(tmp_path: Path) -> None:
    assert _problems(tmp_path, {
        "domain/records.py": "X = 1\n",
        "engine/rules.py": "from leadscore.domain.records import X\nfrom leadscore.engine import helpers\n",
        "engine/helpers.py": "from leadscore.domain import records\n",
        "adapters/store.py": "import leadscore.engine.rules\nfrom leadscore.services import collect\n",
        "services/collect.py": "from leadscore.engine.rules import X\n",
    }) == []


def test_an_upward_import_is_named_with_its_line(tmp_path: Path) -> None:
    found = _problems(tmp_path, {
        "services/collect.py": "import json\n\nfrom leadscore.adapters.items import event_item\n",
        "adapters/items.py": "event_item = None\n",
    })
    assert len(found) == 1
    assert "collect.py:3: upward import: leadscore.services.collect (services) imports" in found[0]
    assert "leadscore.adapters.items (adapters)" in found[0]


@pytest.mark.parametrize("hidden", [
    "def f():\n    from leadscore.domain.records import X  # for cold start\n",  # inside a function
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from leadscore.domain.records import X\n",
    "from leadscore.domain import records\n",  # a module named through its folder
    "from ..domain import records\n",  # relative
])
def test_a_circle_counts_imports_however_they_are_hidden(tmp_path: Path, hidden: str) -> None:
    found = _problems(tmp_path, {
        "domain/records.py": "from leadscore.domain.ledgers import Y\n",
        "domain/ledgers.py": hidden,
    })
    assert found == ["import circle: leadscore.domain.ledgers -> leadscore.domain.records"]


def test_an_upward_import_inside_a_function_is_still_upward(tmp_path: Path) -> None:
    found = _problems(tmp_path, {
        "domain/records.py": ("def f():\n    # kept local for cold start\n"
                              "    from leadscore.engine.rules import score\n"),
        "engine/rules.py": "score = 1\n",
    })
    assert len(found) == 1 and "records.py:3: upward import" in found[0]


def test_an_import_inside_a_function_says_why(tmp_path: Path) -> None:
    files = {"engine/rules.py": "score = 1\n", "engine/identity.py": "x = 1\n",
             "services/collect.py": textwrap.dedent("""\
                 def a():
                     from leadscore.engine.rules import score
                 def b():
                     # kept local for cold start: only a form needs it
                     from leadscore.engine.identity import x
                 def c():
                     from leadscore.engine import rules  # cold start: imported on first use
                 """)}
    found = _problems(tmp_path, files)
    assert len(found) == 1
    assert "collect.py:2: leadscore.services.collect imports leadscore.engine.rules inside a function" in found[0]


def test_a_module_outside_the_layer_folders_is_named(tmp_path: Path) -> None:
    found = _problems(tmp_path, {"helpers.py": "X = 1\n"})
    assert len(found) == 1 and "leadscore.helpers is in no layer folder" in found[0]


def test_a_stale_picture_is_refused(tmp_path: Path) -> None:
    design = f"# Design\n{layers.PICTURE_START}\nold picture\n{layers.PICTURE_END}\nmore\n"
    drawn = layers.picture(layers.read_package(_package(tmp_path, {"domain/records.py": ""})))
    written = layers.design_with_picture(design, drawn)
    assert written != design and written.endswith(f"{drawn}\n{layers.PICTURE_END}\nmore\n")
    assert layers.design_with_picture(written, drawn) == written
