"""The package works outside its checkout: build the wheel, install it into a fresh venv, and in an empty
folder elsewhere run `rag index`, `rag ask` and `rag serve` (slow, real embedder, test-size model).

The fresh venv reuses the test venv's dependencies (no network): a .pth file points at a folder of links
to the test venv's site-packages entries, leaving out the editable install of rag, so the only `rag` the
new venv can import is the wheel's."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import ROOT, _free_port, _wait_http, stop

pytestmark = pytest.mark.slow

def editable_rag(name: str) -> bool:
    """The test venv's own (editable) install of rag: its finder hook, metadata, or a copy of the package."""
    return name == "rag" or name.startswith(("__editable__", "rag_news_vi-"))

SMALL_MODEL = "smollm2-135m"


# the checkout must not be visible to the new venv (PYTHONPATH would show it its rag and egg-info)
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAG_HOME", "RAG_CORPUS_DIR", "RAG_INDEX_DIR")}


def run(cmd, env=None, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env or CLEAN_ENV, **kw)
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"), str(ROOT)])
    (wheel,) = (tmp / "dist").glob("rag_news_vi-*.whl")

    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    deps = tmp / "deps"
    deps.mkdir()
    shared = Path(sysconfig.get_paths()["purelib"])
    for entry in shared.iterdir():
        if not editable_rag(entry.name):
            (deps / entry.name).symlink_to(entry)
    new_site = Path(run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (new_site / "shared-deps.pth").write_text(f"{deps}\n")
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)])
    return venv


def test_wheel_indexes_answers_and_serves_outside_the_checkout(wheel_venv, tmp_path):
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = CLEAN_ENV | {"XDG_DATA_HOME": str(tmp_path / "data"), "RAG_GENERATOR": SMALL_MODEL}
    rag = str(wheel_venv / "bin" / "rag")
    where = run([str(wheel_venv / "bin" / "python"), "-c", "import rag, rag.serve.web; print(rag.__file__)"], cwd=work, env=env)
    assert Path(where.stdout.strip()).is_relative_to(wheel_venv)

    run([rag, "index", "--quiet"], cwd=work, env=env)
    home = tmp_path / "data" / "rag"
    assert sorted(p.name for p in (home / "corpus").glob("*.md")) == sorted(p.name for p in (ROOT / "corpus").glob("*.md"))
    assert (home / "embeddings" / "CURRENT").exists() and not list(work.iterdir())  # nothing written into the cwd

    answer = json.loads(run([rag, "ask", "Bình Dương đứng Top1 Smart 21 năm nào?", "--json"], cwd=work, env=env).stdout)
    assert answer["question"] and answer["model"].endswith(SMALL_MODEL)

    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([rag, "serve", "--port", str(port)], cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/", proc, log, timeout=300)
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=30) as r:
            assert json.load(r)["data"][0]["id"] == "rag"
    finally:
        stop(proc)
