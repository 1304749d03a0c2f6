"""Web ingest against a real HTTP server on 127.0.0.1: pages in the shapes of Vietnamese news sites,
RSS/Atom feeds, sitemaps, robots.txt, and every fetch failure (404, timeout, wrong type, redirects)."""
from __future__ import annotations

import json

import pytest
import yaml

from rag.ingest import corpus, feeds, watch as ingest, manage, webpage
from rag.index import build as index
from rag.errors import ArticleError, FetchError
from rag.ingest.fetch import Fetcher, FetchState
from conftest import ROOT, SHARED, Scripted
from newssite import NewsSite, Route, atom, render, rss, sitemap, sitemap_index, stories_from_seed, stories_from_vietnews

VIETNEWS = SHARED / "data" / "vietnews" / "articles-test.jsonl.gz"


@pytest.fixture
def web_settings(settings):
    # short timeouts and no politeness delay: the server is ours and local, on 127.0.0.1, which only
    # RAG_FETCH_ALLOW_PRIVATE lets the fetcher reach (tests/test_fetch_policy.py: without it)
    return settings.replace(fetch_timeout=0.5, fetch_retries=1, fetch_backoff=0.01, fetch_delay=0.0, fetch_allow_private=True)


@pytest.fixture(scope="module")
def pages():
    stories = stories_from_seed(ROOT / "corpus")
    return [render(s, i) for i, s in enumerate(stories)]


@pytest.fixture
def site(pages):
    with NewsSite() as s:
        s.routes["/robots.txt"] = Route(body=b"User-agent: *\nDisallow: /private/\n", headers={"Content-Type": "text/plain"})
        for p in pages:
            s.html(p.path, p.html)
        yield s


def _body(page) -> set[str]:
    return set(page.gold[:-1])  # the caption is the last gold paragraph; its rule is the answers issue's


# ------------------------------------------------------------------ HTML → article


def test_page_becomes_article_with_metadata_and_no_furniture(pages):
    page = pages[0]
    a = webpage.html_to_article(page.html, url="http://127.0.0.1:9" + page.path)
    assert a.title == page.story.title
    assert a.date == page.story.date  # JSON-LD datePublished
    assert a.source == page.site
    assert a.url == "https://tinnhanh.example" + page.path  # the canonical URL, not where it was fetched
    assert a.metadata["author"] == "Minh Anh" and a.language == "vi"
    kept = set(a.text.split("\n\n"))
    assert _body(page) <= kept
    for junk in page.furniture:
        assert junk not in a.text, junk


def test_date_falls_back_to_the_feed_when_the_page_has_none():
    page = ("<html><head><title>Tin ngắn</title></head><body><article><h1>Tin ngắn</h1>"
            + "".join(f"<p>Đoạn văn thứ {n} đủ dài để được coi là nội dung chính của bài báo, không có ngày tháng.</p>" for n in range(4))
            + "</article></body></html>")
    a = webpage.html_to_article(page, url="http://127.0.0.1:9/tin-ngan", fallback_date="2025-03-04", fallback_source="Báo X")
    assert (a.date, a.source) == ("2025-03-04", "Báo X")
    dated = page.replace("<h1>Tin ngắn</h1>", "<h1>Tin ngắn</h1><p class='date'>Cập nhật ngày 12/03/2024</p>")
    assert webpage.html_to_article(dated, url="http://127.0.0.1:9/tin-ngan").date == "2024-03-12"  # last: the text


def test_page_without_an_article_is_a_clear_error():
    with pytest.raises(ArticleError, match="no article text"):
        webpage.html_to_article("<html><head><title>X</title></head><body><div></div></body></html>", url="http://h/x")
    listing = "<html><head><title>Directory listing for /</title></head><body><ul><li><a href=a>a.html</a></li></ul></body></html>"
    with pytest.raises(ArticleError, match="not an article page"):
        webpage.html_to_article(listing, url="http://h/")


