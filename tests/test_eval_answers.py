"""Answer metrics checked by hand, and the answer-eval run (report files, resume) with fakes."""
from __future__ import annotations

import json
import unicodedata

import pytest

from conftest import Scripted
from rag import cli
from rag.eval import evaluate
from rag.index import build as index
from rag.eval.evalsets import GoldItem, GoldSet
from rag.eval.metrics import (
    abstention_scores,
    citation_verdicts,
    contains_gold,
    exact_match,
    hit_scores,
    latency_summary,
    normalize_answer,
    percentile,
    token_f1,
)

NAME = "Lâm Đình Thắng"


def test_nfc_and_nfd_compare_equal():
    nfd = unicodedata.normalize("NFD", NAME)
    assert nfd != NAME
    assert exact_match(nfd, [NAME]) == 1.0 and contains_gold(f"Ông {nfd} phát biểu", [NAME]) == 1.0


def test_diacritics_match_only_with_fold():
    assert exact_match("lam dinh thang", [NAME]) == 0.0
    assert exact_match("lam dinh thang", [NAME], fold=True) == 1.0
    assert normalize_answer("Đột phá", fold=True) == "dot pha"
    assert contains_gold("ong lam dinh thang", [NAME]) == 0.0 and contains_gold("ong lam dinh thang", [NAME], fold=True) == 1.0


def test_punctuation_markers_and_syllable_boundaries():
    assert exact_match("  Lâm Đình Thắng [1]. ", [NAME]) == 1.0  # citation markers and punctuation go
    assert exact_match("“Siêu cao tốc Fintech”", ["Siêu cao tốc Fintech"]) == 1.0
    assert exact_match("27-11", ["27/11"]) == 1.0  # both become "27 11"
    assert contains_gold("Top 1000 thành phố", ["Top 100"]) == 0.0  # whole syllables only
    assert contains_gold("năm 20301", ["2030"]) == 0.0
    assert contains_gold("đến năm 2030 [1].", ["2030"]) == 1.0


def test_all_of_aliases_need_every_part():
    gold = ["2021 && 2022"]
    assert contains_gold("Top7 trong các năm 2021, 2022 [1].", gold) == 1.0
    assert contains_gold("Top7 năm 2021 [1].", gold) == 0.0
    assert contains_gold("2022", ["&&", "2022"]) == 1.0  # an alias with no parts never matches


def test_token_f1_by_hand():
    # pred 4 syllables, gold 3, all 3 shared: P = 3/4, R = 1, F1 = 2 * 0.75 / 1.75 = 6/7
    assert token_f1("ông Lâm Đình Thắng", [NAME]) == pytest.approx(6 / 7)
    # repeated syllables count once per occurrence: pred "a a b" vs gold "a b b" share 2 of 3 -> 2/3
    assert token_f1("tăng tăng giá", ["tăng giá giá"]) == pytest.approx(2 / 3)
    # the best alias counts; no overlap is 0
    assert token_f1("năm 2030", ["2025", "2030"]) == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert token_f1("không", [NAME]) == 0.0
    assert token_f1("lam dinh thang", [NAME]) == 0.0 and token_f1("lam dinh thang", [NAME], fold=True) == 1.0


PASSAGE = "Phát biểu khai mạc, ông Lâm Đình Thắng, Giám đốc Sở Khoa học và Công nghệ cho biết năm 2030 là mốc."
OFF_TOPIC = "Giá vàng miếng hôm nay tăng 1 triệu đồng mỗi lượng."


def test_citation_precision_with_two_sources():
    answer = "Ông Lâm Đình Thắng phát biểu khai mạc [1][2]. Năm 2030 là mốc [1]."
    verdicts = citation_verdicts(answer, {1: PASSAGE, 2: OFF_TOPIC})
    assert [v["supported"] for v in verdicts] == [[1], [1]]
    assert verdicts[0]["unsupported"] == [2]
    cited = sum(len(v["supported"]) + len(v["unsupported"]) for v in verdicts)
    assert sum(len(v["supported"]) for v in verdicts) / cited == pytest.approx(2 / 3)
    one = citation_verdicts("Ông Lâm Đình Thắng phát biểu khai mạc [1][2].", {1: PASSAGE, 2: OFF_TOPIC})
    assert len(one[0]["supported"]) / (len(one[0]["supported"]) + len(one[0]["unsupported"])) == 0.5


