"""`rag add` and `rag watch`: files, folders, web pages, RSS/Atom feeds and sitemaps into the corpus.

Sources flow one way: fetch (rag.ingest.fetch) → links of a feed or sitemap (rag.ingest.feeds) → page → Article
(rag.ingest.webpage) → corpus folder + incremental, lexical-first index update (rag.ingest.manage.add_articles).
Every failure is reported per URL or file and the batch goes on.

State, under the index folder (it describes what this corpus has taken in):
- `fetch-state.json`: ETag / Last-Modified per URL (conditional GET);
- `seen-links.json`: the feed/sitemap links already added (link → article id), so a restarted
  `rag watch` never fetches or adds them again. Written atomically after each page;
- `unpublished.json`: articles written to the corpus folder but not yet indexed (manage.CorpusWriter).
A link whose page failed is not marked seen, and its feed's validators are not updated: the next
poll downloads the feed again and retries the page.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rag.index import collections
from rag.ingest import corpus, feeds, manage, webpage
from rag.config import Settings
from rag.errors import ArticleError, FetchError, RagError
from rag.ingest.fetch import HTML_TYPES, Fetched, Fetcher, FetchState

KINDS = ("auto", "page", "feed", "sitemap")
_MAX_SITEMAP_DEPTH = 2  # a sitemap index of sitemap indexes, no deeper
# each page is written to the corpus folder (and its link marked seen) as soon as it is parsed, so a killed
# run loses at most the page in flight; the index is updated every this many pages (each update reads the
# whole corpus folder: 2.6 s on 1,000 articles, so once per page would make a long crawl quadratic) and at
# the end; pages written but not yet indexed are indexed by the next run (manage.CorpusWriter)
_PUBLISH_EVERY = 10


@dataclass
class IngestReport(manage.AddReport):
    unchanged: list[str] = field(default_factory=list)  # URLs not modified since the last fetch
    seen: int = 0  # feed/sitemap links skipped because they were added before
    warnings: list[str] = field(default_factory=list)  # e.g. a state file reset
    fetched: int = 0  # URLs that answered (200, or 304 not modified): pages, feeds, sitemaps
    refused: int = 0  # URLs the fetch policy refused (rag.ingest.netpolicy): nothing was sent to them
    fetch_failed: int = 0  # URLs that were tried and failed (unreachable, HTTP error, too big, robots.txt...)

    @property
    def failed(self) -> bool:
        """Nothing came in and something went wrong: the run did not do its job (exit status 1)."""
        return bool(self.errors) and not (self.added or self.updated or self.merged)

    def lines(self) -> list[str]:
        out = [f"warning {w}" for w in self.warnings]
        out += [f"added {a}" for a in self.added]
        out += [f"merged {a} into {kept} (the same story)" for a, kept in self.merged.items()]
        out += [f"updated {a}" for a in self.updated]
        out += [f"unchanged {u}" for u in self.unchanged]
        out += [f"duplicate {d}" for d in self.duplicates]
        out += [f"error {e}" for e in self.errors]
        summary = (f"{len(self.added)} added, {len(self.merged)} merged into existing stories, {len(self.updated)} updated, "
                   f"{plural(len(self.duplicates), 'duplicate')}, {plural(len(self.errors), 'error')}")
        summary += f", {len(self.unchanged)} unchanged, {plural(self.seen, 'link')} seen before"
        return out + [summary + ", " + self.fetch_summary()]

    def fetch_summary(self) -> str:
        """What happened to the URLs this run asked for: '3 URLs fetched, 1 refused by the fetch policy'."""
        parts = [f"{plural(self.fetched, 'URL')} fetched"]
        if self.refused:
            parts.append(f"{self.refused} refused by the fetch policy")
        if self.fetch_failed:
            parts.append(f"{self.fetch_failed} failed")
        return ", ".join(parts)


def plural(n: int, word: str) -> str:
    """'1 URL', '2 URLs', '0 errors'."""
    return f"{n} {word}" + ("" if n == 1 else "s")


class SeenLinks:
    """Links already taken in, persisted atomically as JSON (link → article id, None if it was added before
    under its own URL)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.links: dict[str, str | None]
        self.links, self.warning = corpus.load_state(
            self.path, lambda d: all(isinstance(k, str) and isinstance(v, (str, type(None))) for k, v in d.items()), "seen links"
        )

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        corpus.atomic_write(self.path, json.dumps(self.links, ensure_ascii=False, indent=1).encode("utf-8"))


