"""The OpenAI-compatible endpoint (rag/serve/openai_api.py): request parsing, reply shapes, errors and the API key
with the fake embedder and a scripted model (fast); then the real `openai` client against the real
`rag serve` process with the real models (slow, the app server shared with test_app)."""
from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from conftest import Scripted
from rag.index import build as index
from rag.serve import openai_api
from rag.answer.pipeline import Pipeline

QUESTION = "Mưa lớn ở đâu, bao nhiêu hộ sơ tán?"
REPLY = "Mưa lớn kéo dài ở Huế và Đà Nẵng [1]. Hàng nghìn hộ dân phải sơ tán [1]."


@pytest.fixture
def make_client(settings, articles, fake_embedder):
    index.update(settings, articles, fake_embedder, progress=False, log=lambda m: None)

    def make(*replies, api_key="", reader_model=None, **overrides):
        gen = Scripted(*replies)
        pipeline = Pipeline(settings.replace(api_key=api_key, **overrides), embedder=fake_embedder, generator=gen,
                            reader=reader_model)
        app = FastAPI()
        app.include_router(openai_api.router(pipeline))
        return TestClient(app), gen

    return make


def chat(client, messages, **kw):
    return client.post("/v1/chat/completions", json={"model": "rag", "messages": messages, **kw})


def sse(response) -> list:
    events = [line[len("data: "):] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def test_models_lists_rag(make_client):
    client, _ = make_client()
    r = client.get("/v1/models")
    assert r.status_code == 200
    assert r.json()["object"] == "list" and r.json()["data"][0]["id"] == "rag"


def test_answer_with_markers_sources_list_and_citations_field(make_client):
    client, _ = make_client(REPLY)
    r = chat(client, [{"role": "user", "content": QUESTION}])
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["choices"][0]["finish_reason"] == "stop"
    text = body["choices"][0]["message"]["content"]
    answer, sources = text.split("\n\nNguồn:\n")
    assert "[1]" in answer and sources.startswith("[1] Mưa lớn ở miền Trung (2025-10-15, Báo A)")
    assert body["abstained"] is False
    assert [c["article_id"] for c in body["citations"]] == ["mua"] and body["citations"][0]["quote"]


def test_stream_chunks_end_with_citations_and_done(make_client):
    client, _ = make_client(REPLY)
    r = chat(client, [{"role": "user", "content": QUESTION}], stream=True)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    chunks = sse(r)
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text.count("[1]") == 3 and "\n\nNguồn:\n[1] Mưa lớn ở miền Trung" in text
    assert [c["choices"][0]["finish_reason"] for c in chunks].count("stop") == 1
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["citations"][0]["article_id"] == "mua"
    assert len(chunks) >= 4  # role, one chunk per verified sentence, sources


def test_abstention_is_marked(make_client):
    client, gen = make_client()
    body = chat(client, [{"role": "user", "content": "Giá bitcoin năm 2030 là bao nhiêu?"}]).json()
    assert body["abstained"] is True and body["citations"] == []
    assert body["choices"][0]["message"]["content"].startswith("Các bài báo không nhắc đến điều này.")
    assert "Nguồn:" not in body["choices"][0]["message"]["content"]


@pytest.mark.parametrize("followup", ["model", "rules"])
def test_earlier_messages_are_the_history(make_client, followup):
    answer = "Đội tuyển Việt Nam thắng Thái Lan 2-1 [1]."
    replies = ("Đội tuyển Việt Nam thắng Thái Lan tỉ số bao nhiêu?", answer) if followup == "model" else (answer,)
    client, gen = make_client(*replies, followup=followup)
    earlier = "Đội tuyển Việt Nam thắng Thái Lan [1].\n\nNguồn:\n[1] Đội tuyển Việt Nam thắng Thái Lan (2025-12-01, Báo B)"
    messages = [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "Đội tuyển Việt Nam thắng ai?"},
        {"role": "assistant", "content": earlier},
        {"role": "user", "content": [{"type": "text", "text": "Tỉ số là bao nhiêu?"}]},
    ]
    body = chat(client, messages).json()
    assert "2-1" in body["choices"][0]["message"]["content"]
    if followup == "model":  # the generator rewrote the follow-up from the history
        rewrite_prompt = json.dumps(gen.prompts[0], ensure_ascii=False)
        assert "Đội tuyển Việt Nam thắng ai?" in rewrite_prompt and "pirate" not in rewrite_prompt
        assert "Nguồn:" not in rewrite_prompt  # our sources list is display only, not history
    else:  # no rewrite pass: the earlier question's topic is carried into the one prompt
        assert len(gen.prompts) == 1
        question = gen.prompts[0][-1]["content"].split("Câu hỏi:")[-1]
        assert "Việt Nam thắng" in question and "pirate" not in question and "Nguồn:" not in question


@pytest.mark.parametrize(
    "payload, status, param, code",
    [
        ('{"model": "rag", "messages": [', 400, None, "invalid_json"),
        ('[1, 2]', 400, None, None),
        ('{"messages": [{"role": "user", "content": "x"}]}', 400, "model", None),
        ('{"model": "gpt-4o", "messages": [{"role": "user", "content": "Ai?"}]}', 404, "model", "model_not_found"),
        ('{"model": "rag", "messages": []}', 400, "messages", None),
        ('{"model": "rag", "messages": [{"role": "user", "content": "   "}]}', 400, "messages", "invalid_question"),
        ('{"model": "rag", "messages": [{"role": "user", "content": "%s"}]}' % ("dài " * 400), 400, "messages", "invalid_question"),
        ('{"model": "rag", "messages": [{"role": "assistant", "content": "Chào"}]}', 400, "messages", None),
        ('{"model": "rag", "messages": [{"role": "robot", "content": "Ai?"}]}', 400, "messages[0]", None),
        ('{"model": "rag", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}', 400, "messages[0].content", None),
        ('{"model": "rag", "stream": "yes", "messages": [{"role": "user", "content": "Ai?"}]}', 400, "stream", None),
    ],
)
def test_bad_requests_get_openai_style_errors(make_client, payload, status, param, code):
    client, gen = make_client()
    r = client.post("/v1/chat/completions", content=payload.encode(), headers={"content-type": "application/json"})
    assert r.status_code == status
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    assert (err["type"], err["param"], err["code"]) == ("invalid_request_error", param, code)
    assert gen.prompts == []  # nothing reached the model