def test_citation_verdicts_edge_cases():
    # an uncited factual sentence counts, unsupported; a connective does not count; a dangling marker fails
    v = citation_verdicts("Ông Lâm Đình Thắng phát biểu khai mạc. Vâng. Năm 2030 là mốc [3].", {1: PASSAGE})
    assert [(x["supported"], x["unsupported"]) for x in v] == [([], []), ([], [3])]
    # an English claim is checked by the similarity stand-in, not by Vietnamese word overlap
    english = "The opening speech was given by Lam Dinh Thang [1]."
    assert citation_verdicts(english, {1: PASSAGE}, similarity=lambda c, p: 0.8)[0]["supported"] == [1]
    assert citation_verdicts(english, {1: PASSAGE}, similarity=lambda c, p: 0.2)[0]["supported"] == []


def test_abstention_by_hand():
    # abstained on: an unanswerable (right) and two answerable (wrong); answered one unanswerable
    s = abstention_scores([True, False, True, True], [False, False, True, True])
    assert s == {"precision": pytest.approx(33.33), "recall": 50.0, "wrong_abstention_rate": 100.0}
    assert abstention_scores([False, False], [True, True]) == {"precision": None, "recall": None, "wrong_abstention_rate": 0.0}


def test_hits_latency_and_percentile_by_hand():
    h = hit_scores([["a", "a", "b"], ["b", "b", "a"], ["c"]], [{"a"}, {"a"}, {"a"}])
    assert h["Hit@1"] == pytest.approx(33.33) and h["Hit@3"] == pytest.approx(66.67)
    assert h["MRR@10"] == pytest.approx(100 * (1 + 1 / 3) / 3, abs=0.01)
    assert percentile([40, 10, 30, 20], 50) == 20 and percentile([40, 10, 30, 20], 95) == 40
    timings = [
        {"retrieve": 100, "first_token": 1100, "generate": 3000, "total": 3200},  # decode 2 s
        {"retrieve": 300, "total": 300},  # a gate abstention: no generation
    ]
    lat = latency_summary(timings, ["x" * 70, ""])
    assert lat["retrieve_p50"] == 100 and lat["retrieve_p95"] == 300
    assert lat["first_token_p50"] == 1100 and lat["total_p95"] == 3200
    assert lat["est_tokens_per_s_from_output_chars_p50"] == 10.0  # 70 chars / 3.5 = 20 tokens in 2 s


# ------------------------------------------------------------------ the run, with fakes


GOLD = GoldSet(
    [
        GoldItem("q1", "Giá vàng miếng hôm nay tăng bao nhiêu?", ["1 triệu đồng"], ["vang"], True, "numeric"),
        GoldItem("q2", "Quy trình cấp hộ chiếu điện tử gồm mấy bước?", [], [], False, "unanswerable"),
        GoldItem("q3", "Mưa lớn kéo dài ở đâu?", ["Huế && Đà Nẵng"], ["mua"], True, "where"),
    ],
    name="tiny",
)
RIGHT = "Giá vàng miếng hôm nay tăng 1 triệu đồng mỗi lượng [1]."
REFUSAL = "Các bài báo không đề cập đến điều này."


@pytest.fixture
def run(settings, articles, fake_embedder, tmp_path):
    index.update(settings, articles, fake_embedder, progress=False, log=lambda m: None)

    def go(*replies, limit=None, settings_=None):
        gen = Scripted(*replies)
        report = evaluate.answers(GOLD, settings_ or settings, tmp_path / "report", limit=limit, embedder=fake_embedder,
                                  generator=gen, progress=False, log=lambda m: None)
        return report, gen

    return go


