"""The item forms (adapters/items.py) are the only code that names an item attribute or a key
prefix: the rest of the layer (the store and the stream adapter included), the functions, the
local tools and the bench take and return records (domain/records.py) and go through items.py
for a key or an item."""

from __future__ import annotations

import ast
from pathlib import Path

from leadscore.adapters import items

REPO = Path(__file__).resolve().parents[2]
LAYER = REPO / "shared" / "leadscore"
ITEM_FORMS = LAYER / "adapters" / "items.py"
#: Every folder of code that could touch the table: the layer, the functions, the local tools, the bench.
FOLDERS = (LAYER, REPO / "functions", REPO / "local", REPO / "bench")

#: Every item kind's attributes (items.ITEM_KINDS lists the kinds).
ATTRIBUTES = set(items.EVENT_ATTRIBUTES + items.CONTACT_ATTRIBUTES + items.ACCOUNT_ATTRIBUTES
                 + items.REJECTED_ATTRIBUTES + items.ASSIGNMENT_ATTRIBUTES + items.POOL_COUNTER_ATTRIBUTES
                 + items.SDR_DAY_ATTRIBUTES + items.SDR_RECORD_ATTRIBUTES + items.SDR_ACTIVITY_ATTRIBUTES
                 + items.FEEDBACK_ATTRIBUTES + items.SUPPRESSION_ATTRIBUTES + items.ERASURE_MARK_ATTRIBUTES
                 + items.HISTORY_ATTRIBUTES)
#: Keys of the stored JSON: the contact state's, the entries', the ledgers' and counters' all;
#: of the maps of routing status, hand assignment and last feedback those of two letters or
#: more (their one-letter keys, `o`, `s`, `h`, `w`, are a regular expression's groups elsewhere).
STORED_JSON_KEYS = set(items.ENTRY_KEYS + items.STATE_KEYS + items.LEDGER_KEYS + items.COUNTER_KEYS) | {
    key for key in items.LAST_FEEDBACK_KEYS + items.ROUTING_KEYS + items.HAND_KEYS if len(key) > 1}
#: Every key prefix: a text starting with one (`f"C#{key}"` included) builds a key.
KEY_PREFIXES = tuple(items.KEY_PREFIXES)
#: Whole key values (index partitions, fixed sort keys) too short or too plain to be prefixes.
KEY_VALUES = set(items.KEY_VALUES)
#: Attribute names that are also words of the public interfaces or the domain: keys of the
#: read API's and the bus's JSON, Segment traits, the pixel's query parameters (`k`, `uid`,
#: `aid`, `mid`, `url`, `ref`), record fields, configuration keys. Seen in domain code they
#: name those, not an item; every other attribute name, and every key of the stored JSON
#: (`lg`, account entries, ledgers), is the storage layer's alone.
SHARED_WORDS = {"name", "title", "domain", "score", "fit", "state", "cycle", "sdr", "id", "url", "path", "ref",
                "reason", "field", "raw", "top", "bonus", "hits", "bot", "first", "k", "uid", "aid", "mid",
                # the read, feedback, assign and SDR routes' JSON (an assignment's pool, mode and
                # SDRs tried; a feedback's or a hand assignment's note, author and time; a book's
                # open accounts)
                "pool", "mode", "tried", "note", "by", "at", "open",
                # the jobs' answers (accounts due), the Slack fields (the SLA's wording)
                "due", "sla"}


def _modules() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in folder.rglob("*.py")
                  if p != ITEM_FORMS and "node_modules" not in p.parts)


def _name(path: Path) -> str:
    return str(path.relative_to(REPO))


def _texts(tree: ast.AST, *, parts: bool) -> list[ast.Constant]:
    """String constants, docstrings left out; with `parts`, f-strings' literal parts too (a
    key prefix starts one: `f"C#{key}"`; a word inside one, `f"acct{i}.io"`, names nothing)."""
    docs = _docstrings(tree)
    if not parts:
        docs |= {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    return [node for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs]


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


def test_no_module_outside_the_item_forms_names_an_item_attribute() -> None:
    """Any text equal to an attribute name of two letters or more (a one-letter name, the
    counter's `n`, is checked where it is used as a key)."""
    distinctive = {name for name in ATTRIBUTES - SHARED_WORDS if len(name) > 1}
    leaks = []
    for path in _modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        leaks += [f"{_name(path)}:{node.lineno} {node.value!r}" for node in _texts(tree, parts=False)
                  if node.value in distinctive]
    assert leaks == [], "item attribute names outside items.py:\n" + "\n".join(leaks)


def test_no_module_outside_the_item_forms_reads_or_builds_an_item_by_key() -> None:
    """Short stored-JSON keys (`c`, `v`, `x`, `lg`...) and attribute names used as keys."""
    suspicious = (ATTRIBUTES | STORED_JSON_KEYS) - SHARED_WORDS
    leaks = []
    for path in _modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        leaks += [f"{_name(path)}:{key.lineno} [{key.value!r}]" for key in _keyed(tree) if key.value in suspicious]
    assert leaks == [], "items read or built outside items.py:\n" + "\n".join(leaks)


def test_no_module_outside_the_item_forms_builds_a_key() -> None:
    """Key prefixes (`C#`, `A#`, `RT#`, `SDR#`, `c#`...) and fixed key values (`DUE`, `ROUTE`, `RR`)."""
    leaks = []
    for path in _modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        leaks += [f"{_name(path)}:{node.lineno} {node.value!r}" for node in _texts(tree, parts=True)
                  if node.value.startswith(KEY_PREFIXES) or node.value in KEY_VALUES]
    assert leaks == [], "keys built outside items.py:\n" + "\n".join(leaks)


def test_the_check_would_see_a_leak() -> None:
    """The scan finds what the issue found (`ck`, `lg`, `ver`, short entry keys)."""
    tree = ast.parse('def f(item):\n    return item["ck"], item.get("lg"), {"c": 1, "ver": 2}\n')
    assert {k.value for k in _keyed(tree)} == {"ck", "lg", "c", "ver"}
    assert {"ck", "lg", "ver", "acct", "due_at", "into", "seq", "own", "att", "pz", "out"} <= ATTRIBUTES - SHARED_WORDS
    prefixed = ast.parse('def f(key):\n    return f"C#{key}", "SDR#" + key, "ROUTE"\n')
    found = [n.value for n in _texts(prefixed, parts=True)]
    assert {t for t in found if t.startswith(KEY_PREFIXES) or t in KEY_VALUES} == {"C#", "SDR#", "ROUTE"}


def test_every_item_kind_has_its_attributes_and_its_key_prefixes_checked() -> None:
    """A new item kind comes with its attribute list and its key prefixes, or this fails."""
    assert len(items.ITEM_KINDS) == 13
    plain = KEY_VALUES | {items.PROFILE, items.SDR_RECORD}  # `P`, `S`: too plain to look for, keyed by `sk`
    for kind, (pk, sk, _) in items.ITEM_KINDS.items():
        for part in (pk, sk):
            fixed = part.split("<", 1)[0]
            assert not fixed or fixed.startswith(KEY_PREFIXES) or fixed in plain, (kind, part)


def test_every_item_kind_is_listed_with_its_personal_data() -> None:
    """Erasure relies on the list (docs/DESIGN.md, `items.ITEM_KINDS`)."""
    design = (LAYER.parents[1] / "docs" / "DESIGN.md").read_text()
    for kind, (pk, sk, personal) in items.ITEM_KINDS.items():
        assert personal, kind
        assert f"| {kind} | `{pk}` | `{sk}` |" in design, kind
