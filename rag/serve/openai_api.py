"""OpenAI-compatible chat endpoint over `Pipeline.ask_stream`, served beside the web chat by `rag serve`,
so any OpenAI client or chat front-end (the `openai` package, Open WebUI, LibreChat, curl) can ask the corpus.

    GET  /v1/models              -> {"object": "list", "data": [{"id": "rag", ...}, ...]}
    POST /v1/chat/completions    -> an OpenAI chat completion, or with "stream": true server-sent
                                    `chat.completion.chunk` events ending with `data: [DONE]`

Collections (rag.index.collections) are models too, the convention Open WebUI uses for knowledge bases: "rag" is
the collection "default", "rag:NAME" the collection NAME, each answered from its own index only; /v1/models
lists those the caller may read (users: rag.serve.users; a collection it may not read gets 403). "rag:a,b" (not
listed: any readable ones, "default" by that name) searches several collections together, each citation's
`collection` naming its own; a key that may not read every one of them gets 403.

Request: `model` ("rag" = the configured generator, or another provisioned model from /v1/models) and
`messages`; the last message is the question (role "user"), the earlier user/assistant messages are the
conversation's history, system messages are ignored (the pipeline owns its prompt). Other fields
(temperature, max_tokens...) are accepted and ignored: answers are deterministic and verified.

Reply text: the verified answer with its [n] markers, then, when it cites anything, "\\n\\nNguồn:" and one
line per citation ("[1] Title (date, source) url"), for clients that show only the text. Extra fields on the
completion (and on the last stream chunk): `citations` (list of Citation dicts: marker, article_id, title,
date, source, url, chunk_id, quote, score) and `abstained` (true when the articles do not answer the
question; the text then says so and names the closest articles).

Errors are OpenAI-style JSON `{"error": {"message", "type", "param", "code"}}`: 400 bad JSON (nested too
deeply included) / bad messages / too many messages (RAG_API_MAX_MESSAGES) or characters (RAG_API_MAX_CHARS) /
unusable question (empty, over-long), 401 missing or wrong API key, 403 a collection the key may not read,
404 unknown model, 413 a body over
RAG_API_MAX_BODY_BYTES, 503 no index yet or too many questions waiting (RAG_MAX_WAITING, code "queue_full"),
500 another failure of the pipeline. An error after streaming began arrives as a `data: {"error": ...}`
event before `data: [DONE]`. When RAG_API_KEY is set, /v1/* requires `Authorization: Bearer <key>`.

A client that goes away (a dropped stream, a closed connection while waiting) ends its question: the
pipeline stops at the model's next token, its generator chain is closed and the model is free for the
next question; a question still waiting for the model is dropped before it starts.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Awaitable, Callable

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from rag import models
from rag.index import collections
from rag.serve import streams
from rag.serve.access import Policy
from rag.errors import CorpusEmpty, IndexMissing, InvalidQuestion, RagError
from rag.answer.pipeline import Pipeline, validate
from rag.types import Answer, Citation

DEFAULT_MODEL = "rag"  # the configured generator, over the collection "default"
COLLECTION_PREFIX = "rag:"  # "rag:NAME": the collection NAME
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


def model_ids(pipeline: Pipeline, who=None) -> list[str]:
    """"rag" (the default collection) first, "rag:NAME" for every other collection, then every provisioned
    generator other than the configured one; only what `who` may read (None: all). A generator answers from
    the collection "default", so it is listed only to those who may read that."""
    settings = pipeline.settings
    readable = [c for c in collections.names(settings) if who is None or who.can_read(c)]
    ids = [DEFAULT_MODEL if c == collections.DEFAULT else COLLECTION_PREFIX + c for c in readable]
    if collections.DEFAULT not in readable:
        return ids
    ready = [r["name"] for r in models.status(settings) if r["kind"] == models.GGUF and r["provisioned"]]
    return ids + [n for n in ready if n != settings.generator]


def model_collection(model: str) -> str | None:
    """The collection(s) a model id names ("rag" -> default, "rag:NAME" -> NAME, "rag:a,b" -> "a,b"), None for
    a generator name (which answers from "default")."""
    if model == DEFAULT_MODEL:
        return collections.DEFAULT
    return model[len(COLLECTION_PREFIX):] if model.startswith(COLLECTION_PREFIX) else None


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


def parse_request(body, pipeline: Pipeline, who=None) -> tuple[str, str | None, str, list[dict], bool, str]:
    """(model id, generator name or None, question, history, stream, collection); raises ApiError."""
    settings = pipeline.settings
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "'model' is required: see GET /v1/models", param="model")
    collection = model_collection(model)
    # a generator id (or any other model) reads the collection "default": its right is checked like "rag"'s
    names = collections.split(collection) if collection is not None else [collections.DEFAULT]
    forbidden = [n for n in names if who is not None and not who.can_read(n)]
    if forbidden or (collection is not None and not names and who is not None):  # before saying if it exists
        raise ApiError(403, f"this key may not read the collection '{(forbidden or [collection])[0]}'", param="model",
                       code="collection_forbidden")
    known = model_ids(pipeline, who)
    if len(names) < 2 and model not in known:  # several: each is looked up by Pipeline.collection (404 there)
        raise ApiError(404, f"the model '{model}' does not exist; available: {', '.join(known)}",
                       param="model", code="model_not_found")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list of {role, content} objects", param="messages")
    if len(messages) > settings.api_max_messages:
        raise ApiError(400, f"{len(messages)} messages: the limit is {settings.api_max_messages} (RAG_API_MAX_MESSAGES)",
                       param="messages", code="too_many_messages")
    turns, chars = [], 0
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "developer", "user", "assistant", "tool"):
            raise ApiError(400, f"messages[{i}] needs a role among system, user, assistant", param=f"messages[{i}]")
        turns.append({"role": m["role"], "content": _text(m.get("content") or "", i)})
        chars += len(turns[-1]["content"])
        if chars > settings.api_max_chars:
            raise ApiError(400, f"the messages hold more than {settings.api_max_chars} characters (RAG_API_MAX_CHARS)",
                           param="messages", code="messages_too_long")
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
    generator = None if collection is not None else model
    return model, generator, question, history, stream, collection or collections.DEFAULT


# ---------------------------------------------------------------- Answer -> OpenAI shapes


def sources_text(citations: list[Citation]) -> str:
    """The short sources list appended to the reply text ("" when nothing is cited)."""
    if not citations:
        return ""
    lines = []
    for c in citations:
        meta = ", ".join(x for x in (c.date, c.source) if x)
        where = f"[{c.collection}] " if c.collection else ""
        lines.append(f"[{c.marker}] {where}{c.title}" + (f" ({meta})" if meta else "") + (f" {c.url}" if c.url else ""))
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


async def stream_events(first, run: "_Run", model: str):
    """SSE lines for a run whose first piece was already taken (so errors before it got a status).
    Closes the run when it ends, including when the client goes away (Starlette cancels this generator)."""
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: dict, finish=None, **extra) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return _sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                     "choices": [choice], **extra})

    try:
        yield chunk({"role": "assistant", "content": ""})
        piece = first
        try:
            while piece is not _END:
                if isinstance(piece, Answer):
                    yield chunk({"content": sources_text(piece.citations)}, "stop", **extra_fields(piece))
                    break
                yield chunk({"content": piece})
                piece = await run.next()
        except RagError as e:
            yield _sse(from_rag_error(e).body())
        yield "data: [DONE]\n\n"
    finally:
        run.close()


# ---------------------------------------------------------------- one question, stoppable

_END = streams.END  # the pipeline's stream ended (after an Answer, or cancelled)
_GONE = object()  # the client went away before the work was done


class _Run(streams.Stoppable):
    """One request's Pipeline.ask_stream, read a piece at a time in worker threads and stoppable from the
    event loop (rag.serve.streams.Stoppable: close() sets the pipeline's cancel event, closes the generator chain
    once the read in progress returns, which frees the model), then gives back the request's place in the queue."""

    def __init__(self, pipeline: Pipeline, slots: threading.BoundedSemaphore, question: str, history: list[dict],
                 generator: str | None):
        super().__init__(
            lambda cancel: pipeline.ask_stream(question, history=history, generator=generator, cancel=cancel),
            on_closed=slots.release,
        )

    async def next(self):
        # abandon_on_cancel: a cancelled request does not wait for the read in progress; close() ends it
        return await anyio.to_thread.run_sync(self.read, abandon_on_cancel=True)

    async def rest(self, first):
        """The Answer, reading on from `first`."""
        piece = first
        while not isinstance(piece, Answer):
            if piece is _END:
                raise RagError("the answer was cancelled")
            piece = await self.next()
        return piece


