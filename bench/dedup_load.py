"""Cost of near-duplicate detection in corpus loading: load_corpus over the vietnews jsonl (22,643
articles) without it (BASELINE: read, clean, exact-duplicate check) and with it (OURS: + MinHash/LSH and
the figures check at settings.dedup_threshold) with an empty signature cache (cold: a first `rag index`)
and a filled one (warm: every later `rag index`), in the same process, alternating, best of `--repeat`.

    PYTHONPATH=. .venv/bin/python bench/dedup_load.py [--limit N] [--repeat 2]
"""
from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.ingest import dedup  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.ingest.corpus import load_corpus  # noqa: E402

VIETNEWS = ROOT.parent / "shared" / "data" / "vietnews" / "articles-test.jsonl.gz"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, help="first N articles only")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)
    threshold = Settings().dedup_threshold
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vietnews.jsonl"
        with gzip.open(VIETNEWS, "rt", encoding="utf-8") as f, path.open("w", encoding="utf-8") as out:
            for n, line in enumerate(f):
                if args.limit and n >= args.limit:
                    break
                out.write(line)
        best = {"baseline": float("inf"), "ours cold": float("inf"), "ours warm": float("inf")}
        print(f"load average at start: {os.getloadavg()}")
        for n in range(args.repeat):
            cache_dir = Path(tmp) / f"cache-{n}"
            for name, near in (("baseline", None), ("ours cold", threshold), ("ours warm", threshold)):
                cache = dedup.open_cache(Settings(cache_dir=cache_dir)) if near else None
                t0 = time.perf_counter()
                r = load_corpus(path, near, cache)
                best[name] = min(best[name], time.perf_counter() - t0)
                print(f"{name}: {len(r.articles)} articles kept, {len(r.duplicates)} exact and "
                      f"{len(r.near_duplicates)} near duplicates, {time.perf_counter() - t0:.1f} s")
    b = best["baseline"]
    print(f"best of {args.repeat}: baseline {b:.1f} s, ours cold {best['ours cold']:.1f} s (ratio "
          f"{best['ours cold'] / b:.2f}), ours warm {best['ours warm']:.1f} s (ratio {best['ours warm'] / b:.2f}); "
          f"threshold {threshold}; load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
