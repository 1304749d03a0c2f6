"""Can a lexical premise check tell UIT-ViQuAD 2.0's unanswerable questions from its answerable ones?
For each question: does its paragraph miss one of its names or numbers (the retrieval gate's rule), and what
share of its content terms does the best sentence window (a sentence and the one before) hold? Printed per
class, for the first N questions of the dev CSV; no model involved.

    .venv/bin/python eval/viquad_premise.py --limit 1000
"""
from __future__ import annotations

import argparse
import csv

from rag import text
from rag.answer import ground
from rag.answer.verify.question import terms


def best_window_coverage(question: str, context: str) -> float:
    focus = terms(question)
    if not focus:
        return 1.0
    spans = text.split_sentences(context)
    return max((len(focus & terms(context[spans[i - 1][0] : b] if i else context[a:b])) / len(focus)
                for i, (a, b) in enumerate(spans)), default=0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", default="../shared/data/qa/ViQuAD2_dev.csv")
    ap.add_argument("--limit", type=int, default=1000)
    args = ap.parse_args()
    rows = list(csv.DictReader(open(args.csv, encoding="utf-8")))[: args.limit]
    by_class: dict[bool, list[tuple[bool, float]]] = {False: [], True: []}
    for r in rows:
        missing = bool(ground.check_mentions(r["question"], r["title"] + "\n" + r["context"]))
        by_class[r["is_impossible"] in ("1", "True", "true")].append((missing, best_window_coverage(r["question"], r["context"])))
    print("| share of questions (%) | answerable | unanswerable |\n|---|---:|---:|")
    n = {k: len(v) or 1 for k, v in by_class.items()}
    print(f"| questions | {len(by_class[False])} | {len(by_class[True])} |")
    print("| a name or number missing from the paragraph | " + " | ".join(
        f"{100 * sum(m for m, _ in by_class[k]) / n[k]:.1f}" for k in (False, True)) + " |")
    for t in (0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
        print(f"| best window holds < {t:.0%} of the question's terms | " + " | ".join(
            f"{100 * sum(c < t for _, c in by_class[k]) / n[k]:.1f}" for k in (False, True)) + " |")


if __name__ == "__main__":
    main()
