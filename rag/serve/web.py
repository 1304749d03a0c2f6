"""Web chat over the indexed news articles (Gradio 6), with sources, feedback and corpus management.

Run:  rag serve [--host 127.0.0.1] [--port 7860]     (or `python app.py` in a checkout; env RAG_HOST / RAG_PORT)
It binds to 127.0.0.1 unless another host is asked for.

The page: a chat whose answers stream in as the pipeline verifies them, with [n] markers linked to a
sources panel (quote highlighted in its article, full text on demand); settings (sources, retriever,
model); thumbs up/down appended to a JSON Lines log (env RAG_FEEDBACK_LOG, default
feedback/feedback.jsonl in the data folder); a tab to upload (.md/.txt/.jsonl), list and remove articles.

API: the named endpoint "ask" answers one question (no history) and returns `Answer.to_dict()`:
    from gradio_client import Client
    Client("http://127.0.0.1:7860/").predict("Ai phát biểu khai mạc hội nghị ngày 27/11?", 4, "hybrid", api_name="/ask")
(optional 4th-6th arguments: since, until, source, e.g. "2025-11-01", "", "HTV"); "ask_in" takes a
collection's name first (rag.index.collections), then the same arguments.
or over plain HTTP: POST /gradio_api/call/ask with {"data": [question, top_k, retriever]} returns
{"event_id": ID}; GET /gradio_api/call/ask/ID then streams the result as server-sent events.
The same server answers OpenAI's chat API under /v1 (rag/serve/openai_api.py), for OpenAI clients and chat front-ends.

One Pipeline serves every session; its models load once, warmed in a background thread at start-up
(a question asked meanwhile waits for the load). Generation is queued one at a time (llama.cpp runs
one stream), with at most RAG_MAX_WAITING requests waiting (bounded_queue); a tab that closes ends its
question (respond, rag.serve.streams). Chat history and sources are per browser session (gr.State).
"""
from __future__ import annotations

import fcntl
import html
import json
import os
import re
import threading
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline machines: no telemetry calls

import anyio  # noqa: E402
import gradio as gr  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402

from rag import models, text  # noqa: E402
from rag.serve import access, openai_api, streams, users
from rag.index import collections
from rag.ingest import watch as ingest, manage
from rag.config import Settings, load_settings  # noqa: E402
from rag.errors import InvalidSetting, RagError  # noqa: E402
from rag.answer.pipeline import Pipeline  # noqa: E402
from rag.types import Answer, Article, Citation  # noqa: E402

# seconds the server waits for open requests once asked to stop (an open chat tab holds an event stream)
SHUTDOWN_GRACE_S = 5

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 7860
RETRIEVERS = {"hybrid": "Kết hợp (hybrid)", "bm25": "Từ khoá (BM25)", "dense": "Ngữ nghĩa (dense)"}
MODEL_LABELS = {
    "qwen2.5-coder-1.5b": "Qwen2.5-Coder 1.5B (chính xác hơn)",
    "qwen2.5-coder-0.5b": "Qwen2.5-Coder 0.5B (nhanh hơn)",
}
EXAMPLES = [
    "Ai phát biểu khai mạc hội nghị ngày 27/11?",
    "Hội nghị NextGen do những đơn vị nào tổ chức?",
    "Bình Dương đứng Top1 Smart 21 năm nào?",
    "Diễn đàn Cộng đồng thông minh 2025 diễn ra ở đâu và khi nào?",
]
HISTORY_TURNS = 3  # earlier exchanges passed to the pipeline: enough for follow-ups, short prompts
CONTEXT_CHARS = 300  # article text shown around a quote, each side, within its paragraph
KEEPALIVE = 0.25  # seconds: how often an answering chat yields while it waits, so a closed tab stops it that soon
NO_SOURCES = '<div class="rag-sources rag-empty">Nguồn trích dẫn của câu trả lời sẽ hiện ở đây.</div>'

INTRO = """# Hỏi đáp tin tức
Đặt câu hỏi về các bài báo trong kho. Câu trả lời chỉ dựa trên các bài báo, kèm trích dẫn **[n]**
dẫn tới nguồn ở khung bên phải; nếu các bài báo không nhắc đến điều bạn hỏi, trợ lý sẽ nói rõ."""

