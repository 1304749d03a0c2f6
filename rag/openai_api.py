"""OpenAI-compatible chat endpoint over `Pipeline.ask_stream`, served beside the web chat by `rag serve`,
so any OpenAI client or chat front-end (the `openai` package, Open WebUI, LibreChat, curl) can ask the corpus.

    GET  /v1/models              -> {"object": "list", "data": [{"id": "rag", ...}, ...]}
    POST /v1/chat/completions    -> an OpenAI chat completion, or with "stream": true server-sent
                                    `chat.completion.chunk` events ending with `data: [DONE]`

Request: `model` ("rag" = the configured generator, or another provisioned model from /v1/models) and
`messages`; the last message is the question (role "user"), the earlier user/assistant messages are the
conversation's history, system messages are ignored (the pipeline owns its prompt). Other fields
(temperature, max_tokens...) are accepted and ignored: answers are deterministic and verified.

Reply text: the verified answer with its [n] markers, then, when it cites anything, "\\n\\nNguồn:" and one
line per citation ("[1] Title (date, source) url"), for clients that show only the text. Extra fields on the
completion (and on the last stream chunk): `citations` (list of Citation dicts: marker, article_id, title,
date, source, url, chunk_id, quote, score) and `abstained` (true when the articles do not answer the
question; the text then says so and names the closest articles).

Errors are OpenAI-style JSON `{"error": {"message", "type", "param", "code"}}`: 400 bad JSON / bad
messages / unusable question (empty, over-long), 401 missing or wrong API key, 404 unknown model,
503 no index yet, 500 another failure of the pipeline. An error after streaming began arrives as a `data: {"error": ...}`
event before `data: [DONE]`. When RAG_API_KEY is set, /v1/* requires `Authorization: Bearer <key>`
(the web page itself is not covered).
"""
from __future__ import annotations

import hmac
import json
import time
import uuid
from typing import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from rag import models
from rag.errors import CorpusEmpty, IndexMissing, InvalidQuestion, RagError
from rag.pipeline import Pipeline, validate
from rag.types import Answer, Citation

DEFAULT_MODEL = "rag"  # the configured generator
SOURCES_HEADING = "Nguồn:"


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error", param=None, code=None):
        super().__init__(message)
        self.status, self.type, self.param, self.code = status, type_, param, code

    def body(self) -> dict:
        return {"error": {"message": str(self), "type": self.type, "param": self.param, "code": self.code}}


def from_rag_error(e: RagError) -> ApiError:
    if isinstance(e, InvalidQuestion):
        return ApiError(400, str(e), param="messages", code="invalid_question")
    if isinstance(e, (IndexMissing, CorpusEmpty)):
        return ApiError(503, str(e), type_="server_error", code="index_unavailable")
    return ApiError(500, str(e), type_="server_error", code=type(e).__name__)


# ---------------------------------------------------------------- request -> question, history


def model_ids(pipeline: Pipeline) -> list[str]:
    """"rag" first, then every provisioned generator other than the configured one."""
    settings = pipeline.settings
    ready = [r["name"] for r in models.status(settings) if r["kind"] == models.GGUF and r["provisioned"]]
    return [DEFAULT_MODEL] + [n for n in ready if n != settings.generator]


def _text(content, i: int) -> str:
    """A message's content: a string, or a list of parts of which the text ones count (images are refused)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ApiError(400, f"messages[{i}].content: only text parts are supported", param=f"messages[{i}].content")
            parts.append(part["text"])
        return "\n".join(parts)
    raise ApiError(400, f"messages[{i}].content must be a string or a list of text parts", param=f"messages[{i}].content")


def strip_sources(reply: str) -> str:
    """An earlier reply of ours, as history: without the sources list appended for display."""
    return reply.split(f"\n\n{SOURCES_HEADING}\n", 1)[0]


def parse_request(body, pipeline: Pipeline) -> tuple[str, str | None, str, list[dict], bool]:
    """(model id, generator name or None, question, history, stream); raises ApiError."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "'model' is required: see GET /v1/models", param="model")
    known = model_ids(pipeline)
    if model not in known:
        raise ApiError(404, f"the model '{model}' does not exist; available: {', '.join(known)}",
                       param="model", code="model_not_found")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list of {role, content} objects", param="messages")
    turns = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "developer", "user", "assistant", "tool"):
            raise ApiError(400, f"messages[{i}] needs a role among system, user, assistant", param=f"messages[{i}]")
        turns.append({"role": m["role"], "content": _text(m.get("content") or "", i)})
    if turns[-1]["role"] != "user":
        raise ApiError(400, "the last message must be the user's question", param="messages")
    question = validate(turns[-1]["content"], pipeline.settings.max_question_chars)  # InvalidQuestion -> 400
    history = [
        {"role": t["role"], "content": strip_sources(t["content"]) if t["role"] == "assistant" else t["content"]}
        for t in turns[:-1] if t["role"] in ("user", "assistant") and t["content"].strip()
    ]
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be true or false", param="stream")
    return model, None if model == DEFAULT_MODEL else model, question, history, stream


