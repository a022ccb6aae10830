"""No import cycle among the project's modules, counting imports made inside functions
(a lazy import only hides a cycle until the function runs), and every edgefill module
imports on its own."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGES = ("edgefill", "shared", "edge_origin_request", "backfill_worker", "prewarm_worker")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _from_base(node: ast.ImportFrom, package: str) -> str:
    """The absolute module of ``from <base> import …`` (relative imports resolved)."""
    base = node.module or ""
    if not node.level:
        return base
    anchor = package.split(".")
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([*anchor, base] if base else anchor)


def imported_by(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports anywhere (also inside functions), except under
    ``if TYPE_CHECKING:``, which never runs."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def resolve(candidate: str) -> None:
        while candidate and candidate not in known:  # a.b.c → a.b if c is a name
            candidate = candidate.rpartition(".")[0]
        if candidate and candidate != name:
            found.add(candidate)

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                resolve(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(node, package)
            for alias in node.names:
                resolve(f"{base}.{alias.name}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, …, a]``, or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == 1:
                return [*stack[stack.index(child) :], child]
            if child not in state and (cycle := walk(child)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := walk(node)):
            return cycle
    return None


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    graph = {name: imported_by(name, path, known) for name, path in modules.items()}
    # importing a.b.c first imports its packages a and a.b
    for name in modules:
        graph[name] |= {p for p in _parents(name) if p in known and p != name}
    return graph


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def test_the_project_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "edgefill.cli" in graph and "edgefill.demo" in graph
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_lazy_import_cycle(tmp_path: Path) -> None:
    # Given cli → lab_commands (top level) → demo → cli (inside a function), as it once was
    files = {
        "cli": "from pkg import lab_commands\n",
        "lab_commands": "def run():\n    from pkg import demo\n",
        "demo": "def operator():\n    from pkg import cli\n",
        "typed": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import cli\n",
    }
    known = {f"pkg.{name}" for name in files} | {"pkg"}
    graph: dict[str, set[str]] = {}
    for name, text in files.items():
        path = tmp_path / f"{name}.py"
        path.write_text(text, encoding="utf-8")
        graph[f"pkg.{name}"] = imported_by(f"pkg.{name}", path, known) - {"pkg"}
    # Then the lazy one is a cycle and the type-only one is not an edge
    assert find_cycle(graph) == ["pkg.cli", "pkg.lab_commands", "pkg.demo", "pkg.cli"]
    assert graph["pkg.typed"] == set()


@pytest.mark.parametrize(
    "name", sorted(n for n in project_modules() if n.split(".")[0] == "edgefill")
)
def test_every_edgefill_module_imports(name: str) -> None:
    assert importlib.import_module(name).__name__ == name


def test_the_messaging_commands_load_neither_moto_nor_the_warm_engine() -> None:
    # Given a fresh interpreter that imports only the CLI and builds its parser
    code = (
        "import sys, edgefill.cli as c; c.build_parser(); "
        "print(' '.join(m for m in ('moto', 'prewarm_worker.engine', 'edgefill.lab.lab', "
        "'edgefill.demo') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    # Then none of the heavy modules were loaded
    assert loaded == ""
