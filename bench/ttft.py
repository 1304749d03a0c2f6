"""Warm time to first token and to the first verified sentence on the seed questions and their paraphrases,
where the time goes, and the ratio against an unverified baseline measured in the same run (issue 23).

    .venv/bin/python bench/ttft.py [--n 40] [--reader on|off] [--json out.json]

One process on the live default index (`rag index` first); the models are loaded and the system prompt
evaluated (Pipeline.warm_up) before any timing. Two passes over the same questions in the same order:
    OURS      Pipeline.ask_stream as users get it (the reader as --reader says): its first token, its first
              verified sentence shown, and per question the time of retrieval (query embedding included),
              of the reader, and the prompt's length in tokens.
    BASELINE  the same steps without any checking: retrieval, the same source selection and prompt, the same
              model streaming; its first token is what a user of an unverified chatbot would wait for.
Each pass asks every question once, in the same order, so in both passes a prompt follows another question's
prompt (llama.cpp reuses only the shared system prompt). Answerable and unanswerable questions alike; a
question answered without the model (refused by the retrieval gate or the reader, or a yes/no decided from
the evidence) has no first token and is counted apart."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ask import CountingGenerator, _model_path, ask_one, ensure_index  # noqa: E402
from bench.measure import ROOT, machine, percentiles  # noqa: E402

GOLD = [ROOT / "eval" / "gold" / "seed_qa.jsonl", ROOT / "eval" / "gold" / "seed_paraphrases.jsonl"]


def questions(n: int) -> list[str]:
    from rag.eval.evalsets import load_jsonl

    qs = [item.question for path in GOLD for item in load_jsonl(path).items]
    step = max(1, len(qs) // n)  # spread over both files, not only the first n of the first
    return qs[::step][:n]


def ours(pipeline, counter: CountingGenerator, question: str) -> dict:
    row = ask_one(pipeline, counter, question)  # first_output: the first verified text a reader sees
    return row | {"first_verified": row["first_output"]}


def baseline(pipeline, counter: CountingGenerator, question: str) -> dict:
    from rag.answer import prompt

    t0 = time.perf_counter()
    hits = pipeline.search(question, k=pipeline.settings.top_k)
    retrieve = (time.perf_counter() - t0) * 1000
    texts = {h.chunk.article_id: pipeline.index.articles[h.chunk.article_id].text for h in hits}
    sources = prompt.select_sources(question, hits, pipeline.settings.context_sentences, texts=texts)
    first = None
    for _ in counter.stream(prompt.messages(question, sources), max_tokens=pipeline.settings.max_new_tokens):
        first = first or (time.perf_counter() - t0) * 1000
    return {"question": question, "first_token": round(first, 1) if first else None, "retrieve": round(retrieve, 1),
            "total": round((time.perf_counter() - t0) * 1000, 1), "prompt_tokens": counter.last_call_stats()["prompt_tokens"]}


def p50(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return percentiles(values)["p50"] if values else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="questions, spread over the seed and paraphrase files")
    ap.add_argument("--reader", default="on", choices=("on", "off"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from rag.config import load_settings
    from rag.index.embed import runtime
    from rag.answer.generate import make_generator
    from rag.answer.pipeline import Pipeline

    problem = ensure_index(lambda m: print(m, file=sys.stderr))
    if problem:
        sys.exit(problem)
    settings = load_settings().replace(reader=args.reader)
    counter = CountingGenerator(make_generator(settings), _model_path(settings, settings.generator))
    pipeline = Pipeline(settings, generator=counter)
    pipeline.warm_up()
    qs = questions(args.n)
    load0, started = os.getloadavg()[0], time.strftime("%Y-%m-%d %H:%M:%S %z")
    rows = {"ours": [ours(pipeline, counter, q) for q in qs], "baseline": [baseline(pipeline, counter, q) for q in qs]}
    m = machine()
    print(f"Command: `.venv/bin/python bench/ttft.py --n {args.n} --reader {args.reader}`; started {started}; "
          f"{m['nproc']} cores ({m['cpu_model']}); embedding runtime {runtime(settings)}; load average at start "
          f"{load0:.2f}, at end {os.getloadavg()[0]:.2f}\n")
    generated = [r for r in rows["ours"] if r["first_token"] is not None]
    print(f"{len(qs)} questions; OURS ran the model on {len(generated)}, showed a verified answer to "
          f"{sum(r['first_verified'] is not None for r in rows['ours'])}, refused {sum(r['abstained'] for r in rows['ours'])}\n")
    print("| p50, ms | OURS | BASELINE (unverified) | OURS / BASELINE |\n|---|---|---|---|")
    for key, label in (("first_token", "first token"), ("first_verified", "first verified sentence shown"),
                       ("retrieve", "retrieval (query embedding included)"), ("read", "the reader"),
                       ("prompt_tokens", "prompt tokens"), ("total", "whole answer")):
        a, b = p50(rows["ours"], key), p50(rows["baseline"], key)
        ratio = f"{a / b:.2f}" if a and b else "–"
        print(f"| {label} | {a if a is not None else '–'} | {b if b is not None else '–'} | {ratio} |")
    if args.json:
        args.json.write_text(json.dumps({"settings": {"reader": args.reader, "runtime": runtime(settings)}, **rows},
                                        ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
