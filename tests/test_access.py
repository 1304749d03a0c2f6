"""The chat's own endpoints (issue 22, item 2): with RAG_API_KEY set, the page and every Gradio API call
need the key too, not only /v1; a server bound to a non-loopback address without a key refuses writes.
The whole `rag serve` app (rag.serve.web.make_server) through an in-process ASGI client: nothing is bound."""
from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from conftest import Scripted
from rag.serve import access, web
from rag.index import build as index
from rag.answer.pipeline import Pipeline

KEY = "s3cret-key"
QUESTION = "Mưa lớn ở đâu, bao nhiêu hộ sơ tán?"


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("::", False), ("", False), ("192.168.1.10", False), ("10.0.0.5", False),
    ("news.example.vn", False), ("2001:db8::1", False),
])
def test_writes_need_loopback_or_a_key(host, loopback):
    assert access.is_loopback(host) is loopback
    assert access.writes_allowed(host, "") is loopback
    assert access.writes_allowed(host, KEY) is True


def test_key_given_bearer_or_basic_password():
    basic = lambda s: {"authorization": "Basic " + base64.b64encode(s.encode()).decode()}  # noqa: E731
    assert access.key_given({"authorization": f"Bearer {KEY}"}, KEY)
    assert access.key_given(basic(f"anyone:{KEY}"), KEY)
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": KEY}, basic(f"{KEY}:"),
                    {"authorization": "Basic !!notbase64"}, {"authorization": f"Token {KEY}"}):
        assert not access.key_given(headers, KEY)


@pytest.fixture
def make_server(settings, articles, fake_embedder):
    index.update(settings, articles, fake_embedder, progress=False, log=lambda m: None)

    def make(api_key="", host="127.0.0.1"):
        pipeline = Pipeline(settings.replace(api_key=api_key), embedder=fake_embedder,
                            generator=Scripted("Mưa lớn kéo dài ở Huế và Đà Nẵng [1]."))
        return TestClient(web.make_server(pipeline, host))

    return make


def call_ask(client, headers=None):
    """Gradio's plain-HTTP API: POST /gradio_api/call/ask, then GET the result's event stream."""
    r = client.post("/gradio_api/call/ask", json={"data": [QUESTION, 4, "hybrid", "", "", ""]}, headers=headers or {})
    if r.status_code != 200:
        return r, None
    result = client.get(f"/gradio_api/call/ask/{r.json()['event_id']}", headers=headers or {})
    return r, result


def test_with_a_key_the_page_and_gradio_api_need_it(make_server):
    with make_server(api_key=KEY) as client:
        page = client.get("/")
        assert page.status_code == 401 and page.headers["www-authenticate"].startswith("Basic")
        assert page.json()["error"]["code"] == "invalid_api_key"
        r, _ = call_ask(client)
        assert r.status_code == 401
        r, _ = call_ask(client, {"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        assert client.post("/gradio_api/upload", files={"files": ("a.md", b"# A\n\nx")}).status_code == 401
        assert client.get("/v1/models").json()["error"]["code"] == "invalid_api_key"  # /v1: OpenAI's shape

        bearer = {"Authorization": f"Bearer {KEY}"}
        r, result = call_ask(client, bearer)
        assert r.status_code == 200 and "event: complete" in result.text and "\\u1ebf" in result.text
        browser = {"Authorization": "Basic " + base64.b64encode(f"me:{KEY}".encode()).decode()}
        assert client.get("/", headers=browser).status_code == 200
        assert client.get("/v1/models", headers=bearer).status_code == 200


def test_without_a_key_on_loopback_everything_works_as_before(make_server):
    with make_server() as client:
        assert client.get("/").status_code == 200
        r, result = call_ask(client)
        assert r.status_code == 200 and "event: complete" in result.text and "\\u1ebf" in result.text
        assert client.post("/gradio_api/upload", files={"files": ("a.md", b"# A\n\nx")}).status_code == 200


def test_open_to_the_network_without_a_key_questions_yes_writes_no(make_server, settings):
    with make_server(host="0.0.0.0") as client:  # only the decision uses the host: nothing is bound
        r, result = call_ask(client)
        assert r.status_code == 200 and "event: complete" in result.text and "\\u1ebf" in result.text
        r = client.post("/gradio_api/upload", files={"files": ("a.md", b"# A\n\nx")})
        assert r.status_code == 403 and r.json()["error"]["code"] == "writes_disabled"
    # the corpus tab's functions refuse too (called directly, as the page's events would call them)
    before = sorted(p.name for p in settings.corpus_dir.iterdir()) if settings.corpus_dir.exists() else []
    demo = web.build_app(Pipeline(settings, generator=Scripted()), allow_writes=False)
    fns = {f.fn.__name__: f.fn for f in demo.fns.values()}
    for name, arg in (("add_urls", "https://example.com/a"), ("remove", "mua")):
        assert fns[name](arg)[0] == access.WRITES_REFUSED
    after = sorted(p.name for p in settings.corpus_dir.iterdir()) if settings.corpus_dir.exists() else []
    assert before == after
