"""Generation backends behind one small protocol: llama.cpp in process (the default, fast on CPU),
Hugging Face transformers, and any OpenAI-compatible chat server (vLLM, llama.cpp server, Ollama).

Every backend decodes greedily, so the same messages give the same answer. Grounding, citations
and abstention are the pipeline's business, not the backends'.
"""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag import models
from rag.config import Settings
from rag.errors import BackendError, ModelMissing


class Piece(str):
    """A piece of a reply that knows how sure the model was of it: the probability it gave each of the
    piece's tokens (greedy decoding: its top choice). Backends that cannot tell yield plain str."""

    probs: tuple[float, ...] = ()

    def __new__(cls, text: str, probs: Iterable[float] = ()):
        piece = super().__new__(cls, text)
        piece.probs = tuple(probs)
        return piece


class Generator(Protocol):
    name: str  # shown in Answer.model, e.g. "llama:qwen2.5-coder-1.5b"

    def stream(self, messages: list[dict], *, max_tokens: int = 200, stop: list[str] | None = None) -> Iterator[str]:
        """Pieces of the assistant's reply to chat `messages` ({"role", "content"} dicts), in order;
        `Piece`s where the backend knows its token probabilities. A backend whose class sets
        `takes_cancel = True` also takes `cancel` (a threading.Event): once it is set, the stream ends
        (without an error) as soon as the backend can stop, even in the middle of reading the prompt."""
        ...


def complete(gen: Generator, messages: list[dict], **kw) -> str:
    """The whole reply at once (for short internal calls such as question rewriting)."""
    return "".join(gen.stream(messages, **kw))


