"""`rag` command line: thin wrappers over the package's functions; every command shares one Settings.

Article data and file names are untrusted: everything printed from them goes through `say()`, which
writes control characters as escapes. Errors are one line on stderr (exit 2: bad input, 1: other);
an unexpected one leaves its traceback in the log file it names."""
from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

from rag import __version__
from rag.ingest.clean import escape_controls
from rag.config import load_settings
from rag.errors import InvalidQuestion, RagError


def say(text: str = "", *, err: bool = False, end: str = "\n", flush: bool = False) -> None:
    """print() for text that may hold article data: an ESC sequence in a title must not drive the terminal."""
    print(escape_controls(str(text)), end=end, flush=flush, file=sys.stderr if err else sys.stdout)


def _print_json(obj) -> None:
    # JSON escapes C0 controls itself; the C1 ones (e.g. CSI, 0x9b) get \u escapes here
    print(escape_controls(json.dumps(obj, ensure_ascii=False, indent=2, default=str), "\\u{:04x}"))


def _settings(args, *, several: bool = False):
    """The command's settings: options over RAG_* variables, then `--collection NAME`'s folders (rag.index.collections).
    `several`: the command reads several collections (ask, search): the base settings, with several names."""
    over = {k: getattr(args, k, None) for k in ("home", "corpus_dir", "index_dir", "retriever", "top_k", "generator", "backend")}
    settings = load_settings(**over)
    if getattr(args, "collection", None):
        from rag.index import collections

        names = collections.parse(args.collection)
        if len(names) > 1 and several:
            return settings
        if len(names) > 1:  # an index is built, evaluated or added to one collection at a time
            raise collections.CollectionError(f"one collection at a time here (`rag ask` and `rag search` take "
                                              f"several): --collection {names[0]} (not {args.collection})")
        settings = collections.settings_for(settings, names[0] if names else None)
    return settings


def _collection_option(parser, several: bool = False) -> None:
    parser.add_argument("--collection", metavar="A,B" if several else "NAME",
                        help="the collection to use (rag collections list; default: the collection 'default', "
                        "HOME/corpus and HOME/embeddings)" + ("; several, comma-separated, are searched together, "
                                                              "each citation naming its collection" if several else ""))


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
    from rag.ingest import corpus
    from rag.index import store
    from rag.ingest.dedup import open_cache as dedup_cache
    from rag.index.embed import load_embedder, open_cache
    from rag.errors import CorpusEmpty

    settings = _settings(args)
    signatures = dedup_cache(settings) if settings.dedup_threshold else None
    loaded = corpus.load_corpus(
        settings.corpus_dir, settings.dedup_threshold, signatures, **corpus.limits(settings)
    )
    for err in loaded.errors:
        say(f"skipped {err}", err=True)
    for dup, kept in loaded.duplicates:
        say(f"skipped duplicate {dup} (same text as {kept})", err=True)
    for dup, kept in loaded.near_duplicates:
        say(f"skipped near-duplicate {dup} (same story as {kept}; its source is listed with it)", err=True)
    for warning in loaded.warnings:
        say(f"warning: {warning}", err=True)
    if not loaded.articles:
        raise CorpusEmpty(f"no readable articles in {settings.corpus_dir}: add .md, .txt or .jsonl files")
    say(f"{len(loaded.articles)} articles from {settings.corpus_dir}", err=True)
    if args.ray or settings.ray_address:
        _embed_with_ray(settings, loaded.articles, args)
    report = store.update(
        settings,
        loaded.articles,
        load_embedder(settings),
        rebuild=args.rebuild,
        progress=not args.quiet,
        log=lambda m: say(m, err=True),
        cache=open_cache(settings),
        max_embed=args.max_embed,
        lexical_first=True,  # a changed article is searchable before the embedding model has loaded
    )
    if args.json:
        _print_json(report.__dict__ | {"errors": [str(e) for e in loaded.errors]})
    else:
        say(report.summary())
    return 0


def _filters(args):
    """--since/--until/--source as retrieval filters (None when none is given)."""
    from rag.answer.retrieve import Filters

    return Filters.from_dict({k: v for k, v in (("date_from", args.since), ("date_to", args.until), ("source", args.source)) if v})


