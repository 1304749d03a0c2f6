"""Gold-set loaders and retrieval metric arithmetic, checked by hand."""
from __future__ import annotations

import pytest

from rag.eval import evalsets
from rag.eval.metrics import percentile, retrieval_scores


def test_retrieval_scores_by_hand():
    ranked = [["a", "b"], ["x", "a"], ["x", "y"]]
    golds = [{"a"}, {"a"}, {"a"}]
    m = retrieval_scores(ranked, golds)
    assert m["P@1"] == pytest.approx(33.33, abs=0.01)
    assert m["R@10"] == pytest.approx(66.67, abs=0.01)
    assert m["MRR@10"] == pytest.approx(100 * (1 + 0.5 + 0) / 3, abs=0.01)
    # nDCG: q1 = 1, q2 = 1/log2(3) = 0.6309, q3 = 0
    assert m["nDCG@10"] == pytest.approx(100 * (1 + 0.63093) / 3, abs=0.01)


def test_multi_gold_recall():
    m = retrieval_scores([["a", "x", "b"]], [{"a", "b"}])
    assert m["R@3"] == 100.0 and m["R@10"] == 100.0 and m["P@1"] == 100.0
    assert retrieval_scores([["a", "x", "y", "z", "w", "b"]], [{"a", "b"}])["R@5"] == 50.0


def test_percentile():
    assert percentile([5, 1, 3, 2, 4], 50) == 3
    assert percentile([1, 2, 3, 4, 100], 95) == 100
    assert percentile([], 50) == 0.0


def test_load_csv_dedupes_contexts_and_reports_bad_rows(tmp_path):
    f = tmp_path / "qa.csv"
    f.write_text(
        "\ufeffcontext,question,answer\n"
        '"Điều 1. Luật A",Luật A nói gì?,nói A\n'
        '"Điều 1. Luật A",Điều 1 là gì?,Luật A\n'
        '"Điều 2. Luật B",,\n'
        '"Điều 2. Luật B",Luật B?,B\n',
        encoding="utf-8",
    )
    g = evalsets.load_csv(f)
    assert len(g.items) == 3 and len(g.corpus) == 2
    assert g.items[0].article_ids == g.items[1].article_ids != g.items[2].article_ids
    assert g.skipped == [f"{f}:4: empty question"]
    with pytest.raises(evalsets.GoldFileError, match="no column 'ctx'"):
        evalsets.load_csv(f, context_col="ctx")


def test_load_jsonl_skips_malformed_rows_with_line_numbers(tmp_path):
    f = tmp_path / "gold.jsonl"
    f.write_text(
        '{"id": "q1", "question": "Ai?", "answers": ["Lâm Đình Thắng"], "article_ids": ["htv"]}\n'
        "{not json\n"
        '{"question": "Không có?", "answerable": false}\n'
        '{"answers": ["x"]}\n'
        '{"question": "Thiếu đáp án?"}\n',
        encoding="utf-8",
    )
    g = evalsets.load_jsonl(f)
    assert [i.id for i in g.items] == ["q1", "gold-3"]
    assert not g.items[1].answerable
    assert [s.split(":")[1] for s in g.skipped] == ["2", "4", "5"]


def test_empty_or_unreadable_gold_file(tmp_path):
    (tmp_path / "e.jsonl").write_text("  \n")
    with pytest.raises(evalsets.GoldFileError, match="empty"):
        evalsets.load(tmp_path / "e.jsonl")
    with pytest.raises(evalsets.GoldFileError, match="cannot read"):
        evalsets.load(tmp_path / "missing.csv")
    (tmp_path / "b.jsonl").write_bytes(b"\xff\xfe bad")
    with pytest.raises(evalsets.GoldFileError, match="UTF-8"):
        evalsets.load(tmp_path / "b.jsonl")
