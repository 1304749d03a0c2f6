"""The package's shape: data flows one way, so no module imports another that (through others) imports it,
and no module reaches into another's private names. Read from the source, nothing imported."""
from __future__ import annotations

import ast
from pathlib import Path

RAG = Path(__file__).resolve().parent.parent / "rag"


def _module(path: Path) -> str:
    parts = path.relative_to(RAG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, list[ast.ImportFrom | ast.Import]]:
    return {_module(f): [n for n in ast.parse(f.read_text(encoding="utf-8")).body
                         if isinstance(n, (ast.Import, ast.ImportFrom))] for f in RAG.rglob("*.py")}


def _graph() -> dict[str, set[str]]:
    """Module -> the rag modules it imports at import time (imports inside functions are lazy: no cycle)."""
    imports = _imports()
    graph = {}
    for mod, nodes in imports.items():
        deps = set()
        for n in nodes:
            if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("rag"):
                deps |= {f"{n.module}.{a.name}" if f"{n.module}.{a.name}" in imports else n.module for a in n.names}
            elif isinstance(n, ast.Import):
                deps |= {a.name for a in n.names if a.name.startswith("rag")}
        graph[mod] = deps & set(imports)
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` (a path that comes back to its start), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(v: str, path: list[str]) -> list[str] | None:
        state[v] = 1
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return path[path.index(w):] + [w]
            if w not in state and (found := visit(w, path + [w])):
                return found
        state[v] = 2
        return None

    return next((c for v in sorted(graph) if v not in state and (c := visit(v, [v]))), None)


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_imports_itself_through_others():
    assert cycle(_graph()) is None


def test_no_module_imports_another_modules_private_names():
    private = [f"{mod}: from {n.module} import {a.name}" for mod, nodes in _imports().items() for n in nodes
               if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("rag")
               for a in n.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert private == []
