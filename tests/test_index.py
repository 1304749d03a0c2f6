"""Index build, incremental updates, atomicity, and the errors a broken or mismatched index gives."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from rag.index import build as index
from rag.errors import IndexCorrupt, IndexMismatch, IndexMissing
from rag.answer.retrieve import Retriever


def build(settings, arts, emb, **kw):
    return index.update(settings, arts, emb, progress=False, log=lambda m: None, **kw)


def test_build_and_load(settings, articles, fake_embedder):
    rep = build(settings, articles, fake_embedder)
    assert sorted(rep.added) == ["bongda", "mua", "vang"] and rep.embedded == rep.chunks > 0
    idx = index.load(settings, expected_embedder=fake_embedder.name)
    assert len(idx) == rep.chunks
    assert idx.faiss.ntotal == len(idx.chunks)
    m = idx.manifest
    assert m["config"]["chunk_size"] == 200 and m["config"]["embedder"] == "fake-hash@64"
    assert set(m["articles"]) == {"vang", "bongda", "mua"}
    for c in idx.chunks:  # offsets point into the article text
        assert idx.articles[c.article_id].text[c.start : c.end] == c.text


def test_incremental_update_embeds_only_what_changed(settings, articles, fake_embedder):
    build(settings, articles, fake_embedder)
    first = len(fake_embedder.embedded)
    # nothing changed: no embedding, same version
    v1 = index.current_version(settings.index_dir)
    rep = build(settings, articles, fake_embedder)
    assert rep.embedded == 0 and len(fake_embedder.embedded) == first
    assert index.current_version(settings.index_dir) == v1
    # change one, delete one, add one
    changed = dataclasses.replace(articles[0], text=articles[0].text + "\n\nGiá bạc cũng tăng theo.")
    added = dataclasses.replace(articles[1], id="moi", title="Bài mới về bóng chuyền", text="Đội bóng chuyền nữ vô địch.")
    rep = build(settings, [changed, articles[1], added], fake_embedder)
    assert rep.changed == ["vang"] and rep.added == ["moi"] and rep.deleted == ["mua"] and rep.unchanged == ["bongda"]
    new_texts = fake_embedder.embedded[first:]
    assert all("Mỹ Đình" not in t for t in new_texts)  # unchanged article was not re-embedded
    assert any("Giá bạc" in t for t in new_texts)
    idx = index.load(settings, expected_embedder=fake_embedder.name)
    assert {c.article_id for c in idx.chunks} == {"vang", "bongda", "moi"}
    # reused vectors are still the right ones: the unchanged article is still found by its own words
    hits = Retriever(idx, fake_embedder, settings).search("Mỹ Đình Thái Lan", k=1, retriever="dense")
    assert hits[0].chunk.article_id == "bongda"


def test_settings_change_triggers_rebuild_and_load_refuses_mismatch(settings, articles, fake_embedder):
    build(settings, articles, fake_embedder)
    other = settings.replace(chunk_size=120)
    with pytest.raises(IndexMismatch, match="chunk_size.*rag index --rebuild"):
        index.load(other, expected_embedder=fake_embedder.name)
    logs = []
    rep = index.update(other, articles, fake_embedder, progress=False, log=logs.append)
    assert rep.rebuilt_because and any("rebuilding" in m for m in logs)
    assert rep.embedded == rep.chunks
    index.load(other, expected_embedder=fake_embedder.name)
    with pytest.raises(IndexMismatch, match="embedder"):
        index.load(other, expected_embedder="another-model@64")


def test_missing_and_corrupt_index(settings, articles, fake_embedder):
    with pytest.raises(IndexMissing, match="rag index"):
        index.load(settings)
    build(settings, articles, fake_embedder)
    live = index.current_version(settings.index_dir)
    (live / "dense.faiss").write_bytes(b"garbage")
    with pytest.raises(IndexCorrupt, match="rebuild"):
        index.load(settings, expected_embedder=fake_embedder.name)
    # `rag index` recovers from a corrupt index by rebuilding
    rep = build(settings, articles, fake_embedder)
    assert rep.rebuilt_because
    index.load(settings, expected_embedder=fake_embedder.name)


def test_failure_midway_keeps_previous_index(settings, articles, fake_embedder, monkeypatch):
    build(settings, articles[:2], fake_embedder)
    before = index.current_version(settings.index_dir)

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(index, "build_bm25", boom)
    with pytest.raises(RuntimeError):
        build(settings, articles, fake_embedder)
    assert index.current_version(settings.index_dir) == before
    idx = index.load(settings, expected_embedder=fake_embedder.name)
    assert {c.article_id for c in idx.chunks} == {"vang", "bongda"}
    monkeypatch.undo()
    build(settings, articles, fake_embedder)  # the next build cleans up the leftovers and succeeds
    assert not list(settings.index_dir.glob(".tmp-*"))


SLOW_BUILD = textwrap.dedent(
    """
    import sys, time
    sys.path[:0] = [{root!r}, {tests!r}]
    from conftest import FakeEmbedder, make_articles
    from rag.index import build as index
    from rag.config import Settings
    import dataclasses

    class Slow(FakeEmbedder):
        def embed_documents(self, texts, titles):
            print("EMBEDDING", flush=True)
            time.sleep(60)
            return super().embed_documents(texts, titles)

    s = Settings(index_dir={index_dir!r}, cache_dir={cache!r}, embedder="fake-hash", embed_dim=64, chunk_size=200, chunk_overlap=20)
    arts = make_articles()
    arts[0] = dataclasses.replace(arts[0], text="Bài đã sửa hoàn toàn khác.")
    index.update(s, arts, Slow(), progress=False, log=lambda m: None)
    """
)


def test_killed_indexing_leaves_old_index_usable(settings, articles, fake_embedder, tmp_path):
    """A real SIGKILL in the middle of `update` (while embedding) must leave the previous version live."""
    build(settings, articles, fake_embedder)
    before = index.current_version(settings.index_dir)
    script = SLOW_BUILD.format(
        root=str(index.__file__.rsplit("/rag/", 1)[0]),
        tests=os.path.dirname(__file__),
        index_dir=str(settings.index_dir),
        cache=str(settings.cache_dir),
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "EMBEDDING"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert index.current_version(settings.index_dir) == before
    idx = index.load(settings, expected_embedder=fake_embedder.name)
    assert any("Giá vàng miếng" in c.text for c in idx.chunks)  # the old text, not the half-written new one
    # the writer lock died with the process: a new build proceeds
    rep = build(settings, articles, fake_embedder)
    assert rep.version


def test_manifest_records_hashes_and_files(settings, articles, fake_embedder):
    build(settings, articles, fake_embedder)
    live = index.current_version(settings.index_dir)
    m = json.loads((live / "manifest.json").read_text())
    assert m["articles"]["vang"] == articles[0].content_hash
    assert {"articles.jsonl", "chunks.jsonl", "dense.faiss"} <= set(m["files"])


def test_lexical_first_then_dense_filled_in(settings, articles, fake_embedder):
    """A corpus too big to embed at once: publish with few vectors, fill in on later runs."""
    rep = build(settings, articles, fake_embedder, max_embed=2)
    assert rep.embedded == 2 and rep.without_vector == rep.chunks - 2 and "still lexical-only" in rep.summary()
    idx = index.load(settings, expected_embedder=fake_embedder.name)
    assert idx.faiss.ntotal == 2 and idx.dense_coverage < 1
    r = Retriever(idx, fake_embedder, settings)
    assert r.search("mưa ngập Huế", k=1, retriever="bm25")[0].chunk.article_id == "mua"  # all chunks searchable
    hybrid = r.search("mưa ngập Huế", k=3, retriever="hybrid")
    assert hybrid and hybrid[0].chunk.article_id == "mua"
    while rep.without_vector:
        before = rep.without_vector
        rep = build(settings, articles, fake_embedder, max_embed=2)
        assert rep.without_vector < before
    idx = index.load(settings, expected_embedder=fake_embedder.name)
    assert idx.faiss.ntotal == len(idx) and idx.dense_coverage == 1.0
    # each chunk was embedded exactly once over all the runs
    assert len(fake_embedder.embedded) == len(idx)


def test_fill_in_runs_reuse_bm25_and_cache_hits_are_not_counted_as_embedded(
    settings, articles, fake_embedder, monkeypatch
):
    from rag.index.embed import EmbeddingCache

    cache = EmbeddingCache(settings.cache_dir / "emb.sqlite")
    build(settings, articles, fake_embedder, max_embed=2, cache=cache)

    def no_rebuild(*a, **k):
        raise AssertionError("the chunks did not change: BM25 must be reused, not rebuilt")

    monkeypatch.setattr(index, "build_bm25", no_rebuild)
    rep = build(settings, articles, fake_embedder, cache=cache)  # fill in the rest
    assert rep.without_vector == 0 and rep.embedded == rep.chunks - 2 and rep.from_cache == 0
    assert index.load(settings, expected_embedder=fake_embedder.name).bm25.scores["num_docs"] == rep.chunks
    monkeypatch.undo()
    embedded = len(fake_embedder.embedded)
    rep = build(settings, articles, fake_embedder, cache=cache, rebuild=True)
    assert rep.embedded == 0 and rep.from_cache == rep.chunks and "from the embedding cache" in rep.summary()
    assert len(fake_embedder.embedded) == embedded


def test_bm25_tokens_are_cached(settings, articles, fake_embedder, monkeypatch):
    from rag import text

    calls = []
    real = text.TOKENIZERS[settings.tokenizer]
    monkeypatch.setitem(text.TOKENIZERS, settings.tokenizer, lambda s: calls.append(s) or real(s))
    rep = build(settings, articles, fake_embedder)
    assert len(calls) == rep.chunks
    calls.clear()
    build(settings, articles, fake_embedder, rebuild=True)
    assert calls == []  # same texts: every token list came from the cache
    changed = [dataclasses.replace(articles[0], text="Giá vàng hôm nay tăng mạnh.")] + articles[1:]
    build(settings, changed, fake_embedder)
    assert len(calls) == 1 and "Giá vàng hôm nay tăng mạnh." in calls[0]  # only the changed article's chunk
    idx = index.load(settings, expected_embedder=fake_embedder.name)
    hits = Retriever(idx, None, settings).search("vàng tăng mạnh", k=1, retriever="bm25")
    assert hits[0].chunk.article_id == "vang"


def test_lexical_first_publishes_before_embedding(settings, articles, fake_embedder):
    """`rag index` publishes the changed article for lexical search before the model is even loaded;
    if embedding then fails, that version stays live and the next run finishes the job."""
    build(settings, articles[:2], fake_embedder)

    class Broken(type(fake_embedder)):
        def embed_documents(self, texts, titles):
            raise RuntimeError("model failed to load")

    logs = []
    with pytest.raises(RuntimeError):
        index.update(settings, articles, Broken(), progress=False, log=logs.append, lexical_first=True)
    assert any("searchable now" in m for m in logs)
    idx = index.load(settings, expected_embedder=fake_embedder.name)
    new_rows = [i for i, c in enumerate(idx.chunks) if c.article_id == "mua"]
    assert new_rows and not set(new_rows) & set(index.vector_ids(idx.faiss).tolist())
    assert Retriever(idx, fake_embedder, settings).search("mưa ngập Huế", k=1)[0].chunk.article_id == "mua"
    logs.clear()
    rep = index.update(settings, articles, fake_embedder, progress=False, log=logs.append, lexical_first=True)
    assert rep.embedded == len(new_rows) and rep.without_vector == 0
    assert not logs  # the lexical version is already live: not published twice
    assert index.load(settings, expected_embedder=fake_embedder.name).dense_coverage == 1.0


def test_cli_index_reports_warnings_and_publishes_lexically_first(settings, fake_embedder, monkeypatch, capsys):
    from rag import cli
    from rag.index import embed

    corpus = settings.corpus_dir
    corpus.mkdir()
    (corpus / "a.md").write_text("---\ntitle: Giá vàng\ndate: hôm qua\n---\nGiá vàng miếng tăng 1 triệu đồng.\n")
    (corpus / "b.md").write_text("---\ntitle: Mưa lớn\ndate: 2025-11-20\n---\nMưa lớn gây ngập ở Huế.\n")
    for name, value in (("CORPUS_DIR", corpus), ("INDEX_DIR", settings.index_dir), ("CACHE_DIR", settings.cache_dir),
                        ("EMBED_DIM", 64), ("CHUNK_SIZE", 200), ("CHUNK_OVERLAP", 20)):
        monkeypatch.setenv(f"RAG_{name}", str(value))
    monkeypatch.setattr(embed, "load_embedder", lambda s: fake_embedder)
    assert cli.main(["index"]) == 0
    out = capsys.readouterr()
    assert "warning:" in out.err and "hôm qua" in out.err and "2 added" in out.out
    (corpus / "b.md").write_text("---\ntitle: Mưa lớn\ndate: 2025-11-20\n---\nMưa lớn gây ngập ở Đà Nẵng.\n")
    assert cli.main(["index"]) == 0
    out = capsys.readouterr()
    assert "searchable now" in out.err and "1 changed" in out.out and "1 embedded" in out.out
