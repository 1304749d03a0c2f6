"""Reading articles: each format, dates, metadata, bad files reported (the rest loaded), duplicates,
id collisions, writing uploads safely, and the real default corpus."""
from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pytest

from rag.ingest.corpus import LoadResult, article_filename, load_corpus, load_file, parse_date, write_article
from rag.errors import ArticleError
from rag.types import Article

ROOT = Path(__file__).resolve().parent.parent
VIETNEWS = ROOT.parent / "shared" / "data" / "vietnews" / "articles-test.jsonl.gz"
BODY = "Giá vàng miếng hôm nay tăng 1 triệu đồng mỗi lượng.\nNhà đầu tư lo ngại lạm phát kéo dài."
OTHER = "Mưa lớn kéo dài ở Huế gây ngập nhiều tuyến phố.\nHàng nghìn hộ dân phải sơ tán."


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def md(body: str = BODY, **front) -> str:
    lines = "".join(f"{k}: {v}\n" for k, v in front.items())
    return f"---\n{lines}---\n{body}\n"


def jsonl(*objs) -> str:
    return "".join((o if isinstance(o, str) else json.dumps(o, ensure_ascii=False)) + "\n" for o in objs)


def reasons(result: LoadResult) -> dict[str, str]:
    return {e.path: e.reason for e in result.errors}


# ------------------------------------------------------------------ formats


def test_markdown_with_front_matter(tmp_path):
    f = write(tmp_path / "vang.md", md(
        id="gia-vang", title="Giá vàng tăng mạnh", date="2025-11-27", source="Báo A",
        url="https://example.vn/gia-vang", language="vi", category="Kinh tế", tags="[vàng, lạm phát]",
        updated="2025-11-28",
    ) + "Quang cảnh tiệm vàng - Ảnh: T.D.\nÝ kiến của bạn\nBình luận\n")
    [a] = load_file(f)
    assert (a.id, a.title, a.date, a.source, a.url, a.language) == (
        "gia-vang", "Giá vàng tăng mạnh", "2025-11-27", "Báo A", "https://example.vn/gia-vang", "vi")
    assert a.metadata == {"category": "Kinh tế", "tags": ["vàng", "lạm phát"], "updated": "2025-11-28"}
    json.dumps(a.metadata)  # the YAML date became a string the index can store
    # cleaned: the caption's credit and the comment box gone, the caption's text kept
    assert a.text == "Giá vàng miếng hôm nay tăng 1 triệu đồng mỗi lượng.\n\nNhà đầu tư lo ngại lạm phát kéo dài.\n\nQuang cảnh tiệm vàng."
    assert a.path == str(f)


def test_raw_news_page_without_front_matter(tmp_path):
    page = "Công nghệ Thứ Sáu 28/11/2025, 07:36\n\nGiá vàng tăng mạnh\n\n" + BODY + "\nCó thể bạn sẽ thích\nTin khác"
    [a] = load_file(write(tmp_path / "trang.txt", page))
    assert (a.id, a.title, a.date, a.source) == ("trang", "Giá vàng tăng mạnh", "2025-11-28", None)
    assert a.text.startswith("Giá vàng miếng") and "Có thể" not in a.text and "Công nghệ" not in a.text


def test_markdown_heading_title_and_long_first_line(tmp_path):
    [a] = load_file(write(tmp_path / "a.markdown", "# Giá vàng tăng mạnh\n\n" + BODY))
    assert a.title == "Giá vàng tăng mạnh" and a.text.startswith("Giá vàng miếng")
    long_first = "Ngày 2-12, tại TP.HCM diễn ra Hội nghị thượng đỉnh " + "với sự tham dự của hàng trăm khách mời " * 5
    [b] = load_file(write(tmp_path / "b.txt", long_first + "\n" + BODY))
    assert len(b.title) <= 151 and b.title.endswith("…")
    assert b.text.startswith("Ngày 2-12")  # a paragraph, not a headline: it stays in the text