def _embed_with_ray(settings, articles, args) -> None:
    """Publish lexically (seconds), then fill the embedding cache through the Ray cluster; the caller's
    update then publishes the dense side from the cache."""
    from rag.index import build as index
    from rag.index.embed import load_embedder, open_cache
    from rag.index.ray_embed import embed_with_ray

    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    index.update(settings, articles, load_embedder(settings), rebuild=args.rebuild, progress=not args.quiet, log=log,
                 cache=open_cache(settings), max_embed=0)
    args.rebuild = False  # done: the update after the job must reuse what this one published
    embed_with_ray(settings, articles, address=args.ray or settings.ray_address, cache=open_cache(settings), log=log)


def cmd_search(args) -> int:
    from rag.index import collections, store
    from rag.answer import dates
    from rag.index.embed import load_embedder
    from rag.answer.ground import is_vietnamese
    from rag.answer.retrieve import Retriever

    settings = _settings(args, several=True)
    names = collections.parse(args.collection)
    if len(names) > 1:  # each collection's own index, the hits merged (rag.index.store.Merged)
        idx = store.Merged({n: store.load(collections.settings_for(settings, n)) for n in names})
    else:
        idx = store.load(settings)
    embedder = None if settings.retriever == "bm25" else load_embedder(settings)
    period = dates.resolve(args.query, settings.today)  # as `rag ask` does: "mới nhất", "tuần trước"...
    if period and not args.json:
        say(period.note("vi" if is_vietnamese(args.query) else "en"), err=True)
    filters = dates.apply(_filters(args), period)
    hits = Retriever(idx, embedder, settings).search(args.query, k=args.k, filters=filters)
    if args.json:
        _print_json([h.to_dict() for h in hits])
        return 0
    for n, h in enumerate(hits, 1):
        ranks = ", ".join(f"{k}#{v}" if v else f"{k}#-" for k, v in h.ranks.items())
        where = f"[{h.article.collection}] " if h.article.collection else ""
        say(f"[{n}] {h.score:.3f} ({ranks})  {where}{h.article.title} ({h.article.date}, {h.article.source}) {h.chunk.id}")
        say("    " + h.chunk.text[:300].replace("\n", " "))
    return 0


# ------------------------------------------------------------------ ask


EXIT_ABSTAINED = 3  # `rag ask --strict`: the articles did not answer (0 answered, 2 bad input, 1 other error)


