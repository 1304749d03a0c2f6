"""Measure the support check (rag.answer.ground.check) on sentences of the indexed corpus.

For every sentence of every chunk:
  positive            the sentence against its own chunk                  -> must pass
  wrong number        one of its numbers changed (+1)                      -> must fail
  wrong name          one of its names swapped for a name from elsewhere   -> must fail
  other article       the sentence against the best chunk of another article -> should fail
Run: .venv/bin/python eval/support_check.py [--index-dir embeddings]
"""
from __future__ import annotations

import argparse
import json
import re

from rag import text
from rag.answer import ground
from rag.index import build as index
from rag.config import load_settings


def perturb_number(s: str) -> str | None:
    m = re.search(r"\d+", ground.MARKER.sub("", s))
    return None if not m else s[: m.start()] + str(int(m.group()) + 1) + s[m.end() :]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index-dir")
    args = ap.parse_args()
    settings = load_settings(index_dir=args.index_dir)
    idx = index.load(settings)
    sentences = []  # (sentence, chunk)
    for c in idx.chunks:
        for a, b in text.split_sentences(c.text):
            s = c.text[a:b]
            if ground.is_factual(s) and len(s) > 30:
                sentences.append((s, c))
    all_names = sorted({n for s, _ in sentences for n in ground.names(s)})
    counts = {k: [0, 0] for k in ("positive", "wrong number", "wrong name", "other article")}

    def record(kind, ok):
        counts[kind][0] += ok
        counts[kind][1] += 1

    for s, c in sentences:
        record("positive", ground.check(s, c.text).ok)
        wn = perturb_number(s)
        if wn:
            record("wrong number", not ground.check(wn, c.text).ok)
        names = ground.names(s)
        others = [n for n in all_names if n not in c.text]
        if names and others:
            record("wrong name", not ground.check(s.replace(names[0], others[len(s) % len(others)]), c.text).ok)
        other = [o for o in idx.chunks if o.article_id != c.article_id]
        if other:
            best = max(other, key=lambda o: len(set(text.syllables(s)) & set(text.syllables(o.text))))
            record("other article", not ground.check(s, best.text).ok)
    out = {k: {"correct": v[0], "cases": v[1], "rate": round(100 * v[0] / v[1], 1) if v[1] else None} for k, v in counts.items()}
    print(json.dumps({"sentences": len(sentences), "results": out}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
