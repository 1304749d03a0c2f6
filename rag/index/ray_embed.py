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
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from rag.index import chunking
from rag.config import Settings
from rag.index.embed import EmbeddingCache, cache_key, embedder_id, load_embedder, runtime
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
    seconds: float = 0.0  # from the job's start to its last batch
    first_batch_s: float = 0.0  # actors starting and loading the model, then one batch

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
    # the runtime settled here (RAG_EMBED_RUNTIME=auto looks at the local index): every actor computes this one
    settings = settings.replace(embed_runtime=runtime(settings))
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
            report.first_batch_s = report.first_batch_s or report.seconds
            if on_batch:
                on_batch(report.embedded, len(todo))
    finally:
        if started_here:
            ray.shutdown()
    log(report.summary())
    return report


@contextmanager
def local_cluster(nodes: int = 2, cpus_per_node: int = 1, pythonpath: Sequence[str] = ()) -> Iterator[str]:
    """A throw-away Ray cluster on 127.0.0.1: a head and nodes-1 worker nodes, each `ray start --block`
    in its own process group, stopped by id on exit (never `ray stop`, which stops every cluster on
    the machine). Yields the address. For tests, bench/ray_embed.py and trying `rag index --ray` out."""
    import socket
    import tempfile

    import ray

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    package_parent = Path(__file__).resolve().parents[2]  # where workers import `rag` from, as this process does
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0",
               PYTHONPATH=os.pathsep.join([str(package_parent), *pythonpath, os.environ.get("PYTHONPATH", "")]))
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths are length-limited
    ray_cli = str(Path(sys.executable).parent / "ray")
    procs: list[subprocess.Popen] = []

    def start(args: list[str], log: str) -> None:
        procs.append(subprocess.Popen(
            [ray_cli, "start", "--block", "--num-cpus", str(cpus_per_node), "--node-ip-address", "127.0.0.1",
             "--disable-usage-stats", *args], stdout=(temp / log).open("w"), stderr=subprocess.STDOUT, env=env,
            start_new_session=True))

    port = free_port()
    address = f"127.0.0.1:{port}"
    start(["--head", "--port", str(port), "--include-dashboard", "false", "--temp-dir", str(temp),
           "--ray-client-server-port", str(free_port())], "head.log")
    try:
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)  # waits for the head
        for n in range(1, nodes):
            start(["--address", address], f"worker{n}.log")
        deadline = time.monotonic() + 90
        while ray.cluster_resources().get("CPU", 0) < nodes * cpus_per_node:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Ray nodes did not join in 90 s; logs in {temp}")
            time.sleep(0.5)
        yield address
    finally:
        ray.shutdown()
        for proc in reversed(procs):
            for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                try:
                    os.killpg(proc.pid, sig)
                    proc.wait(wait)
                    break
                except ProcessLookupError:
                    break
                except subprocess.TimeoutExpired:
                    continue
        shutil.rmtree(temp, ignore_errors=True)
