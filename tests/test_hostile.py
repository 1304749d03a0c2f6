"""Hostile and broken input (issue 11): it never takes the service down, never blocks it, and never
reaches a terminal raw. One test (or group) per defect of the review; eval/RELIABILITY.md lists them."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from conftest import FakeEmbedder
from rag import cli
from rag.ingest import corpus, manage
from rag.index import build as index
from rag.config import Settings, load_settings
from rag.ingest.corpus import load_corpus, load_file, write_article
from rag.errors import ArticleError, IndexCorrupt, InvalidSetting
from rag.types import Article

BODY = "Giá vàng miếng hôm nay tăng 1 triệu đồng mỗi lượng.\nNhà đầu tư lo ngại lạm phát kéo dài."
OTHER = "Mưa lớn kéo dài ở Huế gây ngập nhiều tuyến phố.\nHàng nghìn hộ dân phải sơ tán."
# 311 bytes that expanded to 1.3 MB of metadata; two more levels would exhaust memory
ALIAS_BOMB = "---\ntitle: Bom\na0: &a0 [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"a{n}: &a{n} [{','.join([f'*a{n - 1}'] * 10)}]\n" for n in range(1, 6)
) + "---\n" + BODY + "\n"
SELF_LOOP = "---\ntitle: Vòng lặp\nloop: &a [*a]\n---\n" + BODY + "\n"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def good_file(folder: Path) -> Path:
    return write(folder / "tot.md", f"---\ntitle: Mưa lớn ở Huế\n---\n{OTHER}\n")


# ------------------------------------------------------------------ 1. YAML alias bomb


def test_yaml_aliases_are_refused_in_files(tmp_path):
    bomb = write(tmp_path / "bom.md", ALIAS_BOMB)
    good_file(tmp_path)
    r = load_corpus(tmp_path)
    assert [a.title for a in r.articles] == ["Mưa lớn ở Huế"]
    [err] = r.errors
    assert err.path == str(bomb) and "aliases" in err.reason


def test_yaml_alias_bomb_upload_writes_nothing(tmp_path, settings, articles):
    for a in articles:
        write_article(a, settings.corpus_dir)
    before = sorted(p.name for p in settings.corpus_dir.iterdir())
    report = manage.add_files(settings, [write(tmp_path / "bom.md", ALIAS_BOMB)], embedder=FakeEmbedder())
    assert report.added == [] and "aliases" in report.errors[0]
    assert sorted(p.name for p in settings.corpus_dir.iterdir()) == before


# ------------------------------------------------------------------ 2. one bad file never aborts the rest


def test_deeply_nested_jsonl_row_is_one_skipped_line(tmp_path):
    deep = "[" * 200_000 + "]" * 200_000
    path = write(tmp_path / "bai.jsonl", "\n".join([
        json.dumps({"title": "Giá vàng", "text": BODY}, ensure_ascii=False),
        '{"title": "Sâu", "text": "x", "meta": ' + deep + "}",
        json.dumps({"title": "Mưa lớn", "text": OTHER}, ensure_ascii=False),
    ]) + "\n")
    r = load_corpus(tmp_path)
    assert [a.title for a in r.articles] == ["Giá vàng", "Mưa lớn"]
    assert [(e.path, e.reason) for e in r.errors] == [(f"{path}:2", "nested too deeply to read")]


def test_deep_but_parseable_metadata_is_refused(tmp_path):
    deep = "[" * 500 + "]" * 500  # json reads it; metadata this deep is not news metadata
    write(tmp_path / "bai.jsonl", '{"title": "Sâu", "text": "' + BODY.replace("\n", " ") + '", "m": ' + deep + "}\n")
    r = load_corpus(tmp_path)
    assert not r.articles and "nested deeper than" in r.errors[0].reason


def test_self_referencing_yaml_is_skipped(tmp_path):
    loop = write(tmp_path / "loop.md", SELF_LOOP)
    good_file(tmp_path)
    r = load_corpus(tmp_path)
    assert [a.title for a in r.articles] == ["Mưa lớn ở Huế"]
    assert r.errors[0].path == str(loop) and "aliases" in r.errors[0].reason


def test_any_exception_while_reading_one_file_is_a_skip(tmp_path, monkeypatch):
    real = corpus.clean_text

    def explode(body, title=None):
        if "BOOM" in body:
            raise ZeroDivisionError("division by zero")
        return real(body, title)

    monkeypatch.setattr(corpus, "clean_text", explode)
    bad = write(tmp_path / "a.md", "Tiêu đề\nBOOM " + BODY)
    good_file(tmp_path)
    r = load_corpus(tmp_path)
    assert len(r.articles) == 1
    assert [(e.path, e.reason) for e in r.errors] == [(str(bad), "could not be read (ZeroDivisionError: division by zero)")]


def test_yaml_types_json_cannot_hold_become_text_and_lists(tmp_path, settings):
    write(tmp_path / "tags.md", "---\ntitle: Thẻ YAML\nb: !!binary aGVsbG8=\ns: !!set {y, x}\n"
          "t: 2025-11-28 07:36:00+07:00\n---\n" + BODY + "\n")
    [a] = load_corpus(tmp_path).articles
    assert a.metadata == {"b": "hello", "s": ["x", "y"], "t": "2025-11-28T07:36:00+07:00"}
    index.update(settings, [a], FakeEmbedder(), progress=False, log=lambda m: None)  # the index stores it as JSON


def test_a_named_pipe_is_skipped_not_waited_on(tmp_path):
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    assert [(e.path, e.reason) for e in load_corpus([fifo]).errors] == [(str(fifo), "not a regular file")]


# ------------------------------------------------------------------ 3. an upload embeds only its own articles


def test_upload_publishes_lexically_at_once_and_embeds_only_the_new_article(settings, articles, tmp_path):
    for a in articles:
        write_article(a, settings.corpus_dir)
    emb = FakeEmbedder()
    report = index.update(settings, load_corpus(settings.corpus_dir).articles, emb, progress=False,
                          log=lambda m: None, max_embed=0)  # a big corpus, indexed lexical-first
    backlog = report.without_vector
    assert backlog > 0 and emb.embedded == []

    seen = []

    def published():  # what a chat reloading at this moment would search
        seen.append((len(emb.embedded), set(index.load(settings, expected_embedder=emb.name).articles)))

    upload = write(tmp_path / "moi.md", "---\nid: moi\ntitle: Bóng chuyền nữ vô địch\n---\nĐội bóng chuyền nữ vô địch SEA Games.\n")
    added = manage.add_files(settings, [upload], embedder=emb, on_publish=published)
    assert added.added == ["moi"]
    new_chunks = [c.text for c in index.load(settings, expected_embedder=emb.name).chunks if c.article_id == "moi"]
    assert sorted(emb.embedded) == sorted(new_chunks)  # the backlog was not embedded
    assert added.index.without_vector == backlog
    assert seen[0] == (0, {"vang", "bongda", "mua", "moi"})  # searchable before any embedding


# ------------------------------------------------------------------ 4. a manifest of the wrong shape


@pytest.mark.parametrize("damage", [
    lambda m: {**m, "files": []},
    lambda m: {k: v for k, v in m.items() if k != "counts"},
    lambda m: {**m, "articles": ["vang"]},
    lambda m: {**m, "config": "x"},
    lambda m: {**m, "counts": {**m["counts"], "vectors": "many"}},
    lambda m: [],
])
def test_manifest_of_the_wrong_shape_is_corrupt_and_plain_index_rebuilds(settings, articles, damage):
    emb = FakeEmbedder()
    index.update(settings, articles, emb, progress=False, log=lambda m: None)
    manifest = index.current_version(settings.index_dir) / "manifest.json"
    manifest.write_text(json.dumps(damage(json.loads(manifest.read_text()))))
    with pytest.raises(IndexCorrupt, match="rag index --rebuild"):
        index.load(settings, expected_embedder=emb.name)
    report = index.update(settings, articles, emb, progress=False, log=lambda m: None)
    assert report.rebuilt_because and len(index.load(settings, expected_embedder=emb.name).articles) == 3


# ------------------------------------------------------------------ 5. every setting has a type and a range


@pytest.mark.parametrize("variable, value, allowed", [
    ("RAG_TOP_K", "-1", "an integer from 1 to 100"),
    ("RAG_TOP_K", "1000000000", "an integer from 1 to 100"),
    ("RAG_TOP_K", "abc", "an integer from 1 to 100"),
    ("RAG_EMBED_DIM", "12.5", "an integer from 8 to 8192"),
    ("RAG_RETRIEVER", "foo", "one of hybrid, bm25, dense"),
    ("RAG_DENSE_WEIGHT", "nan", "a number from 0.0 to 1.0"),
    ("RAG_HUB", "maybe", "true or false"),
])
def test_bad_environment_variables_name_variable_value_and_what_is_allowed(variable, value, allowed):
    with pytest.raises(InvalidSetting) as e:
        load_settings(env={variable: value})
    assert str(e.value) == f"invalid setting {variable}={value}: expected {allowed}"


def test_settings_objects_and_per_call_overrides_are_checked_alike(settings):
    with pytest.raises(InvalidSetting, match="RAG_TOP_K=-1"):
        settings.replace(top_k=-1)
    with pytest.raises(InvalidSetting, match="RAG_TOP_K=True"):
        Settings(top_k=True)
    with pytest.raises(InvalidSetting, match="RAG_CHUNK_OVERLAP=200: expected less than chunk_size"):
        settings.replace(chunk_overlap=200)
    from rag.answer.pipeline import Pipeline

    with pytest.raises(InvalidSetting, match="RAG_TOP_K=-1"):  # before any model or index is loaded
        Pipeline(settings).ask("Giá vàng hôm nay thế nào?", top_k=-1)
    assert settings.replace(dense_weight=1).dense_weight == 1.0


def test_every_setting_declares_what_it_allows():
    import dataclasses

    for f in dataclasses.fields(Settings):
        if f.type in ("int", "float"):
            assert {"min", "max"} <= set(f.metadata), f"{f.name}: declare min= and max= with setting()"


def test_cli_reports_a_bad_setting_in_one_line_with_exit_code_2(monkeypatch, capsys):
    monkeypatch.setenv("RAG_TOP_K", "-1")
    assert cli.main(["search", "giá vàng"]) == 2
    err = capsys.readouterr().err
    assert err == "error: invalid setting RAG_TOP_K=-1: expected an integer from 1 to 100\n"


# ------------------------------------------------------------------ 6. control characters


def test_control_characters_are_stripped_at_ingestion(tmp_path):
    write(tmp_path / "esc.md", "---\ntitle: \"Tin \\e[2J\\e]0;pwned\\a nóng\"\nnote: \"a\\x00b\\x9bc\"\n---\n"
          + "Giá vàng\x00 tăng\x1b[31m mạnh.\x85Lạm phát\x0c kéo dài.\n")
    write(tmp_path / "a.jsonl", json.dumps({"title": "T\u001b[1mx", "text": "Nội\u0007 dung\u009b bài.", "m": ["\u0000"]}) + "\n")
    write(tmp_path / "nul.txt", b"\x00" * 4096)
    r = load_corpus(tmp_path)
    esc, jl = sorted(r.articles, key=lambda a: a.path)[::-1]
    for a in (esc, jl):
        everything = json.dumps(a.meta(), ensure_ascii=False) + a.text
        assert not any(0 <= ord(c) < 32 and c not in "\t\n" or 0x7F <= ord(c) <= 0x9F for c in everything), a
    assert esc.title == "Tin [2J]0;pwned nóng" and esc.metadata["note"] == "abc"
    assert esc.text == "Giá vàng tăng[31m mạnh. Lạm phát kéo dài."
    assert jl.text == "Nội dung bài." and jl.metadata == {"m": [""]}
    assert [(Path(e.path).name, e.reason) for e in r.errors] == [("nul.txt", "no text, only control characters")]


def test_cli_escapes_control_characters_in_what_it_prints(settings, monkeypatch, capsys):
    emb = FakeEmbedder(name=str(Path("fake-hash").resolve()))  # the id rag.index.embed gives a path-named embedder
    evil = Article(id="evil", title="Giá vàng \x1b[2J\x1b]0;pwned\x07", text="Giá vàng tăng \x1b[31mmạnh.", date="2025-11-27")
    index.update(settings, [evil], emb, progress=False, log=lambda m: None)  # an index made by an older version
    monkeypatch.setenv("RAG_CORPUS_DIR", str(settings.corpus_dir))
    monkeypatch.setenv("RAG_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("RAG_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.setenv("RAG_EMBEDDER", "fake-hash")
    for name in ("embed_dim", "chunk_size", "chunk_overlap"):
        monkeypatch.setenv(f"RAG_{name.upper()}", str(getattr(settings, name)))
    assert cli.main(["search", "giá vàng", "--retriever", "bm25"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "Giá vàng \\x1b[2J\\x1b]0;pwned\\x07" in out and "tăng \\x1b[31mmạnh" in out

    write(settings.corpus_dir / "bad\x1b[2J.md", "")  # a file name is data too
    assert cli.main(["index", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "bad\\x1b[2J.md: empty file" in err


def test_cli_json_output_escapes_c1_controls_and_stays_json(capsys):
    cli._print_json({"title": "a\x9b2Jb\x1b"})  # CSI (0x9b) is not escaped by json.dumps(ensure_ascii=False)
    out = capsys.readouterr().out
    assert "\x9b" not in out and "\x1b" not in out and json.loads(out) == {"title": "a\x9b2Jb\x1b"}


# ------------------------------------------------------------------ 7. one clear sentence, the traceback to the log


def test_missing_corpus_folder_is_named_as_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    assert cli.main(["--corpus-dir", str(tmp_path / "nowhere"), "--index-dir", str(tmp_path / "idx"), "index"]) == 1
    err = capsys.readouterr().err
    assert "nowhere: no such file or folder" in err and "unsupported" not in err and "Traceback" not in err


def test_an_index_folder_that_is_a_file_is_one_sentence(tmp_path, monkeypatch, capsys):
    not_a_folder = write(tmp_path / "idx", "x")
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    assert cli.main(["--index-dir", str(not_a_folder), "search", "x", "--retriever", "bm25"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: Not a directory: {not_a_folder / 'CURRENT'}: check that it exists")
    assert err.count("\n") == 1


def test_os_error_is_one_sentence_with_what_to_do(tmp_path, monkeypatch, capsys):
    # (a read-only folder cannot be made in a test run as root: raise what it raises)
    def read_only(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / "idx" / ".lock"))

    monkeypatch.setattr(cli, "cmd_search", read_only)
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    assert cli.main(["search", "x"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"Permission denied: {tmp_path / 'idx' / '.lock'}" in err and "permissions" in err


def test_unexpected_error_goes_to_the_log_not_the_terminal(tmp_path, monkeypatch, capsys):
    def bug(*a, **k):
        raise KeyError("surprise")

    monkeypatch.setattr(cli, "cmd_search", bug)
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    assert cli.main(["search", "x"]) == 1
    err = capsys.readouterr().err
    log = tmp_path / "cache" / "logs" / "rag.log"
    assert err.count("\n") == 1 and "Traceback" not in err and str(log) in err
    assert "Traceback" in log.read_text() and "KeyError: 'surprise'" in log.read_text()


def test_self_referencing_yaml_upload_is_a_clear_message(tmp_path, settings, articles):
    for a in articles:
        write_article(a, settings.corpus_dir)
    report = manage.add_files(settings, [write(tmp_path / "loop.md", SELF_LOOP)], embedder=FakeEmbedder())
    [message] = report.errors
    assert message.startswith("loop.md: front matter is not valid YAML: aliases (*name) are not allowed")
    assert "recursion" not in message


# ------------------------------------------------------------------ 8. a per-article size limit


def test_an_article_over_the_size_limit_is_skipped_and_reported(tmp_path):
    big = write(tmp_path / "big.txt", "Bài rất dài\n" + "Giá vàng tăng. " * 200)
    lines = write(tmp_path / "b.jsonl", json.dumps({"title": "Dài", "text": "x " * 2000}) + "\n"
                  + json.dumps({"title": "Ngắn", "text": OTHER}) + "\n")
    r = load_corpus(tmp_path, max_article_chars=1000)
    assert [a.title for a in r.articles] == ["Ngắn"]
    assert {e.path: e.reason for e in r.errors} == {
        f"{lines}:1": "4,034 characters; the limit is 1,000 per article (setting RAG_MAX_ARTICLE_CHARS)",
        str(big): "3,012 characters; the limit is 1,000 per article (setting RAG_MAX_ARTICLE_CHARS)",
    }
    assert len(load_corpus(tmp_path).articles) == 3  # the default limit (1,000,000) holds them all
    with pytest.raises(ArticleError, match="RAG_MAX_ARTICLE_CHARS"):
        load_file(big, max_article_chars=1000)


def test_cli_index_applies_the_size_limit_setting(tmp_path, monkeypatch, capsys):
    write(tmp_path / "corpus" / "big.txt", "Bài rất dài\n" + "Giá vàng tăng. " * 200)
    monkeypatch.setenv("RAG_MAX_ARTICLE_CHARS", "1000")
    assert cli.main(["--corpus-dir", str(tmp_path / "corpus"), "--index-dir", str(tmp_path / "idx"), "index"]) == 1
    assert "big.txt: 3,012 characters; the limit is 1,000" in capsys.readouterr().err


def test_a_file_over_the_byte_limit_is_skipped_before_it_is_parsed(tmp_path, monkeypatch, capsys, settings):
    """A 20 MB one-line page took minutes and gigabytes in the HTML parser before its size was looked at:
    `rag index`, `rag add` (a folder, a file) and uploads skip it by its size on disk, unread."""
    from rag.ingest import watch as ingest, webpage

    def parser(*_a, **_k):
        raise AssertionError("the parser was called")

    monkeypatch.setattr(webpage, "html_to_article", parser)
    page = write(tmp_path / "corpus" / "trang.html", "<html><body><p>" + "Giá vàng tăng. " * 200 + "</p></body></html>")
    note = write(tmp_path / "corpus" / "ghi-chu.md", "---\ntitle: Dài\n---\n" + "Giá vàng tăng. " * 200)
    reason = "file is {:,} bytes; the limit is 1,000 (setting RAG_MAX_FILE_BYTES)"
    r = load_corpus(tmp_path / "corpus", max_file_bytes=1000)
    assert {e.path: e.reason for e in r.errors} == {str(p): reason.format(p.stat().st_size) for p in (page, note)}
    monkeypatch.setenv("RAG_MAX_FILE_BYTES", "1000")
    assert cli.main(["--corpus-dir", str(tmp_path / "corpus"), "--index-dir", str(tmp_path / "idx"), "index"]) == 1
    assert f"trang.html: {reason.format(page.stat().st_size)}" in capsys.readouterr().err
    small = settings.replace(max_file_bytes=1000)
    report = ingest.add(small, [str(tmp_path / "corpus"), str(page)], embedder=FakeEmbedder())
    assert report.added == [] and sorted(report.errors) == sorted(
        [f"ghi-chu.md: {reason.format(note.stat().st_size)}"] + [f"trang.html: {reason.format(page.stat().st_size)}"] * 2)


# ------------------------------------------------------------------ files the app writes: the user's umask


def test_written_corpus_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_article(Article(id="a", title="Tiêu đề", text=BODY), tmp_path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        os.chmod(path, 0o640)  # a mode the user chose is kept when the file is rewritten
        corpus.atomic_write(path, b"x")
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    finally:
        os.umask(old)
