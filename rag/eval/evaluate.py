"""Evaluation runs over gold sets: retrieval only (`retrieval`), and the full pipeline (`answers`,
`compare`), which writes per-question rows as it goes so an interrupted run resumes."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.answer import ground
from rag.eval import metrics
from rag.index import store
from rag.config import Settings, load_settings
from rag.index.embed import embed_cached, load_embedder, open_cache
from rag.errors import InvalidQuestion
from rag.eval.evalsets import GoldItem, GoldSet
from rag.eval.metrics import percentile, retrieval_scores
from rag.answer.retrieve import Retriever
from rag.types import Hit


def ensure_corpus_index(gold: GoldSet, settings: Settings, embedder, *, progress=True, log=print, lexical_only=False) -> Settings:
    """Index a gold set's own corpus under the cache (once; reruns reuse it) and return settings pointing at it.
    `lexical_only`: no vectors (nothing will be searched densely, e.g. reading comprehension)."""
    digest = hashlib.sha256("\x00".join(sorted(a.id for a in gold.corpus)).encode()).hexdigest()[:12]
    eval_settings = settings.replace(
        index_dir=settings.cache_dir / "eval" / f"{gold.name}-{digest}",
        milvus_collection=re.sub(r"\W", "_", f"{settings.milvus_collection}_eval_{gold.name}_{digest}"),
    )
    report = store.update(eval_settings, gold.corpus, embedder, progress=progress, log=log, cache=open_cache(settings),
                          max_embed=0 if lexical_only else None)
    log(f"eval corpus {gold.name}: {report.summary()}")
    return eval_settings


def article_ranking(hits) -> list[str]:
    """Chunk hits -> article ids in order of their best chunk."""
    seen, out = set(), []
    for h in hits:
        if h.chunk.article_id not in seen:
            seen.add(h.chunk.article_id)
            out.append(h.chunk.article_id)
    return out


def retrieval(gold: GoldSet, settings: Settings, retrievers=("hybrid",), *, progress=True, log=print) -> dict:
    """Rank the gold set's corpus for every question; metrics per retriever, as in the ViRE tables."""
    needs_dense = any(r != "bm25" for r in retrievers)
    embedder = load_embedder(settings)
    t0 = time.perf_counter()
    eval_settings = ensure_corpus_index(gold, settings, embedder, progress=progress, log=log)
    index = store.load(eval_settings, expected_embedder=embedder.name)
    index_s = time.perf_counter() - t0
    questions = [it.question for it in gold.items]
    t1 = time.perf_counter()
    qvecs = embed_cached(embedder, questions, cache=open_cache(settings), progress=progress, desc="embedding questions") if needs_dense else None
    qembed_s = time.perf_counter() - t1
    retriever = Retriever(index, embedder, eval_settings)
    depth = max(100, settings.candidates)  # chunks; enough to rank 20 distinct articles
    results = {}
    for mode in retrievers:
        ranked, lat = [], []
        for i, q in enumerate(questions):
            t = time.perf_counter()
            hits = retriever.search(q, k=depth, retriever=mode, query_vector=None if qvecs is None else qvecs[i])
            lat.append((time.perf_counter() - t) * 1000)
            ranked.append(article_ranking(hits)[:20])
        scores = retrieval_scores(ranked, [set(it.article_ids) for it in gold.items])
        scores["search_ms_p50"] = round(percentile(lat, 50), 2)
        scores["search_ms_p95"] = round(percentile(lat, 95), 2)
        results[mode] = scores
    return {
        "gold": gold.name,
        "queries": len(questions),
        "corpus_size": len(gold.corpus),
        "chunks": len(index),
        "skipped_rows": len(gold.skipped),
        "settings": {k: getattr(settings, k) for k in ("embedder", "embed_runtime", "embed_dim", "tokenizer", "fusion", "dense_weight", "chunk_size", "chunk_overlap")},
        "timings_s": {"index": round(index_s, 2), "embed_queries": round(qembed_s, 2)},
        "retrievers": results,
    }


# ------------------------------------------------------------------ answers (the full pipeline)

SEARCH_DEPTH = 10  # chunks retrieved per question for the retrieval metrics of an answer run
# Settings that do not change answers, left out of a run's identity (so moving the cache keeps resuming).
_NOT_CONFIG = {"api_key", "home", "corpus_dir", "index_dir", "cache_dir", "threads", "embed_batch", "hub", "max_question_chars",
               # where and how vectors are computed: a different embedder means another index version,
               # which is part of the identity already
               "ray_address", "embed_url", "embed_model", "embed_runtime"}


