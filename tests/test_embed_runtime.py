"""Embedding runtimes (RAG_EMBED_RUNTIME): a different runtime is a different embedder everywhere (manifest,
cache keys), so a switch asks for `rag index --rebuild` and never mixes vectors; length bucketing."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import FakeEmbedder
from rag.index import build as index
from rag.config import load_settings
from rag.index.embed import FASTEST, cache_key, embed_some, embedder_id, open_cache, runtime
from rag.errors import IndexMismatch, InvalidSetting


def test_runtime_is_part_of_the_embedder_identity():
    torch_id = embedder_id(load_settings({"RAG_EMBED_RUNTIME": "torch"}))
    assert torch_id == "embeddinggemma-300m@768"  # unchanged: indexes built before runtimes existed stay valid
    onnx_id = embedder_id(load_settings({"RAG_EMBED_RUNTIME": "openvino-bf16"}))
    assert onnx_id == "embeddinggemma-300m+openvino-bf16@768"
    assert cache_key(torch_id, "doc", "x", "t") != cache_key(onnx_id, "doc", "x", "t")


def test_unknown_runtime_is_a_clear_error():
    with pytest.raises(InvalidSetting, match="RAG_EMBED_RUNTIME=tensorrt: expected one of auto, torch, onnx"):
        embedder_id(load_settings({"RAG_EMBED_RUNTIME": "tensorrt"}))


def test_switching_runtime_asks_for_a_rebuild_and_never_mixes_vectors(settings, articles):
    settings = settings.replace(embedder="embeddinggemma-300m")
    torch_emb = FakeEmbedder()
    torch_emb.name = embedder_id(settings)
    cache = open_cache(settings)
    index.update(settings, articles, torch_emb, cache=cache, progress=False, log=lambda m: None)

    onnx = settings.replace(embed_runtime="onnx")
    with pytest.raises(IndexMismatch, match=r"embedder: index has 'embeddinggemma-300m@64', settings say "
                                            r"'embeddinggemma-300m\+onnx@64'.*rag index --rebuild"):
        index.load(onnx)

    # an update with the other runtime rebuilds from scratch and embeds everything anew (no cache hit)
    onnx_emb = FakeEmbedder()
    onnx_emb.name = embedder_id(onnx)
    messages = []
    report = index.update(onnx, articles, onnx_emb, cache=cache, progress=False, log=messages.append)
    assert report.rebuilt_because and "rag index --rebuild" in messages[0]
    assert report.from_cache == 0 and report.embedded == report.chunks == len(onnx_emb.embedded)
    assert index.load(onnx).manifest["config"]["embedder"] == "embeddinggemma-300m+onnx@64"


def _built_with(settings, articles, runtime_name):
    emb = FakeEmbedder()
    emb.name = embedder_id(settings.replace(embed_runtime=runtime_name))
    index.update(settings, articles, emb, cache=None, progress=False, log=lambda m: None)


@pytest.mark.parametrize("built", ["torch", "openvino-bf16", "onnx"])
def test_auto_runtime_follows_the_index_so_an_upgrade_never_re_embeds(settings, articles, built):
    """An index built before the default changed (torch) keeps being queried, and updated, with torch."""
    settings = settings.replace(embedder="embeddinggemma-300m", embed_runtime="auto")
    _built_with(settings, articles, built)
    assert runtime(settings) == built
    assert index.load(settings).manifest["config"]["embedder"] == embedder_id(settings)


def test_auto_runtime_without_an_index_is_the_fastest_installed_else_torch(settings, monkeypatch):
    import rag.index.onnx_embed

    settings = settings.replace(embedder="embeddinggemma-300m", embed_runtime="auto")
    monkeypatch.setattr(rag.index.onnx_embed, "installed", lambda name: True)
    assert runtime(settings) == FASTEST == "openvino-bf16"
    monkeypatch.setattr(rag.index.onnx_embed, "installed", lambda name: False)
    assert runtime(settings) == "torch"
    assert runtime(settings.replace(embed_runtime="onnx")) == "onnx"  # named: taken as is


def test_auto_runtime_that_cannot_load_falls_back_to_torch_with_one_line(settings, monkeypatch, capsys, tmp_path):
    import rag.index.embed
    import rag.models
    import rag.index.onnx_embed

    settings = settings.replace(embedder="embeddinggemma-300m", embed_runtime="auto")
    monkeypatch.setattr(rag.index.onnx_embed, "installed", lambda name: True)
    monkeypatch.setattr(rag.models, "resolve", lambda *a, **k: tmp_path)

    def no_memory(self):
        raise RuntimeError("export failed: Killed (details: export.log)")

    monkeypatch.setattr(rag.index.onnx_embed.ExportedEmbedder, "load", no_memory)
    monkeypatch.setattr(rag.index.embed, "_FALLBACK", set())
    got = rag.index.embed._make_embedder(settings)
    assert isinstance(got, rag.index.embed.SentenceTransformerEmbedder)
    assert got.name == embedder_id(settings.replace(embed_runtime="torch")) == embedder_id(settings)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["embedding runtime openvino-bf16 could not load here (export failed: Killed (details: "
                   "export.log)); using torch"]
    # named explicitly, the runtime is not replaced: its failure is the user's to see
    named = rag.index.embed._make_embedder(settings.replace(embed_runtime="openvino-bf16"))
    assert isinstance(named, rag.index.onnx_embed.ExportedEmbedder)


def test_a_failed_export_is_one_clear_error_and_leaves_no_file(tmp_path):
    """The export runs in a child process: here it fails (no model in the folder); the caller gets the last
    line of what went wrong, not the child's traceback, and no half-written model.onnx remains."""
    from rag.index.onnx_embed import ensure_export, export_dir

    lines = []
    with pytest.raises(RuntimeError, match=r"^export failed: .+\(details: .+export\.log\)$"):
        ensure_export(tmp_path / "no-model", tmp_path / "models", log=lines.append)
    assert lines and lines[0].startswith("exporting the embedding model")
    assert not (export_dir(tmp_path / "no-model", tmp_path / "models") / "model.onnx").exists()