class LlamaCppGenerator:
    """A GGUF model run by llama-cpp-python. The model loads on first use, once, and one generation
    runs at a time: a llama.cpp context is not thread-safe, and the web app calls from several threads.

    Prefix caching, made deterministic: llama-cpp-python reuses whatever prefix of the previous prompt
    and reply matches, so the same question could be evaluated along different paths (a full batch, or
    a cache hit that replays one token) and, greedy or not, give a different answer (seen here). So
    the cache is pinned to the system message: it is evaluated once on its own, and every call
    evaluates the rest of its prompt in one batch after it. Same prompt, same computation, same
    answer; and the fixed system prompt is still never processed twice.

    A stream holds the model until it is read to the end or closed: close abandoned streams (the pipeline
    does, and the servers close the pipeline's stream when their client goes away). Closing takes effect at
    the model's next token, and the first one comes only once the whole prompt is read (seconds on a CPU):
    a stream's `cancel` event stops it sooner. While such a stream reads its prompt, llama.cpp asks an abort
    callback (`_aborting`) between the steps of its compute graph, so the prompt stops within milliseconds
    of `cancel` being set; the model is then left as if that prompt had never been read (`_recover`).
    Once the prompt is read the callback is switched off: the caller checks `cancel` at each token, and a
    Python callback called ~600 times a token has to take the GIL each time (measured with SmolLM2-135M:
    no cost on its own, ~15 ms more a token while another Python thread keeps the GIL busy)."""

    takes_cancel = True

    def __init__(self, model_path: Path, *, n_ctx: int = 4096, n_threads: int = 0, name: str | None = None):
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 1
        self.name = name or f"llama:{self.model_path.stem}"
        self._llm = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._prefixes: dict[str, list[int]] = {}  # system message -> its tokens in the templated prompt
        self._cancel: threading.Event | None = None  # the running stream's, read by the abort callback
        self._abort_callback = None  # made once the model is loaded; llama.cpp holds only a C pointer to it

    def _model(self):
        with self._load_lock:
            if self._llm is None:
                if not self.model_path.is_file():
                    raise ModelMissing(f"GGUF model file {self.model_path} does not exist")
                import llama_cpp  # heavy native library: imported only when a model is used

                try:
                    self._llm = llama_cpp.Llama(
                        model_path=str(self.model_path),
                        n_ctx=self.n_ctx,
                        n_threads=self.n_threads,
                        verbose=False,
                    )
                except ValueError as e:  # llama_cpp's way of saying the file is not a loadable model
                    raise BackendError(f"{self.model_path}: could not load the GGUF model: {e}") from e
                self._abort_callback = llama_cpp.ggml_abort_callback(self._aborting)
            return self._llm

    def _aborting(self, _data) -> bool:
        """llama.cpp's abort callback (called from inside llama_decode, between graph nodes, a few hundred
        times per batch): True stops the decode, which then returns 2 ("aborted"). Must never raise."""
        cancel = self._cancel
        return cancel is not None and cancel.is_set()

    def _watch(self, llm, cancel: threading.Event | None) -> None:
        """Have llama.cpp stop its decode once `cancel` is set (None: no callback at all)."""
        self._cancel = cancel
        if self._abort_callback is not None:  # a model this generator loaded (not a stand-in)
            import llama_cpp

            callback = self._abort_callback if cancel is not None else llama_cpp.ggml_abort_callback()  # NULL
            llama_cpp.llama_set_abort_callback(llm._ctx.ctx, callback, None)

    def _system_prefix(self, llm, system: str) -> list[int]:
        """Tokens the templated prompt starts with for this system message, whatever the user says."""
        if system not in self._prefixes:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            template = llm.metadata.get("tokenizer.chat_template")
            if not template:
                return []
            text = llm._model.token_get_text
            fmt = Jinja2ChatFormatter(template, eos_token=text(llm.token_eos()), bos_token=text(llm.token_bos()))
            a, b = (
                llm.tokenize(
                    fmt(messages=[{"role": "system", "content": system}, {"role": "user", "content": u}]).prompt.encode(),
                    add_bos=False,
                    special=True,
                )
                for u in ("a", "b")
            )
            n = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            self._prefixes[system] = a[:n]
        return self._prefixes[system]

    def _pin_prefix(self, llm, messages: list[dict]) -> None:
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else None
        prefix = self._system_prefix(llm, system) if system else []
        if not prefix:
            llm.reset()
            return
        if llm.n_tokens < len(prefix) or list(llm.input_ids[: len(prefix)]) != prefix:
            llm.reset()
            llm.eval(prefix)
        llm.n_tokens = len(prefix)  # generate() then evaluates everything after it, in one batch

    def stream(self, messages: list[dict], *, max_tokens: int = 200, stop: list[str] | None = None,
               cancel: threading.Event | None = None) -> Iterator[Piece]:
        from llama_cpp import LogitsProcessorList

        llm = self._model()
        probs: list[float] = []  # of the tokens not yet yielded (a character can take several tokens)

        def top_probability(_ids, logits):  # sees each step's logits before the greedy pick; changes nothing
            if self._cancel is not None:  # the first pick: the prompt is read, the pipeline checks each token
                self._watch(llm, None)
            top = logits.max()
            probs.append(float(1.0 / np.exp(logits - top, dtype=np.float64).sum()))
            return logits

        self._run_lock.acquire()
        chunks = None
        try:
            if cancel is not None and cancel.is_set():
                return
            self._watch(llm, cancel)  # while the prompt is read
            self._pin_prefix(llm, messages)
            chunks = llm.create_chat_completion(
                messages, stream=True, temperature=0, max_tokens=max_tokens, stop=stop or [],
                logits_processor=LogitsProcessorList([top_probability]),
            )
            for chunk in chunks:
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield Piece(piece, probs)
                    probs.clear()
        except ValueError as e:  # e.g. "Requested tokens (5000) exceed context window of 4096"
            raise BackendError(f"{self.name}: {e}") from e
        except RuntimeError as e:  # llama-cpp-python's "llama_decode returned N"
            if "llama_decode returned" not in str(e):
                raise
            self._recover(llm, messages)
            if cancel is not None and cancel.is_set():
                return  # aborted by the callback (llama_decode returned 2): the reader is gone
            raise BackendError(f"{self.name}: {e}") from e
        finally:
            # closing this stream (a reader that went away) lands here: stop llama.cpp's token loop
            # (its own generator) now, then free the model for the next question
            try:
                if chunks is not None:
                    chunks.close()
            finally:
                if self._cancel is not None:
                    self._watch(llm, None)
                self._run_lock.release()

    def _recover(self, llm, messages: list[dict]) -> None:
        """After a failed or aborted llama_decode: the model state back to the pinned system prefix (or to
        nothing, if the prefix itself was not finished), so the next prompt is evaluated afresh after it,
        exactly as on an undisturbed model. llama.cpp has already dropped the failed call's cache entries;
        the entries past the prefix are dropped here too, and llama-cpp-python's token count follows."""
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else None
        prefix = self._prefixes.get(system, []) if system else []
        if prefix and llm.n_tokens >= len(prefix) and list(llm.input_ids[: len(prefix)]) == prefix:
            llm.n_tokens = len(prefix)
        else:
            llm.reset()
        llm._ctx.kv_cache_seq_rm(-1, llm.n_tokens, -1)


