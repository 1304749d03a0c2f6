"""Re-answer a finished `rag eval answers` run with the current pipeline, replaying each question's recorded
model output instead of generating: retrieval, the gate, source selection, verification and the answer-type
checks run for real, the model does not (seconds instead of minutes). What a change to the verifier does to a
run, before paying for a real one. A row whose prompt differs from the recorded one (retrieval or source
selection changed) cannot be replayed honestly: it is counted and left out of the scores.

    .venv/bin/python eval/replay.py --gold build/seed_all.jsonl --rows build/eval/seed-all/rows.jsonl

Prints the scores of the replay beside the recorded run (per split), and the dev rows whose verdict changed
(holdout rows are counted, never listed: they are for measuring, not for reading).

With --ablate, each answer check (rag.answer.verify.checks) is removed in turn (RAG_DISABLED_CHECKS=<rule>) and the
rows it fired on are replayed without it: per rule, how often it fired, how many answers it turns from wrong
to refused or correct (what it is for) and from correct to refused or wrong (what it costs), dev and holdout
apart. eval/ablation.py runs this over every gold set and writes one table."""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path

from rag.eval import evalsets, evaluate, metrics
from rag.config import load_settings
from rag.index.embed import load_embedder
from rag.answer.generate import Piece
from rag.answer.pipeline import Pipeline
from rag.answer.verify import checks


class Replay:
    """A generator that streams a recorded reply (in its recorded pieces, with their token probabilities,
    where the run kept them), and records the prompt it was asked with."""

    name = "replay"

    def __init__(self):
        self.output, self.pieces, self.prompt = "", [], None

    def stream(self, messages, **kw):
        self.prompt = messages[-1]["content"]
        if self.pieces:
            yield from (Piece(text, probs) for text, probs in self.pieces)
        else:
            yield self.output


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gold", required=True)
    ap.add_argument("--rows", required=True, help="rows.jsonl of a finished run (with raw_output and prompt)")
    ap.add_argument("--given-context", action="store_true", help="the run answered from the gold paragraphs")
    ap.add_argument("--quiet", action="store_true", help="scores only, no changed rows")
    ap.add_argument("--ablate", action="store_true", help="remove one answer check at a time: what each refuses")
    ap.add_argument("--json", action="store_true", help="with --ablate: the counts as JSON (eval/ablation.py reads them)")
    ap.add_argument("--save", type=Path, help="write the replayed rows here (JSON lines), to read or score them again")
    args = ap.parse_args()

    gold_set = evalsets.load(Path(args.gold))
    gold = {(it.id, it.question): it for it in gold_set.items}
    rows = [json.loads(line) for line in Path(args.rows).read_text(encoding="utf-8").splitlines()]
    settings, embedder = load_settings(), None
    if gold_set.corpus is not None:  # a set with its own corpus: the index the run used, built as `rag eval answers` does
        embedder = load_embedder(settings)
        if args.given_context:
            wanted = {a for r in rows if (r["id"], r["question"]) in gold for a in gold[r["id"], r["question"]].article_ids}
            gold_set = dataclasses.replace(gold_set, corpus=[a for a in gold_set.corpus if a.id in wanted])
        settings = evaluate.ensure_corpus_index(gold_set, settings, embedder, progress=False, log=lambda m: None,
                                                lexical_only=args.given_context)
    gen = Replay()
    pipeline = Pipeline(settings, embedder=embedder, generator=gen)
    old_rows, new_rows, drifted = replay(pipeline, gen, rows, gold, args.given_context)
    if args.save:
        args.save.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in new_rows), encoding="utf-8")
    if args.ablate:
        ablated = {}
        for rule in checks.names():
            fired = [r for r in new_rows if any(x["rule"] == rule for x in r.get("rejections") or [])]
            without = Pipeline(settings.replace(disabled_checks=rule), embedder=embedder, generator=gen)
            ablated[rule] = replay(without, gen, fired, gold, args.given_context)[1]
        if args.json:
            splits = {r.get("split") or "all": 0 for r in new_rows}
            for r in new_rows:
                splits[r.get("split") or "all"] += 1
            print(json.dumps({"rows": splits, "drifted": drifted,
                              "rules": {rule: ablation(new_rows, rows) for rule, rows in ablated.items()}}))
        else:
            print(ablation_table(new_rows, ablated))
        return
    report(old_rows, new_rows, drifted, args.quiet)


def replay(pipeline, gen: Replay, rows: list[dict], gold: dict, given_context: bool) -> tuple[list[dict], list[dict], int]:
    """(recorded rows, replayed rows, rows left out because their prompt changed), both lists scored."""
    old_rows, new_rows, drifted = [], [], 0
    for row in rows:
        item = gold.get((row["id"], row["question"]))
        if item is None or row.get("error"):
            continue
        gen.output, gen.pieces, gen.prompt = row.get("raw_output") or "", row.get("raw_pieces") or [], None
        passages = evaluate.given_hits(pipeline.index, item.article_ids) if given_context else None
        answer = pipeline.ask(item.question, passages=passages)
        if gen.prompt is not None and row.get("prompt") is not None and gen.prompt != row["prompt"]:
            drifted += 1
            continue
        if gen.prompt is not None and row.get("prompt") is None:  # the gate refused then, not now: no output to replay
            drifted += 1
            continue
        row |= {"group": item.group, "split": item.split, "answerable": item.answerable}
        new = row | {"answer": answer.text, "abstained": answer.abstained, "citations": [c.to_dict() for c in answer.citations],
                     "rejections": answer.rejections, "reading": answer.reading, "model": answer.model}
        old_rows.append(row | {"verdicts": evaluate.verdicts(item, row, {}, 4, similarity=None)})
        new_rows.append(new | {"verdicts": evaluate.verdicts(item, new, {}, 4, similarity=None)})
    return old_rows, new_rows, drifted