def test_embed_some_batches_texts_of_similar_length():
    class Recording(FakeEmbedder):
        def __init__(self):
            super().__init__()
            self.batches = []

        def embed_documents(self, texts, titles):
            self.batches.append([len(t) for t in texts])
            return super().embed_documents(texts, titles)

    texts = ["a" * n for n in (50, 3, 40, 2, 60, 1)]
    emb = Recording()
    got = embed_some(emb, texts, [""] * len(texts), cache=None, batch_size=2, progress=False)
    assert emb.batches == [[1, 2], [3, 40], [50, 60]]
    for i, t in enumerate(texts):  # each vector still belongs to its own text
        assert np.allclose(got[i], emb.embed_documents([t], [""])[0])


@pytest.mark.slow
def test_onnx_runtime_gives_the_torch_vectors():
    """The exported graph (exported on first use: ~1.5 min) computes what sentence-transformers computes."""
    from rag.index.embed import load_embedder

    settings = load_settings({"RAG_EMBED_RUNTIME": "torch"})  # the reference: sentence-transformers itself
    texts, titles = ["Giá vàng hôm nay tăng mạnh.", "Đội tuyển Việt Nam thắng 2-1 tại Mỹ Đình."], ["Vàng", ""]
    reference = load_embedder(settings)
    onnx = load_embedder(settings.replace(embed_runtime="onnx"))
    assert onnx.name != reference.name
    docs = (onnx.embed_documents(texts, titles) * reference.embed_documents(texts, titles)).sum(axis=1)
    queries = (onnx.embed_queries(["giá vàng"]) * reference.embed_queries(["giá vàng"])).sum(axis=1)
    assert docs.min() > 0.9999 and queries.min() > 0.9999
