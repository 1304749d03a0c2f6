"""Scale-out dense embedding with Ray Data: N workers run the same EmbeddingGemma model over the
corpus's chunks and the driver writes the vectors into the embedding cache that `rag index` reads.
`rag index` afterwards finds every chunk in the cache and publishes a fully dense index in minutes.

    .venv/bin/python bench/ray_embed.py CORPUS [--workers 4] [--cpus-per-worker 2] [--address auto] [--limit N]

CORPUS is anything `rag.corpus.load_corpus` reads (a folder, a .jsonl or .jsonl.gz file). Chunks already
in the cache are skipped, so the job is resumable and never pays twice. Ray is not a dependency of the
project: without it this script stops with a message and does nothing.

Why the driver writes: the cache is one sqlite file, which wants one writer; the workers only compute.
Cost: the single-process rate measured by bench/run.py (passages/s) times N workers, minus Ray overhead;
see bench/README.md.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def chunk_rows(corpus: Path, settings, cache, embedder_name: str) -> tuple[list[dict], int]:
    """(rows still to embed: cache key, text, title; chunks in total), cut exactly as `rag index` cuts."""
    from rag import chunking
    from rag.corpus import load_corpus
    from rag.embed import cache_key

    loaded = load_corpus(corpus)
    splitter = chunking.make_splitter(settings.chunk_size, settings.chunk_overlap)
    chunks = [c for a in loaded.articles for c in chunking.split(a, splitter=splitter)]
    rows = [{"key": cache_key(embedder_name, "doc", c.text, c.title), "text": c.text, "title": c.title} for c in chunks]
    have = cache.get_many([r["key"] for r in rows])
    return [r for r in rows if r["key"] not in have], len(rows)


class EmbedBatch:
    """One Ray actor: loads the model once, then embeds batches with the project's own embedder
    (same document prompt, Matryoshka dimension and normalisation as `rag index`)."""

    def __init__(self, model_path: str, name: str, dim: int, threads: int):
        from rag.embed import SentenceTransformerEmbedder

        self.embedder = SentenceTransformerEmbedder(Path(model_path), name=name, dim=dim, threads=threads)

    def __call__(self, batch: dict) -> dict:
        vectors = self.embedder.embed_documents(list(batch["text"]), list(batch["title"]))
        return {"key": batch["key"], "vector": vectors}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("corpus", type=Path)
    p.add_argument("--workers", type=int, default=2, help="model replicas (Ray actors)")
    p.add_argument("--cpus-per-worker", type=int, default=1, help="torch threads and Ray CPUs per replica")
    p.add_argument("--batch", type=int, default=32, help="chunks per model call")
    p.add_argument("--address", default=None, help="Ray cluster address ('auto' to join a running cluster)")
    p.add_argument("--limit", type=int, help="embed at most this many chunks (a trial run)")
    args = p.parse_args(argv)
    try:
        import ray
    except ImportError:
        print("Ray is not installed, so nothing was done. Ray is optional and not a dependency of the project:\n"
              "  .venv/bin/pip install 'ray[data]'   # then run this script again\n"
              "Without Ray, `rag index --max-embed N` fills the same cache in resumable steps on one machine.",
              file=sys.stderr)
        return 2

    from rag import models
    from rag.config import load_settings
    from rag.embed import embedder_id, open_cache

    settings = load_settings()
    cache = open_cache(settings)
    name = embedder_id(settings)
    missing, total = chunk_rows(args.corpus, settings, cache, name)
    todo = missing[: args.limit] if args.limit else missing
    print(f"{total} chunks in {args.corpus}, {total - len(missing)} already cached; "
          f"embedding {len(todo)} with {args.workers} worker(s)", file=sys.stderr)
    if not todo:
        return 0
    model_path = str(models.resolve(settings.embedder, settings, kind=models.EMBEDDER))

    ray.init(address=args.address, ignore_reinit_error=True)
    t0 = time.perf_counter()
    vectors = ray.data.from_items(todo).map_batches(
        EmbedBatch,
        fn_constructor_kwargs={"model_path": model_path, "name": name, "dim": settings.embed_dim,
                               "threads": args.cpus_per_worker},
        batch_size=args.batch,
        batch_format="numpy",
        concurrency=args.workers,
        num_cpus=args.cpus_per_worker,
    )
    done = 0
    for batch in vectors.iter_batches(batch_size=256, batch_format="numpy"):
        cache.put_many(dict(zip(batch["key"].tolist(), batch["vector"])))  # committed per batch: resumable
        done += len(batch["key"])
        rate = done / (time.perf_counter() - t0)
        print(f"\r{done}/{len(todo)} chunks, {rate:.2f}/s", end="", file=sys.stderr)
    print(f"\nDone in {time.perf_counter() - t0:.0f}s. Now run `rag index` on the same corpus: every vector "
          "comes from the cache.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
