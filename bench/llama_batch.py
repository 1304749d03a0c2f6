"""Lever check: does any llama.cpp batch setting speed up prompt processing on this CPU?

    .venv/bin/python bench/llama_batch.py

Builds the real prompt of one seed question (live index in embeddings/, default settings) and times
`Llama.eval` of its user part, 3 times per setting, with the default settings, flash attention, and
smaller n_batch/n_ubatch. Prints prompt sizes for 6 and 4 context sentences, then tokens/s per setting.
"""
from __future__ import annotations

import time

QUESTION = "Ai phát biểu khai mạc Hội nghị quốc tế về đột phá công nghệ ngày 27/11?"
SETTINGS = (dict(), dict(n_batch=512, n_ubatch=512, flash_attn=True), dict(n_batch=256, n_ubatch=256),
            dict(n_batch=128, n_ubatch=128))


def main() -> None:
    import llama_cpp

    from rag import models
    from rag.answer import prompt
    from rag.config import load_settings
    from rag.answer.pipeline import Pipeline

    s = load_settings()
    path = models.resolve(s.generator, s, kind=models.GGUF)
    p = Pipeline(s)
    hits = p.search(QUESTION, k=s.top_k)
    texts = {h.chunk.article_id: p.index.articles[h.chunk.article_id].text for h in hits}
    user = {}
    for n in (6, 4):
        user[n] = prompt.messages(QUESTION, prompt.select_sources(QUESTION, hits, n, texts=texts))[1]["content"]
        print(f"{n} context sentences: user message {len(user[n])} characters")
    for cfg in SETTINGS:
        llm = llama_cpp.Llama(str(path), n_ctx=4096, n_threads=s.threads or 2, verbose=False, **cfg)
        tokens = llm.tokenize(user[6].encode(), add_bos=False)
        times = []
        for _ in range(3):
            llm.reset()
            t = time.perf_counter()
            llm.eval(tokens)
            times.append(time.perf_counter() - t)
        print(f"{cfg or 'default'}: {len(tokens)} tokens, best {min(times):.2f} s, {len(tokens) / min(times):.1f} tok/s")
        del llm


if __name__ == "__main__":
    main()