class TransformersGenerator:
    """Any Hugging Face causal LM: a model folder, a hub id, a .gguf file (transformers dequantises it,
    which needs the `gguf` package, and runs it far slower than llama.cpp), or a built model and
    tokenizer. The tokenizer must have a chat template."""

    def __init__(self, model_or_path: Any, tokenizer: Any = None, *, name: str | None = None):
        if isinstance(model_or_path, (str, Path)):
            self.model, self.tokenizer = _load_transformers(str(model_or_path), tokenizer)
            label = Path(model_or_path).name
        else:
            if tokenizer is None:
                raise ValueError("TransformersGenerator: a model object needs its tokenizer")
            self.model, self.tokenizer = model_or_path, tokenizer
            label = getattr(model_or_path.config, "name_or_path", "") or type(model_or_path).__name__
        self.model.eval()  # no dropout: greedy decoding must be repeatable
        self.name = name or f"transformers:{label}"

    def stream(self, messages: list[dict], *, max_tokens: int = 200, stop: list[str] | None = None) -> Iterator[str]:
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        class Cancelled(StoppingCriteria):  # ends generation when the reader stops reading
            def __call__(self, input_ids, scores, **kwargs):
                return cancel.is_set()

        cancel = threading.Event()
        inputs = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.model.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        # Stop strings are found in the text by _cut_at_stop, which then stops reading, which cancels
        # generation: transformers' own stop_strings fail on tokenizers that cannot spell its probe text.
        kwargs = dict(
            **inputs,
            streamer=streamer,
            max_new_tokens=max_tokens,
            do_sample=False,
            stopping_criteria=StoppingCriteriaList([Cancelled()]),
        )
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self.model.generate(**kwargs)
            except BaseException as e:  # reported to the reader below instead of dying in the thread
                failure.append(e)
                streamer.end()  # unblocks the reader

        thread = threading.Thread(target=run, name="transformers-generate", daemon=True)
        thread.start()
        try:
            yield from _cut_at_stop((piece for piece in streamer if piece), stop)
        finally:
            cancel.set()
            thread.join()
        if failure:
            raise BackendError(f"{self.name}: generation failed: {failure[0]}") from failure[0]


