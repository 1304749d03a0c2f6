"""The reader's data preparation, span decoding and training loop, with a tiny random encoder and a
word-level tokenizer built here (no model download); its place in the pipeline is in test_pipeline.py."""
from __future__ import annotations

import csv
import gzip
import json
import unicodedata

import numpy as np
import pytest

from rag.train import reader_data
from rag.answer.reader import ReaderConfig, _word_bounds, best_span, windows

torch = pytest.importorskip("torch")


def _write_csv(path, rows, fields=("id", "title", "context", "question", "answer", "is_impossible", "plausible_answer")):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in fields})


def _qa_dir(tmp_path, excluded_context: str, excluded_question: str):
    """A ViQuAD-shaped CSV: 300 evaluation rows, then training rows of two articles; an exclusion list."""
    evaluation = [{"title": "Eval", "context": f"Đoạn đánh giá số {i} nói về Hà Nội.", "question": f"Câu {i}?",
                   "answer": "Hà Nội", "is_impossible": "0"} for i in range(300)]
    train = [
        {"title": "A", "context": "Thủ đô của Việt Nam là Hà Nội.", "question": "Thủ đô của Việt Nam là gì?", "answer": "Hà Nội"},
        {"title": "A", "context": "Việt Nam có 34 tỉnh thành sau năm 2025.", "question": "Việt Nam có bao nhiêu tỉnh thành?", "answer": "34"},
        {"title": "A", "context": "Sông Hồng chảy qua Hà Nội.", "question": "Sông nào chảy qua Hà Nội?", "answer": "", "is_impossible": "1"},
        # listed in the exclusion file, in another Unicode form and spacing than the list's
        {"title": "B", "context": unicodedata.normalize("NFD", "  " + excluded_context.replace(" ", "   ")), "question": "Ai?", "answer": "Lan"},
        {"title": "B", "context": "Bà Lan là giáo viên.", "question": excluded_question, "answer": "giáo viên"},
        # the passage of an evaluation row, asked again lower down: still an evaluated passage
        {"title": "Eval", "context": "Đoạn đánh giá số 7 nói về Hà Nội.", "question": "Đoạn 7 nói về đâu?", "answer": "Hà Nội"},
    ]
    _write_csv(tmp_path / "ViQuAD2_dev.csv", evaluation + [r | {"is_impossible": r.get("is_impossible", "0")} for r in train])
    xquad = [{"title": "X", "context": f"Đoạn {i}: Paris là thủ đô của Pháp.", "question": f"Thủ đô của Pháp? ({i})", "answer": "Paris"}
             for i in range(302)]
    _write_csv(tmp_path / "XQuAD_vi.csv", xquad, fields=("id", "title", "context", "question", "answer"))
    (tmp_path / "training_exclude.sha256").write_text(
        "# comment\n"
        f"context {reader_data.normalised_hash(excluded_context)}\n"
        f"question {reader_data.normalised_hash(excluded_question)}\n", encoding="utf-8")
    return tmp_path


def test_prepare_filters_the_exclusion_list_and_the_evaluation_slice(tmp_path):
    excluded_context = "Bà Lan dạy học ở Huế."
    excluded_question = "Bà Lan làm nghề gì?"
    items, counts = reader_data.examples(_qa_dir(tmp_path, excluded_context, excluded_question), ("viquad",))
    contexts = {" ".join(unicodedata.normalize("NFC", e.context).split()) for e in items}
    questions = {e.question for e in items}
    assert excluded_context not in contexts
    assert excluded_question not in questions
    assert not any("đánh giá" in c for c in contexts)  # rows 1-300, and their passages asked again later
    assert counts["viquad: excluded (training_exclude.sha256)"] == 2
    assert counts["viquad: passage or question in an evaluation slice"] == 1
    kinds = {(e.question, e.kind) for e in items}
    assert ("Thủ đô của Việt Nam là gì?", "answer") in kinds and ("Sông nào chảy qua Hà Nội?", "unanswerable") in kinds
    for e in items:  # every answer is where its offset says
        assert (e.start, e.answer) == (-1, "") or e.context[e.start : e.start + len(e.answer)] == e.answer