def _questions(args) -> list[str]:
    """The questions to answer: the arguments ("-" = all of stdin as one question), then --file's lines."""
    out = [sys.stdin.read() if q == "-" else q for q in args.question]
    if args.file:
        try:
            lines = Path(args.file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise InvalidQuestion(f"cannot read questions from {args.file}: {e}") from e
        out += [line for line in lines if line.strip()]
    if not out:
        raise InvalidQuestion("no question given: `rag ask \"...\"`, `rag ask -` (stdin) or `rag ask --file questions.txt`")
    return out


def _json_line(obj) -> None:
    say(escape_controls(json.dumps(obj, ensure_ascii=False, default=str), "\\u{:04x}"), flush=True)


def _print_answer(answer, args) -> None:
    say(answer.text if not args.stream else "")
    if answer.period:
        say(answer.period["note"])
    for c in answer.citations:
        where = f"[{c.collection}] " if c.collection else ""
        say(f"  [{c.marker}] {where}{c.title} ({c.date or 'n.d.'}, {c.source or '?'}) {c.url or ''}".rstrip())
        for other in c.also:  # the same story under other sources
            say(f"      = {other.get('title', '')} ({other.get('date') or 'n.d.'}, {other.get('source') or '?'}) {other.get('url') or ''}".rstrip())
        say(f"      “{c.quote}”")


def cmd_ask(args) -> int:
    from rag.index import collections
    from rag.answer.pipeline import Pipeline
    from rag.types import Answer

    questions = _questions(args)
    many = len(questions) > 1  # several answers: JSON Lines with --json, a blank line between texts
    pipeline = Pipeline(_settings(args, several=True))
    if len(collections.parse(args.collection)) > 1:
        pipeline = pipeline.collection(args.collection)  # each collection's index searched, the hits merged
    bad = abstained = 0
    for n, question in enumerate(questions):
        if many and not args.json:
            say(("\n" if n else "") + f"? {' '.join(question.split())}")
        answer = None
        try:
            for piece in pipeline.ask_stream(question, top_k=args.top_k, generator=args.model, filters=_filters(args)):
                if isinstance(piece, Answer):
                    answer = piece
                elif args.stream and not args.json:
                    say(piece, end="", flush=True)
        except InvalidQuestion as e:  # one bad line of a file loses none of the others
            if not many:
                raise
            bad += 1
            if args.json:
                _json_line({"question": question, "error": str(e)})
            else:
                say(f"error: {e}")
            continue
        abstained += answer.abstained
        if args.json and many:
            _json_line(answer.to_dict())
        elif args.json:
            _print_json(answer.to_dict())
        else:
            _print_answer(answer, args)
    if bad:
        return InvalidQuestion.exit_code
    return EXIT_ABSTAINED if args.strict and abstained else 0


# ------------------------------------------------------------------ eval


def cmd_eval_retrieval(args) -> int:
    from rag.eval import evalsets, evaluate

    settings = _settings(args)
    gold = evalsets.load_csv(Path(args.csv), question_col=args.question_col, context_col=args.context_col)
    for s in gold.skipped:
        say(f"skipped {s}", err=True)
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
    from rag.eval import evalsets

    answer_cols = (args.answer_col,) if args.answer_col else None
    gold = evalsets.load(Path(args.gold), question_col=args.question_col, context_col=args.context_col, answer_cols=answer_cols)
    for s in gold.skipped:
        say(f"skipped {s}", err=True)
    return gold


def _report_dir(args, default: str) -> Path:
    return Path(args.report) if args.report else _settings(args).home / "build" / "eval" / default


def cmd_eval_answers(args) -> int:
    from rag.eval import evaluate

    gold = _gold(args)
    out = _report_dir(args, gold.name)
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    report = evaluate.answers(gold, _settings(args), out, limit=args.limit, progress=not args.quiet, log=log,
                              given_context=args.given_context)
    if args.json:
        _print_json(report["summary"] | {"splits": report["splits"]})
    else:
        print(evaluate.summary_table({gold.name: report["summary"]} | report["splits"]))
    print(f"report: {out / 'report.md'}", file=sys.stderr)
    return 0


def cmd_eval_compare(args) -> int:
    from rag.eval import evaluate

    gold = _gold(args)
    out = _report_dir(args, f"compare-{gold.name}")
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    try:
        configs = {spec: evaluate.parse_overrides(spec) for spec in args.config}  # all checked before anything runs
    except ValueError as e:
        print(f"error: --config {e}", file=sys.stderr)
        return 2
    results = evaluate.compare(gold, _settings(args), configs, out, limit=args.limit, progress=not args.quiet, log=log,
                               given_context=args.given_context)
    table = evaluate.summary_table(results)
    (out / "compare.md").write_text(table, encoding="utf-8")
    if args.json:
        _print_json(results)
    else:
        print(table)
    return 0


# ------------------------------------------------------------------ reader (rag/answer/reader.py)

_QA_DATA = Path("..") / "shared" / "data" / "qa"
_READER_EPOCHS = 0.4  # passes over the training windows in the shipped run (rag/data/reader/provenance.json)


def cmd_reader_prepare(args) -> int:
    from rag.train import reader_data

    sources = reader_data.PERMISSIVE if args.permissive else tuple(reader_data.SOURCES)
    items, counts = reader_data.examples(Path(args.data), sources, seed=args.seed)
    path = reader_data.write(Path(args.out), items, counts, sources)
    for k, v in counts.items():
        print(f"  {k}: {v}")
    print(f"{len(items)} examples -> {path}")
    return 0


def cmd_reader_train(args) -> int:
    from rag.train import reader_train

    from rag.answer.reader import ReaderConfig

    config = ReaderConfig(**{k: getattr(args, k) for k in ("depth", "frozen", "rank", "max_len") if getattr(args, k) is not None})
    prov = reader_train.run(_settings(args), Path(args.data), Path(args.out), epochs=args.epochs, seed=args.seed,
                            config=config, progress=not args.quiet, log=lambda m: print(m, file=sys.stderr))
    print(json.dumps(prov["validation"]))
    return 0


def cmd_reader_eval(args) -> int:
    from rag.train import reader_data, reader_train
    from rag.answer.reader import load_reader

    settings = _settings(args)
    # the questions first: a file that cannot be scored is refused before the model loads
    if args.csv:
        items = reader_data.evaluation_examples(Path(args.csv), args.limit, accents=not args.unaccented)
    else:  # the prepared data's validation part (what the threshold was chosen on)
        items = [e for e in reader_data.read(Path(args.data)) if e.split == "valid"]
    if not items:
        raise RagError(f"{args.csv or args.data}: no questions to score")
    reader = load_reader(settings, Path(args.weights) if args.weights else None)
    preds = reader_train.read_examples(reader, items, progress=not args.quiet)
    result = {"all": reader_train.squad_scores(preds, items, reader.threshold)}
    # dev/holdout thirds of an evaluation slice; per kind: the sets' own unanswerable questions apart from the
    # made negatives (another passage of the article), which are far easier to refuse
    for key, value in [("split", "dev"), ("split", "holdout"), ("kind", "answer"), ("kind", "unanswerable"), ("kind", "negative")]:
        part = [(p, e) for p, e in zip(preds, items) if getattr(e, key) == value]
        if part:
            result[value] = reader_train.squad_scores([p for p, _ in part], [e for _, e in part], reader.threshold)
    result["refused_by_kind"] = reader_train.refused_by_kind(preds, items, reader.threshold)
    result["threshold"] = reader.threshold
    _print_json(result)
    return 0


def _date_arg(value: str) -> str:
    from rag.ingest.clean import parse_date

    iso = parse_date(value)
    if iso is None:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date: use YYYY-MM-DD")
    return iso


def _filter_options(parser) -> None:
    parser.add_argument("--since", type=_date_arg, metavar="YYYY-MM-DD", help="only articles published on or after this date")
    parser.add_argument("--until", type=_date_arg, metavar="YYYY-MM-DD", help="only articles published on or before this date")
    parser.add_argument("--source", action="append", help="only articles from this source (repeat for several)")


def _gold_options(parser) -> None:
    parser.add_argument("--gold", required=True, help="gold set: .jsonl (questions on the indexed corpus) or .csv (its own contexts)")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--report", help="report folder; rows there with the same configuration are reused (default: build/eval/...)")
    parser.add_argument("--question-col", help="CSV: question column (default question)")
    parser.add_argument("--context-col", help="CSV: context column (default context)")
    parser.add_argument("--answer-col", help="CSV: answer column (default answer / extractive answer)")
    parser.add_argument("--given-context", action="store_true",
                        help="answer each question from its gold article(s) without retrieval (reading comprehension)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


# ------------------------------------------------------------------ add / watch (files, web pages, feeds, sitemaps)


def _kind(args) -> str:
    return "feed" if args.feed else "sitemap" if args.sitemap else "auto"


def cmd_add(args) -> int:
    from rag.ingest import watch as ingest

    log = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr))  # noqa: E731
    report = ingest.add(_settings(args), args.sources, kind=_kind(args), limit=args.limit, log=log)
    if args.json:
        _print_json({k: v for k, v in report.__dict__.items() if k != "index"})
    else:
        print("\n".join(report.lines()))
    return 1 if report.failed else 0