def outcome(row: dict) -> str:
    """What the user got: "refused", "correct" or "wrong" (an answer to an unanswerable question is wrong)."""
    return "refused" if row["abstained"] else "correct" if row["verdicts"]["correct"] else "wrong"


# the transitions a rule makes, named by what happens without it -> with it
GAINS = ("wrong->refused", "wrong->correct")
COSTS = ("correct->refused", "correct->wrong")


def ablation(with_rule: list[dict], without_rule: list[dict]) -> dict[str, dict[str, int]]:
    """Per split, over the rows the rule fired on: how often, and what it changed. "wrong->refused" = without
    the rule the row is answered wrongly, with it refused (what a rule is for); "correct->refused" = without it
    answered correctly (what it costs); likewise ->correct / ->wrong where it made another claim win. Rows are
    matched by (id, question)."""
    before = {(r["id"], r["question"]): r for r in with_rule}
    out: dict[str, dict[str, int]] = {}
    for after in without_rule:
        row = before.get((after["id"], after["question"]))
        if row is None:
            continue
        counts = out.setdefault(row.get("split") or "all", {"fired": 0, **{k: 0 for k in GAINS + COSTS}})
        counts["fired"] += 1
        change = f"{outcome(after)}->{outcome(row)}"
        if change in counts:
            counts[change] += 1
    return out


def ablation_table(with_rules: list[dict], without: dict[str, list[dict]]) -> str:
    """One line per rule: rows it fired on, what it gained and what it cost, per split."""
    splits = sorted({r.get("split") or "all" for r in with_rules}) or ["all"]
    keys = ("fired",) + GAINS + COSTS
    lines = ["| rule | " + " | ".join(f"{s}: {k}" for s in splits for k in keys) + " |",
             "|---|" + "---|" * (len(splits) * len(keys))]
    for rule, rows in without.items():
        counts = ablation(with_rules, rows)
        lines.append(f"| {rule} | " + " | ".join(str(counts.get(s, {}).get(k, 0)) for s in splits for k in keys) + " |")
    return "\n".join(lines)


def origin(row: dict) -> str | None:
    """Where a shown answer came from when the reader ran: "alone" = the reader's span shown by itself (the model's
    claims did not hold it, or the model refused), "agreed" = a sentence of the model's holding the span; None for
    a refusal or an answer without a span."""
    span = (row.get("reading") or {}).get("span")
    if row["abstained"] or not span:
        return None
    body = re.sub(r"\s*\[\d+\]", "", row["answer"]).strip().rstrip(".").lower()
    return "alone" if body == span.strip().rstrip(".").lower() else "agreed"


def origin_table(rows: list[dict]) -> str:
    """Answers shown with the reader on, by origin (origin()) and split: correct / wrong."""
    splits = sorted({r.get("split") or "all" for r in rows})
    lines = ["| answers shown with the reader on | " + " | ".join(f"{s}: correct / wrong" for s in splits) + " |",
             "|---|" + "---|" * len(splits)]
    for kind, label in (("agreed", "the model's sentence holding the reader's span"), ("alone", "the reader's span alone")):
        cells = []
        for s in splits:
            part = [r for r in rows if (r.get("split") or "all") == s and origin(r) == kind]
            right = sum(bool(r["verdicts"]["correct"]) for r in part)
            cells.append(f"{right} / {len(part) - right}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(old_rows: list[dict], new_rows: list[dict], drifted: int, quiet: bool) -> None:

    summaries = {}
    for label, rows in (("recorded", old_rows), ("replayed", new_rows)):
        for split in ["all"] + sorted({r["split"] for r in rows} - {""}):
            part = rows if split == "all" else [r for r in rows if r["split"] == split]
            summaries[f"{label} {split}"] = metrics.answer_summary(part)
    print(f"{len(new_rows)} rows replayed; {drifted} left out (their prompt changed: they need a real run)\n")
    print(evaluate.summary_table(summaries))
    if any(r.get("reading") for r in new_rows):
        print("\n" + origin_table(new_rows))
    if quiet:
        return
    held = 0
    for old, new in zip(old_rows, new_rows):
        if old["verdicts"]["correct"] == new["verdicts"]["correct"] and old["abstained"] == new["abstained"]:
            continue
        if old["split"] == "holdout":
            held += 1
            continue
        print(f"\n{old['id']}: {old['question']}\n  was: {old['answer'][:200]}\n  now: {new['answer'][:200]}"
              f"\n  gold: {old['gold_answers'][:2]}  correct {old['verdicts']['correct']} -> {new['verdicts']['correct']}")
    print(f"\n{held} holdout rows changed (not listed)")


if __name__ == "__main__":
    main()
