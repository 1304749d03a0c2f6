"""Candidate answers in a text: the spans that are years, dates, times or numbers, their comparison form,
and how strongly each is tied to the question's own terms in its sentence (distance in words, a clause
boundary counting as far)."""
from __future__ import annotations

import re
from typing import NamedTuple

from rag import text
from rag.answer.verify.lexicon import BIRTH, MONTHS_EN, NUM_WORDS_EN, NUM_WORDS_VI, UNIT_STOP
from rag.answer.verify.question import DATE, NUMBER, TIME, YEAR, Expected, words


class Span(NamedTuple):
    """A candidate answer: where it stands in its text, and its words."""

    start: int
    end: int
    text: str


_YEAR = r"(?:19|20)\d\d"
_DAYMONTH = r"\d{1,2}\s*[/-]\s*\d{1,2}(?:\s*[/-]\s*(?:19|20)\d\d)?"
_DATE_RE = re.compile(
    rf"\b(?:(?:ngày\s+)?{_DAYMONTH}|ngày\s+\d{{1,2}}(?:\s+tháng\s+\d{{1,2}})?(?:\s+năm\s+{_YEAR})?|\d{{1,2}}\s+tháng\s+\d{{1,2}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{MONTHS_EN})|(?:{MONTHS_EN})\s+\d{{1,2}}(?:st|nd|rd|th)?)\b",
    re.I,
)
_YEAR_RE = re.compile(rf"(?<![\d/.,-])\b{_YEAR}\b(?![\d/.,]\d)")
_MONTH_RE = re.compile(rf"\btháng\s+\d{{1,2}}(?:\s*/\s*{_YEAR})?\b|\b(?:{MONTHS_EN})\b", re.I)
_NUMBER_RE = re.compile(
    r"(?:\b(?:top\s*)?\d(?:[\d.,]*\d)?(?:\s*%)?"
    rf"|\b(?:hàng|vài|mấy)\s+(?:chục|trăm|nghìn|ngàn|triệu|tỷ)\b|\b(?:{'|'.join(NUM_WORDS_VI + NUM_WORDS_EN)})\b"
    r"|\bnăm\s+(?=lần|người|năm|tháng|ngày)\b)",
    re.I,
)


def _spans(rx: re.Pattern, s: str) -> list[Span]:
    return [Span(m.start(), m.end(), m.group(0)) for m in rx.finditer(s)]


def candidates(kind: str, s: str) -> list[Span]:
    """The spans of `s` that are answers of this kind (year, date, number, time)."""
    if kind == YEAR:
        return _spans(_YEAR_RE, s)
    if kind == DATE:
        return _spans(_DATE_RE, s)
    if kind == TIME:
        dates = _spans(_DATE_RE, s)
        inside = lambda a, b: any(x <= a and b <= y for x, y, _ in dates)  # noqa: E731
        return sorted(dates + [c for c in _spans(_YEAR_RE, s) + _spans(_MONTH_RE, s) if not inside(c[0], c[1])])
    if kind == NUMBER:
        return [c for c in _spans(_NUMBER_RE, s) if not _YEAR_RE.fullmatch(c[2].strip())] or _spans(_NUMBER_RE, s)
    return []


def with_unit(sentence: str, span: tuple[int, int, str], max_words: int = 2, unit: str = "") -> str:
    """A number with the words that count what it counts: "5" -> "5 lần", "hàng trăm" -> "hàng trăm khách mời";
    up to the unit the question asked about when there is one."""
    out, end = span[2], span[1]
    rest = sentence[end:]
    for words_ in (unit, unit.split()[0] if unit else ""):  # the whole unit asked about, else its head word
        m = re.match(rf"\s*{re.escape(words_)}\b", rest, re.I) if words_ else None
        if m:
            return sentence[span[0] : end + m.end()]
    for m in list(re.finditer(r"\S+", rest))[:max_words]:
        word = m.group(0)
        bare = word.rstrip(",.;:!?…)")
        if not bare.isalpha() or not bare.islower() or bare in UNIT_STOP:
            break
        out = sentence[span[0] : end + m.start() + len(bare)]
        if bare != word:
            break
    return out


def candidate_key(span: str) -> str:
    """Comparison form of a candidate: lower case, no diacritics, separators unified, a leading "ngày" /
    "năm" / "top" dropped ("ngày 2-12" == "2/12", "năm 2023" == "2023", "Top 100" == "100")."""
    key = re.sub(r"\s+", " ", text.fold_diacritics(span.lower()).replace("-", "/").replace(" / ", "/")).strip()
    return re.sub(r"^(?:ngay |nam |top ?)", "", key)


def keys(kind: str, s: str) -> set[str]:
    """The comparison forms of the candidates of this kind in `s`."""
    return {candidate_key(c[2]) for c in candidates(kind, s)}


# ------------------------------------------------------------------ which candidate does the question point to?

_CLAUSE_BREAK = re.compile(r"[;:.!?…()]")
CLAUSE_DISTANCE = 8  # words: crossing a clause boundary counts as this far
CLEAR_MARGIN = 1.5  # the best candidate's tie to the question must beat the next one by this factor
DISTINCTIVE_WEIGHT = 3.0


def _weight(word: str) -> float:
    """Codes and numbers ("top1", "57", "u23") single out one clause; ordinary words are shared more."""
    return DISTINCTIVE_WEIGHT if any(c.isdigit() for c in word) else 1.0


def anchor_scores(expected: Expected, sentence: str, cands: list[tuple[int, int, str]]) -> list[float]:
    """How strongly each candidate is tied to the question's own terms in this sentence: the sum over
    the question's terms found there of weight / (1 + distance in words), a clause boundary adding
    CLAUSE_DISTANCE. Terms inside a candidate do not count (the year asked about is not a clue)."""
    tokens = words(sentence)
    breaks = [0]
    for _, _, t in tokens:
        breaks.append(breaks[-1] + bool(_CLAUSE_BREAK.fullmatch(t)))
    scores = []
    for a, b, _ in cands:
        pos = [i for i, (s, e, _) in enumerate(tokens) if s >= a and e <= b] or [0]
        score = 0.0
        for i, (_, _, w) in enumerate(tokens):
            if (text.fold_diacritics(w) if expected.folded else w) not in expected.focus or i in pos:
                continue
            inside_other = any(x <= tokens[i][0] < y for x, y, _ in cands)
            if inside_other:
                continue
            d = min(abs(i - p) + CLAUSE_DISTANCE * abs(breaks[i + 1] - breaks[p + 1]) for p in pos)
            score += _weight(w) / (1 + d)
        if expected.unit and counts(expected.unit, sentence[b:]):
            score += DISTINCTIVE_WEIGHT  # "5 lần" for "bao nhiêu lần"
        scores.append(score)
    return scores


def counts(unit: str, after: str) -> bool:
    """Does the text after a figure say it counts `unit` ("5 lần", "24 trẻ nhỏ", "hàng chục trẻ")?"""
    return bool(re.match(rf"\W*(?:\w+\s+)?{re.escape(unit.split()[0])}\b", after.lower()))


def birth_dates(evidence: str) -> set[str]:
    """Dates and years the evidence gives as someone's birth ("Võ Mạnh Linh (SN 1990)", "sinh ngày 24/10/1978")."""
    out = set()
    for kind in (DATE, YEAR):
        for a, _, span in candidates(kind, evidence):
            if BIRTH.search(evidence[max(0, a - 12) : a]):
                out.add(candidate_key(span))
    return out
