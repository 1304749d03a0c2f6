"""Benchmark 1, ingestion: OURS (rag.index.build.update: lexical first, incremental, embedding cache) against
a BASELINE that embeds every chunk with sentence-transformers and builds a flat FAISS index from
scratch each time (no cache, no incrementality).

Each measurement runs in its own spawned process (measure.isolated), so peak RSS figures do not mix.
Embedding a large corpus for real takes hours on 2 cores: the embedding rate is measured on a sample
and full-corpus figures are computed from it (their keys say `computed`).
"""
from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.measure import ROOT, Timer, bench_settings, dir_mb, isolated, vietnews_subset

SAMPLE_POOL = 400  # articles whose chunks the embedding-rate sample is drawn from
EDIT = " Nội dung này đã được tòa soạn cập nhật lúc {}."  # appended to a paragraph to change an article


class CountingEmbedder:
    """The real embedder, counting the texts that reach the model (cache hits never do)."""

    def __init__(self, inner):
        self.inner, self.name, self.dim, self.embedded = inner, inner.name, inner.dim, 0

    def embed_queries(self, texts):
        return self.inner.embed_queries(texts)

    def embed_documents(self, texts, titles):
        self.embedded += len(texts)
        return self.inner.embed_documents(texts, titles)


def _read(path: Path) -> tuple[list, float]:
    from rag.ingest.corpus import load_corpus

    with Timer() as t:
        loaded = load_corpus(path)
    if loaded.errors:
        raise RuntimeError(f"{path}: {len(loaded.errors)} unreadable articles, first: {loaded.errors[0]}")
    return loaded.articles, t.s


# ------------------------------------------------------------------ isolated measurements


def lexical_build(subset: Path, workdir: Path) -> dict:
    """OURS, lexical-first: read + clean + chunk + BM25 + publish, no embedding (`max_embed=0`)."""
    from rag.index import build as index
    from rag.index.embed import load_embedder

    settings = bench_settings(workdir)
    articles, read_s = _read(subset)
    embedder = load_embedder(settings)  # lazy: with max_embed=0 the model is never loaded
    report = index.update(settings, articles, embedder, rebuild=True, progress=False, log=lambda m: None, max_embed=0)
    version = index.current_version(settings.index_dir)
    return {
        "articles": len(articles),
        "chunks": report.chunks,
        "read_s": round(read_s, 2),
        "index_s": round(report.seconds, 2),
        "articles_per_s": round(len(articles) / (read_s + report.seconds), 1),
        "chunks_per_s": round(report.chunks / (read_s + report.seconds), 1),
        "disk_mb": dir_mb(version),
        "disk_mb_by_file": {
            name: dir_mb(version / name) if (version / name).is_dir() else round((version / name).stat().st_size / 2**20, 2)
            for name in ("articles.jsonl", "chunks.jsonl", "bm25", "dense.faiss")
        },
    }


def change_one_lexical(subset: Path, workdir: Path) -> dict:
    """OURS at scale: re-index after one article changed, lexical side only (`max_embed=0`)."""
    from dataclasses import replace

    from rag.index import chunking, build as index
    from rag.index.embed import load_embedder

    settings = bench_settings(workdir)
    articles, read_s = _read(subset)
    mid = len(articles) // 2
    articles[mid] = replace(articles[mid], text=articles[mid].text + EDIT.format(time.time()))
    report = index.update(settings, articles, load_embedder(settings), progress=False, log=lambda m: None, max_embed=0)
    return {"read_s": round(read_s, 2), "update_s": round(report.seconds, 2), "changed": len(report.changed),
            "changed_article_chunks": len(chunking.split(articles[mid], settings.chunk_size, settings.chunk_overlap))}


def fill_in_steps(subset: Path, workdir: Path, step: int, steps: int) -> dict:
    """OURS: dense fill-in of a lexical-only index, `step` chunks per `rag index --max-embed` run."""
    from rag.index import build as index
    from rag.index.embed import load_embedder, open_cache

    settings = bench_settings(workdir)
    articles, _ = _read(subset)
    embedder = load_embedder(settings)
    with Timer() as load:
        embedder.model  # the model load, paid once per `rag index` process
    runs = []
    for _ in range(steps):
        r = index.update(settings, articles, embedder, progress=False, log=lambda m: None,
                         cache=open_cache(settings), max_embed=step)
        runs.append({"seconds": round(r.seconds, 2), "embedded": r.embedded, "without_vector": r.without_vector,
                     "vectors": r.chunks - r.without_vector})
    return {"model_load_s": round(load.s, 2), "step": step, "runs": runs}


