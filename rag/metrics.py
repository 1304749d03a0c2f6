"""Metric arithmetic, kept free of I/O so it can be checked by hand in tests."""
from __future__ import annotations

import math


def first_gold_rank(ranked_ids: list[str], gold: set[str]) -> int | None:
    """1-based rank of the first gold id, or None."""
    for r, doc in enumerate(ranked_ids, start=1):
        if doc in gold:
            return r
    return None


def retrieval_scores(ranked: list[list[str]], golds: list[set[str]]) -> dict[str, float]:
    """P@1, R@k, MRR@10, nDCG@10 in percent. Recall counts gold documents found among all gold ones."""
    n = len(ranked)
    if n == 0:
        return {}
    out = {"P@1": 0.0, "R@3": 0.0, "R@5": 0.0, "R@10": 0.0, "R@20": 0.0, "MRR@10": 0.0, "nDCG@10": 0.0}
    for ids, gold in zip(ranked, golds):
        if not gold:
            continue
        out["P@1"] += bool(ids[:1] and ids[0] in gold)
        for k in (3, 5, 10, 20):
            out[f"R@{k}"] += len(gold & set(ids[:k])) / len(gold)
        r = first_gold_rank(ids[:10], gold)
        out["MRR@10"] += 1.0 / r if r else 0.0
        dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(ids[:10]) if d in gold)
        idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(gold), 10)))
        out["nDCG@10"] += dcg / idcg
    return {k: round(100.0 * v / n, 2) for k, v in out.items()}


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]
