"""docs/ARCHITECTURE.md is the map of the package, and the package keeps its shape.

Read from the source files (AST), in this process: every module has a row, every row's imports
are the module's imports, no import cycle (imports inside functions count), no module over
450 lines, and every module's docstring starts with a line saying its one job.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from clients import REPO_ROOT

PACKAGE = REPO_ROOT / "replicate_explain"
ARCHITECTURE = REPO_ROOT / "docs" / "ARCHITECTURE.md"
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    """Every module file of the package, by name relative to it (``_api``, ``cli/_output``)."""
    return {path.relative_to(PACKAGE).with_suffix("").as_posix(): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules ``name`` imports anywhere in its file (functions and
    ``TYPE_CHECKING`` blocks included)."""
    package = name.split("/")[:-1]

    def resolve(dotted: str) -> str | None:
        slashed = dotted.replace(".", "/")
        if slashed in modules:
            return slashed
        init = f"{slashed}/__init__" if slashed else "__init__"
        return init if init in modules else None

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                parts = base + (node.module.split(".") if node.module else [])
            elif node.module and (node.module + ".").startswith("replicate_explain."):
                parts = node.module.split(".")[1:]
            else:
                continue
            module = ".".join(parts)
            for alias in node.names:  # ``from . import _state`` imports the module _state
                submodule = resolve(f"{module}.{alias.name}" if module else alias.name)
                if submodule is not None:
                    targets.append(submodule)
                elif resolve(module) is not None:
                    targets.append(resolve(module) or "")
        elif isinstance(node, ast.Import):
            targets = [
                resolve(alias.name.partition(".")[2]) or ""
                for alias in node.names
                if alias.name.startswith("replicate_explain.")
            ]
        found.update(target for target in targets if target and target != name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _rows() -> dict[str, set[str]]:
    """The "Modules" table of docs/ARCHITECTURE.md: module -> the modules its row says it imports."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("\n## Modules\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 4:
            rows[cells[0].strip("`")] = set(re.findall(r"`([^`]+)`", cells[3]))
    return rows


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), or a self-import."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_every_module_has_a_row_and_every_row_a_module() -> None:
    """The "Modules" table lists exactly the module files of the package."""
    assert sorted(_rows()) == sorted(_modules())


def test_each_row_lists_exactly_the_modules_it_imports() -> None:
    """A row's "imports from the package" column is what the module imports, inside functions too."""
    graph, rows = _graph(), _rows()
    wrong = {
        name: {"row says": sorted(rows.get(name, set())), "module imports": sorted(imports)}
        for name, imports in graph.items()
        if rows.get(name, set()) != imports
    }
    assert wrong == {}


def test_no_import_cycle() -> None:
    """No module imports, even inside a function, a module that imports it back."""
    graph = _graph()
    assert _cycles(graph) == []


def test_the_cycle_checker_finds_cycles() -> None:
    """The checker above is not blind: a two-module and a three-module cycle are found."""
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": set(), "x": {"y"}, "y": {"z"}, "z": {"x"}}
    assert _cycles(graph) == [["a", "b"], ["x", "y", "z"]]


def test_no_module_is_over_450_lines() -> None:
    """Each module does one job, in at most 450 lines."""
    lengths = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in _modules().items()}
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


def test_each_module_docstring_says_its_job_on_its_first_line() -> None:
    """Every module starts with a docstring whose first line is one whole sentence or phrase."""
    firsts = {}
    for name, path in _modules().items():
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        firsts[name] = docstring.splitlines()[0] if docstring else ""
    assert {name: line for name, line in firsts.items() if not re.search(r"[.:)?]$", line)} == {}


#: What the floor (``_mask/``) may import from the package: itself and the shared helpers.
FLOOR_MAY_IMPORT = {"_common"}


def test_the_floor_imports_nothing_from_diagnosis() -> None:
    """Masking is the floor of the house: every module of ``_mask/`` imports only other modules of
    ``_mask/`` and ``_common`` (no snapshot, credential, facts, matcher, adapter or renderer), so
    every surface can use it and it can never reach up into diagnosis."""
    graph = _graph()
    floor = {name for name in graph if name.startswith("_mask/")}
    outside = {name: sorted(graph[name] - floor - FLOOR_MAY_IMPORT) for name in sorted(floor)}
    assert (sorted(floor), outside) == (
        ["_mask/__init__", "_mask/_logrecord", "_mask/_redact", "_mask/_scrub"],
        {name: [] for name in sorted(floor)},
    )