def test_negatives_never_hold_the_answer(tmp_path):
    items, _ = reader_data.examples(_qa_dir(tmp_path, "x", "y"), ("viquad",), seed=3)
    reader_data.NEGATIVE_SHARE  # noqa: B018 (documented share; every answerable question may get one)
    by_id = {e.id: e for e in items}
    for e in (e for e in items if e.kind == "negative"):
        original = by_id[e.id.split("-neg")[0]]
        assert original.kind == "answer" and original.answer.lower() not in e.context.lower()


def test_evaluation_questions_can_be_asked_unaccented(tmp_path):
    rows = [{"title": "T", "context": "Hà Nội là thủ đô.", "question": f"Thủ đô của Việt Nam là gì? ({i})", "answer": "Hà Nội"}
            for i in range(4)]
    _write_csv(tmp_path / "XQuAD_vi.csv", rows, fields=("id", "title", "context", "question", "answer"))
    accented = reader_data.evaluation_examples(tmp_path / "XQuAD_vi.csv")
    bare = reader_data.evaluation_examples(tmp_path / "XQuAD_vi.csv", accents=False)
    assert [e.question for e in bare] == [f"thu do cua viet nam la gi? ({i})" for i in range(4)]
    assert [(e.context, e.answer, e.split) for e in bare] == [(e.context, e.answer, e.split) for e in accented]
    assert reader_data.unaccented("Ai phát biểu khai mạc Hội nghị?") == "ai phat bieu khai mac hoi nghi?"


def _pack(tmp_path, rows_by_file):
    (tmp_path / "train").mkdir(exist_ok=True)
    for file in {f for files, _ in reader_data.SOURCES.values() for f in files if f.startswith("train/")}:
        with gzip.open(tmp_path / file, "wt", encoding="utf-8") as f:
            for r in rows_by_file.get(file, []):
                f.write(json.dumps({"id": r["question"], "source": "s", "title": "T", "answer": "", "start": -1,
                                    "plausible_answer": ""} | r, ensure_ascii=False) + "\n")


def test_the_training_pack_is_filtered_again_and_sorted_by_kind(tmp_path):
    """The pack's rows pass the exclusion list and the evaluation slices again (a pack row that slipped through
    stays out), and each source's rows get their kind."""
    excluded_context, excluded_question = "Bà Lan dạy học ở Huế.", "Bà Lan làm nghề gì?"
    _qa_dir(tmp_path, excluded_context, excluded_question)
    ok = "Ông Lâm là giám đốc sở từ năm 2020."
    _pack(tmp_path, {
        "train/viquad1_train.jsonl.gz": [
            {"context": ok, "question": "Ai là giám đốc sở?", "answerable": True, "answer": "Ông Lâm", "start": 0},
            {"context": excluded_context, "question": "Ai dạy học ở Huế?", "answerable": True, "answer": "Bà Lan", "start": 0},
            {"context": ok, "question": excluded_question, "answerable": True, "answer": "giám đốc", "start": 8},
            {"context": "Đoạn đánh giá số 3 nói về Hà Nội.", "question": "Nói về đâu?", "answerable": True, "answer": "Hà Nội", "start": 25}],
        "train/mailong25_person_qa.jsonl.gz": [{"context": ok, "question": "Ai là vợ ông Lâm?", "answerable": False}],
        "train/zalo2019_part.jsonl.gz": [
            {"context": "Hà Nội là thủ đô , có sông Hồng .", "question": "Thủ đô là gì", "answerable": True},
            {"context": "Huế có sông Hương .", "question": "Thủ đô là gì", "answerable": False}],
        "train/squad2_vi_mt_unanswerable.jsonl.gz": [{"context": ok, "question": "Ai không là giám đốc?", "answerable": False}],
    })
    items, counts = reader_data.examples(tmp_path, ("viquad1", "mailong25", "zalo", "squad2mt"))
    kinds = {(e.question, e.kind) for e in items}
    assert kinds == {("Ai là giám đốc sở?", "answer"), ("Ai là vợ ông Lâm?", "unanswerable"),
                     ("Thủ đô là gì", "answer-nospan"), ("Thủ đô là gì", "not-answering"),
                     ("Ai không là giám đốc?", "unanswerable")}
    assert counts["viquad1: excluded (training_exclude.sha256)"] == 2
    assert counts["viquad1: passage or question in an evaluation slice"] == 1
    assert "Hà Nội là thủ đô, có sông Hồng." in {e.context for e in items}  # Zalo's spaced punctuation joined


