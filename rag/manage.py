"""Corpus management for the web app (and any other face): add uploaded files, list, remove.

Uploaded files are untrusted: their size and type are checked, they are parsed strictly with
`corpus.load_file`, and only the parsed articles are written, under names `corpus.write_article`
derives from the article id; the uploaded file name is never used as a path. Every change ends with
an incremental `index.update` over the whole corpus folder. One process-wide lock serialises changes
(index.update also takes a file lock against other processes); readers keep the immutable Index they
hold, and the caller picks up the new version with `Pipeline.reload()`.
"""
from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rag import corpus, index as index_mod, store
from rag.config import Settings
from rag.errors import ArticleError, ArticleNotFound, CorpusEmpty
from rag.types import Article

UPLOAD_SUFFIXES = (".md", ".markdown", ".txt", ".jsonl")
MAX_BYTES = 5_000_000

Progress = Callable[..., object]  # called as progress(fraction, desc=...): gr.Progress fits

_LOCK = threading.Lock()  # one corpus change (files + index update) at a time in this process


@dataclass
class AddReport:
    added: list[str] = field(default_factory=list)  # article ids written to the corpus
    errors: list[str] = field(default_factory=list)  # "<file name>: <reason>", nothing of that file written
    duplicates: list[str] = field(default_factory=list)  # "<file name>: <reason>" for articles already there
    index: index_mod.IndexReport | None = None  # None when nothing was added


@dataclass
class RemoveReport:
    removed: str  # article id
    files: list[str]  # corpus files deleted or rewritten
    index: index_mod.IndexReport


def _name(where) -> str:
    """The file name (and jsonl line) of a location, for messages: never the upload's temp folder."""
    return Path(str(where)).name


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


def _reindex(settings: Settings, embedder, progress: Progress | None) -> index_mod.IndexReport:
    """index.update over the whole corpus folder (caller holds _LOCK)."""
    from rag.embed import load_embedder, open_cache

    loaded = corpus.load_corpus(settings.corpus_dir)
    _step(progress, 0.3, f"Đang lập chỉ mục {len(loaded.articles)} bài báo…")
    return store.update(
        settings,
        loaded.articles,
        embedder if embedder is not None else load_embedder(settings),
        progress=progress is not None,  # tqdm bars, which gr.Progress(track_tqdm=True) shows
        log=lambda _message: None,
        cache=open_cache(settings),
    )


def add_files(
    settings: Settings,
    paths: list[Path],
    *,
    embedder=None,
    max_bytes: int = MAX_BYTES,
    progress: Progress | None = None,
) -> AddReport:
    """Parse each file, write its new articles into settings.corpus_dir, then update the index.
    A bad file is reported in `errors` and contributes nothing; the others are still added.
    `embedder` defaults to the configured one (load_embedder)."""
    report = AddReport()
    parsed: list[tuple[Path, list[Article]]] = []
    for i, raw in enumerate(paths):
        path = Path(raw)
        _step(progress, 0.1 * i / max(len(paths), 1), f"Đang đọc {path.name}…")
        try:
            _check_upload(path, max_bytes)
            parsed.append((path, corpus.load_file(path)))
        except ArticleError as e:
            report.errors.append(f"{_name(e.path)}: {e.reason}")

    with _LOCK:
        existing = corpus.load_corpus(settings.corpus_dir)
        ids = {a.id for a in existing.articles}
        texts = {_text_key(a): a.id for a in existing.articles}
        new: list[Article] = []
        for path, articles in parsed:
            for a in articles:
                target = settings.corpus_dir / corpus.article_filename(a.id)
                where = _name(a.path or path)
                if _text_key(a) in texts:
                    report.duplicates.append(f"{where}: same text as the article {texts[_text_key(a)]!r}")
                elif a.id in ids:
                    report.errors.append(f"{where}: id {a.id!r} is already used by another article; change the id")
                elif target.exists():
                    report.errors.append(f"{where}: the corpus already has a file {target.name}; change the id")
                else:
                    ids.add(a.id)
                    texts[_text_key(a)] = a.id
                    new.append(a)
        if not new:
            return report
        _step(progress, 0.2, f"Đang lưu {len(new)} bài báo…")
        for a in new:
            corpus.write_article(a, settings.corpus_dir)
            report.added.append(a.id)
        report.index = _reindex(settings, embedder, progress)
    _step(progress, 1.0, "Xong")
    return report


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


def remove_article(settings: Settings, article_id: str, *, embedder=None, progress: Progress | None = None) -> RemoveReport:
    """Delete the article (and any identical copies the reader skipped) from the corpus folder, then
    update the index. A .jsonl file loses just that line; a Markdown/text file is deleted."""
    with _LOCK:
        loaded = corpus.load_corpus(settings.corpus_dir)
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
        report = _reindex(settings, embedder, progress)
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
