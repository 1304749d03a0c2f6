"""Write the first N articles of the shared vietnews corpus as one JSON Lines corpus file (lead + body, ids
as in the data), for `eval/gold/vietnews_qa.jsonl`:

    .venv/bin/python eval/vietnews_corpus.py build/vietnews1000/corpus/vietnews1000.jsonl
    RAG_CORPUS_DIR=build/vietnews1000/corpus RAG_INDEX_DIR=build/vietnews1000/index .venv/bin/rag index --max-embed 0
"""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "vietnews" / "articles-test.jsonl.gz"


def main(out: str, n: int = 1000) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(SOURCE, "rt", encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i >= n:
                break
            r = json.loads(line)
            text = f"{r.get('summary') or ''}\n{r['text']}"
            dst.write(json.dumps({"id": str(r["id"]), "title": r["title"], "text": text, "source": "vietnews"}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:]))