def add(
    settings: Settings,
    sources: list[str],
    *,
    kind: str = "auto",
    limit: int | None = None,
    embedder=None,
    log: Callable[[str], None] = lambda _m: None,
    on_publish: Callable[[], object] | None = None,
) -> IngestReport:
    """Add every source (a file, a folder, a page URL, a feed or sitemap URL) to the corpus and index it.
    `kind` forces how URLs are read ('feed', 'sitemap', 'page'); 'auto' looks at what comes back.
    `limit`: at most that many new links per feed or sitemap, newest first (the rest wait for a later run).
    `on_publish`: as in manage.add_files (each index version going live)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    with collections.writing(settings):  # the whole run: `rag collections delete` refuses meanwhile
        return _add(settings, sources, kind, limit, embedder, log, on_publish)


def _add(settings, sources, kind, limit, embedder, log, on_publish) -> IngestReport:
    """`add`, the collection held."""
    batch = _Batch(IngestReport(), SeenLinks(settings.index_dir / "seen-links.json"), log, limit)
    batch.report.warnings += [batch.seen.warning] if batch.seen.warning else []
    paths = [Path(s) for s in sources if "://" not in s]
    batch.parsed.extend(manage.read_files(settings, [p for p in paths if not p.is_dir()], batch.report))
    for folder in (p for p in paths if p.is_dir()):
        _read_folder(folder, batch, settings)
    urls = [s for s in sources if "://" in s]
    state = FetchState(settings.index_dir / "fetch-state.json") if urls else None
    batch.report.warnings += [state.warning] if state is not None and state.warning else []

    writer = manage.CorpusWriter(settings, batch.report)

    def save() -> None:  # what is parsed so far into the corpus folder, its links and validators saved
        if batch.parsed:
            writer.write(batch.parsed)
            batch.parsed.clear()
        if state is not None:
            batch.commit_pages(state)
        if writer.unpublished >= _PUBLISH_EVERY:
            writer.publish(embedder, on_publish=on_publish)

    batch.save, batch.budget = save, settings.crawl_max_urls
    if urls:
        with Fetcher(settings, state) as f:
            for url in urls:
                log(f"fetching {url}")
                batch.take_url(f, url, kind)
    save()
    writer.publish(embedder, on_publish=on_publish)
    if state is not None:
        batch.commit_feeds(state)
    return batch.report


def add_urls(settings: Settings, text: str, *, embedder=None, on_publish: Callable[[], object] | None = None) -> IngestReport:
    """`add` for untrusted input (the web app's URL field): whitespace-separated http(s) URLs only; anything
    else is reported, never read as a path on this machine."""
    words = text.split()
    urls = [w for w in words if w.lower().startswith(("http://", "https://"))]
    report = add(settings, urls, embedder=embedder, on_publish=on_publish) if urls else IngestReport()
    report.errors += [f"{w}: not an http(s) URL" for w in words if w not in urls]
    return report


def url_field_note(settings: Settings, text: str) -> str:
    """What the chat shows under its URL field: how many addresses it holds against the per-run cap."""
    n = sum(w.lower().startswith(("http://", "https://")) for w in (text or "").split())
    over = " — vượt giới hạn, phần còn lại để lần sau" if n > settings.crawl_max_urls else ""
    return f"{n} địa chỉ / tối đa {settings.crawl_max_urls} địa chỉ được tải mỗi lần{over}"


def url_result_note(report: IngestReport) -> str:
    """What the chat shows after its URL field was read: how many addresses were fetched, refused, failed."""
    parts = [f"{report.fetched} địa chỉ đã tải"]
    if report.refused:
        parts.append(f"{report.refused} bị từ chối (chính sách tải: địa chỉ nội bộ)")
    if report.fetch_failed:
        parts.append(f"{report.fetch_failed} không tải được")
    return ", ".join(parts) + "."


def watch(
    settings: Settings,
    feed_urls: list[str],
    *,
    every: float,
    iterations: int | None = None,
    kind: str = "auto",
    limit: int | None = None,
    embedder=None,
    log: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> list[IngestReport]:
    """Poll the feeds every `every` seconds and add new items; `iterations`: stop after that many polls
    (None: until interrupted). A restart picks up where it stopped (seen links, validators on disk).
    One report per poll; a poll that raised gets one with just that error."""
    reports = []
    n = 0
    while iterations is None or n < iterations:
        if n:
            sleep(every)
        n += 1
        try:
            report = add(settings, feed_urls, kind=kind, limit=limit, embedder=embedder, log=log)
        except RagError as e:  # e.g. the index is locked or broken: say so, poll again next time
            log(f"poll {n} failed: {e}")
            reports.append(IngestReport(errors=[f"poll {n} failed: {e}"]))
            continue
        for line in report.lines():
            log(line)
        reports.append(report)
    return reports


def parse_every(value: str) -> float:
    """'15m', '30s', '2h', '1d' or plain seconds → seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value)
    if not m:
        raise ValueError(f"not a duration: {value!r} (e.g. 15m, 30s, 2h)")
    seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {value!r}")
    return seconds


