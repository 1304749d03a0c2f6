"""Benchmark: dense index types by size, for the scale-out plan in bench/SCALE.md.

FAISS flat (exact; what rag/index/build.py uses) vs HNSW vs IVF-PQ, and Milvus (milvus-lite's server, FLAT)
where it fits in time: build seconds, index memory (RSS growth while building, in its own process),
single-query latency p50/p95 with one thread (as rag.answer.retrieve runs), and recall@10 against exact search.

Vectors: "synthetic" are clustered unit vectors (random points scattered around 1,000 random centres, so
neighbourhoods have structure as real embeddings do; uniform random vectors are the worst case for ANN
indexes). "real" are the EmbeddingGemma document vectors in the embedding cache, each repeated with
small noise up to the size. Queries are held-out points of the same kind.

    python -m bench.scale --sizes 100000 1000000 --queries 200 --out bench/results/scale.json
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import time
from pathlib import Path

import numpy as np

from bench.measure import Timer, isolated, percentiles, rss_mb

K = 10
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 40, 64
PQ_M, PQ_BITS = 96, 8  # 96 bytes a vector (8 dims per sub-quantizer)
NPROBE = 32


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def synthetic(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((1000, dim), dtype=np.float32))
    out = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, 100_000):  # in slices: the noise of 1M x 768 at once would double peak memory
        m = min(100_000, n - s)
        out[s : s + m] = centres[rng.integers(0, len(centres), m)] + 0.7 * rng.standard_normal((m, dim), dtype=np.float32) / np.sqrt(dim)
    return _unit(out)


def real(n: int, cache: Path, seed: int) -> np.ndarray:
    with sqlite3.connect(str(cache)) as db:
        base = np.stack([np.frombuffer(v, dtype=np.float32) for (v,) in db.execute("SELECT v FROM vec")])
    base = base[np.linalg.norm(base, axis=1) > 0]
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        out[s : s + m] = base[rng.integers(0, len(base), m)] + 0.02 * rng.standard_normal((m, base.shape[1]), dtype=np.float32)
    return _unit(out)


def vectors(kind: str, n: int, dim: int, cache: Path, seed: int = 0) -> np.ndarray:
    return synthetic(n, dim, seed) if kind == "synthetic" else real(n, cache, seed)


def _faiss_index(name: str, data: np.ndarray):
    import faiss

    n, dim = data.shape
    if name == "flat":
        index = faiss.IndexFlatIP(dim)
    elif name == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    else:  # ivfpq: about 2 * sqrt(n) lists, trained on a sample (30 points a list, faiss's low bound)
        nlist = int(2 * np.sqrt(n))
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, PQ_M, PQ_BITS, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = index.pq.cp.niter = 10  # bounded training on 2 shared cores (faiss default 25)
        index.pq.cp.max_points_per_centroid = 64  # PQ codebooks from 16k residuals, not 65k
        sample = data[np.random.default_rng(1).choice(n, min(n, 40 * nlist), replace=False)]
        index.train(sample)
    index.add(data)
    if name == "hnsw":
        index.hnsw.efSearch = HNSW_EF_SEARCH
    if name == "ivfpq":
        index.nprobe = NPROBE
    return index


def measure_faiss(name: str, kind: str, n: int, dim: int, n_queries: int, cache: Path, threads: int) -> dict:
    """One index type at one size, in its own process (isolated) so memory is its own."""
    import faiss

    allv = vectors(kind, n + n_queries, dim, cache)
    data, queries = allv[:n], allv[n:]
    del allv
    faiss.omp_set_num_threads(threads)
    exact = faiss.IndexFlatIP(dim)
    exact.add(data)
    _, truth = exact.search(queries, K)  # batched: fast even at 1M
    del exact
    before = rss_mb()
    with Timer() as t:
        index = _faiss_index(name, data)
    mem = rss_mb() - before  # flat copies the vectors once: its memory is the vectors themselves
    faiss.omp_set_num_threads(1)  # queries one at a time, as rag.answer.retrieve does
    lat, found = [], []
    for q in queries:
        t0 = time.perf_counter()
        _, ids = index.search(q[None, :], K)
        lat.append((time.perf_counter() - t0) * 1000)
        found.append(ids[0])
    recall = float(np.mean([len(set(f) & set(g)) / K for f, g in zip(found, truth)]))
    return {"index": name, "vectors": kind, "n": n, "build_s": round(t.s, 1), "index_mb": round(mem, 1),
            "latency_ms": percentiles(lat), "recall_at_10": round(recall, 4), "build_threads": threads}


def measure_milvus(kind: str, n: int, dim: int, n_queries: int, cache: Path, workdir: Path) -> dict:
    """milvus-lite's gRPC server in this process's thread, reached over loopback by pymilvus (FLAT, IP)."""
    from milvus_lite.adapter.grpc.server import start_server_in_thread
    from pymilvus import DataType, MilvusClient

    import faiss

    allv = vectors(kind, n + n_queries, dim, cache)
    data, queries = allv[:n], allv[n:]
    exact = faiss.IndexFlatIP(dim)
    exact.add(data)
    _, truth = exact.search(queries, K)
    del exact
    server, db, port = start_server_in_thread(str(workdir / f"milvus-{kind}-{n}"), port=0)
    try:
        client = MilvusClient(uri=f"http://127.0.0.1:{port}", grpc_options={"grpc.keepalive_permit_without_calls": False})
        s = client.create_schema(auto_id=False)
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("v", DataType.FLOAT_VECTOR, dim=dim)
        ip = client.prepare_index_params()
        ip.add_index("v", index_type="FLAT", metric_type="IP")
        before = rss_mb()
        with Timer() as t:
            client.create_collection("bench", schema=s, index_params=ip)
            for i in range(0, n, 2000):
                client.insert("bench", [{"id": j, "v": data[j].tolist()} for j in range(i, min(n, i + 2000))])
            client.flush("bench")
            client.load_collection("bench")
        mem = rss_mb() - before
        lat, found = [], []
        for q in queries:
            t0 = time.perf_counter()
            res = client.search("bench", data=[q.tolist()], anns_field="v", limit=K, search_params={"metric_type": "IP"})
            lat.append((time.perf_counter() - t0) * 1000)
            found.append([h["id"] for h in res[0]])
        recall = float(np.mean([len(set(f) & set(g)) / K for f, g in zip(found, truth)]))
    finally:
        server.stop(grace=0)
        db.close()
    return {"index": "milvus-lite FLAT", "vectors": kind, "n": n, "build_s": round(t.s, 1), "index_mb": round(mem, 1),
            "latency_ms": percentiles(lat), "recall_at_10": round(recall, 4)}


def table(rows: list[dict]) -> str:
    """The measured rows as the Markdown table in bench/SCALE.md."""
    out = ["| vectors | chunks | index | build s | index MB | p50 ms | p95 ms | recall@10 |", "|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["vectors"], r["n"], r["index"])):
        lat = r["latency_ms"]
        out.append(f"| {r['vectors']} | {r['n']:,} | {r['index']} | {r['build_s']} | {r['index_mb']:,.0f} | {lat['p50']} | {lat['p95']} | {r['recall_at_10']:.3f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--indexes", nargs="+", default=["flat", "hnsw", "ivfpq"])
    ap.add_argument("--vectors", nargs="+", default=["synthetic", "real"], choices=["synthetic", "real"])
    ap.add_argument("--milvus-sizes", type=int, nargs="*", default=[100_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--threads", type=int, default=2, help="threads for building (queries use one)")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache/rag/embeddings.sqlite")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench-scale"))
    ap.add_argument("--out", type=Path, default=Path("bench/results/scale.json"))
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = json.loads(args.out.read_text()) if args.out.exists() else []
    done = {(r["index"], r["vectors"], r["n"]) for r in rows}

    def record(row: dict) -> None:
        rows.append(row)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1))  # after each row: a long run keeps what it measured
        print(json.dumps(row), flush=True)

    for kind in args.vectors:
        for n in args.sizes:
            for name in args.indexes:
                if (name, kind, n) not in done:
                    record(isolated(measure_faiss, name, kind, n, args.dim, args.queries, args.cache, args.threads))
            if n in args.milvus_sizes and ("milvus-lite FLAT", kind, n) not in done:
                record(isolated(measure_milvus, kind, n, args.dim, args.queries, args.cache, args.workdir))
    print(table(rows))


if __name__ == "__main__":
    main()
