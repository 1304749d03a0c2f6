"""Read news articles from files into `Article`s, cleaned, deduplicated, with bad files reported.

Formats:
- `.md` / `.markdown` / `.txt`: optional YAML front matter between `---` lines (id, title, date,
  source, url, language; other keys go to `metadata`), then the body, one paragraph per line.
  Without front matter the title is the first line that is not page furniture, and the date
  comes from a page header line such as "Công nghệ Thứ Sáu 28/11/2025, 07:36".
- `.jsonl` / `.jsonl.gz`: one JSON object per line with id, title, date, source, url, text;
  other fields (e.g. `summary`) go to `metadata`.
- `.html` / `.htm`: a saved web page, read by `rag.ingest.webpage` (main text, title, date, site name);
  the id is the file name.

Files are untrusted: YAML aliases are refused (a few hundred bytes of them expand to gigabytes),
control characters are stripped from text and metadata, an article longer than
`Settings.max_article_chars` is skipped, an .html/.md/.txt file bigger than `Settings.max_file_bytes` is
skipped before it is read (a 20 MB one-line page costs minutes and gigabytes in the HTML parser), and any failure while reading one file (or one jsonl line),
whatever its exception, is reported as a skip of that file while the others are read.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import hashlib
import json
import logging
import os
import re
import tempfile
import unicodedata
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

import yaml

from rag.ingest.clean import clean_text, is_dateline, is_furniture_line, normalize, parse_date, strip_controls  # noqa: F401 (parse_date: rag.ingest.corpus.parse_date)
from rag.config import Settings
from rag.errors import ArticleError
from rag.types import Article

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".md", ".markdown", ".txt")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
HTML_SUFFIXES = (".html", ".htm")
_FIELDS = ("id", "title", "date", "source", "url", "language")  # the rest of an article's keys is metadata
_HEADER_LINES = 5  # non-empty lines at the top of a body searched for a page header with the date
_TITLE_MAX = 150  # characters; a longer first line is a paragraph: shorten it for the title, keep it in the text
_METADATA_DEPTH = 20  # nesting levels of metadata kept; deeper is an attack or an error, not news metadata
MAX_CHARS = Settings.max_article_chars  # the defaults of load_file / load_corpus
MAX_FILE_BYTES = Settings.max_file_bytes



@dataclass
class LoadResult:
    articles: list[Article] = field(default_factory=list)
    errors: list[ArticleError] = field(default_factory=list)  # files or jsonl lines skipped, with the reason
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (where the skipped copy was, id of the kept one)
    near_duplicates: list[tuple[str, str]] = field(default_factory=list)  # the same, for a near-identical text
    warnings: list[str] = field(default_factory=list)  # loaded anyway: unparseable date, unsupported file skipped


def limits(settings: Settings) -> dict:
    """The size limits of `settings` as keyword arguments of load_file / load_corpus."""
    return {"max_article_chars": settings.max_article_chars, "max_file_bytes": settings.max_file_bytes}


def load_file(
    path: Path, near_duplicates: float | None = None, *, max_article_chars: int = MAX_CHARS, max_file_bytes: int = MAX_FILE_BYTES
) -> list[Article]:
    """The articles of one file. Strict: raises ArticleError for a bad file, or for the first bad
    line of a jsonl file. Duplicates are dropped (see load_corpus); warnings are logged."""
    collector = _Collector(max_article_chars, near_duplicates, max_file_bytes=max_file_bytes)
    collector.add_file(Path(path))
    for warning in collector.result.warnings:
        log.warning(warning)
    if collector.result.errors:
        raise collector.result.errors[0]
    return collector.result.articles


def load_corpus(
    path: Path | list[Path], near_duplicates: float | None = None, signature_cache=None, *,
    max_article_chars: int = MAX_CHARS, max_file_bytes: int = MAX_FILE_BYTES,
) -> LoadResult:
    """Every article under a directory (recursively, sorted; hidden files and README.* skipped),
    in a file, or in a list of files. Never raises for a bad file: it is listed in `errors`.

    An article whose text is the same as an earlier one's, or (with `near_duplicates`, a Jaccard
    threshold, see rag.ingest.dedup) nearly the same, is kept once: the first copy stays, and the others'
    title, source, URL and date are added to its `also` list, so citations name every source.
    `signature_cache` (rag.ingest.dedup.open_cache) keeps the texts' MinHash signatures between runs."""
    collector = _Collector(max_article_chars, near_duplicates, signature_cache, max_file_bytes=max_file_bytes)
    for file in _corpus_files([Path(p) for p in path] if isinstance(path, list) else [Path(path)], collector):
        collector.add_file(file)
    if collector.near is not None:
        collector.near.flush()
    return collector.result