def test_answer_run_scores_and_writes_reports(run, tmp_path):
    report, gen = run(RIGHT, REFUSAL)
    assert len(gen.prompts) == 2  # q2 is stopped by the retrieval gate, the model is never asked
    s = report["summary"]
    assert (s["questions"], s["answerable"], s["unanswerable"], s["errors"]) == (3, 2, 1, 0)
    assert s["accuracy"] == pytest.approx(66.67)  # q1 right, q2 abstained rightly, q3 abstained wrongly
    assert s["abstention"] == {"precision": 50.0, "recall": 100.0, "wrong_abstention_rate": 50.0}
    assert s["answer"]["contains_fold"] == 50.0 and s["answer"]["em"] == 0.0 and s["answered_accuracy"] == 100.0
    assert s["citation"] == {"precision": 100.0, "recall": 100.0, "supported_sentence_rate": 100.0, "cited_passage_has_gold": 100.0}
    assert s["retrieval"]["Hit@1"] == 100.0 and s["retrieval"]["answer_in_context"] == 100.0
    assert {"retrieve_p50", "first_token_p50", "total_p95"} <= set(s["latency_ms"])
    assert s["by_type"]["where"] == {"n": 1, "correct": 0.0}

    out = tmp_path / "report"
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q2", "q3"]
    q1 = rows[0]
    assert q1["answer"] == RIGHT and q1["citations"][0]["article_id"] == "vang" and q1["verdicts"]["correct"]
    assert q1["retrieved"][0] == "vang" and "total" in q1["timings"]
    assert q1["raw_output"] == RIGHT and "Câu hỏi: Giá vàng" in q1["prompt"] and rows[1]["prompt"] is None  # q2: gate
    assert q1["rejections"] == [] and all("rejections" in r for r in rows)  # the checks that fired, for replay --ablate
    saved = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert saved["summary"] == s and saved["config"]["generator"] == "qwen2.5-coder-1.5b"
    md = (out / "report.md").read_text(encoding="utf-8")
    failures, passed = md.split("## Passed")
    assert f"| q3 | where | abstained after generating | Mưa lớn kéo dài ở đâu? | Huế && Đà Nẵng | (model said: {REFUSAL}) |" in failures
    assert "q1" not in failures
    assert "| q1 |" in passed and "| q2 |" in passed


def test_resume_reuses_finished_rows(run, settings, tmp_path, monkeypatch):
    run(RIGHT, limit=1)  # "interrupted" after q1
    rows_path = tmp_path / "report" / "rows.jsonl"
    with rows_path.open("a", encoding="utf-8") as f:
        f.write('{"id": "q2", "quest')  # killed mid-write
    report, gen = run(REFUSAL)
    assert len(gen.prompts) == 1 and "Mưa lớn" in gen.prompts[0][-1]["content"]  # only q3 was asked
    assert report["summary"]["accuracy"] == pytest.approx(66.67)
    report, gen = run()  # everything done: the model is not called at all
    assert gen.prompts == [] and report["summary"]["accuracy"] == pytest.approx(66.67)
    lines = rows_path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["id"] for x in lines if x.startswith('{"id": "q') and x.endswith("}")] == ["q1", "q2", "q3"]
    # another configuration, or changed answering code, does not reuse them
    _, gen = run(RIGHT, REFUSAL, settings_=settings.replace(top_k=2))
    assert len(gen.prompts) == 2
    monkeypatch.setattr(evaluate, "code_version", lambda: "edited")
    _, gen = run(RIGHT, REFUSAL)
    assert len(gen.prompts) == 2


def test_overrides_and_tables():
    assert evaluate.parse_overrides("retriever=bm25, top_k=6") == {"retriever": "bm25", "top_k": 6}
    with pytest.raises(ValueError, match="topk"):
        evaluate.parse_overrides("topk=6")
    with pytest.raises(ValueError, match="RAG_TOP_K=six: expected an integer from 1 to 100"):
        evaluate.parse_overrides("top_k=six")
    a = {"questions": 3, "answerable": 2, "errors": 0, "accuracy": 66.67, "answer": {"f1_fold": 50.0}, "latency_ms": {"total_p50": 1200.5}}
    b = a | {"accuracy": 100.0, "answer": {"f1_fold": None}}
    table = evaluate.summary_table({"retriever=bm25": a, "top_k=6": b})
    lines = table.splitlines()
    assert lines[0] == "| metric | retriever=bm25 | top_k=6 |"
    assert "| accuracy (answerable: correct; unanswerable: abstained) | 66.67 | 100 |" in lines
    assert "| token F1 (no diacritics) | 50 | – |" in lines and "| total p50 (ms) | 1200.5 | 1200.5 |" in lines
    assert not any("citation" in line for line in lines)  # metrics no run has are left out