CSS = """
.rag-sources { display: flex; flex-direction: column; gap: 10px; }
.rag-sources h3 { margin: 0 0 2px; font-size: 1.05rem; }
.rag-empty { color: var(--body-text-color-subdued); padding: 12px; border: 1px dashed var(--border-color-primary);
  border-radius: 8px; }
.rag-src { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 14px;
  background: var(--background-fill-secondary); scroll-margin-top: 12px; }
.rag-src:target { outline: 2px solid var(--color-accent); }
.rag-src-title { font-weight: 600; line-height: 1.35; }
.rag-marker { color: var(--color-accent); font-weight: 700; margin-right: 4px; }
.rag-meta { color: var(--body-text-color-subdued); font-size: 0.85rem; margin: 3px 0 8px; }
.rag-meta a { color: var(--link-text-color); }
.rag-context { border-left: 3px solid var(--color-accent); margin: 0; padding: 4px 10px; white-space: pre-wrap;
  line-height: 1.5; }
.rag-sources mark { background: #fde68a; color: #1f2937; padding: 0 2px; border-radius: 3px; }
.rag-sources details { margin-top: 8px; }
.rag-sources summary { cursor: pointer; color: var(--link-text-color); font-size: 0.9rem; }
.rag-fulltext { white-space: pre-wrap; max-height: 360px; overflow-y: auto; margin-top: 6px; padding: 8px 10px;
  border-radius: 6px; background: var(--background-fill-primary); line-height: 1.5; font-size: 0.92rem; }
.rag-timing { color: var(--body-text-color-subdued); font-size: 0.8rem; }
#articles * { font-family: var(--font) !important; }  /* monospace fonts lack Vietnamese precomposed letters */
"""


# ---------------------------------------------------------------- rendering (pure, unit-tested)


def format_date(iso: str | None) -> str:
    """'2025-11-28' -> '28/11/2025' (as Vietnamese readers write dates); anything else as it is."""
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", iso or "")
    return f"{m[3]}/{m[2]}/{m[1]}" if m else (iso or "")


def safe_url(url: str | None) -> str | None:
    """The URL if it is plain http(s): article metadata is untrusted (no javascript: links)."""
    return url if url and re.match(r"https?://[^\s\"'<>]+$", url, re.IGNORECASE) else None


def quote_spans(article_text: str, quote: str) -> list[tuple[int, int]]:
    """Where each sentence of `quote` occurs in the article, whatever the whitespace between words.
    A quote may join sentences that are paragraphs apart, so they are looked for one by one."""
    spans = []
    for a, b in text.split_sentences(quote) or [(0, len(quote))]:
        words = quote[a:b].split()
        if not words:
            continue
        m = re.search(r"\s+".join(map(re.escape, words)), article_text)
        if m:
            spans.append(m.span())
    return sorted(spans)


def highlight(source: str, spans: list[tuple[int, int]], start: int = 0, end: int | None = None) -> str:
    """source[start:end] as escaped HTML, with the spans (clipped to the window) in <mark>."""
    end = len(source) if end is None else end
    out, pos = [], start
    for a, b in spans:
        a, b = max(a, pos), min(b, end)
        if a >= b:
            continue
        out += [html.escape(source[pos:a]), "<mark>", html.escape(source[a:b]), "</mark>"]
        pos = b
    out.append(html.escape(source[pos:end]))
    return "".join(out)


def context_window(source: str, spans: list[tuple[int, int]], chars: int = CONTEXT_CHARS) -> tuple[int, int]:
    """The paragraph(s) holding the spans, cut to `chars` on each side of them."""
    first, last = spans[0][0], spans[-1][1]
    para_start = source.rfind("\n", 0, first) + 1
    para_end = source.find("\n", last)
    para_end = len(source) if para_end < 0 else para_end
    return max(para_start, first - chars), min(para_end, last + chars)


def _context_html(cit: Citation, article: Article | None) -> tuple[str, str]:
    """(the quote inside its surrounding text, the whole article) as HTML; the quote alone if the
    article is gone (removed since) or the quote cannot be found in it."""
    spans = quote_spans(article.text, cit.quote) if article else []
    if not spans:
        quote = f"<mark>{html.escape(cit.quote)}</mark>"
        return quote, html.escape(article.text) if article else ""
    a, b = context_window(article.text, spans)
    ctx = ("…" if a > 0 else "") + highlight(article.text, spans, a, b) + ("…" if b < len(article.text) else "")
    return ctx, highlight(article.text, spans)


def render_also(other: dict) -> str:
    """One more place the cited story appeared (a near-duplicate stored once), as a meta line."""
    parts = [html.escape(x) for x in (format_date(other.get("date")), other.get("source"), other.get("title")) if x]
    url = safe_url(other.get("url"))
    if url:
        parts.append(f'<a href="{html.escape(url)}" target="_blank" rel="noopener noreferrer">Mở ↗</a>')
    return f'<div class="rag-meta">Cũng đăng: {" · ".join(parts)}</div>'


def render_source(cit: Citation, article: Article | None) -> str:
    meta = [html.escape(x) for x in (format_date(cit.date), cit.source) if x]
    url = safe_url(cit.url)
    if url:
        meta.append(f'<a href="{html.escape(url)}" target="_blank" rel="noopener noreferrer">Mở bài gốc ↗</a>')
    also = "".join(render_also(other) for other in cit.also)
    context, full = _context_html(cit, article)
    details = (
        f'<details><summary>Xem toàn văn bài báo</summary><div class="rag-fulltext">{full}</div></details>'
        if full else ""
    )
    return (
        f'<div class="rag-src" id="src-{cit.marker}">'
        f'<div class="rag-src-title"><span class="rag-marker">[{cit.marker}]</span>{html.escape(cit.title)}</div>'
        f'<div class="rag-meta">{" · ".join(meta)}</div>{also}'
        f'<blockquote class="rag-context">{context}</blockquote>{details}</div>'
    )


