"""Streams end with their client (issue 22, item 3): a /v1 client that drops its stream ends its generation
within about a second and frees the model for the next question; the waiting queue is bounded (503).

A real uvicorn server on 127.0.0.1 (an ASGI test client cannot drop a stream half-way), the fake embedder
and a slow fake model that, like llama.cpp, holds one lock while it streams."""
from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from conftest import _free_port
from rag.index import build as index
from rag.serve import openai_api, streams
from rag.answer.pipeline import Pipeline

QUESTION = "Mưa lớn ở đâu, bao nhiêu hộ sơ tán?"
FIRST = "Mưa lớn kéo dài ở Huế và Đà Nẵng [1]. "  # verified at once: the client gets its first chunk


class SlowModel:
    """One stream at a time (a lock held while streaming, as LlamaCppGenerator does). The first call says
    FIRST, then a word every `delay` seconds for `words` words without ending its sentence (nothing more is
    verified, so the pipeline keeps reading tokens and yields nothing: the case a dropped client must still
    stop); later calls say FIRST and end. Records when each stream started and was closed."""

    name = "slow"

    def __init__(self, words: int = 600, delay: float = 0.1):
        self.words, self.delay = words, delay
        self.lock = threading.Lock()
        self.calls = 0
        self.started: list[float] = []
        self.closed: list[float] = []
        self.tokens = 0

    def stream(self, messages, *, max_tokens=200, stop=None):
        with self.lock:
            call, self.calls = self.calls, self.calls + 1
            self.started.append(time.monotonic())
            try:
                yield FIRST
                if call == 0:
                    for _ in range(self.words):
                        time.sleep(self.delay)
                        self.tokens += 1
                        yield "hàng "
            finally:
                self.closed.append(time.monotonic())