def article_filename(article_id: str) -> str:
    """A file name for an id that stays inside its folder: no separators, no '..', no leading dot.
    An id that had to be changed gets a hash suffix, so distinct ids never share a file."""
    stem = re.sub(r"[^\w.-]+", "-", unicodedata.normalize("NFC", article_id))
    stem = re.sub(r"\.{2,}", ".", stem).strip(".-_")[:100] or "article"
    if stem != article_id:
        stem += "-" + hashlib.sha256(article_id.encode("utf-8")).hexdigest()[:8]
    return stem + ".md"


def write_article(article: Article, directory: Path) -> Path:
    """Write `article` as Markdown with YAML front matter into `directory`, atomically; returns the path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    front = {name: getattr(article, name) for name in _FIELDS if getattr(article, name) is not None}
    front.update({k: v for k, v in article.metadata.items() if k not in _FIELDS})
    # width: keep each value on one line, as a person would write it
    header = yaml.safe_dump(front, allow_unicode=True, sort_keys=False, width=1_000_000)
    target = directory / article_filename(article.id)
    atomic_write(target, f"---\n{header}---\n\n{article.text}\n".encode("utf-8"))
    return target


def load_state(path: Path, valid: Callable[[object], bool], what: str) -> tuple[dict, str | None]:
    """A small JSON state file (a dict) and a warning, or ({}, None) if there is none. One that is
    unreadable or of the wrong shape is not a reason to stop: it is moved aside to `<name>.bad` and
    ({}, warning) comes back, so the run starts afresh and says so."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if isinstance(data, dict) and valid(data):
            return data, None
        problem = "not of the expected shape"
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError) as e:
        problem = f"unreadable ({e})"
    aside = Path(path).with_name(Path(path).name + ".bad")
    try:
        os.replace(path, aside)
    except OSError:
        aside = None
    kept = f"; the old file is kept as {aside.name}" if aside else ""
    return {}, f"{path}: {what} {problem}, starting afresh{kept}"


def atomic_write(target: Path, data: bytes) -> None:
    """Write via a hidden temporary file in the same folder (load_corpus skips it), fsync, rename:
    a reader sees the old file or the new one, never half of one. The file gets the mode it had,
    or a new file's usual one (0666 less the umask), not mkstemp's owner-only 0600."""
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process umask, read without changing it (os.umask can only be read by setting it, which
    would race with other threads creating files); Linux shows it in /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _corpus_files(paths: list[Path], collector: _Collector) -> Iterator[Path]:
    for path in paths:
        if not path.is_dir():
            yield path  # a missing or unsupported file is reported by add_file
            continue
        for file in sorted(path.rglob("*")):
            relative = file.relative_to(path).parts
            if not file.is_file() or any(p.startswith(".") for p in relative) or file.stem.upper() == "README":
                continue
            if _format(file) is None:
                collector.result.warnings.append(f"{file}: skipped, not an article file ({_supported()})")
                continue
            yield file