def test_html_files_in_the_corpus_and_in_uploads(pages, web_settings, fake_embedder, tmp_path):
    saved = tmp_path / "saved" / "bai-bao.html"
    saved.parent.mkdir()
    saved.write_text(pages[1].html, encoding="utf-8")
    loaded = corpus.load_corpus(saved.parent)
    assert [a.id for a in loaded.articles] == ["bai-bao"] and loaded.articles[0].date == pages[1].story.date
    report = manage.add_files(web_settings, [saved], embedder=fake_embedder)
    assert report.added == ["bai-bao"], report.errors
    front = yaml.safe_load((web_settings.corpus_dir / "bai-bao.md").read_text().split("---")[1])
    assert front["url"].startswith("https://baosaigonmoi.example/") and front["source"] == pages[1].site


# ------------------------------------------------------------------ feeds and sitemaps


def test_feed_and_sitemap_links():
    items = [("/a.html", "Bài A", "2025-11-27"), ("/b.html", "Bài B", "2025-11-28")]
    base = "http://127.0.0.1:9/rss"
    for doc, expected_kind in ((rss("Báo A", items), "feed"), (atom("Báo A", items), "feed")):
        assert feeds.kind(doc.encode()) == expected_kind
        got = feeds.entries(doc.encode(), base)
        assert [(e.url, e.title, e.date, e.source) for e in got] == [
            ("http://127.0.0.1:9/a.html", "Bài A", "2025-11-27", "Báo A"), ("http://127.0.0.1:9/b.html", "Bài B", "2025-11-28", "Báo A")]
    sm = sitemap([("http://127.0.0.1:9/a.html", "2025-11-27")]).encode()
    assert feeds.kind(sm) == "sitemap" and feeds.entries(sm, base)[0].date == "2025-11-27"
    assert feeds.kind(b"<html><body>x</body></html>") is None
    with pytest.raises(FetchError, match="not an RSS/Atom feed or a sitemap"):
        feeds.entries(b"<html><body>x</body></html>", base)


# ------------------------------------------------------------------ fetching


def test_every_fetch_failure_is_a_clear_per_url_error(site, web_settings):
    site.routes["/cham.html"] = Route(body=b"<html></html>", headers={"Content-Type": "text/html"}, delay=1.5)
    site.routes["/anh.jpg"] = Route(body=b"\xff\xd8\xff", headers={"Content-Type": "image/jpeg"})
    site.routes["/cu.html"] = Route(301, headers={"Location": "/moi.html"})
    site.html("/moi.html", "<html><body><p>Trang mới</p></body></html>")
    site.routes["/vong-a"] = Route(302, headers={"Location": "/vong-b"})
    site.routes["/vong-b"] = Route(302, headers={"Location": "/vong-a"})
    site.routes["/ra-ngoai"] = Route(302, headers={"Location": "file:///etc/passwd"})
    site.routes["/to.html"] = Route(body=b"<html>" + b"x" * 5000 + b"</html>", headers={"Content-Type": "text/html"})
    site.routes["/dai.html"] = Route(body=b"<html>" + b"x" * 5000 + b"</html>", headers={"Content-Type": "text/html"}, length=False)
    site.html("/private/bi-mat.html", "<html></html>")
    small = web_settings.replace(fetch_max_bytes=4000)
    with Fetcher(small) as f:
        def error(path):
            with pytest.raises(FetchError) as e:
                f.get(site.url + path)
            assert e.value.url == site.url + path
            return e.value.reason
        assert error("/khong-co.html") == "HTTP 404 Not Found"
        assert "timed out" in error("/cham.html") and "2 tries" in error("/cham.html")
        assert "content type image/jpeg" in error("/anh.jpg")
        assert "redirect loop" in error("/vong-a")
        assert error("/ra-ngoai") == "redirects to file:///etc/passwd, not an http(s) URL"
        assert "robots.txt" in error("/private/bi-mat.html")
        assert "5,013 bytes; the limit is 4,000" in error("/to.html")  # declared
        assert "larger than the limit of 4,000 bytes" in error("/dai.html")  # counted while streaming
        moved = f.get(site.url + "/cu.html")
        assert moved.final_url == site.url + "/moi.html" and b"Trang m" in moved.content
    with pytest.raises(FetchError, match="not an http"):
        Fetcher(small).get("file:///etc/passwd")
    # the disallowed page was never requested; robots.txt once for the whole batch
    assert "/private/bi-mat.html" not in site.paths_requested()
    assert site.paths_requested().count("/robots.txt") == 1


