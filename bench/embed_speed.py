"""Embedding speed: passages/s of each embedding runtime against today's sentence-transformers path,
interleaved in one process on the same real chunks (the machine is shared: only ratios mean much).

    .venv/bin/python bench/embed_speed.py [--n 64] [--rounds 4] [--runtimes torch,onnx,openvino,openvino-bf16]

The sample is n chunks of the vietnews corpus cut as `rag index` cuts them (bench.ingest.sample_chunks),
split into `rounds` slices; every round runs every variant on the same slice, so a burst of load from
other jobs hits all variants alike. Variants:
    baseline      today's code before this change: SentenceTransformer, batches in corpus order
    torch         the same model through rag.index.embed.embed_some, which sorts texts by length (bucketing)
    <runtime>     rag.index.embed with RAG_EMBED_RUNTIME=<runtime> (rag/index/onnx_embed.py), also bucketed
Each reports passages/s, the ratio to the baseline and the lowest cosine between its vectors and the
baseline's (1.0 = same vectors). Quality on the gold sets: `rag eval retrieval` with RAG_EMBED_RUNTIME
(bench/README.md). Prints a Markdown table; --json writes every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import sample_chunks  # noqa: E402
from bench.measure import bench_settings, machine, vietnews_subset  # noqa: E402


def variants(settings, runtimes: list[str]) -> dict:
    """label -> function(texts, titles) -> vectors; every model is loaded (and exported) before timing."""
    from rag.index.embed import embed_cached, load_embedder

    out = {}
    for runtime in ["torch"] + [r for r in runtimes if r != "torch"]:
        embedder = load_embedder(settings.replace(embed_runtime=runtime))
        embedder.embed_documents(["khởi động"], [""])  # load + first call outside the timing
        if runtime == "torch":
            def baseline(texts, titles, e=embedder):  # batches of embed_batch in corpus order, as before
                step = settings.embed_batch
                return np.concatenate([e.embed_documents(texts[s : s + step], titles[s : s + step])
                                       for s in range(0, len(texts), step)])
            out["baseline"] = baseline
            if "torch" not in runtimes:
                continue
        out[runtime] = lambda texts, titles, e=embedder: embed_cached(
            e, texts, titles, cache=None, batch_size=settings.embed_batch, progress=False)
    return out


def measure(sample: list[tuple[str, str]], runtimes: list[str], rounds: int, log=print) -> dict:
    with tempfile.TemporaryDirectory() as work:
        settings = bench_settings(Path(work))
        fns = variants(settings, runtimes)
        seconds = {k: 0.0 for k in fns}
        vectors = {k: [] for k in fns}
        per_round = -(-len(sample) // rounds)
        for r in range(rounds):
            part = sample[r * per_round : (r + 1) * per_round]
            texts, titles = [t for t, _ in part], [ti for _, ti in part]
            for label, fn in fns.items():
                t0 = time.perf_counter()
                vectors[label].append(fn(texts, titles))
                seconds[label] += time.perf_counter() - t0
                log(f"round {r + 1}/{rounds} {label}: {len(part) / (time.perf_counter() - t0):.2f} passages/s "
                    f"(load {os.getloadavg()[0]:.1f})")
    base = np.concatenate(vectors["baseline"])
    rows = {}
    for label in fns:
        v = np.concatenate(vectors[label])
        rate = len(sample) / seconds[label]
        rows[label] = {"passages_per_s": round(rate, 3), "seconds": round(seconds[label], 1),
                       "ratio": round(rate / (len(sample) / seconds["baseline"]), 2),
                       "min_cosine": round(float((v * base).sum(axis=1).min()), 4)}
    return rows


def table(result: dict) -> str:
    lines = ["| variant | passages/s | × baseline | min cosine to baseline |", "|---|---|---|---|"]
    for label, r in result["variants"].items():
        lines.append(f"| {label} | {r['passages_per_s']} | {r['ratio']} | {r['min_cosine']} |")
    m = result["machine"]
    lines.append(f"\n{result['n']} chunks (mean {result['mean_chars']} chars), {result['rounds']} interleaved rounds, "
                 f"batch {result['batch']}, {m['nproc']} cores ({m['cpu_model']}); load average "
                 f"{m['loadavg_at_start']} at start, {result['loadavg_at_end']} at end.")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=64, help="chunks in the sample")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--runtimes", default="torch,onnx,openvino,openvino-bf16")
    p.add_argument("--json", type=Path, help="write every figure here")
    args = p.parse_args(argv)
    from rag.config import load_settings

    info = machine()
    with tempfile.TemporaryDirectory() as work:
        sample = sample_chunks(vietnews_subset(300, Path(work)), args.n)
    rows = measure(sample, args.runtimes.split(","), args.rounds, log=lambda m: print(m, file=sys.stderr))
    result = {"machine": info, "loadavg_at_end": [round(x, 2) for x in os.getloadavg()], "n": len(sample),
              "rounds": args.rounds, "batch": load_settings().embed_batch,
              "mean_chars": round(sum(len(t) for t, _ in sample) / len(sample)), "variants": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
