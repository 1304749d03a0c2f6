"""Generation backends: a tiny random transformers model, a real llama.cpp OpenAI-compatible server
and llama-cpp-python in process (the last two run SmolLM2-135M: `rag models pull smollm2-135m`)."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import torch
from tokenizers import Tokenizer, decoders, models as tok_models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from rag import models
from rag.config import load_settings
from rag.errors import BackendError, InvalidSetting, ModelMissing
from rag.answer.generate import (
    LlamaCppGenerator,
    OpenAIGenerator,
    TransformersGenerator,
    complete,
    make_generator,
)

MESSAGES = [
    {"role": "system", "content": "Trả lời ngắn gọn."},
    {"role": "user", "content": "Hội nghị khai mạc ngày nào?"},
]
SENTENCES = [
    "Hà Nội là thủ đô của Việt Nam .",
    "Hội nghị khai mạc ngày 27/11 tại Hà Nội .",
    "Bình Dương đứng đầu bảng xếp hạng Smart 21 năm 2023 .",
    "Trả lời ngắn gọn . Hội nghị khai mạc ngày nào ?",
    "Người dân thành phố đón năm mới trong mưa lạnh .",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|> {{ m.content }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


# --- transformers: a tiny random Llama and a word-level tokenizer built here ---

@pytest.fixture(scope="module")
def tiny() -> TransformersGenerator:
    tok = Tokenizer(tok_models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(cleanup=False)  # joins words with spaces
    specials = ["<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
    tok.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=specials))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = None  # a random model may hit EOS early: keep lengths predictable
    return TransformersGenerator(model, tokenizer, name="transformers:tiny")


@pytest.mark.slow  # builds and runs the random Llama (fixture `tiny`)
def test_transformers_streams_deterministically(tiny):
    first = list(tiny.stream(MESSAGES, max_tokens=12))
    second = list(tiny.stream(MESSAGES, max_tokens=12))
    assert len(first) > 1 and "".join(first).strip()
    assert first == second
    assert "<|assistant|>" not in "".join(first)  # the prompt is not echoed


@pytest.mark.slow  # builds and runs the random Llama (fixture `tiny`)
def test_transformers_respects_max_tokens(tiny):
    def tokens(max_tokens):  # special tokens are left out of the text, so "at most"
        return len(tiny.tokenizer(complete(tiny, MESSAGES, max_tokens=max_tokens), add_special_tokens=False).input_ids)

    assert 0 < tokens(3) <= 3 < tokens(9) <= 9


@pytest.mark.slow  # builds and runs the random Llama (fixture `tiny`)
def test_transformers_stop_string_cuts_the_text(tiny):
    full = complete(tiny, MESSAGES, max_tokens=12)
    stop = full.split()[3]
    assert complete(tiny, MESSAGES, max_tokens=12, stop=[stop]) == full[: full.index(stop)]


@pytest.mark.slow  # builds and runs the random Llama (fixture `tiny`)
def test_transformers_stops_generating_when_the_reader_stops(tiny):
    start = time.monotonic()
    complete(tiny, MESSAGES, max_tokens=300)
    full_run = time.monotonic() - start
    pieces = tiny.stream(MESSAGES, max_tokens=300)
    start = time.monotonic()
    next(pieces)
    pieces.close()  # joins the generating thread
    assert time.monotonic() - start < full_run / 3
    assert not any(t.name == "transformers-generate" for t in threading.enumerate())


@pytest.mark.slow  # builds and runs the random Llama (fixture `tiny`)
def test_transformers_generation_failure_reaches_the_reader(tiny, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(tiny.model, "forward", broken)
    with pytest.raises(BackendError, match="out of memory"):
        complete(tiny, MESSAGES, max_tokens=5)


# --- OpenAI-compatible client against small local HTTP servers ---

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fake_server():
    """Serves `reply` = (status, body) to any POST and records the request bodies."""
    state = {"reply": (200, b""), "requests": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            state["requests"].append((self.path, json.loads(self.rfile.read(length)), dict(self.headers)))
            status, body = state["reply"]
            self.send_response(status)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1", state
    finally:
        server.shutdown()
        server.server_close()


def sse(*events) -> bytes:
    return b"".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events)


def delta(text):
    return {"choices": [{"index": 0, "delta": {"content": text}}]}


def test_openai_parses_the_event_stream(fake_server, monkeypatch):
    url, state = fake_server
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    state["reply"] = (200, b": keep-alive\n\n" + sse({"choices": [{"delta": {"role": "assistant"}}]},
                                                     delta("Xin "), delta("chào"), {"choices": []}, "[DONE]"))
    gen = OpenAIGenerator(url, model="m", api_key="secret")
    assert list(gen.stream(MESSAGES, max_tokens=7, stop=["\n"])) == ["Xin ", "chào"]
    path, body, headers = state["requests"][0]
    assert path == "/v1/chat/completions"
    assert body == {"messages": MESSAGES, "stream": True, "temperature": 0, "max_tokens": 7,
                    "model": "m", "stop": ["\n"]}
    assert headers["Authorization"] == "Bearer secret"


@pytest.mark.parametrize(
    "reply, message",
    [
        ((500, b'{"error": "boom"}'), r"HTTP 500: \{\"error\": \"boom\"\}"),
        ((200, sse(delta("a"), "{not json")), "malformed stream event"),
        ((200, sse(delta("a"), {"error": {"message": "context overflow"}})), "context overflow"),
        ((200, b'{"choices": []}'), "no server-sent events"),
    ],
)
def test_openai_bad_responses_raise_backend_error(fake_server, reply, message):
    url, state = fake_server
    state["reply"] = reply
    with pytest.raises(BackendError, match=message) as info:
        complete(OpenAIGenerator(url), MESSAGES)
    assert url in str(info.value)


def test_openai_unreachable_server_fails_fast():
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there now
    start = time.monotonic()
    with pytest.raises(BackendError, match="ConnectError") as info:
        complete(OpenAIGenerator(url), MESSAGES)
    assert f"{url}/chat/completions" in str(info.value)
    assert time.monotonic() - start < 5


# --- make_generator ---

def test_make_generator_caches_per_configuration(tmp_path):
    settings = load_settings(env={}, backend="openai", openai_url="http://127.0.0.1:1/v1", cache_dir=tmp_path)
    gen = make_generator(settings)
    assert isinstance(gen, OpenAIGenerator)
    assert make_generator(settings.replace(top_k=9)) is gen  # unrelated settings: same instance
    assert make_generator(settings.replace(openai_model="other")) is not gen


def test_make_generator_llama_is_lazy_and_cached(tmp_path):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"not really a model")
    settings = load_settings(env={}, backend="llama", cache_dir=tmp_path)
    gen = make_generator(settings, str(gguf))
    assert isinstance(gen, LlamaCppGenerator) and gen.name == f"llama:{gguf}"
    assert make_generator(settings, str(gguf)) is gen
    with pytest.raises(BackendError, match="could not load the GGUF model"):
        complete(gen, MESSAGES)  # the load happens on first use


def test_make_generator_errors(tmp_path):
    settings = load_settings(env={}, cache_dir=tmp_path)
    with pytest.raises(ModelMissing, match="rag models pull qwen2.5-coder-1.5b"):
        make_generator(settings.replace(backend="llama"))
    with pytest.raises(InvalidSetting, match="RAG_BACKEND=vllm: expected one of llama, transformers, openai"):
        make_generator(settings.replace(backend="vllm"))  # refused by the settings already
    with pytest.raises(BackendError, match="RAG_OPENAI_URL"):
        make_generator(settings.replace(backend="openai"))


# --- the real thing: SmolLM2-135M through llama.cpp ---

@pytest.fixture(scope="module")
def smollm() -> Path:
    return models.resolve("smollm2-135m", load_settings(), kind=models.GGUF)  # ModelMissing says how to pull it


@pytest.fixture
def llama_server(smollm, tmp_path):
    """`python -m llama_cpp.server` on a free port; yields its /v1 URL; killed at teardown."""
    port = free_port()
    log = (tmp_path / "server.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm),
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "512"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log.read()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server not ready after 60 s")
            time.sleep(0.25)
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()


@pytest.mark.slow
def test_openai_against_llama_cpp_server(llama_server):
    gen = OpenAIGenerator(llama_server)
    pieces = list(gen.stream([{"role": "user", "content": "What is the capital of France?"}], max_tokens=16))
    assert len(pieces) > 1 and "".join(pieces).strip()


@pytest.mark.slow
def test_llama_cpp_loads_once_and_is_deterministic(smollm, monkeypatch):
    import llama_cpp

    loads = []

    class CountingLlama(llama_cpp.Llama):
        def __init__(self, *args, **kwargs):
            loads.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(llama_cpp, "Llama", CountingLlama)
    gen = LlamaCppGenerator(smollm, n_ctx=512, n_threads=1)  # spinning threads crawl on a busy machine
    messages = [{"role": "user", "content": "Name three colours."}]
    results = [None, None]

    def run(i):
        results[i] = list(gen.stream(messages, max_tokens=16))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]  # both call before the model exists
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and loads[0]["verbose"] is False
    assert len(results[0]) > 1 and "".join(results[0]).strip()
    assert results[0] == results[1]
    # each piece says how sure the model was of its tokens (greedy: the top choice's probability)
    assert all(piece.probs and all(0 < p <= 1 for p in piece.probs) for piece in results[0])
    assert [piece.probs for piece in results[0]] == [piece.probs for piece in results[1]]
    assert complete(gen, messages, max_tokens=16, stop=[","]) == "".join(results[0]).split(",")[0]


@pytest.mark.slow
def test_llama_cpp_stops_reading_a_prompt_when_cancelled(smollm, monkeypatch):
    """A dropped stream's cancel event stops llama.cpp in the middle of reading a long prompt (its abort
    callback), within a second; the model is then left as if that prompt had never been read: the next
    question gets the same answer, token for token and probability for probability, as before."""
    asked = []  # when llama.cpp asked the abort callback (wrapped before the model loads: it holds the C pointer)
    aborting = LlamaCppGenerator._aborting

    def counting(self, data):
        asked.append(time.monotonic())
        return aborting(self, data)

    monkeypatch.setattr(LlamaCppGenerator, "_aborting", counting)
    gen = LlamaCppGenerator(smollm, n_ctx=2048, n_threads=1)
    system = {"role": "system", "content": "You answer questions briefly."}
    short = [system, {"role": "user", "content": "Name three colours."}]
    before = list(gen.stream(short, max_tokens=16))
    assert before and not asked  # no cancel event: no callback at all

    # a cancel event that is never set: the callback is asked while the prompt is read, then switched off
    stream = gen.stream(short, max_tokens=16, cancel=threading.Event())
    first = next(stream)
    while_reading = len(asked)
    assert [first, *stream] == before and while_reading > 0 and len(asked) == while_reading

    # ~1,450 prompt tokens: seconds of reading for this model on one thread
    long = [system, {"role": "user", "content": "Hà Nội là thủ đô của Việt Nam. " * 60 + "Thủ đô là gì?"}]
    cancel = threading.Event()
    got: list = []

    def read():
        try:
            got.extend(gen.stream(long, max_tokens=16, cancel=cancel))
        except Exception as e:  # noqa: BLE001 -- shown by the assertion below
            got.append(e)

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 60
    while len(asked) == while_reading:  # llama.cpp is reading the prompt
        assert time.monotonic() < deadline and reader.is_alive(), got
        time.sleep(0.01)
    time.sleep(0.3)
    cancel.set()
    t0 = time.monotonic()
    reader.join(timeout=30)
    stopped = time.monotonic() - t0
    assert not reader.is_alive() and stopped < 1.0, f"stopped {stopped:.2f} s after the cancel"
    assert got == []  # stopped before its first token: no piece, no error
    assert not gen._run_lock.locked()

    after = list(gen.stream(short, max_tokens=16, cancel=threading.Event()))
    assert after == before and [p.probs for p in after] == [p.probs for p in before]