def render_sources(answer: Answer, articles: dict[str, Article]) -> str:
    """The sources panel for one answer; all article content is escaped (it is untrusted)."""
    total = answer.timings.get("total")
    timing = f'<div class="rag-timing">{html.escape(answer.model)} · {total / 1000:.1f} giây</div>' if total else ""
    if not answer.citations:
        note = "Không có nguồn nào hỗ trợ câu trả lời." if answer.abstained else "Câu trả lời không trích dẫn nguồn nào."
        return f'<div class="rag-sources"><div class="rag-empty">{note}</div>{timing}</div>'
    items = "".join(render_source(c, articles.get(c.article_id)) for c in answer.citations)
    return f'<div class="rag-sources"><h3>Nguồn trích dẫn ({len(answer.citations)})</h3>{items}{timing}</div>'


def answer_from_dict(d: dict) -> Answer:
    """The inverse of Answer.to_dict(), for answers kept in a session's state."""
    return Answer(**{**d, "citations": [Citation(**c) for c in d["citations"]]})


def link_markers(answer_text: str, citations: list[Citation]) -> str:
    """Markdown for the chat: each known [n] becomes a link to its card in the sources panel."""
    known = {c.marker for c in citations}

    def link(m: re.Match) -> str:
        n = int(m[1])
        return f"[[{n}]](#src-{n})" if n in known else m[0]

    return re.sub(r"\[(\d+)\]", link, answer_text)


def chat_filters(since: str | None, until: str | None, sources: list[str] | None) -> dict | None:
    """The settings panel's date range and sources as retrieval filters; dates as 28/11/2025 or 2025-11-28."""
    from rag.ingest.clean import parse_date

    out: dict = {}
    for key, value, label in (("date_from", since, "Từ ngày"), ("date_to", until, "Đến ngày")):
        if value and value.strip():
            iso = parse_date(value.strip())
            if iso is None:
                raise InvalidSetting(label, value.strip(), "một ngày, ví dụ 28/11/2025")
            out[key] = iso
    if sources:
        out["source"] = list(sources)
    return out or None


def source_names(articles: dict[str, Article]) -> list[str]:
    """Every source an indexed story appeared under (near-duplicates included), for the source filter."""
    return sorted({p["source"] for a in articles.values() for p in a.appearances() if p.get("source")}, key=str.lower)


def history_messages(turns: list[dict], limit: int = HISTORY_TURNS) -> list[dict]:
    """The last exchanges as the pipeline's chat history ({"role", "content"} dicts)."""
    out = []
    for t in turns[-limit:]:
        out += [{"role": "user", "content": t["question"]}, {"role": "assistant", "content": t["answer"]["text"]}]
    return out


def model_choices(settings: Settings) -> list[tuple[str, str]]:
    """(label, name) of the generators to offer: the configured one first, then the provisioned others."""
    ready = {r["name"] for r in models.status(settings) if r["provisioned"]}
    names = [settings.generator] + [n for n in MODEL_LABELS if n in ready and n != settings.generator]
    return [(MODEL_LABELS.get(n, n), n) for n in names]


# ---------------------------------------------------------------- feedback log

_FEEDBACK_LOCK = threading.Lock()


def feedback_path(settings: Settings) -> Path:
    return Path(os.environ.get("RAG_FEEDBACK_LOG") or settings.home / "feedback" / "feedback.jsonl").expanduser()


def log_feedback(record: dict, path: Path) -> Path:
    """Append one JSON line; the file lock keeps lines whole if several app processes share the log."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with _FEEDBACK_LOCK, path.open("a", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(line)
        f.flush()
    return path


# ---------------------------------------------------------------- corpus tab helpers


def upload_message(report: manage.AddReport) -> str:
    lines = []
    if report.added:
        lines.append(f"Đã thêm {len(report.added)} bài: " + ", ".join(f"«{i}»" for i in report.added))
    if report.updated:
        lines.append(f"Đã cập nhật {len(report.updated)} bài: " + ", ".join(f"«{i}»" for i in report.updated))
    if report.merged:
        lines.append(f"Đã gộp {len(report.merged)} bài vào tin đã có: " + ", ".join(f"«{i}» → «{k}»" for i, k in report.merged.items()))
    if report.index:
        lines.append(f"Chỉ mục đã cập nhật: {report.index.chunks} đoạn ({report.index.embedded} đoạn mới được nhúng).")
    lines += [f"Bỏ qua (đã có trong kho): {d}" for d in report.duplicates]
    lines += [f"**Không thêm được:** {e}" for e in report.errors]
    if not lines:
        lines.append("Không có bài mới nào.")
    return "\n\n".join(_escape_md(x) for x in lines)


def _escape_md(s: str) -> str:
    """For text put into Markdown (gr.Markdown, the chat): file names, ids, reasons and article titles
    are user input, so no HTML from them, whatever Gradio's sanitizer would let through."""
    return html.escape(s, quote=False)


