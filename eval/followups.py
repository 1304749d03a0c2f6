"""Follow-up questions (issue 34): the rules' topic carrying (RAG_FOLLOWUP=rules, the default) against the
generator's rewrite (RAG_FOLLOWUP=model), on multi-turn cases over the default corpus, in one process.

    .venv/bin/python eval/followups.py [--gold eval/gold/followup_qa.jsonl]

A case is the chat so far (`history`) and a follow-up; correct = the answer holds a gold answer (diacritics
folded) or, where the articles do not say, a refusal; wrong but cited = an answer shown that is not correct.
Dev and holdout apart; p50 of the rewrite's time and of the first verified output."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from rag.eval import metrics
from rag.config import load_settings
from rag.answer.pipeline import Pipeline
from rag.types import Answer


def run(pipeline: Pipeline, case: dict) -> dict:
    t0, first, answer = time.perf_counter(), None, None
    for piece in pipeline.ask_stream(case["question"], history=case["history"]):
        if isinstance(piece, Answer):
            answer = piece
        elif first is None:
            first = (time.perf_counter() - t0) * 1000
    if case["answerable"]:
        correct = not answer.abstained and bool(metrics.contains_gold(answer.text, case["answers"], True))
    else:
        correct = answer.abstained
    return {"id": case["id"], "split": case["split"], "answer": answer.text, "correct": correct,
            "wrong": not answer.abstained and not correct, "refused": answer.abstained,
            "rewrite_ms": answer.timings.get("rewrite", 0.0), "first_ms": None if answer.abstained else first}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gold", default="eval/gold/followup_qa.jsonl")
    args = ap.parse_args()
    cases = [json.loads(line) for line in Path(args.gold).read_text(encoding="utf-8").splitlines() if line.strip()]
    settings = load_settings()
    rules = Pipeline(settings.replace(followup="rules"))
    rules.warm_up()
    model = Pipeline(settings.replace(followup="model"), embedder=rules.embedder, generator=rules.generator(),
                     reader=rules.reader if settings.reader != "off" else None)
    print("| how | split | correct | wrong but cited | refused | rewrite p50 ms | first output p50 ms |\n|---|---|---|---|---|---|---|")
    for name, pipeline in (("model", model), ("rules", rules)):
        rows = [run(pipeline, c) for c in cases]
        for split in ("dev", "holdout"):
            part = [r for r in rows if r["split"] == split]
            firsts = [r["first_ms"] for r in part if r["first_ms"] is not None]
            first = f"{np.median(firsts):.0f}" if firsts else "–"
            print(f"| {name} | {split} | {sum(r['correct'] for r in part)} of {len(part)} | {sum(r['wrong'] for r in part)} | "
                  f"{sum(r['refused'] for r in part)} | {np.median([r['rewrite_ms'] for r in part]):.0f} | {first} |")
        for r in rows:
            if r["split"] == "dev":  # holdout answers are counted, never read
                print(f"<!-- {name} {r['id']}: {'ok' if r['correct'] else 'WRONG' if r['wrong'] else 'refused'}: {r['answer'][:100]} -->")


if __name__ == "__main__":
    main()
