"""A local Vietnamese news site for tests and the extraction eval: page templates in the shapes of real
sites, the gold body of each page known by construction, and an HTTP server on 127.0.0.1.

Pages carry what real news pages carry around the article: header and navigation, breadcrumbs, a sapo
(lead), a photo with a caption and a credit, an inline "Tin liên quan" box, "Có thể bạn quan tâm" teasers,
a comment box with comments, a footer, JSON-LD NewsArticle with datePublished. Three layouts, after the
markup of three common Vietnamese CMSs. The gold body is the sapo, the paragraphs and the caption text
without its credit; everything else on the page is furniture (`Page.furniture`).
"""
from __future__ import annotations

import datetime as dt
import gzip
import html
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SITES = ("Tin Nhanh", "Báo Sài Gòn Mới", "Thời Báo Số")
_HOSTS = ("tinnhanh.example", "baosaigonmoi.example", "thoibaoso.example")
_NAV = ["Trang chủ", "Thời sự", "Thế giới", "Kinh doanh", "Giải trí", "Thể thao", "Pháp luật", "Giáo dục", "Sức khỏe"]
_TEASERS = [
    "Giá xăng dầu đồng loạt giảm trong kỳ điều hành chiều nay",
    "Hà Nội ra mắt tuyến buýt điện mới nối sân bay Nội Bài",
    "Đội tuyển Việt Nam chốt danh sách dự vòng loại châu Á",
    "Mưa lớn kéo dài, nhiều tuyến đường ở TP.HCM ngập sâu",
    "Ngân hàng đồng loạt điều chỉnh lãi suất tiết kiệm kỳ hạn dài",
    "Nông dân miền Tây trúng mùa lúa thu đông, giá bán tăng",
]
_COMMENTS = [
    "Bài viết rất hay, cảm ơn tác giả đã chia sẻ thông tin hữu ích.",
    "Mong các cơ quan chức năng sớm vào cuộc xử lý dứt điểm vụ việc này.",
]
CREDITS = ["Ảnh: Hoàng Long", "Ảnh: TTXVN", "(Ảnh minh họa)", "Nguồn: Reuters"]


@dataclass
class Story:
    id: str
    title: str
    paragraphs: list[str]  # the first is the sapo
    date: str  # ISO
    caption: str | None = None  # the photo's caption text, without credit


@dataclass
class Page:
    path: str  # URL path on the site
    html: str
    gold: list[str]  # the article's paragraphs as a reader sees them (sapo, body, caption text)
    furniture: list[str]  # text on the page that is not the article
    story: Story
    site: str
    credit: str  # the photo credit (also in `furniture`)


def stories_from_seed(corpus_dir: Path) -> list[Story]:
    from rag.ingest.corpus import load_corpus

    out = []
    for a in load_corpus(corpus_dir).articles:
        paras = a.text.split("\n\n")
        out.append(Story(a.id, a.title, paras, a.date or "2025-11-28", caption=_caption_from(paras)))
    return out


def stories_from_vietnews(path: Path, n: int, start: str = "2025-06-01") -> list[Story]:
    """The first `n` usable vietnews articles (sentences grouped 3 to a paragraph), dated one day apart."""
    out = []
    day = dt.date.fromisoformat(start)
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            obj = json.loads(line)
            sentences = [s.strip() for s in obj["text"].split("\n") if len(s.strip()) > 30]
            if len(sentences) < 6 or not obj.get("title"):
                continue
            paras = [" ".join(sentences[i : i + 3]) for i in range(0, min(len(sentences), 15), 3)]
            out.append(Story(f"vn-{len(out):03d}", obj["title"].strip(), paras, (day - dt.timedelta(days=len(out))).isoformat(),
                             caption=_caption_from(paras)))
            if len(out) == n:
                break
    return out


def _caption_from(paras: list[str]) -> str:
    # a caption describes the photo in words of the story: its first clause, as editors write them
    first = paras[min(1, len(paras) - 1)].split(",")[0].split(".")[0]
    return " ".join(first.split()[:14]).rstrip(" ,;:") + "."


