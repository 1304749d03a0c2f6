"""Extraction quality on generated news pages whose gold body is known by construction.

Pages: the seed articles (corpus/) and the first N vietnews test articles, rendered by tests/newssite.py
in three site layouts (header, nav, breadcrumbs, sapo, photo + caption + credit, "Tin liên quan",
"Có thể bạn quan tâm", comment box, footer, JSON-LD). For each page:
- trafilatura alone: `trafilatura.extract` with its defaults (comments off), one paragraph per line;
- trafilatura + project rules: `rag.ingest.webpage.html_to_article` (captions as paragraphs, then clean.clean_text).
Paragraph precision / recall against the gold paragraphs (whitespace-normalised exact match), the
body (sapo + paragraphs) and the caption counted apart. Then every page is served on 127.0.0.1, taken
in through a sitemap by `rag.ingest.watch.add` into a throwaway corpus and index, and every indexed chunk is
searched for the page's furniture strings (menus, teaser titles, comments, footer, photo credits).

    .venv/bin/python eval/extraction.py [--vietnews 22] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the page generator and the fake embedder are test fixtures

import trafilatura  # noqa: E402
from conftest import FakeEmbedder  # noqa: E402
from newssite import CREDITS, NewsSite, render, sitemap, stories_from_seed, stories_from_vietnews  # noqa: E402

from rag.index import build as index  # noqa: E402
from rag.ingest import watch as ingest, webpage
from rag.ingest.clean import normalize  # noqa: E402
from rag.config import Settings  # noqa: E402

_PHRASE = 20  # characters
VIETNEWS = ROOT.parent / "shared" / "data" / "vietnews" / "articles-test.jsonl.gz"


def _paragraphs(text: str | None) -> list[str]:
    return [p for p in (normalize(line) for line in (text or "").splitlines()) if p]


def _has(furniture: str, paragraphs: list[str]) -> bool:
    """A furniture string is in the text: as a whole paragraph, or inside one if it is a photo credit or
    long enough not to be an ordinary phrase (a menu item such as "Pháp luật" is also a newspaper's name)."""
    inside = len(furniture) >= _PHRASE or furniture in CREDITS
    return any(furniture == p or (inside and furniture in p) for p in paragraphs)


def _score(got: list[str], gold: list[str]) -> dict:
    got_set, gold_set = set(got), set(gold)
    hit = len(got_set & gold_set)
    return {"extracted": len(got_set), "gold": len(gold_set), "hit": hit}


def _pr(rows: list[dict]) -> tuple[float, float]:
    hit = sum(r["hit"] for r in rows)
    return hit / max(sum(r["extracted"] for r in rows), 1), hit / max(sum(r["gold"] for r in rows), 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vietnews", type=int, default=22, help="vietnews articles to render (besides the seed ones)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    stories = stories_from_seed(ROOT / "corpus")
    if VIETNEWS.exists():
        stories += stories_from_vietnews(VIETNEWS, args.vietnews)
    pages = [render(s, i) for i, s in enumerate(stories)]

    rows = {"trafilatura": [], "trafilatura+rules": []}
    body_rows = {"trafilatura": [], "trafilatura+rules": []}
    captions = {"trafilatura": 0, "trafilatura+rules": 0}
    furniture_in_text = {"trafilatura": 0, "trafilatura+rules": 0}
    for p in pages:
        gold = [normalize(g) for g in p.gold]
        body = gold[:-1]
        url = "http://127.0.0.1" + p.path
        alone = _paragraphs(trafilatura.extract(p.html, url=url, include_comments=False))
        ours = _paragraphs(webpage.html_to_article(p.html, url=url).text)
        for name, got in (("trafilatura", alone), ("trafilatura+rules", ours)):
            rows[name].append(_score(got, gold))
            body_rows[name].append(_score([g for g in got if g != gold[-1]], body))
            captions[name] += gold[-1] in got
            furniture_in_text[name] += sum(_has(f, got) for f in p.furniture)

    # the whole path: served, fetched through a sitemap, extracted, cleaned, chunked, indexed
    with tempfile.TemporaryDirectory() as tmp, NewsSite() as site:
        settings = Settings(corpus_dir=Path(tmp) / "corpus", index_dir=Path(tmp) / "index", cache_dir=Path(tmp) / "cache",
                            embedder="fake-hash", embed_dim=64, fetch_delay=0.0,
                            fetch_allow_private=True)  # the site is on 127.0.0.1
        for p in pages:
            site.html(p.path, p.html)
        site.xml("/sitemap.xml", sitemap([(site.url + p.path, p.story.date) for p in pages]))
        report = ingest.add(settings, [site.url + "/sitemap.xml"], embedder=FakeEmbedder())
        idx = index.load(settings, expected_embedder=FakeEmbedder().name)
        chunks = [_paragraphs(c.text.replace("\n\n", "\n")) for c in idx.chunks]
        furniture = sorted({f for p in pages for f in p.furniture})
        in_index = [f for f in furniture if any(_has(f, c) for c in chunks)]
        dated = sum(a.date == p.story.date for p in pages for a in idx.articles.values() if a.url.endswith(p.path))

    result = {
        "pages": len(pages),
        "layouts": 3,
        "gold_paragraphs": sum(len(p.gold) for p in pages),
        "all": {k: _pr(v) for k, v in rows.items()},
        "body": {k: _pr(v) for k, v in body_rows.items()},
        "captions_kept": captions,
        "furniture_strings_in_extracted_text": furniture_in_text,
        "indexed_articles": len(idx.articles),
        "ingest_errors": report.errors,
        "articles_with_right_date": dated,
        "furniture_strings_checked": len(furniture),
        "furniture_strings_in_index": in_index,
    }
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    print(f"{result['pages']} pages ({result['gold_paragraphs']} gold paragraphs, 3 layouts)\n")
    print("| extraction | paragraph precision | paragraph recall | body P / R (no caption) | captions kept (exact text) | furniture strings in text |")
    print("|---|---|---|---|---|---|")
    for name in rows:
        (p, r), (bp, br) = result["all"][name], result["body"][name]
        print(f"| {name} | {p:.3f} | {r:.3f} | {bp:.3f} / {br:.3f} | {captions[name]}/{len(pages)} | {furniture_in_text[name]} |")
    print(f"\nthrough `rag add` (sitemap → fetch → extract → index): {result['indexed_articles']} articles indexed, "
          f"{dated} with the page's date, {len(report.errors)} errors; "
          f"{len(in_index)} of {len(furniture)} distinct furniture strings found in {len(chunks)} indexed chunks"
          + (f": {in_index}" if in_index else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