def test_jsonl_and_gzipped_jsonl(tmp_path):
    rows = [
        {"id": "a1", "title": "Giá vàng", "date": "28/11/2025", "source": "Báo A", "url": "https://x.vn/1",
         "summary": "Tóm tắt bài.", "tags": ["vàng"], "text": BODY},
        {"title": "Mưa lớn", "text": OTHER},
    ]
    for name in ("bai.jsonl", "bai.jsonl.gz"):
        data = jsonl(*rows).encode("utf-8")
        path = write(tmp_path / name, gzip.compress(data) if name.endswith(".gz") else data)
        a, b = load_file(path)
        assert (a.id, a.title, a.date, a.source, a.url) == ("a1", "Giá vàng", "2025-11-28", "Báo A", "https://x.vn/1")
        assert a.metadata == {"summary": "Tóm tắt bài.", "tags": ["vàng"]}
        assert a.text == BODY.replace("\n", "\n\n") and a.path == f"{path}:1"
        assert (b.id, b.date, b.path) == ("bai-2", None, f"{path}:2")  # no id: <stem>-<line>


@pytest.mark.parametrize(("value", "iso"), [
    ("2025-11-28", "2025-11-28"), ("28/11/2025", "2025-11-28"), ("28-11-2025", "2025-11-28"),
    ("2-12-2025", "2025-12-02"), ("Thứ Sáu 28/11/2025, 07:36", "2025-11-28"), ("ngày 2-12-2025", "2025-12-02"),
    ("2025-11-28T07:36:00+07:00", "2025-11-28"), (dt.date(2025, 12, 2), "2025-12-02"),
    (dt.datetime(2025, 12, 2, 7, 36), "2025-12-02"),
    ("31/02/2025", None), ("tuần trước", None), ("", None), (None, None), (20251128, None),
])
def test_parse_date(value, iso):
    assert parse_date(value) == iso


def test_dates_from_front_matter_forms_and_unparseable(tmp_path):
    write(tmp_path / "a.md", md(title="A", date="28/11/2025"))
    write(tmp_path / "b.md", md(OTHER, title="B", date="'Thứ Sáu 28/11/2025, 07:36'"))
    write(tmp_path / "c.md", md("Một bài khác hẳn.", title="C", date="tuần trước"))
    r = load_corpus(tmp_path)
    assert [a.date for a in r.articles] == ["2025-11-28", "2025-11-28", None]
    assert not r.errors and len(r.warnings) == 1 and "c.md" in r.warnings[0] and "tuần trước" in r.warnings[0]


# ------------------------------------------------------------------ bad input


def test_bad_files_are_reported_and_the_rest_loaded(tmp_path):
    good = write(tmp_path / "good.md", md(title="Tốt"))
    bad = {
        write(tmp_path / "empty.md", "  \n\n"): "empty file",
        write(tmp_path / "latin1.txt", "Giá vàng tăng".encode("cp1258")): "not UTF-8",
        write(tmp_path / "bad-yaml.md", "---\ntitle: [không đóng\n---\n" + OTHER): "not valid YAML",
        write(tmp_path / "list-yaml.md", "---\n- a\n- b\n---\n" + OTHER): "key: value",
        write(tmp_path / "unclosed.md", "---\ntitle: Mưa\n" + OTHER): "never closed",
        write(tmp_path / "only-furniture.txt", "Tiêu đề\nẢnh: Reuters\nKinh tế 09:48 27/11/2025\nChia sẻ"): "no article text left",
        write(tmp_path / "empty.jsonl", "\n"): "empty file",
    }
    lines = write(tmp_path / "lines.jsonl", jsonl(
        {"id": "j1", "title": "Mưa", "text": OTHER}, "{không phải json", {"id": "j3", "title": "Thiếu text"},
        {"id": "j4", "title": "Sai kiểu", "text": ["a"]}, "[1, 2]", {"id": "j6", "title": "Cuối", "text": "Đoạn cuối."}))
    r = load_corpus(tmp_path)
    assert sorted(a.id for a in r.articles) == ["good", "j1", "j6"]
    got = reasons(r)
    for path, reason in bad.items():
        assert reason in got.pop(str(path))
    assert "invalid JSON" in got.pop(f"{lines}:2")
    assert "missing 'text'" in got.pop(f"{lines}:3")
    assert "must be a string" in got.pop(f"{lines}:4")
    assert "JSON object" in got.pop(f"{lines}:5")
    assert not got and good.exists()


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "empty file"),
    (b"\xff\xfe\x00ti\xeau \xf0\xe8", "not UTF-8"),
    ("---\ntitle: 'x\n---\nThân bài.".encode(), "not valid YAML"),
    ("---\ntitle: x\nThân bài.".encode(), "never closed"),
])
def test_load_file_raises_for_a_bad_file(tmp_path, content, reason):
    path = write(tmp_path / "bai.md", content)
    with pytest.raises(ArticleError, match=reason) as e:
        load_file(path)
    assert e.value.path == str(path)


