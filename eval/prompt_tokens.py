"""Prompt tokens of finished `rag eval answers` runs (the user message the generator was shown, counted with
the generator's own vocabulary; the fixed system prompt is left out: llama.cpp keeps it cached), p50 and p90
over the rows where the model ran, dev and holdout apart:

    .venv/bin/python eval/prompt_tokens.py build/eval/a/rows.jsonl build/eval/b/rows.jsonl
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def main(paths: list[str]) -> None:
    import llama_cpp

    from rag import models
    from rag.config import load_settings

    settings = load_settings()
    vocab = llama_cpp.Llama(str(models.resolve(settings.generator, settings, kind=models.GGUF)), vocab_only=True,
                            verbose=False)
    print(f"| rows | split | model ran | prompt tokens p50 | p90 |\n|---|---|---|---|---|")
    for path in paths:
        rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        for split in ("dev", "holdout"):
            part = [r for r in rows if (r.get("split") or "dev") == split]
            ran = [len(vocab.tokenize(r["prompt"].encode("utf-8"), add_bos=False, special=False))
                   for r in part if r.get("prompt")]
            if part:
                p50, p90 = (round(float(np.percentile(ran, q))) if ran else "–" for q in (50, 90))
                print(f"| {path} | {split} | {len(ran)} of {len(part)} | {p50} | {p90} |")


if __name__ == "__main__":
    main(sys.argv[1:] or sys.exit(__doc__))
