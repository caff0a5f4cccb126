"""The shape of the code base: which way imports point, and that none go round in a circle.

- ledger/ is the domain core: no module in it imports the web stack, the API or the
  command line (nor argparse, nor templates);
- no import circle between modules (each imports cleanly on its own, ``python -m`` any
  module), nor between packages: api → ledger, wallet → ledger, node_config → ledger, and
  inside ledger/ the capability packages form layers. ``ledger.store.schema`` and the
  migrations gather every capability's tables, so they sit above all of them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ledger", "api", "wallet", "node_config")
# Above every capability by design: they gather all tables for migrations.
SCHEMA_MODULES = ("ledger.store.schema", "ledger.store.migrations")
WEB_AND_CLI = ("fastapi", "starlette", "uvicorn", "jinja2", "argparse", "api", "httpx")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "versions" not in path.parts:  # migration scripts are data for alembic
                found[_module_name(path)] = path
    return found


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    is_package = MODULES[module].name == "__init__.py"
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, *, top_level_only: bool) -> set[str]:
    """Modules `module` imports (project modules by exact name, others as written): those run
    when it is imported, or with `top_level_only=False` also those inside its functions."""
    targets: set[str] = set()

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) and top_level_only:
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # for the type checker only, never run
            if isinstance(child, ast.Import):
                targets.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                source = _resolve(module, child)
                for alias in child.names:  # `from pkg import submodule` imports the submodule
                    full = f"{source}.{alias.name}"
                    targets.add(full if full in MODULES else source)
            walk(child)

    walk(ast.parse(MODULES[module].read_text(encoding="utf-8")))
    return targets


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strongconnect(w)
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

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in list(graph):
        if v not in index:
            strongconnect(v)
    return found


def test_the_domain_core_imports_neither_the_web_stack_nor_the_command_line() -> None:
    offenders = {}
    for module in MODULES:
        if module.split(".")[0] != "ledger":
            continue
        bad = sorted(t for t in _imports(module, top_level_only=False)
                     if t.split(".")[0] in WEB_AND_CLI)
        if bad:
            offenders[module] = bad
    assert offenders == {}


def test_no_import_circle_between_modules() -> None:
    graph = {m: {t for t in _imports(m, top_level_only=True) if t in MODULES} for m in MODULES}
    assert _cycles(graph) == []


def _package_of(module: str) -> str:
    if module.startswith(SCHEMA_MODULES):
        return "ledger.store.schema"
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "ledger" and len(parts) > 1 else parts[0]


def test_no_import_circle_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        source = _package_of(module)
        for target in _imports(module, top_level_only=False):
            if target in MODULES and _package_of(target) != source:
                graph.setdefault(source, set()).add(_package_of(target))
    assert _cycles(graph) == []
    assert "api" not in graph.get("wallet", set()) and "api" not in graph.get("node_config", set())


def _import_alone(name: str) -> str | None:
    done = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    return None if done.returncode == 0 else f"{name}: {(done.stderr.strip().splitlines() or ['?'])[-1]}"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_imports_on_its_own(package: str) -> None:
    """Each module of the package, imported first in a fresh interpreter (``python -m``
    any module works; a circle would fail for the module entered in the middle of it)."""
    names = sorted(m for m in MODULES if m.split(".")[0] == package
                   and not m.endswith("__main__") and not m.startswith("ledger.store.migrations"))
    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [f for f in pool.map(_import_alone, names) if f is not None]
    assert failures == []
