"""The layer package's imports, checked and drawn (`make lint` runs the check).

The package `shared/leadscore` is in folders by layer, bottom to top: domain, rulesfiles,
engine, services, adapters. A module may import from its own folder or a folder below it,
never above, and the imports form no circle. Every import counts: at module level, inside a
function and under `TYPE_CHECKING` (a circle hidden inside a function is still a circle).
An import kept inside a function says why on its line or the line above, and the only
reason is cold start (`# ... cold start ...`): a module that only some invocations need.

    python -m local.layers            # check; exit 1 naming each problem
    python -m local.layers --draw     # the picture (Mermaid) docs/DESIGN.md shows
    python -m local.layers --write    # write the picture into docs/DESIGN.md
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO_ROOT / "shared" / "leadscore"
DESIGN = REPO_ROOT / "docs" / "DESIGN.md"
#: bottom to top: a folder may import itself and those before it
LAYERS = ("domain", "rulesfiles", "engine", "services", "adapters")
PICTURE_START = "<!-- layers: written by `python -m local.layers --write`; make lint checks it -->"
PICTURE_END = "<!-- /layers -->"


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted (leadscore.engine.rules)
    target: str  # the imported module of the package
    line: int
    in_function: bool
    explained: bool  # an in-function import that says it is kept local for cold start


@dataclass
class Package:
    modules: dict[str, Path] = field(default_factory=dict)
    imports: list[Import] = field(default_factory=list)

    def layer_of(self, module: str) -> str | None:
        parts = module.split(".")
        return parts[1] if len(parts) > 2 and parts[1] in LAYERS else None


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(name: str, modules: Iterable[str]) -> str | None:
    known = set(modules)
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _imported_names(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = module.split(".")
        anchor = anchor if is_package else anchor[:-1]
        anchor = anchor[: len(anchor) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    # `from leadscore.adapters import items` imports the module leadscore.adapters.items
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def _explained(lines: Sequence[str], lineno: int) -> bool:
    here = lines[lineno - 1]
    above = lines[lineno - 2] if lineno >= 2 else ""
    return "cold start" in (here.partition("#")[2] + " " + (above.strip() if above.strip().startswith("#") else ""))


def read_package(root: Path = PACKAGE_DIR) -> Package:
    package = Package()
    for path in sorted(root.rglob("*.py")):
        package.modules[_module_name(root, path)] = path
    for module, path in package.modules.items():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text, filename=str(path))
        in_function: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                in_function |= {id(inner) for inner in ast.walk(node) if inner is not node}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            seen: set[str] = set()
            for name in _imported_names(node, module, path.name == "__init__.py"):
                target = _resolve(name, package.modules)
                if target is None or target == module or target in seen:
                    continue
                if module.startswith(target + "."):
                    continue  # a package's own face (`leadscore`, `leadscore.engine`)
                if target.count(".") < 2 and name != target:
                    continue  # `from leadscore.engine import x` resolved to a folder: x is named too
                seen.add(target)
                local = id(node) in in_function
                package.imports.append(Import(module, target, node.lineno, local,
                                              local and _explained(lines, node.lineno)))
    return package


def _circles(package: Package) -> list[list[str]]:
    graph: dict[str, set[str]] = {m: set() for m in package.modules}
    for imp in package.imports:
        graph[imp.source].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def problems(package: Package) -> list[str]:
    """Every upward import, circle, module outside the layer folders and unexplained local
    import, each named with its file and line."""
    found: list[str] = []
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    for module, path in package.modules.items():
        nested = module.count(".") >= 2 and package.layer_of(module) is None
        top_level = module.count(".") == 1 and bool(path.read_text(encoding="utf-8").strip())
        if nested or top_level:
            found.append(f"{path}: {module} is in no layer folder ({', '.join(LAYERS)})")
    for imp in package.imports:
        source, target = package.layer_of(imp.source), package.layer_of(imp.target)
        where = f"{package.modules[imp.source]}:{imp.line}"
        if source and target and rank[target] > rank[source]:
            found.append(f"{where}: upward import: {imp.source} ({source}) imports {imp.target} ({target})")
        if imp.in_function and not imp.explained:
            found.append(f"{where}: {imp.source} imports {imp.target} inside a function without saying why"
                         " (an import kept local for cold start says so: `# ... cold start ...`)")
    for circle in _circles(package):
        found.append("import circle: " + " -> ".join(circle))
    return found


def picture(package: Package) -> str:
    """A Mermaid flowchart: each layer a box of its modules, an arrow per pair of layers
    that import (the number of module imports on it), the top layer first."""
    counts: dict[tuple[str, str], int] = {}
    for imp in package.imports:
        source, target = package.layer_of(imp.source), package.layer_of(imp.target)
        if source and target and source != target:
            counts[(source, target)] = counts.get((source, target), 0) + 1
    lines = ["```mermaid", "flowchart TB"]
    for layer in reversed(LAYERS):
        members = sorted(m.split(".", 2)[2] for m in package.modules
                         if package.layer_of(m) == layer and package.modules[m].name != "__init__.py")
        lines.append(f"  subgraph {layer}[\"{layer}/\"]")
        lines.append("    direction LR")
        lines += [f"    {layer}.{m}[\"{m}\"]".replace(".", "_", 1).replace(".", "/") for m in members]
        lines.append("  end")
    for (source, target), n in sorted(counts.items(), key=lambda kv: (-LAYERS.index(kv[0][0]),
                                                                    -LAYERS.index(kv[0][1]))):
        lines.append(f"  {source} -->|{n}| {target}")
    lines.append("```")
    return "\n".join(lines)


def design_with_picture(design: str, drawn: str) -> str:
    start, end = design.find(PICTURE_START), design.find(PICTURE_END)
    if start < 0 or end < start:
        raise SystemExit(f"{DESIGN}: no {PICTURE_START!r} ... {PICTURE_END!r} section to write the picture in")
    return design[: start + len(PICTURE_START)] + "\n" + drawn + "\n" + design[end:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.layers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--draw", action="store_true", help="print the picture (Mermaid)")
    parser.add_argument("--write", action="store_true", help="write the picture into docs/DESIGN.md")
    args = parser.parse_args(argv)
    package = read_package()
    drawn = picture(package)
    if args.draw:
        print(drawn)
        return 0
    if args.write:
        DESIGN.write_text(design_with_picture(DESIGN.read_text(encoding="utf-8"), drawn), encoding="utf-8")
    found = problems(package)
    design = DESIGN.read_text(encoding="utf-8")
    if design_with_picture(design, drawn) != design:
        found.append(f"{DESIGN}: the picture of the imports is out of date: run `python -m local.layers --write`")
    for problem in found:
        print(problem, file=sys.stderr)
    layers = {package.layer_of(m) for m in package.modules} - {None}
    print(f"layers: {len(package.modules)} modules in {len(layers)} layers, {len(package.imports)} imports, "
          f"{len(found)} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