def test_compare_rejects_a_bad_config_before_running(tmp_path, capsys):
    gold = tmp_path / "g.jsonl"
    gold.write_text('{"id": "a", "question": "Ai?", "answers": ["B"]}\n', encoding="utf-8")
    assert cli.main(["eval", "compare", "--gold", str(gold), "--config", "retriever=bm25", "--config", "topk=3"]) == 2
    assert "topk" in capsys.readouterr().err


def test_short_answer_to_a_vietnamese_question_is_checked_by_words_as_the_pipeline_does():
    # "Võ Minh Thành" has only letters French or Portuguese also use, so alone it does not look Vietnamese;
    # the verifier decides by the question's language, and so must the scoring
    item = GoldItem("x", "Ai là Phó Giám đốc Sở?", ["Võ Minh Thành"], ["a"])
    row = {"abstained": False, "answer": "Võ Minh Thành [1].", "retrieved_chunks": ["a#0"],
           "citations": [{"marker": 1, "chunk_id": "a#0", "article_id": "a"}]}
    passage = {"a#0": "Phó Giám đốc Sở Khoa học và Công nghệ TP.HCM Võ Minh Thành cho biết."}
    v = evaluate.verdicts(item, row, passage, 4, similarity=lambda claim, text: 0.0)
    assert v["citations_supported"] == 1 and v["correct"] and v["gold_cited"] and v["answer_in_context"]