def test_too_many_redirects(site, web_settings):
    for n in range(4):
        site.routes[f"/r{n}"] = Route(302, headers={"Location": f"/r{n + 1}"})
    site.html("/r4", "<html></html>")
    with Fetcher(web_settings.replace(fetch_max_redirects=2)) as f, pytest.raises(FetchError, match="more than 2 redirects"):
        f.get(site.url + "/r0")
    with Fetcher(web_settings.replace(fetch_max_redirects=4)) as f:
        assert f.get(site.url + "/r0").final_url == site.url + "/r4"


def test_retry_after_a_server_error_then_success(site, web_settings):
    site.routes["/flaky.html"] = Route(503)
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        site.html("/flaky.html", "<html><body>ok</body></html>")  # the server recovers while we back off

    with Fetcher(web_settings, sleep=sleep) as f:
        assert f.get(site.url + "/flaky.html").status == 200
    assert sleeps == [web_settings.fetch_backoff]


def test_conditional_get_user_agent_and_host_delay(site, pages, web_settings, tmp_path):
    state = FetchState(tmp_path / "state.json")
    url = site.url + pages[0].path
    waits = []
    clock = iter(range(1000)).__next__  # every request 1 "second" after the previous one
    slow = web_settings.replace(fetch_delay=3.0)
    with Fetcher(slow, state, sleep=waits.append, clock=lambda: float(clock())) as f:
        first = f.get(url)
        state.remember(first)
        second = f.get(url)
    assert first.status == 200 and second.not_modified and second.content == b""
    assert waits and all(w > 0 for w in waits)  # the second request to the host waited its turn
    headers = [h for p, h in site.requests if p == pages[0].path]
    assert headers[1]["If-None-Match"] == first.etag
    assert all(h["User-Agent"].startswith("rag-news-vi/") for h in headers)
    assert FetchState(tmp_path / "state.json").headers(url)  # persisted


def test_unreachable_robots_txt_disallows_and_retry_after_is_honoured(site, pages, web_settings):
    site.routes["/robots.txt"] = Route(503)
    with Fetcher(web_settings, sleep=lambda _s: None) as f, pytest.raises(FetchError, match=r"robots.txt of .* could not be read \(HTTP 503, after 2 tries\)"):
        f.get(site.url + pages[0].path)
    assert pages[0].path not in site.paths_requested()
    site.routes["/robots.txt"] = Route(404)
    site.routes["/ban.html"] = Route(429, headers={"Retry-After": "3"})
    sleeps = []
    with Fetcher(web_settings, sleep=sleeps.append) as f, pytest.raises(FetchError, match="HTTP 429, after 2 tries"):
        f.get(site.url + "/ban.html")
    assert sleeps == [3.0]


def test_robots_crawl_delay_is_obeyed(site, pages, web_settings):
    site.routes["/robots.txt"] = Route(body=b"User-agent: *\nCrawl-delay: 7\n", headers={"Content-Type": "text/plain"})
    waits, now = [], [0.0]
    with Fetcher(web_settings, sleep=waits.append, clock=lambda: now[0]) as f:
        f.get(site.url + pages[0].path)
        f.get(site.url + pages[1].path)
    assert waits[-1] == 7.0  # robots.txt asked for 7 s between requests; our own delay is 0 here


# ------------------------------------------------------------------ rag add / rag watch


def _feed(site, pages, extra=()):
    items = [(site.url + p.path, p.story.title, p.story.date) for p in pages] + list(extra)
    site.xml("/rss", rss("Tin Nhanh", items), "application/rss+xml")