def test_missing_index_is_503_before_streaming(settings, fake_embedder):
    app = FastAPI()
    app.include_router(openai_api.router(Pipeline(settings, embedder=fake_embedder, generator=Scripted())))
    r = chat(TestClient(app), [{"role": "user", "content": "Ai?"}], stream=True)
    assert r.status_code == 503 and r.json()["error"]["code"] == "index_unavailable"
    assert "rag index" in r.json()["error"]["message"]


def test_api_key_is_required_when_set(make_client):
    client, _ = make_client(REPLY, api_key="s3cret")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
        r = client.get("/v1/models", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert chat(client, [{"role": "user", "content": QUESTION}]).status_code == 401
    ok = {"Authorization": "Bearer s3cret"}
    assert client.get("/v1/models", headers=ok).status_code == 200
    r = client.post("/v1/chat/completions", headers=ok, json={"model": "rag", "messages": [{"role": "user", "content": QUESTION}]})
    assert r.status_code == 200 and r.json()["citations"]


def _error(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["code"] == code and err["message"]
    return err


def test_request_size_limits(make_client):
    client, gen = make_client(REPLY, api_max_body_bytes=2000, api_max_messages=3, api_max_chars=1000)
    big = {"model": "rag", "messages": [{"role": "user", "content": "x" * 3000}]}
    assert "RAG_API_MAX_BODY_BYTES" in _error(client.post("/v1/chat/completions", json=big), 413, "request_too_large")["message"]

    def chunked():  # no Content-Length: the limit is enforced while the body arrives
        for _ in range(10):
            yield b" " * 300

    r = client.post("/v1/chat/completions", content=chunked(), headers={"content-type": "application/json"})
    _error(r, 413, "request_too_large")

    four = [{"role": "user", "content": "Ai?"}, {"role": "assistant", "content": "Ai."}] * 2
    err = _error(chat(client, four), 400, "too_many_messages")
    assert err["param"] == "messages" and "RAG_API_MAX_MESSAGES" in err["message"]
    long = [{"role": "user", "content": "dài " * 150}, {"role": "assistant", "content": "dài " * 150}, {"role": "user", "content": QUESTION}]
    assert "RAG_API_MAX_CHARS" in _error(chat(client, long), 400, "messages_too_long")["message"]
    assert gen.prompts == []  # nothing reached the model
    assert chat(client, [{"role": "user", "content": QUESTION}]).status_code == 200  # within the limits: answered


def test_deeply_nested_json_is_400(make_client):
    client, gen = make_client()
    for payload in ("[" * 100_000, '{"model": "rag", "messages": [], "x": ' + "[" * 100_000 + "]" * 100_000 + "}"):
        r = client.post("/v1/chat/completions", content=payload.encode(), headers={"content-type": "application/json"})
        assert "nested too deeply" in _error(r, 400, "invalid_json")["message"]
    assert gen.prompts == []


# ---------------------------------------------------------------- the real server, the real client


@pytest.mark.slow
def test_openai_client_gets_cited_answers_from_rag_serve(app_server):
    import openai

    client = openai.OpenAI(base_url=app_server["url"] + "v1", api_key="unused", max_retries=0, timeout=600)
    assert "rag" in [m.id for m in client.models.list()]

    question = "Bình Dương đứng Top1 Smart 21 năm nào?"
    chunks = list(client.chat.completions.create(model="rag", messages=[{"role": "user", "content": question}], stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "2023" in text and "[1]" in text and "\n\nNguồn:\n[1] " in text
    last = chunks[-1].model_extra
    assert last["abstained"] is False and last["citations"][0]["marker"] == 1

    reply = client.chat.completions.create(
        model="rag", messages=[{"role": "user", "content": "Ai phát biểu khai mạc hội nghị ngày 27/11?"}]
    )
    assert "Lâm Đình Thắng" in reply.choices[0].message.content
    assert reply.model_extra["citations"] and reply.model_extra["abstained"] is False

    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": question}])
    assert e.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="rag", messages=[])
    assert e.value.body["param"] == "messages"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="rag", messages=[{"role": "user", "content": "x" * 5000}], stream=True)
    assert e.value.body["code"] == "invalid_question" and "limit is" in e.value.body["message"]


def test_a_reader_first_answer_is_the_first_streamed_event(make_client):
    """The fast path reaches the OpenAI-compatible face: a confident reader's cited span is the first content
    streamed, and the model is never run."""
    from test_pipeline import FakeReader

    client, gen = make_client("never asked", reader_model=FakeReader("1 triệu đồng", no_answer=0.05, alone=0.2), reader="on")
    events = sse(chat(client, [{"role": "user", "content": "Giá vàng miếng hôm nay tăng bao nhiêu?"}], stream=True))
    contents = [e["choices"][0]["delta"].get("content") for e in events if e["choices"][0]["delta"].get("content")]
    assert contents[0].startswith("1 triệu đồng [1]") and not gen.prompts
