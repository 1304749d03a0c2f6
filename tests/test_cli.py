"""`rag ask` conventions: stdin, several questions, --file, JSON Lines, exit codes; `rag --version`
(the pipeline is the fake-embedder, scripted-model one)."""
from __future__ import annotations

import io
import json

import pytest

import rag
from rag import cli
from rag.index import build as index
from rag.answer import pipeline

from conftest import Scripted

ANSWERABLE = "Mưa lớn ở đâu?"
REPLY = "Mưa lớn kéo dài ở Huế và Đà Nẵng [1]."
UNANSWERABLE = "Giá bitcoin năm 2030 là bao nhiêu?"


@pytest.fixture
def rag_ask(settings, articles, fake_embedder, monkeypatch, capsys):
    """Run `rag ask ARGS` with a scripted model giving `replies`; returns (exit status, stdout, stderr)."""
    index.update(settings, articles, fake_embedder, progress=False, log=lambda m: None)
    real = pipeline.Pipeline

    def run(*argv, replies=(REPLY,), stdin=""):
        monkeypatch.setattr(pipeline, "Pipeline", lambda s: real(settings, embedder=fake_embedder, generator=Scripted(*replies)))
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        status = cli.main(["ask", *argv])
        out, err = capsys.readouterr()
        return status, out, err

    return run


def test_one_question_answered(rag_ask):
    status, out, _ = rag_ask(ANSWERABLE)
    assert status == 0 and "Huế" in out and "[1] Mưa lớn ở miền Trung" in out


def test_question_from_stdin(rag_ask):
    status, out, _ = rag_ask("-", "--json", stdin=f"{ANSWERABLE}\n")
    assert status == 0 and json.loads(out)["question"] == ANSWERABLE


def test_several_questions_and_a_file_give_json_lines(rag_ask, tmp_path):
    qfile = tmp_path / "questions.txt"
    qfile.write_text(f"{UNANSWERABLE}\n\n{ANSWERABLE}\n", encoding="utf-8")
    status, out, _ = rag_ask(ANSWERABLE, "--file", str(qfile), "--json", replies=(REPLY, REPLY))
    rows = [json.loads(line) for line in out.splitlines()]
    assert status == 0
    assert [r["question"] for r in rows] == [ANSWERABLE, UNANSWERABLE, ANSWERABLE]
    assert [r["abstained"] for r in rows] == [False, True, False]


def test_strict_exits_3_when_a_question_is_not_answered(rag_ask):
    assert rag_ask(UNANSWERABLE)[0] == 0
    assert rag_ask(UNANSWERABLE, "--strict")[0] == 3
    assert rag_ask(ANSWERABLE, "--strict")[0] == 0


def test_bad_input_exits_2_and_loses_no_other_question(rag_ask, tmp_path):
    status, _, err = rag_ask("   ")
    assert status == 2 and "empty" in err
    status, _, err = rag_ask("--file", str(tmp_path / "missing.txt"))
    assert status == 2 and "missing.txt" in err
    assert rag_ask()[0] == 2  # no question at all
    status, out, _ = rag_ask("???", ANSWERABLE, "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert status == 2 and "no words" in rows[0]["error"] and rows[1]["abstained"] is False


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"rag {rag.__version__}"