def warm(pipeline: Pipeline, ready: threading.Event) -> None:
    """Load the index and the models before the first question (Pipeline.warm_up), in the background."""
    try:
        pipeline.warm_up()
    except RagError as e:  # e.g. no index yet: the page says so when a question is asked
        print(f"warm-up: {e}", flush=True)
    finally:
        ready.set()


# ---------------------------------------------------------------- uploads: each key's own


UPLOAD_NOT_YOURS = ("**Không nhận:** chỉ nhận tệp vừa được tải lên qua trang này bằng chính tài khoản này, "
                    "không nhận đường dẫn trên máy chủ: {}")


class Uploads:
    """Which principal uploaded which file. Gradio writes every caller's uploads into one folder, hands an event
    whatever path a request names as a file (copying it into that folder), and serves that folder to whoever
    names a file in it (file=). Here the chat's upload takes, and file= serves, a file only to a principal who
    uploaded it through Gradio's upload route (issue 32). In memory: after a restart, files are uploaded again."""

    def __init__(self):
        self._owners: dict[str, set[users.Principal]] = {}  # identical uploads share a path: each uploader owns it
        self._lock = threading.Lock()

    def record(self, who: users.Principal, paths) -> None:
        with self._lock:
            for p in paths:
                self._owners.setdefault(os.path.abspath(p), set()).add(who)

    def owns(self, who: users.Principal, path) -> bool:
        """os.path.abspath, as Gradio's own routes read a path: "..", "//" and the like name the same file."""
        with self._lock:
            return who in self._owners.get(os.path.abspath(path), ())


class UploadGate:
    """ASGI middleware inside access.Gate (so the caller is known): records for whom Gradio's upload route wrote
    its files, and lets Gradio's file routes (file=PATH, file/PATH) serve only the caller's own uploads; any
    other path, URL included, gets 404 whether it exists or not."""

    FILE_ROUTE = re.compile(r"/gradio_api/file[=/](.*)")

    def __init__(self, app, *, policy: access.Policy, uploads: Uploads):
        self.app, self.policy, self.uploads = app, policy, uploads

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "") if scope["type"] == "http" else ""
        served = self.FILE_ROUTE.search(path)
        if not served and not path.endswith(access.UPLOAD_PATH_SUFFIX):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        # the Gate let it through, so the key's check is remembered; a worker thread all the same, as scrypt
        # must never run on the event loop (should users.json change in between, it is checked afresh)
        who = await anyio.to_thread.run_sync(self.policy.who, headers)
        if served:
            if who is None or not self.uploads.owns(who, served[1]):
                body = {"error": {"message": "no such upload for this key: only files it uploaded are served",
                                  "type": "invalid_request_error", "param": None, "code": "file_not_found"}}
                return await JSONResponse(body, status_code=404)(scope, receive, send)
            return await self.app(scope, receive, send)
        return await self.app(scope, receive, self._recording(send, who))

    def _recording(self, send, who):
        """`send`, noting the paths a successful upload answers with before the client can see (and use) them
        (a JSON list: Gradio compresses only answers to paths ending .json, .md and the like)."""
        status, body = None, bytearray()

        async def record_then_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if status == 200 and who is not None and not message.get("more_body"):
                    paths = json.loads(body)
                    self.uploads.record(who, [p for p in paths if isinstance(p, str)])
            await send(message)

        return record_then_send


# ---------------------------------------------------------------- the app


