"""An answer taken from the evidence itself: for when / how-many questions, when the model refuses or its
answer fails the checks, the candidate of a sentence that holds nearly all of the question's terms and
has one clear winner (a refusal beats a guess); and the sentence of the evidence that is about the question."""
from __future__ import annotations

import math

from rag import text
from rag.answer import ground
from rag.answer.verify.question import DATE, NUMBER, PLACE, TIME, YEAR, Expected, terms
from rag.answer.verify.spans import CLEAR_MARGIN, Span, anchor_scores, birth_dates, candidate_key, candidates, counts, with_unit

QUESTION_SENTENCE_COVERAGE = 0.6  # share of the question's terms a sentence needs to be "the sentence about it"
TOPIC_SHARE = 0.25


def question_sentence(expected: Expected, evidence: str) -> str | None:
    """The one sentence of the evidence that is clearly about the question: its share of the question's
    distinctive terms, each weighted by how few sentences hold it (the topic is everywhere, "phiên toàn
    thể" in one sentence), is at least QUESTION_SENTENCE_COVERAGE and CLEAR_MARGIN times the next
    sentence's; or None."""
    sentences = [evidence[a:b] for a, b in text.split_sentences(evidence)]
    held = [expected.focus & terms(x, expected.folded) for x in sentences]
    df = {t: sum(t in h for h in held) for t in expected.focus}
    # a term in more than TOPIC_SHARE of the sentences is the article's topic, not what the question singles out
    weight = {t: math.log(1 + len(sentences) / n) for t, n in df.items() if 0 < n <= TOPIC_SHARE * len(sentences)}
    total = sum(weight.values())
    if not total:
        return None
    scored = sorted(((sum(weight.get(t, 0.0) for t in h) / total, x) for h, x in zip(held, sentences)), reverse=True)
    if scored[0][0] < QUESTION_SENTENCE_COVERAGE or (len(scored) > 1 and scored[0][0] < CLEAR_MARGIN * scored[1][0]):
        return None
    return scored[0][1]


def extract(expected: Expected, question: str, passage: str, min_coverage: float = 0.85) -> tuple[Span, str] | None:
    """(candidate span in the sentence, evidence sentence) from a passage, for when / how-many questions, or None.

    Only from a sentence (with the one before it, which often names the subject) holding at least
    `min_coverage` of the question's terms, whose names and numbers all occur in the passage, and
    only when one candidate is clearly the one tied to the question's terms."""
    if expected.kind not in (YEAR, DATE, TIME, NUMBER) or expected.plural or not expected.focus:
        return None
    if ground.check_mentions(question, passage):
        return None
    asked = {candidate_key(c[2]) for c in candidates(expected.kind, question)}
    spans = text.split_sentences(passage)
    best = None
    for i, (a, b) in enumerate(spans):
        sentence = passage[a:b]
        around = terms(passage[spans[i - 1][0] : b] if i else sentence, expected.folded)
        coverage = len(expected.focus & around) / len(expected.focus)
        born = birth_dates(sentence) if "sinh" not in question.lower() else set()
        cands = [c for c in candidates(expected.kind, sentence) if candidate_key(c[2]) not in asked | born
                 and (not expected.unit or counts(expected.unit, sentence[c[1]:]))]  # "36 tuổi" is no count of người
        if coverage < min_coverage or not cands:
            continue
        scores = anchor_scores(expected, sentence, cands)
        ranked = sorted(zip(scores, range(len(cands))), reverse=True)
        if ranked[0][0] <= 0 or (len(ranked) > 1 and ranked[0][0] < CLEAR_MARGIN * ranked[1][0]):
            continue
        key = (coverage, ranked[0][0])
        if best is None or key > best[0]:
            best = (key, cands[ranked[0][1]], sentence)
    return (best[1], best[2]) if best else None


def phrase(expected: Expected, span: tuple[int, int, str], sentence: str, lang: str) -> str:
    """The extracted candidate as a short answer: "Năm 2023", "Ngày 3-12", "5 lần", "In 2023", "Tại …"."""
    value = with_unit(sentence, span, unit=expected.unit) if expected.kind == NUMBER else span[2]
    if expected.kind == PLACE:
        return f"Tại {value}" if lang == "vi" else f"At {value}"
    if expected.kind == YEAR and not value.lower().startswith("năm"):
        return f"Năm {value}" if lang == "vi" else f"In {value}"
    if expected.kind == DATE and not value.lower().startswith("ngày"):
        return f"Ngày {value}" if lang == "vi" else f"On {value}"
    return value[:1].upper() + value[1:]
