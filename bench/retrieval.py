"""Benchmark 2, retrieval latency and a lexical sanity check, by corpus size.

OURS: rag.answer.retrieve.Retriever.search (bm25s BM25, FAISS IDMap2(FlatIP), min-max fusion) over the
lexical-first index of the first N vietnews articles. Dense vectors are RANDOM unit vectors of the
right shape (embedding 22k articles for real takes hours; flat search latency does not depend on the
values). Queries are the titles of sampled articles; recall@10 of "title -> its article" is reported
for BM25. BASELINE: a bare flat FAISS search (IndexFlatIP, dense only, no fusion), what the baseline
system does per query. A real query also pays the query embedding, measured separately.

Levers tried (rag/ is not changed): HNSW (IndexHNSWFlat in IDMap2) instead of flat, by size, and
loading BM25 memory-mapped.
"""
from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.measure import Timer, bench_settings, isolated, latency_ms, rss_mb

HNSW_M = 32
HNSW_EF_SEARCH = 64  # above settings.candidates (50), so the candidate list can be filled


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def sample_queries(idx, n: int, seed: int) -> list[tuple[str, str]]:
    """(title, article id) of n sampled articles; a corpus smaller than n is cycled through."""
    ids = list(idx.articles)
    picked = random.Random(seed).sample(ids, min(n, len(ids)))
    picked = (picked * (n // len(picked) + 1))[:n]
    return [(idx.articles[a].title, a) for a in picked]


def flat_index(vectors: np.ndarray):
    from rag.index.build import build_faiss

    return build_faiss(vectors, np.arange(len(vectors)), vectors.shape[1])


def hnsw_index(vectors: np.ndarray):
    import faiss

    index = faiss.IndexIDMap2(faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT))
    index.add_with_ids(vectors, np.arange(len(vectors), dtype=np.int64))
    faiss.downcast_index(index.index).hnsw.efSearch = HNSW_EF_SEARCH
    return index


def retrieval_at(workdir: Path, n_queries: int, with_hnsw: bool, seed: int = 0) -> dict:
    """Latency of every retriever over one size's index, in its own process."""
    import bm25s  # noqa: F401  imported before the RSS baseline, so "index RSS" is the index's data only
    import faiss

    from rag.index import build as index
    from rag.index.embed import load_embedder
    from rag.answer.retrieve import Retriever

    settings = bench_settings(workdir)
    before = rss_mb()
    with Timer() as load:
        idx = index.load(settings)
    queries = sample_queries(idx, n_queries, seed)
    out = {"articles": len(idx.articles), "chunks": len(idx.chunks), "index_load_s": round(load.s, 2),
           "rss_index_mb": round(rss_mb() - before, 1), "queries": n_queries, "latency_ms": {},
           "query_titles": [t for t, _ in queries]}
    vectors = unit_vectors(len(idx.chunks), settings.embed_dim, seed)
    qvecs = unit_vectors(n_queries, settings.embed_dim, seed + 1)
    embedder = load_embedder(settings)  # never called: query vectors are given; the model is not loaded
    k = 10

    def timed(name: str, retriever: Retriever, mode: str) -> None:
        out["latency_ms"][name] = latency_ms(
            lambda i: retriever.search(queries[i][0], k=k, retriever=mode, query_vector=qvecs[i]), range(n_queries))

    flat = Retriever(replace(idx, faiss=flat_index(vectors)), embedder, settings)
    for mode in ("bm25", "dense", "hybrid"):
        timed(f"{mode}_flat" if mode != "bm25" else "bm25", flat, mode)
    found = [aid in {h.chunk.article_id for h in flat.search(q, k=k, retriever="bm25")} for q, aid in queries]
    out["recall10_bm25"] = round(sum(found) / len(found), 3)

    # The index as `rag index --max-embed 0` leaves it (few or no vectors), searched the way
    # Pipeline.search does it: a new Retriever per question, which recomputes the chunks without a vector.
    out["vectors_as_loaded"] = int(idx.faiss.ntotal)
    out["latency_ms"]["hybrid_as_loaded"] = latency_ms(
        lambda i: Retriever(idx, embedder, settings).search(queries[i][0], k=k, query_vector=qvecs[i]), range(n_queries))

    bare = faiss.IndexFlatIP(settings.embed_dim)  # BASELINE: the baseline system's whole query path
    bare.add(vectors)
    out["latency_ms"]["baseline_flat"] = latency_ms(lambda i: bare.search(qvecs[i : i + 1], k), range(n_queries))

    # Lever: one query gains little from FAISS's OpenMP threads, and on a busy machine each parallel
    # region waits for a core (IndexIDMap2 opens one just to translate ids).
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    for mode in ("dense", "hybrid"):
        timed(f"{mode}_flat_omp1", flat, mode)
    faiss.omp_set_num_threads(threads)

    if with_hnsw:
        with Timer() as build:
            hnsw = Retriever(replace(idx, faiss=hnsw_index(vectors)), embedder, settings)
        out["hnsw"] = {"build_s": round(build.s, 2), "M": HNSW_M, "efSearch": HNSW_EF_SEARCH,
                       "recall50_vs_exact_random_vectors": hnsw_recall(flat, hnsw, qvecs, settings.candidates)}
        for mode in ("dense", "hybrid"):
            timed(f"{mode}_hnsw", hnsw, mode)
    return out


def hnsw_recall(flat, hnsw, qvecs: np.ndarray, depth: int) -> float:
    """Share of the exact top-`depth` that HNSW also returns (random vectors: its worst case)."""
    hits = []
    for q in qvecs:
        exact = {i for i, _ in flat.dense("", depth, query_vector=q)}
        approx = {i for i, _ in hnsw.dense("", depth, query_vector=q)}
        hits.append(len(exact & approx) / max(len(exact), 1))
    return round(float(np.mean(hits)), 3)


def bm25_load(workdir: Path, mmap: bool, titles: list[str]) -> dict:
    """Load the BM25 part alone, in RAM or memory-mapped, then query it."""
    import json

    import bm25s

    from rag.index import build as index
    from rag.index.build import Index
    from rag.answer.retrieve import Retriever

    settings = bench_settings(workdir)
    path = index.current_version(settings.index_dir)
    before = rss_mb()
    with Timer() as load:
        bm25 = bm25s.BM25.load(str(path / "bm25"), mmap=mmap, show_progress=False)
    after_load = rss_mb()
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    lexical = Retriever(Index(path, manifest, {}, [], None, bm25), None, settings)
    lat = latency_ms(lambda q: lexical.bm25(q, settings.candidates), titles)
    return {"mmap": mmap, "load_s": round(load.s, 3), "rss_after_load_mb": round(after_load - before, 1),
            "latency_ms": lat}


def query_encode(queries: list[str], workdir: Path) -> dict:
    """EmbeddingGemma query encoding, one query at a time, as a real question pays it."""
    from rag.index.embed import load_embedder

    embedder = load_embedder(bench_settings(workdir))
    with Timer() as load:
        embedder.model
    return {"model_load_s": round(load.s, 2), "latency_ms": latency_ms(lambda q: embedder.embed_queries([q]), queries)}


def run(sizes: list[int], workdir: Path, quick: bool, built: dict, log) -> dict:
    from bench.ingest import lexical_index

    n_queries = 20 if quick else 50
    out: dict = {"sizes": {}, "bm25_mmap": {}}
    for size in sizes:
        where = Path(lexical_index(size, workdir, built)["workdir"])
        log(f"retrieval: {size:,} articles")
        out["sizes"][size] = isolated(retrieval_at, where, n_queries, with_hnsw=True)
    titles = out["sizes"][max(sizes)].pop("query_titles")
    for size in sizes:
        out["sizes"][size].pop("query_titles", None)
    biggest = Path(built[max(sizes)]["workdir"])
    for mmap in (False, True):
        log(f"retrieval: BM25 load at {max(sizes):,} articles, mmap={mmap}")
        out["bm25_mmap"][str(mmap).lower()] = isolated(bm25_load, biggest, mmap, titles)
    log("retrieval: query embedding")
    out["query_encode"] = isolated(query_encode, titles, Path(workdir) / "query-encode")
    return out
