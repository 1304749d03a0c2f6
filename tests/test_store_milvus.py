"""RAG_STORE=milvus against a real Milvus server API: milvus-lite's gRPC server on a free loopback port,
reached by URI with pymilvus exactly as Milvus Standalone would be. Needs the `scale` extra."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from conftest import Echo, make_articles  # noqa: E402

from rag.index import collections, build as index, store, store_milvus  # noqa: E402
from rag.errors import IndexMismatch, IndexMissing  # noqa: E402
from rag.answer.pipeline import Pipeline  # noqa: E402
from rag.answer.retrieve import Filters, Retriever  # noqa: E402
from rag.types import Article  # noqa: E402

QUERIES = ["giá vàng hôm nay", "đội tuyển thắng", "mưa lớn Huế sơ tán", "lạm phát", "không có từ nào khớp xyz"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def milvus_uri(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("milvus") / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(log.parent / "data"),
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"milvus-lite server did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def msettings(settings, milvus_uri):
    return settings.replace(store="milvus", milvus_uri=milvus_uri, milvus_collection=f"t{uuid.uuid4().hex[:10]}")


def _more_articles() -> list[Article]:
    extra = [
        Article(id="vang2", title="Vàng SJC giảm", date="2025-11-28", source="Báo C",
                text="Giá vàng SJC giảm 500 nghìn đồng. Giá vàng nhẫn đứng yên. Thị trường vàng trầm lắng."),
        Article(id="lu", title="Lũ ở Quảng Nam", date="2025-10-20", source="báo a",
                text="Mưa lớn gây lũ ở Quảng Nam, hàng trăm hộ dân sơ tán. Đường sá ngập sâu."),
    ]
    return make_articles() + extra


def _ranked(hits):
    return [(h.chunk.id, round(h.score, 4)) for h in hits]


def test_bm25_weights_are_bm25s_scores():
    tokens = [["giá", "vàng", "tăng", "vàng"], ["đội", "tuyển", "thắng"], ["giá", "xăng", "tăng", "mạnh", "hôm", "nay"], [""]]
    bm = index.build_bm25(tokens)
    docs = store_milvus.bm25_weights(tokens)
    for q in (["vàng"], ["giá", "tăng", "giá"], ["thắng", "nay", "zzz"]):
        q_vec = store_milvus.query_vector(q)
        ours = [sum(w * q_vec.get(t, 0.0) for t, w in d.items()) for d in docs]
        ids = bm.get_tokens_ids(q)
        np.testing.assert_allclose(ours, bm.get_scores_from_ids(ids), rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # starts a milvus-lite server
def test_milvus_ranks_as_the_local_store(settings, msettings, fake_embedder):
    arts = _more_articles()
    store.update(settings, arts, fake_embedder, progress=False, log=lambda m: None)
    report = store.update(msettings, arts, fake_embedder, progress=False, log=lambda m: None)
    assert len(report.added) == len(arts) and report.chunks > 0
    local = store.load(settings, expected_embedder=fake_embedder.name)
    milvus = store.load(msettings, expected_embedder=fake_embedder.name)
    assert len(milvus) == len(local) and milvus.articles["vang"].text == arts[0].text
    filters = [None, Filters(source="Báo A"), Filters(date_from="2025-11-01", date_to="2025-11-30"), Filters(article_ids={"mua", "lu"})]
    searched = 0
    for q in QUERIES:
        for mode in ("bm25", "dense", "hybrid"):
            for f in filters:
                a = Retriever(local, fake_embedder, settings).search(q, k=6, retriever=mode, filters=f)
                b = Retriever(milvus, fake_embedder, msettings).search(q, k=6, retriever=mode, filters=f)
                assert _ranked(a) == _ranked(b), (q, mode, f)
                searched += bool(a)
                assert [h.article for h in a] == [h.article for h in b]
                assert [h.ranks for h in a] == [h.ranks for h in b]
    assert searched > 40  # most (query, mode, filter) cases do find something


def _snapshot(s):
    client, n = store_milvus.connect(s), store_milvus.names(s)
    chunks = sorted(store_milvus._all_ids(client, n["chunks"], ["text", "meta", "date", "source", "sparse", "dense"]), key=lambda r: r["id"])
    for r in chunks:
        r["sparse"] = {int(k): round(float(v), 5) for k, v in dict(r["sparse"]).items()}
        r["dense"] = np.round(np.asarray(r["dense"], dtype=np.float32), 5).tolist()
    arts = sorted(store_milvus._all_ids(client, n["articles"], ["text", "hash", "meta"]), key=lambda r: r["id"])
    meta = store_milvus._read_meta(client, s)
    return chunks, arts, {k: meta[k] for k in ("config", "fingerprint", "counts")}


@pytest.mark.slow  # starts a milvus-lite server
def test_incremental_update_interrupted_then_rerun_converges(msettings, fake_embedder, monkeypatch):
    arts = _more_articles()
    store.update(msettings, arts, fake_embedder, progress=False, log=lambda m: None)
    changed = [replace(a, text=a.text + " Cập nhật: giá vàng lại tăng.") if a.id == "vang" else a for a in arts if a.id != "lu"]
    changed.append(Article(id="moi", title="Tin mới", date="2025-12-05", source="Báo D", text="Một bài mới về giá xăng."))

    # Crash after the chunk rows of the new state are partly written, before articles and meta.
    from pymilvus import MilvusClient

    real_upsert, calls = MilvusClient.upsert, []

    def crashing(self, collection, rows, *a, **kw):
        calls.append(collection)
        if len(calls) > 1:
            raise ConnectionError("killed midway")
        return real_upsert(self, collection, rows[: len(rows) // 2], *a, **kw)

    monkeypatch.setattr(store_milvus, "BATCH", 3)
    monkeypatch.setattr(MilvusClient, "upsert", crashing)
    with pytest.raises(ConnectionError):
        store.update(msettings, changed, fake_embedder, progress=False, log=lambda m: None)
    monkeypatch.setattr(MilvusClient, "upsert", real_upsert)

    report = store.update(msettings, changed, fake_embedder, progress=False, log=lambda m: None)
    assert report.changed == ["vang"] and report.added == ["moi"] and report.deleted == ["lu"]
    again = store.update(msettings, changed, fake_embedder, progress=False, log=lambda m: None)
    assert again.embedded == 0 and len(again.unchanged) == len(changed)  # a no-op the second time

    clean = msettings.replace(milvus_collection=msettings.milvus_collection + "_clean")
    store.update(clean, changed, fake_embedder, progress=False, log=lambda m: None)
    assert _snapshot(msettings) == _snapshot(clean)


@pytest.mark.slow  # starts a milvus-lite server
def test_missing_and_mismatched_index_say_what_to_do(msettings, fake_embedder, articles):
    with pytest.raises(IndexMissing, match="run `rag index`"):
        store.load(msettings)
    store.update(msettings, articles, fake_embedder, progress=False, log=lambda m: None)
    with pytest.raises(IndexMismatch, match="chunk_size"):
        store.load(msettings.replace(chunk_size=300), expected_embedder=fake_embedder.name)
    with pytest.raises(ValueError, match="max-embed"):
        store.update(msettings, articles, fake_embedder, max_embed=1, progress=False, log=lambda m: None)


def test_unknown_store_is_refused(settings):
    with pytest.raises(ValueError, match="RAG_STORE"):
        store.load(settings.replace(store="elastic"))


@pytest.mark.slow
def test_real_embedder_default_corpus_same_top_hits(tmp_path, milvus_uri):
    """EmbeddingGemma on the default corpus: the Milvus store answers retrieval as the local store does."""
    from rag.ingest import corpus
    from conftest import ROOT
    from rag.config import load_settings
    from rag.index.embed import load_embedder, open_cache

    local = load_settings(corpus_dir=ROOT / "corpus", index_dir=tmp_path / "index")
    milvus = local.replace(store="milvus", milvus_uri=milvus_uri, milvus_collection=f"real{uuid.uuid4().hex[:8]}")
    embedder = load_embedder(local)
    arts = corpus.load_corpus(local.corpus_dir).articles
    for s in (local, milvus):
        store.update(s, arts, embedder, progress=False, log=lambda m: None, cache=open_cache(s))
    questions = ["HTV đột phá công nghệ gì?", "Diễn đàn cộng đồng thông minh bàn về điều gì?", "Who spoke at the forum?"]
    for q in questions:
        qv = embedder.embed_queries([q])[0]
        for mode in ("bm25", "dense", "hybrid"):
            a = Retriever(store.load(local, expected_embedder=embedder.name), embedder, local).search(q, k=4, retriever=mode, query_vector=qv)
            b = Retriever(store.load(milvus, expected_embedder=embedder.name), embedder, milvus).search(q, k=4, retriever=mode, query_vector=qv)
            assert (a or mode == "bm25") and [h.chunk.id for h in a] == [h.chunk.id for h in b], (q, mode)
            np.testing.assert_allclose([h.score for h in a], [h.score for h in b], rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # starts a milvus-lite server
def test_pipeline_answers_and_cites_from_milvus(msettings, articles, fake_embedder):
    from conftest import Scripted

    from rag.answer.pipeline import Pipeline

    store.update(msettings, articles, fake_embedder, progress=False, log=lambda m: None)
    p = Pipeline(msettings, embedder=fake_embedder, generator=Scripted("Giá vàng miếng hôm nay tăng 1 triệu đồng mỗi lượng [1]."))
    a = p.ask("Giá vàng miếng hôm nay tăng bao nhiêu?", filters={"source": "báo a", "date_from": "2025-11-01"})
    assert not a.abstained
    (c,) = a.citations
    assert c.article_id == "vang" and c.date == "2025-11-27" and "1 triệu đồng" in c.quote


@pytest.mark.slow  # starts a milvus-lite server
def test_each_project_collection_is_its_own_milvus_collections(msettings, fake_embedder, tmp_path):
    """Two project collections holding an article of the same id: each its own Milvus collections
    (<prefix>_<NAME>_chunks/_articles/_meta), each answering from its own, and both together when asked."""
    home = tmp_path / "home"
    base = msettings.replace(home=home, corpus_dir=home / "corpus", index_dir=home / "embeddings")
    speakers = {"a": "Ông Nguyễn Văn An", "b": "Bà Trần Thị Bình"}
    for name, who in speakers.items():
        collections.create(base, name)
        art = Article(id="hoi-nghi", title="Hội nghị NextGen", date="2025-11-27", source=f"Báo {name}",
                      text=f"{who} phát biểu khai mạc hội nghị NextGen tại Thành phố Hồ Chí Minh. Hội nghị kéo dài hai ngày.")
        store.update(collections.settings_for(base, name), [art], fake_embedder, progress=False, log=lambda m: None)
    client, p = store_milvus.connect(base), base.milvus_collection
    ours = lambda: {n for n in client.list_collections() if n.startswith(p)}  # noqa: E731
    assert ours() == {f"{p}_{name}_{part}" for name in speakers for part in ("chunks", "articles", "meta")}
    question = "Ai phát biểu khai mạc hội nghị NextGen?"
    pipeline = Pipeline(base, embedder=fake_embedder, generator=Echo())
    for name, who in speakers.items():
        answer = pipeline.collection(name).ask(question)
        assert who in answer.text and [c.article_id for c in answer.citations] == ["hoi-nghi"], answer.text
        assert not any(other in answer.text for other in speakers.values() if other != who)
    hits = pipeline.collection("a,b").search(question)
    assert sorted(h.article.collection for h in hits) == ["a", "b"]
    both = pipeline.collection("a,b").ask(question)
    cited = both.citations[0].collection
    assert speakers[cited] in both.text and [(c.collection, c.article_id) for c in both.citations] == [(cited, "hoi-nghi")]
    collections.delete(base, "a")  # drops a's Milvus collections, and only those
    assert ours() == {f"{p}_b_{part}" for part in ("chunks", "articles", "meta")}
    fresh = Pipeline(base, embedder=fake_embedder, generator=Echo())
    assert speakers["b"] in fresh.collection("b").ask(question).text