# ------------------------------------------------------------------ internals


def _read_folder(folder: Path, batch: _Batch, settings: Settings) -> None:
    """Every article file under `folder`, read as the corpus reader reads the corpus folder."""
    loaded = corpus.load_corpus(folder, **corpus.limits(settings))
    batch.report.errors.extend(f"{manage.display_name(e.path)}: {e.reason}" for e in loaded.errors)
    batch.report.duplicates.extend(f"{manage.display_name(where)}: same text as {kept!r} in {folder}" for where, kept in loaded.duplicates)
    batch.parsed.extend((a.path, [a]) for a in loaded.articles)


@dataclass
class _Batch:
    report: IngestReport
    seen: SeenLinks
    log: Callable[[str], None]
    limit: int | None = None  # new links per feed or sitemap
    parsed: list[tuple[str | Path, list]] = field(default_factory=list)  # for manage.add_articles
    pages: dict[str, tuple[Fetched, str | None, str | None]] = field(default_factory=dict)  # id -> (page, link, feed)
    feeds: dict[str, Fetched] = field(default_factory=dict)  # feed/sitemap URL -> its response
    failed_feeds: set[str] = field(default_factory=set)  # feeds with a link that failed: fetch them in full next time
    budget: int = 500  # URLs this run may still fetch (Settings.crawl_max_urls)
    requested: set[str] = field(default_factory=set)  # URLs asked for this run: each once, however often it is listed
    save: Callable[[], None] = lambda: None  # writes the pages parsed so far (set by `add`)

    def commit_pages(self, state: FetchState) -> None:
        """After a corpus write: what is in the corpus now (added, or there already) is done with, its
        validators and links are kept; a feed with a link that did not make it is fetched in full next time."""
        taken = set(self.report.added + self.report.updated) | set(self.report.merged) | {d.split(": ", 1)[0] for d in self.report.duplicates}
        for article_id, (page, link, feed) in self.pages.items():
            if article_id in taken or page.url in taken:
                state.remember(page)
                if link:
                    self.seen.links[link] = article_id
            elif feed:
                self.failed_feeds.add(feed)
        self.pages.clear()
        self.seen.save()

    def commit_feeds(self, state: FetchState) -> None:
        """At the end of the run only: a feed's validators say 'all of it was taken in' (a 304 next time)."""
        for url, fetched in self.feeds.items():
            if url not in self.failed_feeds:
                state.remember(fetched)

    def claim(self, url: str, feed_url: str | None = None) -> bool:
        """Whether to fetch `url` now: not if it was fetched already this run, nor past the run's URL cap
        (then its feed is fetched in full next time, and the rest waits for that run)."""
        if url in self.requested:
            return False
        if self.budget <= 0:
            if self.budget == 0:
                self.report.errors.append(f"{url}: stopped at the cap of {len(self.requested)} URLs per run "
                                          "(RAG_CRAWL_MAX_URLS); the rest next run")
                self.budget -= 1  # said once
            if feed_url:
                self.failed_feeds.add(feed_url)
            return False
        self.requested.add(url)
        self.budget -= 1
        return True

    def get(self, fetcher: Fetcher, url: str, **kw) -> Fetched | None:
        """fetcher.get(url), counted as fetched, refused or failed; None (and the error reported) if it failed."""
        try:
            fetched = fetcher.get(url, **kw)
        except FetchError as e:
            self.report.errors.append(str(e))
            if e.refused:
                self.report.refused += 1
            else:
                self.report.fetch_failed += 1
            return None
        self.report.fetched += 1
        return fetched

    def take_url(self, fetcher: Fetcher, url: str, kind: str, depth: int = 0, parent: str | None = None) -> None:
        if not self.claim(url, parent):
            return
        fetched = self.get(fetcher, url)
        if fetched is None:
            return
        if fetched.not_modified:
            self.report.unchanged.append(url)
            return
        found = feeds.kind(fetched.content) if kind != "page" else None
        if (kind == "feed" and found != "feed") or (kind == "sitemap" and found not in ("sitemap", "sitemapindex")):
            what = "an RSS/Atom feed" if kind == "feed" else "a sitemap"
            self.report.errors.append(f"{url}: not {what} ({fetched.content_type or 'no content type'})")
            return
        if found is None:
            self._take_page(fetched, url)
            return
        self.feeds[url] = fetched
        entries = feeds.entries(fetched.content, fetched.final_url)
        self.log(f"{url}: {found} with {len(entries)} links")
        if found == "sitemapindex":
            for entry in entries:
                if depth < _MAX_SITEMAP_DEPTH:
                    self.take_url(fetcher, entry.url, "sitemap", depth + 1, url)
            return
        fresh = [e for e in entries if e.url not in self.seen.links]
        self.report.seen += len(entries) - len(fresh)
        fresh.sort(key=lambda e: e.date or "", reverse=True)  # stable: undated links keep their order, last
        if self.limit is not None and len(fresh) > self.limit:
            self.log(f"{url}: taking the newest {self.limit} of {len(fresh)} new links; the rest next time")
            fresh = fresh[: self.limit]
            self.failed_feeds.add(url)  # not done with it: fetch it in full next time
        for entry in fresh:
            self._take_link(fetcher, entry, url)

    def _take_link(self, fetcher: Fetcher, entry: feeds.Entry, feed_url: str) -> None:
        if not self.claim(entry.url, feed_url):
            return
        page = self.get(fetcher, entry.url, accept=HTML_TYPES)
        if page is None:
            self.failed_feeds.add(feed_url)
            return
        if page.not_modified:  # taken in before, by its own URL or through another feed
            self.report.unchanged.append(entry.url)
            self.seen.links[entry.url] = None
        elif not self._take_page(page, entry.url, entry, feed_url):
            self.failed_feeds.add(feed_url)

    def _take_page(self, fetched: Fetched, url: str, entry: feeds.Entry | None = None, feed_url: str | None = None) -> bool:
        if fetched.content_type and fetched.content_type not in HTML_TYPES:
            self.report.errors.append(f"{url}: content type {fetched.content_type} is not an HTML page")
            return False
        try:
            article = webpage.html_to_article(
                webpage.decode(fetched.content, fetched.charset),
                url=fetched.final_url,
                where=url,
                fallback_title=entry.title if entry else None,
                fallback_date=entry.date if entry else None,
                fallback_source=entry.source if entry else None,
            )
        except ArticleError as e:
            self.report.errors.append(f"{url}: {e.reason}")
            return False
        except Exception as e:  # noqa: BLE001 -- a page from the web that breaks a parser must not end the batch
            self.report.errors.append(f"{url}: could not read the page ({type(e).__name__}: {e})")
            return False
        self.parsed.append((url, [article]))
        self.pages[article.id] = (fetched, url if entry else None, feed_url)
        self.save()
        return True
