"""Corpus management for the web app (and any other face): add uploaded files, list, remove.

Uploaded files are untrusted: their size and type are checked, they are parsed strictly with
`corpus.load_file`, and only the parsed articles are written, under names `corpus.write_article`
derives from the article id; the uploaded file name is never used as a path. Every change ends with
an incremental `index.update` over the whole corpus folder, lexical-first: the change is searchable
at once, and only the uploaded articles are embedded (chunks a `rag index --max-embed` run left
without a vector stay that command's job). One process-wide lock serialises changes
(index.update also takes a file lock against other processes); readers keep the immutable Index they
hold, and the caller picks up the new version with `Pipeline.reload()`.
"""
from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rag.index import collections, build as index_mod, store
from rag.ingest import corpus
from rag.config import Settings
from rag.errors import ArticleError, ArticleNotFound, CorpusEmpty
from rag.types import Article

UPLOAD_SUFFIXES = (".md", ".markdown", ".txt", ".jsonl", ".html", ".htm")
MAX_BYTES = 5_000_000

Progress = Callable[..., object]  # called as progress(fraction, desc=...): gr.Progress fits

_LOCK = threading.RLock()  # one corpus change (files + index update) at a time in this process


@dataclass
class AddReport:
    added: list[str] = field(default_factory=list)  # article ids written to the corpus
    updated: list[str] = field(default_factory=list)  # ids of web pages taken in before whose text has changed
    errors: list[str] = field(default_factory=list)  # "<file name>: <reason>", nothing of that file written
    duplicates: list[str] = field(default_factory=list)  # "<file name>: <reason>" for articles already there
    merged: dict[str, str] = field(default_factory=dict)  # written, but indexed as another telling of a story already there: id -> that story's id
    index: index_mod.IndexReport | None = None  # None when nothing was added


@dataclass
class RemoveReport:
    removed: str  # article id
    files: list[str]  # corpus files deleted or rewritten
    index: index_mod.IndexReport


def display_name(where) -> str:
    """The file name (and jsonl line) of a location, for messages: never the upload's temp folder.
    A URL is shown whole."""
    return str(where) if "://" in str(where) else Path(str(where)).name


def _check_upload(path: Path, max_bytes: int) -> None:
    if not path.name.lower().endswith(UPLOAD_SUFFIXES):
        raise ArticleError(path, f"unsupported file type: upload {', '.join(UPLOAD_SUFFIXES)} files")
    if not path.is_file():
        raise ArticleError(path, "not a readable file")
    size = path.stat().st_size
    if size > max_bytes:
        raise ArticleError(path, f"file is {size:,} bytes; the limit is {max_bytes:,}")


def _step(progress: Progress | None, fraction: float, desc: str) -> None:
    if progress is not None:
        progress(fraction, desc=desc)


def _reindex(
    settings: Settings, embedder, progress: Progress | None, embed: set[str], on_publish: Callable[[], object] | None
) -> tuple[index_mod.IndexReport, corpus.LoadResult]:
    """index.update over the whole corpus folder, embedding only the articles in `embed` (caller holds _LOCK);
    also what the corpus reader made of the folder (which files it merged into which stories)."""
    from rag.index.embed import load_embedder, open_cache

    from rag.ingest.dedup import open_cache as dedup_cache

    signatures = dedup_cache(settings) if settings.dedup_threshold else None
    loaded = corpus.load_corpus(
        settings.corpus_dir, settings.dedup_threshold, signatures, **corpus.limits(settings)
    )
    _step(progress, 0.3, f"Đang lập chỉ mục {len(loaded.articles)} bài báo…")
    updated = store.update(
        settings,
        loaded.articles,
        embedder if embedder is not None else load_embedder(settings),
        progress=progress is not None,  # tqdm bars, which gr.Progress(track_tqdm=True) shows
        log=lambda _message: None,
        cache=open_cache(settings),
        lexical_first=True,
        embed_only=embed,
        on_publish=on_publish,
    )
    return updated, loaded


def build_index(settings: Settings, embedder=None, log: Callable[[str], object] = print) -> index_mod.IndexReport:
    """Index the whole corpus folder (lexical first, then every vector): what `ask()` does on a fresh install
    that has articles but no index yet, instead of failing. CorpusEmpty when there is nothing to index."""
    with _LOCK:
        try:
            report, loaded = _reindex(settings, embedder, lambda _f, desc="": log(desc), None, None)
        except CorpusEmpty as e:
            raise CorpusEmpty(f"no index yet and no articles in {settings.corpus_dir} to build one from: add .md, .txt "
                              "or .jsonl files there (or `rag add URL`), then run `rag index`") from e
    for err in loaded.errors:
        log(f"skipped {err}")
    return report


