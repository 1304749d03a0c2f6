"""Measuring helpers shared by the benchmarks: isolated runs with their own peak RSS, percentiles,
sizes on disk, the machine's description, and throw-away settings that never touch the user's index
or embedding cache."""
from __future__ import annotations

import gzip
import multiprocessing
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
VIETNEWS = Path("/work/shared/data/vietnews/articles-test.jsonl.gz")


def isolated(fn, *args, **kwargs) -> dict:
    """fn(*args, **kwargs) in a freshly spawned Python process, so its peak RSS is its own (peaks of
    successive measurements would otherwise mix). Returns fn's dict plus `peak_rss_mb` of that process
    (interpreter and imports included)."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(_with_peak_rss, fn, args, kwargs).result()


def _with_peak_rss(fn, args, kwargs) -> dict:
    out = fn(*args, **kwargs)
    # VmHWM, not getrusage's ru_maxrss: Linux carries the parent's RSS at fork into ru_maxrss across exec
    out["peak_rss_mb"] = _status_mb("VmHWM")
    return out


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)  # kB
    return float("nan")


def rss_mb() -> float:
    """Current resident set size of this process (VmRSS)."""
    return _status_mb("VmRSS")


class Timer:
    """`with Timer() as t: ...; t.s` — wall seconds of the block."""

    def __enter__(self):
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.s = time.perf_counter() - self._t0


def latency_ms(fn, inputs, warmup: int = 3) -> dict:
    """p50/p95/mean in ms of fn(x) over inputs, after `warmup` untimed calls."""
    for x in inputs[:warmup]:
        fn(x)
    times = []
    for x in inputs:
        t0 = time.perf_counter()
        fn(x)
        times.append((time.perf_counter() - t0) * 1000)
    return percentiles(times)


def percentiles(values) -> dict:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if not len(v):
        return {"n": 0}
    return {
        "n": int(len(v)),
        "p50": round(float(np.percentile(v, 50)), 2),
        "p95": round(float(np.percentile(v, 95)), 2),
        "mean": round(float(v.mean()), 2),
    }


def dir_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 2**20, 2)


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?")
    meminfo = Path("/proc/meminfo").read_text().split()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "mem_gb": round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1),
        "python": platform.python_version(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def bench_settings(workdir: Path, **overrides):
    """Settings whose index and embedding cache live in `workdir` (models are shared through a link to
    the real models folder), so a benchmark never reads or pollutes the user's index or cache."""
    from rag.config import load_settings

    real = load_settings()
    cache = Path(workdir) / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    if not (cache / "models").exists():
        (cache / "models").symlink_to(real.models_dir)
    return real.replace(index_dir=Path(workdir) / "index", cache_dir=cache, **overrides)


def vietnews_subset(n: int, workdir: Path) -> Path:
    """The first n articles of the vietnews file as their own .jsonl (the real reading path is measured)."""
    out = Path(workdir) / f"vietnews-{n}.jsonl"
    if not out.exists():
        with gzip.open(VIETNEWS, "rt", encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
            for i, line in enumerate(src):
                if i >= n:
                    break
                dst.write(line)
    return out


def vietnews_size() -> int:
    with gzip.open(VIETNEWS, "rb") as f:
        return sum(1 for line in f if line.strip())
