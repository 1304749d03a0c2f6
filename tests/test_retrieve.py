"""Tokenisation, chunking and the three retrievers on a tiny index built with the fake embedder."""
from __future__ import annotations

import pytest

from rag import text
from rag.index import chunking, build as index
from rag.answer.retrieve import Filters, Retriever, _minmax
from rag.types import Article


def test_syllables_lowercase_keep_diacritics_drop_punctuation():
    assert text.syllables("Giá VÀNG tăng, 1.500 đồng!") == ["giá", "vàng", "tăng", "1", "500", "đồng"]
    # NFD input (decomposed accents) tokenises like NFC
    import unicodedata

    assert text.syllables(unicodedata.normalize("NFD", "Đột phá")) == ["đột", "phá"]


def test_pyvi_joins_words():
    assert "thành_phố" in text.words("Thành phố Hồ Chí Minh phát triển")


def test_split_sentences_respects_abbreviations():
    s = "Ông Thắng phát biểu tại TP. Hồ Chí Minh. Giá tăng 1.500 đồng. Năm 2023 đứng Top1!\nDòng mới"
    parts = [s[a:b] for a, b in text.split_sentences(s)]
    assert parts == ["Ông Thắng phát biểu tại TP. Hồ Chí Minh.", "Giá tăng 1.500 đồng.", "Năm 2023 đứng Top1!", "Dòng mới"]


def test_fold_diacritics():
    assert text.fold_diacritics("Đột phá Lâm Đình Thắng") == "Dot pha Lam Dinh Thang"


def test_chunks_respect_sentences_and_offsets():
    body = " ".join(f"Câu số {i} nói về chủ đề thứ {i}." for i in range(40))
    a = Article(id="a", title="T", text=body)
    chunks = chunking.split(a, chunk_size=200, chunk_overlap=30)
    assert len(chunks) > 3
    for c in chunks:
        assert len(c.text) <= 200
        assert c.text.endswith(".")  # cut at a sentence end, not mid-word
        assert body[c.start : c.end] == c.text
        assert c.title == "T" and c.id == f"a#{c.position}"


@pytest.fixture
def retriever(settings, articles, fake_embedder):
    index.update(settings, articles, fake_embedder, progress=False, log=lambda m: None)
    return Retriever(index.load(settings, expected_embedder=fake_embedder.name), fake_embedder, settings)


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_each_retriever_finds_the_right_article(retriever, mode):
    hits = retriever.search("đội tuyển thắng Thái Lan", k=3, retriever=mode)
    assert hits[0].chunk.article_id == "bongda"
    assert hits[0].ranks[mode if mode != "hybrid" else "bm25"] == 1
    assert hits == sorted(hits, key=lambda h: -h.score)


def test_hybrid_reports_both_ranks(retriever):
    h = retriever.search("mưa ngập Huế", k=2, retriever="hybrid")[0]
    assert h.chunk.article_id == "mua"
    assert set(h.ranks) == {"bm25", "dense"} and h.ranks["bm25"] == 1
    d = h.to_dict()
    assert d["title"] == "Mưa lớn ở miền Trung" and d["date"] == "2025-10-15" and "bm25" in d["scores"]


def test_unknown_words_give_no_bm25_hits(retriever):
    assert retriever.search("xyzzy qwerty", retriever="bm25") == []


def test_filters(retriever):
    f = Filters.from_dict({"source": "Báo A"})
    ids = {h.chunk.article_id for h in retriever.search("giá vàng mưa bóng đá", k=10, filters=f)}
    assert ids and ids <= {"vang", "mua"}
    f = Filters.from_dict({"date_from": "2025-11-01", "date_to": "2025-11-30"})
    assert {h.chunk.article_id for h in retriever.search("giá vàng mưa", k=10, filters=f)} == {"vang"}
    with pytest.raises(ValueError, match="unknown filter"):
        Filters.from_dict({"author": "x"})


def test_unknown_retriever(retriever):
    with pytest.raises(ValueError, match="RAG_RETRIEVER=magic: expected one of hybrid, bm25, dense"):
        retriever.search("x", retriever="magic")


def test_minmax_fusion_arithmetic():
    assert _minmax([(0, 10.0), (1, 5.0), (2, 0.0)]) == {0: 1.0, 1: 0.5, 2: 0.0}
    assert _minmax([(3, 2.0)]) == {3: 1.0}


def test_rrf_fusion(retriever):
    retriever.settings = retriever.settings.replace(fusion="rrf")
    h = retriever.search("mưa ngập Huế", k=2, retriever="hybrid")[0]
    assert h.chunk.article_id == "mua"
    assert h.score == pytest.approx(2 / 61)  # rank 1 in both lists