def add_files(
    settings: Settings,
    paths: list[Path],
    *,
    embedder=None,
    max_bytes: int = MAX_BYTES,
    progress: Progress | None = None,
    on_publish: Callable[[], object] | None = None,
) -> AddReport:
    """Parse each file, write its new articles into settings.corpus_dir, then update the index.
    A bad file is reported in `errors` and contributes nothing; the others are still added.
    `embedder` defaults to the configured one (load_embedder). `on_publish()` runs when an index
    version goes live: first with the new articles searchable lexically, then with their vectors."""
    report = AddReport()
    parsed = read_files(settings, paths, report, max_bytes=max_bytes, progress=progress)
    return add_articles(settings, parsed, embedder=embedder, progress=progress, report=report, on_publish=on_publish)


def read_files(
    settings: Settings, paths: list[Path], report: AddReport, *, max_bytes: int = MAX_BYTES, progress: Progress | None = None
) -> list[tuple[Path, list[Article]]]:
    """(file, its articles) for each good file; each bad one gets a line in report.errors."""
    parsed: list[tuple[Path, list[Article]]] = []
    for i, raw in enumerate(paths):
        path = Path(raw)
        _step(progress, 0.1 * i / max(len(paths), 1), f"Đang đọc {path.name}…")
        try:
            _check_upload(path, max_bytes)
            parsed.append((path, corpus.load_file(path, **corpus.limits(settings))))
        except ArticleError as e:
            report.errors.append(f"{display_name(e.path)}: {e.reason}")
    return parsed


def add_articles(
    settings: Settings,
    parsed: list[tuple[str | Path, list[Article]]],
    *,
    embedder=None,
    progress: Progress | None = None,
    report: AddReport | None = None,
    on_publish: Callable[[], object] | None = None,
) -> AddReport:
    """Write the new articles among `parsed` ((where they came from, articles) pairs: a file, a URL)
    into settings.corpus_dir, then update the index. An article whose text or id is already there is
    reported in `duplicates` / `errors` and not written, except a web page whose URL and id are those of
    an article written here before: its new text replaces the old (`updated`)."""
    report = report or AddReport()
    with _LOCK, collections.writing(settings):  # from the first file to the published index: no delete between
        writer = CorpusWriter(settings, report)
        writer.write(parsed, progress)
        if not writer.unpublished:
            return report
        writer.publish(embedder, progress, on_publish)
    _step(progress, 1.0, "Xong")
    return report


class CorpusWriter:
    """Articles into the corpus folder as they come, checked against one reading of it, and into the index
    when asked (publish). A crawl writes each page as it is parsed, which costs a file write, and publishes
    every few pages, which costs a reading of the whole corpus folder and an index update: a run killed in
    between keeps its files, listed in the index folder's `unpublished.json`, which the next writer of this
    corpus (any add, upload or crawl) publishes and embeds."""

    def __init__(self, settings: Settings, report: AddReport):
        self.settings, self.report = settings, report
        self._pending = settings.index_dir / store.UNPUBLISHED
        left, _warning = corpus.load_state(self._pending, lambda d: all(isinstance(v, str) for v in d.values()),
                                           "unpublished articles")
        self.embed: set[str] = set(left)  # written, not yet published: to embed at the next publish
        self.written: dict[str, str] = {}  # file -> id, written since the last publish
        self._known = False  # the corpus folder is read at the first write, not before (a run may write nothing)

    @property
    def unpublished(self) -> int:
        return len(self.embed)

    def _read_corpus(self) -> None:
        existing = corpus.load_corpus(self.settings.corpus_dir, **corpus.limits(self.settings))
        self.ids = {a.id for a in existing.articles}
        self.texts = {_text_key(a): a.id for a in existing.articles}
        self.urls = {a.url: a.id for a in existing.articles if a.url}  # a web page keeps its id: same URL, same article
        self.files = {a.id: Path(str(a.path)) for a in existing.articles}
        self._known = True

    def write(self, parsed: list[tuple[str | Path, list[Article]]], progress: Progress | None = None) -> None:
        """Write what is new among `parsed` (see add_articles), each file atomically; recorded as unpublished."""
        report, settings = self.report, self.settings
        with _LOCK, collections.writing(settings):  # a deleted collection's corpus folder is not made again
            if not self._known:
                self._read_corpus()
            new: list[Article] = []
            changed: list[Article] = []
            for path, articles in parsed:
                for a in articles:
                    target = settings.corpus_dir / corpus.article_filename(a.id)
                    where = display_name(a.path or path)
                    if _text_key(a) in self.texts:
                        report.duplicates.append(f"{where}: same text as the article {self.texts[_text_key(a)]!r}")
                    elif a.url and self.urls.get(a.url) == a.id:
                        if self.files.get(a.id) == target:  # its own file: the page changed since it was taken in
                            self.texts[_text_key(a)] = a.id
                            changed.append(a)
                        else:
                            report.duplicates.append(f"{where}: already in the corpus as {a.id!r} (same URL)")
                    elif a.id in self.ids:
                        report.errors.append(f"{where}: id {a.id!r} is already used by another article; change the id")
                    elif target.exists():
                        report.errors.append(f"{where}: the corpus already has a file {target.name}; change the id")
                    else:
                        self.ids.add(a.id)
                        self.texts[_text_key(a)] = a.id
                        if a.url:
                            self.urls[a.url] = a.id
                        new.append(a)
            if not new and not changed:
                return
            _step(progress, 0.2, f"Đang lưu {len(new) + len(changed)} bài báo…")
            for articles, ids_out in ((new, report.added), (changed, report.updated)):
                for a in articles:
                    path = corpus.write_article(a, settings.corpus_dir)
                    self.written[str(path)] = a.id
                    self.files.setdefault(a.id, path)
                    self.embed.add(a.id)
                    ids_out.append(a.id)
            self._save_pending()

    def publish(self, embedder=None, progress: Progress | None = None,
                on_publish: Callable[[], object] | None = None) -> None:
        """Index what was written (the whole corpus folder, lexical first, embedding only the new articles)."""
        if not self.embed:
            return
        report = self.report
        with _LOCK:
            report.index, loaded = _reindex(self.settings, embedder, progress, set(self.embed), on_publish)
            # a new article the reader took for a story already there is not an added one (rag.ingest.dedup); the
            # reader keeps the first file in name order, which may be the new one, with the old one merged into it
            known = self.files if self._known else {}
            old = {str(path): article_id for article_id, path in known.items() if str(path) not in self.written}
            for where, kept in loaded.near_duplicates:
                new_id, story = ((self.written.get(str(where)), kept) if str(where) in self.written
                                 else (kept, old.get(str(where))))
                if new_id in report.added and story and story != new_id:
                    report.added.remove(new_id)
                    report.merged[new_id] = story
            self.embed.clear()
            self.written.clear()  # (and store.update has removed the list of them from the index folder)

    def _save_pending(self) -> None:
        self._pending.parent.mkdir(parents=True, exist_ok=True)
        names = {article_id: str(path) for path, article_id in self.written.items()}
        names.update({article_id: "" for article_id in self.embed if article_id not in names})
        corpus.atomic_write(self._pending, json.dumps(names, ensure_ascii=False, indent=1).encode("utf-8"))


