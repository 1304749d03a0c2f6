"""Reader first (issue 34): how soon a user sees a verified answer when a confident reader answers alone,
against today's path (the reader checks, the model always answers) measured in the same run.

    .venv/bin/python bench/reader_first.py [--n 40] [--json out.json]

One process on the live default index (`rag index` first); models loaded and the system prompt evaluated
(Pipeline.warm_up) before any timing. Two passes over the same questions (spread over the seed questions and
their paraphrases), each question once per pass, in the same order:
    TODAY  RAG_READER_ALONE=0, RAG_FOLLOWUP=model, RAG_PROMPT_SOURCES=all: the reader refuses or checks, the
           model always phrases, from the selected sentences of every source;
    FAST   the shipped settings: the reader's span answers alone at or below its `alone` probability, and the
           model, where it runs, is shown what the shipped prompt diet keeps.
Reported: first verified output and total, p50 / p95, over all questions and over those FAST answered
reader-first; the share answered reader-first; prompt tokens where the model ran."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ask import CountingGenerator, _model_path, ask_one, ensure_index  # noqa: E402
from bench.measure import machine, percentiles  # noqa: E402
from bench.ttft import questions  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="questions, spread over the seed and paraphrase files")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from rag.config import load_settings
    from rag.answer.generate import make_generator
    from rag.answer.pipeline import Pipeline

    problem = ensure_index(lambda m: print(m, file=sys.stderr))
    if problem:
        sys.exit(problem)
    settings = load_settings()
    counter = CountingGenerator(make_generator(settings), _model_path(settings, settings.generator))
    fast = Pipeline(settings, generator=counter)
    fast.warm_up()
    today = Pipeline(settings.replace(reader_alone=0.0, followup="model", prompt_sources="all"),
                     embedder=fast.embedder, generator=counter, reader=fast.reader)
    qs = questions(args.n)
    load0, started = os.getloadavg()[0], time.strftime("%Y-%m-%d %H:%M:%S %z")
    rows = {"today": [ask_one(today, counter, q) for q in qs], "fast": [ask_one(fast, counter, q) for q in qs]}
    m = machine()
    print(f"Command: `.venv/bin/python bench/reader_first.py --n {args.n}`; started {started}; {m['nproc']} cores "
          f"({m['cpu_model']}); reader alone at no-answer <= {fast.reader.alone}; load average at start {load0:.2f}, "
          f"at end {os.getloadavg()[0]:.2f}\n")
    first = [i for i, r in enumerate(rows["fast"]) if "first_token" not in r and r.get("read") is not None and not r["abstained"]]
    print(f"{len(qs)} questions; FAST answered {len(first)} reader-first ({100 * len(first) / len(qs):.0f} %); "
          f"refused: TODAY {sum(r['abstained'] for r in rows['today'])}, FAST {sum(r['abstained'] for r in rows['fast'])}\n")
    print("| ms | TODAY | FAST | FAST / TODAY |\n|---|---|---|---|")
    for label, key, stat, subset in (
            ("first verified output p50, all answered", "first_output", "p50", None),
            ("first verified output p50, the reader-first questions", "first_output", "p50", first),
            ("total p50, all", "total", "p50", None),
            ("total p95, all", "total", "p95", None),
            ("prompt tokens p50 (where the model ran)", "prompt_tokens", "p50", None)):
        a, b = (percentiles([r.get(key) for i, r in enumerate(rows[side]) if subset is None or i in subset]).get(stat)
                for side in ("today", "fast"))
        print(f"| {label} | {a if a is not None else '–'} | {b if b is not None else '–'} | "
              f"{f'{b / a:.2f}' if a and b else '–'} |")
    if args.json:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