def cmd_watch(args) -> int:
    from rag.ingest import watch as ingest

    try:
        every = ingest.parse_every(args.every)
    except ValueError as e:
        print(f"error: --every: {e}", file=sys.stderr)
        return 2
    reports = ingest.watch(_settings(args), args.feeds, every=every, iterations=1 if args.once else args.iterations,
                           kind=_kind(args), limit=args.limit)
    return 1 if reports and reports[-1].failed else 0  # the last poll did not do its job: say so to cron, systemd


# ------------------------------------------------------------------ collections and users


def cmd_collections_list(args) -> int:
    from rag.index import collections, build as index

    settings = _settings(args)
    rows = []
    for name in collections.names(settings):
        s = collections.settings_for(settings, name)
        files = sum(1 for p in s.corpus_dir.iterdir() if p.is_file()) if s.corpus_dir.is_dir() else 0
        rows.append({"name": name, "corpus": str(s.corpus_dir), "files": files,
                     "indexed": index.current_version(s.index_dir) is not None})
    if args.json:
        _print_json(rows)
    else:
        for r in rows:
            say(f"{r['name']:<16} {r['files']:>6} files  {'indexed' if r['indexed'] else 'not indexed':<12} {r['corpus']}")
    return 0


def cmd_collections_create(args) -> int:
    from rag.index import collections

    where = collections.create(_settings(args), args.name)
    say(f"created collection {args.name} in {where}: add articles with `rag add --collection {args.name} FILES`")
    return 0


