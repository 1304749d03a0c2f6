"""The answer checks' ablation table over every gold set, from recorded runs (issue 21): for each rule of
rag.answer.verify.checks, how often it fired on dev and on holdout rows, what it gained (answers that are wrong
without it and refused or correct with it) and what it cost (correct without it, refused or wrong with it).

Each set's run is replayed by `eval/replay.py --ablate --json` (no model: the recorded outputs are replayed),
with the settings that run used. Make the runs first (eval/RESULTS.md, "The answer checks, rule by rule"), then:

    .venv/bin/python eval/ablation.py > build/eval/ablation.md
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from rag.answer.verify import checks

ROOT = Path(__file__).resolve().parent.parent
VIETNEWS = {"RAG_RETRIEVER": "bm25", "RAG_CORPUS_DIR": "build/vietnews1000/corpus", "RAG_INDEX_DIR": "build/vietnews1000/index"}
# (label, gold, run folder under --runs, replay arguments, environment)
SETS = [
    ("seed + paraphrases", "build/seed_all.jsonl", "seed-all", [], {}),
    ("vietnews 60", "eval/gold/vietnews_qa.jsonl", "vietnews", [], VIETNEWS),
    ("ViQuAD2 first 300", "../shared/data/qa/ViQuAD2_dev.csv", "viquad300", ["--given-context"], {}),
    ("XQuAD-vi first 300", "../shared/data/qa/XQuAD_vi.csv", "xquad300", ["--given-context"], {}),
    ("ALQAC 2023 yes/no", "../shared/data/qa/ALQAC2023_yesno.csv", "alqac2023", ["--given-context"], {}),
]
GAINS = ("wrong->refused", "wrong->correct")
COSTS = ("correct->refused", "correct->wrong")


def run_set(gold: str, rows: Path, extra: list[str], env: dict) -> dict:
    cmd = [sys.executable, str(ROOT / "eval" / "replay.py"), "--gold", gold, "--rows", str(rows), "--ablate", "--json", *extra]
    out = subprocess.run(cmd, cwd=ROOT, env=os.environ | env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def transitions(counts: dict, split: str) -> dict[str, int]:
    """The rule's counts on one split; a set's rows without a split (the seed questions, written while the rules
    were) count as dev."""
    parts = [counts.get(split, {})] + ([counts.get("all", {})] if split == "dev" else [])
    return {k: sum(c.get(k, 0) for c in parts) for k in ("fired",) + GAINS + COSTS}


def totals(counts: dict, split: str) -> tuple[int, int, int]:
    """(fired, gained, cost) on one split."""
    t = transitions(counts, split)
    return t["fired"], sum(t[k] for k in GAINS), sum(t[k] for k in COSTS)


def net(t: dict[str, int]) -> tuple[int, int]:
    """(wrong-but-cited answers the rule removes, correct answers it loses), net: an answer it turns from wrong to
    correct counts on both sides, one from correct to wrong against it on both."""
    return (t["wrong->refused"] + t["wrong->correct"] - t["correct->wrong"],
            t["correct->refused"] + t["correct->wrong"] - t["wrong->correct"])


def verdict(holdout: dict[str, int]) -> str:
    """The issue's rule: a rule stays when, on the holdouts, it removes wrong-but-cited answers without losing
    more correct ones than it removes wrong ones."""
    if not holdout["fired"]:
        return "never fired: deleted"
    removed, lost = net(holdout)
    if removed > 0 and lost <= removed:
        return "earns its place"
    return "no net change: deleted" if removed == lost == 0 else "does not earn its place: deleted"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("build/eval"), help="folder holding the runs' folders")
    ap.add_argument("--reuse", action="store_true", help="reuse each run's ablation.json from an earlier call")
    ap.add_argument("--only", help="run folders to replay, comma-separated (default: every set)")
    args = ap.parse_args()
    results, missing = {}, []
    for label, gold, folder, extra, env in SETS:
        if args.only and folder not in args.only.split(","):
            continue
        rows = args.runs / folder / "rows.jsonl"
        if not rows.exists():
            missing.append(f"{label} ({rows})")
            continue
        saved = rows.with_name("ablation.json")
        if args.reuse and saved.exists():
            results[label] = json.loads(saved.read_text(encoding="utf-8"))
            continue
        print(f"replaying {label} …", file=sys.stderr)
        results[label] = run_set(gold, rows, extra, env)
        saved.write_text(json.dumps(results[label]), encoding="utf-8")
    rules = list(checks.names())
    print("Rows replayed per set (dev / holdout; rows whose prompt changed since the run are left out):\n")
    for label, res in results.items():
        dev = res["rows"].get("dev", 0) + res["rows"].get("all", 0)
        print(f"- {label}: {dev} / {res['rows'].get('holdout', 0)} (left out {res['drifted']})")
    if missing:
        print(f"- not run: {', '.join(missing)}")
    print("\nAll sets together: fired / gained / cost (gained = wrong without the rule, refused or correct with it; "
          "cost = correct without it, refused or wrong with it).\n")
    print("| rule | dev fired | dev gained | dev cost | holdout fired | holdout gained | holdout cost | holdout, net: wrong-but-cited removed / correct lost | on the holdouts |")
    print("|---|---|---|---|---|---|---|---|---|")
    for rule in rules:
        dev, hold = ({k: sum(transitions(res["rules"].get(rule, {}), split)[k] for res in results.values())
                      for k in ("fired",) + GAINS + COSTS} for split in ("dev", "holdout"))
        cells = [dev["fired"], sum(dev[k] for k in GAINS), sum(dev[k] for k in COSTS),
                 hold["fired"], sum(hold[k] for k in GAINS), sum(hold[k] for k in COSTS)]
        removed, lost = net(hold)
        print(f"| {rule} | " + " | ".join(map(str, cells)) + f" | {removed} / {lost} | {verdict(hold)} |")
    print("\nPer set (dev fired/gained/cost · holdout fired/gained/cost):\n")
    print("| rule | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for rule in rules:
        cells = []
        for res in results.values():
            c = res["rules"].get(rule, {})
            cells.append("{}/{}/{} · {}/{}/{}".format(*totals(c, "dev"), *totals(c, "holdout")))
        print(f"| {rule} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
