"""Where the questions of an answers run went: correct, which kind of wrong, which kind of abstention.

    .venv/bin/python eval/outcomes.py build/eval/alqac-answers/rows.jsonl [more rows.jsonl ...]

Reads the per-question rows `rag eval answers` writes (the latest configuration in each file) and
prints one Markdown table, a column per file. An abstention is split by where it happened: the
retrieval gate (the model never ran), the model saying the sources don't say, or the support check
dropping every sentence. A wrong answer is split by token F1, and by whether it is wrong only through a
leading "từ"/"là" or zero-padded numbers ("3 năm" for "03 năm"), which the contains-gold metric counts
against it.
"""
from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

from rag.eval.metrics import normalize_answer

REFUSAL = re.compile(r"không (đề cập|nhắc|có thông tin)|don't say|do not (say|mention)", re.IGNORECASE)
OUTCOMES = (
    "correct",
    "correct abstention (unanswerable question)",
    'wrong, but only by a leading "từ"/"là" or zero-padded numbers',
    "wrong, token F1 ≥ 0.5 (partly right)",
    "wrong, other",
    "abstained: retrieval gate, before generation",
    "abstained: the model said the sources don't say",
    "abstained: every sentence failed the support check",
)


def _lenient(s: str) -> str:
    s = re.sub(r"\b0+(\d)", r"\1", normalize_answer(s))
    return re.sub(r"^(từ|là)\s+", "", s)


def outcome(row: dict) -> str:
    v = row["verdicts"]
    if row["abstained"]:
        if not row["answerable"]:
            return OUTCOMES[1]
        raw = row.get("raw_output") or ""
        if not raw:
            return OUTCOMES[5]
        return OUTCOMES[6] if REFUSAL.search(raw) else OUTCOMES[7]
    if v["correct"]:
        return OUTCOMES[0]
    answer = _lenient(row["answer"])
    if any(all(_lenient(part) in answer for part in gold.split("&&")) for gold in row["gold_answers"]):
        return OUTCOMES[2]
    return OUTCOMES[3] if (v["f1"] or 0.0) >= 0.5 else OUTCOMES[4]  # no F1 for an unanswerable one answered


def count(path: Path) -> Counter:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    latest = rows[-1]["config"]
    return Counter(outcome(r) for r in rows if r["config"] == latest)


def main(paths: list[str]) -> None:
    counts = {p: count(Path(p)) for p in paths}
    print("| outcome | " + " | ".join(Path(p).parent.name for p in paths) + " |")
    print("|---|" + "---|" * len(paths))
    for name in OUTCOMES:
        print(f"| {name} | " + " | ".join(str(c[name]) for c in counts.values()) + " |")
    print("| total | " + " | ".join(str(sum(c.values())) for c in counts.values()) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