def _format(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(TEXT_SUFFIXES):
        return "text"
    if name.endswith(HTML_SUFFIXES):
        return "html"
    return None


def _supported() -> str:
    return "expected " + ", ".join(TEXT_SUFFIXES + JSONL_SUFFIXES + HTML_SUFFIXES)


class _Collector:
    """Accumulates a LoadResult: keeps the first copy of each text and refuses reused ids."""

    def __init__(
        self, max_chars: int, near_duplicates: float | None = None, signature_cache=None, *, max_file_bytes: int = MAX_FILE_BYTES
    ) -> None:
        self.max_chars, self.max_file_bytes = max_chars, max_file_bytes
        self.result = LoadResult()
        self._ids: dict[str, tuple[str, str | None]] = {}  # id -> (text digest, where it came from)
        self._texts: dict[str, str] = {}  # text digest -> id
        self._position: dict[str, int] = {}  # id -> index in result.articles
        self.near = None
        if near_duplicates:
            from rag.ingest.dedup import NearDuplicates  # datasketch takes ~0.4 s to import: only when asked

            self.near = NearDuplicates(near_duplicates, cache=signature_cache)

    def add_file(self, path: Path) -> None:
        try:
            kind = _format(path)
            if kind is None:
                why = f"unsupported file type ({_supported()})" if path.exists() else "no such file or folder"
                raise ArticleError(path, why)
            if path.exists() and not path.is_file():  # reading a pipe would wait forever
                raise ArticleError(path, "not a regular file")
            if kind != "jsonl" and path.is_file() and (size := path.stat().st_size) > self.max_file_bytes:  # before a byte is parsed
                raise ArticleError(path, f"file is {size:,} bytes; the limit is {self.max_file_bytes:,} (setting RAG_MAX_FILE_BYTES)")
            if kind == "jsonl":
                items = _read_jsonl(path, self._warn, self.max_chars)
            else:
                read = _read_html_file if kind == "html" else _read_text_file
                items = [read(path, self._warn, self.max_chars)]
            for item in items:
                if isinstance(item, ArticleError):
                    self.result.errors.append(item)
                else:
                    self._add(item)
        except ArticleError as e:
            self.result.errors.append(e)
        except Exception as e:  # whatever a hostile file triggers, it costs that file only
            self.result.errors.append(_unexpected(path, e))

    def _add(self, article: Article) -> None:
        # the cleaned text is NFC already; compare it regardless of how it was split into paragraphs
        digest = hashlib.sha256(" ".join(article.text.split()).encode("utf-8")).hexdigest()
        if article.id in self._ids:
            kept_digest, kept_where = self._ids[article.id]
            if kept_digest == digest:
                self.result.duplicates.append((article.path, article.id))
            else:
                self.result.errors.append(
                    ArticleError(article.path, f"id {article.id!r} is already used by {kept_where} for another article")
                )
        elif digest in self._texts:
            self.result.duplicates.append((article.path, self._texts[digest]))
            self._also(self._texts[digest], article)
        elif self.near is not None and (kept := self.near.find(article.id, article.text, article.title)) is not None:
            self.result.near_duplicates.append((article.path, kept))
            self._also(kept, article)
        else:
            self._ids[article.id] = (digest, article.path)
            self._texts[digest] = article.id
            self._position[article.id] = len(self.result.articles)
            self.result.articles.append(article)

    def _also(self, kept_id: str, copy: Article) -> None:
        """Record where else the kept article's story appeared (once per distinct title/source/URL/date)."""
        i = self._position[kept_id]
        kept = self.result.articles[i]
        seen = [{k: v for k, v in a.items() if k != "id"} for a in kept.appearances()]
        where = copy.appearances()[0]
        if {k: v for k, v in where.items() if k != "id"} not in seen:
            self.result.articles[i] = dataclasses.replace(kept, also=[*kept.also, where])

    def _warn(self, message: str) -> None:
        self.result.warnings.append(message)


def _unexpected(where, e: Exception) -> ArticleError:
    """A failure no check foresaw, as a skip with a short reason; the traceback goes to the debug log."""
    log.debug("reading %s failed", where, exc_info=True)
    if isinstance(e, RecursionError):
        return ArticleError(where, "nested too deeply to read")
    if isinstance(e, MemoryError):
        return ArticleError(where, "too large to read")
    return ArticleError(where, f"could not be read ({type(e).__name__}: {' '.join(str(e).split())[:200]})")


def _check_size(text: str, where, max_chars: int) -> None:
    if len(text) > max_chars:
        raise ArticleError(
            where, f"{len(text):,} characters; the limit is {max_chars:,} per article (setting RAG_MAX_ARTICLE_CHARS)"
        )


def _read_text_file(path: Path, warn: Callable[[str], None], max_chars: int) -> Article:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ArticleError(path, f"cannot read file: {e.strerror or e}") from None
    text = _decode(data, path)
    _check_size(text, path, max_chars)
    if not strip_controls(text).strip():
        raise ArticleError(path, "empty file" if not text.strip() else "no text, only control characters")
    front, body = _split_front_matter(text.replace("\r\n", "\n").replace("\r", "\n"), path)
    return _article(front, body, default_id=path.stem, where=str(path), warn=warn)


def _read_html_file(path: Path, _warn: Callable[[str], None], max_chars: int) -> Article:
    from rag.ingest import webpage  # imported on first use: trafilatura is not needed for Markdown corpora

    try:
        data = path.read_bytes()
    except OSError as e:
        raise ArticleError(path, f"cannot read file: {e.strerror or e}") from None
    if not data.strip():
        raise ArticleError(path, "empty file")
    article = webpage.html_to_article(webpage.decode(data), where=str(path), default_id=path.stem)
    _check_size(article.text, path, max_chars)
    return article


def _read_jsonl(path: Path, warn: Callable[[str], None], max_chars: int) -> Iterator[Article | ArticleError]:
    """One Article per good line, one ArticleError (path:line) per bad one."""
    lineno, seen_any = 0, False
    stem = path.name[: -len(next(s for s in JSONL_SUFFIXES if path.name.lower().endswith(s)))]
    try:
        with (gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")) as f:
            for lineno, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                seen_any = True
                where = f"{path}:{lineno}"
                try:
                    yield _jsonl_article(raw, f"{stem}-{lineno}", where, warn, max_chars)
                except ArticleError as e:
                    yield e
                except Exception as e:  # e.g. RecursionError from a row nested 200,000 levels deep
                    yield _unexpected(where, e)
    except (OSError, EOFError, zlib.error) as e:  # unreadable, or a damaged gzip stream
        raise ArticleError(f"{path}:{lineno}" if lineno else path, f"cannot read file: {e}") from None
    if not seen_any:
        raise ArticleError(path, "empty file")


def _jsonl_article(raw: bytes, default_id: str, where: str, warn: Callable[[str], None], max_chars: int) -> Article:
    line = _decode(raw, where)
    _check_size(line, where, max_chars)
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise ArticleError(where, f"invalid JSON: {e.msg} (column {e.colno})") from None
    if not isinstance(obj, dict):
        raise ArticleError(where, f"expected a JSON object, got {type(obj).__name__}")
    text = obj.pop("text", None)
    if not isinstance(text, str):
        raise ArticleError(where, "missing 'text' field" if text is None else "'text' must be a string")
    return _article(obj, text, default_id=default_id, where=where, warn=warn)


def _decode(data: bytes, where) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ArticleError(where, f"not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})") from None


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without aliases (*name): a few hundred bytes of nested aliases expand to gigabytes
    (a "billion laughs"), and an alias may refer to itself. Front matter never needs one."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in front matter", mark)
        return super().compose_node(parent, index)


def _split_front_matter(text: str, path: Path) -> tuple[dict, str]:
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return {}, text
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        raise ArticleError(path, "front matter opened by '---' on line 1 is never closed by a '---' line")
    try:
        front = yaml.load("\n".join(lines[1:end]), Loader=_NoAliasLoader)
    except yaml.YAMLError as e:
        raise ArticleError(path, f"front matter is not valid YAML: {' '.join(str(e).split())}") from None
    if front is None:
        front = {}
    if not isinstance(front, dict):
        raise ArticleError(path, f"front matter must be 'key: value' lines, got {type(front).__name__}")
    return front, "\n".join(lines[end + 1 :])


def _article(fields: dict, body: str, *, default_id: str, where: str, warn: Callable[[str], None]) -> Article:
    """An Article from its fields (front matter or a JSON object) and its raw body."""
    fields = _jsonable(fields, where)
    body = strip_controls(body.replace("\r\n", "\n").replace("\r", "\n"))
    values = {name: fields.pop(name, None) for name in _FIELDS}
    title = _text_field(values["title"], "title", where) or _title_from(body)
    if not title:
        raise ArticleError(where, "no title: give one in the front matter or as the first line")
    if values["date"] in (None, ""):
        date = _date_from_header(body)
    elif (date := parse_date(values["date"])) is None:
        warn(f"{where}: date {values['date']!r} not understood; left empty")
    text = clean_text(body, title)
    url = _text_field(values["url"], "url", where)
    if not text:
        raise ArticleError(where, "no article text" + (" left after removing page furniture" if body.strip() else ""))
    return Article(
        id=_text_field(values["id"], "id", where) or strip_controls(default_id),
        title=title,
        text=text,
        date=date,
        source=_text_field(values["source"], "source", where) or _site(url),  # every citation names a source
        url=url,
        language=_text_field(values["language"], "language", where) or "vi",
        path=where,
        metadata=fields,
    )


def _text_field(value, name: str, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise ArticleError(where, f"'{name}' must be a single value, not a {type(value).__name__}")
    return normalize(str(value)) or None


def _site(url: str | None) -> str | None:
    """'https://www.vnexpress.net/a-1.html' -> 'vnexpress.net': the source of an article that names none."""
    host = urlsplit(url).hostname if url else None
    return host.removeprefix("www.") if host else None


def _title_from(body: str) -> str | None:
    """First line that is not page furniture (a header line, a caption), Markdown '#' stripped.
    A paragraph-long line is shortened, so that clean_text does not drop it from the text as the title."""
    for line in body.splitlines():
        line = normalize(line).lstrip("#").strip()
        if line and not is_furniture_line(line):
            if len(line) > _TITLE_MAX:
                line = line[:_TITLE_MAX].rsplit(" ", 1)[0] + "…"
            return line
    return None


def _date_from_header(body: str) -> str | None:
    lines = [line for line in body.splitlines() if line.strip()][:_HEADER_LINES]
    return next((parse_date(line) for line in lines if is_dateline(line)), None)


def _jsonable(value, where: str, depth: int = 0):
    """Fields as JSON would hold them (the index stores them; YAML also makes dates, bytes and sets),
    without control characters, at most _METADATA_DEPTH levels deep."""
    if depth > _METADATA_DEPTH:
        raise ArticleError(where, f"metadata nested deeper than {_METADATA_DEPTH} levels")
    if isinstance(value, dict):
        return {strip_controls(str(k)): _jsonable(v, where, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        return [_jsonable(v, where, depth + 1) for v in sorted(value, key=str)]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (dt.date, dt.datetime)):
        value = value.isoformat()
    elif isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return strip_controls(str(value))
