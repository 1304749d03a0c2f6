"""Metric arithmetic, kept free of I/O so it can be checked by hand in tests."""
from __future__ import annotations

import math
import re
from collections import Counter

from rag.answer import ground
from rag.answer.verify import entities, question as vq, spans
from rag.text import fold_diacritics, nfc, split_sentences, syllables


def first_gold_rank(ranked_ids: list[str], gold: set[str]) -> int | None:
    """1-based rank of the first gold id, or None."""
    for r, doc in enumerate(ranked_ids, start=1):
        if doc in gold:
            return r
    return None


def retrieval_scores(ranked: list[list[str]], golds: list[set[str]]) -> dict[str, float]:
    """P@1, R@k, MRR@10, nDCG@10 in percent. Recall counts gold documents found among all gold ones."""
    n = len(ranked)
    if n == 0:
        return {}
    out = {"P@1": 0.0, "R@3": 0.0, "R@5": 0.0, "R@10": 0.0, "R@20": 0.0, "MRR@10": 0.0, "nDCG@10": 0.0}
    for ids, gold in zip(ranked, golds):
        if not gold:
            continue
        out["P@1"] += bool(ids[:1] and ids[0] in gold)
        for k in (3, 5, 10, 20):
            out[f"R@{k}"] += len(gold & set(ids[:k])) / len(gold)
        r = first_gold_rank(ids[:10], gold)
        out["MRR@10"] += 1.0 / r if r else 0.0
        dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(ids[:10]) if d in gold)
        idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(gold), 10)))
        out["nDCG@10"] += dcg / idcg
    return {k: round(100.0 * v / n, 2) for k, v in out.items()}


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


# ------------------------------------------------------------------ answers
#
# Per-question functions return 0..1; the run summaries below return percentages (like retrieval_scores),
# or None where nothing was there to measure.

_MARKERS = re.compile(r"\[\d+(?:\s*[,;]\s*\d+)*\]")  # the pipeline's citation markers, never part of an answer
_NON_WORD = re.compile(r"[^\w\s]|_")
ALL_OF = "&&"  # an alias "A && B" needs every part: list and multi-article answers


def normalize_answer(s: str, fold: bool = False) -> str:
    """NFC, lowercase, citation markers and punctuation removed, whitespace collapsed; `fold` also drops
    diacritics (đ -> d), so "Lâm Đình Thắng" and "lam dinh thang" compare equal."""
    s = nfc(_MARKERS.sub(" ", s)).lower()
    if fold:
        s = fold_diacritics(s)
    return " ".join(_NON_WORD.sub(" ", s).split())


def _alias_parts(alias: str, fold: bool) -> list[str]:
    return [p for p in (normalize_answer(part, fold) for part in alias.split(ALL_OF)) if p]


def exact_match(pred: str, golds: list[str], fold: bool = False) -> float:
    p = normalize_answer(pred, fold)
    return float(any(p == " ".join(_alias_parts(g, fold)) for g in golds))


def token_f1(pred: str, golds: list[str], fold: bool = False) -> float:
    """SQuAD-style F1 over syllables, the best over the aliases."""
    p = normalize_answer(pred, fold).split()
    best = 0.0
    for g in golds:
        gt = " ".join(_alias_parts(g, fold)).split()
        same = sum((Counter(p) & Counter(gt)).values())
        if same:
            precision, recall = same / len(p), same / len(gt)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains_gold(pred: str, golds: list[str], fold: bool = False) -> float:
    """1.0 when some alias occurs in the prediction as whole syllables (every part of an "A && B" alias)."""
    p = f" {normalize_answer(pred, fold)} "
    return float(any((parts := _alias_parts(g, fold)) and all(f" {x} " in p for x in parts) for g in golds))


_YES = {"có", "đúng", "yes", "true", "phải"}
_NO = {"không", "sai", "no", "false", "chưa"}


def yes_no(s: str) -> bool | None:
    """True / False for a text that opens with a yes / no word ("Có. …", "Sai", "No, …"), else None."""
    first = normalize_answer(s).split()[:1]
    return True if first and first[0] in _YES else False if first and first[0] in _NO else None