# The modules whose code shapes an answer: editing one makes earlier rows stale.
_ANSWER_CODE = ("answer/pipeline", "answer/prompt", "answer/ground", "answer/retrieve", "answer/generate", "text")


def code_version() -> str:
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent.parent  # rag/
    for path in [here / f"{name}.py" for name in _ANSWER_CODE] + sorted((here / "answer" / "verify").glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def run_config(settings: Settings, index_version: str) -> dict:
    """What identifies a run (settings, index version, answering code): rows are reused on resume only
    when this matches."""
    config = {f.name: str(getattr(settings, f.name)) for f in dataclasses.fields(settings) if f.name not in _NOT_CONFIG}
    return config | {"index_version": index_version, "code": code_version()}


def _config_key(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


def parse_overrides(spec: str) -> dict:
    """"retriever=hybrid,top_k=6" -> {"retriever": "hybrid", "top_k": 6}: Settings fields, typed as Settings types them."""
    names = {f.name for f in dataclasses.fields(Settings)}
    out = {}
    for pair in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in names:
            raise ValueError(f"bad config {pair!r} in {spec!r}: expected key=value with a key among {sorted(names)}")
        out[key] = getattr(load_settings(env={f"RAG_{key.upper()}": value.strip()}), key)  # same parsing as RAG_* vars
    return out


def _read_rows(path: Path, key: str) -> dict[tuple[str, str], dict]:
    """Finished rows of this configuration, by (id, question); a torn last line (killed mid-write) is skipped."""
    done = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row.get("config") == key and not row.get("error"):
                done[(row["id"], row["question"])] = row
    return done


class _Recording:
    """Wraps the generator to keep the prompt and the raw reply, with its token probabilities where the
    backend gives them: what the verifier worked from (eval/replay.py replays them)."""

    def __init__(self, gen):
        self.gen, self.name = gen, gen.name
        self.prompt, self.output, self.pieces = None, "", []

    def stream(self, messages, **kw):
        self.prompt, self.output, self.pieces = messages[-1]["content"], "", []
        for piece in self.gen.stream(messages, **kw):
            self.output += piece
            self.pieces.append([str(piece), [round(p, 4) for p in getattr(piece, "probs", ())]])
            yield piece


def given_hits(index, article_ids: list[str]) -> list[Hit]:
    """Every chunk of the gold articles, in article order: the paragraph a reading-comprehension
    question is asked about, handed to the answer step without retrieval."""
    hits = []
    for aid in article_ids:
        article = index.articles.get(aid)
        hits += [Hit(c, article, 1.0) for c in index.chunks if c.article_id == aid] if article else []
    return hits


def _ask(pipeline, recording: _Recording, item: GoldItem, key: str, given_context: bool = False) -> dict:
    row = {"id": item.id, "question": item.question, "type": item.type, "answerable": item.answerable,
           "gold_answers": item.answers, "gold_article_ids": item.article_ids, "config": key,
           "group": item.group, "split": item.split}
    recording.prompt, recording.output, recording.pieces = None, "", []
    try:
        answer = pipeline.ask(item.question, passages=given_hits(pipeline.index, item.article_ids) if given_context else None)
    except InvalidQuestion as e:  # a bad gold question is reported, not fatal
        return row | {"error": str(e)}
    hits = [] if given_context else pipeline.search(item.question, k=SEARCH_DEPTH)  # retrieval metrics: not in RC
    return row | {
        "answer": answer.text, "abstained": answer.abstained, "model": answer.model, "timings": answer.timings,
        "reading": answer.reading, "rejections": answer.rejections,
        "citations": [c.to_dict() for c in answer.citations],
        "retrieved": [h.chunk.article_id for h in hits], "retrieved_chunks": [h.chunk.id for h in hits],
        "raw_output": recording.output, "prompt": recording.prompt,  # None: the gate answered, the model was not asked
    } | ({"raw_pieces": recording.pieces} if any(p for _, p in recording.pieces) else {})


def verdicts(item: GoldItem, row: dict, chunk_text: dict[str, str], top_k: int, similarity) -> dict:
    """Score one row against its gold item."""
    answered = not row["abstained"]
    pred = row["answer"] if answered else ""  # an abstention's "closest articles" titles must not score
    v: dict = {}
    for fold, sfx in ((False, ""), (True, "_fold")):
        for name, fn in (("em", metrics.exact_match), ("f1", metrics.token_f1), ("contains", metrics.contains_gold)):
            v[name + sfx] = fn(pred, item.answers, fold) if item.answerable else None
    yes_no = metrics.yes_no(item.answers[0]) if item.answerable and item.answers else None
    extra = metrics.extra_candidates(item.question, pred, item.answers) if item.answerable and yes_no is None else []
    if not item.answerable:
        correct = row["abstained"]
    elif yes_no is not None:  # "Có"/"Không" gold: the answer's first word decides ("có" occurs everywhere)
        correct = answered and metrics.yes_no(pred) == yes_no
    else:  # the gold answer, and no other candidate of the kind asked for beside it
        correct = bool(v["contains_fold"]) and not extra
    # as in the pipeline's verifier: cross-lingual similarity only for answers to non-Vietnamese questions
    similarity = similarity if not ground.is_vietnamese(item.question) else None
    sentences = metrics.citation_verdicts(pred, {c["marker"]: chunk_text.get(c["chunk_id"], "") for c in row["citations"]}, similarity)
    cited = " ".join(chunk_text.get(c["chunk_id"], "") for c in row["citations"])
    context = " ".join(chunk_text.get(c, "") for c in row["retrieved_chunks"][:top_k])
    gold_answer = item.answerable and answered
    return v | {
        "correct": bool(correct),
        "yes_no": yes_no,
        "extra_candidates": extra,
        "citations": sum(len(s["supported"]) + len(s["unsupported"]) for s in sentences),
        "citations_supported": sum(len(s["supported"]) for s in sentences),
        "sentences": len(sentences),
        "sentences_supported": sum(bool(s["supported"]) for s in sentences),
        "unsupported_sentences": [s["sentence"] for s in sentences if s["unsupported"] or not s["supported"]],
        "gold_cited": bool({c["article_id"] for c in row["citations"]} & set(item.article_ids)) if gold_answer else None,
        "cited_passage_has_gold": bool(metrics.contains_gold(cited, item.answers, True)) if gold_answer else None,
        "answer_in_context": bool(metrics.contains_gold(context, item.answers, True)) if item.answerable else None,
    }


def _similarity(pipeline):
    """Claim/passage cosine with the pipeline's embedder, as its verifier uses for non-Vietnamese answers."""

    @lru_cache(maxsize=4096)
    def sim(claim: str, passage: str) -> float:
        q = pipeline.embedder.embed_queries([claim])[0]
        d = pipeline.embedder.embed_documents([passage], [""])[0]
        return float(np.dot(q, d))

    return sim


def answers(
    gold: GoldSet,
    settings: Settings,
    report_dir: Path,
    *,
    limit: int | None = None,
    embedder=None,
    generator=None,
    progress: bool = True,
    log=print,
    given_context: bool = False,
) -> dict:
    """Ask every gold question through the pipeline and score answers, citations, abstention, retrieval
    and latency. Rows go to report_dir/rows.jsonl as they finish; rows there with the same configuration
    are reused. Writes report.json and report.md; returns the report. A CSV set is answered from its own
    corpus (indexed under the cache); `embedder`/`generator` objects stand in for the configured models.
    `given_context`: each question is answered from its gold articles' text, without retrieval
    (reading comprehension, the setting published scores use)."""
    from tqdm import tqdm

    from rag.answer.generate import make_generator
    from rag.answer.pipeline import Pipeline

    items = gold.items[:limit] if limit else gold.items
    if gold.corpus is not None:
        embedder = embedder or load_embedder(settings)
        if given_context:  # only the asked paragraphs are needed, and no vectors: nothing is searched
            wanted = {a for it in items for a in it.article_ids}
            gold = dataclasses.replace(gold, corpus=[a for a in gold.corpus if a.id in wanted])
        settings = ensure_corpus_index(gold, settings, embedder, progress=progress, log=log, lexical_only=given_context)
    recording = _Recording(generator or make_generator(settings))
    pipeline = Pipeline(settings, embedder=embedder, generator=recording)
    config = run_config(settings, pipeline.index.version) | ({"given_context": "1"} if given_context else {})
    key = _config_key(config)
    chunk_text = {c.id: c.text for c in pipeline.index.chunks}
    similarity = _similarity(pipeline)
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    rows_path = report_dir / "rows.jsonl"
    done = _read_rows(rows_path, key)
    rows, reused, correct = [], 0, 0
    with rows_path.open("a+", encoding="utf-8") as out, tqdm(items, desc="answering", unit="q", disable=not progress, file=sys.stderr) as bar:
        out.seek(0, 2)
        if out.tell():  # a torn last line must not swallow the next row
            out.seek(out.tell() - 1)
            if out.read(1) != "\n":
                out.write("\n")
        for item in bar:
            row = done.get((item.id, item.question))
            fresh = row is None
            row = _ask(pipeline, recording, item, key, given_context) if fresh else row
            row |= {"group": item.group, "split": item.split}  # the gold set's, also on reused rows
            if not row.get("error"):  # scored again on reuse, so a corrected gold set counts
                row = row | {"verdicts": verdicts(item, row, chunk_text, settings.top_k, similarity)}
                correct += row["verdicts"]["correct"]
            if fresh:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                out.flush()
            reused += not fresh
            rows.append(row)
            bar.set_postfix(correct=f"{correct}/{len(rows)}")
    if reused:
        log(f"reused {reused} finished row(s) from {rows_path}")
    report = {
        "gold": gold.name,
        "config": config,
        "skipped_gold_rows": gold.skipped,
        "summary": metrics.answer_summary(rows),
        "splits": {split: metrics.answer_summary([r for r in rows if r.get("split") == split])
                   for split in sorted({r.get("split") for r in rows} - {"", None})},
        "rows": [{k: r.get(k) for k in ("id", "type", "split", "group", "answerable", "question", "gold_answers", "answer", "abstained",
                                         "raw_output", "citations", "timings", "verdicts", "error")} for r in rows],
    }
    (report_dir / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    (report_dir / "report.md").write_text(markdown_report(report), encoding="utf-8")
    return report


def compare(gold: GoldSet, settings: Settings, configs: dict[str, dict], report_dir: Path, *, limit=None, progress=True, log=print, given_context=False) -> dict[str, dict]:
    """Run each configuration (label -> Settings overrides, see parse_overrides) on the same gold set, each
    in its own subfolder of report_dir, so each resumes on its own; returns label -> summary."""
    results = {}
    for label, over in configs.items():
        log(f"config {label}")
        sub = Path(report_dir) / (re.sub(r"[^\w.-]+", "_", label).strip("_") or "default")
        results[label] = answers(gold, settings.replace(**over), sub, limit=limit, progress=progress, log=log, given_context=given_context)["summary"]
    return results


# ------------------------------------------------------------------ tables

_MAIN = [
    ("wrong_but_cited.of_answerable", "WRONG BUT CITED, % of answerable questions"),
    ("wrong_but_cited.of_answers", "WRONG BUT CITED, % of answers given"),
    ("wrong_but_cited.count", "wrong but cited (count; unanswerable ones answered included)"),
    ("correct_answerable", "answerable answered correctly (gold, and no other candidate)"),
    ("wrongly_refused", "answerable but refused"),
    ("abstained_unanswerable", "unanswerable refused"),
    ("yes_no_correct", "yes/no questions correct"),
    ("consistency", "same verdict across phrasings"),
    ("contains_gold_with_other_candidates", "gold among other candidates (counted wrong)"),
    ("squad_v2.em", "SQuAD-v2 EM (refusing an unanswerable = exact)"),
    ("squad_v2.f1", "SQuAD-v2 F1"),
    ("accuracy", "accuracy (answerable: correct; unanswerable: abstained)"),
    ("answer.contains_fold", "answer contains gold (no diacritics)"),
    ("answer.contains", "answer contains gold"),
    ("answer.f1_fold", "token F1 (no diacritics)"),
    ("answer.em_fold", "exact match (no diacritics)"),
    ("answered_accuracy", "correct when it answered"),
    ("citation.precision", "citation precision"),
    ("citation.recall", "citation recall (gold article cited)"),
    ("citation.supported_sentence_rate", "supported sentences"),
    ("citation.cited_passage_has_gold", "cited passage contains the gold answer"),
    ("abstention.precision", "abstention precision"),
    ("abstention.recall", "abstention recall"),
    ("abstention.wrong_abstention_rate", "wrong abstentions (answerable)"),
    ("retrieval.Hit@1", "gold article in top-1 chunk"),
    ("retrieval.Hit@3", "gold article in top-3 chunks"),
    ("retrieval.Hit@5", "gold article in top-5 chunks"),
    ("retrieval.Hit@10", "gold article in top-10 chunks"),
    ("retrieval.MRR@10", "MRR@10"),
    ("retrieval.answer_in_context", "gold answer in the top-k chunks"),
    ("latency_ms.retrieve_p50", "retrieve p50 (ms)"),
    ("latency_ms.first_token_p50", "first token p50 (ms)"),
    ("latency_ms.first_token_p95", "first token p95 (ms)"),
    ("latency_ms.total_p50", "total p50 (ms)"),
    ("latency_ms.total_p95", "total p95 (ms)"),
    ("latency_ms.est_tokens_per_s_from_output_chars_p50", "tokens/s p50, estimated from output length"),
]


def _get(summary: dict, path: str):
    for part in path.split("."):
        summary = summary.get(part) if isinstance(summary, dict) else None
    return summary


def _cell(value) -> str:
    if value is None:
        return "–"
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def summary_table(summaries: dict[str, dict]) -> str:
    """Markdown: one row per main metric, one column per run (percentages unless the name says ms)."""
    lines = ["| metric | " + " | ".join(_cell(label) for label in summaries) + " |", "|---|" + "---:|" * len(summaries)]
    counts = " | ".join(f"{s['questions']} ({s['answerable']} answerable, {s['errors']} errors)" for s in summaries.values())
    lines.append(f"| questions | {counts} |")
    for path, label in _MAIN:
        if any(_get(s, path) is not None for s in summaries.values()):
            lines.append(f"| {label} | " + " | ".join(_cell(_get(s, path)) for s in summaries.values()) + " |")
    return "\n".join(lines) + "\n"


def _clip(text: str, n: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _outcome(row: dict) -> str:
    if row.get("error"):
        return "error"
    v = row["verdicts"]
    if v["correct"]:
        return "ok"
    if not row["answerable"]:
        return "answered (should abstain)"
    if not row["abstained"]:
        return "wrong answer"
    return "abstained at the gate" if "first_token" not in row["timings"] else "abstained after generating"


def markdown_report(report: dict) -> str:
    """Summary, per-type and per-question tables, failures first, for a person to read."""
    s = report["summary"]
    cfg = report["config"]
    out = [f"# Answer evaluation: {report['gold']}\n",
           f"generator `{cfg.get('generator')}` ({cfg.get('backend')}), retriever `{cfg.get('retriever')}`, "
           f"top_k {cfg.get('top_k')}, index `{cfg.get('index_version')}`. Percentages; latencies are wall-clock ms "
           "on the machine that ran it, the first question's including model loading.\n",
           summary_table({"all": s} | {k: v for k, v in report.get("splits", {}).items()}),
           "\n| type | n | correct % |\n|---|---:|---:|"]
    out += [f"| {t} | {b['n']} | {_cell(b['correct'])} |" for t, b in s["by_type"].items()]
    head = "| id | type | outcome | question | gold | answer | cited | gold in ctx | total ms |\n|---|---|---|---|---|---|---|---|---:|"
    rows = report["rows"]
    for title, part in (("Failures", [r for r in rows if _outcome(r) != "ok"]), ("Passed", [r for r in rows if _outcome(r) == "ok"])):
        out += [f"\n## {title} ({len(part)})\n", head]
        for r in part:
            v = r.get("verdicts") or {}
            cited = ", ".join(dict.fromkeys(c["chunk_id"] for c in r.get("citations") or []))
            out.append("| " + " | ".join(_cell(x) for x in (
                r["id"], r["type"], _outcome(r), _clip(r["question"], 90), _clip(" / ".join(r["gold_answers"]), 60),
                _clip(r.get("error") or (f"(model said: {r['raw_output']})" if r.get("abstained") and r.get("raw_output") else r.get("answer")), 160),
                cited or "–",
                {True: "yes", False: "no", None: "–"}[v.get("answer_in_context")], (r.get("timings") or {}).get("total"),
            )) + " |")
    return "\n".join(out) + "\n"