def test_outcomes_split_abstentions_and_wrong_answers(tmp_path):
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("outcomes", ROOT / "eval" / "outcomes.py")
    outcomes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(outcomes)

    def row(answer, gold, *, abstained=False, raw="x", answerable=True, correct=False, f1=0.0):
        return {"config": "c", "answer": answer, "gold_answers": [gold], "abstained": abstained, "raw_output": raw,
                "answerable": answerable, "verdicts": {"correct": correct, "f1": f1}}

    rows = [
        row("Từ 01 năm đến 05 năm [1].", "từ 01 năm đến 05 năm", correct=True, f1=1.0),
        row("Các bài báo không nhắc đến điều này.", "-", abstained=True, answerable=False),
        row("1 năm đến 5 năm [1].", "từ 01 năm đến 05 năm", f1=0.6),  # wrong only by "từ" and zero padding
        row("Phạt tù từ 02 năm đến 07 năm [1].", "từ 02 năm đến 05 năm", f1=0.7),
        row("Cảnh cáo [1].", "phạt tiền", f1=0.0),
        row("Các bài báo không nhắc đến điều này.", "2023", abstained=True, raw=""),
        row("Các bài báo không nhắc đến điều này.", "2023", abstained=True, raw="Các bài báo không đề cập đến điều này."),
        row("Các bài báo không nhắc đến điều này.", "2023", abstained=True, raw="Năm 2021 [1]."),
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    counts = outcomes.count(path)
    assert [counts[name] for name in outcomes.OUTCOMES] == [1, 1, 1, 1, 1, 1, 1, 1]


def test_an_answer_naming_other_candidates_beside_the_gold_is_not_correct():
    from rag.eval.metrics import extra_candidates

    q = "Bình Dương đứng Top1 Smart 21 năm nào?"
    assert extra_candidates(q, "Lọt Top7 các năm 2021, 2022; Top1 năm 2023 [1].", ["2023"]) == ["2021", "2022"]
    assert extra_candidates(q, "Năm 2023 [1].", ["2023"]) == []
    assert extra_candidates("Ai phát biểu khai mạc?", "Ông Lâm Đình Thắng và ông Võ Minh Thành [1].", ["Lâm Đình Thắng"]) == ["Võ Minh Thành"]
    assert extra_candidates("Bình Dương lọt Top7 trong những năm nào?", "Năm 2021, 2022 và 2023.", ["2021 && 2022"]) == []
    # the same date written with "ngày", a citation marker and an acronym with a dot are not other candidates
    assert extra_candidates("Hội nghị diễn ra vào ngày nào?", "Hội nghị diễn ra vào ngày 27/11 [1].", ["27/11"]) == []
    assert extra_candidates("Hội nghị diễn ra khi nào?", "Vào 27/11/2025 [1].", ["27/11"]) == []
    assert extra_candidates("Lọt vào top bao nhiêu thành phố?", "Top 100 thành phố [1].", ["Top 100"]) == []
    assert extra_candidates("Cơ quan nào chủ trì diễn đàn?", "UBND TP.HCM [1].", ["UBND TP.HCM"]) == []


def test_yes_no_verdicts_and_consistency_and_wrong_but_cited_by_hand():
    from rag.eval.metrics import answer_summary, consistency, yes_no

    assert (yes_no("Có. Bình Dương …"), yes_no("Không, …"), yes_no("Sai"), yes_no("Yes."), yes_no("Bình Dương")) == (
        True, False, False, True, None)

    def row(group, correct, answerable=True, abstained=False):
        v = {"correct": correct, "contains_fold": float(correct), "em_fold": 0.0, "f1_fold": float(correct)}
        v |= {k: 0 for k in ("contains", "em", "f1", "citations", "citations_supported", "sentences", "sentences_supported")}
        return {"group": group, "answerable": answerable, "abstained": abstained, "verdicts": v | {
            "gold_cited": True, "cited_passage_has_gold": True, "answer_in_context": True}, "timings": {}, "retrieved": [],
            "gold_article_ids": []}

    rows = [row("a", True), row("a", True), row("b", True), row("b", False), row("c", False),
            row("d", False, abstained=True), row("u", False, answerable=False)]
    assert consistency(rows) == 50.0  # a agrees, b does not; c alone does not count
    s = answer_summary(rows)
    # wrong and shown: b's second phrasing, c, and the unanswerable one that was answered
    assert s["wrong_but_cited"] == {"count": 3, "of_answerable": 33.33, "of_answers": 50.0, "answered_unanswerable": 1}
    assert s["wrongly_refused"] == 16.67 and s["abstained_unanswerable"] == 0.0
    assert s["squad_v2"]["f1"] == round(100 * 3 / 7, 2)


def test_given_context_answers_from_the_gold_paragraph_without_retrieval(settings, fake_embedder, tmp_path):
    """Reading comprehension: a CSV's own paragraph is the only source, an unanswerable row (is_impossible)
    refused counts as exact, and the context is never embedded (nothing is searched)."""
    from rag.eval import evalsets

    csv_path = tmp_path / "rc.csv"
    csv_path.write_text(
        "id,title,context,question,answer,is_impossible,plausible_answer\n"
        "1,Vàng,Giá vàng miếng hôm nay tăng 1 triệu đồng mỗi lượng.,Giá vàng miếng tăng bao nhiêu?,1 triệu đồng,0,\n"
        "2,Vàng,Giá vàng miếng hôm nay tăng 1 triệu đồng mỗi lượng.,Giá vàng nhẫn tăng bao nhiêu?,,1,1 triệu đồng\n",
        encoding="utf-8")
    gold = evalsets.load(csv_path)
    assert [it.answerable for it in gold.items] == [True, False] and gold.corpus[0].title == "Vàng"
    gen = Scripted(RIGHT, REFUSAL)
    report = evaluate.answers(gold, settings, tmp_path / "rc", embedder=fake_embedder, generator=gen, progress=False,
                              log=lambda m: None, given_context=True)
    s = report["summary"]
    assert len(gen.prompts) == 2 and "Giá vàng miếng hôm nay tăng 1 triệu đồng" in gen.prompts[1][1]["content"]
    assert s["correct_answerable"] == 100.0 and s["abstained_unanswerable"] == 100.0 and s["squad_v2"]["em"] == 50.0
    assert fake_embedder.embedded == []  # lexical-only index: the paragraph was handed over, not searched
    assert report["config"]["given_context"] == "1"


def test_rows_keep_the_token_probabilities_for_replay(run, tmp_path):
    run([(RIGHT, 0.9)], REFUSAL)  # q1's reply as one piece the model was 90 % sure of; q3's as plain text
    rows = [json.loads(line) for line in (tmp_path / "report" / "rows.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows[0]["raw_pieces"] == [[RIGHT, [0.9]]] and rows[0]["raw_output"] == RIGHT
    assert "raw_pieces" not in rows[2]