async def until_disconnect(request: Request, work: Callable[[], Awaitable]):
    """await work(), or _GONE as soon as the client disconnects (work is then cancelled)."""
    result, failure = _GONE, None
    async with anyio.create_task_group() as tg:
        async def watch():
            while (await request.receive())["type"] != "http.disconnect":
                pass
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        try:
            result = await work()
        except Exception as e:  # raised as itself below, not wrapped in the task group's ExceptionGroup
            failure = e
        tg.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return result


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) past `limit` bytes: by its Content-Length, or while it arrives."""
    too_big = ApiError(413, f"the request body is over {limit} bytes (RAG_API_MAX_BODY_BYTES)",
                       code="request_too_large")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise too_big
    return bytes(body)


# ---------------------------------------------------------------- routes


def router(pipeline: Pipeline, policy: Policy | None = None) -> APIRouter:
    """The /v1 routes over one pipeline (the web chat's, so models load once) and its collections.
    `policy` (rag.serve.access) says who each request is; default: RAG_API_KEY alone, as before users existed."""
    api = APIRouter(prefix="/v1")
    settings = pipeline.settings
    policy = policy or Policy(None, settings.api_key)
    # one question is answered at a time (the model runs one stream); this many more may wait for it
    slots = threading.BoundedSemaphore(1 + settings.max_waiting)

    def check_key(request: Request):
        """The request's principal (rag.serve.users.Principal); 401 when credentials are needed and not right.
        Keys are compared in constant time (hmac.compare_digest, in rag.serve.access and rag.serve.users)."""
        who = policy.who(dict(request.headers))
        if who is None:
            raise ApiError(401, "missing or wrong API key: send 'Authorization: Bearer <key>' (a user's key "
                           "or RAG_API_KEY)", code="invalid_api_key")
        return who

    @api.get("/models")
    async def list_models(request: Request):
        try:
            who = check_key(request)
        except ApiError as e:
            return JSONResponse(e.body(), status_code=e.status)
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "rag"} for m in model_ids(pipeline, who)]
        return {"object": "list", "data": data}

    @api.post("/chat/completions")
    async def chat_completions(request: Request):
        run = None
        try:
            who = check_key(request)
            raw = await read_body(request, settings.api_max_body_bytes)
            try:
                body = json.loads(raw)
            except RecursionError:
                raise ApiError(400, "the request body is not valid JSON: nested too deeply", code="invalid_json") from None
            except (ValueError, UnicodeDecodeError) as e:
                raise ApiError(400, f"the request body is not valid JSON: {e}", code="invalid_json") from e
            model, generator, question, history, stream, collection = parse_request(body, pipeline, who)
            try:
                answering = pipeline.collection(collection)
            except collections.CollectionError as e:  # deleted since it was listed
                raise ApiError(404, str(e), param="model", code="model_not_found") from e
            if not slots.acquire(blocking=False):
                raise ApiError(503, f"the server is busy: {settings.max_waiting} questions are already waiting "
                               "(RAG_MAX_WAITING); try again shortly", type_="server_error", code="queue_full")
            run = _Run(answering, slots, question, history, generator)
            first = await until_disconnect(request, run.next)  # retrieval errors still get a status code
            if first is _GONE:
                return Response(status_code=499)  # nobody is listening (nginx's "client closed request")
            if stream:
                # the generator closes the run when it ends or the client goes; the background task covers
                # a stream cancelled before it started
                response = StreamingResponse(
                    stream_events(first, run, model), media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                    background=BackgroundTask(_closer(run)),
                )
                run = None
                return response
            answer = await until_disconnect(request, lambda: run.rest(first))
            if answer is _GONE:
                return Response(status_code=499)
            return JSONResponse(completion(answer, model))
        except ApiError as e:
            return JSONResponse(e.body(), status_code=e.status)
        except RagError as e:
            err = from_rag_error(e)
            return JSONResponse(err.body(), status_code=err.status)
        finally:
            if run is not None:
                run.close()

    return api


def _closer(run: _Run):
    async def close() -> None:
        run.close()

    return close
