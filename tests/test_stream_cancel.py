"""Streams end with their client (issue 22, item 3): a /v1 client that drops its stream ends its generation
within about a second and frees the model for the next question; the waiting queue is bounded (503).

A real uvicorn server on 127.0.0.1 (an ASGI test client cannot drop a stream half-way), the fake embedder
and a slow fake model that, like llama.cpp, holds one lock while it streams."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from conftest import _free_port
from rag import index, openai_api
from rag.pipeline import Pipeline

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
    from rag.generate import LlamaCppGenerator

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
