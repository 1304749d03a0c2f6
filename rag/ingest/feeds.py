"""RSS / Atom feeds and XML sitemaps → the article links they list (no network here).

`kind()` tells a feed, a sitemap and a sitemap index apart by the root element; `entries()` returns
one `Entry` per link with what the document says about it (title, date), which fills in what a page
itself lacks. Namespaces are ignored: feeds in the wild mix RSS 2.0, RSS 1.0 (RDF), Atom and the
Google News sitemap extension.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

from rag.ingest.clean import parse_date
from rag.errors import FetchError


@dataclass(frozen=True)
class Entry:
    url: str
    title: str | None = None
    date: str | None = None  # ISO YYYY-MM-DD
    source: str | None = None  # the feed's own title (the site name)


def kind(content: bytes) -> str | None:
    """'feed', 'sitemap', 'sitemapindex', or None for anything else (an HTML page, say)."""
    head = content.lstrip()[:1]
    if head != b"<":
        return None
    try:
        root = ET.fromstring(content)
    except ET.ParseError:
        return None
    name = _local(root.tag)
    if name in ("rss", "feed", "RDF"):
        return "feed"
    if name in ("urlset", "sitemapindex"):
        return name.replace("urlset", "sitemap")
    return None


def entries(content: bytes, base_url: str) -> list[Entry]:
    """The links of a feed, sitemap or sitemap index (for an index: the child sitemaps), in document order,
    each once. Raises FetchError(base_url, ...) if `content` is none of those."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError as e:
        raise FetchError(base_url, f"not valid XML: {e}") from None
    name = _local(root.tag)
    if name in ("rss", "RDF"):
        channel = _child(root, "channel")
        source = _text(_child(channel, "title")) if channel is not None else None
        items = [_rss_item(i, base_url, source) for i in root.iter() if _local(i.tag) == "item"]
    elif name == "feed":
        source = _text(_child(root, "title"))
        items = [_atom_entry(e, base_url, source) for e in root if _local(e.tag) == "entry"]
    elif name in ("urlset", "sitemapindex"):
        items = [_sitemap_url(u, base_url) for u in root if _local(u.tag) in ("url", "sitemap")]
    else:
        raise FetchError(base_url, f"not an RSS/Atom feed or a sitemap (root element <{name}>)")
    seen, out = set(), []
    for item in items:
        if item is not None and item.url not in seen:
            seen.add(item.url)
            out.append(item)
    return out


def _rss_item(item, base: str, source: str | None) -> Entry | None:
    link = _text(_child(item, "link")) or _text(_child(item, "guid"))
    if not link:
        return None
    date = _date(_text(_child(item, "pubDate")) or _text(_child(item, "date")))
    return Entry(urljoin(base, link), _text(_child(item, "title")), date, source)


def _atom_entry(entry, base: str, source: str | None) -> Entry | None:
    links = [e for e in entry if _local(e.tag) == "link" and e.get("href")]
    best = next((e for e in links if e.get("rel", "alternate") == "alternate"), links[0] if links else None)
    if best is None:
        return None
    date = _date(_text(_child(entry, "published")) or _text(_child(entry, "updated")))
    return Entry(urljoin(base, best.get("href")), _text(_child(entry, "title")), date, source)


def _sitemap_url(node, base: str) -> Entry | None:
    loc = _text(_child(node, "loc"))
    if not loc:
        return None
    news = _child(node, "news")
    title = date = None
    if news is not None:  # Google News sitemap: <news:news><news:publication_date>, <news:title>
        title = _text(_child(news, "title"))
        date = _date(_text(_child(news, "publication_date")))
    return Entry(urljoin(base, loc), title, date or _date(_text(_child(node, "lastmod"))))


def _date(value: str | None) -> str | None:
    if not value:
        return None
    if iso := parse_date(value):  # ISO 8601 (Atom, sitemaps)
        return iso
    try:  # RFC 822 (RSS pubDate)
        return parsedate_to_datetime(value).date().isoformat()
    except (TypeError, ValueError):
        return None


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(node, name: str):
    if node is None:
        return None
    return next((c for c in node if _local(c.tag) == name), None)


def _text(node) -> str | None:
    if node is None:
        return None
    value = " ".join("".join(node.itertext()).split())
    return value or None
