"""`python -c "import rag"` wall time against a bare `python -c "pass"` in the same run (the interpreter's
own start-up), and what a cheap import keeps out: none of torch, sentence-transformers, llama.cpp, gradio.

    .venv/bin/python bench/import_time.py [--runs 15]

Prints the median of each, the difference (what `import rag` costs) and the ratio; the target is a
difference under 0.3 s. Each run is a fresh process, so nothing is cached in memory between them
(the OS file cache is warm after the first run, as it is for a user).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

HEAVY = ("torch", "sentence_transformers", "llama_cpp", "transformers", "gradio", "faiss")


def wall(code: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=15)
    args = p.parse_args(argv)
    wall("import rag", 1)  # warm the file cache
    bare, rag = wall("pass", args.runs), wall("import rag", args.runs)
    loaded = subprocess.run(
        [sys.executable, "-c", f"import sys, rag; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    load = os.getloadavg()[0]
    print(f"python -c pass: {bare * 1000:.0f} ms   python -c 'import rag': {rag * 1000:.0f} ms   "
          f"import rag costs {(rag - bare) * 1000:.0f} ms (x{rag / bare:.2f} of a bare start)   "
          f"median of {args.runs}, load {load:.1f}")
    print("heavy modules loaded by import rag:", ", ".join(loaded) or "none")
    return 0 if not loaded and rag - bare < 0.3 else 1


if __name__ == "__main__":
    sys.exit(main())
