"""Ray against in-process embedding on this machine: the same real chunks embedded (1) by
rag.index.embed.embed_some in this process and (2) by `rag.index.ray_embed.embed_with_ray` through a local Ray
cluster started here (a head and one worker node on 127.0.0.1, --cpus-per-node each), each into its
own empty embedding cache, with the configured embedder (RAG_EMBED_RUNTIME / RAG_EMBED_URL apply).

    .venv/bin/python bench/ray_embed.py [--n 32] [--cpus-per-node 1]

Prints passages/s of both and the ratio. On one 2-core machine Ray cannot beat in-process (the same
cores, plus actor start-up, model loads in each actor and serialisation); the point of the path is a
cluster of many machines, where throughput is about N workers × the single-worker rate.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import sample_chunks  # noqa: E402
from bench.measure import bench_settings, machine, vietnews_subset  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=32, help="chunks")
    p.add_argument("--cpus-per-node", type=int, default=1, help="CPUs (= actors of one thread) per Ray node")
    args = p.parse_args(argv)
    from rag.index.embed import embed_some, load_embedder, open_cache
    from rag.index.ray_embed import embed_with_ray, local_cluster
    from rag.types import Article

    info = machine()
    with tempfile.TemporaryDirectory() as work:
        sample = sample_chunks(vietnews_subset(300, Path(work)), args.n)
        # one article per chunk, with the chunk's text: `rag index` cuts it back into exactly that chunk
        articles = [Article(id=f"c{i}", title=title, text=text) for i, (text, title) in enumerate(sample)]
        base = bench_settings(Path(work) / "inproc")
        embedder = load_embedder(base)
        embedder.embed_documents(["khởi động"], [""])  # model load outside the timing, as Ray's actors' is not
        t0 = time.perf_counter()
        embed_some(embedder, [t for t, _ in sample], [ti for _, ti in sample], cache=open_cache(base),
                   batch_size=base.embed_batch, progress=False)
        inproc = len(sample) / (time.perf_counter() - t0)
        print(f"in-process: {inproc:.3f} passages/s", file=sys.stderr)

        ray_settings = bench_settings(Path(work) / "ray", threads=1)
        with local_cluster(nodes=2, cpus_per_node=args.cpus_per_node) as address:
            t0 = time.perf_counter()
            report = embed_with_ray(ray_settings, articles, address=address, cache=open_cache(ray_settings),
                                    log=lambda m: print(m, file=sys.stderr))
            wall = time.perf_counter() - t0
    rate = report.embedded / wall
    print(f"| path | passages/s | × in-process |\n|---|---|---|\n| in-process ({embedder.name}, "
          f"{base.threads or os.cpu_count()} threads) | {inproc:.3f} | 1.0 |\n| Ray, 2 nodes × {args.cpus_per_node} "
          f"actor(s), wall time incl. actor start and model loads | {rate:.3f} | {rate / inproc:.2f} |\n\n"
          f"First batch back after {report.first_batch_s:.0f} s (actors starting, loading the model, one batch); "
          f"{report.embedded} chunks; {info['nproc']} cores ({info['cpu_model']}); load average "
          f"{info['loadavg_at_start']} at start, {[round(x, 2) for x in os.getloadavg()]} at end.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
