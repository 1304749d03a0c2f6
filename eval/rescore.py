"""Score the rows of a finished `rag eval answers` run with the current metrics, whatever code produced them
(e.g. a baseline run at an older commit): wrong-but-cited, correct, refused, yes/no, consistency, per split.

    .venv/bin/python eval/rescore.py --gold eval/gold/seed_paraphrases.jsonl --rows build/eval/base/rows.jsonl

Citation checks need the chunk texts of the index the run used; without --index-dir they are left out
(answer-level metrics only)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rag.eval import evalsets, evaluate, metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gold", required=True)
    ap.add_argument("--rows", required=True, help="rows.jsonl of a finished run")
    ap.add_argument("--index-dir", help="the index the run answered from (for citation checks)")
    ap.add_argument("--label", default="run")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    gold = {(it.id, it.question): it for it in evalsets.load(Path(args.gold)).items}
    chunk_text = {}
    if args.index_dir:
        from rag.config import load_settings
        from rag.index.build import load

        chunk_text = {c.id: c.text for c in load(load_settings(index_dir=args.index_dir)).chunks}
    rows = []
    for line in Path(args.rows).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        item = gold.get((row["id"], row["question"]))
        if item is None or row.get("error"):
            continue
        row |= {"group": item.group, "split": item.split, "answerable": item.answerable}
        rows.append(row | {"verdicts": evaluate.verdicts(item, row, chunk_text, 4, similarity=None)})
    splits = {"all": rows} | {s: [r for r in rows if r["split"] == s] for s in sorted({r["split"] for r in rows} - {""})}
    summaries = {f"{args.label} {k}": metrics.answer_summary(v) for k, v in splits.items() if v}
    print(json.dumps(summaries, ensure_ascii=False, indent=2) if args.json else evaluate.summary_table(summaries))


if __name__ == "__main__":
    main()
