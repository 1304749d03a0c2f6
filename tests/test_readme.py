"""The documentation's examples run: every ```bash and ```python block of README.md and bench/README.md
is executed from the repository root against the default corpus (slow: real embedder; the test-size
generator answers when it is provisioned, to keep it quick). A block that cannot run in a test (serves
forever, takes minutes, needs ../shared/data) is preceded by `<!-- not-tested: reason -->`. A block that
talks to the documented server address 127.0.0.1:7860 is pointed at the test session's server instead."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

DOCS = ("README.md", "bench/README.md")
SERVER = "http://127.0.0.1:7860"
SMALL_MODEL = "smollm2-135m"
_BLOCK = re.compile(r"^```(bash|python)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_SKIP = re.compile(r"<!--\s*not-tested:((?:(?!-->).)*)-->\Z", re.DOTALL)  # right before the block


def blocks(doc: str) -> list[tuple[str, str, str, str | None]]:
    """(id, language, code, not-tested reason or None) for each runnable block of one document."""
    source = (ROOT / doc).read_text(encoding="utf-8")
    out = []
    for m in _BLOCK.finditer(source):
        line = source.count("\n", 0, m.start()) + 1
        skip = _SKIP.search(source[: m.start()].rstrip())
        reason = skip[1].strip() if skip else None
        out.append((f"{doc}:{line}", m[1], m[2], reason))
    return out


ALL = [b for doc in DOCS for b in blocks(doc)]


def test_the_docs_have_examples_and_every_opt_out_says_why():
    assert sum(1 for b in ALL if b[3] is None) >= 5
    for block_id, _, _, reason in ALL:
        assert reason != "", f"{block_id}: <!-- not-tested: --> needs a reason"


def test_marker_parsing(tmp_path, monkeypatch):
    doc = tmp_path / "X.md"
    doc.write_text("a\n<!-- not-tested: slow -->\n```bash\nexit 1\n```\n\n```python\nprint(1)\n```\n", encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert [(b[1], b[2], b[3]) for b in blocks("X.md")] == [("bash", "exit 1\n", "slow"), ("python", "print(1)\n", None)]


@pytest.mark.slow
@pytest.mark.parametrize("block_id, language, code, reason", ALL, ids=[b[0] for b in ALL])
def test_example_runs(block_id, language, code, reason, request):
    if reason is not None:
        pytest.skip(f"not-tested: {reason}")
    from rag import models
    from rag.config import load_settings

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if any(r["name"] == SMALL_MODEL and r["provisioned"] for r in models.status(load_settings())):
        env["RAG_GENERATOR"] = SMALL_MODEL
    if SERVER in code:
        code = code.replace(SERVER + "/", request.getfixturevalue("app_server")["url"])
        code = code.replace(SERVER, request.getfixturevalue("app_server")["url"].rstrip("/"))
    cmd = ["bash", "-euo", "pipefail", "-c", code] if language == "bash" else [sys.executable, "-c", code]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"{block_id} failed ({r.returncode}):\n{code}\n--- stdout\n{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-3000:]}"
