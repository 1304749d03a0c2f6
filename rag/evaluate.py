"""Evaluation runs over gold sets: retrieval now; answers (full pipeline) in the same shape."""
from __future__ import annotations

import hashlib
import time

from rag import index as index_mod
from rag.config import Settings
from rag.embed import embed_cached, load_embedder, open_cache
from rag.evalsets import GoldSet
from rag.metrics import percentile, retrieval_scores
from rag.retrieve import Retriever


def ensure_corpus_index(gold: GoldSet, settings: Settings, embedder, *, progress=True, log=print) -> Settings:
    """Index a gold set's own corpus under the cache (once; reruns reuse it) and return settings pointing at it."""
    digest = hashlib.sha256("\x00".join(sorted(a.id for a in gold.corpus)).encode()).hexdigest()[:12]
    eval_settings = settings.replace(index_dir=settings.cache_dir / "eval" / f"{gold.name}-{digest}")
    report = index_mod.update(eval_settings, gold.corpus, embedder, progress=progress, log=log, cache=open_cache(settings))
    log(f"eval corpus {gold.name}: {report.summary()}")
    return eval_settings


def article_ranking(hits) -> list[str]:
    """Chunk hits -> article ids in order of their best chunk."""
    seen, out = set(), []
    for h in hits:
        if h.chunk.article_id not in seen:
            seen.add(h.chunk.article_id)
            out.append(h.chunk.article_id)
    return out


def retrieval(gold: GoldSet, settings: Settings, retrievers=("hybrid",), *, progress=True, log=print) -> dict:
    """Rank the gold set's corpus for every question; metrics per retriever, as in the ViRE tables."""
    needs_dense = any(r != "bm25" for r in retrievers)
    embedder = load_embedder(settings)
    t0 = time.perf_counter()
    eval_settings = ensure_corpus_index(gold, settings, embedder, progress=progress, log=log)
    index = index_mod.load(eval_settings, expected_embedder=embedder.name)
    index_s = time.perf_counter() - t0
    questions = [it.question for it in gold.items]
    t1 = time.perf_counter()
    qvecs = embed_cached(embedder, questions, cache=open_cache(settings), progress=progress, desc="embedding questions") if needs_dense else None
    qembed_s = time.perf_counter() - t1
    retriever = Retriever(index, embedder, eval_settings)
    depth = max(100, settings.candidates)  # chunks; enough to rank 20 distinct articles
    results = {}
    for mode in retrievers:
        ranked, lat = [], []
        for i, q in enumerate(questions):
            t = time.perf_counter()
            hits = retriever.search(q, k=depth, retriever=mode, query_vector=None if qvecs is None else qvecs[i])
            lat.append((time.perf_counter() - t) * 1000)
            ranked.append(article_ranking(hits)[:20])
        scores = retrieval_scores(ranked, [set(it.article_ids) for it in gold.items])
        scores["search_ms_p50"] = round(percentile(lat, 50), 2)
        scores["search_ms_p95"] = round(percentile(lat, 95), 2)
        results[mode] = scores
    return {
        "gold": gold.name,
        "queries": len(questions),
        "corpus_size": len(gold.corpus),
        "chunks": len(index),
        "skipped_rows": len(gold.skipped),
        "settings": {k: getattr(settings, k) for k in ("embedder", "embed_dim", "tokenizer", "fusion", "dense_weight", "chunk_size", "chunk_overlap")},
        "timings_s": {"index": round(index_s, 2), "embed_queries": round(qembed_s, 2)},
        "retrievers": results,
    }