def dense_rate_ours(sample: list[tuple[str, str]], workdir: Path, threads: int = 0) -> dict:
    """OURS: passages/s through rag.index.embed (EmbeddingGemma document prompt, settings.embed_batch, sqlite cache);
    `threads` 1 gives the per-core rate that scale-out estimates start from (0: one per core)."""
    from rag.index.embed import embed_some, load_embedder, open_cache

    settings = bench_settings(workdir, threads=threads or None)
    embedder = load_embedder(settings)
    with Timer() as load:
        embedder.model
    embedder.embed_documents(["khởi động"], [""])  # first call pays one-off set-up; not a passage
    texts, titles = [t for t, _ in sample], [ti for _, ti in sample]
    cache = open_cache(settings)
    with Timer() as t:
        embed_some(embedder, texts, titles, cache=cache, batch_size=settings.embed_batch, progress=False)
    with Timer() as again:  # the second time every vector comes from the cache
        embed_some(embedder, texts, titles, cache=cache, batch_size=settings.embed_batch, progress=False)
    return {"model_load_s": round(load.s, 2), "threads": embedder.threads, "passages": len(texts), "seconds": round(t.s, 2),
            "passages_per_s": round(len(texts) / t.s, 3), "batch_size": settings.embed_batch,
            "cached_passages_per_s": round(len(texts) / again.s, 1)}


def dense_rate_baseline(sample: list[tuple[str, str]], model_path: str) -> dict:
    """BASELINE: SentenceTransformer.encode_document on every chunk (batch 32), then a flat FAISS index."""
    import faiss

    with Timer() as load:  # imports included, as in OURS (rag.index.embed imports torch when the model loads)
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(os.cpu_count() or 1)
        model = SentenceTransformer(model_path, device="cpu", local_files_only=True)
    model.encode_document(["khởi động"])
    with Timer() as t:
        vecs = model.encode_document([f"title: {ti} | text: {x}" for x, ti in sample], batch_size=32,
                                     normalize_embeddings=True, convert_to_numpy=True)
        flat = faiss.IndexFlatIP(vecs.shape[1])
        flat.add(vecs)
    return {"model_load_s": round(load.s, 2), "passages": len(sample), "seconds": round(t.s, 2),
            "passages_per_s": round(len(sample) / t.s, 3), "batch_size": 32}


def reindex_default_corpus(workdir: Path) -> dict:
    """The default corpus, real embedder: OURS build / no-change / one-change re-index against the
    BASELINE's full re-embed + flat rebuild (which is what it does after any change)."""
    import faiss

    from rag.index import build as index
    from rag.index.embed import load_embedder, open_cache

    corpus = Path(workdir) / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    settings = bench_settings(workdir, corpus_dir=corpus)
    embedder = CountingEmbedder(load_embedder(settings))
    with Timer() as load:
        embedder.inner.model

    def reindex() -> dict:
        before = embedder.embedded
        with Timer() as t:
            articles, _ = _read(corpus)
            r = index.update(settings, articles, embedder, progress=False, log=lambda m: None, cache=open_cache(settings))
        return {"seconds": round(t.s, 2), "chunks": r.chunks, "changed": len(r.changed) + len(r.added),
                "embedded_by_model": embedder.embedded - before}

    out = {"model_load_s": round(load.s, 2), "build": reindex(), "no_change": reindex()}
    edit_one_article(corpus)
    out["one_change"] = reindex()

    chunks = index.load(settings).chunks
    model = embedder.inner.model
    with Timer() as t:  # BASELINE: no cache, no incrementality: every chunk again, a new flat index
        vecs = model.encode_document([f"title: {c.title} | text: {c.text}" for c in chunks], batch_size=32,
                                     normalize_embeddings=True, convert_to_numpy=True)
        flat = faiss.IndexFlatIP(vecs.shape[1])
        flat.add(vecs)
    out["baseline_full_rebuild"] = {"seconds": round(t.s, 2), "chunks": len(chunks)}
    return out


