"""Shared fixtures: a fake embedder (hashed bag of syllables) and tiny articles, so unit tests need no model."""
from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from rag import text
from rag.config import Settings
from rag.answer.generate import Piece
from rag.types import Article

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


class FakeEmbedder:
    """Deterministic bag-of-syllables vectors: similar wording -> similar vectors. Counts what it embeds."""

    def __init__(self, dim: int = 64, name: str = "fake-hash"):
        self.dim, self.name = dim, f"{name}@{dim}"
        self.embedded: list[str] = []

    def _vec(self, s: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for tok in text.syllables(s):
            v[int(hashlib.md5(tok.encode()).hexdigest(), 16) % self.dim] += 1.0
        return v / max(np.linalg.norm(v), 1e-12)

    def embed_queries(self, texts):
        return np.stack([self._vec(t) for t in texts])

    def embed_documents(self, texts, titles):
        self.embedded.extend(texts)
        return np.stack([self._vec(f"{ti} {t}") for t, ti in zip(texts, titles)])


class Scripted:
    """A 'model' that replies with given text, streamed in small pieces, and records its prompts. A reply
    given as (text, probability) pairs streams as those pieces, each with the probability of its token."""

    name = "scripted"

    def __init__(self, *replies: str):
        self.replies, self.prompts = list(replies), []

    def stream(self, messages, *, max_tokens=200, stop=None):
        self.prompts.append(messages)
        reply = self.replies.pop(0) if self.replies else ""
        if not isinstance(reply, str):
            yield from (Piece(text, [p]) for text, p in reply)
            return
        for i in range(0, len(reply), 7):
            yield reply[i : i + 7]


class Echo:
    """A thread-safe 'model' that answers with the first sentence of source [1], cited: what it says
    depends only on what the pipeline retrieved, so a mixed-up collection shows in the answer."""

    name = "echo"

    def stream(self, messages, *, max_tokens=200, stop=None):
        lines = messages[-1]["content"].splitlines()
        if not any(line.startswith("[1] ") for line in lines):  # not an answer prompt (e.g. a rewrite)
            yield ""
            return
        excerpt = lines[next(i for i, line in enumerate(lines) if line.startswith("[1] ")) + 1]
        yield excerpt.split(". ")[0].rstrip(".") + " [1]."


@pytest.fixture
def fake_embedder():
    return FakeEmbedder()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        corpus_dir=tmp_path / "corpus",
        index_dir=tmp_path / "index",
        cache_dir=tmp_path / "cache",
        embedder="fake-hash",
        embed_dim=64,
        chunk_size=200,
        chunk_overlap=20,
        today="2025-11-27",  # the day of the gold-price article below, so its "hôm nay" means that day (rag.answer.dates)
        reader="off",  # the trained reader needs the real base model: tests with a reader give a fake one
        embed_runtime="torch",  # embedder names independent of the packages installed (auto: tests/test_embed_runtime.py)
    )


def make_articles() -> list[Article]:
    return [
        Article(
            id="vang",
            title="Giá vàng tăng mạnh",
            date="2025-11-27",
            source="Báo A",
            text="Giá vàng miếng hôm nay tăng 1 triệu đồng mỗi lượng.\n\nNhà đầu tư lo ngại lạm phát.",
        ),
        Article(
            id="bongda",
            title="Đội tuyển Việt Nam thắng Thái Lan",
            date="2025-12-01",
            source="Báo B",
            text="Đội tuyển Việt Nam thắng Thái Lan 2-1 tại sân Mỹ Đình.\n\nHuấn luyện viên khen các cầu thủ trẻ.",
        ),
        Article(
            id="mua",
            title="Mưa lớn ở miền Trung",
            date="2025-10-15",
            source="Báo A",
            text="Mưa lớn kéo dài ở Huế và Đà Nẵng gây ngập nhiều tuyến phố.\n\nHàng nghìn hộ dân phải sơ tán.",
        ),
    ]


@pytest.fixture
def articles() -> list[Article]:
    return make_articles()


# ---------------------------------------------------------------- the real web app (slow tests)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc, log: Path, timeout: float) -> None:
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"app exited with {proc.returncode} before serving:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    pytest.fail(f"app not serving {url} after {timeout:.0f}s:\n{log.read_text()[-3000:]}")


def stop(proc) -> None:
    """Stop a server the test started, by its own process id: politely, then for sure."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def small_app(env: dict, work: Path):
    """`python app.py` on a free port with `env` (its RAG_CORPUS_DIR indexed lexically first, so no embedding
    model loads): yields (process, url), stopped at the end."""
    import subprocess
    import sys

    # --max-embed 0: searchable lexically, without loading the embedding model
    subprocess.run([sys.executable, "-m", "rag", "index", "--quiet", "--max-embed", "0"], cwd=ROOT, env=env,
                   check=True, timeout=300)
    log, port = work / "server.log", _free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_http(url, proc, log, timeout=180)
        yield proc, url
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """`python app.py` on a free 127.0.0.1 port with the real models and the default corpus, indexed
    by `rag index` first. Yields {"url", "feedback"}; stopped by its pid at the end of the session."""
    import subprocess
    import sys

    from rag import models
    from rag.config import load_settings

    settings = load_settings()
    missing = [r["name"] for r in models.status(settings)
               if r["name"] in (settings.embedder, settings.generator) and not r["provisioned"]]
    if missing:
        pytest.skip(f"models not provisioned: {', '.join(missing)} (run `rag models pull`)")
    subprocess.run([sys.executable, "-m", "rag", "index", "--quiet"], cwd=ROOT, check=True, timeout=900)

    work = tmp_path_factory.mktemp("app")
    log = work / "server.log"
    port = _free_port()
    env = {**os.environ, "RAG_FEEDBACK_LOG": str(work / "feedback.jsonl")}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_http(url, proc, log, timeout=180)
        yield {"url": url, "feedback": work / "feedback.jsonl", "log": log}
    finally:
        stop(proc)


# ---------------------------------------------------------------- where the suite's time went


_phase_seconds: dict[str, float] = {}
_phase_tests: dict[str, int] = {}


def _phase(report) -> str:
    return "slow" if "slow" in report.keywords or "browser" in report.keywords else "fast"


def pytest_runtest_logreport(report):
    """Sums each test's set-up, call and teardown (so a shared fixture counts where it starts) per phase."""
    phase = _phase(report)
    _phase_seconds[phase] = _phase_seconds.get(phase, 0.0) + report.duration
    if report.when == "setup":
        _phase_tests[phase] = _phase_tests.get(phase, 0) + 1


def pytest_terminal_summary(terminalreporter):
    """One line per run saying where the time went; make test (scripts/test.sh) repeats it at its very end."""
    if not _phase_tests:
        return
    line = "test phases: " + ", ".join(
        f"{phase} {_phase_tests[phase]} tests {_phase_seconds[phase]:.0f}s" for phase in sorted(_phase_tests))
    terminalreporter.write_line(line)
    if os.environ.get("RAG_TEST_PHASES"):
        Path(os.environ["RAG_TEST_PHASES"]).write_text(line + "\n", encoding="utf-8")