@contextmanager
def serve(app):
    """`app` on a free 127.0.0.1 port, in a thread; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def slow_server(settings, articles, fake_embedder):
    index.update(settings, articles, fake_embedder, progress=False, log=lambda m: None)

    @contextmanager
    def make(model: SlowModel, **overrides):
        pipeline = Pipeline(settings.replace(**overrides), embedder=fake_embedder, generator=model)
        app = FastAPI()
        app.include_router(openai_api.router(pipeline))
        with serve(app) as url:
            yield url

    return make


BODY = {"model": "rag", "messages": [{"role": "user", "content": QUESTION}], "stream": True}


def first_content(url: str, timeout: float = 30) -> tuple[float, httpx.Response, httpx.Client]:
    """Start a streamed question; (seconds to its first content chunk, the open response, its client)."""
    client = httpx.Client(timeout=timeout)
    t0 = time.monotonic()
    response = client.send(client.build_request("POST", url + "/v1/chat/completions", json=BODY), stream=True)
    assert response.status_code == 200, response.read()
    lines = response.iter_lines()  # kept open: a line iterator dropped half-way closes the connection
    response.lines = lines
    for line in lines:
        if line.startswith("data: ") and '"content": "Mưa' in line:
            return time.monotonic() - t0, response, client
    pytest.fail("the stream ended without content")


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_dropped_stream_stops_generation_and_frees_the_model(slow_server):
    model = SlowModel()
    with slow_server(model) as url:
        _, response, client = first_content(url)
        time.sleep(1.0)  # the model keeps producing words nobody will see
        assert not model.closed and model.tokens >= 5
        response.close()  # the client goes away mid-stream
        client.close()
        dropped = time.monotonic()
        assert wait_for(lambda: model.closed, 5), "the abandoned generation was never closed"
        assert model.closed[0] - dropped < 2.0, f"closed {model.closed[0] - dropped:.2f}s after the drop"
        assert model.tokens < 40  # 600 words at 0.1 s were asked for: generation stopped, not finished
        assert not model.lock.locked()

        seconds, response, client = first_content(url, timeout=10)  # the next question is not kept waiting
        response.close()
        client.close()
        assert seconds < 3.0


class PromptReader(SlowModel):
    """A model that, like llama.cpp reading a long prompt, gives no token for a long time on its first call
    (so its reader has no chance to close it) but stops at once when the `cancel` event it was handed is
    set (LlamaCppGenerator's abort callback); later calls say FIRST and end."""

    takes_cancel = True

    def __init__(self, reading: float = 60.0):
        super().__init__()
        self.reading = reading
        self.cancels: list = []  # the event each call was handed

    def stream(self, messages, *, max_tokens=200, stop=None, cancel=None):
        with self.lock:
            call, self.calls = self.calls, self.calls + 1
            self.cancels.append(cancel)
            self.started.append(time.monotonic())
            try:
                if call == 0:
                    if cancel is None:
                        time.sleep(self.reading)
                    elif cancel.wait(self.reading):
                        return  # stopped in the middle of the prompt: no token, no error
                yield FIRST
            finally:
                self.closed.append(time.monotonic())


def test_a_stream_dropped_while_the_prompt_is_read_stops_the_model_within_a_second(slow_server):
    """Dropped before any content came: the model is still reading its prompt and yields nothing, so only
    the cancel event handed to it can stop it (issue 22: llama.cpp went on ~1.5 s, to its first token)."""
    model = PromptReader()
    with slow_server(model) as url:
        sock = raw_question(url, BODY)
        assert wait_for(lambda: model.started, 10)
        time.sleep(0.5)  # reading the prompt
        sock.close()  # the client goes away before any content
        dropped = time.monotonic()
        assert wait_for(lambda: model.closed, 5), "the abandoned generation was never stopped"
        assert model.closed[0] - dropped < 1.0, f"stopped {model.closed[0] - dropped:.2f}s after the drop"
        assert model.cancels[0] is not None and not model.lock.locked()

        seconds, response, client = first_content(url, timeout=10)  # the next question is answered
        response.close()
        client.close()
        assert seconds < 3.0


def test_a_model_stream_stopped_by_its_cancel_event_ends_the_answer_without_one(settings, articles, fake_embedder):
    """The model's stream ends early and quietly when the answer is cancelled: the pipeline must not take
    that cut-short reply for a finished one (no refusal, no evidence sentence, no Answer): just the end."""
    index.update(settings, articles, fake_embedder, progress=False, log=lambda m: None)
    model = PromptReader()
    pipeline = Pipeline(settings, embedder=fake_embedder, generator=model)
    run = streams.Stoppable(lambda cancel: pipeline.ask_stream(QUESTION, cancel=cancel))
    got: list = []
    reader = threading.Thread(target=lambda: got.append(run.read()))
    reader.start()
    assert wait_for(lambda: model.started, 10)
    run.close()
    reader.join(timeout=5)
    assert got == [streams.END] and model.closed


def raw_question(url: str, body: dict) -> socket.socket:
    """A question sent over a bare socket, so the test can drop it at will."""
    import json

    data = json.dumps(body).encode()
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(data) + data)
    return sock


def test_full_queue_is_503_and_dropped_questions_leave_it(slow_server):
    model = SlowModel()
    with slow_server(model, max_waiting=1) as url:
        _, running, c1 = first_content(url)  # being answered: holds the model
        waiting = raw_question(url, BODY)  # waits for the model
        time.sleep(0.5)
        with httpx.Client(timeout=10) as c3:  # a third finds the queue full
            r = c3.post(url + "/v1/chat/completions", json=BODY)
        assert r.status_code == 503
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"}
        assert (err["type"], err["code"]) == ("server_error", "queue_full") and "RAG_MAX_WAITING" in err["message"]

        waiting.close()  # both clients give up
        running.close()
        c1.close()
        assert wait_for(lambda: len(model.closed) == model.calls and not model.lock.locked(), 5)
        assert model.calls <= 2  # the waiter got the model for one token at most, then let go
        # their places are free again: two questions at once are both taken
        seconds, response, client = first_content(url, timeout=10)
        other = raw_question(url, BODY)
        time.sleep(0.3)
        response.close()
        client.close()
        reply = other.recv(200)
        other.close()
        assert seconds < 3.0 and reply.startswith(b"HTTP/1.1 200")


