"""A news web page (HTML) → an `Article`: trafilatura for the main text and metadata, htmldate for
the publication date, then the project's furniture rules (`clean.clean_text`) for what extraction leaves.

- Text: trafilatura's main-text extraction without comments. Photo captions (`<figcaption>`, one-column
  image tables) become paragraphs first, because trafilatura drops them and their text often carries
  facts; the credit part ("Ảnh: …") is the furniture rules' business.
- Title, author, site name and canonical URL: trafilatura's metadata (JSON-LD, OpenGraph, <title>…).
- Date: htmldate on the page's own metadata (JSON-LD datePublished, meta tags, the URL) first; then
  the date the feed or sitemap gave; then htmldate's search of the page text.
- Language: the page's `<html lang>` (or content-language meta), else "vi".
"""
from __future__ import annotations

import copy
import hashlib
import logging
import re
from urllib.parse import urlsplit

import htmldate
import lxml.html
import trafilatura
from trafilatura.utils import decode_file

from rag.ingest.clean import clean_text, normalize, parse_date, strip_controls
from rag.errors import ArticleError
from rag.types import Article

_LANG = re.compile(r"[a-z]{2,3}", re.I)
# trafilatura logs "discarding data" for a page without main text; html_to_article raises an ArticleError
# that says so for that URL, so the log line is only noise on the terminal
logging.getLogger("trafilatura").setLevel(logging.ERROR)
_MIN_CHARS = 200  # less article text than a short news brief: a listing, a login wall, an error page


def decode(content: bytes, charset: str | None = None) -> str:
    """Page bytes as text: the HTTP charset if given and valid, else what the page declares or looks like."""
    if charset:
        try:
            return content.decode(charset)
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_file(content)


def html_to_article(
    html: str,
    *,
    url: str | None = None,
    where: str | None = None,
    default_id: str | None = None,
    fallback_title: str | None = None,
    fallback_date: str | None = None,
    fallback_source: str | None = None,
) -> Article:
    """The article in `html`. `url`: where it was fetched (the canonical URL wins if the page has one);
    `where`: for error messages; `default_id`: the id when not derived from the URL (a saved file).
    Raises ArticleError if the page has no article text."""
    where = where or url or "page"
    try:  # control characters: never into an article (and lxml refuses NUL)
        tree = lxml.html.document_fromstring(strip_controls(html))
    except (lxml.etree.ParserError, ValueError) as e:
        raise ArticleError(where, f"not a readable HTML page: {e}") from None
    language = _language(tree)
    pristine = copy.deepcopy(tree)  # htmldate and trafilatura both prune the tree they are given
    date = htmldate.find_date(copy.deepcopy(pristine), extensive_search=False, original_date=True, url=url)
    _unwrap_captions(tree)
    doc = trafilatura.bare_extraction(tree, url=url, with_metadata=True, include_comments=False, include_tables=True)
    if doc is None or not (doc.text or "").strip():
        raise ArticleError(where, "no article text found in the page")
    title = normalize(doc.title or fallback_title or "")
    if not title:
        raise ArticleError(where, "the page has no title")
    date = parse_date(date) or fallback_date or parse_date(htmldate.find_date(pristine, original_date=True, url=url))
    text = clean_text(doc.text, title)
    if not text:
        raise ArticleError(where, "no article text left after removing page furniture")
    if len(text) < _MIN_CHARS:
        raise ArticleError(where, f"only {len(text)} characters of text: not an article page")
    canonical = doc.url if doc.url and urlsplit(doc.url).scheme in ("http", "https") else url
    hosts = {urlsplit(u).netloc for u in (url, canonical) if u} | {urlsplit(u).hostname for u in (url, canonical) if u}
    # trafilatura falls back to the host name: a feed's title is a better name for the site
    sitename = doc.sitename if doc.sitename and doc.sitename.removeprefix("www.") not in hosts else None
    return Article(
        id=article_id(canonical) if canonical and not default_id else default_id or "page",
        title=title,
        text=text,
        date=date,
        source=normalize(sitename or fallback_source or (urlsplit(canonical).hostname if canonical else "") or "") or None,
        url=canonical,
        language=language,
        path=where,
        metadata={"author": normalize(doc.author)} if doc.author else {},
    )


def article_id(url: str) -> str:
    """A stable, readable id for a URL: its last path segment (no extension) and a short hash of the URL,
    so the same URL always maps to the same corpus file and different URLs never collide."""
    parts = urlsplit(url)
    slug = parts.path.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0] or parts.hostname or "page"
    slug = re.sub(r"[^\w-]+", "-", slug).strip("-_")[:80] or "page"
    return f"{slug}-{hashlib.sha256(url.encode('utf-8')).hexdigest()[:8]}"


def _unwrap_captions(tree) -> None:
    """Each photo block becomes a bare paragraph of its caption text: a <figure> (its <figcaption>) and a
    one-column layout table with an image (image above caption, as many Vietnamese CMSs mark photos).
    Left as they are, trafilatura drops figures and prints table cells as "| … |" rows."""
    blocks = [(fig, fig.xpath(".//figcaption//text()")) for fig in tree.iter("figure")]
    for table in tree.iter("table"):
        rows = table.findall(".//tr")
        if table.find(".//img") is not None and rows and all(len(r.findall("td") + r.findall("th")) <= 1 for r in rows):
            blocks.append((table, table.xpath(".//text()")))
    for block, texts in blocks:
        parent = block.getparent()
        if parent is None:
            continue
        caption = normalize(" ".join(texts))
        paragraph = lxml.html.Element("p")
        paragraph.text, paragraph.tail = caption, block.tail
        parent.replace(block, paragraph)


def _language(tree) -> str:
    declared = tree.get("lang") or next(iter(tree.xpath("//meta[@http-equiv='content-language']/@content")), "")
    m = _LANG.match(declared.strip())
    return m.group(0).lower() if m else "vi"
