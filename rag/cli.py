"""`rag` command line: thin wrappers over the package's functions; every command shares one Settings."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rag.config import load_settings
from rag.errors import RagError


def _print_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def _settings(args):
    over = {k: getattr(args, k, None) for k in ("corpus_dir", "index_dir", "retriever", "top_k", "generator", "backend")}
    return load_settings(**over)


# ------------------------------------------------------------------ models


def cmd_models_pull(args) -> int:
    from rag import models

    settings = _settings(args)
    names = args.names or None
    paths = models.pull(names, settings, progress=not args.quiet)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def cmd_models_list(args) -> int:
    from rag import models

    rows = models.status(_settings(args))
    if args.json:
        _print_json(rows)
    else:
        for r in rows:
            print(f"{r['name']:<22} {r['kind']:<9} {'ok' if r['provisioned'] else 'missing':<8} {r['path']}")
    return 0


# ------------------------------------------------------------------ index / search


def cmd_index(args) -> int:
    from rag import corpus, store
    from rag.embed import load_embedder, open_cache
    from rag.errors import CorpusEmpty

    settings = _settings(args)
    loaded = corpus.load_corpus(settings.corpus_dir)
    for err in loaded.errors:
        print(f"skipped {err}", file=sys.stderr)
    for dup, kept in loaded.duplicates:
        print(f"skipped duplicate {dup} (same text as {kept})", file=sys.stderr)
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not loaded.articles:
        raise CorpusEmpty(f"no readable articles in {settings.corpus_dir}: add .md, .txt or .jsonl files")
    print(f"{len(loaded.articles)} articles from {settings.corpus_dir}", file=sys.stderr)
    report = store.update(
        settings,
        loaded.articles,
        load_embedder(settings),
        rebuild=args.rebuild,
        progress=not args.quiet,
        log=lambda m: print(m, file=sys.stderr),
        cache=open_cache(settings),
        max_embed=args.max_embed,
        lexical_first=True,  # a changed article is searchable before the embedding model has loaded
    )
    if args.json:
        _print_json(report.__dict__ | {"errors": [str(e) for e in loaded.errors]})
    else:
        print(report.summary())
    return 0


def cmd_search(args) -> int:
    from rag import store
    from rag.embed import load_embedder
    from rag.retrieve import Retriever

    settings = _settings(args)
    idx = store.load(settings)
    embedder = None if settings.retriever == "bm25" else load_embedder(settings)
    hits = Retriever(idx, embedder, settings).search(args.query, k=args.k or settings.top_k)
    if args.json:
        _print_json([h.to_dict() for h in hits])
        return 0
    for n, h in enumerate(hits, 1):
        ranks = ", ".join(f"{k}#{v}" if v else f"{k}#-" for k, v in h.ranks.items())
        print(f"[{n}] {h.score:.3f} ({ranks})  {h.article['title']} ({h.article['date']}) {h.chunk.id}")
        print("    " + h.chunk.text[:300].replace("\n", " "))
    return 0


# ------------------------------------------------------------------ ask


def cmd_ask(args) -> int:
    from rag.pipeline import Pipeline
    from rag.types import Answer

    settings = _settings(args)
    pipeline = Pipeline(settings)
    answer = None
    for piece in pipeline.ask_stream(args.question, top_k=args.top_k, generator=args.model):
        if isinstance(piece, Answer):
            answer = piece
        elif args.stream and not args.json:
            print(piece, end="", flush=True)
    if args.json:
        _print_json(answer.to_dict())
        return 0
    print(answer.text if not args.stream else "")
    for c in answer.citations:
        print(f"  [{c.marker}] {c.title} ({c.date or 'n.d.'}, {c.source or '?'}) {c.url or ''}".rstrip())
        print(f"      “{c.quote}”")
    return 0


# ------------------------------------------------------------------ eval


def cmd_eval_retrieval(args) -> int:
    from rag import evalsets, evaluate

    settings = _settings(args)
    gold = evalsets.load_csv(Path(args.csv), question_col=args.question_col, context_col=args.context_col)
    for s in gold.skipped:
        print(f"skipped {s}", file=sys.stderr)
    retrievers = ("bm25", "dense", "hybrid") if args.retriever == "all" else (args.retriever,)
    result = evaluate.retrieval(gold, settings, retrievers, progress=not args.quiet, log=lambda m: print(m, file=sys.stderr))
    if args.json:
        _print_json(result)
    else:
        print(f"{result['gold']}: {result['queries']} queries, corpus {result['corpus_size']} ({result['chunks']} chunks)")
        for mode, m in result["retrievers"].items():
            print(f"  {mode:<7} " + "  ".join(f"{k} {v}" for k, v in m.items()))
    return 0


def _gold(args):
    from rag import evalsets

    answer_cols = (args.answer_col,) if args.answer_col else None
    gold = evalsets.load(Path(args.gold), question_col=args.question_col, context_col=args.context_col, answer_cols=answer_cols)
    for s in gold.skipped:
        print(f"skipped {s}", file=sys.stderr)
    return gold


def _report_dir(args, default: str) -> Path:
    from rag.config import ROOT

    return Path(args.report) if args.report else ROOT / "build" / "eval" / default


def cmd_eval_answers(args) -> int:
    from rag import evaluate

    gold = _gold(args)
    out = _report_dir(args, gold.name)
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    report = evaluate.answers(gold, _settings(args), out, limit=args.limit, progress=not args.quiet, log=log)
    if args.json:
        _print_json(report["summary"])
    else:
        print(evaluate.summary_table({gold.name: report["summary"]}))
    print(f"report: {out / 'report.md'}", file=sys.stderr)
    return 0


def cmd_eval_compare(args) -> int:
    from rag import evaluate

    gold = _gold(args)
    out = _report_dir(args, f"compare-{gold.name}")
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    try:
        configs = {spec: evaluate.parse_overrides(spec) for spec in args.config}  # all checked before anything runs
    except ValueError as e:
        print(f"error: --config {e}", file=sys.stderr)
        return 2
    results = evaluate.compare(gold, _settings(args), configs, out, limit=args.limit, progress=not args.quiet, log=log)
    table = evaluate.summary_table(results)
    (out / "compare.md").write_text(table, encoding="utf-8")
    if args.json:
        _print_json(results)
    else:
        print(table)
    return 0


def _gold_options(parser) -> None:
    parser.add_argument("--gold", required=True, help="gold set: .jsonl (questions on the indexed corpus) or .csv (its own contexts)")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--report", help="report folder; rows there with the same configuration are reused (default: build/eval/...)")
    parser.add_argument("--question-col", help="CSV: question column (default question)")
    parser.add_argument("--context-col", help="CSV: context column (default context)")
    parser.add_argument("--answer-col", help="CSV: answer column (default answer / extractive answer)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


# ------------------------------------------------------------------ serve


def cmd_serve(args) -> int:
    from rag.config import ROOT

    sys.path.insert(0, str(ROOT))  # app.py lives at the repo root, beside the package
    import app

    return app.main(args.host, args.port, settings=_settings(args))


# ------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag", description="Vietnamese-first question answering over news articles")
    p.add_argument("--corpus-dir", type=Path, help="articles folder (default: corpus/, env RAG_CORPUS_DIR)")
    p.add_argument("--index-dir", type=Path, help="index folder (default: embeddings/, env RAG_INDEX_DIR)")
    sub = p.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="provision and list models").add_subparsers(dest="models_cmd", required=True)
    pull = models.add_parser("pull", help="download, verify and install models into the cache")
    pull.add_argument("names", nargs="*", help="model names (default: the configured embedder and generator)")
    pull.add_argument("--quiet", action="store_true")
    pull.set_defaults(func=cmd_models_pull)
    ls = models.add_parser("list", help="known models and whether they are provisioned")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_models_list)

    ix = sub.add_parser("index", help="(re)build the index incrementally from the corpus folder")
    ix.add_argument("--rebuild", action="store_true", help="ignore the existing index and rebuild everything")
    ix.add_argument(
        "--max-embed", type=int, metavar="N",
        help="embed at most N chunks this run; the rest are searchable lexically until a later run embeds them",
    )
    ix.add_argument("--json", action="store_true")
    ix.add_argument("--quiet", action="store_true")
    ix.set_defaults(func=cmd_index)

    se = sub.add_parser("search", help="show the top passages for a query")
    se.add_argument("query")
    se.add_argument("-k", type=int, help="number of hits")
    se.add_argument("--retriever", choices=("hybrid", "bm25", "dense"))
    se.add_argument("--json", action="store_true")
    se.set_defaults(func=cmd_search)

    ak = sub.add_parser("ask", help="answer a question from the indexed articles, with citations")
    ak.add_argument("question")
    ak.add_argument("--json", action="store_true", help="print the Answer as JSON")
    ak.add_argument("--stream", action="store_true", help="print the answer as it is generated")
    ak.add_argument("--top-k", type=int, help="passages retrieved")
    ak.add_argument("--retriever", choices=("hybrid", "bm25", "dense"))
    ak.add_argument("--model", help="generator: a model name (rag models list) or a GGUF path")
    ak.add_argument("--backend", choices=("llama", "transformers", "openai"))
    ak.set_defaults(func=cmd_ask)

    ev = sub.add_parser("eval", help="evaluation on gold sets").add_subparsers(dest="eval_cmd", required=True)
    er = ev.add_parser("retrieval", help="retrieval metrics on a CSV gold set (corpus = its distinct contexts)")
    er.add_argument("--csv", required=True)
    er.add_argument("--question-col", default="question")
    er.add_argument("--context-col", default="context")
    er.add_argument("--retriever", choices=("hybrid", "bm25", "dense", "all"), default="hybrid")
    er.add_argument("--json", action="store_true")
    er.add_argument("--quiet", action="store_true")
    er.set_defaults(func=cmd_eval_retrieval)
    ea = ev.add_parser("answers", help="answer every gold question through the pipeline; answer, citation, abstention, retrieval and latency metrics")
    _gold_options(ea)
    ea.add_argument("--retriever", choices=("hybrid", "bm25", "dense"))
    ea.add_argument("--generator", help="generator: a model name (rag models list) or a GGUF path")
    ea.add_argument("--top-k", type=int, help="passages handed to the answer step")
    ea.set_defaults(func=cmd_eval_answers)
    ec = ev.add_parser("compare", help="run several configurations on one gold set; side-by-side table")
    _gold_options(ec)
    ec.add_argument("--config", action="append", required=True, metavar="KEY=VALUE[,KEY=VALUE]",
                    help='settings to override, e.g. "retriever=hybrid,top_k=6"; repeat for each configuration')
    ec.set_defaults(func=cmd_eval_compare)

    sv = sub.add_parser("serve", help="start the web chat (default http://127.0.0.1:7860)")
    sv.add_argument("--host", help="interface to bind (default 127.0.0.1, env RAG_HOST)")
    sv.add_argument("--port", type=int, help="port (default 7860, env RAG_PORT)")
    sv.set_defaults(func=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RagError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
