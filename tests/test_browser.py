"""A real Chromium (Debian's, driven by Playwright) asks the real app a question and reads the answer."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from conftest import ROOT, small_app

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [  # see ../shared/TESTING.md
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
HTV_TITLE = "Đột phá công nghệ, kiến tạo thế hệ tương lai cho Thành phố Hồ Chí Minh"
SCREENSHOT = ROOT / "build" / "screenshots" / "answer.png"

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
def browser_page():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: apt-get install -y chromium")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            pg = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="vi-VN")
            pg.set_default_timeout(60_000)
            yield pg
        finally:
            browser.close()


def wait_until_stable(read, *, done, timeout: float, quiet: float = 3.0) -> str:
    """Poll read() until done(value) holds and the value has not changed for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        value = read()
        if value != last:
            last, since = value, time.monotonic()
        elif done(value) and time.monotonic() - since >= quiet:
            return value
        time.sleep(0.5)
    pytest.fail(f"no stable answer after {timeout:.0f}s; last seen: {last!r}")


def test_question_in_the_browser_streams_an_answer_with_sources(page, app_server):
    page.goto(app_server["url"], wait_until="domcontentloaded")  # a Gradio page never gets network-idle offline
    box = page.locator("textarea").first
    box.wait_for()
    box.fill("Ai phát biểu khai mạc hội nghị ngày 27/11?")
    box.press("Enter")

    bot = page.locator("[data-testid='bot']").last
    sources = page.locator("#sources")
    answer = wait_until_stable(
        lambda: bot.inner_text() if bot.count() else "",
        done=lambda text: "Đang" not in text and HTV_TITLE in sources.inner_text(),
        timeout=600,
    )
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)  # before the checks: a failure leaves its picture
    assert "Lâm Đình Thắng" in answer
    assert bot.locator("a[href='#src-1']").count() >= 1  # the [1] marker links to its source card
    card = sources.locator(".rag-src", has_text=HTV_TITLE).first
    assert "28/11/2025" in card.inner_text() and "HTV" in card.inner_text()
    assert "Lâm Đình Thắng" in " ".join(card.locator("mark").all_inner_texts())  # the quote, highlighted
    page.wait_for_function("() => !document.querySelector('textarea').disabled")  # ready for the next question


# ---------------------------------------------------------------- hostile article titles (issue 11)

EVIL_TITLE = "<img src=x onerror=alert(1)>"


@pytest.fixture
def page(app_server, browser_page):
    return browser_page


@pytest.fixture
def hostile_app(tmp_path):
    """The app over a two-article corpus, one titled with an HTML payload; bm25 and the smallest
    generator, since an abstention needs neither the embedder nor a good model."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = [
        {"id": "evil", "title": EVIL_TITLE, "text": "Giá vàng miếng hôm nay tăng 1 triệu đồng mỗi lượng."},
        {"id": "mua", "title": "Mưa lớn ở Huế", "text": "Mưa lớn kéo dài ở Huế gây ngập nhiều tuyến phố."},
    ]
    (corpus / "bai.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    env = {**os.environ, "RAG_CORPUS_DIR": str(corpus), "RAG_INDEX_DIR": str(tmp_path / "index"),
           "RAG_RETRIEVER": "bm25", "RAG_GENERATOR": "smollm2-135m", "RAG_FEEDBACK_LOG": str(tmp_path / "fb.jsonl")}
    with small_app(env, tmp_path) as (_, url):
        yield url


def test_an_html_article_title_named_by_an_abstention_is_shown_as_text(browser_page, hostile_app):
    page = browser_page
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(hostile_app, wait_until="domcontentloaded")
    box = page.locator("textarea").first
    box.wait_for()
    box.fill("Giá cà phê xuất khẩu năm 2030 là bao nhiêu?")  # only "giá" matches: the gate abstains
    box.press("Enter")
    bot = page.locator("[data-testid='bot']").last
    answer = wait_until_stable(lambda: bot.inner_text() if bot.count() else "",
                               done=lambda text: "Đang" not in text and "«" in text, timeout=300)
    assert EVIL_TITLE in answer  # the closest article is named, its title as the characters it is
    assert bot.locator("img").count() == 0 and dialogs == []