def cmd_collections_delete(args) -> int:
    from rag.index import collections

    collections.delete(_settings(args), args.name)
    say(f"deleted collection {args.name} (its articles and index)")
    return 0


def cmd_collections_rename(args) -> int:
    from rag.index import collections

    collections.rename(_settings(args), args.old, args.new)
    say(f"renamed collection {args.old} to {args.new}")
    return 0


def cmd_users_add(args) -> int:
    from rag.serve import users

    settings = _settings(args)
    key = users.add(settings.home, args.name, read=args.read, write=args.write)
    say(f"added user {args.name} to {users.path(settings.home)}; its key (shown only now, keep it secret):", err=True)
    print(key)
    return 0


def cmd_users_list(args) -> int:
    from rag.serve import users

    rows = users.listing(_settings(args).home)
    if args.json:
        _print_json(rows)
    else:
        for r in rows:
            say(f"{r['name']:<16} read {','.join(r['read']) or '-':<24} write {','.join(r['write']) or '-'}")
    return 0


def cmd_users_remove(args) -> int:
    from rag.serve import users

    left = users.remove(_settings(args).home, args.name)
    say(f"removed user {args.name}: its key no longer works")
    if not left:
        say("warning: that was the last user: a server started with users keeps asking for a key, so now nobody "
            "can use it (RAG_API_KEY aside); add a user, or restart it to serve without keys (on 127.0.0.1 only)",
            err=True)
    return 0


# ------------------------------------------------------------------ serve


def cmd_serve(args) -> int:
    from rag.serve import web

    return web.main(args.host, args.port, settings=_settings(args), insecure=args.insecure)


