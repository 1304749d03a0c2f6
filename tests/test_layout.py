"""The package's shape, read from the source (nothing imported): the stages in order, no import circle, no
module reaching into another's private names.

rag/ is laid out by stage (README "Architecture"): data flows ingest -> index -> answer; eval and train sit beside
them; the two faces, the command line (rag/cli.py, rag/__main__.py) and the server (rag/serve/), sit on top; the
shared modules (config, types, errors, text, models) sit at the top of the folder. A module may import only the
stages below it, lazy imports (inside functions) included:

    top (shared)  only the shared modules
    index         + index                  (never ingest, answer, serve, eval, train)
    ingest        + index, ingest          (a write into the corpus ends in an index update: ingest.manage -> index.build)
    answer        + answer                 (never serve, eval, train)
    eval          + eval                   (never a face, never train)
    train         + eval, train            (never a face)
    serve         the stages, serve        (never the other face, never eval or train)
    cli           everything, but of serve only the doors its __init__ lists in __all__ (`rag serve`, `rag users`)
"""
from __future__ import annotations

import ast
from pathlib import Path

RAG = Path(__file__).resolve().parent.parent / "rag"

SHARED = "top"
STAGES = ("ingest", "index", "answer", "serve", "train", "eval")
BELOW_ANSWER = {SHARED, "index", "ingest", "answer"}
MAY_IMPORT = {
    SHARED: {SHARED},
    "index": {SHARED, "index"},
    "ingest": {SHARED, "index", "ingest"},
    "answer": BELOW_ANSWER,
    "eval": BELOW_ANSWER | {"eval"},
    "train": BELOW_ANSWER | {"eval", "train"},
    "serve": BELOW_ANSWER | {"serve"},
    "cli": BELOW_ANSWER | {"eval", "train", "serve", "rag", "cli"},
    "rag": set(STAGES) | {SHARED, "cli"},  # rag/__init__.py, the public door (its names load lazily, by string)
}
# The known exceptions, each with its reason: (importer, imported) -> why.
EXCEPTIONS = {
    ("rag.config", "rag.answer.verify.checks"):
        "RAG_DISABLED_CHECKS is checked against the answer checks' registry when set (a lazy import, only then)",
}


def stage(mod: str) -> str:
    """The stage a module belongs to: its package under rag/, 'cli' for the command line, 'rag' for the
    package's own __init__, else the shared top."""
    parts = mod.split(".")
    if len(parts) > 1 and parts[1] in STAGES:
        return parts[1]
    if mod in ("rag.cli", "rag.__main__"):
        return "cli"
    return "rag" if mod == "rag" else SHARED