def test_a_capped_source_keeps_a_seeded_sample(tmp_path, monkeypatch):
    _qa_dir(tmp_path, "x", "y")
    _pack(tmp_path, {"train/squad2_vi_mt_unanswerable.jsonl.gz": [
        {"context": f"Câu {i}: Lyon không là thủ đô.", "question": f"Lyon là gì? ({i})", "answerable": False}
        for i in range(10)]})
    monkeypatch.setitem(reader_data.CAPS, "squad2mt", 4)
    items, counts = reader_data.examples(tmp_path, ("squad2mt",))
    again, _ = reader_data.examples(tmp_path, ("squad2mt",))
    assert len(items) == 4 and counts["squad2mt: left out (CAPS)"] == 6
    assert [e.question for e in items] == [e.question for e in again]


def test_permissive_data_has_no_research_only_source(tmp_path):
    _qa_dir(tmp_path, "x", "y")
    _pack(tmp_path, {"train/squad2_vi_mt_unanswerable.jsonl.gz": [
        {"context": "Paris là thủ đô của Pháp.", "question": "Paris không là thủ đô của nước nào?", "answerable": False}]})
    items, _ = reader_data.examples(tmp_path, reader_data.PERMISSIVE)
    assert items and {e.source for e in items} == {"xquad", "squad2mt"}
    assert all("CC BY-SA" in reader_data.SOURCES[s][1] for s in reader_data.PERMISSIVE)


@pytest.mark.parametrize("content", [b"hello world\nfoo bar\n", b"# only a comment\n", b"\x89PNG\r\n\x1a\n\x00\x00\xff",
                                     b"context " + b"a" * 63 + b"\n"])
def test_an_exclusion_list_without_real_hashes_is_refused(tmp_path, content):
    """A list of anything but `KIND <64 hex>` lines would let the held-out items through: refused, not read."""
    _qa_dir(tmp_path, "x", "y")
    (tmp_path / "training_exclude.sha256").write_bytes(content)
    with pytest.raises(Exception, match="exclusion"):
        reader_data.examples(tmp_path, ("viquad",))


def test_prepare_refuses_without_the_exclusion_list(tmp_path):
    _qa_dir(tmp_path, "x", "y")
    (tmp_path / "training_exclude.sha256").unlink()
    with pytest.raises(Exception, match="exclusion list"):
        reader_data.examples(tmp_path, ("viquad",))


def test_best_span_stays_inside_the_passage_and_in_order():
    start = np.array([9.0, 0.0, 1.0, 5.0, 0.0])
    end = np.array([9.0, 0.0, 0.0, 1.0, 4.0])
    offsets = [(-1, -1), (0, 3), (4, 7), (8, 11), (12, 15)]  # token 0 is outside (the question's side)
    assert best_span(start, end, offsets) == (3, 4, 9.0)
    assert best_span(start, end, [(-1, -1)] * 5) is None


def test_span_widened_to_whole_words_and_stripped():
    text = "Ông Lâm Đình Thắng, Giám đốc."
    a = text.index("âm")
    b = text.index(",") + 1
    assert text[slice(*_word_bounds(text, a, b))] == "Lâm Đình Thắng"
    # a token's offsets start at the space before it ("▁Ch"): the word before is not taken in
    text = "như Ford và Chivas là"
    assert text[slice(*_word_bounds(text, text.index(" Ch"), text.index(" là")))] == "Chivas"


# ------------------------------------------------------------------ a tiny network, trained for real

