"""Prompt-reading and generation speed of the configured GGUF generator with whichever llama_cpp build the running
venv has, to compare two builds of llama-cpp-python (e.g. with and without a library left out of the build):

    venv-a/bin/python bench/llama_speed.py; venv-b/bin/python bench/llama_speed.py   # alternate, repeat

Reads the HTV seed article's first 400 tokens 3 times (fresh context each time) and generates 32 tokens greedily
after each; prints the best rate of each, tokens/s."""
from __future__ import annotations

import sys
import time
from pathlib import Path

ARTICLE = Path(__file__).resolve().parent.parent / "corpus" / "htv-dot-pha-cong-nghe-2025-11-28.md"


def main() -> None:
    import llama_cpp

    from rag import models
    from rag.config import load_settings

    s = load_settings()
    llm = llama_cpp.Llama(str(models.resolve(s.generator, s, kind=models.GGUF)), n_ctx=1024, n_threads=2, verbose=False)
    toks = llm.tokenize(ARTICLE.read_text(encoding="utf-8").encode())[:400]
    reads, gens = [], []
    for _ in range(3):
        llm.reset()
        t = time.perf_counter()
        llm.eval(toks)
        reads.append(len(toks) / (time.perf_counter() - t))
        t, n = time.perf_counter(), 0
        for _tok in llm.generate(toks[-1:], temp=0.0, reset=False):
            n += 1
            if n == 32:
                break
        gens.append(n / (time.perf_counter() - t))
    print(f"{sys.prefix}: prompt {max(reads):.1f} tokens/s (runs {[round(r) for r in reads]}), "
          f"generation {max(gens):.1f} tokens/s; {llama_cpp.__file__}")


if __name__ == "__main__":
    main()