def test_add_a_feed_reports_each_failure_and_adds_the_rest(site, pages, web_settings, fake_embedder):
    site.routes["/cham.html"] = Route(body=b"<html></html>", headers={"Content-Type": "text/html"}, delay=1.5)
    site.routes["/tai-lieu.pdf"] = Route(body=b"%PDF-1.4", headers={"Content-Type": "application/pdf"})
    bad = [(site.url + p, "x", "2025-11-01") for p in ("/khong-co.html", "/cham.html", "/tai-lieu.pdf", "/private/a.html")]
    _feed(site, pages, bad)
    report = ingest.add(web_settings, [site.url + "/rss"], embedder=fake_embedder)
    assert sorted(report.added) == sorted(webpage.article_id(f"https://{h}{p.path}") for h, p in zip(("tinnhanh.example", "baosaigonmoi.example"), pages))
    errors = "\n".join(report.errors)
    for path, reason in (("/khong-co.html", "HTTP 404"), ("/cham.html", "timed out"), ("/tai-lieu.pdf", "application/pdf"),
                         ("/private/a.html", "robots.txt")):
        assert f"{site.url}{path}: " in errors and reason in errors, (path, errors)
    # each article is in the corpus with its URL, source and date, and searchable
    for p in pages:
        text = next(f for f in web_settings.corpus_dir.iterdir() if p.story.id in f.name).read_text()
        front = yaml.safe_load(text.split("---")[1])
        assert front["date"] == p.story.date and front["source"] == p.site and front["url"].endswith(p.path)
    idx = index.load(web_settings, expected_embedder=fake_embedder.name)
    assert {a.source for a in idx.articles.values()} == {p.site for p in pages}

    # again: the good links are known, nothing is re-added; the failed ones are tried again
    site.requests.clear()
    again = ingest.add(web_settings, [site.url + "/rss"], embedder=fake_embedder)
    assert again.added == [] and again.seen == len(pages) and len(again.errors) == 4
    assert not any(p.path in site.paths_requested() for p in pages)


def test_add_detects_atom_and_sitemaps_and_forced_kinds(site, pages, web_settings, fake_embedder):
    site.xml("/atom", atom("Tin Nhanh", [(site.url + pages[0].path, "x", "2025-11-01")]), "application/atom+xml")
    site.xml("/sitemap-news.xml", sitemap([(site.url + pages[1].path, "2025-11-02")]))
    site.xml("/sitemap.xml", sitemap_index([site.url + "/sitemap-news.xml"]))
    report = ingest.add(web_settings, [site.url + "/atom", site.url + "/sitemap.xml"], embedder=fake_embedder)
    assert len(report.added) == 2, report.errors
    site.html("/trang.html", pages[0].html)
    wrong = ingest.add(web_settings, [site.url + "/trang.html"], kind="feed", embedder=fake_embedder)
    assert wrong.errors == [f"{site.url}/trang.html: not an RSS/Atom feed (text/html)"]
    site.routes["/atom2"] = site.routes["/atom"]
    wrong = ingest.add(web_settings, [site.url + "/atom2"], kind="sitemap", embedder=fake_embedder)
    assert wrong.errors == [f"{site.url}/atom2: not a sitemap (application/atom+xml)"]


def test_add_a_page_url_again_unchanged_then_updated(site, pages, web_settings, fake_embedder):
    url = site.url + pages[0].path
    first = ingest.add(web_settings, [url], embedder=fake_embedder)
    assert len(first.added) == 1
    again = ingest.add(web_settings, [url], embedder=fake_embedder)
    assert again.unchanged == [url] and again.added == []
    # the site corrects the story: the new text replaces the old, under the same id and file
    site.html(pages[0].path, pages[0].html.replace(pages[0].gold[1], pages[0].gold[1] + " Bản đã đính chính."))
    fixed = ingest.add(web_settings, [url], embedder=fake_embedder)
    assert fixed.updated == first.added and fixed.added == [] and not fixed.errors
    articles = corpus.load_corpus(web_settings.corpus_dir).articles
    assert len(articles) == 1 and "Bản đã đính chính." in articles[0].text
    assert "Bản đã đính chính." in " ".join(c.text for c in index.load(web_settings, expected_embedder=fake_embedder.name).chunks)


def test_watch_adds_new_items_and_survives_a_restart(site, pages, web_settings, fake_embedder):
    _feed(site, pages[:1])
    log = []

    def publish_more(_seconds):  # between two polls, the site publishes a second article
        _feed(site, pages)

    first = ingest.watch(web_settings, [site.url + "/rss"], every=900, iterations=2, embedder=fake_embedder,
                         log=log.append, sleep=publish_more)
    assert [len(r.added) for r in first] == [1, 1]
    # a new process: nothing is re-added, and the unchanged feed is not downloaded again
    site.requests.clear()
    restart = ingest.watch(web_settings, [site.url + "/rss"], every=900, iterations=1, embedder=fake_embedder, log=log.append)
    assert restart[0].added == [] and restart[0].unchanged == [site.url + "/rss"]
    assert [p for p in site.paths_requested() if p != "/robots.txt"] == ["/rss"]
    assert len(corpus.load_corpus(web_settings.corpus_dir).articles) == 2


