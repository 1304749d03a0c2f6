"""Time in questions (rag.answer.dates): phrases resolved against a reference date, turned into date filters or
orderings, used by retrieval and reported on the Answer; dates and sources in filters and JSON."""
from __future__ import annotations

import dataclasses

import pytest

from conftest import Scripted
from rag.answer import dates
from rag.index import build as index
from rag.errors import InvalidSetting
from rag.answer.pipeline import Pipeline
from rag.answer.retrieve import Filters
from rag.types import Article

TODAY = "2025-12-03"  # a Wednesday


@pytest.mark.parametrize("question, kind, since, until", [
    ("Tin tức hôm nay có gì?", "filter", "2025-12-03", "2025-12-03"),
    ("Hôm qua Hà Nội có mưa không?", "filter", "2025-12-02", "2025-12-02"),
    ("What happened yesterday?", "filter", "2025-12-02", "2025-12-02"),
    ("Tuần này giá vàng thế nào?", "filter", "2025-12-01", "2025-12-07"),
    ("Tuần trước có sự kiện gì?", "filter", "2025-11-24", "2025-11-30"),
    ("news from last week", "filter", "2025-11-24", "2025-11-30"),
    ("Tuần qua có gì mới?", "filter", "2025-11-27", "2025-12-03"),
    ("Tháng này có bao nhiêu vụ?", "filter", "2025-12-01", "2025-12-31"),
    ("Tháng trước xuất khẩu tăng bao nhiêu?", "filter", "2025-11-01", "2025-11-30"),
    ("this month", "filter", "2025-12-01", "2025-12-31"),
    ("Năm nay GDP tăng bao nhiêu?", "filter", "2025-01-01", "2025-12-31"),
    ("Năm ngoái có mấy cơn bão?", "filter", "2024-01-01", "2024-12-31"),
    ("Ba ngày qua có tin gì?", "filter", "2025-12-01", "2025-12-03"),
    ("Hai tuần trước ai đã phát biểu?", "filter", "2025-11-17", "2025-11-23"),
    ("Tin mới nhất về bão số 15?", "recent", None, None),
    ("Gần đây giá xăng thế nào?", "recent", None, None),
    ("What is the latest on the flood?", "recent", None, None),
    ("Ai phát biểu khai mạc hội nghị ngày 27/11?", "prefer", "2025-11-27", "2025-11-27"),
    ("Chuyện gì xảy ra ngày 31/12?", "prefer", "2024-12-31", "2024-12-31"),  # no year: the latest not after today
    ("Giá dầu ngày 27/11/2025 thế nào?", "prefer", "2025-11-27", "2025-11-27"),
])
def test_phrases_resolve_against_the_reference_date(question, kind, since, until):
    p = dates.resolve(question, TODAY)
    assert (p.kind, p.since, p.until) == (kind, since, until)


@pytest.mark.parametrize("question", [
    "Bình Dương đứng Top1 Smart 21 năm 2023 đúng không?",  # a year named as history: no filter
    "Việt Nam thắng Thái Lan 2-1 ở đâu?",
    "Ngày 30/2 có gì?",  # not a date
    "Ai là giám đốc sở?",
    "Giáo trình đã 7 năm rồi thì có cần tái bản không?",  # a duration (ViRHE4QA), not "last year"
])
def test_questions_without_a_period_resolve_to_none(question):
    assert dates.resolve(question, TODAY) is None


def test_notes_and_filter_ranges():
    last_week = dates.resolve("tuần trước", TODAY)
    assert last_week.note() == "(Khoảng thời gian: 24/11–30/11/2025)"
    assert last_week.note("en") == "(Period: 24/11–30/11/2025)"
    assert last_week.filter_range() == ("2025-11-24", "2025-11-30")  # not this Monday's news
    assert dates.resolve("hôm qua", TODAY).filter_range() == ("2025-12-02", "2025-12-03")  # reported next morning
    assert dates.resolve("năm ngoái", "2026-01-02").note() == "(Khoảng thời gian: 01/01–31/12/2025)"
    assert dates.format_range("2025-12-29", "2026-01-04") == "29/12/2025–04/01/2026"
    day = dates.resolve("ngày 27/11", TODAY)
    assert day.note() == "(Ưu tiên bài đăng quanh ngày 27/11/2025)" and day.prefer_range() == ("2025-11-26", "2025-11-30")
    assert dates.resolve("mới nhất", TODAY).note("en") == "(Newest articles first)"


def test_reference_date_defaults_to_today_and_rejects_a_bad_setting():
    import datetime as dt

    assert dates.reference_date("") == dt.date.today()
    with pytest.raises(InvalidSetting, match="RAG_TODAY=03/12/2025.*YYYY-MM-DD"):
        dates.resolve("hôm qua", "03/12/2025")


