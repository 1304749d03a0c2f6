"""What a question asks for: its kind (who -> an agent, where -> a place, when / which year / which day ->
a time, a year, a date, how many -> a number, yes/no), whether it wants several answers, what a how-many
question counts, and its own terms (what the answer must sit next to in its source)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from rag import text
from rag.answer import ground
from rag.answer.verify.lexicon import ARTICLE, COUNT_NOUNS, PUBLISHED, QUESTION_WORDS, STOPWORDS, UNIT_STOP

AGENT, PLACE, TIME, YEAR, DATE, NUMBER, YESNO, ANY = "agent", "place", "time", "year", "date", "number", "yesno", "any"
KINDS = (AGENT, PLACE, TIME, YEAR, DATE, NUMBER, YESNO, ANY)
TYPED = frozenset({AGENT, PLACE, TIME, YEAR, DATE, NUMBER})
TEMPORAL = frozenset({YEAR, DATE, TIME})
COUNTED = frozenset({YEAR, DATE, TIME, NUMBER})  # kinds whose answers are candidates in the text (spans.candidates)

# Checked in this order, on the lower-cased question; the first match decides.
KIND_PATTERNS = [
    (YEAR, r"\bnăm (nào|bao nhiêu|mấy)\b|\b(which|what) year\b|\bin what year\b"),
    (DATE, r"\b(ngày|hôm) (nào|bao nhiêu|mấy)\b|\b(which|what) (date|day)\b|\bon what day\b"),
    (TIME, r"\b(khi nào|bao giờ|lúc nào|hồi nào|thời điểm nào|thời gian nào|tháng nào|tháng mấy|dịp nào)\b|^when\b|\bwhen\b"),
    (NUMBER, r"\b(bao nhiêu|mấy|số lượng)\b|\bhow (many|much)\b|\bwhat (number|percentage|amount)\b"),
    (PLACE, r"\b(ở đâu|tại đâu|đâu|nơi nào|địa điểm nào|chỗ nào|tỉnh nào|thành phố nào|xã nào|phường nào|huyện nào|quận nào|thị trấn nào|thị xã nào|quốc gia nào|nước nào|địa phương nào)\b"
            r"|\bwhere\b|\b(which|what) (city|country|province|place|venue)\b"),
    (AGENT, r"\b(ai|người nào|ông nào|bà nào|vị nào|cơ quan nào|đơn vị nào|tổ chức nào|công ty nào|doanh nghiệp nào|"
            r"(?:thẩm phán|luật sư|bị cáo|bị can|nghi phạm|kiểm sát viên|bác sĩ|cầu thủ|ca sĩ) nào)\b"
            r"|\bwho(m|se)?\b|\b(which|what) (organi[sz]ation|agency|company|body|department)\b"),
]
_KIND_RES = [(k, re.compile(p)) for k, p in KIND_PATTERNS]
_KIND_RES_FOLDED = [(k, re.compile(text.fold_diacritics(p))) for k, p in KIND_PATTERNS]
_WH = re.compile(r"\b(ai|gì|nào|đâu|bao nhiêu|mấy|sao|thế nào|bao giờ)\b|\b(who|what|where|when|which|how|why)\b")
_YESNO_VI = re.compile(
    r"^(có phải|phải chăng|liệu)\b|\b(có phải|đúng hay sai|đúng không|phải không|hay không|có đúng)\b"
    r"|\b(không|chưa)\s*[?]*\s*$"
)
# without diacritics "dau" (đâu / đầu), "may" (mấy / máy) and "sao" are as often other words: not wh-words there
_WH_FOLDED = re.compile(r"\b(ai|gi|nao|bao nhieu|the nao|bao gio)\b|\b(who|what|where|when|which|how|why)\b")
_YESNO_VI_FOLDED = re.compile(text.fold_diacritics(_YESNO_VI.pattern))
_YESNO_EN = re.compile(r"^(is|are|was|were|do|does|did|has|have|had|can|could|will|would|should)\b")
_PLURAL = re.compile(r"\b(những|các)\s+(\w+\s+){0,2}nào\b|\bnhững ai\b|\b(which|what) (years|dates|countries|cities|people)\b"
                     r"|\bhai (ngày|năm)\b|\bwhich two\b|\b(bao nhiêu|mấy)\b.*\b(bao nhiêu|mấy)\b")


@dataclass(frozen=True)
class Expected:
    """What the question asks for: its kind, whether several answers are wanted, and its own terms."""

    kind: str
    plural: bool
    focus: frozenset[str]  # the question's content syllables and numbers: what the answer must sit next to
    unit: str = ""  # what a how-many question counts ("lần"): a number followed by it is the one asked for
    folded: bool = False  # typed without diacritics: its terms are compared with the text's, diacritics folded

    @property
    def typed(self) -> bool:
        return self.kind in TYPED


_TOKEN = re.compile(r"[^\W\d_]+|\d+|[;:.!?…()]")
_FOLDED_STOP = {text.fold_diacritics(w) for w in STOPWORDS | QUESTION_WORDS} | {"vay", "nhi", "the"}


def words(s: str) -> list[tuple[int, int, str]]:
    """(start, end, lower-case token): letters and digits apart ("Top1" -> "top", "1"), clause marks kept."""
    return [(m.start(), m.end(), m.group(0).lower()) for m in _TOKEN.finditer(text.nfc(s))]


def terms(s: str, fold: bool = False) -> set[str]:
    """The content tokens of a text: no function words, question words or punctuation; with `fold`, without
    diacritics (to compare with a question typed without them)."""
    if fold:
        return {text.fold_diacritics(w) for w in terms(s)} - _FOLDED_STOP
    return {w for _, _, w in words(s) if w.isalnum() and w not in STOPWORDS and w not in QUESTION_WORDS}


def without_diacritics(q: str) -> bool:
    """Typed without diacritics ("binh duong dung dau smart 21 nam 2023 dung khong?")."""
    return text.fold_diacritics(q) == q and ground.is_vietnamese(q)


def classify(question: str) -> Expected:
    q = " ".join(text.nfc(question).lower().split())
    folded = without_diacritics(q)
    focus = frozenset(terms(q, fold=folded))
    plural = bool(_PLURAL.search(q))
    wh, yesno = (_WH_FOLDED, _YESNO_VI_FOLDED) if folded else (_WH, _YESNO_VI)
    if _YESNO_EN.match(q) or (not wh.search(q) and yesno.search(q)) or "đúng hay sai" in q:
        return Expected(YESNO, False, focus, folded=folded)
    kinds = _kinds(q, _KIND_RES)
    if not kinds and folded:
        kinds = _kinds(q, _KIND_RES_FOLDED)
    if len({_GROUP.get(k, k) for k in kinds}) != 1:
        return Expected(ANY, plural, focus, folded=folded)  # no wh-word, or two questions in one ("ở đâu, bao nhiêu hộ")
    return Expected(kinds[0], plural, focus, _unit(q), folded)


_GROUP = {YEAR: TIME, DATE: TIME}


def _kinds(q: str, patterns) -> list[str]:
    """The kinds the question asks for, in KIND_PATTERNS order; a matched phrase is used up
    ("năm bao nhiêu" is a year, not also a number)."""
    found = []
    for kind, rx in patterns:
        if rx.search(q):
            found.append(kind)
            q = rx.sub(" ", q)
    return found


def _unit(q: str) -> str:
    """What a how-many question counts: "bao nhiêu lần" -> "lần", "how many people" -> "people"."""
    m = re.search(r"\b(?:bao nhiêu|mấy|how many|how much)\s+(.+)", q)
    if not m:
        return ""
    first = (text.words(m.group(1))[:1] or [""])[0].replace("_", " ")  # one word: "thành phố", "lần"
    if first in COUNT_NOUNS:  # "bao nhiêu người", "bao nhiêu năm tù": function words elsewhere, units here
        return first
    return "" if first in STOPWORDS or first in UNIT_STOP else first


PUBLICATION_COVERAGE = 0.5  # share of the question's terms the article's title, source and text must hold


def asks_publication(question: str) -> bool:
    """"Bài báo của HTV về … được đăng ngày nào?": when an article came out, which its date says."""
    q = text.nfc(question)
    return classify(q).kind in (DATE, TIME, YEAR) and bool(PUBLISHED.search(q) and ARTICLE.search(q))