def test_cli_add_and_watch(site, pages, web_settings, fake_embedder, monkeypatch, capsys):
    from rag import cli
    from rag.index import embed

    _feed(site, pages)
    for name in ("corpus_dir", "index_dir", "cache_dir", "embed_dim", "chunk_size", "chunk_overlap", "fetch_timeout",
                 "fetch_retries", "fetch_delay", "fetch_allow_private"):
        monkeypatch.setenv(f"RAG_{name.upper()}", str(getattr(web_settings, name)))
    monkeypatch.setattr(embed, "load_embedder", lambda s: fake_embedder)
    assert cli.main(["add", site.url + pages[0].path, site.url + "/khong-co.html"]) == 0
    out = capsys.readouterr().out
    assert "1 added" in out and f"error {site.url}/khong-co.html: HTTP 404" in out
    assert cli.main(["watch", site.url + "/rss", "--every", "15m", "--once"]) == 0
    out = capsys.readouterr().out
    assert "1 added" in out and "1 unchanged" in out  # the page added by URL is the feed's first item
    assert cli.main(["watch", site.url + "/rss", "--every", "soon", "--once"]) == 2


@pytest.mark.skipif(not VIETNEWS.exists(), reason="shared vietnews data not present")
def test_vietnews_pages_through_a_sitemap(web_settings, fake_embedder):
    stories = stories_from_vietnews(VIETNEWS, 4)
    with NewsSite() as s:
        built = [render(st, i) for i, st in enumerate(stories)]
        for p in built:
            s.html(p.path, p.html)
        s.xml("/sitemap.xml", sitemap([(s.url + p.path, p.story.date) for p in built]))
        report = ingest.add(web_settings, [s.url + "/sitemap.xml"], embedder=fake_embedder)
    assert len(report.added) == 4, report.errors
    by_title = {a.title: a for a in corpus.load_corpus(web_settings.corpus_dir).articles}
    for p in built:
        a = by_title[p.story.title]
        assert a.date == p.story.date and _body(p) <= set(a.text.split("\n\n"))
        # a photo credit is left out here: dropping it from the caption is the answers issue's rule (issue 10)
        assert not any(junk in a.text for junk in p.furniture if junk != p.credit)


def test_app_url_field_takes_only_web_addresses(site, pages, web_settings, fake_embedder, tmp_path):
    secret = tmp_path / "secret.md"
    secret.write_text("---\ntitle: Bí mật\n---\nNội dung không được đưa vào kho.\n")
    report = ingest.add_urls(web_settings, f"{site.url}{pages[0].path}\n{secret} ftp://x/y", embedder=fake_embedder)
    assert len(report.added) == 1
    assert report.errors == [f"{secret}: not an http(s) URL", "ftp://x/y: not an http(s) URL"]


def test_add_a_folder_and_files(pages, web_settings, fake_embedder, tmp_path):
    folder = tmp_path / "saved"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "trang.html").write_text(pages[0].html, encoding="utf-8")
    (folder / "ghi-chu.md").write_text("---\ntitle: Ghi chú\ndate: 2025-11-30\n---\nMột ghi chú về hội nghị.\n")
    (folder / "hong.md").write_text("---\ntitle: Hỏng\n")
    report = ingest.add(web_settings, [str(folder), str(tmp_path / "khong-co.md")], embedder=fake_embedder)
    assert sorted(report.added) == ["ghi-chu", "trang"]
    assert [e.split(":")[0] for e in report.errors] == ["khong-co.md", "hong.md"]
    assert not (web_settings.index_dir / "seen-links.json").exists()  # no URL, no web state


