"""The package's imports form no circle, counting the imports inside functions."""

import ast
import os
from pathlib import Path

import flowprior

PACKAGE = Path(flowprior.__file__).parent
#: The orchestrators: only the CLI, the package faces and each other may import them.
ORCHESTRATORS = {"flowprior.workflows.run", "flowprior.workflows.enhanced"}


def _modules() -> dict[str, Path]:
    """Every flowprior module by dotted name (the adapters through the ``integrations`` link)."""
    found = {}
    paths = [Path(d, f) for d, _, fs in os.walk(PACKAGE, followlinks=True) for f in fs if f.endswith(".py")]
    for path in sorted(paths):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict) -> set[str]:
    """The flowprior modules that ``path`` imports anywhere in it (relative or absolute)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        found.update(t for t in targets if t in modules and t != name)
    return found


def _graph() -> dict[str, set[str]]:
    """Imports between modules; package faces (``__init__``) are left out, their re-exports are not design."""
    modules = _modules()
    faces = {n for n, p in modules.items() if p.name == "__init__.py"}
    return {n: _imports(n, p, modules) - faces for n, p in modules.items() if n not in faces}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_circle():
    graph = _graph()
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_walk_sees_every_layer():
    graph = _graph()
    for name in ("flowprior.flows.maf", "flowprior.workflows.stages", "flowprior.integrations.dynesty",
                 "flowprior.cli.commands", "flowprior.reweighting"):
        assert name in graph


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_building_blocks_never_import_the_orchestrator():
    graph = _graph()
    users = {m for m, deps in graph.items() if deps & ORCHESTRATORS}
    assert users - ORCHESTRATORS - {"flowprior.cli.commands"} == set()


def test_no_module_imports_another_modules_private_names():
    modules = _modules()
    found = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flowprior"):
                found += [f"{name}: {node.module}.{a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert found == []
