"""Grounding: the pipeline, not the model, decides what an answer may claim and what it cites.

Support check (per answer sentence, against a source passage: its text plus title, date and source),
all must hold:
  1. numbers: every number in the sentence occurs in the passage (catches invented figures and dates;
     "3-12" and "27/11" are one number, a date's year may come from the article's date);
  2. names: every capitalised name in the sentence occurs in the passage, compared without diacritics
     and with common abbreviations expanded (catches invented people and places: the failure measured
     in ../shared/MODELS.md); a quoted phrase must occur verbatim;
  3. content: at least MIN_COVERAGE of the sentence's content syllables occur in the passage; for a
     sentence in another language than the passage, a cross-lingual embedding similarity stands in
     (a sentence made only of names and numbers needs none).
A marker whose passage fails is re-pointed to the passage that passes, or removed; a factual sentence
no passage supports is dropped; an answer left with no supported sentence abstains.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from rag import text
from rag.answer.verify.lexicon import HONORIFIC, STOPWORDS, UPPER  # noqa: F401 (STOPWORDS: used here and by others)

MIN_COVERAGE = 0.5
MIN_CROSSLINGUAL_SIM = 0.55
MARKER = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_NUMBER = re.compile(r"\d+(?:(?:[.,/]|-(?=\d))\d+)*")
_QUOTED = re.compile(r"[“\"]([^”\"]{4,})[”\"]")
# Abbreviations news text uses interchangeably with the full form: a passage holding one holds both.
ALIASES = [
    ("TP.HCM", "Thành phố Hồ Chí Minh"),
    ("TP HCM", "Thành phố Hồ Chí Minh"),
    ("TPHCM", "Thành phố Hồ Chí Minh"),
    ("UBND", "Ủy ban nhân dân"),
    ("HĐND", "Hội đồng nhân dân"),
    ("KH&CN", "Khoa học và Công nghệ"),
    ("KHCN", "Khoa học và Công nghệ"),
]
# A name: two or more capitalised syllables in a row, or an all-caps acronym (UBND, IFC, TP.HCM).
NAME = re.compile(rf"(?:[{UPPER}][\w]*(?:\s+[{UPPER}][\w]*)+)|\b[{UPPER}]{{2,}}[\w.&]*")

REFUSAL = re.compile(
    r"không (đề cập|nhắc|có thông tin|chứa|nói)|không tìm thấy|chưa có thông tin|"
    r"(do not|don't|does not|doesn't) (contain|mention|say)|no information|not mentioned",
    re.IGNORECASE,
)


def numbers(s: str) -> set[str]:
    """Numbers as written, thousands separators dropped; day-month forms kept whole ("2-12" -> "2/12")."""
    out = set()
    for n in _NUMBER.findall(s):
        n = n.replace("-", "/")
        out.add(n if "/" in n else n.replace(".", "").replace(",", ""))
    return out


def _number_found(n: str, found: set[str]) -> bool:
    if n in found:
        return True
    parts = n.split("/")  # "27/11/2025": the day and month in the text, the year anywhere (e.g. the date)
    return len(parts) == 3 and "/".join(parts[:2]) in found and parts[2] in {p for f in found for p in f.split("/")}


def with_aliases(passage: str) -> str:
    extra = [full if short in passage else short for short, full in ALIASES if short in passage or full in passage]
    return passage + ("\n" + "\n".join(extra) if extra else "")


def names(s: str) -> list[str]:
    """Capitalised names, skipping the sentence's first word when only it is capitalised, and an
    honorific that opens a sentence ("Ông Võ Minh Thành" -> "Võ Minh Thành")."""
    out = []
    for m in NAME.finditer(s):
        name = HONORIFIC.sub("", m.group(0))
        if NAME.fullmatch(name):
            out.append(name)
    return out


def content_tokens(s: str) -> list[str]:
    return [t for t in text.syllables(MARKER.sub(" ", s)) if t not in STOPWORDS and not t.isdigit()]


def is_factual(sentence: str) -> bool:
    """A sentence that states something checkable (not a connective or a refusal)."""
    if REFUSAL.search(sentence):
        return False
    return len(content_tokens(sentence)) >= 2 or bool(numbers(MARKER.sub(" ", sentence)))


# Short Vietnamese questions may have none of the letters below ("Smart 21 là danh sách gì?").
_VI_WORDS = set("là gì nào của được không những các và ai đâu bao nhiêu mấy khi sao ở tại cho với".split())
# ... and the same typed without diacritics, as people often do ("hoi nghi co to chuc chieu 27/11 khong")
_VI_WORDS |= set("khong duoc nhung cua nao nhieu voi trong nguoi mot dau gi".split())


def is_vietnamese(s: str) -> bool:
    """Vietnamese has letters no other Latin-script language uses, and common function words."""
    letters = [c for c in s if c.isalpha()]
    if not letters or _VI_WORDS & set(text.syllables(s)):
        return True
    viet = sum(1 for c in letters if c.lower() in "ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ")
    return viet / len(letters) > 0.02


def check_mentions(question: str, retrieved: str) -> list[str]:
    """The names and numbers of a question that the retrieved text never mentions."""
    retrieved = with_aliases(retrieved)
    folded = set(text.syllables(text.fold_diacritics(retrieved)))
    found_numbers = numbers(retrieved)
    missing = [n for n in numbers(question) if not _number_found(n, found_numbers)]
    missing += [n for n in names(question) if not all(t in folded for t in _name_tokens(n, True))]
    return missing


@dataclass
class Support:
    ok: bool
    coverage: float
    missing_numbers: list[str]
    missing_names: list[str]


# In an English answer, title-case common words are not names; Vietnamese names are short syllables.
_ENGLISH_TITLE_WORDS = set("the of and for in on at city province new top next gen mr mrs ms dr".split())


def _name_tokens(name: str, vietnamese: bool) -> list[str]:
    toks = text.syllables(text.fold_diacritics(name))
    if vietnamese:
        return toks
    return [t for t in toks if len(t) <= 5 and t not in _ENGLISH_TITLE_WORDS]


def check(sentence: str, passage: str, similarity: float | None = None) -> Support:
    """Does `passage` support `sentence`? See the module docstring for the conditions."""
    claim = MARKER.sub(" ", sentence)
    passage = with_aliases(passage)
    vietnamese = is_vietnamese(claim)
    passage_folded = set(text.syllables(text.fold_diacritics(passage)))
    passage_numbers = numbers(passage)
    missing_numbers = sorted(n for n in numbers(claim) if not _number_found(n, passage_numbers))
    name_list = names(claim)
    missing_names = [n for n in name_list if not all(t in passage_folded for t in _name_tokens(n, vietnamese))]
    folded_passage = " ".join(text.syllables(text.fold_diacritics(passage)))
    missing_names += [
        q for q in _QUOTED.findall(claim) if " ".join(text.syllables(text.fold_diacritics(q))) not in folded_passage
    ]
    tokens = content_tokens(claim)
    passage_tokens = set(text.syllables(passage))
    coverage = sum(t in passage_tokens for t in tokens) / len(tokens) if tokens else 1.0
    name_words = {t for n in name_list for t in text.syllables(n)}
    if not vietnamese and all(t in name_words for t in tokens):
        content_ok = True  # "Silver Lion Enterprise Impact Singapore." is all name: checked above
    elif similarity is not None and not vietnamese:
        content_ok = similarity >= MIN_CROSSLINGUAL_SIM
    else:
        content_ok = coverage >= MIN_COVERAGE
    return Support(content_ok and not missing_numbers and not missing_names, coverage, missing_numbers, missing_names)


def parse_markers(sentence: str) -> list[int]:
    out = []
    for m in MARKER.finditer(sentence):
        out.extend(int(x) for x in re.split(r"\s*[,;]\s*", m.group(1)))
    return out


QUOTE_GAP = " … "  # joins quoted sentences that are not next to each other in the article


def best_quote(claim: str, passage: str, max_sentences: int = 2) -> str:
    """The passage sentence that shares most content with the claim, plus up to max_sentences - 1
    more only where they hold claim words the first one lacks (the nearest such sentence first).
    Sentences are given in passage order; non-adjacent ones are joined by QUOTE_GAP."""
    spans = text.split_sentences(passage)
    if not spans:
        return passage.strip()
    want = set(content_tokens(claim)) | numbers(claim)
    covers = [want & (set(text.syllables(passage[a:b])) | numbers(passage[a:b])) for a, b in spans]
    keep, covered = [], set()
    for _ in range(max_sentences):
        near = keep[0] if keep else 0
        i = max(range(len(spans)), key=lambda j: (len(covers[j] - covered), -abs(j - near), -j))
        if keep and not covers[i] - covered:
            break
        keep.append(i)
        covered |= covers[i]
    parts, prev = [], None
    for i in sorted(set(keep)):
        if prev is not None:  # neighbours keep the text between them (a space, a paragraph break)
            parts.append(passage[spans[prev][1] : spans[i][0]] if i == prev + 1 else QUOTE_GAP)
        parts.append(passage[spans[i][0] : spans[i][1]])
        prev = i
    return "".join(parts)