def test_load_file_raises_for_missing_and_unsupported(tmp_path):
    with pytest.raises(ArticleError, match="cannot read"):
        load_file(tmp_path / "khong-co.md")
    with pytest.raises(ArticleError, match="unsupported file type"):
        load_file(write(tmp_path / "bai.pdf", "x"))
    with pytest.raises(ArticleError, match=r"invalid JSON") as e:
        load_file(write(tmp_path / "x.jsonl", jsonl({"title": "A", "text": BODY}, "{")))
    assert e.value.path.endswith("x.jsonl:2")


def test_damaged_gzip_is_an_error_not_a_crash(tmp_path):
    data = gzip.compress(jsonl(*({"id": f"a{i}", "title": "T", "text": f"Bài số {i}."} for i in range(200))).encode())
    write(tmp_path / "cut.jsonl.gz", data[: len(data) // 2])
    r = load_corpus(tmp_path)
    assert len(r.errors) == 1 and "cannot read" in r.errors[0].reason


# ------------------------------------------------------------------ duplicates and ids


def test_duplicate_texts_are_kept_once(tmp_path):
    write(tmp_path / "a.md", md(title="Giá vàng"))
    write(tmp_path / "b.txt", "Giá vàng\n\n" + BODY.replace(" ", "  ") + "\nXem thêm bình luận")
    write(tmp_path / "c.jsonl", jsonl({"id": "c", "title": "Tiêu đề khác", "text": BODY}))
    r = load_corpus(tmp_path)
    assert [a.id for a in r.articles] == ["a"]
    assert r.duplicates == [(str(tmp_path / "b.txt"), "a"), (f"{tmp_path / 'c.jsonl'}:1", "a")]
    assert not r.errors


def test_id_collisions_are_errors(tmp_path):
    write(tmp_path / "a.md", md(id="trung", title="A"))
    write(tmp_path / "b.md", md(OTHER, id="trung", title="B"))  # same id, other text: refused
    write(tmp_path / "c.md", md(id="trung", title="A"))  # same id, same text: a duplicate
    write(tmp_path / "d.jsonl", jsonl({"id": "x", "title": "X", "text": "Một."}, {"id": "x", "title": "Y", "text": "Hai."}))
    r = load_corpus(tmp_path)
    assert [a.id for a in r.articles] == ["trung", "x"]
    got = reasons(r)
    assert "'trung' is already used by" in got[str(tmp_path / "b.md")] and "a.md" in got[str(tmp_path / "b.md")]
    assert "'x' is already used by" in got[f"{tmp_path / 'd.jsonl'}:2"]
    assert r.duplicates == [(str(tmp_path / "c.md"), "trung")]


# ------------------------------------------------------------------ walking


def test_walk_is_recursive_sorted_and_skips_hidden_readme_and_unsupported(tmp_path):
    write(tmp_path / "b.md", md(title="B"))
    write(tmp_path / "sub" / "a.txt", "A\n" + OTHER)
    write(tmp_path / "README.md", "# corpus\nMô tả thư mục.")
    write(tmp_path / ".hidden.md", md("Ẩn.", title="H"))
    write(tmp_path / ".git" / "x.md", md("Ẩn nữa.", title="G"))
    write(tmp_path / "notes.pdf", "x")
    r = load_corpus(tmp_path)
    assert [a.id for a in r.articles] == ["b", "a"]  # b.md sorts before sub/
    assert r.warnings == [f"{tmp_path / 'notes.pdf'}: skipped, not an article file (expected .md, .markdown, .txt, .jsonl, .jsonl.gz, .html, .htm)"]
    assert not r.errors


def test_load_corpus_takes_a_file_or_a_list(tmp_path):
    a = write(tmp_path / "a.md", md(title="A"))
    b = write(tmp_path / "b.md", md(OTHER, title="B"))
    assert [x.id for x in load_corpus(a).articles] == ["a"]
    r = load_corpus([b, a, tmp_path / "missing.md"])
    assert [x.id for x in r.articles] == ["b", "a"]
    assert "cannot read" in reasons(r)[str(tmp_path / "missing.md")]


# ------------------------------------------------------------------ writing


def test_write_article_round_trip(tmp_path):
    art = Article(id="bai-1", title="Giá vàng: tăng mạnh", text=BODY.replace("\n", "\n\n"), date="2025-11-27",
                  source="Báo A", url="https://example.vn/a?b=1#c", metadata={"summary": "Tóm tắt: ngắn.", "tags": ["a"]})
    path = write_article(art, tmp_path / "corpus")
    assert path == tmp_path / "corpus" / "bai-1.md"
    assert path.read_text(encoding="utf-8").startswith("---\nid: bai-1\ntitle: 'Giá vàng: tăng mạnh'\n")
    [back] = load_file(path)
    assert back == Article(**{**art.__dict__, "path": str(path)}) and back.metadata == art.metadata
    assert [p.name for p in path.parent.iterdir()] == ["bai-1.md"]  # no temp file left behind
    write_article(Article(id="bai-1", title="Mới", text=OTHER), tmp_path / "corpus")  # same id: replaced
    assert load_file(path)[0].title == "Mới"


@pytest.mark.parametrize("bad_id", ["../../etc/passwd", "/etc/passwd", "..", ".hidden", "a/../../b", "", "con\\..\\x", "\x00"])
def test_write_article_cannot_escape_its_folder(tmp_path, bad_id):
    folder = tmp_path / "corpus"
    path = write_article(Article(id=bad_id, title="Tiêu đề", text=BODY), folder)
    assert path.parent == folder and not path.name.startswith(".") and ".." not in path.name
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [path]
    r = load_corpus(folder)
    # the id survives in the front matter, but for control characters, which reading strips
    assert [a.id for a in r.articles] == [bad_id.strip("\x00") or path.stem]


def test_article_filename_keeps_ids_apart():
    assert article_filename("htv-2025-11-28") == "htv-2025-11-28.md"
    assert article_filename("a/b") != article_filename("a-b")
    assert "/" not in article_filename("../../etc/passwd") and "passwd" in article_filename("../../etc/passwd")


# ------------------------------------------------------------------ real data


def test_default_corpus():
    r = load_corpus(ROOT / "corpus")
    assert not r.errors and not r.duplicates and not r.warnings
    got = {a.id: (a.title, a.date, a.source) for a in r.articles}
    assert got == {
        "htv-dot-pha-cong-nghe-2025-11-28": (
            "Đột phá công nghệ, kiến tạo thế hệ tương lai cho Thành phố Hồ Chí Minh", "2025-11-28", "HTV"),
        "dien-dan-cong-dong-thong-minh-2025-12-02": (
            "TP.HCM tổ chức Hội nghị thượng đỉnh toàn cầu Diễn đàn Cộng đồng thông minh 2025", "2025-12-02", "Tuổi Trẻ"),
    }
    by_id = {a.id: a for a in r.articles}
    assert "source_note" in by_id["dien-dan-cong-dong-thong-minh-2025-12-02"].metadata
    for a in r.articles:
        assert not any(s in a.text for s in ("Ý kiến của bạn", "Có thể bạn sẽ thích", "Tối đa", "Ảnh:", "Vàng đồng loạt"))


@pytest.mark.skipif(not VIETNEWS.exists(), reason="shared vietnews data not present")
def test_vietnews_sample(tmp_path):
    with gzip.open(VIETNEWS, "rb") as f:
        sample = b"".join(line for _, line in zip(range(300), f))
    r = load_corpus(write(tmp_path / "sample.jsonl.gz", gzip.compress(sample)))
    assert not r.errors and len(r.articles) + len(r.duplicates) == 300
    assert all(a.text and a.title and "summary" in a.metadata for a in r.articles)


def test_an_article_without_a_source_is_cited_under_its_site(tmp_path):
    write(tmp_path / "a.md", md(title="Giá vàng", url="https://www.tuoitre.vn/gia-vang.htm"))
    write(tmp_path / "b.md", md(OTHER, title="Mưa lớn"))
    by_id = {a.id: a for a in load_corpus(tmp_path).articles}
    assert by_id["a"].source == "tuoitre.vn" and by_id["b"].source is None