def build_app(pipeline: Pipeline, ready: threading.Event | None = None, *, allow_writes: bool = True,
              policy: access.Policy | None = None, uploads: Uploads | None = None) -> gr.Blocks:
    """The chat page, over the collections (rag.index.collections) the request's key may read, chosen in a selector.
    `policy` (rag.serve.access) says who each request is; without one, allow_writes=False stands for a server open
    to the network without users or RAG_API_KEY: the corpus tab lists articles but refuses uploads, URLs and
    removals. Writes need the key's write right on the selected collection. `uploads`: who uploaded which file
    (UploadGate records them); a file the request's principal did not upload is refused (none without it)."""
    settings = pipeline.settings
    ready = ready or threading.Event()
    choices = model_choices(settings)
    policy = policy or access.Policy(None, settings.api_key, "127.0.0.1" if allow_writes else "0.0.0.0")
    uploads = uploads or Uploads()

    def who(request: gr.Request | None) -> users.Principal:
        headers = dict(request.headers) if request is not None and getattr(request, "headers", None) else {}
        return policy.who(headers) or users.Principal("nobody")  # the Gate let it through: no rights at all

    def readable(request: gr.Request | None) -> list[str]:
        me = who(request)
        return [c for c in collections.names(settings) if me.can_read(c)]

    def target(name: str | None, request: gr.Request | None, *, write: bool = False) -> Pipeline:
        """The selected collection's pipeline, if this request's key may read (write) it; access.Forbidden if not.
        Several ("a,b", reading only): every one of them."""
        names = collections.split(name) or [collections.DEFAULT]
        me = who(request)
        if write and (len(names) > 1 or not me.can_write(names[0])):
            raise access.Forbidden(access.NO_WRITE_RIGHTS.format(",".join(names)) if policy.enabled()
                                   else access.WRITES_REFUSED)
        for n in names:
            if not me.can_read(n):
                raise access.Forbidden(access.NO_READ_RIGHTS.format(n))
        return pipeline.collection(names)

    def refused(e: RagError) -> str:
        return str(e) if isinstance(e, access.Forbidden) else f"**Lỗi:** {_escape_md(str(e))}"

    def articles_view(collection: str = collections.DEFAULT, request: gr.Request = None):
        try:
            rows = manage.list_articles(target(collection, request).index)
        except RagError as e:
            return [], gr.Dropdown(choices=[], value=None), refused(e)
        table = [[r["id"], r["title"], format_date(r["date"]), r["source"] or "", r["chunks"]] for r in rows]
        ids = gr.Dropdown(choices=[(f"{r['title']} ({r['id']})", r["id"]) for r in rows], value=None)
        return table, ids, f"{len(rows)} bài báo trong chỉ mục."

    def _sources_or_none(collection: str = collections.DEFAULT, request: gr.Request = None) -> list[str]:
        try:
            return source_names(target(collection, request).index.articles)
        except RagError:  # no index yet: the chat says so when asked
            return []

    # --- chat

    def start_turn(message: str, chat: list):
        q = (message or "").strip()
        if not q:
            return gr.skip(), gr.skip(), ""
        return gr.Textbox(value="", interactive=False), chat + [{"role": "user", "content": q}], q

    def respond(question: str, chat: list, turns: list, top_k: int, retriever: str, model: str,
                since: str = "", until: str = "", sources: list | None = None,
                collection: str = collections.DEFAULT, request: gr.Request = None):
        if not question:
            yield gr.skip(), gr.skip(), gr.skip()
            return
        wait = "_Đang tìm trong các bài báo…_" if ready.is_set() else "_Đang khởi động mô hình (lần đầu mất khoảng một phút)…_"
        chat = chat + [{"role": "assistant", "content": wait}]
        yield chat, turns, '<div class="rag-sources rag-empty">Đang tìm nguồn…</div>'
        shown, answer = "", None
        try:
            answering = target(collection, request)
            history, filters = history_messages(turns), chat_filters(since, until, sources)
            run = streams.Stoppable(lambda cancel: answering.ask_stream(
                question, history=history, top_k=int(top_k), retriever=retriever, generator=model, filters=filters,
                cancel=cancel,
            ))
            # Gradio closes this generator when the tab goes away (its SSE stream drops), but only at a yield,
            # and verified sentences may be seconds apart: between them it yields "nothing new" every
            # KEEPALIVE seconds. Closing it stops the pipeline at the model's next token and closes the
            # generator chain (rag.serve.streams), freeing the model for the next question.
            with closing(run.polled(KEEPALIVE)) as pieces:
                for piece in pieces:
                    if piece is None:
                        yield gr.skip(), gr.skip(), gr.skip()
                    elif isinstance(piece, Answer):
                        answer = piece
                    else:
                        shown += piece
                        chat[-1] = {"role": "assistant", "content": _escape_md(shown)}
                        yield chat, turns, gr.skip()
        except RagError as e:
            chat[-1] = {"role": "assistant", "content": refused(e)}
            yield chat, turns, NO_SOURCES
            return
        if answer is None:  # cancelled: nobody is reading any more
            return
        period = f"\n\n_{answer.period['note']}_" if answer.period else ""  # which dates the question meant
        # the text quotes untrusted articles (an abstention names their titles): HTML in it is shown as text
        chat[-1] = {"role": "assistant", "content": link_markers(_escape_md(answer.text), answer.citations) + period}
        turn = {"question": question, "answer": answer.to_dict(), "message": len(chat) - 1, "collection": collection,
                "settings": {"top_k": int(top_k), "retriever": retriever, "generator": model,
                             "filters": chat_filters(since, until, sources)}}
        yield chat, turns + [turn], render_sources(answer, answering.index.articles)

    def show_sources(turns: list, data: gr.SelectData, request: gr.Request = None):
        """Clicking an earlier answer (or one of its [n] links) brings its sources back into the panel."""
        turn = next((t for t in turns if t["message"] == data.index), None)
        if turn is None:
            return gr.skip()
        try:
            articles = target(turn.get("collection"), request).index.articles
        except RagError:
            articles = {}
        return render_sources(answer_from_dict(turn["answer"]), articles)

    def on_like(turns: list, data: gr.LikeData):
        turn = next((t for t in turns if t["message"] == data.index), None)
        if turn is None or data.liked is None:
            return
        rating = {True: "up", False: "down"}.get(data.liked, str(data.liked))
        log_feedback({
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "rating": rating,
            "question": turn["question"],
            "answer": turn["answer"]["text"],
            "citations": turn["answer"]["citations"],
            "abstained": turn["answer"]["abstained"],
            "model": turn["answer"]["model"],
            "settings": turn["settings"],
        }, feedback_path(settings))
        gr.Info("Cảm ơn bạn đã góp ý!")

    # --- corpus

    def upload(files, collection: str = collections.DEFAULT, request: gr.Request = None,
               progress=gr.Progress(track_tqdm=True)):
        view = lambda: articles_view(collection, request)[:2]  # noqa: E731
        try:
            writing = target(collection, request, write=True)
            if not files:
                return ("Chưa chọn tệp nào.",) + view()
            foreign = [f for f in files if not uploads.owns(who(request), f)]  # a path named in the request
            if foreign:
                return (UPLOAD_NOT_YOURS.format(", ".join(f"«{_escape_md(Path(f).name)}»" for f in foreign)),) + view()
            report = manage.add_files(  # on_publish: the chat searches the new articles before they are embedded
                writing.settings, [Path(f) for f in files], embedder=writing.embedder, progress=progress,
                on_publish=writing.reload,
            )
        except RagError as e:
            return (refused(e),) + view()
        if report.index:
            writing.reload()
        return (upload_message(report),) + view()

    def add_urls(urls: str, collection: str = collections.DEFAULT, request: gr.Request = None,
                 progress=gr.Progress(track_tqdm=True)):
        view = lambda: articles_view(collection, request)[:2]  # noqa: E731
        try:
            writing = target(collection, request, write=True)
            report = ingest.add_urls(writing.settings, urls or "", embedder=writing.embedder, on_publish=writing.reload)
        except RagError as e:
            return (refused(e),) + view()
        if report.index:
            writing.reload()
        return (ingest.url_result_note(report) + "\n\n" + upload_message(report),) + view()

    def remove(article_id: str | None, collection: str = collections.DEFAULT, request: gr.Request = None,
               progress=gr.Progress(track_tqdm=True)):
        view = lambda: articles_view(collection, request)[:2]  # noqa: E731
        try:
            writing = target(collection, request, write=True)
            if not article_id:
                return ("Chọn một bài để xoá.",) + view()
            manage.remove_article(writing.settings, article_id, embedder=writing.embedder, progress=progress,
                                  on_publish=writing.reload)
        except RagError as e:
            return (refused(e),) + view()
        writing.reload()
        return (f"Đã xoá «{_escape_md(article_id)}» và cập nhật chỉ mục.",) + view()

    def collection_choices(request: gr.Request = None):
        mine = readable(request)
        return gr.Dropdown(choices=mine, value=mine[0] if mine else None)

    # --- API

    def ask(question: str, top_k: int = settings.top_k, retriever: str = settings.retriever,
            since: str = "", until: str = "", source: str = "", request: gr.Request = None) -> dict:
        """Answer one question from the indexed articles (the collection "default"); returns the Answer as a
        dict (text, citations, abstained, timings, model, period). Optional: articles published since/until
        a date (2025-11-28 or 28/11/2025) and from one source."""
        return ask_in(collections.DEFAULT, question, top_k, retriever, since, until, source, request)

    def ask_in(collection: str, question: str, top_k: int = settings.top_k, retriever: str = settings.retriever,
               since: str = "", until: str = "", source: str = "", request: gr.Request = None) -> dict:
        """Answer one question from the indexed articles of one collection (rag collections list), as "ask"."""
        if retriever not in RETRIEVERS:
            raise gr.Error(f"retriever must be one of {', '.join(RETRIEVERS)}")
        try:
            filters = chat_filters(since, until, [source] if source else None)
            answering = target(collection or collections.DEFAULT, request)
            return answering.ask(question, top_k=int(top_k), retriever=retriever, filters=filters).to_dict()
        except RagError as e:
            raise gr.Error(str(e)) from e

    with gr.Blocks(title="Hỏi đáp tin tức", analytics_enabled=False) as demo:
        turns = gr.State([])  # per session: [{"question", "answer": Answer dict, "message", "settings"}]
        question = gr.State("")
        gr.Markdown(INTRO)
        collection_pick = gr.Dropdown([collections.DEFAULT], value=collections.DEFAULT, label="Bộ sưu tập",
                                      info="Câu trả lời chỉ dựa trên các bài báo của bộ sưu tập này.")
        with gr.Tabs():
            with gr.Tab("Hỏi đáp"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        chatbot = gr.Chatbot(
                            label="Trò chuyện", height=460, buttons=["copy"],
                            placeholder="Hãy đặt câu hỏi về các bài báo trong kho.",
                        )
                        msg = gr.Textbox(
                            placeholder="Nhập câu hỏi rồi nhấn Enter…", show_label=False, submit_btn="Gửi",
                            max_length=settings.max_question_chars, autofocus=True,
                        )
                        gr.Examples(EXAMPLES, inputs=msg, label="Câu hỏi mẫu")
                        clear = gr.Button("Xoá hội thoại", variant="secondary", size="sm")
                        with gr.Accordion("Cài đặt", open=False):
                            top_k = gr.Slider(1, 10, value=settings.top_k, step=1, label="Số đoạn nguồn tìm kiếm (top_k)")
                            retriever = gr.Radio(
                                [(v, k) for k, v in RETRIEVERS.items()], value=settings.retriever, label="Cách tìm kiếm"
                            )
                            model = gr.Dropdown(choices, value=choices[0][1], label="Mô hình trả lời")
                            with gr.Row():
                                since = gr.Textbox(label="Từ ngày", placeholder="dd/mm/yyyy")
                                until = gr.Textbox(label="Đến ngày", placeholder="dd/mm/yyyy")
                            source_pick = gr.Dropdown([], multiselect=True, label="Nguồn báo (để trống: tất cả)")
                    with gr.Column(scale=2):
                        sources = gr.HTML(NO_SOURCES, label="Nguồn trích dẫn", elem_id="sources")
            with gr.Tab("Quản lý bài báo"):
                gr.Markdown(
                    f"Thêm bài báo (.md, .txt, .jsonl, .html; tối đa {manage.MAX_BYTES // 1_000_000} MB mỗi tệp): "
                    "chỉ mục được cập nhật ngay, "
                    "chỉ những bài mới được nhúng. Định dạng tệp: xem `corpus/README.md`."
                )
                files = gr.File(label="Tệp bài báo", file_count="multiple", file_types=list(manage.UPLOAD_SUFFIXES))
                add_btn = gr.Button("Thêm vào kho và lập chỉ mục", variant="primary")
                urls = gr.Textbox(label="Hoặc địa chỉ trang báo, RSS hay sitemap (cách nhau bởi dấu cách)", lines=2)
                url_count = gr.Markdown(ingest.url_field_note(settings, ""))  # the per-run cap, seen before it bites
                url_btn = gr.Button("Tải về, thêm vào kho và lập chỉ mục")
                status = gr.Markdown()
                table = gr.Dataframe(
                    headers=["Mã", "Tiêu đề", "Ngày", "Nguồn", "Số đoạn"], interactive=False, wrap=True,
                    label="Bài báo đã lập chỉ mục", elem_id="articles",
                    column_widths=["26%", "46%", "11%", "10%", "7%"],
                )
                with gr.Row(equal_height=True):
                    to_remove = gr.Dropdown(label="Chọn bài để xoá", choices=[], scale=3)
                    remove_btn = gr.Button("Xoá bài", variant="stop", scale=1)

        ui = {"api_visibility": "undocumented"}  # the page's own events; the API is "ask" below
        msg.submit(start_turn, [msg, chatbot], [msg, chatbot, question], queue=False, **ui).then(
            respond, [question, chatbot, turns, top_k, retriever, model, since, until, source_pick, collection_pick],
            [chatbot, turns, sources],
            concurrency_id="generate", **ui,
        ).then(lambda: gr.Textbox(interactive=True), None, msg, queue=False, **ui)
        chatbot.like(on_like, [turns], None, queue=False, **ui)
        chatbot.select(show_sources, [turns], sources, queue=False, **ui)
        reset = (lambda: ([], [], NO_SOURCES), None, [chatbot, turns, sources])
        clear.click(*reset, queue=False, **ui)
        chatbot.clear(*reset, queue=False, **ui)
        add_btn.click(upload, [files, collection_pick], [status, table, to_remove], concurrency_id="corpus", **ui)
        url_btn.click(add_urls, [urls, collection_pick], [status, table, to_remove], concurrency_id="corpus", **ui)
        urls.change(lambda text: ingest.url_field_note(settings, text), urls, url_count, queue=False, **ui)
        remove_btn.click(remove, [to_remove, collection_pick], [status, table, to_remove], concurrency_id="corpus", **ui)

        def show_collection(collection: str, request: gr.Request = None):
            """Another collection: its articles and sources; the conversation starts afresh (answers never mix)."""
            table_, ids, note = articles_view(collection, request)
            return (table_, ids, note, gr.Dropdown(choices=_sources_or_none(collection, request), value=None))

        demo.load(collection_choices, None, collection_pick, queue=False, **ui).then(
            show_collection, collection_pick, [table, to_remove, status, source_pick], **ui)
        collection_pick.input(show_collection, collection_pick, [table, to_remove, status, source_pick], **ui).then(
            *reset, queue=False, **ui)
        gr.api(ask, api_name="ask", concurrency_id="generate")
        gr.api(ask_in, api_name="ask_in", concurrency_id="generate")
    return demo


THEME = gr.themes.Soft(
    primary_hue="blue", font=["system-ui", "Noto Sans", "DejaVu Sans", "sans-serif"], font_mono=["monospace"]
)


def bounded_queue(demo: gr.Blocks, settings: Settings) -> gr.Blocks:
    """Gradio's queue, one event at a time per listener, holding at most RAG_MAX_WAITING events waiting to
    start (the bound /v1 has; at least 1, as Gradio counts an event from its arrival, before it starts).
    One more is refused with 503 naming the setting (an API client sees it; the page shows Gradio's own
    "This application is currently busy. Please try again.")."""
    limit = max(1, settings.max_waiting)
    demo.queue(default_concurrency_limit=1, max_size=limit)
    queue = demo._queue  # Gradio's message ("Queue is full. Max size is N…") does not say what to change
    push = queue.push

    async def push_or_refuse(*args, **kwargs):
        ok, detail, state = await push(*args, **kwargs)
        if state == "queue_full":
            detail = (f"the server is busy: {limit} requests are already waiting (RAG_MAX_WAITING); "
                      "try again shortly")
        return ok, detail, state

    queue.push = push_or_refuse
    return demo


def make_server(pipeline: Pipeline, host: str = DEFAULT_HOST, ready: threading.Event | None = None,
                port: int = DEFAULT_PORT) -> FastAPI:
    """One ASGI app: the chat page and Gradio's API at /, the OpenAI-compatible API at /v1, behind
    rag.serve.access.Gate (RAG_API_KEY for everything when set; no writes on a non-loopback host without it)."""
    settings = pipeline.settings
    policy = access.Policy(settings.home, settings.api_key, host)  # users: HOME/users.json (rag.serve.users)
    uploads = Uploads()
    demo = build_app(pipeline, ready, policy=policy, uploads=uploads)
    server = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)  # Gradio documents its own API
    server.include_router(openai_api.router(pipeline, policy))  # /v1/...: OpenAI-compatible, same pipeline and models
    gr.mount_gradio_app(
        server, bounded_queue(demo, settings), path="/", server_name=host, server_port=port,
        max_file_size=manage.MAX_BYTES, show_error=True, theme=THEME, css=CSS, footer_links=["api"], ssr_mode=False,
        run_history=False,  # its routes would copy any key's uploads to a Hugging Face bucket of the caller's
    )
    # Gradio refuses an event's file outside its upload folder (before copying it in: /dev/zero, a 0600 file)
    # only once it "has launched", which mount_gradio_app never says (gradio.processing_utils._check_allowed)
    demo.has_launched = True
    server.add_middleware(UploadGate, policy=policy, uploads=uploads)
    server.add_middleware(access.Gate, policy=policy)  # added last: outermost, so it runs first
    return server