# ------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag", description="Vietnamese-first question answering over news articles")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument(
        "--home", type=Path,
        help="data folder holding corpus/ and embeddings/ (env RAG_HOME; default: the current directory when it "
        "has them, else the user data folder, seeded with the default articles)",
    )
    p.add_argument("--corpus-dir", type=Path, help="articles folder (default: HOME/corpus, env RAG_CORPUS_DIR)")
    p.add_argument("--index-dir", type=Path, help="index folder (default: HOME/embeddings, env RAG_INDEX_DIR)")
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
    ix.add_argument("--ray", metavar="ADDRESS", help="embed through this Ray cluster (env RAG_RAY_ADDRESS), e.g. 10.0.0.5:6379")
    ix.add_argument("--json", action="store_true")
    ix.add_argument("--quiet", action="store_true")
    _collection_option(ix)
    ix.set_defaults(func=cmd_index)

    se = sub.add_parser("search", help="show the top passages for a query")
    se.add_argument("query")
    se.add_argument("-k", type=int, help="number of hits")
    se.add_argument("--retriever", choices=("hybrid", "bm25", "dense"))
    se.add_argument("--json", action="store_true")
    _filter_options(se)
    _collection_option(se, several=True)
    se.set_defaults(func=cmd_search)

    ak = sub.add_parser(
        "ask", help="answer questions from the indexed articles, with citations",
        description="Exit status: 0 answered, 3 some question abstained (with --strict), 2 bad input, 1 other error.",
    )
    ak.add_argument("question", nargs="*", help='one or more questions; "-" reads one question from stdin')
    ak.add_argument("--file", help="a text file with one question per line (blank lines skipped)")
    ak.add_argument("--json", action="store_true", help="print the Answer as JSON (JSON Lines for several questions)")
    ak.add_argument("--strict", action="store_true", help=f"exit with status {EXIT_ABSTAINED} when a question is not answered")
    ak.add_argument("--stream", action="store_true", help="print the answer as it is generated")
    ak.add_argument("--top-k", type=int, help="passages retrieved")
    ak.add_argument("--retriever", choices=("hybrid", "bm25", "dense"))
    ak.add_argument("--model", help="generator: a model name (rag models list) or a GGUF path")
    ak.add_argument("--backend", choices=("llama", "transformers", "openai"))
    _filter_options(ak)
    _collection_option(ak, several=True)
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
    _collection_option(ea)
    ea.set_defaults(func=cmd_eval_answers)
    ec = ev.add_parser("compare", help="run several configurations on one gold set; side-by-side table")
    _gold_options(ec)
    ec.add_argument("--config", action="append", required=True, metavar="KEY=VALUE[,KEY=VALUE]",
                    help='settings to override, e.g. "retriever=hybrid,top_k=6"; repeat for each configuration')
    _collection_option(ec)
    ec.set_defaults(func=cmd_eval_compare)

    ad = sub.add_parser("add", help="add files, folders, web pages, RSS/Atom feeds or sitemaps to the corpus and index them")
    ad.add_argument("sources", nargs="+", help="a file, a folder, or an http(s) URL of a page, a feed or a sitemap")
    _web_kind(ad)
    ad.add_argument("--json", action="store_true", help="print the report as JSON")
    ad.add_argument("--quiet", action="store_true")
    _collection_option(ad)
    ad.set_defaults(func=cmd_add)
    wa = sub.add_parser("watch", help="poll feeds (or sitemaps) and add new items as they appear")
    wa.add_argument("feeds", nargs="+", help="feed or sitemap URLs")
    wa.add_argument("--every", default="15m", help="time between polls: 30s, 15m, 2h (default 15m)")
    _web_kind(wa)
    stop = wa.add_mutually_exclusive_group()
    stop.add_argument("--once", action="store_true", help="poll once and exit")
    stop.add_argument("--iterations", type=int, metavar="N", help="poll N times and exit (default: until interrupted)")
    _collection_option(wa)
    wa.set_defaults(func=cmd_watch)

    co = sub.add_parser("collections", help="named corpora side by side, each with its own index").add_subparsers(
        dest="collections_cmd", required=True)
    cl = co.add_parser("list", help="the collections, their article files and whether they are indexed")
    cl.add_argument("--json", action="store_true")
    cl.set_defaults(func=cmd_collections_list)
    cc = co.add_parser("create", help="an empty collection (HOME/collections/NAME)")
    cc.add_argument("name")
    cc.set_defaults(func=cmd_collections_create)
    cd = co.add_parser("delete", help="delete a collection's articles and index (the others are not touched)")
    cd.add_argument("name")
    cd.set_defaults(func=cmd_collections_delete)
    cr = co.add_parser("rename", help="rename a collection (its index is kept)")
    cr.add_argument("old")
    cr.add_argument("new")
    cr.set_defaults(func=cmd_collections_rename)

    us = sub.add_parser("users", help="keys that may read and/or write collections on `rag serve`").add_subparsers(
        dest="users_cmd", required=True)
    ua = us.add_parser("add", help="add a user; prints its key once")
    ua.add_argument("name")
    ua.add_argument("--read", metavar="A,B", help="collections it may read ('*': all)")
    ua.add_argument("--write", metavar="A,B", help="collections it may add to and remove from (implies read; '*': all)")
    ua.set_defaults(func=cmd_users_add)
    ul = us.add_parser("list", help="users and their rights (never keys)")
    ul.add_argument("--json", action="store_true")
    ul.set_defaults(func=cmd_users_list)
    ur = us.add_parser("remove", help="remove a user (its key stops working at once)")
    ur.add_argument("name")
    ur.set_defaults(func=cmd_users_remove)

    rd = sub.add_parser("reader", help="the trained answer reader: prepare its data, train it, measure it").add_subparsers(
        dest="reader_cmd", required=True)
    rp = rd.add_parser("prepare", help="training examples from the QA sets (rows 301+) and the training pack (train/), "
                       "minus training_exclude.sha256 and the evaluation slices")
    rp.add_argument("--data", default=str(_QA_DATA), help="folder of the QA CSVs, train/ and training_exclude.sha256")
    rp.add_argument("--out", default="build/reader/data.jsonl")
    rp.add_argument("--permissive", action="store_true",
                    help="only CC BY-SA data (XQuAD, the SQuAD 2.0 translation): no research-only or unlicensed source")
    rp.add_argument("--seed", type=int, default=0)
    rp.set_defaults(func=cmd_reader_prepare)
    rt = rd.add_parser("train", help="train adapters + head on prepared data (resumable; see rag/data/reader/README.md)")
    rt.add_argument("--data", default="build/reader/data.jsonl")
    rt.add_argument("--out", default="rag/data/reader", help="folder for the weights, config and provenance")
    rt.add_argument("--epochs", type=float, default=_READER_EPOCHS,
                    help="passes over the training windows; a fraction samples that share (seeded)")
    rt.add_argument("--seed", type=int, default=0)
    rt.add_argument("--depth", type=int, help="encoder layers used (default: rag.answer.reader.ReaderConfig)")
    rt.add_argument("--frozen", type=int, help="of them, the lower ones not adapted")
    rt.add_argument("--rank", type=int, help="LoRA rank")
    rt.add_argument("--max-len", type=int, help="tokens per window")
    rt.add_argument("--quiet", action="store_true")
    rt.set_defaults(func=cmd_reader_train)
    re_ = rd.add_parser("eval", help="the reader alone, given each question's paragraph: SQuAD-v2 EM/F1, no-answer accuracy")
    what = re_.add_mutually_exclusive_group(required=True)
    what.add_argument("--csv", help="an evaluation CSV: its first --limit rows")
    what.add_argument("--data", help="prepared data (rag reader prepare): its validation part")
    re_.add_argument("--limit", type=int, default=300)
    re_.add_argument("--unaccented", action="store_true", help="with --csv: the questions typed without diacritics")
    re_.add_argument("--weights", help="reader folder (default: the packaged one)")
    re_.add_argument("--quiet", action="store_true")
    re_.set_defaults(func=cmd_reader_eval)

    sv = sub.add_parser("serve", help="start the web chat (default http://127.0.0.1:7860)")
    sv.add_argument("--host", help="interface to bind (default 127.0.0.1, env RAG_HOST)")
    sv.add_argument("--port", type=int, help="port (default 7860, env RAG_PORT)")
    sv.add_argument("--insecure", action="store_true",
                    help="serve a non-loopback address with no users and no RAG_API_KEY (anyone may ask, nobody may write)")
    sv.set_defaults(func=cmd_serve)
    return p