class FakeLlama:
    """Stands in for llama_cpp.Llama: a chat completion stream of endless tokens that records its closing."""

    def __init__(self):
        self.closed = threading.Event()
        self.tokens = 0

    def reset(self):
        pass

    def create_chat_completion(self, messages, **kw):
        self.last = self._completion()  # a reference kept elsewhere: closing may not be left to the GC
        return self.last

    def _completion(self):
        try:
            while True:
                self.tokens += 1
                yield {"choices": [{"delta": {"content": "từ "}}]}
        finally:
            self.closed.set()


def test_closing_a_llama_stream_stops_llama_and_frees_the_model(tmp_path):
    from rag.answer.generate import LlamaCppGenerator

    gen = LlamaCppGenerator(tmp_path / "fake.gguf")
    gen._llm = llm = FakeLlama()  # no model file is read
    messages = [{"role": "user", "content": "Ai?"}]
    stream = gen.stream(messages)
    assert [next(stream) for _ in range(3)] == ["từ "] * 3
    assert gen._run_lock.locked()  # a stream holds the model
    stream.close()  # its reader went away
    assert llm.closed.is_set() and llm.tokens == 3  # llama.cpp's own token loop was closed, not left running
    assert not gen._run_lock.locked()
    again = gen.stream(messages)
    assert next(again) == "từ "  # the next question gets the model at once
    again.close()


# ---------------------------------------------------------------- the web chat (Gradio)


def chat_blocks(server) -> "gr.Blocks":
    """The Gradio Blocks that web.make_server mounted at /."""
    return next(r.app.get_blocks() for r in server.routes if hasattr(getattr(r, "app", None), "get_blocks"))


class ChatTab:
    """What a browser tab does for one question: start_turn (outside the queue), then respond through Gradio's
    queue, whose messages arrive on the tab's server-sent event stream (GET /gradio_api/queue/data)."""

    def __init__(self, url: str, blocks):
        import uuid

        self.url, self.session = url, uuid.uuid4().hex
        fns = {f.fn.__name__: i for i, f in blocks.fns.items() if f.fn is not None}
        self.start_turn, self.respond = fns["start_turn"], fns["respond"]
        self.client = httpx.Client(timeout=30)
        self.events = None

    def ask(self, question: str = QUESTION) -> httpx.Response:
        """The question sent; the queue's answer to joining it (200, or 503 when the queue is full)."""
        r = self.client.post(self.url + "/gradio_api/run/predict", json={
            "data": [question, []], "fn_index": self.start_turn, "session_hash": self.session})
        assert r.status_code == 200, r.text
        # question, chat, turns (states: the server keeps them), top_k, retriever, model (None: the pipeline's
        # own), since, until, sources, collection
        chat = [{"role": "user", "content": [{"type": "text", "text": question}]}]  # as the page sends it
        data = [None, chat, None, 4, "hybrid", None, "", "", [], "default"]
        return self.client.post(self.url + "/gradio_api/queue/join", json={
            "data": data, "fn_index": self.respond, "session_hash": self.session, "event_data": None, "trigger_id": None})

    def read_until(self, text: str, seconds: float = 30) -> list[str]:
        """The tab's event stream (opened once, kept open) read until a message holding `text`."""
        if self.events is None:
            self.events = self.client.send(self.client.build_request(
                "GET", self.url + "/gradio_api/queue/data", params={"session_hash": self.session}), stream=True)
            self.lines = self.events.iter_lines()
        seen, deadline = [], time.monotonic() + seconds
        for line in self.lines:
            seen.append(line)
            if text in line:
                return seen
            assert time.monotonic() < deadline, f"no {text!r} within {seconds} s"
        pytest.fail(f"the event stream ended without {text!r}: {seen[-5:]}")

    def close(self) -> None:
        """The tab goes away: its event stream drops."""
        if self.events is not None:
            self.events.close()
        self.client.close()