def test_apply_merges_with_the_callers_filters_and_explicit_dates_win():
    p = dates.resolve("tuần trước", TODAY)
    assert dates.apply(None, None) is None
    f = dates.apply({"source": "Báo A"}, p)
    assert (f.source, f.date_from, f.date_to, f.recent) == ("Báo A", "2025-11-24", "2025-11-30", False)
    f = dates.apply(Filters(date_from="2025-01-01", date_to="2025-01-31"), p)
    assert (f.date_from, f.date_to) == ("2025-01-01", "2025-01-31")
    assert dates.apply(None, dates.resolve("mới nhất", TODAY)).recent
    with pytest.raises(ValueError, match="date_from='last week'"):
        Filters.from_dict({"date_from": "last week"})


# ------------------------------------------------------------------ retrieval and the pipeline

STORM = "Bão số {n} đổ bộ vào miền Trung, gây mưa lớn và ngập lụt ở nhiều tỉnh; hàng nghìn hộ dân phải sơ tán."


@pytest.fixture
def storm_settings(settings, fake_embedder):
    """Three storm reports on different days and sources, one of them syndicated, and an unrelated article."""
    arts = [
        Article(id="bao-13", title="Bão số 13 đổ bộ", date="2025-11-06", source="Báo A", text=STORM.format(n=13)),
        Article(id="bao-14", title="Bão số 14 đổ bộ", date="2025-11-25", source="Báo B", text=STORM.format(n=14),
                also=[{"id": "bao-14-c", "title": "Bão số 14", "source": "Báo C", "date": "2025-11-26"}]),
        Article(id="bao-15", title="Bão số 15 đổ bộ", date="2025-12-02", source="Báo A", text=STORM.format(n=15)),
        Article(id="vang", title="Giá vàng tăng", date="2025-12-03", source="Báo B", text="Giá vàng miếng tăng 1 triệu đồng."),
    ]
    settings = dataclasses.replace(settings, today=TODAY)
    index.update(settings, arts, fake_embedder, progress=False, log=lambda m: None)
    return settings


def _ids(hits):
    return list(dict.fromkeys(h.chunk.article_id for h in hits))


def test_retrieval_filters_by_any_appearance_and_orders_by_date(storm_settings, fake_embedder):
    p = Pipeline(storm_settings, embedder=fake_embedder, generator=Scripted())
    q = "bão đổ bộ miền Trung gây mưa lớn"
    assert _ids(p.search(q, filters={"source": "Báo C"})) == ["bao-14"]  # syndicated there
    assert set(_ids(p.search(q, filters={"source": ["báo a", "Báo C"]}))) == {"bao-13", "bao-14", "bao-15"}
    assert _ids(p.search(q, filters={"date_from": "2025-11-26", "date_to": "2025-11-30"})) == ["bao-14"]
    assert _ids(p.search(q, filters={"recent": True}))[:3] == ["bao-15", "bao-14", "bao-13"]
    assert _ids(p.search(q, filters={"prefer_from": "2025-11-01", "prefer_to": "2025-11-10"}))[0] == "bao-13"
    assert "vang" not in _ids(p.search(q, filters={"recent": True}))[:3]  # newest, but not about storms


def test_ask_uses_the_period_and_reports_it(storm_settings, fake_embedder):
    gen = Scripted("Bão số 14 đổ bộ vào miền Trung [1].")
    p = Pipeline(storm_settings, embedder=fake_embedder, generator=gen)
    a = p.ask("Tuần trước bão nào đổ bộ vào miền Trung?")
    assert not a.abstained and [c.article_id for c in a.citations] == ["bao-14"]
    assert "Bão số 13" not in str(gen.prompts[0]) and "Bão số 15" not in str(gen.prompts[0])  # filtered out
    assert a.period == {"kind": "filter", "phrase": "Tuần trước", "since": "2025-11-24", "until": "2025-11-30",
                        "note": "(Khoảng thời gian: 24/11–30/11/2025)"}
    assert a.to_dict()["period"]["since"] == "2025-11-24"
    assert "Tuần trước bão nào" in gen.prompts[0][-1]["content"]  # the model sees the question as asked
    assert p.ask("Bão nào đổ bộ vào miền Trung?").period is None


def test_latest_question_ranks_the_newest_article_first(storm_settings, fake_embedder):
    gen = Scripted("Bão số 15 đổ bộ vào miền Trung [1].")
    p = Pipeline(storm_settings, embedder=fake_embedder, generator=gen)
    a = p.ask("Tin mới nhất về bão đổ bộ miền Trung?")
    assert a.period["kind"] == "recent" and a.citations[0].article_id == "bao-15"
    first_source = str(gen.prompts[0]).index("Bão số 15")
    assert first_source < str(gen.prompts[0]).index("Bão số 14")


def test_a_period_with_no_articles_abstains_and_still_says_which_period(storm_settings, fake_embedder):
    p = Pipeline(storm_settings, embedder=fake_embedder, generator=Scripted("Bão số 13 [1]."))
    a = p.ask("Năm ngoái bão nào đổ bộ vào miền Trung?")
    assert a.abstained and a.period["since"] == "2024-01-01"
