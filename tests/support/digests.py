"""Which functions need the log key (LogKeySecret): read from the code, not listed by hand.

The key is used by `engine.identity.key_digest` (contact digests in logs) and
`adapters.keyed.keyed_digest` (the digests suppression records are kept under). A function
needs it when a module its handler reaches (its `leadscore` imports, followed through the
layer, imports inside functions included) calls one of them, or uses a store method that
does (`store.load_suppressed`...). Such a function needs LOG_KEY_SECRET and GetSecretValue on
LogKeySecret; no other function may have them (least privilege).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LAYER = REPO_ROOT / "shared"
KEYED = frozenset({"key_digest", "keyed_digest"})
#: where the keyed digests are defined, and the store (whose methods are counted where they are used)
DEFINERS = frozenset({"leadscore.engine.identity", "leadscore.adapters.keyed"})
STORE_MODULES = frozenset({"leadscore.adapters.storage", "leadscore.adapters.table"})


def _module_file(module: str) -> Path | None:
    base = LAYER.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _called_names(node: ast.AST) -> set[str]:
    names = set()
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            func = call.func
            names.add(func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else "")
    return names


@cache
def _parsed(module: str) -> ast.Module:
    path = _module_file(module)
    assert path is not None, module
    return ast.parse(path.read_text(), filename=str(path))


@cache
def _imports(module: str) -> frozenset[str]:
    """The leadscore modules a module imports (anywhere in it)."""
    imported: set[str] = set()
    for node in ast.walk(_parsed(module)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "leadscore":
            imported.add(node.module)
            imported |= {f"{node.module}.{alias.name}" for alias in node.names}  # `from pkg import module`
        elif isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names if alias.name.split(".")[0] == "leadscore"}
    return frozenset(m for m in imported if _module_file(m) is not None)


@cache
def _keyed_store_methods() -> frozenset[str]:
    """Methods of the store's classes that make a keyed digest (directly, or through another)."""
    methods: dict[str, ast.FunctionDef] = {}
    for module in STORE_MODULES:
        for cls in (n for n in _parsed(module).body if isinstance(n, ast.ClassDef)):
            methods.update({m.name: m for m in cls.body if isinstance(m, ast.FunctionDef)})
    keyed = {name for name, method in methods.items() if _called_names(method) & KEYED}
    while True:  # a method reaching a keyed one through `self.<method>(...)`
        more = {name for name, method in methods.items() if name not in keyed and _called_names(method) & keyed}
        if not more:
            return frozenset(keyed)
        keyed |= more


def _uses_keyed_store_method(module: str) -> bool:
    wanted = _keyed_store_methods()
    for node in ast.walk(_parsed(module)):
        if isinstance(node, ast.Attribute) and node.attr in wanted:
            owner = node.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            if "store" in name:
                return True
    return False


def key_users(handler: Path) -> set[str]:
    """The modules reached from `handler` (a function's app.py) that make a keyed digest."""
    tree = ast.parse(handler.read_text(), filename=str(handler))
    todo = [m for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
            and node.module.startswith("leadscore.")
            for m in (node.module, *(f"{node.module}.{a.name}" for a in node.names)) if _module_file(m)]
    seen: set[str] = set()
    users: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        if module not in DEFINERS | STORE_MODULES and (
                _called_names(_parsed(module)) & KEYED or _uses_keyed_store_method(module)):
            users.add(module)
        todo += _imports(module)
    return users


def needs_log_key(code_uri: str) -> bool:
    """Whether the function of this CodeUri (`functions/aggregate/`) needs the log key."""
    return bool(key_users(REPO_ROOT / code_uri / "app.py"))