def test_watch_goes_on_after_a_failed_poll(site, pages, web_settings, fake_embedder, monkeypatch):
    _feed(site, pages)
    real, calls, log = ingest.add, [], []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise index.IndexCorrupt("index damaged")
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, "add", flaky)
    reports = ingest.watch(web_settings, [site.url + "/rss"], every=1, iterations=2, embedder=fake_embedder,
                           log=log.append, sleep=lambda _s: None)
    assert "poll 1 failed: index damaged" in log and reports[0].failed and len(reports[1].added) == 2


@pytest.mark.parametrize("name, content", [
    ("seen-links.json", "[1, 2, 3]"), ("seen-links.json", '{"http://a/": 5}'), ("seen-links.json", "{not json"),
    ("fetch-state.json", '{"http://a/": "etag"}'), ("fetch-state.json", '{"http://a/": {"etag": 1}}'), ("fetch-state.json", '"x"'),
])
def test_a_state_file_of_the_wrong_shape_is_set_aside_and_the_run_goes_on(site, pages, web_settings, fake_embedder,
                                                                          monkeypatch, capsys, name, content):
    from rag import cli
    from rag.index import embed

    _feed(site, pages)
    state = web_settings.index_dir / name
    state.parent.mkdir(parents=True)
    state.write_text(content)
    for setting in ("corpus_dir", "index_dir", "cache_dir", "embed_dim", "chunk_size", "chunk_overlap", "fetch_timeout",
                    "fetch_retries", "fetch_delay", "fetch_allow_private"):
        monkeypatch.setenv(f"RAG_{setting.upper()}", str(getattr(web_settings, setting)))
    monkeypatch.setattr(embed, "load_embedder", lambda s: fake_embedder)
    assert cli.main(["watch", site.url + "/rss", "--every", "15m", "--once"]) == 0
    out = capsys.readouterr().out
    assert f"warning {state}: " in out and "starting afresh; the old file is kept as " + name + ".bad" in out
    assert "2 added" in out
    assert (state.parent / (name + ".bad")).read_text() == content
    assert isinstance(json.loads(state.read_text()), dict)  # written afresh, the right shape


def test_watch_once_exits_non_zero_after_a_failed_poll(site, web_settings, fake_embedder, monkeypatch, capsys):
    from rag import cli
    from rag.index import embed

    for setting in ("corpus_dir", "index_dir", "cache_dir", "fetch_timeout", "fetch_retries", "fetch_delay", "fetch_allow_private"):
        monkeypatch.setenv(f"RAG_{setting.upper()}", str(getattr(web_settings, setting)))
    monkeypatch.setattr(embed, "load_embedder", lambda s: fake_embedder)
    assert cli.main(["watch", site.url + "/khong-co.xml", "--every", "15m", "--once"]) == 1  # the feed is gone
    monkeypatch.setattr(ingest, "add", lambda *a, **k: (_ for _ in ()).throw(index.IndexCorrupt("index damaged")))
    assert cli.main(["watch", site.url + "/rss", "--every", "15m", "--once"]) == 1
    assert "poll 1 failed: index damaged" in capsys.readouterr().out


def test_add_reports_a_near_duplicate_as_merged_not_added(site, pages, web_settings, fake_embedder):
    first = ingest.add(web_settings, [site.url + pages[0].path], embedder=fake_embedder)
    assert len(first.added) == 1
    retold = pages[0].html.replace(pages[0].story.title, pages[0].story.title + " (cập nhật)")
    paragraphs = pages[0].story.paragraphs
    retold = retold.replace(paragraphs[-1], paragraphs[-1] + " Thêm một câu.")  # nearly the same text, not the same
    site.html("/ban-khac.html", retold.replace(pages[0].path, "/ban-khac.html"))
    again = ingest.add(web_settings.replace(dedup_threshold=0.5), [site.url + "/ban-khac.html"], embedder=fake_embedder)
    assert again.added == [] and list(again.merged.values()) == first.added, again
    assert "1 merged into existing stories" in again.lines()[-1] and not again.failed


