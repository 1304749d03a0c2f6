"""Dense embedding as a Ray Data job across a cluster's workers, into the ordinary embedding cache.

`rag index --ray ADDRESS` (or RAG_RAY_ADDRESS) calls `embed_with_ray` first: the corpus is cut into
chunks exactly as `rag index` cuts it, chunks whose vectors are already in the cache are skipped, and
the rest go through `map_batches` over a pool of actors, each loading the embedder once (the configured
one: any runtime, or the external server of RAG_EMBED_URL). The driver writes each batch of vectors into
the sqlite cache as it arrives, one committed transaction per batch (sqlite wants one writer; workers
only compute), so an interrupted job loses at most the batches in flight and a re-run embeds only
what is missing. `index.update` then publishes, finding every vector in the cache.

Workers load the model from the same path as the driver (settings.models_dir): on a real cluster,
provision it on every node (`rag models pull`) or share the cache directory.
Ray is optional (the `scale` extra)."""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Callable

from rag import chunking
from rag.config import Settings
from rag.embed import EmbeddingCache, cache_key, embedder_id, load_embedder
from rag.errors import RagError
from rag.types import Article


class RayUnavailable(RagError):
    pass


@dataclass
class RayReport:
    chunks: int = 0  # distinct chunk texts in the corpus
    cached: int = 0  # already in the cache before the job
    embedded: int = 0  # written by this job
    workers: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        rate = self.embedded / self.seconds if self.seconds else 0.0
        return (f"ray: {self.chunks} chunks, {self.cached} already cached, {self.embedded} embedded by "
                f"{self.workers} worker(s) in {self.seconds:.0f} s ({rate:.2f}/s)")


def missing_rows(settings: Settings, articles: list[Article], name: str, cache: EmbeddingCache) -> tuple[list[dict], int]:
    """(chunks without a cached vector as rows: key, text, title; distinct chunks), shortest first so
    each batch carries little padding."""
    splitter = chunking.make_splitter(settings.chunk_size, settings.chunk_overlap)
    chunks = [c for a in articles for c in chunking.split(a, splitter=splitter)]
    rows = {cache_key(name, "doc", c.text, c.title): (c.text, c.title) for c in chunks}  # equal chunks: once
    have = cache.get_many(list(rows))
    todo = [{"key": k, "text": t, "title": ti} for k, (t, ti) in rows.items() if k not in have]
    return sorted(todo, key=lambda r: len(r["text"])), len(rows)


class _EmbedBatch:
    """One actor: builds the embedder once, then embeds the batches it is given."""

    def __init__(self, make_embedder: Callable):
        self.embedder = make_embedder()

    def __call__(self, batch: dict) -> dict:
        vectors = self.embedder.embed_documents([str(t) for t in batch["text"]], [str(t) for t in batch["title"]])
        return {"key": batch["key"], "vector": vectors}


def embed_with_ray(
    settings: Settings,
    articles: list[Article],
    *,
    address: str,
    cache: EmbeddingCache,
    make_embedder: Callable | None = None,
    embedder_name: str | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    log=print,
) -> RayReport:
    """Embed the corpus's uncached chunks on the Ray cluster at `address` into `cache`.
    `make_embedder` (picklable, called once per actor) and `embedder_name` stand in for the configured
    embedder; `on_batch(done, todo)` is called after each committed batch."""
    try:
        import ray
    except ImportError as e:
        raise RayUnavailable("--ray needs Ray: .venv/bin/pip install -e '.[scale]'") from e
    name = embedder_name or embedder_id(settings)
    cpus = settings.threads or 1  # per actor: its embedder's threads
    make_embedder = make_embedder or functools.partial(load_embedder, settings.replace(threads=cpus))
    report = RayReport()
    todo, report.chunks = missing_rows(settings, articles, name, cache)
    report.cached = report.chunks - len(todo)
    if not todo:
        log(report.summary())
        return report
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    try:
        report.workers = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus))
        log(f"ray: embedding {len(todo)} chunks with {report.workers} worker(s) at {address}")
        t0 = time.perf_counter()
        ds = ray.data.from_items(todo).map_batches(
            _EmbedBatch, fn_constructor_args=(make_embedder,), batch_size=settings.embed_batch, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=report.workers), num_cpus=cpus,
        )
        for batch in ds.iter_batches(batch_size=settings.embed_batch, batch_format="numpy"):
            cache.put_many(dict(zip(batch["key"].tolist(), batch["vector"])))  # one transaction: resumable
            report.embedded += len(batch["key"])
            report.seconds = time.perf_counter() - t0
            if on_batch:
                on_batch(report.embedded, len(todo))
    finally:
        if started_here:
            ray.shutdown()
    log(report.summary())
    return report
