"""eval/replay.py --ablate's arithmetic on a tiny synthetic rows file: per rule, of the answers it refused,
how many were wrong (what it is for) and how many correct (what it costs) without it, dev and holdout apart."""
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
    with_rules = [row("1", "dev", True, False, ["tied_candidate"]), row("2", "dev", True, False, ["tied_candidate"]),
                  row("3", "holdout", True, False, ["tied_candidate", "unsure"]), row("4", "dev", False, True)]
    rows_file.write_text("".join(json.dumps(r) + "\n" for r in with_rules), encoding="utf-8")
    recorded = [json.loads(line) for line in rows_file.read_text(encoding="utf-8").splitlines()]
    without = {
        # without tied_candidate: row 1 answered wrongly, row 2 correctly, row 3 (holdout) wrongly
        "tied_candidate": [row("1", "dev", False, False), row("2", "dev", False, True), row("3", "holdout", False, False)],
        # without unsure: row 3 still refused (by another rule)
        "unsure": [row("3", "holdout", True, False)],
    }
    assert replay.ablation(recorded, without["tied_candidate"]) == {
        "dev": {"wrong->refused": 1, "correct->refused": 1, "rows": 2},
        "holdout": {"wrong->refused": 1, "correct->refused": 0, "rows": 1}}
    assert replay.ablation(recorded, without["unsure"]) == {"holdout": {"wrong->refused": 0, "correct->refused": 0, "rows": 1}}
    table = replay.ablation_table(recorded, without).splitlines()
    assert table[0] == ("| rule | dev: wrong→refused | dev: correct→refused | holdout: wrong→refused | "
                        "holdout: correct→refused |")
    assert table[2] == "| tied_candidate | 1 | 1 | 1 | 0 |" and table[3] == "| unsure | 0 | 0 | 0 | 0 |"
