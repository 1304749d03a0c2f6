"""Date-bound questions: a small dated corpus and a retrieval-level check of rag/answer/dates.py.

The corpus: 32 vietnews articles (eval/gold/dated_corpus.jsonl: vietnews id, publication date, source),
written as Markdown into build/dated/corpus (lead + body, read from ../shared/data at run time). Most are
templated lottery results whose wording is nearly the same from draw to draw: only the date tells them
apart, which is what the questions in eval/gold/dated_qa.jsonl ask about (reference date 2025-11-02).

The check: for each question, the top-k hits with the question's period applied (filter / preference /
newest first, as `rag ask` does) and without it; a hit is a gold article in the top k; a question with
no gold article (a period with nothing in it) is right when no chunk is retrieved.

    PYTHONPATH=. .venv/bin/python eval/dated.py [--retriever bm25|hybrid] [-k 4]
Answers (the lead's expensive run) use the same corpus and reference date:
    RAG_TODAY=2025-11-02 RAG_CORPUS_DIR=build/dated/corpus RAG_INDEX_DIR=build/dated/index \\
        .venv/bin/rag eval answers --gold eval/gold/dated_qa.jsonl --report build/eval/dated
"""
from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.ingest import corpus  # noqa: E402
from rag.answer import dates
from rag.eval import evalsets
from rag.index import build as index
from rag.config import load_settings  # noqa: E402
from rag.answer.retrieve import Retriever  # noqa: E402
from rag.types import Article  # noqa: E402

VIETNEWS = ROOT.parent / "shared" / "data" / "vietnews" / "articles-test.jsonl.gz"
SPEC = ROOT / "eval" / "gold" / "dated_corpus.jsonl"
GOLD = ROOT / "eval" / "gold" / "dated_qa.jsonl"
BUILD = ROOT / "build" / "dated"


def build_corpus(folder: Path) -> list[Article]:
    spec = {row["vietnews_id"]: row for row in map(json.loads, SPEC.read_text(encoding="utf-8").splitlines())}
    articles = []
    with gzip.open(VIETNEWS, "rt", encoding="utf-8") as f:
        for r in map(json.loads, f):
            if r["id"] in spec:
                s = spec[r["id"]]
                articles.append(Article(id=r["id"], title=r["title"], text=f"{r['summary']}\n{r['text']}",
                                        date=s["date"], source=s["source"]))
    if len(articles) != len(spec):
        raise SystemExit(f"{VIETNEWS}: {len(spec) - len(articles)} articles of {SPEC} not found")
    shutil.rmtree(folder, ignore_errors=True)
    for a in articles:
        corpus.write_article(a, folder)
    return articles


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--retriever", choices=("bm25", "hybrid", "dense"), default="bm25")
    ap.add_argument("-k", type=int, default=4)
    args = ap.parse_args(argv)
    gold = evalsets.load_jsonl(GOLD)
    today = {json.loads(line).get("today") for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()}
    if len(today) != 1:
        raise SystemExit(f"{GOLD}: expected one reference date ('today') for the set, found {sorted(today)}")
    settings = load_settings(corpus_dir=BUILD / "corpus", index_dir=BUILD / "index", today=today.pop(),
                             retriever=args.retriever)
    build_corpus(settings.corpus_dir)
    loaded = corpus.load_corpus(settings.corpus_dir, settings.dedup_threshold)
    embedder = None
    if args.retriever != "bm25":
        from rag.index.embed import load_embedder, open_cache

        embedder = load_embedder(settings)
        index.update(settings, loaded.articles, embedder, progress=False, log=lambda m: None, cache=open_cache(settings))
    else:  # BM25 only: vectors are not needed, a stand-in embedder name keeps the manifest honest
        from rag.index.embed import embedder_id

        class _NoVectors:
            name = embedder_id(settings)

        index.update(settings, loaded.articles, _NoVectors(), progress=False, log=lambda m: None, max_embed=0)
    retriever = Retriever(index.load(settings), embedder, settings)

    print(f"dated corpus: {len(loaded.articles)} articles, reference date {settings.today}, retriever "
          f"{args.retriever}, top {args.k}\n")
    print("| id | phrase → period | gold in top-k (with / without dates) | rank of gold (with / without) |")
    print("|---|---|---|---|")
    score, first = {"with": 0, "without": 0}, {"with": 0, "without": 0}
    for item in gold.items:
        period = dates.resolve(item.question, settings.today)
        ranked = {}
        for mode, filters in (("with", dates.apply(None, period)), ("without", None)):
            hits = retriever.search(item.question, k=args.k, filters=filters)
            ranked[mode] = list(dict.fromkeys(h.chunk.article_id for h in hits))
        ok = {m: (bool(set(r) & set(item.article_ids)) if item.article_ids else not r) for m, r in ranked.items()}
        for m in ok:
            score[m] += ok[m]
        rank = {m: next((i + 1 for i, a in enumerate(r) if a in item.article_ids), "-") for m, r in ranked.items()}
        for m in first:
            first[m] += rank[m] == 1 or (not item.article_ids and ok[m])
        what = f"{period.phrase} → {period.kind} {period.since or ''}…{period.until or ''}" if period else "none"
        print(f"| {item.id} | {what} | {'yes' if ok['with'] else 'no'} / {'yes' if ok['without'] else 'no'} | {rank['with']} / {rank['without']} |")
    n = len(gold.items)
    print(f"\ngold article in the top {args.k} (or nothing retrieved for an empty period): "
          f"with dates {score['with']}/{n}, without {score['without']}/{n}; first: with {first['with']}/{n}, "
          f"without {first['without']}/{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
