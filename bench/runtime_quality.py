"""Which embedding runtime is the default: retrieval quality (MRR@10, dense and hybrid) of each runtime
against torch on ALQAC, ViRHE4QA and the seed questions with their paraphrases (`seed`, over the default corpus),
and each runtime's passages/s while it embedded those corpora, all from one run on one machine. Set by set,
every runtime runs in turn (interleaved), each into a fresh embedding cache, so every vector is computed
anew by that runtime and a burst of load from other work hits all runtimes alike.

    .venv/bin/python bench/runtime_quality.py [--runtimes torch,openvino-bf16] [--json out.json]

The rule it checks (issue 23): the default is the fastest runtime within 0.3 MRR@10 (points, of 100) of
torch on every set, dense and hybrid. rag.index.embed.FASTEST names it."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import ROOT, bench_settings, machine  # noqa: E402

ALLOWED = 0.3  # MRR@10 points a runtime may lose against torch and still be the default
MODES = ("dense", "hybrid")


def gold_sets(only: list[str] | None = None) -> dict:
    from rag.eval import evalsets
    from rag.ingest.corpus import load_corpus

    seed = evalsets.load(ROOT / "eval" / "gold" / "seed_qa.jsonl")
    paraphrases = evalsets.load(ROOT / "eval" / "gold" / "seed_paraphrases.jsonl")
    corpus = load_corpus(ROOT / "corpus").articles
    shared = ROOT.parent / "shared" / "data" / "qa"
    sets = {
        "ALQAC": lambda: evalsets.load_csv(shared / "ALQAC.csv"),
        "ViRHE4QA": lambda: evalsets.load_csv(shared / "ViRHE4QA_v2.csv"),
        "seed": lambda: dataclasses.replace(seed, items=seed.items + paraphrases.items, corpus=corpus, name="seed"),
    }
    return {k: make() for k, make in sets.items() if not only or k in only}


def measure(runtimes: list[str], only: list[str] | None = None, log=print) -> dict:
    from rag.eval import evaluate
    from rag.index.embed import load_embedder

    out = {}
    with tempfile.TemporaryDirectory() as work:
        settings = {rt: bench_settings(Path(work) / rt, embed_runtime=rt) for rt in runtimes}  # a fresh cache each
        for rt in runtimes:  # loaded (exported, compiled) before any timing: index_s is embedding, not loading
            load_embedder(settings[rt]).embed_documents(["khởi động"], [""])
        for label, gold in gold_sets(only).items():
            out[label] = {}
            for rt in runtimes:
                res = evaluate.retrieval(gold, settings[rt], MODES, progress=False, log=lambda m: None)
                row = {m: res["retrievers"][m]["MRR@10"] for m in MODES}
                row |= {"chunks": res["chunks"], "queries": res["queries"], "index_s": res["timings_s"]["index"],
                        "passages_per_s": round(res["chunks"] / res["timings_s"]["index"], 2)}
                out[label][rt] = row
                log(f"{label} {rt}: " + ", ".join(f"{k} {v}" for k, v in row.items()))
    return out


def table(results: dict, runtimes: list[str]) -> str:
    lines = ["| runtime | " + " | ".join(f"{s} {m}" for s in results for m in MODES) + " | passages/s (× torch) | default? |",
             "|---|" + "---|" * (len(results) * len(MODES) + 2)]
    for rt in runtimes:
        cells, worst = [], 0.0
        for s in results:
            for m in MODES:
                v, base = results[s][rt][m], results[s]["torch"][m]
                worst = max(worst, base - v)
                cells.append(f"{v:.2f}" if rt == "torch" else f"{v:.2f} ({v - base:+.2f})")
        chunks = sum(results[s][rt]["chunks"] for s in results)
        rate = chunks / sum(results[s][rt]["index_s"] for s in results)
        base_rate = chunks / sum(results[s]["torch"]["index_s"] for s in results)
        ok = "baseline" if rt == "torch" else ("within %.1f" % ALLOWED if worst <= ALLOWED else f"no: −{worst:.2f}")
        lines.append(f"| {rt} | " + " | ".join(cells) + f" | {rate:.2f} ({rate / base_rate:.2f}×) | {ok} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtimes", default="torch,openvino-bf16")
    ap.add_argument("--sets", help="some of ALQAC,ViRHE4QA,seed (default: all three; the rule needs all three)")
    ap.add_argument("--json", type=Path, help="write every figure here")
    args = ap.parse_args()
    runtimes = ["torch"] + [r for r in args.runtimes.split(",") if r != "torch"]
    started, load0 = time.strftime("%Y-%m-%d %H:%M:%S %z"), os.getloadavg()
    results = measure(runtimes, args.sets.split(",") if args.sets else None, log=lambda m: print(m, file=sys.stderr, flush=True))
    m = machine()
    sets = f" --sets {args.sets}" if args.sets else ""
    print(f"Command: `.venv/bin/python bench/runtime_quality.py --runtimes {','.join(runtimes)}{sets}`; started {started}; "
          f"{m['nproc']} cores ({m['cpu_model']}), Python {m['python']}; load average at start {load0[0]:.2f}, "
          f"at end {os.getloadavg()[0]:.2f}\n")
    print("MRR@10 (of 100) and the change against torch; passages/s while embedding the three corpora "
          "(index build time, dominated by embedding)\n")
    print(table(results, runtimes))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