def render(story: Story, layout: int) -> Page:
    """The story as a page of site `layout` (0, 1 or 2)."""
    site = SITES[layout % len(SITES)]
    credit = CREDITS[sum(map(ord, story.id)) % len(CREDITS)]
    e = html.escape
    sapo, body = story.paragraphs[0], story.paragraphs[1:]
    mid = max(1, len(body) // 2)
    teasers = _TEASERS[layout : layout + 3]
    related = _TEASERS[(layout + 3) % len(_TEASERS)]
    path = f"/{['thoi-su', 'xa-hoi', 'tin-tuc'][layout % 3]}/{story.id}.html"
    date_vn = dt.date.fromisoformat(story.date).strftime("%d/%m/%Y")
    ld = json.dumps({
        "@context": "https://schema.org", "@type": "NewsArticle", "headline": story.title,
        "datePublished": f"{story.date}T07:30:00+07:00", "author": {"@type": "Person", "name": "Minh Anh"},
        "publisher": {"@type": "Organization", "name": site},
    }, ensure_ascii=False)
    caption_html = f"{e(story.caption)} {e(credit)}" if layout != 1 else f"{e(story.caption)} - {e(credit)}"
    photo = {
        0: f'<figure class="tplCaption"><img src="/img/{story.id}.jpg" alt=""><figcaption><p class="Image">{caption_html}</p></figcaption></figure>',
        1: f'<table class="image center"><tr><td><img src="/img/{story.id}.jpg"></td></tr><tr><td class="image-caption"><p>{caption_html}</p></td></tr></table>',
        2: f'<figure class="image"><img src="/img/{story.id}.jpg"><figcaption>{caption_html}</figcaption></figure>',
    }[layout % 3]
    inline_related = {
        0: f'<div class="box-related"><h4>Tin liên quan</h4><ul><li><a href="/r/1.html">{e(related)}</a></li></ul></div>',
        1: f'<p><strong>Xem thêm: <a href="/r/1.html">{e(related)}</a></strong></p>',
        2: f'<div class="related-inline"><p>&gt;&gt; Đọc thêm: <a href="/r/1.html">{e(related)}</a></p></div>',
    }[layout % 3]
    paras_html = "".join(f"<p>{e(p)}</p>" for p in body[:mid]) + photo + inline_related + "".join(f"<p>{e(p)}</p>" for p in body[mid:])
    teaser_html = "".join(f'<li><a href="/t/{i}.html">{e(t)}</a><span class="time">{date_vn}</span></li>' for i, t in enumerate(teasers))
    comments_html = "".join(f'<div class="comment"><b>Bạn đọc {i}</b><p>{e(c)}</p></div>' for i, c in enumerate(_COMMENTS))
    nav = "".join(f'<li><a href="/{i}">{e(n)}</a></li>' for i, n in enumerate(_NAV))
    page = f"""<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8"><title>{e(story.title)} - {e(site)}</title>
<meta property="og:site_name" content="{e(site)}"><meta property="og:title" content="{e(story.title)}">
<link rel="canonical" href="https://{_HOSTS[layout % 3]}{path}">
<script type="application/ld+json">{ld}</script></head>
<body><header class="site-header"><a class="logo" href="/">{e(site)}</a><nav class="main-nav"><ul>{nav}</ul></nav>
<form class="search"><input placeholder="Tìm kiếm"></form></header>
<div class="container"><ul class="breadcrumb"><li><a href="/">Trang chủ</a></li><li><a href="/thoi-su">Thời sự</a></li></ul>
<main><article class="detail">
<div class="meta"><span class="cate">Thời sự</span> <span class="date">Thứ Hai, {date_vn}, 07:30 (GMT+7)</span></div>
<h1 class="title-detail">{e(story.title)}</h1>
<h2 class="sapo">{e(sapo)}</h2>
<div class="content-detail">{paras_html}
<p class="author"><strong>Minh Anh</strong></p></div>
<div class="social"><a>Chia sẻ</a><a>Facebook</a><a>Zalo</a><a>Copy link</a></div>
<div class="tags">Từ khóa: <a>thời sự</a>, <a>xã hội</a></div>
</article>
<section class="box-interest"><h3>Có thể bạn quan tâm</h3><ul>{teaser_html}</ul></section>
<section id="comment"><h3>Ý kiến của bạn</h3><textarea placeholder="Nhập bình luận của bạn"></textarea>
<div class="comment-list">{comments_html}</div></section></main>
<aside><h3>Tin mới nhất</h3><ul>{teaser_html}</ul></aside></div>
<footer><p>© {e(site)}. Giấy phép số 123/GP-BTTTT. Tòa soạn: 12 Lê Lợi, Quận 1, TP.HCM.</p>
<p>Ghi rõ nguồn "{e(site)}" khi phát hành lại thông tin từ website này.</p></footer>
</body></html>"""
    furniture = _NAV + teasers + [related] + _COMMENTS + [
        f"© {site}. Giấy phép số 123/GP-BTTTT. Tòa soạn: 12 Lê Lợi, Quận 1, TP.HCM.",
        f'Ghi rõ nguồn "{site}" khi phát hành lại thông tin từ website này.', credit,
    ]
    gold = [sapo] + body + ([story.caption] if story.caption else [])
    return Page(path, page, gold, furniture, story, site, credit)


# ------------------------------------------------------------------ the server


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (a page that times out)
    length: bool = True  # send Content-Length (False: the body runs until the connection closes)
    trickle: float = 0.0  # seconds between the body's bytes (a server that keeps a fetch alive a byte at a time)


class NewsSite:
    """An HTTP server on 127.0.0.1 (a free port) serving `routes`; `requests` records (path, headers).
    Every 200 route gets an ETag, and an If-None-Match that matches it gets a 304."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                site.requests.append((self.path, dict(self.headers)))
                route = site.routes.get(self.path) or Route(404, b"<html><body>Kh\xc3\xb4ng t\xc3\xacm th\xe1\xba\xa5y</body></html>", {"Content-Type": "text/html"})
                if route.delay:
                    time.sleep(route.delay)
                etag = f'"{abs(hash(route.body)):x}"'
                if route.status == 200 and self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                try:
                    self.send_response(route.status)
                    for k, v in route.headers.items():
                        self.send_header(k, v)
                    if route.status == 200:
                        self.send_header("ETag", etag)
                    if route.length:
                        self.send_header("Content-Length", str(len(route.body)))
                    self.end_headers()
                    if not route.trickle:
                        self.wfile.write(route.body)
                    for i in range(len(route.body) if route.trickle else 0):
                        self.wfile.write(route.body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(route.trickle)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "NewsSite":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def html(self, path: str, text: str) -> None:
        self.routes[path] = Route(body=text.encode("utf-8"), headers={"Content-Type": "text/html; charset=utf-8"})

    def xml(self, path: str, text: str, ctype: str = "application/xml") -> None:
        self.routes[path] = Route(body=text.encode("utf-8"), headers={"Content-Type": f"{ctype}; charset=utf-8"})

    def paths_requested(self) -> list[str]:
        return [p for p, _ in self.requests]


def rss(site: str, items: list[tuple[str, str, str]]) -> str:
    """RSS 2.0 of (url, title, ISO date) items."""
    def item(url, title, date):
        when = dt.datetime.fromisoformat(date + "T07:30:00+07:00").strftime("%a, %d %b %Y %H:%M:%S %z")
        return f"<item><title>{html.escape(title)}</title><link>{html.escape(url)}</link><pubDate>{when}</pubDate></item>"
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{html.escape(site)}</title>'
            + "".join(item(*i) for i in items) + "</channel></rss>")


def atom(site: str, items: list[tuple[str, str, str]]) -> str:
    entries = "".join(
        f'<entry><title>{html.escape(t)}</title><link rel="alternate" href="{html.escape(u)}"/><published>{d}T07:30:00+07:00</published></entry>'
        for u, t, d in items
    )
    return f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>{html.escape(site)}</title>{entries}</feed>'


def sitemap_index(urls: list[str]) -> str:
    rows = "".join(f"<sitemap><loc>{html.escape(u)}</loc></sitemap>" for u in urls)
    return f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{rows}</sitemapindex>'


def sitemap(urls: list[tuple[str, str]]) -> str:
    """A Google News sitemap of (url, ISO date)."""
    rows = "".join(
        f"<url><loc>{html.escape(u)}</loc><news:news><news:publication_date>{d}T07:30:00+07:00</news:publication_date></news:news></url>"
        for u, d in urls
    )
    return ('<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            f'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{rows}</urlset>')