def _tiny():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import Gemma3TextConfig, Gemma3TextModel, PreTrainedTokenizerFast

    words = "<pad> <eos> <bos> <unk> ai là giám đốc ông lâm bà lan thủ đô hà nội việt nam của ? . , gì nào".split()
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    tok.normalizer = __import__("tokenizers").normalizers.Lowercase()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")
    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=128,
                              sliding_window=64, use_bidirectional_attention=True,
                              layer_types=["sliding_attention", "sliding_attention", "full_attention"])
    return Gemma3TextModel(config), fast


def test_windows_cover_the_passage_with_its_offsets():
    _, tok = _tiny()
    passage = " ".join(["hà nội"] * 30)
    ws = windows(tok, "thủ đô của việt nam là gì ?", [passage], ReaderConfig(max_len=24, stride=6))
    assert len(ws) > 1
    covered = {o for w in ws for o in w.offsets if o[0] >= 0}
    assert len(covered) == len(tok(passage, add_special_tokens=False)["input_ids"])
    for w in ws:
        assert w.ids[0] == tok.bos_token_id and len(w.ids) <= 24
        assert all(passage[a:b] in ("hà", "nội") for a, b in w.offsets if a >= 0)


def test_training_learns_the_span_and_the_weights_round_trip(tmp_path):
    from rag.train import reader_train
    from rag.answer.reader import Reader, build_model, load_trained

    encoder, tok = _tiny()
    config = ReaderConfig(depth=3, frozen=1, rank=4, max_len=40, stride=8)
    model = build_model(encoder, config)
    items = []
    for i in range(24):  # the answer is always the name after "ông", or there is none
        ctx = "bà lan là giám đốc , ông lâm là thủ đô ." if i % 2 else "ông lâm là giám đốc của hà nội ."
        items.append(reader_data.Example(str(i), "t", "ai là giám đốc ?", ctx, "lâm" if i % 2 == 0 else "lan",
                                         ctx.index("lâm") if i % 2 == 0 else ctx.index("lan"), "answer", "train"))
        if i % 3 == 0:
            items.append(reader_data.Example(f"{i}n", "t", "ai là giám đốc ?", "hà nội là thủ đô của việt nam .", "", -1, "negative", "train"))
    data = reader_train.encode(tok, items, config)
    assert {d.start > 0 for d in data} == {True, False}
    history = reader_train.train(model, data, config, tmp_path, pad_id=tok.pad_token_id, epochs=25, batch=8, lr=3e-2,
                                 progress=False, log=lambda m: None, checkpoint_every=20)
    assert history[-1]["loss"] < history[0]["loss"] / 2
    preds = reader_train.predict(model, data, items, config, pad_id=tok.pad_token_id)
    right = sum(p[0] == e.answer for p, e in zip(preds, items) if e.answer)
    assert right >= 0.8 * sum(1 for e in items if e.answer)
    negatives = [p[1] for p, e in zip(preds, items) if not e.answer]
    answered = [p[1] for p, e in zip(preds, items) if e.answer]
    assert np.mean(negatives) > np.mean(answered)

    reader_train.save(model, config, tmp_path / "w", {"test": True})
    assert json.loads((tmp_path / "w" / "config.json").read_text())["depth"] == 3
    (tmp_path / "probe").touch()  # the mode any new file gets here (umask), not mkstemp's owner-only 0600
    for name in ("reader.safetensors", "config.json", "provenance.json"):
        assert (tmp_path / "w" / name).stat().st_mode == (tmp_path / "probe").stat().st_mode
    assert not list((tmp_path / "w").glob(".*"))  # no temporary file left behind
    fresh = build_model(_tiny()[0], config).eval()
    load_trained(fresh, tmp_path / "w")
    reading = Reader(fresh, tok, config).read("ai là giám đốc ?", ["ông lâm là giám đốc của hà nội ."])[0]
    assert reading.span is not None and reading.span.text == "lâm"