def extra_candidates(question: str, pred: str, golds: list[str]) -> list[str]:
    """What the answer names, besides the gold answer, of the kind a single-answer question asks for:
    the other years of a pasted sentence for "which year", other people for "who". An answer that
    contains the gold string among other candidates does not say which one it is."""
    expected = vq.classify(question)
    pred = _MARKERS.sub(" ", pred)
    if not expected.typed or expected.plural or not pred.strip():
        return []
    gold_text = " ".join(golds)
    if expected.kind == vq.AGENT:
        known = set(syllables(fold_diacritics(f"{gold_text} {question}")))
        return [n for n in entities.people(pred) if not set(syllables(fold_diacritics(n))) <= known]
    if expected.kind == vq.PLACE:
        return []
    seen = {spans.candidate_key(c[2]) for c in spans.candidates(expected.kind, f"{gold_text} ; {question}")}
    seen |= {spans.candidate_key(g) for g in golds}
    # a fuller form of a known candidate ("27/11/2025" for "27/11") names the same thing
    return sorted({c[2] for c in spans.candidates(expected.kind, pred)
                   if not any(k in spans.candidate_key(c[2]) for k in seen)})


def citation_verdicts(answer: str, passages: dict[int, str], similarity=None) -> list[dict]:
    """ALCE-style check of each answer sentence against the passages it cites ([n] -> passage text).
    A sentence with neither a marker nor a checkable claim (a connective) is not counted. `similarity`
    (claim, passage) -> cosine stands in for word overlap when the claim is not Vietnamese, as in the pipeline."""
    out = []
    for a, b in split_sentences(answer):
        sentence = answer[a:b]
        claim = ground.MARKER.sub("", sentence).strip()
        markers = list(dict.fromkeys(ground.parse_markers(sentence)))
        if not markers and not ground.is_factual(claim):
            continue
        supported, unsupported = [], []
        for m in markers:
            passage = passages.get(m)
            sim = similarity(claim, passage) if similarity and passage and not ground.is_vietnamese(claim) else None
            (supported if passage and ground.check(claim, passage, sim).ok else unsupported).append(m)
        out.append({"sentence": claim, "supported": supported, "unsupported": unsupported})
    return out


def abstention_scores(abstained: list[bool], answerable: list[bool]) -> dict[str, float | None]:
    """Precision and recall of abstaining on the unanswerable questions; wrong abstentions on answerable ones."""
    right = sum(a and not ok for a, ok in zip(abstained, answerable))
    wrong = sum(a and ok for a, ok in zip(abstained, answerable))
    return {
        "precision": _pct(right, right + wrong),
        "recall": _pct(right, answerable.count(False)),
        "wrong_abstention_rate": _pct(wrong, answerable.count(True)),
    }


def hit_scores(ranked: list[list[str]], golds: list[set[str]], ks=(1, 3, 5, 10)) -> dict[str, float]:
    """Hit@k (some gold id among the first k, duplicates allowed: one id per retrieved chunk) and MRR@10."""
    pairs = [(ids, gold) for ids, gold in zip(ranked, golds) if gold]
    if not pairs:
        return {}
    out = {f"Hit@{k}": _pct(sum(bool(gold & set(ids[:k])) for ids, gold in pairs), len(pairs)) for k in ks}
    rr = [1.0 / r if (r := first_gold_rank(ids[:10], gold)) else 0.0 for ids, gold in pairs]
    out["MRR@10"] = round(100.0 * sum(rr) / len(pairs), 2)
    return out


# Qwen2.5's tokenizer averages ~3.5 characters per token on the seed articles (measured: 3.46 and 3.61).
CHARS_PER_TOKEN_VI = 3.5


def latency_summary(timings: list[dict], outputs: list[str] | None = None) -> dict[str, float]:
    """p50/p95 of retrieve, first_token and total (ms), over the timings that have them; with `outputs`
    (the model's raw replies), an estimate of decoding speed, as the timings count no tokens: output
    characters / CHARS_PER_TOKEN_VI over the generation time after the first token."""
    out = {}
    for key in ("retrieve", "first_token", "total"):
        vals = [t[key] for t in timings if key in t]
        if vals:
            out[f"{key}_p50"], out[f"{key}_p95"] = percentile(vals, 50), percentile(vals, 95)
    if outputs is not None:
        rates = []
        for t, a in zip(timings, outputs):
            if "generate" not in t or "first_token" not in t:
                continue
            prefill = t["first_token"] - t.get("retrieve", 0.0) - t.get("rewrite", 0.0)  # ms from stream start
            decode_s = (t["generate"] - prefill) / 1000
            if decode_s > 0 and a:
                rates.append(len(a) / CHARS_PER_TOKEN_VI / decode_s)
        if rates:
            out["est_tokens_per_s_from_output_chars_p50"] = round(percentile(rates, 50), 1)
    return out


def _pct(num: float, den: float) -> float | None:
    return round(100.0 * num / den, 2) if den else None