def _load_transformers(source: str, tokenizer: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(source).expanduser()
    if path.suffix == ".gguf":
        where, extra = str(path.parent), {"gguf_file": path.name}
    else:
        where, extra = source, {}
    try:
        model = AutoModelForCausalLM.from_pretrained(where, **extra)
        return model, tokenizer or AutoTokenizer.from_pretrained(where, **extra)
    except OSError as e:  # missing folder or files, or a hub id that cannot be fetched
        raise ModelMissing(f"could not load the transformers model {source}: {e}") from e


def _cut_at_stop(pieces: Iterable[str], stop: list[str] | None) -> Iterator[str]:
    """Pass the pieces through up to (not including) the first stop string, which may span pieces.
    Holds back only a tail of text that could be the start of a stop string."""
    if not stop:
        yield from pieces
        return
    buffer = ""
    for piece in pieces:
        buffer += piece
        cuts = [i for i in (buffer.find(s) for s in stop) if i >= 0]
        if cuts:
            if min(cuts) > 0:
                yield buffer[: min(cuts)]
            return
        held = max((k for s in stop for k in range(1, len(s)) if buffer.endswith(s[:k])), default=0)
        if len(buffer) > held:
            yield buffer[: len(buffer) - held]
            buffer = buffer[len(buffer) - held :]
    if buffer:
        yield buffer


class OpenAIGenerator:
    """A chat server speaking the OpenAI API: POST {base_url}/chat/completions with stream=true,
    read the server-sent events. base_url includes the version, e.g. http://127.0.0.1:8000/v1."""

    def __init__(self, base_url: str, model: str = "", api_key: str | None = None, timeout: float = 120):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model  # "" lets the server use the model it serves
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY")
        self.timeout = timeout
        self.name = f"openai:{model or base_url}"

    def stream(self, messages: list[dict], *, max_tokens: int = 200, stop: list[str] | None = None) -> Iterator[str]:
        import httpx

        body: dict[str, Any] = {"messages": messages, "stream": True, "temperature": 0, "max_tokens": max_tokens}
        if self.model:
            body["model"] = self.model
        if stop:
            body["stop"] = stop
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            with httpx.stream("POST", self.url, json=body, headers=headers, timeout=self.timeout) as response:
                if response.status_code != 200:
                    response.read()
                    raise BackendError(f"{self.url}: HTTP {response.status_code}: {response.text[:500]}")
                yield from self._events(response.iter_lines())
        except httpx.HTTPError as e:
            raise BackendError(f"{self.url}: {type(e).__name__}: {e or 'no detail'}") from e

    def _events(self, lines: Iterable[str]) -> Iterator[str]:
        events = 0
        for line in lines:
            if not line.startswith("data:"):
                continue  # blank separators, ": keep-alive" comments, "event:" lines
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                return
            events += 1
            try:
                event = json.loads(data)
            except ValueError:
                raise BackendError(f"{self.url}: malformed stream event: {data[:200]!r}") from None
            if not isinstance(event, dict):
                raise BackendError(f"{self.url}: malformed stream event: {data[:200]!r}")
            if "error" in event:  # servers report failures mid-stream this way
                raise BackendError(f"{self.url}: server error: {json.dumps(event['error'])[:500]}")
            for choice in event.get("choices") or []:  # a final usage-only event has none
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    yield piece
        if events == 0:
            raise BackendError(f"{self.url}: the response held no server-sent events (is it a chat completions endpoint?)")


_instances: dict[tuple, Generator] = {}
_instances_lock = threading.Lock()


def make_generator(settings: Settings, generator: str | None = None) -> Generator:
    """The backend named by settings.backend for the model `generator` (default settings.generator):
    a registry name or a local path. One instance per configuration per process, so a model loads once."""
    name = generator or settings.generator
    backend = settings.backend
    if backend == "openai":
        if not settings.openai_url:
            raise BackendError("backend 'openai' needs a server URL: set RAG_OPENAI_URL (e.g. http://127.0.0.1:8000/v1)")
        key: tuple = (backend, settings.openai_url, settings.openai_model)
        build = partial(OpenAIGenerator, settings.openai_url, settings.openai_model)
    elif backend == "llama":
        path = models.resolve(name, settings, kind=models.GGUF)
        key = (backend, path, settings.threads)
        build = partial(LlamaCppGenerator, path, n_threads=settings.threads, name=f"llama:{name}")
    elif backend == "transformers":
        local = Path(name).expanduser()
        if local.is_dir():  # a Hugging Face model folder
            source: str | Path = local
        elif settings.hub and name not in models.REGISTRY:  # a hub id
            source = name
        else:
            source = models.resolve(name, settings, kind=models.GGUF)
        key = (backend, source)
        build = partial(TransformersGenerator, source, name=f"transformers:{name}")
    else:
        raise BackendError(f"unknown backend {backend!r}: use llama, transformers or openai")
    with _instances_lock:
        if key not in _instances:
            _instances[key] = build()
        return _instances[key]