def edit_one_article(corpus: Path) -> Path:
    """Append a sentence to the middle paragraph of the first article file: a realistic small edit."""
    path = sorted(p for p in corpus.glob("*.md") if p.stem.upper() != "README")[0]
    lines = path.read_text(encoding="utf-8").split("\n")
    body = [i for i, line in enumerate(lines) if len(line) > 80]  # paragraphs, not front matter
    lines[body[len(body) // 2]] += EDIT.format(time.time())
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def reindex_cli(workdir: Path) -> dict:
    """OURS as a user runs it: `rag index` in a fresh process after one article changed (Python start,
    imports, embedder load and the embedding of the changed chunks included). `searchable_s`: when it
    says the changed article is live for lexical search, before the embedding model has loaded."""
    corpus = Path(workdir) / "corpus"
    edit_one_article(corpus)
    settings = bench_settings(workdir)
    env = dict(os.environ, RAG_CORPUS_DIR=str(corpus), RAG_INDEX_DIR=str(settings.index_dir),
               RAG_CACHE_DIR=str(settings.cache_dir))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "rag", "index", "--quiet"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    searchable, err = None, []
    for line in proc.stderr:
        err.append(line)
        if searchable is None and "searchable now" in line:
            searchable = time.perf_counter() - t0
    out = proc.stdout.read()
    proc.wait()
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"rag index failed: {''.join(err)[-500:]}")
    return {"seconds": round(seconds, 2), "searchable_s": searchable and round(searchable, 2), "output": out.strip()[-300:]}


# ------------------------------------------------------------------ composition


def sample_chunks(subset: Path, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """n chunks (text, title) drawn from the subset's articles, as the index would cut them."""
    from rag.index import chunking
    from rag.config import load_settings

    articles, _ = _read(subset)
    s = load_settings()
    splitter = chunking.make_splitter(s.chunk_size, s.chunk_overlap)
    pool = [(c.text, c.title) for a in articles for c in chunking.split(a, splitter=splitter)]
    return random.Random(seed).sample(pool, min(n, len(pool)))


def lexical_index(size: int, workdir: Path, cache: dict) -> dict:
    """The lexical-only index of the first `size` vietnews articles, built (and measured) once per run."""
    if size not in cache:
        where = Path(workdir) / f"vietnews-{size}"
        cache[size] = {"workdir": str(where), **isolated(lexical_build, vietnews_subset(size, workdir), where)}
    return cache[size]


def dense_rates(sample: list[tuple[str, str]], workdir: Path, log) -> dict:
    from rag import models
    from rag.config import load_settings

    log(f"ingest: dense rate on {len(sample)} chunks, ours")
    ours = isolated(dense_rate_ours, sample, Path(workdir) / "dense-ours")
    log("ingest: dense rate, ours, one thread")
    one_thread = isolated(dense_rate_ours, sample, Path(workdir) / "dense-ours-1", threads=1)
    log("ingest: dense rate, baseline")
    settings = load_settings()
    base = isolated(dense_rate_baseline, sample, str(models.resolve(settings.embedder, settings, kind=models.EMBEDDER)))
    return {"ours": ours, "ours_one_thread": one_thread, "baseline": base,
            "sample_mean_chars": round(sum(len(t) for t, _ in sample) / len(sample))}


def default_corpus(workdir: Path, log) -> dict:
    log("ingest: re-index of the default corpus (real embedder)")
    where = Path(workdir) / "default-corpus"
    out = isolated(reindex_default_corpus, where)
    log("ingest: `rag index` in a fresh process after one change")
    out["one_change_cli"] = reindex_cli(where)
    return out


def run(sizes: list[int], workdir: Path, quick: bool, built: dict, log) -> dict:
    out: dict = {"lexical": {}}
    for size in sizes:
        log(f"ingest: lexical-first index of {size:,} articles")
        out["lexical"][size] = lexical_index(size, workdir, built)
    biggest, subset = Path(built[max(sizes)]["workdir"]), vietnews_subset(max(sizes), workdir)
    sample = sample_chunks(vietnews_subset(min(SAMPLE_POOL, max(sizes)), workdir), 8 if quick else 64)
    out["dense_rate"] = dense_rates(sample, workdir, log)
    out["default_corpus"] = default_corpus(workdir, log)
    log(f"ingest: one change at {max(sizes):,} articles (lexical side)")
    out["change_one_at_scale"] = {"articles": max(sizes), **isolated(change_one_lexical, subset, biggest)}
    if quick:  # one embedder load less
        out["fill_in"] = {"skipped": "--quick"}
    else:
        log(f"ingest: 2 dense fill-in runs of 32 chunks at {max(sizes):,} articles")
        out["fill_in"] = {"articles": max(sizes), **isolated(fill_in_steps, subset, biggest, 32, 2)}
    out["computed"] = computed(out, sizes)
    return out


def computed(out: dict, sizes: list[int]) -> dict:
    """Full-corpus dense figures from the measured rates (labelled computed in the summary)."""
    ours_rate = out["dense_rate"]["ours"]["passages_per_s"]
    base_rate = out["dense_rate"]["baseline"]["passages_per_s"]
    one_core_rate = out["dense_rate"]["ours_one_thread"]["passages_per_s"]
    biggest = out["lexical"][max(sizes)]
    per_article = biggest["chunks"] / biggest["articles"]
    per_size = {}
    for size in sizes:
        chunks = out["lexical"][size]["chunks"]
        per_size[size] = {
            "chunks": chunks,
            "ours_full_dense_h": round(chunks / ours_rate / 3600, 2),
            "baseline_full_dense_h": round(chunks / base_rate / 3600, 2),
            # after a one-article change the baseline embeds the whole corpus again
            "baseline_reindex_one_change_s": round(chunks / base_rate, 1),
        }
    scale = out["change_one_at_scale"]
    return {
        "chunks_per_article": round(per_article, 2),
        "ours_s_per_1000_articles": round(1000 * per_article / ours_rate),
        "baseline_s_per_1000_articles": round(1000 * per_article / base_rate),
        "ours_core_h_per_1000_articles": round(1000 * per_article / ours_rate * (os.cpu_count() or 1) / 3600, 2),
        "per_size": per_size,
        # scale-out (Ray workers of one core each): core-hours do not change with the number of workers
        "one_core_h_per_1000_articles": round(1000 * per_article / one_core_rate / 3600, 2),
        "one_core_h_full_corpus": round(biggest["chunks"] / one_core_rate / 3600, 1),
        # what an update that changes articles pays at this size beyond embedding: BM25 rebuilt (tokens cached), files rewritten
        "publish_s": scale["update_s"],
        "ours_reindex_one_change_at_scale_s": round(
            scale["read_s"] + scale["update_s"] + scale["changed_article_chunks"] / ours_rate, 1),
    }