@pytest.mark.slow
def test_real_answer_about_pages_that_came_in_through_a_feed(site, pages, tmp_path):
    """The issue's 'done when': a feed served locally, taken in, asked about; the citation carries the
    page's date, site name and URL (real embedder and generator)."""
    from rag.config import load_settings
    from rag.index.embed import load_embedder
    from rag.answer.pipeline import Pipeline

    settings = load_settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", fetch_delay=0.0,
                             fetch_allow_private=True)
    _feed(site, pages)
    embedder = load_embedder(settings)
    report = ingest.add(settings, [site.url + "/rss"], embedder=embedder)
    assert len(report.added) == 2, report.errors
    answer = Pipeline(settings, embedder=embedder).ask("Ai phát biểu khai mạc hội nghị ngày 27/11?")
    assert "Lâm Đình Thắng" in answer.text, answer.text
    page = next(p for p in pages if "htv" in p.story.id)
    c = answer.citations[0]
    assert (c.date, c.source, c.url) == ("2025-11-28", page.site, "https://baosaigonmoi.example" + page.path)


def test_a_page_that_breaks_the_parser_is_one_error(site, pages, web_settings, fake_embedder, monkeypatch):
    real = webpage.html_to_article

    def brittle(html, **kw):
        if "vn-broken" in kw["url"]:
            raise ValueError("unexpected markup")
        return real(html, **kw)

    monkeypatch.setattr(webpage, "html_to_article", brittle)
    site.html("/vn-broken.html", pages[1].html)
    report = ingest.add(web_settings, [site.url + "/vn-broken.html", site.url + pages[0].path], embedder=fake_embedder)
    assert len(report.added) == 1
    assert report.errors == [f"{site.url}/vn-broken.html: could not read the page (ValueError: unexpected markup)"]


def test_limit_takes_the_newest_links_first_and_the_rest_later(site, pages, web_settings, fake_embedder):
    _feed(site, sorted(pages, key=lambda p: p.story.date))  # the older page listed first
    first = ingest.add(web_settings, [site.url + "/rss"], limit=1, embedder=fake_embedder)
    newest = max(pages, key=lambda p: p.story.date)
    assert len(first.added) == 1 and newest.story.id in first.added[0]
    rest = ingest.add(web_settings, [site.url + "/rss"], limit=1, embedder=fake_embedder)
    assert len(rest.added) == 1 and rest.seen == 1 and rest.added != first.added


def test_control_characters_and_size_limit_in_saved_pages(pages, tmp_path):
    hostile = pages[0].html.replace(pages[0].story.title, pages[0].story.title + "\x1b[31m\x00", 1)
    hostile = hostile.replace("<h2 class=\"sapo\">", "<h2 class=\"sapo\">\x07\x9b")
    a = webpage.html_to_article(hostile, url="http://127.0.0.1:9" + pages[0].path)
    assert not any(c in a.title + a.text for c in "\x1b\x00\x07\x9b")
    saved = tmp_path / "trang.html"
    saved.write_text(pages[0].html, encoding="utf-8")
    loaded = corpus.load_corpus(saved, max_article_chars=1_000)
    assert not loaded.articles and "the limit is 1,000 per article" in loaded.errors[0].reason


# ------------------------------------------------------------------ bounded, resumable crawls


def _short_page(n: int) -> str:
    body = "".join(f"<p>Đoạn {k} của tin số {n}: hội đồng thành phố bàn về giao thông, trường học và bệnh viện "
                   f"trong kế hoạch năm {2000 + n}.</p>" for k in range(4))
    return f"<html><head><title>Tin số {n}</title></head><body><article><h1>Tin số {n}</h1>{body}</article></body></html>"


def test_a_crawl_fetches_each_url_once_and_stops_at_the_cap(site, web_settings, fake_embedder):
    """A sitemap index whose children all list the same pages made thousands of requests: now each URL
    once per run, and at most RAG_CRAWL_MAX_URLS of them; the next run takes the rest."""
    for n in range(5):
        site.html(f"/p{n}.html", _short_page(n))
    for i in range(20):
        site.xml(f"/sm{i}.xml", sitemap([(f"{site.url}/p{n}.html", "2025-11-27") for n in range(5)]))
    site.xml("/idx.xml", sitemap_index([f"{site.url}/sm{i}.xml" for i in range(20)]))
    capped = web_settings.replace(crawl_max_urls=15, dedup_threshold=0.0)
    report = ingest.add(capped, [site.url + "/idx.xml"], embedder=fake_embedder)
    asked = [p for p in site.paths_requested() if p != "/robots.txt"]
    assert len(asked) == 15 == report.fetched and len(set(asked)) == len(asked)  # each once
    assert len(report.added) == 5 and any("cap of 15 URLs per run" in e for e in report.errors)
    site.requests.clear()
    rest = ingest.add(web_settings.replace(dedup_threshold=0.0), [site.url + "/idx.xml"], embedder=fake_embedder)
    asked = [p for p in site.paths_requested() if p != "/robots.txt"]
    assert "/idx.xml" in asked and "/sm19.xml" in asked and rest.errors == [] and rest.added == []
    assert len(rest.unchanged) == 9 and rest.seen == 5 * 11  # sm0-sm8 were done with; the others list seen pages


