"""Choose the reader's `alone` probability (reader first, issue 34) on dev rows, from two replays of one run:

    RAG_READER=on   .venv/bin/python eval/replay.py --gold G --rows R --quiet --save build/alone/on.jsonl
    RAG_READER=span .venv/bin/python eval/replay.py --gold G --rows R --quiet --save build/alone/span.jsonl
    .venv/bin/python eval/reader_alone.py build/alone/on.jsonl build/alone/span.jsonl

A row is answered reader-first at threshold t when its reading's no-answer probability is <= t, the question
asks for one fact (rag.answer.pipeline.one_fact) and the reader's span was shown ("span" replay, model "reader");
otherwise it is answered as "on" answers it. Per t: correct and wrong-but-cited answers and refusals, dev
and holdout apart, and the share answered reader-first. The chosen t is the largest whose dev rows are at
least as often correct and no more often wrong-but-cited than "on" (t = 0); holdout rows are only reported."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from rag.answer.pipeline import one_fact
from rag.answer.verify.question import classify

GRID = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9)


def outcome(row: dict) -> str:
    return "refused" if row["abstained"] else "correct" if row["verdicts"]["correct"] else "wrong"


def combine(on: list[dict], span: list[dict], t: float) -> list[tuple[str, str, bool]]:
    """(split, outcome, answered reader-first) per question at threshold t."""
    by_key = {(r["id"], r["question"]): r for r in span}
    out = []
    for r in on:
        s = by_key.get((r["id"], r["question"]))
        reading = (s or {}).get("reading") or {}
        first = (s is not None and not s["abstained"] and s.get("model") == "reader" and reading.get("no_answer") is not None
                 and reading["no_answer"] <= t and one_fact(r["question"], classify(r["question"])))
        out.append((r.get("split") or "dev", outcome(s if first else r), first))  # no split: a dev row (the seed 59)
    return out


def table(on: list[dict], span: list[dict]) -> tuple[str, float]:
    rows, chosen, base = [], 0.0, None
    for t in GRID:
        res = combine(on, span, t)
        cells = []
        for split in ("dev", "holdout"):
            part = [x for x in res if x[0] == split]
            c = sum(o == "correct" for _, o, _ in part)
            w = sum(o == "wrong" for _, o, _ in part)
            f = sum(first for _, _, first in part)
            cells.append(f"{c} / {w} / {f} of {len(part)}")
            if split == "dev":
                if base is None:
                    base = (c, w)
                elif c >= base[0] and w <= base[1]:
                    chosen = t
        rows.append(f"| {t} | {cells[0]} | {cells[1]} |")
    head = "| alone at no-answer <= | dev: correct / wrong but cited / reader-first of n | holdout (reported only) |\n|---|---|---|\n"
    return head + "\n".join(rows), chosen


def main() -> None:
    on, span = ([json.loads(line) for line in Path(p).read_text(encoding="utf-8").splitlines() if line.strip()]
                for p in sys.argv[1:3])
    text, chosen = table(on, span)
    print(text)
    print(f"\nchosen on dev rows: alone = {chosen}")


if __name__ == "__main__":
    main()