def _module(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _trees(root: Path = RAG) -> dict[str, ast.Module]:
    return {_module(f, root): ast.parse(f.read_text(encoding="utf-8")) for f in sorted(root.rglob("*.py"))}


def _imports(root: Path = RAG) -> dict[str, list[ast.ImportFrom | ast.Import]]:
    """Module -> its top-level import statements."""
    return {mod: [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
            for mod, tree in _trees(root).items()}


def edges(root: Path = RAG, *, lazy: bool = True) -> dict[str, dict[str, int]]:
    """Module -> {rag module it imports: the line of the first such import}. With `lazy`, imports inside
    functions count too: a lazy import still ties the two modules together."""
    trees = _trees(root)
    out: dict[str, dict[str, int]] = {}
    for mod, tree in trees.items():
        nodes = ast.walk(tree) if lazy else iter(tree.body)
        deps: dict[str, int] = {}
        for n in nodes:
            if isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "rag":
                for a in n.names:
                    target = f"{n.module}.{a.name}" if f"{n.module}.{a.name}" in trees else n.module
                    deps.setdefault(target, n.lineno)
            elif isinstance(n, ast.Import):
                for a in n.names:
                    if a.name.split(".")[0] == "rag":
                        deps.setdefault(a.name, n.lineno)
        out[mod] = {d: line for d, line in deps.items() if d in trees and d != mod}
    return out


def _graph(root: Path = RAG, *, lazy: bool = True) -> dict[str, set[str]]:
    return {mod: set(deps) for mod, deps in edges(root, lazy=lazy).items()}


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


def serve_doors(root: Path = RAG) -> set[str]:
    """The serve modules the other face may import: those rag/serve/__init__.py lists in __all__."""
    tree = ast.parse((root / "serve" / "__init__.py").read_text(encoding="utf-8"))
    for n in tree.body:
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets):
            return {f"{root.name}.serve.{name}" for name in ast.literal_eval(n.value)}
    return set()


def violations(root: Path = RAG) -> list[str]:
    """Every import that goes against the stage order, as 'rag/x/y.py:LINE: rag.x.y (stage) imports ... '."""
    doors = serve_doors(root)
    found = []
    for mod, deps in sorted(edges(root).items()):
        for dep, line in sorted(deps.items()):
            have, want = stage(mod), stage(dep)
            why = None
            if want not in MAY_IMPORT[have]:
                why = f"{have} may import only {', '.join(sorted(MAY_IMPORT[have]))}"
            elif have == "cli" and want == "serve" and dep not in doors and dep != f"{root.name}.serve":
                why = f"the other face's internals: the command line imports of serve only {', '.join(sorted(doors))}"
            if why and (mod, dep) not in EXCEPTIONS:
                where = mod.replace(".", "/") + ("/__init__.py" if (root.parent / mod.replace(".", "/")).is_dir() else ".py")
                found.append(f"{where}:{line}: {mod} ({have}) imports {dep} ({want}): {why}")
    return found


# ------------------------------------------------------------------ the checks on themselves


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def _plant(root: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        path = root / "rag" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return root / "rag"


def test_the_stage_check_finds_planted_violations(tmp_path):
    """A small tree with one import of each forbidden kind, lazy ones included, and allowed ones beside them."""
    rag = _plant(tmp_path, {
        "__init__.py": "",
        "config.py": "",
        "cli.py": "from rag.serve import web\nfrom rag.serve import streams\n",
        "index/__init__.py": "", "index/store.py": "from rag import config\n",
        "index/embed.py": "def f():\n    from rag.answer import pipeline\n",
        "ingest/__init__.py": "", "ingest/manage.py": "from rag.index import store\n",
        "answer/__init__.py": "", "answer/pipeline.py": "from rag.ingest import manage\nimport rag.serve.web\n",
        "serve/__init__.py": "__all__ = ['web']\n", "serve/streams.py": "",
        "serve/web.py": "from rag.ingest import manage\nfrom rag import cli\n",
        "eval/__init__.py": "", "train/__init__.py": "",
    })
    assert serve_doors(rag) == {"rag.serve.web"}
    found = violations(rag)
    assert [v.split(": ")[1] for v in found] == [
        "rag.answer.pipeline (answer) imports rag.serve.web (serve)",
        "rag.cli (cli) imports rag.serve.streams (serve)",
        "rag.index.embed (index) imports rag.answer.pipeline (answer)",  # lazy, inside a function
        "rag.serve.web (serve) imports rag.cli (cli)",
    ], found
    assert found[0].startswith("rag/answer/pipeline.py:2: ")


def test_a_lazy_import_closes_a_circle(tmp_path):
    rag = _plant(tmp_path, {"__init__.py": "", "index/__init__.py": "",
                            "index/build.py": "def load():\n    from rag.index.embed import embedder_id\n",
                            "index/embed.py": "from rag.index import build\n"})
    assert cycle(_graph(rag)) == ["rag.index.build", "rag.index.embed", "rag.index.build"]
    assert cycle(_graph(rag, lazy=False)) is None  # only the lazy import closes it: still a circle


# ------------------------------------------------------------------ the package


def test_every_module_is_in_a_stage_or_shared():
    shared = sorted(m for m in _trees() if stage(m) == SHARED)
    assert shared == ["rag.config", "rag.errors", "rag.models", "rag.text", "rag.types"], \
        "a new module at the top of rag/ belongs in a stage's package unless every stage uses it"


def test_the_stages_import_in_order():
    found = violations()
    assert not found, "imports against the stage order (tests/test_layout.py's docstring):\n" + "\n".join(found)


def test_the_exceptions_are_still_needed():
    graph = _graph()
    assert [e for e in EXCEPTIONS if e[1] not in graph.get(e[0], ())] == []


def test_no_module_imports_itself_through_others():
    found = cycle(_graph())
    assert found is None, "an import circle: " + " -> ".join(found)


def test_no_module_imports_another_modules_private_names():
    private = [f"{mod}: from {n.module} import {a.name}" for mod, nodes in _imports().items() for n in nodes
               if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("rag")
               for a in n.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert private == []