def _text_key(article: Article) -> str:
    return " ".join(article.text.split())  # the corpus reader's duplicate rule: same text, any line breaks


def list_articles(index: index_mod.Index) -> list[dict]:
    """One row per indexed article, newest first: id, title, date, source, chunks."""
    counts = Counter(c.article_id for c in index.chunks)
    rows = [
        {"id": a.id, "title": a.title, "date": a.date, "source": a.source, "chunks": counts[a.id]}
        for a in index.articles.values()
    ]
    return sorted(rows, key=lambda r: (r["date"] or "", r["title"]), reverse=True)


def remove_article(
    settings: Settings, article_id: str, *, embedder=None, progress: Progress | None = None,
    on_publish: Callable[[], object] | None = None,
) -> RemoveReport:
    """Delete the article (and any identical copies the reader skipped) from the corpus folder, then
    update the index. A .jsonl file loses just that line; a Markdown/text file is deleted."""
    with _LOCK, collections.writing(settings):
        loaded = corpus.load_corpus(settings.corpus_dir, **corpus.limits(settings))
        article = next((a for a in loaded.articles if a.id == article_id), None)
        if article is None:
            raise ArticleNotFound(f"no article with id {article_id!r} in {settings.corpus_dir}")
        if len(loaded.articles) == 1:
            raise CorpusEmpty(f"{article_id!r} is the last article: add another one before removing it")
        places = [article.path] + [where for where, kept in loaded.duplicates if kept == article_id]
        lines: dict[Path, set[int]] = {}
        for where in places:
            file, line = _location(str(where), settings.corpus_dir)
            lines.setdefault(file, set()).update([line] if line else [])
        _step(progress, 0.1, f"Đang xoá {article_id}…")
        for file, numbers in lines.items():
            if numbers:
                _drop_lines(file, numbers)
            else:
                file.unlink()
        report, _loaded = _reindex(settings, embedder, progress, set(), on_publish)  # nothing new to embed
    _step(progress, 1.0, "Xong")
    return RemoveReport(article_id, [str(f) for f in lines], report)


def _location(where: str, corpus_dir: Path) -> tuple[Path, int | None]:
    """(file, jsonl line number or None) of an Article.path, checked to lie inside the corpus folder."""
    file, line = Path(where), None
    head, _, tail = where.rpartition(":")
    if head.lower().endswith(corpus.JSONL_SUFFIXES) and tail.isdigit():
        file, line = Path(head), int(tail)
    root = corpus_dir.resolve()
    if not file.resolve().is_relative_to(root):
        raise ArticleError(file, f"is outside the corpus folder {root}; not touching it")
    if line is not None and file.name.lower().endswith(".gz"):
        raise ArticleError(file, "is compressed: remove the line from it by hand, then run `rag index`")
    return file, line


def _drop_lines(file: Path, numbers: set[int]) -> None:
    """Rewrite a jsonl file without the given 1-based lines, atomically; delete it if nothing is left."""
    with file.open("rb") as f:
        kept = [raw for n, raw in enumerate(f, 1) if n not in numbers]
    if not any(raw.strip() for raw in kept):
        file.unlink()
        return
    corpus.atomic_write(file, b"".join(kept))
