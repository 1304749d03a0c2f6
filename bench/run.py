"""Performance benchmarks, OURS against a BASELINE in the same run, from 2 to 22,643 articles.

    .venv/bin/python bench/run.py [--sizes 2,1000,10000,22643] [--quick] [--only ingest,retrieval,ask,startup]
    .venv/bin/python bench/run.py --render bench/results/<timestamp>.json   # rewrite SUMMARY.md from a result

Writes bench/results/<timestamp>.json (every figure) and bench/results/SUMMARY.md (the tables).
Benchmarks are not pass/fail: targets are shown with where we stand. See bench/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/run.py` from anywhere

from bench import ask, ingest, report, retrieval, startup  # noqa: E402
from bench.measure import ROOT, VIETNEWS, machine, vietnews_size  # noqa: E402

BENCHMARKS = ("ingest", "retrieval", "ask", "startup")
FULL_SIZES = "2,1000,10000,22643"
QUICK_SIZES = "2,1000"
RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", help=f"corpus sizes, first N vietnews articles (default {FULL_SIZES}; --quick: {QUICK_SIZES})")
    p.add_argument("--quick", action="store_true", help="small sizes and samples: a few minutes on 2 cores")
    p.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset of " + ",".join(BENCHMARKS))
    p.add_argument("--keep", action="store_true", help="keep the temporary work folder (indexes per size)")
    p.add_argument("--render", type=Path, metavar="JSON", help="only rewrite SUMMARY.md from an earlier result")
    args = p.parse_args(argv)
    args.only = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = set(args.only) - set(BENCHMARKS)
    if unknown:
        p.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {','.join(BENCHMARKS)}")
    args.sizes = sorted({int(s) for s in (args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)).split(",")})
    return args


def git_revision() -> str:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + (" + uncommitted changes" if git("status", "--porcelain") else "")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_benchmarks(args: argparse.Namespace, workdir: Path) -> tuple[dict, dict]:
    built: dict = {}  # lexical indexes per size, shared by ingest and retrieval
    jobs = {
        "ingest": lambda: ingest.run(args.sizes, workdir, args.quick, built, log),
        "retrieval": lambda: retrieval.run(args.sizes, workdir, args.quick, built, log),
        "ask": lambda: ask.run(args.quick, log),
        "startup": lambda: startup.run(args.quick, log),
    }
    results, seconds, load = {}, {}, {}
    for name in BENCHMARKS:
        if name not in args.only:
            continue
        t0 = time.perf_counter()
        try:
            results[name] = jobs[name]()
        except Exception as e:  # one broken benchmark must not lose the others' figures
            log(f"{name} failed: {e}")
            results[name] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-3000:]}
        seconds[name] = round(time.perf_counter() - t0, 1)
        load[name] = round(os.getloadavg()[1], 2)  # 5-minute average: was the machine busy meanwhile?
    return results, seconds, load


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if {"ingest", "retrieval"} & set(args.only) and not args.render and max(args.sizes) > (have := vietnews_size()):
        print(f"--sizes: {max(args.sizes):,} articles asked, {VIETNEWS} has {have:,}", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.render:
        doc = json.loads(args.render.read_text(encoding="utf-8"))
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        doc = {
            "command": " ".join([".venv/bin/python bench/run.py", shlex.join(argv)]).strip(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "machine": machine(),
            "revision": git_revision(),
            "sizes": args.sizes,
            "quick": args.quick,
            "result_file": f"bench/results/{stamp}.json",
        }
        workdir = Path(tempfile.mkdtemp(prefix="rag-bench-"))
        log(f"work folder {workdir}")
        try:
            doc["results"], doc["seconds"], doc["loadavg_after"] = run_benchmarks(args, workdir)
        finally:
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        text = json.dumps(doc, ensure_ascii=False, indent=1, default=str)
        (ROOT / doc["result_file"]).write_text(text, encoding="utf-8")
        log(f"wrote {doc['result_file']}")
        doc = json.loads(text)  # render exactly what was saved (sizes become string keys, as on --render)
    (RESULTS / "SUMMARY.md").write_text(report.render(doc), encoding="utf-8")
    log("wrote bench/results/SUMMARY.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
