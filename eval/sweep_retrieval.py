"""Retrieval choices measured side by side on a CSV gold set (embeddings come from the cache, so only
BM25 is rebuilt per tokenizer): tokenizer x fusion x dense weight.
Run: .venv/bin/python eval/sweep_retrieval.py ../shared/data/qa/ALQAC.csv [more.csv ...]"""
from __future__ import annotations

import sys
from pathlib import Path

from rag.eval import evalsets, evaluate
from rag.config import load_settings

GRID = (
    [("syllable", "minmax", w) for w in (0.5, 0.6, 0.7)]
    + [("syllable", "rrf", 0.0)]
    + [("pyvi", "minmax", w) for w in (0.5, 0.6, 0.7)]
    + [("syllable+pyvi", "minmax", w) for w in (0.5, 0.6, 0.7)]
)


def main(paths: list[str]) -> None:
    print("| set | tokenizer | fusion | dense w | P@1 | R@10 | MRR@10 | nDCG@10 | R@20 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in paths:
        gold = evalsets.load_csv(Path(path))
        for tok, fusion, w in GRID:
            s = load_settings(tokenizer=tok, fusion=fusion, dense_weight=w)
            m = evaluate.retrieval(gold, s, ("hybrid",), progress=False, log=lambda *_: None)["retrievers"]["hybrid"]
            wcol = "-" if fusion == "rrf" else w
            print(f"| {gold.name} | {tok} | {fusion} | {wcol} | {m['P@1']} | {m['R@10']} | {m['MRR@10']} | {m['nDCG@10']} | {m['R@20']} |", flush=True)
        for tok in ("syllable", "pyvi", "syllable+pyvi"):
            m = evaluate.retrieval(gold, load_settings(tokenizer=tok), ("bm25",), progress=False, log=lambda *_: None)["retrievers"]["bm25"]
            print(f"| {gold.name} | {tok} | bm25 only | - | {m['P@1']} | {m['R@10']} | {m['MRR@10']} | {m['nDCG@10']} | {m['R@20']} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