def test_a_killed_run_resumes_where_its_checkpoint_was(tmp_path):
    """Killed after its first checkpoint, a run resumes there and ends with the weights of an unbroken run."""
    from rag.train import reader_train
    from rag.answer.reader import build_model

    encoder, tok = _tiny()
    config = ReaderConfig(depth=3, frozen=1, rank=4, max_len=40, stride=8)
    items = [reader_data.Example(str(i), "t", "ai là giám đốc ?", "ông lâm là giám đốc .", "lâm", 4, "answer", "train")
             for i in range(16)]
    items.append(reader_data.Example("z", "t", "thủ đô là gì ?", "hà nội là thủ đô .", "", -1, "answer-nospan", "train"))
    data = reader_train.encode(tok, items, config)
    assert [(d.start, d.has) for d in data if d.example == 16] == [(-100, 1.0)]  # answerability only
    kw = dict(pad_id=tok.pad_token_id, epochs=2, batch=4, lr=1e-2, progress=False, log=lambda m: None, checkpoint_every=3)

    def weights(model):
        return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}

    torch.manual_seed(1)
    whole = build_model(_tiny()[0], config)
    reader_train.train(whole, data, config, tmp_path / "a", **kw)
    torch.manual_seed(1)
    killed = build_model(_tiny()[0], config)
    (tmp_path / "b").mkdir()
    calls = {"n": 0}

    class Killed(Exception):
        pass

    def die_at_step_5(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise Killed
        return real(*a, **k)

    real = reader_train._batch
    reader_train._batch = die_at_step_5
    try:
        with pytest.raises(Killed):
            reader_train.train(killed, data, config, tmp_path / "b", **kw)
    finally:
        reader_train._batch = real
    torch.manual_seed(1)
    resumed = build_model(_tiny()[0], config)
    logs = []
    reader_train.train(resumed, data, config, tmp_path / "b", **(kw | {"log": logs.append}))
    assert logs[0].startswith("resumed at step 3 of")
    for k, v in weights(whole).items():
        assert torch.allclose(v, weights(resumed)[k], atol=1e-5), k


def test_weights_that_do_not_fit_are_refused(tmp_path):
    from rag.train import reader_train
    from rag.answer.reader import build_model, load_trained

    reader_train.save(build_model(_tiny()[0], ReaderConfig(depth=3, frozen=1, rank=4)), ReaderConfig(depth=3, frozen=1, rank=4), tmp_path, {})
    with pytest.raises(Exception, match="do not fit"):
        load_trained(build_model(_tiny()[0], ReaderConfig(depth=3, frozen=2, rank=4)), tmp_path)


# ------------------------------------------------------------------ a hand-edited or damaged reader folder

@pytest.mark.parametrize("change, says", [
    ({"max_len": -1}, "max_len"), ({"stride": 400}, "stride"), ({"threshold": 5}, "threshold"),
    ({"depth": -3}, "depth"), ({"rank": 0}, "rank"), ({"stride": "x"}, "stride"), ({"frozen": 14}, "frozen"),
    ({"alone": 0.9}, "alone"), ({"base": ""}, "base"),
])
def test_a_reader_config_out_of_range_is_refused_at_load(tmp_path, change, says):
    """Each of these once loaded: stride 400 and max_len -1 looped forever, threshold 5 never refused."""
    from rag.errors import ModelVerificationError

    good = {"base": "embeddinggemma-300m", "depth": 14, "frozen": 6, "rank": 32, "alpha": 32.0, "max_len": 320,
            "stride": 128, "threshold": 0.85}
    assert ReaderConfig.load(_write(tmp_path, good)) == ReaderConfig(**good)
    with pytest.raises(ModelVerificationError, match=says):
        ReaderConfig.load(_write(tmp_path, good | change))


def _write(folder, config):
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", ""])
def test_a_corrupt_reader_config_is_one_clear_error(tmp_path, content):
    from rag.errors import ModelVerificationError

    (tmp_path / "config.json").write_text(content, encoding="utf-8")
    with pytest.raises(ModelVerificationError, match="not a usable reader config"):
        ReaderConfig.load(tmp_path)


def test_truncated_reader_weights_are_one_clear_error(tmp_path):
    from rag.train import reader_train
    from rag.errors import ModelVerificationError
    from rag.answer.reader import build_model, load_trained

    config = ReaderConfig(depth=3, frozen=1, rank=4)
    reader_train.save(build_model(_tiny()[0], config), config, tmp_path, {})
    weights = tmp_path / "reader.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelVerificationError, match="not readable reader weights"):
        load_trained(build_model(_tiny()[0], config), tmp_path)


def test_a_question_that_fills_the_window_is_refused_not_looped_on():
    _, tok = _tiny()
    with pytest.raises(Exception, match="no room left"):
        windows(tok, " ".join(["ai"] * 30), ["hà nội"], ReaderConfig(max_len=24, stride=6))


# ------------------------------------------------------------------ rag reader eval --csv: the file before the model

@pytest.mark.parametrize("rows, fields, says", [
    ([], ("question", "context", "answer"), "no rows"),
    ([{"question": "Ai?", "context": "Lan."}], ("question", "context"), "missing column"),
    ([{"question": "", "context": "", "answer": "", "is_impossible": "maybe"}], ("question", "context", "answer", "is_impossible"), "is_impossible"),
    ([{"question": "Ai?", "context": "", "answer": "Lan"}], ("question", "context", "answer"), "empty context"),
    ([{"question": "Ai?", "context": "Lan.", "answer": ""}], ("question", "context", "answer"), "empty answer"),
])
def test_reader_eval_refuses_a_csv_it_cannot_score_before_loading_anything(tmp_path, monkeypatch, capsys, rows, fields, says):
    from rag import cli
    from rag.answer import reader

    def no_model(*a, **k):
        raise AssertionError("the model was loaded before the CSV was read")

    monkeypatch.setattr(reader, "load_reader", no_model)
    _write_csv(tmp_path / "q.csv", rows, fields=fields)
    assert cli.main(["reader", "eval", "--csv", str(tmp_path / "q.csv")]) == 1
    err = capsys.readouterr().err
    assert says in err and "a bug" not in err


def test_a_threshold_chosen_by_numpy_is_a_valid_config(tmp_path):
    """choose_threshold's value goes into ReaderConfig and config.json: a numpy float once failed the range check
    after an hour of training, before the weights were saved."""
    from rag.train import reader_train

    threshold, _ = reader_train.choose_threshold([("x", 0.2), ("", 0.9)], [
        reader_data.Example("a", "t", "q", "x y", "x", 0, "answer", "valid"),
        reader_data.Example("b", "t", "q", "x y", "", -1, "unanswerable", "valid")])
    assert type(threshold) is float
    config = ReaderConfig(threshold=np.float64(0.3))
    assert config.threshold == 0.3


def test_what_answers_are_worth_weighs_a_wrong_answer_above_a_refusal():
    """Two right answers at no-answer 0.4, three tempting unanswerable ones answered at 0.3-0.35: answering all
    five is worth less than answering none of them (2 - 2 x 3 < 0)."""
    from rag.train import reader_train

    ex = lambda i, answer, kind: reader_data.Example(str(i), "t", "q", "x y", answer, 0 if answer else -1, kind, "valid")  # noqa: E731
    items = [ex(0, "x", "answer"), ex(1, "x", "answer"), ex(2, "", "unanswerable"), ex(3, "", "negative"),
             ex(4, "", "not-answering"), ex(5, "x", "answer-nospan")] + [ex(6 + i, "x", "answer") for i in range(3)]
    preds = [("x", 0.4), ("x", 0.4), ("y", 0.3), ("y", 0.35), ("y", 0.3), ("x", 0.1)] + [("x", 0.1)] * 3
    assert reader_train.harm(preds, items, 0.2) == {"right": 3, "wrong": 0, "value": 3}
    assert reader_train.harm(preds, items, 0.45) == {"right": 5, "wrong": 3, "value": -1}
    _, scores = reader_train.choose_threshold(preds, items)
    assert set(scores["harm"]) == {"right", "wrong", "value"}
