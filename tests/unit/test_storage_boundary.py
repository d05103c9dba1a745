"""The storage layer (storage.py + items.py) is the only part of the layer that names an item
attribute: domain code takes and returns records (records.py) and never an item."""

from __future__ import annotations

import ast
from pathlib import Path

from leadscore.adapters import items

LAYER = Path(__file__).resolve().parents[2] / "shared" / "leadscore"
STORAGE_LAYER = {"storage.py", "items.py"}

ATTRIBUTES = set(items.EVENT_ATTRIBUTES + items.CONTACT_ATTRIBUTES + items.ACCOUNT_ATTRIBUTES
                 + items.REJECTED_ATTRIBUTES)
STORED_JSON_KEYS = set(items.ENTRY_KEYS + items.STATE_KEYS + items.LEDGER_KEYS + items.COUNTER_KEYS)
#: Attribute names that are also words of the public interfaces or the domain: keys of the
#: read API's and the bus's JSON, Segment traits, the pixel's query parameters (`k`, `uid`,
#: `aid`, `mid`, `url`, `ref`), record fields, configuration keys. Seen in domain code they
#: name those, not an item; every other attribute name, and every key of the stored JSON
#: (`lg`, account entries, ledgers), is the storage layer's alone.
SHARED_WORDS = {"name", "title", "domain", "score", "fit", "state", "cycle", "sdr", "id", "url", "path", "ref",
                "reason", "field", "raw", "top", "bonus", "hits", "bot", "first", "k", "uid", "aid", "mid"}


def _layer_modules() -> list[Path]:
    return sorted(p for p in LAYER.rglob("*.py") if p.name not in STORAGE_LAYER)


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)):
            found.add(id(body[0].value))
    return found


def _keyed(tree: ast.AST) -> list[ast.Constant]:
    """String constants used as a key: `x["a"]`, `x.get("a")`, `x.pop("a")`, `{"a": ...}`."""
    keys: list[ast.Constant] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            keys.append(node.slice)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("get", "pop", "setdefault") and node.args
              and isinstance(node.args[0], ast.Constant)):
            keys.append(node.args[0])
        elif isinstance(node, ast.Dict):
            keys += [k for k in node.keys if isinstance(k, ast.Constant)]
    return [k for k in keys if isinstance(k.value, str)]


def test_no_layer_module_outside_storage_names_an_item_attribute() -> None:
    distinctive = ATTRIBUTES - SHARED_WORDS
    leaks = []
    for path in _layer_modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
                    and node.value in distinctive):
                leaks.append(f"{path.relative_to(LAYER)}:{node.lineno} {node.value!r}")
    assert leaks == [], "item attribute names outside the storage layer:\n" + "\n".join(leaks)


def test_no_layer_module_outside_storage_reads_or_builds_an_item_by_key() -> None:
    """Short stored-JSON keys (`c`, `v`, `x`, `lg`...) and attribute names used as keys."""
    suspicious = (ATTRIBUTES | STORED_JSON_KEYS) - SHARED_WORDS
    leaks = []
    for path in _layer_modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for key in _keyed(tree):
            if key.value in suspicious:
                leaks.append(f"{path.relative_to(LAYER)}:{key.lineno} [{key.value!r}]")
    assert leaks == [], "items read or built outside the storage layer:\n" + "\n".join(leaks)


def test_the_check_would_see_a_leak() -> None:
    """The scan finds what the issue found (`ck`, `lg`, `ver`, short entry keys)."""
    tree = ast.parse('def f(item):\n    return item["ck"], item.get("lg"), {"c": 1, "ver": 2}\n')
    assert {k.value for k in _keyed(tree)} == {"ck", "lg", "c", "ver"}
    assert {"ck", "lg", "ver", "acct", "due_at", "into", "seq"} <= ATTRIBUTES - SHARED_WORDS


def test_every_item_kind_is_listed_with_its_personal_data() -> None:
    """Erasure relies on the list (docs/DESIGN.md, `items.ITEM_KINDS`)."""
    design = (LAYER.parents[1] / "docs" / "DESIGN.md").read_text()
    for kind, (pk, sk, personal) in items.ITEM_KINDS.items():
        assert personal, kind
        assert f"| {kind} | `{pk}` | `{sk}` |" in design, kind
