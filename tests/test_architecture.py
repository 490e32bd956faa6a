"""The import-layer contract of memlens (docs/architecture.md, "Layers").

Reads every module under ``src/memlens`` with ``ast`` (nothing is imported) and
fails on an import that goes upward a layer or on an import circle among memlens
modules. Imports under ``if TYPE_CHECKING:`` do not count; imports inside functions
do (a lazy import is still a dependency).

Classifying a new module: the longest matching prefix in ``LAYERS`` decides its
layer, so ``memlens.context.memory.manager`` is an analysis because
``memlens.context`` is, and ``memlens.heap.lines`` is an analysis because only the
named heap meters are meters. Add a row to ``LAYERS`` only when a new module
belongs somewhere other than its package's default.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"

CORE, METERS, ANALYSES, COMPOSITION, FACES = 1, 2, 3, 4, 5
LAYER_NAMES = {
    CORE: "core",
    METERS: "meters",
    ANALYSES: "analyses and stores",
    COMPOSITION: "composition",
    FACES: "faces",
}

# Prefix -> layer; the longest matching prefix wins (a prefix matches the module
# itself and everything below it). Package defaults first, then the exceptions.
LAYERS: dict[str, int] = {
    # the public facade re-exports lazily from every layer; nothing imports it back
    "memlens": FACES,
    "memlens.core": CORE,
    # heap: the meters are named; anything else in heap/ is an analysis (the doctor,
    # deep dives such as heap/lines.py)
    "memlens.heap": ANALYSES,
    "memlens.heap.process_meter": METERS,
    "memlens.heap.heap_meter": METERS,
    "memlens.heap.gc_meter": METERS,
    "memlens.heap.frames": METERS,
    "memlens._sampler": METERS,
    "memlens.heap.sampler": METERS,  # the sampling tracer's Python side
    "memlens.heap.native_ext": METERS,  # loads the optional C accelerators
    "memlens.heap.peaks": METERS,  # per-reader traced peaks over tracemalloc's one peak
    # context: the measured things are meters; everything else (profile, diagnosis,
    # timeline, leaks, monitor thresholds, context/memory/, context/shared/) analyses
    "memlens.context": ANALYSES,
    "memlens.context.items": METERS,
    "memlens.context.layers": METERS,
    "memlens.context.tokens": METERS,
    "memlens.context.models": METERS,
    "memlens.context.images": METERS,
    "memlens.context.formats": METERS,
    "memlens.context.readers": METERS,
    "memlens.context.session": METERS,
    "memlens.store": ANALYSES,
    "memlens.profiling": COMPOSITION,
    "memlens.service": COMPOSITION,
    "memlens.remedies": COMPOSITION,
    "memlens.service.http": FACES,
    "memlens.service.bootstrap": FACES,  # the sitecustomize entry of the autostart hook
    "memlens._autostart": FACES,
    "memlens.__main__": FACES,
    "memlens.cli": FACES,
    "memlens.report": FACES,
    "memlens.pytest_plugin": FACES,
}

# Package facades: the package's own ``__init__`` is a face (it joins layers for the
# user), while the modules under it keep the layer ``LAYERS`` gives them.
FACADES: dict[str, int] = {
    "memlens.service": FACES,  # wires Monitor.serve_http to service/http.py
}


def layer_of(module: str) -> tuple[int, str]:
    """The layer of ``module`` and the ``LAYERS`` prefix that decided it."""
    if module in FACADES:
        return FACADES[module], f"{module} (facade)"
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYERS:
            return LAYERS[prefix], prefix
    raise AssertionError(f"{module} is outside memlens")


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """Collects (imported module, line) pairs, skipping TYPE_CHECKING blocks."""

    def __init__(self, module: str, is_package: bool, modules: set[str]) -> None:
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.modules = modules
        self.found: list[tuple[str, int]] = []

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            if node.level > 1:
                base = base[: len(base) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        for alias in node.names:
            sub = f"{target}.{alias.name}"
            # `from pkg import submodule` depends on the submodule, not on pkg's body
            self._add(sub if sub in self.modules else target, node.lineno)

    def _add(self, name: str, line: int) -> None:
        if name != "memlens" and not name.startswith("memlens."):
            return
        while name not in self.modules and "." in name:
            name = name.rpartition(".")[0]
        if name != self.module and all(name != seen for seen, _ in self.found):
            self.found.append((name, line))


def import_graph() -> dict[str, list[tuple[str, int]]]:
    """memlens module -> the memlens modules it imports, with the line of each import."""
    files = {_module_name(p): p for p in (SRC / "memlens").rglob("*.py")}
    graph = {}
    for module, path in sorted(files.items()):
        visitor = _Imports(module, path.name == "__init__.py", set(files))
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        graph[module] = visitor.found
    return graph


def _cycles(graph: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target, _ in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


HOW_TO = (
    "\nLayers (low to high): core < meters < analyses and stores < composition < faces; "
    "a module may import only its own layer or lower.\nFix the import (move the shared "
    "piece down, or pass a callback up), or, if the module is classified wrongly, add "
    "a prefix row to LAYERS in tests/test_architecture.py and to docs/architecture.md."
)


def test_every_module_has_a_layer() -> None:
    for module in import_graph():
        layer_of(module)


def test_no_upward_imports() -> None:
    problems = []
    for module, imports in import_graph().items():
        mine, my_rule = layer_of(module)
        for target, line in imports:
            theirs, their_rule = layer_of(target)
            if theirs > mine:
                problems.append(
                    f"{module} (line {line}) imports {target}: "
                    f"{LAYER_NAMES[mine]} (by {my_rule!r}) may not import "
                    f"{LAYER_NAMES[theirs]} (by {their_rule!r})"
                )
    assert not problems, "upward imports:\n  " + "\n  ".join(problems) + HOW_TO


def test_no_import_circles() -> None:
    graph = import_graph()
    problems = []
    for component in _cycles(graph):
        members = set(component)
        edges = [
            f"{source} (line {line}) -> {target}"
            for source in component
            for target, line in graph[source]
            if target in members
        ]
        problems.append("circle among " + ", ".join(component) + ":\n    " + "\n    ".join(edges))
    assert not problems, (
        "import circles:\n  "
        + "\n  ".join(problems)
        + "\nBreak each circle: move what both sides need into a lower module, or "
        "invert one edge with a callback."
    )


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        ("memlens.core.findings", CORE),
        ("memlens.heap.heap_meter", METERS),
        ("memlens.heap.lines", ANALYSES),
        ("memlens.heap.doctor.analyze", ANALYSES),
        ("memlens.context.readers.claude_code", METERS),
        ("memlens.context.memory.manager", ANALYSES),
        ("memlens.context.shared", ANALYSES),
        ("memlens.store.redis", ANALYSES),
        ("memlens._sampler", METERS),
        ("memlens.profiling", COMPOSITION),
        ("memlens.remedies.ladder", COMPOSITION),
        ("memlens.service.monitor", COMPOSITION),
        ("memlens.service.http", FACES),
        ("memlens.cli.deep", FACES),
    ],
)
def test_new_modules_are_classified_by_prefix(module: str, layer: int) -> None:
    assert layer_of(module)[0] == layer


def test_the_checker_sees_upward_imports_and_circles(tmp_path: Path) -> None:
    graph = {
        "memlens.core.a": [("memlens.cli.main", 3)],
        "memlens.cli.main": [("memlens.core.a", 1)],
    }
    assert _cycles(graph) == [["memlens.cli.main", "memlens.core.a"]]
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from memlens.cli import main\n"
        "def f():\n    from . import b\n"
    )
    visitor = _Imports("memlens.core.a", False, {"memlens.core.b", "memlens.cli.main"})
    visitor.visit(tree)
    assert visitor.found == [("memlens.core.b", 5)]
