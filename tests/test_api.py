"""The public Python API (`from rag import ask, ...`, cheap to import) and where data lives (--home /
RAG_HOME, the current directory, the user data folder seeded with the packaged corpus)."""
from __future__ import annotations

import subprocess
import sys

import pytest

import rag
from rag import config
from rag.config import Settings, load_settings

from conftest import ROOT

HEAVY = ("torch", "sentence_transformers", "llama_cpp", "transformers", "faiss", "gradio")


def test_import_rag_loads_no_model_library():
    code = "import sys, rag; print(','.join(m for m in %r if m in sys.modules))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


def test_public_names_resolve_and_are_listed():
    from rag import Answer, Citation, Pipeline, ask, ask_stream  # noqa: F401  (the README's import)
    from rag.answer.pipeline import ask as pipeline_ask

    assert {"ask", "ask_stream", "Pipeline", "Answer", "Citation"} <= set(rag.__all__)
    assert ask is pipeline_ask
    assert all(getattr(rag, name) is not None for name in rag.__all__)
    assert set(rag.__all__) <= set(dir(rag))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rag.nope  # noqa: B018


def test_home_option_and_env_move_corpus_and_index(tmp_path):
    s = load_settings(env={"RAG_HOME": str(tmp_path / "proj")})
    assert (s.home, s.corpus_dir, s.index_dir) == (tmp_path / "proj", tmp_path / "proj" / "corpus", tmp_path / "proj" / "embeddings")
    s = load_settings(env={"RAG_HOME": str(tmp_path / "a")}, home=tmp_path / "b", index_dir=tmp_path / "idx")
    assert (s.corpus_dir, s.index_dir) == (tmp_path / "b" / "corpus", tmp_path / "idx")  # option beats env


def test_current_directory_with_a_corpus_is_the_home(tmp_path):
    (tmp_path / "corpus").mkdir()
    assert config.default_home(tmp_path) == tmp_path


def test_elsewhere_the_user_data_folder_is_seeded_once(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    home = config.default_home(tmp_path / "empty")
    assert home == tmp_path / "data" / "rag"
    seeded = sorted(p.name for p in (home / "corpus").glob("*.md"))
    assert seeded == sorted(p.name for p in (ROOT / "corpus").glob("*.md")) and len(seeded) >= 2
    (home / "corpus" / "README.md").unlink()  # the user's edits are never overwritten
    config.default_home(tmp_path / "empty")
    assert not (home / "corpus" / "README.md").exists()
    assert not list(home.glob(".corpus.tmp-*"))


def test_explicit_folders_never_touch_the_user_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    s = Settings(corpus_dir=tmp_path / "c", index_dir=tmp_path / "i")
    assert s.home == tmp_path and not (tmp_path / "data").exists()


def test_api_key_is_not_shown_in_settings_repr():
    assert "sekret" not in repr(load_settings(env={"RAG_API_KEY": "sekret"}))
