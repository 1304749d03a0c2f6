"""Benchmark 3, end-to-end ask() on the default corpus (the live index in embeddings/).

OURS: Pipeline.ask_stream (retrieval, sentence selection, llama.cpp streaming, per-sentence verification):
time to first token, to first verified output, tokens/s, total; cold (first question in a fresh process,
model and index loads included, counted from the process launch) and warm.
BASELINE A, same model: the full top-k chunks pasted into the prompt (no sentence selection, no
verification). BASELINE B, same prompts and the 0.5B model: transformers generation instead of
llama.cpp (slow: 2 questions, 64 new tokens).
Also: a fresh process that warms up as the app does (Pipeline.warm_up) before its first question.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench.measure import ROOT, Timer, isolated, percentiles

GOLD = ROOT / "eval" / "gold" / "seed_qa.jsonl"
OWN_QUESTIONS = Path(__file__).with_name("questions.jsonl")
BACKEND_QUESTIONS, BACKEND_MAX_TOKENS = 2, 64


def questions(n: int) -> tuple[list[str], str]:
    from rag.eval.evalsets import load_jsonl

    path = GOLD if GOLD.exists() else OWN_QUESTIONS
    return [item.question for item in load_jsonl(path).items if item.answerable][:n], str(path.relative_to(ROOT))


class CountingGenerator:
    """Wraps the real generator: records each call's messages, piece times and text, and counts tokens
    with the model's own vocabulary."""

    def __init__(self, inner, model_path: Path):
        import llama_cpp

        self.inner, self.name = inner, inner.name
        self._vocab = llama_cpp.Llama(str(model_path), vocab_only=True, verbose=False)
        self.calls: list[dict] = []

    def tokens(self, text: str) -> int:
        return len(self._vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else 0

    def stream(self, messages, *, max_tokens: int = 200, stop=None):
        call = {"messages": messages, "times": [], "text": ""}
        self.calls.append(call)
        for piece in self.inner.stream(messages, max_tokens=max_tokens, stop=stop):
            call["times"].append(time.perf_counter())
            call["text"] += piece
            yield piece

    def last_call_stats(self) -> dict:
        call = self.calls[-1]
        out, times = self.tokens(call["text"]), call["times"]
        decode = (out - 1) / (times[-1] - times[0]) if out > 1 and times[-1] > times[0] else None
        return {"prompt_tokens": self.tokens("\n".join(m["content"] for m in call["messages"])),
                "new_tokens": out, "tokens_per_s": round(decode, 1) if decode else None}


def _model_path(settings, name: str) -> Path:
    from rag import models

    return models.resolve(name, settings, kind=models.GGUF)


def ask_one(pipeline, counter: CountingGenerator, question: str) -> dict:
    from rag.types import Answer

    calls, first_piece, answer = len(counter.calls), None, None
    t0 = time.perf_counter()
    for piece in pipeline.ask_stream(question):
        if isinstance(piece, Answer):
            answer = piece
        elif first_piece is None:
            first_piece = round((time.perf_counter() - t0) * 1000, 1)
    row = {"question": question, "abstained": answer.abstained, "citations": len(answer.citations),
           "answer": answer.text[:160], **answer.timings,
           # measured here as a reader sees it (the first text yielded), not taken from the pipeline's timings
           "first_output": None if answer.abstained else first_piece}
    if len(counter.calls) > calls:  # generation ran (the retrieval gate may abstain before it)
        row.update(counter.last_call_stats())
    return row


def full_chunk_messages(question: str, hits) -> list[dict]:
    """BASELINE A's prompt: OURS's system prompt and layout, with every retrieved chunk whole."""
    from rag.answer import prompt

    blocks = [f"[{n}] {h.article.title}" + (f" ({h.article.date})" if h.article.date else "")
              + f"\n{h.chunk.text}" for n, h in enumerate(hits, 1)]
    user = "Nguồn:\n" + "\n\n".join(blocks) + f"\n\nCâu hỏi: {question}"
    return [{"role": "system", "content": prompt.SYSTEM_VI}, {"role": "user", "content": user}]


def full_chunks_one(pipeline, counter: CountingGenerator, question: str) -> dict:
    """BASELINE A: the top-k chunks whole in the prompt, the same model, nothing verified."""
    t0 = time.perf_counter()
    messages = full_chunk_messages(question, pipeline.search(question, k=pipeline.settings.top_k))
    first = None
    for _ in counter.stream(messages, max_tokens=pipeline.settings.max_new_tokens):
        first = first or (time.perf_counter() - t0) * 1000
    return {"question": question, "first_token": round(first, 1) if first else None,
            "total": round((time.perf_counter() - t0) * 1000, 1), **counter.last_call_stats()}


def ask_session(qs: list[str], n_baseline: int, t_launch: float) -> dict:
    """One fresh process: the cold question, the warm ones, then baseline A; returns the prompts of
    the first questions for the backend comparison."""
    from rag.config import load_settings
    from rag.answer.generate import make_generator
    from rag.answer.pipeline import Pipeline

    settings = load_settings()
    counter = CountingGenerator(make_generator(settings), _model_path(settings, settings.generator))
    pipeline = Pipeline(settings, generator=counter)
    ready_ms = (time.time() - t_launch) * 1000  # interpreter start + imports, before the question
    cold = ask_one(pipeline, counter, qs[0])
    cold["since_launch"] = {k: round(ready_ms + cold[k], 1) for k in ("first_token", "first_output", "total") if k in cold}
    warm = [ask_one(pipeline, counter, q) for q in qs[1:] + qs[:1]]  # the cold question last, not twice in a row
    prompts = [c["messages"] for c in counter.calls[:BACKEND_QUESTIONS]]
    baseline = [full_chunks_one(pipeline, counter, q) for q in qs[:n_baseline]]
    return {"model": counter.name, "cold": cold, "warm": warm, "baseline_full_chunks": baseline, "prompts": prompts}


def warmed_first_question(question: str, t_launch: float) -> dict:
    """What the app does at start-up (Pipeline.warm_up: load the index and both models, evaluate the
    fixed system prompt once), then the first question."""
    from rag.config import load_settings
    from rag.answer.generate import make_generator
    from rag.answer.pipeline import Pipeline

    settings = load_settings()
    counter = CountingGenerator(make_generator(settings), _model_path(settings, settings.generator))
    pipeline = Pipeline(settings, generator=counter)
    with Timer() as warm:
        pipeline.warm_up()
    counter.calls.clear()
    ready_s = time.time() - t_launch
    return {"warmup_s": round(warm.s, 2), "ready_since_launch_s": round(ready_s, 2), **ask_one(pipeline, counter, question)}


def backend_run(backend: str, model_path: str, prompts: list[list[dict]], max_tokens: int, threads: int) -> dict:
    """The same prompts through one backend: load time, first token, tokens/s (BASELINE B vs ours)."""
    from rag.answer.generate import LlamaCppGenerator, TransformersGenerator

    with Timer() as load:
        if backend == "llama":
            gen = LlamaCppGenerator(Path(model_path), n_threads=threads, name="llama")
            gen._model()  # load now, so first-token times below are generation only
        else:
            gen = TransformersGenerator(model_path, name="transformers")
    counter = CountingGenerator(gen, Path(model_path))
    rows = []
    for messages in prompts:
        t0 = time.perf_counter()
        for _ in counter.stream(messages, max_tokens=max_tokens):
            pass
        stats = counter.last_call_stats()
        times = counter.calls[-1]["times"]
        rows.append({"first_token": round((times[0] - t0) * 1000, 1) if times else None,
                     "total": round((time.perf_counter() - t0) * 1000, 1), **stats})
    return {"backend": backend, "load_s": round(load.s, 2), "runs": rows}


def ensure_index(log) -> str | None:
    """The live default index, built if missing or built with other settings (`rag index` rebuilds it;
    vectors come from the embedding cache); an error message if it still cannot be used."""
    from rag.index import build as index
    from rag.config import load_settings
    from rag.errors import IndexMismatch, IndexMissing, RagError

    try:
        index.load(load_settings())
        return None
    except (IndexMissing, IndexMismatch) as e:
        log(f"ask: {e}; running `python -m rag index`")
    except RagError as e:
        return str(e)
    done = subprocess.run([sys.executable, "-m", "rag", "index", "--quiet"], cwd=ROOT, capture_output=True, text=True)
    return None if done.returncode == 0 else f"`rag index` failed: {done.stderr[-400:]}"


def summarize(rows: list[dict]) -> dict:
    answered = [r for r in rows if "first_token" in r and r["first_token"] is not None]
    return {key: percentiles(r.get(key) for r in answered) for key in ("first_token", "first_output", "total", "tokens_per_s", "prompt_tokens")} | {
        "abstained": sum(bool(r.get("abstained")) for r in rows), "questions": len(rows)}


def run(quick: bool, log) -> dict:
    from rag.config import load_settings

    problem = ensure_index(log)
    if problem:
        return {"skipped": problem}
    qs, source = questions(3 if quick else 8)
    n_baseline = 1 if quick else len(qs)
    log(f"ask: {len(qs)} questions from {source}, cold + warm + {n_baseline} full-chunk baseline")
    session = isolated(ask_session, qs, n_baseline, time.time())
    prompts = session.pop("prompts")
    out = {"questions_from": source, **session,
           "warm_summary": summarize(session["warm"]), "baseline_summary": summarize(session["baseline_full_chunks"])}
    if quick:
        out["backends"] = {"skipped": "--quick (transformers takes minutes to load and decode)"}
        out["warmed"] = {"skipped": "--quick"}
        return out
    log("ask: first question in a fresh process after a start-up warm-up (lever)")
    out["warmed"] = isolated(warmed_first_question, qs[0], time.time())
    settings = load_settings()
    small = str(_model_path(settings, "qwen2.5-coder-0.5b"))
    out["backends"] = {"model": "qwen2.5-coder-0.5b", "max_tokens": BACKEND_MAX_TOKENS}
    for backend in ("llama", "transformers"):
        log(f"ask: {len(prompts)} prompts through {backend} (0.5B)")
        result = isolated(backend_run, backend, small, prompts, BACKEND_MAX_TOKENS, settings.threads)
        out["backends"][backend] = result | {"summary": summarize(result["runs"])}
    return out
