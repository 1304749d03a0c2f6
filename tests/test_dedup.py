"""Near-duplicate stories: detected across sources and headlines, stored once, every source cited."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.ingest import dedup
from rag.index import build as index
from rag.ingest.corpus import load_corpus
from rag.answer.pipeline import Pipeline
from rag.types import Article
from tests.conftest import Scripted

STORY = (
    "Ngày 3/8, Cục Giám định Nhà nước về chất lượng công trình xây dựng (Bộ Xây dựng) vừa có báo cáo "
    "kết quả giám định nguyên nhân sự cố sập tường tại công trình xây dựng nhà xưởng ở tỉnh Vĩnh Long.\n"
    "Theo báo cáo, bức tường cao hơn 7 m được xây bằng gạch không nung, không có giằng tường và trụ "
    "bê tông cốt thép theo thiết kế, nên khi mưa lớn kéo dài tường đã đổ sập đè lên lán trại của công nhân.\n"
    "Vụ sập tường khiến 7 người chết và 3 người bị thương. Nhà thầu thi công không có hồ sơ năng lực, "
    "chủ đầu tư không giám sát chặt chẽ quá trình thi công và không báo cáo chính quyền địa phương.\n"
    "Cục Giám định kiến nghị UBND tỉnh Vĩnh Long chỉ đạo cơ quan công an điều tra, xử lý trách nhiệm "
    "của các tổ chức, cá nhân liên quan theo quy định của pháp luật."
)
# the same wire story elsewhere: another headline, its lead trimmed, a few words changed, a credit added
SYNDICATED = (
    STORY.split("\n", 1)[1]
    .replace("đổ sập", "sập xuống")
    .replace("chặt chẽ", "kỹ")
    + "\nTheo TTXVN"
)
SAME_TOPIC = (
    "Chiều 4/8, UBND tỉnh Vĩnh Long tổ chức lễ viếng các nạn nhân tử vong trong vụ sập tường ở công trình "
    "nhà xưởng. Lãnh đạo tỉnh đã trao tiền hỗ trợ 50 triệu đồng cho mỗi gia đình có người chết.\n"
    "Công an tỉnh Vĩnh Long cho biết đang lấy lời khai của chủ đầu tư và nhà thầu thi công công trình, "
    "đồng thời trưng cầu giám định để làm rõ nguyên nhân vụ việc."
)


def md(path: Path, body: str, **front) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("---\n" + "".join(f"{k}: {v}\n" for k, v in front.items()) + "---\n" + body + "\n", encoding="utf-8")


def test_shingle_similarity_separates_a_rewrite_from_a_same_topic_story():
    assert dedup.jaccard(STORY, STORY) == 1.0
    assert dedup.jaccard(STORY, SYNDICATED) >= 0.5
    assert dedup.jaccard(STORY, SAME_TOPIC) < 0.1
    est = dedup.signature(STORY).jaccard(dedup.signature(SYNDICATED))
    assert abs(est - dedup.jaccard(STORY, SYNDICATED)) < 0.15  # MinHash estimates it


def test_finder_returns_the_kept_key_and_remembers_only_originals():
    finder = dedup.NearDuplicates(0.5)
    assert finder.find("a", STORY) is None
    assert finder.find("b", SAME_TOPIC) is None
    assert finder.find("c", SYNDICATED) == "a"
    assert finder.find("d", SYNDICATED) == "a"  # "c" was not remembered: copies point at the original
    with pytest.raises(ValueError, match="threshold"):
        dedup.NearDuplicates(0)


def _syndicated_corpus(folder: Path) -> None:
    md(folder / "a-tuoitre.md", STORY, id="tt-sap-tuong", title="Nhiều sai phạm trong vụ sập tường ở Vĩnh Long",
       date="2025-08-03", source="Tuổi Trẻ", url="https://tuoitre.vn/sap-tuong")
    md(folder / "b-ndt.md", SYNDICATED, id="ndt-sap-tuong", title="Công bố nguyên nhân vụ sập tường khiến 7 người chết",
       date="2025-08-04", source="Người Đưa Tin", url="https://nguoiduatin.vn/sap-tuong")
    md(folder / "c-vnexpress.md", STORY, id="vne-sap-tuong", title="Sập tường ở Vĩnh Long - báo cáo giám định",
       date="2025-08-03", source="VnExpress", url="https://vnexpress.net/sap-tuong")  # verbatim copy
    md(folder / "d-other.md", SAME_TOPIC, id="vl-vieng", title="Viếng nạn nhân vụ sập tường", date="2025-08-04",
       source="Tuổi Trẻ")


def test_corpus_keeps_a_syndicated_story_once_with_every_source(tmp_path):
    _syndicated_corpus(tmp_path)
    r = load_corpus(tmp_path, near_duplicates=0.5)
    assert [a.id for a in r.articles] == ["tt-sap-tuong", "vl-vieng"]
    assert r.near_duplicates == [(str(tmp_path / "b-ndt.md"), "tt-sap-tuong")]
    assert r.duplicates == [(str(tmp_path / "c-vnexpress.md"), "tt-sap-tuong")]
    kept = r.articles[0]
    assert [(s["source"], s["url"], s["date"]) for s in kept.appearances()] == [
        ("Tuổi Trẻ", "https://tuoitre.vn/sap-tuong", "2025-08-03"),
        ("Người Đưa Tin", "https://nguoiduatin.vn/sap-tuong", "2025-08-04"),
        ("VnExpress", "https://vnexpress.net/sap-tuong", "2025-08-03"),
    ]
    assert kept.also[0]["title"] == "Công bố nguyên nhân vụ sập tường khiến 7 người chết"
    # off by default (callers pass settings.dedup_threshold): the rewrite stays a separate article
    assert len(load_corpus(tmp_path).articles) == 3


def test_a_new_source_for_a_kept_story_changes_its_hash_so_the_index_republishes_it():
    a = Article(id="x", title="T", text="Một hai ba.")
    assert a.content_hash == Article(id="x", title="T", text="Một hai ba.", also=[]).content_hash
    assert a.content_hash != Article(id="x", title="T", text="Một hai ba.", also=[{"source": "B"}]).content_hash


def test_citations_and_json_list_every_source(settings, fake_embedder):
    _syndicated_corpus(settings.corpus_dir)
    articles = load_corpus(settings.corpus_dir, settings.dedup_threshold).articles
    index.update(settings, articles, fake_embedder, progress=False, log=lambda m: None)
    gen = Scripted("Vụ sập tường ở Vĩnh Long khiến 7 người chết [1].")
    pipe = Pipeline(settings, embedder=fake_embedder, generator=gen)
    hit = next(h.to_dict() for h in pipe.search("sập tường Vĩnh Long 7 người chết") if h.chunk.article_id == "tt-sap-tuong")
    assert [s["source"] for s in hit["also"]] == ["Người Đưa Tin", "VnExpress"]
    answer = pipe.ask("Vụ sập tường ở Vĩnh Long khiến bao nhiêu người chết?")
    assert not answer.abstained
    [c] = answer.citations
    assert c.source == "Tuổi Trẻ"
    assert {s["url"] for s in c.also} == {"https://nguoiduatin.vn/sap-tuong", "https://vnexpress.net/sap-tuong"}
    assert json.loads(json.dumps(answer.to_dict()))["citations"][0]["also"] == c.also


def test_templated_stories_with_other_figures_are_not_duplicates():
    """Lottery results of two days share their wording; the figures are the news."""
    template = ("Kết quả xổ số Vietlott kỳ quay số ngày {d} cho thấy bộ số may mắn là {nums}. Căn cứ kết quả quay số, "
                "Vietlott chưa xác định được người trúng giải jackpot trị giá hơn {j} tỷ đồng. Thứ tự các cặp số của "
                "vé số trúng thưởng không cần phải đúng theo dãy số trên. Cũng tại kỳ quay số này, Vietlott xác định "
                "có nhiều người trúng giải nhất, giải nhì và giải ba của loại hình Mega 6/45.")
    a = template.format(d="8/6/2018", nums="04 - 13 - 32 - 35 - 40 - 42", j="23")
    b = template.format(d="6/6/2018", nums="06 - 20 - 22 - 26 - 43 - 44", j="21")
    assert dedup.jaccard(a, b) >= 0.6
    finder = dedup.NearDuplicates(0.5)
    assert finder.find("a", a) is None and finder.find("b", b) is None
    unchecked = dedup.NearDuplicates(0.5, check_numbers=False)
    unchecked.find("a", a)
    assert unchecked.find("b", b) == "a"
    assert dedup.numbers_agree(dedup.numbers("Ngày 3/8"), dedup.numbers("7 người chết"))  # too few to compare


def test_a_headline_with_another_key_number_is_another_story():
    """Exam answer pages for two exam codes: the same text, the code only in the headline."""
    body = STORY.split("\n", 1)[1]
    finder = dedup.NearDuplicates(0.5)
    assert finder.find("a", body, "Đáp án đề thi môn Vật lý mã đề 207") is None
    assert finder.find("b", body + " Cập nhật.", "Đáp án đề thi môn Vật lý mã đề 210") is None
    assert finder.find("c", body + " Cập nhật.", "Đáp án môn Vật lý, mã đề 207 (mới)") == "a"



def test_signatures_are_cached_between_loads(tmp_path, settings, monkeypatch):
    _syndicated_corpus(tmp_path / "c")
    cache = dedup.open_cache(settings)
    first = load_corpus(tmp_path / "c", 0.5, cache)
    signed = []
    real = dedup.signature
    monkeypatch.setattr(dedup, "signature", lambda text, k=dedup.SHINGLE, hashvalues=None: (
        signed.append(hashvalues is None), real(text, k, hashvalues))[1])
    again = load_corpus(tmp_path / "c", 0.5, cache)
    assert signed and not any(signed)  # every signature came from the cache
    assert [(a.id, a.also) for a in again.articles] == [(a.id, a.also) for a in first.articles]
    assert again.near_duplicates == first.near_duplicates