def main(host: str | None = None, port: int | None = None, settings: Settings | None = None,
         insecure: bool = False) -> int:
    """Serve the chat page and the OpenAI-compatible /v1 API (rag.serve.openai_api) on one server until
    interrupted. host/port default to RAG_HOST/RAG_PORT, then 127.0.0.1:7860. A non-loopback host needs
    users or RAG_API_KEY, or insecure=True (`rag serve --insecure`): access.UnsafeBind otherwise."""
    host = host or os.environ.get("RAG_HOST") or DEFAULT_HOST
    port = int(port or os.environ.get("RAG_PORT") or DEFAULT_PORT)
    settings = settings or load_settings()
    access.check_bind(host, access.Policy(settings.home, settings.api_key, host), insecure)
    pipeline = Pipeline(settings)
    ready = threading.Event()
    server = make_server(pipeline, host, ready, port)
    threading.Thread(target=warm, args=(pipeline, ready), name="warm-up", daemon=True).start()
    if not access.Policy(settings.home, settings.api_key, host).enabled() and not access.is_loopback(host):
        print(f"--insecure: {host} is not a loopback address and there are no users and no RAG_API_KEY: anyone "
              "may ask, uploads, URLs and removals are off", flush=True)
    print(f"Serving the chat on http://{host}:{port}/ and the OpenAI-compatible API on http://{host}:{port}/v1", flush=True)
    # asked to stop (Ctrl-C, SIGTERM), it waits for open requests at most SHUTDOWN_GRACE_S, not until every tab closes
    uvicorn.run(server, host=host, port=port, log_level="warning", timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    return 0