# ---------------------------------------------------------------- Answer -> OpenAI shapes


def sources_text(citations: list[Citation]) -> str:
    """The short sources list appended to the reply text ("" when nothing is cited)."""
    if not citations:
        return ""
    lines = []
    for c in citations:
        meta = ", ".join(x for x in (c.date, c.source) if x)
        lines.append(f"[{c.marker}] {c.title}" + (f" ({meta})" if meta else "") + (f" {c.url}" if c.url else ""))
    return f"\n\n{SOURCES_HEADING}\n" + "\n".join(lines)


def extra_fields(answer: Answer) -> dict:
    return {"citations": [c.to_dict() for c in answer.citations], "abstained": answer.abstained}


def completion(answer: Answer, model: str) -> dict:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": answer.text + sources_text(answer.citations)},
            "finish_reason": "stop",
        }],
        **extra_fields(answer),
    }


def _sse(obj) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def stream_events(first, pieces: Iterator, model: str) -> Iterator[str]:
    """SSE lines for an ask_stream whose first piece was already taken (so errors before it got a status)."""
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: dict, finish=None, **extra) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return _sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                     "choices": [choice], **extra})

    yield chunk({"role": "assistant", "content": ""})
    piece = first
    try:
        while True:
            if isinstance(piece, Answer):
                yield chunk({"content": sources_text(piece.citations)}, "stop", **extra_fields(piece))
                break
            yield chunk({"content": piece})
            piece = next(pieces)
    except RagError as e:
        yield _sse(from_rag_error(e).body())
    yield "data: [DONE]\n\n"


# ---------------------------------------------------------------- routes


def router(pipeline: Pipeline) -> APIRouter:
    """The /v1 routes over one pipeline (the web chat's, so models load once)."""
    api = APIRouter(prefix="/v1")
    api_key = pipeline.settings.api_key

    def check_key(request: Request) -> None:
        if not api_key:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        # constant-time comparison: the time taken says nothing about how much of the key matched
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
            raise ApiError(401, "missing or wrong API key: send 'Authorization: Bearer <RAG_API_KEY>'",
                           code="invalid_api_key")

    @api.get("/models")
    async def list_models(request: Request):
        try:
            check_key(request)
        except ApiError as e:
            return JSONResponse(e.body(), status_code=e.status)
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "rag"} for m in model_ids(pipeline)]
        return {"object": "list", "data": data}

    @api.post("/chat/completions")
    async def chat_completions(request: Request):
        try:
            check_key(request)
            try:
                body = json.loads(await request.body())
            except (ValueError, UnicodeDecodeError) as e:
                raise ApiError(400, f"the request body is not valid JSON: {e}", code="invalid_json") from e
            model, generator, question, history, stream = parse_request(body, pipeline)
            pieces = pipeline.ask_stream(question, history=history, generator=generator)
            first = await run_in_threadpool(next, pieces)  # retrieval errors still get a status code
            if stream:
                return StreamingResponse(
                    stream_events(first, pieces, model), media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                )
            answer = first if isinstance(first, Answer) else await run_in_threadpool(_last, pieces)
            return JSONResponse(completion(answer, model))
        except ApiError as e:
            return JSONResponse(e.body(), status_code=e.status)
        except RagError as e:
            err = from_rag_error(e)
            return JSONResponse(err.body(), status_code=err.status)

    return api


def _last(pieces: Iterator) -> Answer:
    answer = None
    for piece in pieces:
        answer = piece
    return answer