def _web_kind(parser) -> None:
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--feed", action="store_true", help="the URLs are RSS/Atom feeds (default: detected)")
    kind.add_argument("--sitemap", action="store_true", help="the URLs are sitemaps (default: detected)")
    parser.add_argument("--limit", type=int, metavar="N", help="at most N new links per feed or sitemap per run, newest first")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RagError as e:
        say(f"error: {e}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a folder that is missing or not writable, a full disk: the user can fix it
        where = f": {e.filename}" if e.filename else ""
        say(f"error: {e.strerror or e}{where}: check that it exists, has space and its permissions allow this, "
            "or use another folder (--corpus-dir, --index-dir, RAG_CACHE_DIR)", err=True)
        return 1
    except Exception as e:
        say(f"error: unexpected {type(e).__name__} (a bug): {_log_traceback()}", err=True)
        return 1


def _log_traceback() -> str:
    """Append the current exception's traceback to <cache_dir>/logs/rag.log; where it went, in words."""
    try:
        path = load_settings().cache_dir / "logs" / "rag.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} rag {' '.join(sys.argv[1:])}\n{traceback.format_exc()}")
        return f"the details are in {path}; please report them"
    except Exception:  # no log to be had (e.g. a read-only cache): the terminal is the last resort
        return "no log file could be written, so here are the details:\n" + traceback.format_exc()


if __name__ == "__main__":
    sys.exit(main())
