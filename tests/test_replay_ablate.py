"""eval/replay.py --ablate's arithmetic on a tiny synthetic rows file: per rule, how often it fired and what it
changed: answers wrong without it and refused or correct with it (what it is for), answers correct without it
and refused or wrong with it (what it costs), dev and holdout apart."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_replay():
    spec = importlib.util.spec_from_file_location("replay", ROOT / "eval" / "replay.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(id_, split, abstained, correct, rules=()):
    return {"id": id_, "question": f"q{id_}", "split": split, "abstained": abstained, "verdicts": {"correct": correct},
            "rejections": [{"rule": r, "claim": "c", "reason": "r"} for r in rules]}


def test_ablation_counts_wrong_and_correct_answers_each_rule_refused(tmp_path):
    replay = load_replay()
    rows_file = tmp_path / "rows.jsonl"
    with_rules = [row("1", "dev", True, False, ["several_candidates"]), row("2", "dev", True, False, ["several_candidates"]),
                  row("3", "holdout", True, False, ["several_candidates", "unsure"]), row("4", "dev", False, True),
                  row("5", "dev", False, True, ["yesno_qualifier"]), row("6", "dev", False, False, ["yesno_qualifier"])]
    rows_file.write_text("".join(json.dumps(r) + "\n" for r in with_rules), encoding="utf-8")
    recorded = [json.loads(line) for line in rows_file.read_text(encoding="utf-8").splitlines()]
    without = {
        # without several_candidates: row 1 answered wrongly, row 2 correctly, row 3 (holdout) wrongly
        "several_candidates": [row("1", "dev", False, False), row("2", "dev", False, True), row("3", "holdout", False, False)],
        # without unsure: row 3 still refused (by another rule)
        "unsure": [row("3", "holdout", True, False)],
        # without yesno_qualifier: row 5's wrong claim wins over the right one; row 6's right claim over a wrong one
        "yesno_qualifier": [row("5", "dev", False, False), row("6", "dev", False, True)],
    }
    zero = {"wrong->refused": 0, "wrong->correct": 0, "correct->refused": 0, "correct->wrong": 0}
    assert replay.ablation(recorded, without["several_candidates"]) == {
        "dev": zero | {"fired": 2, "wrong->refused": 1, "correct->refused": 1},
        "holdout": zero | {"fired": 1, "wrong->refused": 1}}
    assert replay.ablation(recorded, without["unsure"]) == {"holdout": zero | {"fired": 1}}
    assert replay.ablation(recorded, without["yesno_qualifier"]) == {
        "dev": zero | {"fired": 2, "wrong->correct": 1, "correct->wrong": 1}}
    table = replay.ablation_table(recorded, without).splitlines()
    assert table[0].startswith("| rule | dev: fired | dev: wrong->refused | dev: wrong->correct | dev: correct->refused")
    assert table[2] == "| several_candidates | 2 | 1 | 0 | 1 | 0 | 1 | 1 | 0 | 0 | 0 |"
    assert table[3] == "| unsure | 0 | 0 | 0 | 0 | 0 | 1 | 0 | 0 | 0 | 0 |"
