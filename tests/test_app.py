"""The web app: HTML rendering of answers and sources, feedback log, corpus management (fast, fake
embedder); and the real app answering through its API (slow)."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from rag.serve import web as app
from rag.index import build as index
from rag.ingest import manage
from rag.config import Settings
from rag.ingest.corpus import load_corpus, write_article
from rag.errors import ArticleNotFound, CorpusEmpty, RagError
from rag.answer.pipeline import Pipeline
from rag.types import Answer, Article, Citation

from conftest import FakeEmbedder, Scripted

ARTICLE = Article(
    id="a1",
    title="Hội nghị <b>NextGen</b> & đổi mới",
    date="2025-11-28",
    source="HTV",
    url="https://example.org/bai-1",
    text="Chiều 27/11, hội nghị khai mạc.\nPhát biểu khai mạc, ông Lâm Đình Thắng\ncho biết <script>x()</script> nhiều điều.\nĐoạn cuối.\nHết <img src=x onerror=alert(1)>.",
)


def citation(**kw) -> Citation:
    base = dict(marker=1, article_id="a1", title=ARTICLE.title, date="2025-11-28", source="HTV",
                url=ARTICLE.url, chunk_id="a1#0", quote="Phát biểu khai mạc, ông Lâm Đình Thắng cho biết <script>x()</script> nhiều điều.",
                score=0.9)
    return Citation(**{**base, **kw})


# ---------------------------------------------------------------- rendering


def test_quote_found_across_line_breaks_and_highlighted_escaped():
    spans = app.quote_spans(ARTICLE.text, citation().quote)
    assert len(spans) == 1
    a, b = spans[0]
    assert ARTICLE.text[a:b].startswith("Phát biểu") and ARTICLE.text[a:b].endswith("nhiều điều.")
    out = app.highlight(ARTICLE.text, spans)
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert out.count("<mark>") == 1 and out.index("<mark>") > out.index("khai mạc.")


def test_quote_of_two_distant_sentences_gives_two_spans():
    spans = app.quote_spans(ARTICLE.text, "Chiều 27/11, hội nghị khai mạc. Đoạn cuối.")
    assert [ARTICLE.text[a:b] for a, b in spans] == ["Chiều 27/11, hội nghị khai mạc.", "Đoạn cuối."]


def test_context_window_stays_in_the_paragraphs_and_is_cut():
    textx = "Mở đầu.\n" + "x " * 400 + "CÂU TRÍCH. " + "y " * 400 + "\nKết."
    spans = app.quote_spans(textx, "CÂU TRÍCH.")
    a, b = app.context_window(textx, spans, chars=50)
    assert b - a == len("CÂU TRÍCH.") + 100
    a, b = app.context_window(textx, spans, chars=10_000)
    assert textx[a:b].startswith("x ") and textx[a:b].endswith("y ")  # not into "Mở đầu." / "Kết."


def test_sources_panel_escapes_everything_and_links_safely():
    answer = Answer("q", "Ông Lâm Đình Thắng [1].", [citation()], timings={"total": 1234.0}, model="m")
    out = app.render_sources(answer, {"a1": ARTICLE})
    assert 'id="src-1"' in out and "[1]" in out
    assert "<b>NextGen</b>" not in out and "&lt;b&gt;NextGen&lt;/b&gt; &amp;" in out
    assert "<script>" not in out and "<img" not in out and "&lt;img src=x" in out
    assert "28/11/2025" in out and "HTV" in out and 'href="https://example.org/bai-1"' in out
    assert "<mark>" in out and "<details>" in out and "Đoạn cuối." in out  # full text, quote marked in it
    assert out.count("<mark>") == 2  # once in the context, once in the full text

    evil = app.render_sources(
        Answer("q", "x [1].", [citation(url="javascript:alert(1)", quote="không có trong bài")]), {}
    )
    assert "javascript:" not in evil and "<mark>không có trong bài</mark>" in evil  # article gone: quote alone


def test_abstention_panel_and_marker_links():
    out = app.render_sources(Answer("q", "Các bài báo không nhắc đến điều này.", [], abstained=True), {})
    assert "Không có nguồn" in out
    assert app.link_markers("A [1]. B [2][3].", [citation(), citation(marker=2)]) == (
        "A [[1]](#src-1). B [[2]](#src-2)[3]."
    )


def test_answer_round_trips_through_the_session_state():
    answer = Answer("q", "t [1].", [citation()], False, {"total": 1.0}, "m")
    assert app.answer_from_dict(json.loads(json.dumps(answer.to_dict()))) == answer


def test_history_keeps_the_last_turns():
    turns = [{"question": f"q{i}", "answer": {"text": f"a{i}"}} for i in range(5)]
    h = app.history_messages(turns, limit=2)
    assert h == [{"role": "user", "content": "q3"}, {"role": "assistant", "content": "a3"},
                 {"role": "user", "content": "q4"}, {"role": "assistant", "content": "a4"}]


def test_model_choices_list_only_provisioned_models(settings):
    assert app.model_choices(settings.replace(generator="qwen2.5-coder-1.5b")) == [
        ("Qwen2.5-Coder 1.5B (chính xác hơn)", "qwen2.5-coder-1.5b")  # configured; nothing provisioned in tmp
    ]


def test_feedback_lines_are_whole_under_concurrency(tmp_path):
    path = tmp_path / "deep" / "fb.jsonl"
    threads = [threading.Thread(target=app.log_feedback, args=({"n": i, "text": "ý kiến " * 500}, path))
               for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["n"] for r in rows) == list(range(20))


# ---------------------------------------------------------------- corpus management


def md(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture
def seeded(settings, articles):
    for a in articles:
        write_article(a, settings.corpus_dir)
    emb = FakeEmbedder()
    index.update(settings, load_corpus(settings.corpus_dir).articles, emb, progress=False, log=lambda m: None)
    return settings, emb


def indexed_ids(settings: Settings, emb) -> set[str]:
    return set(index.load(settings, expected_embedder=emb.name).articles)


def test_add_files_writes_safe_names_reports_bad_files_and_indexes(seeded, tmp_path):
    settings, emb = seeded
    up = tmp_path / "upload"
    up.mkdir()
    good = md(up / "..;rm -rf ~.md", "Bão số 9 đổ bộ\n\nBão số 9 gây mưa lớn ở Quảng Ngãi.")  # id from the name
    sneaky = md(up / "b.md", "---\nid: ../../outside\ntitle: Thoát thư mục\n---\nNội dung thử thoát khỏi thư mục.")
    bad = md(up / "bad.md", "---\ntitle: Không đóng\nNội dung")
    wrong = md(up / "x.pdf", "%PDF-1.4")
    seen = []
    report = manage.add_files(settings, [good, sneaky, bad, wrong], embedder=emb,
                              progress=lambda f, desc="": seen.append(f))
    assert set(report.added) == {"..;rm -rf ~", "../../outside"}
    assert len(report.errors) == 2
    assert report.errors[0].startswith("bad.md: front matter") and str(up) not in report.errors[0]
    assert report.errors[1].startswith("x.pdf: unsupported file type")
    files = sorted(p.name for p in settings.corpus_dir.iterdir())
    assert all("/" not in f and not f.startswith(".") for f in files) and len(files) == 5
    assert not (tmp_path / "outside.md").exists() and not (settings.corpus_dir.parent / "outside.md").exists()
    assert indexed_ids(settings, emb) == {"vang", "bongda", "mua", "..;rm -rf ~", "../../outside"}
    assert seen[-1] == 1.0 and seen == sorted(seen)


def test_add_files_refuses_big_duplicate_and_reused_id(seeded, tmp_path, articles):
    settings, emb = seeded
    big = md(tmp_path / "big.txt", "Tiêu đề\n\n" + "chữ " * 1000)
    dup = md(tmp_path / "dup.md", f"---\nid: other\ntitle: Bản sao\n---\n{articles[0].text}")
    reused = md(tmp_path / "reuse.md", "---\nid: vang\ntitle: Khác\n---\nMột bài hoàn toàn khác.")
    before = index.current_version(settings.index_dir)
    report = manage.add_files(settings, [big, dup, reused], embedder=emb, max_bytes=1000)
    assert report.added == [] and report.index is None
    assert report.duplicates == ["dup.md: same text as the article 'vang'"]
    assert "limit is 1,000" in report.errors[0] and "'vang' is already used" in report.errors[1]
    assert index.current_version(settings.index_dir) == before  # nothing rebuilt
    assert len(list(settings.corpus_dir.iterdir())) == 3


def test_list_and_remove_articles(seeded, tmp_path):
    settings, emb = seeded
    jl = settings.corpus_dir / "more.jsonl"
    jl.write_text(
        json.dumps({"id": "j1", "title": "Tin một", "text": "Nội dung tin một về giao thông."}, ensure_ascii=False)
        + "\n\n"
        + json.dumps({"id": "j2", "title": "Tin hai", "text": "Nội dung tin hai về giáo dục."}, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    manage.add_files(settings, [], embedder=emb)  # nothing to add: no re-index
    index.update(settings, load_corpus(settings.corpus_dir).articles, emb, progress=False, log=lambda m: None)
    rows = manage.list_articles(index.load(settings, expected_embedder=emb.name))
    assert [r["id"] for r in rows[:2]] == ["bongda", "vang"]  # newest first, undated last
    assert all(r["chunks"] >= 1 for r in rows) and {r["id"] for r in rows} == {"vang", "bongda", "mua", "j1", "j2"}

    manage.remove_article(settings, "j1", embedder=emb)  # one line out of a jsonl file
    assert "j1" not in jl.read_text(encoding="utf-8") and "j2" in jl.read_text(encoding="utf-8")
    manage.remove_article(settings, "vang", embedder=emb)  # a Markdown file
    assert indexed_ids(settings, emb) == {"bongda", "mua", "j2"}
    assert not any("vang" in p.name for p in settings.corpus_dir.iterdir())

    with pytest.raises(ArticleNotFound, match="'nope'"):
        manage.remove_article(settings, "nope", embedder=emb)
    manage.remove_article(settings, "j2", embedder=emb)
    assert not jl.exists()  # its last line gone: the file goes
    manage.remove_article(settings, "mua", embedder=emb)
    with pytest.raises(CorpusEmpty, match="last article"):
        manage.remove_article(settings, "bongda", embedder=emb)
    assert indexed_ids(settings, emb) == {"bongda"}


# ---------------------------------------------------------------- the real app


@pytest.mark.slow
def test_real_app_answers_through_the_api(app_server):
    from gradio_client import Client

    client = Client(app_server["url"], verbose=False)
    job = client.submit("Ai phát biểu khai mạc hội nghị ngày 27/11?", 4, "hybrid", api_name="/ask")
    answer = job.result(timeout=600)
    assert "Lâm Đình Thắng" in answer["text"], answer
    assert not answer["abstained"]
    sources = {c["article_id"]: c for c in answer["citations"]}
    assert "htv-dot-pha-cong-nghe-2025-11-28" in sources, answer["citations"]
    assert "Lâm Đình Thắng" in sources["htv-dot-pha-cong-nghe-2025-11-28"]["quote"]


def test_source_card_lists_every_place_the_story_appeared():
    also = [{"id": "b", "title": "Tiêu đề <khác>", "source": "Báo B", "url": "https://b.vn/x", "date": "2025-11-29"},
            {"id": "c", "source": "Báo C", "url": "javascript:alert(1)"}]
    out = app.render_sources(Answer("q", "t [1].", [citation(also=also)]), {"a1": ARTICLE})
    assert out.count("Cũng đăng:") == 2
    assert "29/11/2025 · Báo B · Tiêu đề &lt;khác&gt;" in out and 'href="https://b.vn/x"' in out
    assert "Báo C" in out and "javascript:" not in out


def test_chat_date_and_source_controls_become_filters():
    assert app.chat_filters("", " ", []) is None
    assert app.chat_filters("24/11/2025", "2025-11-30", ["Báo A"]) == {
        "date_from": "2025-11-24", "date_to": "2025-11-30", "source": ["Báo A"]}
    with pytest.raises(RagError, match="Từ ngày=tuần trước.*ví dụ 28/11/2025"):
        app.chat_filters("tuần trước", "", None)
    arts = {"a": Article(id="a", title="A", text="x", source="Báo B", also=[{"source": "báo c"}, {"url": "u"}]),
            "b": Article(id="b", title="B", text="y", source="Báo A")}
    assert app.source_names(arts) == ["Báo A", "Báo B", "báo c"]


def test_the_chat_builds_with_the_date_and_source_controls_and_the_api_takes_them(seeded):
    settings, emb = seeded
    gen = Scripted("Giá vàng miếng hôm nay tăng 1 triệu đồng mỗi lượng [1].")
    demo = app.build_app(Pipeline(settings, embedder=emb, generator=gen))
    labels = {getattr(b, "label", None) for b in demo.blocks.values()}
    assert {"Từ ngày", "Đến ngày", "Nguồn báo (để trống: tất cả)"} <= labels
    ask = next(f.fn for f in demo.fns.values() if f.api_name == "ask")
    assert ask("Giá vàng miếng tăng bao nhiêu?", 4, "hybrid", "01/12/2025")["abstained"]  # published 27/11: filtered out
    assert not gen.prompts  # nothing in the range: the model was not asked
    out = ask("Giá vàng miếng tăng bao nhiêu?", 4, "hybrid", "", "2025-11-30", "Báo A")
    assert not out["abstained"] and out["citations"][0]["source"] == "Báo A"


@pytest.mark.slow
def test_the_server_stops_on_sigterm_while_a_page_holds_its_event_stream(tmp_path):
    """An open chat tab holds Gradio's heartbeat stream; the server used to wait for it to close, so Ctrl-C or
    SIGTERM left it running (and a test's teardown waited 20 s to kill it). It now gives open requests
    SHUTDOWN_GRACE_S."""
    import os
    import urllib.request

    from conftest import small_app

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.jsonl").write_text(json.dumps({"id": "a", "title": "Mưa", "text": "Mưa lớn ở Huế."}) + "\n")
    env = {**os.environ, "RAG_CORPUS_DIR": str(corpus), "RAG_INDEX_DIR": str(tmp_path / "index"),
           "RAG_RETRIEVER": "bm25", "RAG_GENERATOR": "smollm2-135m"}
    with small_app(env, tmp_path) as (proc, url):
        with urllib.request.urlopen(f"{url}gradio_api/heartbeat/test", timeout=60) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            proc.terminate()
            # generous against SHUTDOWN_GRACE_S (5 s): before, the server never exited while the stream was open
            assert proc.wait(timeout=app.SHUTDOWN_GRACE_S + 25) is not None