def test_a_killed_crawl_keeps_every_page_it_parsed(site, web_settings, fake_embedder, monkeypatch):
    """Each page is written to the corpus folder and its link marked seen as soon as it is parsed, so a kill
    loses only the page in flight (before: every 10 pages, a kill after 22 kept 20); the index is updated
    every 10 pages, and what a kill left unindexed is indexed by the next run, even one with nothing new."""
    from rag.ingest import fetch

    for n in range(25):
        site.html(f"/p{n}.html", _short_page(n))
    site.xml("/rss", rss("Tin", [(f"{site.url}/p{n}.html", f"Tin số {n}", "2025-11-27") for n in range(25)]), "application/rss+xml")
    real, count = fetch.Fetcher.get, []

    def killed(self, url, *a, **k):
        count.append(url)
        if len(count) == 1 + 23:  # the feed, 22 pages, then the process dies while fetching the 23rd
            raise KeyboardInterrupt
        return real(self, url, *a, **k)

    monkeypatch.setattr(fetch.Fetcher, "get", killed)
    settings = web_settings.replace(dedup_threshold=0.0)
    with pytest.raises(KeyboardInterrupt):
        ingest.add(settings, [site.url + "/rss"], embedder=fake_embedder)
    saved = json.loads((settings.index_dir / "seen-links.json").read_text())
    assert len(saved) == 22 and len(corpus.load_corpus(settings.corpus_dir).articles) == 22  # all 22 pages
    assert len(index.load(settings, expected_embedder=fake_embedder.name).articles) == 20  # indexed at 10 and 20
    assert len(json.loads((settings.index_dir / "unpublished.json").read_text())) == 2

    monkeypatch.setattr(fetch.Fetcher, "get", real)
    ingest.add(settings, [], embedder=fake_embedder)  # any next run indexes what the kill left unindexed
    assert len(index.load(settings, expected_embedder=fake_embedder.name).articles) == 22
    assert not (settings.index_dir / "unpublished.json").exists()
    again = ingest.add(settings, [site.url + "/rss"], embedder=fake_embedder)
    assert len(again.added) == 3 and again.seen == 22
    assert len(index.load(settings, expected_embedder=fake_embedder.name).articles) == 25


def test_the_chat_url_field_has_the_same_cap_and_shows_the_count(site, web_settings, fake_embedder):
    for n in range(4):
        site.html(f"/p{n}.html", _short_page(n))
    text = " ".join(f"{site.url}/p{n}.html" for n in range(4))
    capped = web_settings.replace(crawl_max_urls=2, dedup_threshold=0.0)
    assert ingest.url_field_note(capped, text).startswith("4 địa chỉ / tối đa 2")
    report = ingest.add_urls(capped, text, embedder=fake_embedder)
    assert len(report.added) == 2 and report.fetched == 2 and "cap of 2 URLs per run" in report.errors[0]
    # the chat's button: the same cap, and what happened to the addresses, under the field
    from rag.serve import web
    from rag.answer.pipeline import Pipeline

    demo = web.build_app(Pipeline(capped, embedder=fake_embedder, generator=Scripted()))
    add_urls = next(f.fn for f in demo.fns.values() if f.fn is not None and f.fn.__name__ == "add_urls")
    more = " ".join(f"{site.url}/q{n}.html" for n in range(4))
    for n in range(4):
        site.html(f"/q{n}.html", _short_page(10 + n))
    message = add_urls(more, "default")[0]
    assert message.startswith("2 địa chỉ đã tải.\n\nĐã thêm 2 bài"), message
    assert "cap of 2 URLs per run" in message