def _mean_pct(values: list) -> float | None:
    return _pct(sum(values), len(values))


def consistency(rows: list[dict]) -> float | None:
    """Share of questions asked in several phrasings (rows sharing a "group") that got the same verdict,
    right or wrong, in every phrasing."""
    groups: dict[str, set[bool]] = {}
    for r in rows:
        if r.get("group"):
            groups.setdefault(r["group"], set()).add(bool(r["verdicts"]["correct"]))
    counted = [verdicts for g, verdicts in groups.items() if sum(r.get("group") == g for r in rows) > 1]
    return _pct(sum(len(v) == 1 for v in counted), len(counted))


def answer_summary(rows: list[dict]) -> dict:
    """Aggregate per-question rows of an answer run (rag.eval.evaluate.answers writes them). Uses each row's
    answerable, abstained, type, raw_output, timings, retrieved article ids, gold_article_ids and verdicts
    (em/f1/contains[_fold], correct, citations, citations_supported, sentences, sentences_supported,
    gold_cited, cited_passage_has_gold, answer_in_context); rows with an "error" are only counted."""
    ok = [r for r in rows if not r.get("error")]
    answerable = [r for r in ok if r["answerable"]]
    answered = [r for r in answerable if not r["abstained"]]
    spoke = [r for r in ok if not r["abstained"]]  # every non-abstention, answerable or not
    v = lambda r: r["verdicts"]  # noqa: E731
    wrong = [r for r in spoke if not v(r)["correct"]]  # shown as an answer, with its citations, and wrong
    yes_no_rows = [r for r in answerable if v(r).get("yes_no") is not None]
    by_type: dict[str, list[bool]] = {}
    for r in ok:
        by_type.setdefault(r.get("type") or "-", []).append(v(r)["correct"])
    return {
        "questions": len(rows),
        "errors": len(rows) - len(ok),
        "answerable": len(answerable),
        "unanswerable": len(ok) - len(answerable),
        "wrong_but_cited": {
            "count": len(wrong),
            "of_answerable": _pct(sum(r["answerable"] for r in wrong), len(answerable)),
            "of_answers": _pct(len(wrong), len(spoke)),
            "answered_unanswerable": sum(not r["answerable"] for r in wrong),
        },
        "correct_answerable": _mean_pct([v(r)["correct"] for r in answerable]),
        "wrongly_refused": _pct(sum(r["abstained"] for r in answerable), len(answerable)),
        "abstained_unanswerable": _pct(sum(r["abstained"] for r in ok if not r["answerable"]), len(ok) - len(answerable)),
        "contains_gold_with_other_candidates": sum(bool(v(r).get("extra_candidates")) and bool(v(r)["contains_fold"]) for r in answered),
        "yes_no_correct": _mean_pct([v(r)["correct"] for r in yes_no_rows]),
        "consistency": consistency(ok),
        "squad_v2": {
            "em": _mean_pct([v(r)["em_fold"] if r["answerable"] else float(r["abstained"]) for r in ok]),
            "f1": _mean_pct([v(r)["f1_fold"] if r["answerable"] else float(r["abstained"]) for r in ok]),
        },
        "accuracy": _mean_pct([v(r)["correct"] for r in ok]),
        "answer": {
            key: _mean_pct([v(r)[key] for r in answerable])
            for key in ("contains_fold", "contains", "em_fold", "em", "f1_fold", "f1")
        },
        "answered_accuracy": _mean_pct([v(r)["contains_fold"] for r in answered]),
        "citation": {
            "precision": _pct(sum(v(r)["citations_supported"] for r in spoke), sum(v(r)["citations"] for r in spoke)),
            "recall": _mean_pct([v(r)["gold_cited"] for r in answered]),
            "supported_sentence_rate": _mean_pct(
                [v(r)["sentences_supported"] / v(r)["sentences"] for r in spoke if v(r)["sentences"]]
            ),
            "cited_passage_has_gold": _mean_pct([v(r)["cited_passage_has_gold"] for r in answered]),
        },
        "abstention": abstention_scores([r["abstained"] for r in ok], [r["answerable"] for r in ok]),
        "retrieval": hit_scores([r["retrieved"] for r in answerable], [set(r["gold_article_ids"]) for r in answerable])
        | {"answer_in_context": _mean_pct([v(r)["answer_in_context"] for r in answerable])},
        "latency_ms": latency_summary([r["timings"] for r in ok], [r.get("raw_output") or "" for r in ok]),
        "by_type": {t: {"n": len(c), "correct": _mean_pct(c)} for t, c in sorted(by_type.items())},
    }