@pytest.fixture
def chat_server(settings, articles, fake_embedder):
    from rag.serve import web

    index.update(settings, articles, fake_embedder, progress=False, log=lambda m: None)

    @contextmanager
    def make(model: SlowModel, **overrides):
        pipeline = Pipeline(settings.replace(**overrides), embedder=fake_embedder, generator=model)
        server = web.make_server(pipeline, "127.0.0.1")
        with serve(server) as url:
            yield url, chat_blocks(server)

    return make


def test_a_closed_chat_tab_stops_its_generation_within_a_second(chat_server):
    """The chat's answer streams through Gradio, which closes an abandoned generator only at its next yield;
    verified sentences may be many seconds apart (here: never), so before the fix the model went on."""
    model = SlowModel()
    with chat_server(model) as (url, blocks):
        tab = ChatTab(url, blocks)
        assert tab.ask().status_code == 200
        tab.read_until("Mưa lớn")  # the first verified sentence is on the page
        time.sleep(1.0)  # the model keeps writing words that make no sentence: nothing new to show
        assert not model.closed and model.tokens >= 5
        tab.close()
        dropped = time.monotonic()
        assert wait_for(lambda: model.closed, 5), "the abandoned generation was never closed"
        assert model.closed[0] - dropped < 1.0, f"closed {model.closed[0] - dropped:.2f}s after the tab went"
        assert model.tokens < 30 and not model.lock.locked()

        again = ChatTab(url, blocks)  # the next question is not kept waiting
        t0 = time.monotonic()
        assert again.ask().status_code == 200
        again.read_until("Mưa lớn", seconds=10)
        assert time.monotonic() - t0 < 3.0
        again.close()


def test_the_chat_answer_is_whole_with_quiet_spells_between_sentences(chat_server, settings):
    """The chat yields "nothing new" while it waits (so a closed tab is noticed): the answer that reaches
    the page is still the verified one, with its sources."""

    class Pausing(SlowModel):
        def stream(self, messages, *, max_tokens=200, stop=None):
            yield "Mưa lớn kéo dài ở Huế "
            time.sleep(0.8)  # a few keepalives go by
            yield "và Đà Nẵng [1]. "
            time.sleep(0.6)
            yield "Hàng nghìn hộ dân phải sơ tán [1]."

    with chat_server(Pausing()) as (url, blocks):
        tab = ChatTab(url, blocks)
        assert tab.ask().status_code == 200
        lines = tab.read_until("process_completed", seconds=30)
        tab.close()
        done = json.loads(lines[-1].removeprefix("data: "))
        assert done["success"], done
        chat, _turns, sources = done["output"]["data"]
        shown = " ".join(part["text"] for part in chat[-1]["content"])
        assert shown == "Mưa lớn kéo dài ở Huế và Đà Nẵng [[1]](#src-1). Hàng nghìn hộ dân phải sơ tán [[1]](#src-1)."
        assert "Mưa lớn ở miền Trung" in sources


def test_the_chat_queue_is_bounded_by_rag_max_waiting(chat_server):
    """One question answering, one waiting (RAG_MAX_WAITING=1): a third tab's question is refused with 503
    naming the setting; once the first tab goes, the waiting one is answered."""
    model = SlowModel()
    with chat_server(model, max_waiting=1) as (url, blocks):
        first, second, third = (ChatTab(url, blocks) for _ in range(3))
        assert first.ask().status_code == 200
        first.read_until("Mưa lớn")  # answering: holds the model
        assert second.ask().status_code == 200  # waits
        refused = third.ask()
        assert refused.status_code == 503 and "RAG_MAX_WAITING" in refused.json()["detail"], refused.text
        first.close()
        second.read_until("Mưa lớn", seconds=10)  # the model is free for the one that waited
        second.close()
        third.close()
