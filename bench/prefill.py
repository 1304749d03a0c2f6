"""Where the time to the first token goes, and the levers on it that do not change the prompt (issue 23).

    .venv/bin/python bench/prefill.py [--n 12] [--reps 3] [--out bench/results/prefill.md]

On the live default index (`rag index` first), the seed questions and their paraphrases:
1. the prompt's size in the generator's tokens: the system message (read once, cached), the user message and
   the excerpts in it, for 2 (default), 1 and 0 context sentences (`prompt.select_sources(context=…)`);
2. whether anything the pipeline runs just before the model (the query embedding, the reader) slows llama.cpp's
   reading of the prompt (threads of another library still spinning): time to the first token of the same
   prompts right after retrieval and the reader, after a 1 s pause, and with no reader; interleaved;
3. prompt-reading speed (tokens/s of `Llama.eval` on the same 400 tokens) of the configured GGUF and of the same
   weights re-quantized to Q4_0 and Q8_0 (made in a temporary folder with llama.cpp's own quantizer; Q4_0 is what
   llama.cpp repacks for AVX2/AVX-512), interleaved, with generation speed beside it.
The baseline of every ratio is the default measured in the same run."""
from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import ROOT, machine  # noqa: E402
from bench.ttft import questions  # noqa: E402


def _sources(pipeline, q: str, context: int = 2):
    """The sources the pipeline would put in the prompt for `q` (rag.answer.prompt.select_sources)."""
    from rag.answer import prompt

    hits = pipeline.search(q)
    texts = {h.chunk.article_id: pipeline.index.articles[h.chunk.article_id].text for h in hits}
    return prompt.select_sources(q, hits, pipeline.settings.context_sentences, context=context, texts=texts)


def prompt_sizes(pipeline, qs: list[str], count) -> list[str]:
    from rag.answer import prompt

    lines = [f"system message: {count(prompt.SYSTEM_VI)} tokens (read once at warm-up, then reused)", "",
             "| context sentences | user message tokens p50 | of which excerpts p50 |", "|---|---|---|"]
    for ctx in (2, 1, 0):
        user, excerpts = [], []
        for q in qs:
            sources = _sources(pipeline, q, ctx)
            user.append(count(prompt.messages(q, sources)[1]["content"]))
            excerpts.append(sum(count(s.excerpt) for s in sources))
        mark = " (default)" if ctx == 2 else ""
        lines.append(f"| {ctx}{mark} | {statistics.median(user):g} | {statistics.median(excerpts):g} |")
    return lines


def first_token_after(pipeline, qs: list[str]) -> list[str]:
    from rag.answer import prompt

    gen = pipeline.generator()
    modes = ("right after retrieval and the reader (as the pipeline)", "after a 1 s pause", "no reader")
    times: dict[str, list[float]] = {m: [] for m in modes}
    for q in qs:
        for mode in modes:
            sources = _sources(pipeline, q)
            if mode != "no reader":
                pipeline.reader.best(q, [s.excerpt for s in sources])
            if mode == "after a 1 s pause":
                time.sleep(1.0)
            t = time.perf_counter()
            stream = gen.stream(prompt.messages(q, sources), max_tokens=2)
            next(iter(stream))
            times[mode].append(time.perf_counter() - t)
            stream.close()
    base = statistics.median(times[modes[0]])
    return ["| the model starts | first token p50, s | ratio |", "|---|---|---|"] + [
        f"| {m} | {statistics.median(v):.2f} | {statistics.median(v) / base:.2f} |" for m, v in times.items()]


def quantized_speeds(model_path: Path, text: str, reps: int, threads: int) -> list[str]:
    import llama_cpp

    with tempfile.TemporaryDirectory(dir=model_path.parent) as tmp:
        paths = {"configured (" + model_path.stem.rsplit("-", 1)[-1] + ")": model_path}
        for name, ftype in (("Q4_0", llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0), ("Q8_0", llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0)):
            params = llama_cpp.llama_model_quantize_default_params()
            params.ftype, params.allow_requantize = ftype, True
            out = Path(tmp) / f"{name}.gguf"
            if llama_cpp.llama_model_quantize(str(model_path).encode(), str(out).encode(), ctypes.byref(params)) != 0:
                raise SystemExit(f"could not quantize {model_path} to {name}")
            paths[f"re-quantized {name}"] = out
        models = {k: llama_cpp.Llama(str(p), n_ctx=2048, n_threads=threads, verbose=False) for k, p in paths.items()}
        tokens = next(iter(models.values())).tokenize(text.encode(), add_bos=False)[:400]
        speeds: dict[str, list[tuple[float, float]]] = {k: [] for k in models}
        for _ in range(reps):
            for k, llm in models.items():
                llm.reset()
                t = time.perf_counter()
                llm.eval(tokens)
                read = time.perf_counter() - t
                t = time.perf_counter()
                for _ in range(16):
                    llm.eval([llm.sample()])
                speeds[k].append((len(tokens) / read, 16 / (time.perf_counter() - t)))
        base = statistics.median(a for a, _ in next(iter(speeds.values())))
        lines = [f"{len(tokens)} prompt tokens, {reps} runs each, interleaved", "",
                 "| weights | prompt reading, tokens/s p50 | ratio | generation, tokens/s p50 |", "|---|---|---|---|"]
        for k, v in speeds.items():
            pp = statistics.median(a for a, _ in v)
            lines.append(f"| {k} | {pp:.1f} | {pp / base:.2f} | {statistics.median(b for _, b in v):.1f} |")
        del models
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12, help="questions (spread over both gold files)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "prefill.md")
    args = ap.parse_args()

    from rag import models
    from rag.answer.pipeline import Pipeline

    pipeline = Pipeline()
    pipeline.warm_up()
    path = Path(models.resolve(pipeline.settings.generator, pipeline.settings, kind=models.GGUF))
    llm = pipeline.generator()._model()
    count = lambda s: len(llm.tokenize(s.encode(), add_bos=False))  # noqa: E731
    qs = questions(args.n)
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S %z")
    m = machine()
    parts = [f"Command: `.venv/bin/python bench/prefill.py --n {args.n} --reps {args.reps}`; started {started}; "
             f"{m['nproc']} cores ({m['cpu_model']}); load average at start {m['loadavg_at_start']}; "
             f"generator {pipeline.settings.generator}", "",
             "## 1. The prompt's size", ""] + prompt_sizes(pipeline, qs, count)
    parts += ["", "## 2. Does what runs before the model slow it?", ""] + first_token_after(pipeline, qs)
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "corpus").glob("*-*.md")))
    parts += ["", "## 3. Other quantizations of the same weights", ""] + quantized_speeds(
        path, text, args.reps, pipeline.settings.threads or os.cpu_count() or 1)
    report = "\n".join(parts) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
