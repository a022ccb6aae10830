"""No import cycle among the project's modules, counting imports made inside functions
(a lazy import only hides a cycle until the function runs) and imports made only for
type checking (a cycle the type checker follows still ties two modules together: neither
can be read, moved or tested without the other), and every edgefill module imports on
its own."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Final

import pytest

ROOT = Path(__file__).parents[2]
PACKAGES = ("edgefill", "shared", "edge_origin_request", "backfill_worker", "prewarm_worker")

# Type-only imports (importer, imported) allowed to close a cycle while another branch
# removes them. Only an import made under ``if TYPE_CHECKING:`` is let through: the same
# edge made at run time is a cycle again. Empty: the last one (backfill_worker's
# refresh_record → backfill) went with the regroup into packages.
KNOWN_TYPE_ONLY_CYCLES: Final[frozenset[tuple[str, str]]] = frozenset()


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


def imports_of(name: str, path: Path, known: set[str]) -> dict[str, bool]:
    """The project modules ``name`` imports anywhere (also inside functions and under
    ``if TYPE_CHECKING:``), each True when some import of it runs, False when every
    import of it is for type checking only."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, bool] = {}

    def resolve(candidate: str, runs: bool) -> None:
        while candidate and candidate not in known:  # a.b.c → a.b if c is a name
            candidate = candidate.rpartition(".")[0]
        if candidate and candidate != name:
            found[candidate] = found.get(candidate, False) or runs

    def visit(node: ast.AST, runs: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                resolve(alias.name, runs)
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(node, package)
            for alias in node.names:
                resolve(f"{base}.{alias.name}", runs)
        for child, child_runs in _children(node, runs):
            visit(child, child_runs)

    visit(tree, runs=True)
    return found


def _children(node: ast.AST, runs: bool) -> list[tuple[ast.AST, bool]]:
    """``node``'s children, each with whether it runs: never under ``if TYPE_CHECKING:``."""
    if isinstance(node, ast.If) and _is_type_checking(node):
        return [(child, False) for child in node.body] + [(child, runs) for child in node.orelse]
    return [(child, runs) for child in ast.iter_child_nodes(node)]


def imported_by(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports anywhere, for type checking included."""
    return set(imports_of(name, path, known))


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


def import_graph(
    modules: dict[str, Path] | None = None,
    allowed: Collection[tuple[str, str]] = KNOWN_TYPE_ONLY_CYCLES,
) -> dict[str, set[str]]:
    """Who imports whom among ``modules`` (the project's by default), type-only imports
    included, except those in ``allowed`` that are type-only."""
    modules = project_modules() if modules is None else modules
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = imports_of(name, path, known)
        graph[name] = {
            other for other, runs in found.items() if runs or (name, other) not in allowed
        }
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
    # Then the lazy one is a cycle and the type-only one is an edge too
    assert find_cycle(graph) == ["pkg.cli", "pkg.lab_commands", "pkg.demo", "pkg.cli"]
    assert graph["pkg.typed"] == {"pkg.cli"}


def synthetic_package(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    """Modules ``pkg.<name>`` written under ``tmp_path``, as ``import_graph`` takes them."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "__init__.py").write_text("", encoding="utf-8")
    modules = {"pkg": tmp_path / "__init__.py"}
    for name, text in files.items():
        modules[f"pkg.{name}"] = tmp_path / f"{name}.py"
        modules[f"pkg.{name}"].write_text(text, encoding="utf-8")
    return modules


# A scene that imports the demo only for its type, as edgefill/scenes once did.
TYPED_DEMO = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import demo\n"


def test_a_cycle_made_only_for_type_checking_is_found(tmp_path: Path) -> None:
    # Given demo imports a scene and the scene imports demo only under TYPE_CHECKING
    modules = synthetic_package(
        tmp_path,
        {
            "demo": "from pkg import scene\n",
            "scene": TYPED_DEMO,
        },
    )
    # Then it is a cycle, with the project's allow-list as with none
    assert find_cycle(import_graph(modules)) == ["pkg.demo", "pkg.scene", "pkg.demo"]
    assert find_cycle(import_graph(modules, allowed=())) == ["pkg.demo", "pkg.scene", "pkg.demo"]


def test_an_allowed_type_only_import_ends_its_cycle_but_a_run_time_one_does_not(
    tmp_path: Path,
) -> None:
    # Given the same pair, allowed, once type-only and once made at run time in a function
    typed = {"demo": "from pkg import scene\n", "scene": TYPED_DEMO}
    lazy = {"demo": "from pkg import scene\n", "scene": "def run():\n    from pkg import demo\n"}
    allowed = {("pkg.scene", "pkg.demo")}
    # Then the type-only one is no cycle any more, the run-time one still is
    assert find_cycle(import_graph(synthetic_package(tmp_path / "typed", typed), allowed)) is None
    graph = import_graph(synthetic_package(tmp_path / "lazy", lazy), allowed)
    assert find_cycle(graph) == ["pkg.demo", "pkg.scene", "pkg.demo"]


def test_every_allowed_type_only_import_still_exists() -> None:
    # An entry whose import is gone (or now runs) must leave the allow-list with it.
    modules = project_modules()
    known = set(modules)
    for importer, imported in sorted(KNOWN_TYPE_ONLY_CYCLES):
        assert importer in modules, f"{importer} is gone: drop it from KNOWN_TYPE_ONLY_CYCLES"
        found = imports_of(importer, modules[importer], known)
        assert found.get(imported) is False, f"{importer} → {imported} is not type-only"


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
