"""What a question asks for, and whether a claim gives it.

The support check (rag.ground) proves that a sentence is *in* a source; this module checks that it
*answers the question*:
- the answer's type matches the question's: who -> a person or an organisation, where -> a place,
  when / which year -> a date or year, how many -> a number; the type must come from the claim's
  new words, not from words it repeats from the question;
- among several candidates of that type in the evidence sentence (the years in "Top7 trong các năm
  2021, 2022; Top1 năm 2023"), the answer is the one tied to the question's own terms (the year next
  to "Top1"), measured by distance in words, crossing a clause boundary (";", ":", a sentence end)
  counting as far;
- for when / how many questions, when the model refuses or its answer fails these checks, the
  candidate can be taken from the evidence itself, but only from a sentence that holds nearly all of
  the question's terms and has one clear winner: a refusal beats a guess.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from rag import ground, text

# ------------------------------------------------------------------ question kinds

AGENT, PLACE, TIME, YEAR, DATE, NUMBER, YESNO, ANY = "agent", "place", "time", "year", "date", "number", "yesno", "any"
_TYPED = {AGENT, PLACE, TIME, YEAR, DATE, NUMBER}

# Checked in this order, on the lower-cased question; the first match decides.
_KIND_PATTERNS = [
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
_KIND_RES = [(k, re.compile(p)) for k, p in _KIND_PATTERNS]
_KIND_RES_FOLDED = [(k, re.compile(text.fold_diacritics(p))) for k, p in _KIND_PATTERNS]
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
        return self.kind in _TYPED


_TOKEN = re.compile(r"[^\W\d_]+|\d+|[;:.!?…()]")
_QUESTION_WORDS = set("ai gì nào đâu bao nhiêu mấy khi giờ sao thế who what where when which how why whom".split())
_FOLDED_STOP = {text.fold_diacritics(w) for w in ground.STOPWORDS | _QUESTION_WORDS} | {"vay", "nhi", "the"}


def words(s: str) -> list[tuple[int, int, str]]:
    """(start, end, lower-case token): letters and digits apart ("Top1" -> "top", "1"), clause marks kept."""
    return [(m.start(), m.end(), m.group(0).lower()) for m in _TOKEN.finditer(text.nfc(s))]


def terms(s: str, fold: bool = False) -> set[str]:
    """The content tokens of a text: no function words, question words or punctuation; with `fold`, without
    diacritics (to compare with a question typed without them)."""
    if fold:
        return {text.fold_diacritics(w) for w in terms(s)} - _FOLDED_STOP
    return {w for _, _, w in words(s) if w.isalnum() and w not in ground.STOPWORDS and w not in _QUESTION_WORDS}


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
    """The kinds the question asks for, in _KIND_PATTERNS order; a matched phrase is used up
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
    if first in _COUNT_NOUNS:  # "bao nhiêu người", "bao nhiêu năm tù": function words elsewhere, units here
        return first
    return "" if first in ground.STOPWORDS or first in _UNIT_STOP else first


_COUNT_NOUNS = {"người", "năm", "ngày", "tháng"}


# ------------------------------------------------------------------ candidates in text

_YEAR = r"(?:19|20)\d\d"
_DAYMONTH = r"\d{1,2}\s*[/-]\s*\d{1,2}(?:\s*[/-]\s*(?:19|20)\d\d)?"
_MONTHS_EN = "january|february|march|april|may|june|july|august|september|october|november|december"
_DATE_RE = re.compile(
    rf"\b(?:(?:ngày\s+)?{_DAYMONTH}|ngày\s+\d{{1,2}}(?:\s+tháng\s+\d{{1,2}})?(?:\s+năm\s+{_YEAR})?|\d{{1,2}}\s+tháng\s+\d{{1,2}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{_MONTHS_EN})|(?:{_MONTHS_EN})\s+\d{{1,2}}(?:st|nd|rd|th)?)\b",
    re.I,
)
_YEAR_RE = re.compile(rf"(?<![\d/.,-])\b{_YEAR}\b(?![\d/.,]\d)")
_MONTH_RE = re.compile(rf"\btháng\s+\d{{1,2}}(?:\s*/\s*{_YEAR})?\b|\b(?:{_MONTHS_EN})\b", re.I)
_NUM_WORDS_VI = "một hai ba bốn sáu bảy tám chín mười mươi trăm nghìn ngàn triệu tỷ tỉ chục".split()
_NUM_WORDS_EN = "one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred hundreds thousand thousands million millions billion billions dozen dozens".split()
_NUMBER_RE = re.compile(
    r"(?:\b(?:top\s*)?\d(?:[\d.,]*\d)?(?:\s*%)?"
    rf"|\b(?:hàng|vài|mấy)\s+(?:chục|trăm|nghìn|ngàn|triệu|tỷ)\b|\b(?:{'|'.join(_NUM_WORDS_VI + _NUM_WORDS_EN)})\b"
    r"|\bnăm\s+(?=lần|người|năm|tháng|ngày)\b)",
    re.I,
)
# Where a place is named (Vietnamese administrative units, venues, prepositions) and frequent place names.
_PLACE_WORDS = re.compile(
    r"\b(tại|ở|trung tâm|phường|quận|huyện|xã|thị xã|thị trấn|tỉnh|thành phố|tp\.?|khách sạn|sân vận động|sân bay|"
    r"hội trường|trụ sở|cung|nhà hát|đường|khu|thủ đô|miền|vùng|quốc gia|nước|city|province|district|centre|center|"
    r"hotel|stadium|in|at)\b",
    re.I,
)
PLACES = {text.fold_diacritics(p.strip()) for p in """
tp.hcm, tphcm, hồ chí minh, sài gòn, hà nội, đà nẵng, hải phòng, cần thơ, huế, bình dương, đồng nai, bà rịa, vũng tàu,
long an, tây ninh, bình phước, khánh hòa, nha trang, lâm đồng, đà lạt, quảng ninh, hạ long, nghệ an, thanh hóa,
quảng nam, quảng ngãi, bình định, phú yên, gia lai, kon tum, đắk lắk, đắk nông, bắc ninh, bắc giang, hải dương,
hưng yên, thái bình, nam định, ninh bình, hà nam, vĩnh phúc, phú thọ, thái nguyên, lào cai, yên bái, sơn la,
điện biên, lai châu, hà giang, cao bằng, lạng sơn, tuyên quang, bắc kạn, hòa bình, quảng bình, quảng trị, hà tĩnh,
bình thuận, ninh thuận, tiền giang, bến tre, vĩnh long, trà vinh, đồng tháp, an giang, kiên giang, hậu giang,
sóc trăng, bạc liêu, cà mau, việt nam, trung quốc, mỹ, hoa kỳ, nhật bản, hàn quốc, singapore, thái lan, lào,
campuchia, nga, pháp, đức, anh, úc, canada, brazil, ấn độ, tây ban nha, thổ nhĩ kỳ, ý, indonesia, malaysia,
philippines, châu á, châu âu, đông nam á, vietnam, china, japan, korea, thailand, france, germany, russia, india,
spain, turkey, australia, europe, asia, ho chi minh city, hanoi, binh duong
""".replace("\n", " ").split(",") if p.strip()}
_VENUE = re.compile(r"\b(tại|ở|phường|quận|huyện|xã|khách sạn|sân vận động|hội trường|trung tâm hội nghị|triển lãm|đường)\b", re.I)
_ORG_WORDS = re.compile(
    r"\b(sở|bộ|ubnd|ủy ban|uỷ ban|hđnd|công ty|tập đoàn|ngân hàng|trường|viện|đại học|tòa án|toà án|tand|vks|vksnd|"
    r"công an|cục|tổng cục|ban|hội(?! (?:nghị|thảo|trường|chợ))|hiệp hội|đài|báo|quỹ|liên đoàn|câu lạc bộ|clb|đảng|chính phủ|quốc hội|"
    r"doanh nghiệp|tổ chức|cơ quan|đơn vị|department|ministry|committee|company|group|bank|university|council|"
    r"government|court|police|organi[sz]ation|agency|forum)\b",
    re.I,
)
_ROLE_WORDS = re.compile(
    r"\b(ông|bà|anh|chị|giám đốc|phó|chủ tịch|bộ trưởng|thứ trưởng|thủ tướng|tổng thống|bí thư|trưởng|tổng|"
    r"chuyên gia|đại diện|người|bị cáo|nghi phạm|ca sĩ|cầu thủ|huấn luyện viên|hlv|mr|mrs|ms|dr|director|"
    r"chairman|chair|president|minister|deputy|mayor|head|founder)\b",
    re.I,
)


def _spans(rx: re.Pattern, s: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group(0)) for m in rx.finditer(s)]


def candidates(kind: str, s: str) -> list[tuple[int, int, str]]:
    """(start, end, text) of the spans of `s` that are answers of this kind (year, date, number, time)."""
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


_UNIT_STOP = set("và của trong với là thì mà để cho từ đến trên dưới tại ở theo khi".split())


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
        if not bare.isalpha() or not bare.islower() or bare in _UNIT_STOP:
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


# ------------------------------------------------------------------ does the claim have the right type?

def _new_part(claim: str, question: str) -> str:
    """The claim without the words it repeats from the question: where its answer must be."""
    asked = set(text.syllables(text.fold_diacritics(question)))
    words = re.findall(r"\S+", ground.MARKER.sub(" ", claim))
    return " ".join(w for w in words if not set(text.syllables(text.fold_diacritics(w))) <= asked or not text.syllables(w))


def _has_place(s: str) -> bool:
    folded = " " + " ".join(text.syllables(text.fold_diacritics(s))) + " "
    return bool(_PLACE_WORDS.search(s)) or any(f" {' '.join(text.syllables(p))} " in folded for p in PLACES)


def _names_outside_places(s: str) -> list[str]:
    out = []
    for n in ground.names(s):
        folded = " ".join(text.syllables(text.fold_diacritics(n)))
        if folded and not any(folded == " ".join(text.syllables(p)) for p in PLACES):
            out.append(n)
    return out


def right_type(expected: Expected, claim: str, question: str) -> bool:
    """Does the claim's new part (what it adds to the question) hold an answer of the asked-for kind?"""
    if not expected.typed:
        return True
    new = _new_part(claim, question)
    if expected.kind in (YEAR, DATE, TIME, NUMBER):
        return bool(candidates(expected.kind, new))
    if expected.kind == PLACE:
        return _has_place(new)
    # AGENT: a person (a name that is not a place, or a role) or an organisation; a venue is not one
    if _names_outside_places(new) or _ROLE_WORDS.search(new):
        return True
    return bool(_ORG_WORDS.search(new)) and not _VENUE.search(new)


# ------------------------------------------------------------------ which candidate does the question point to?

_CLAUSE_BREAK = re.compile(r"[;:.!?…()]")
CLAUSE_DISTANCE = 8  # words: crossing a clause boundary counts as this far
CLEAR_MARGIN = 1.5  # the best candidate's tie to the question must beat the next one by this factor


def _weight(word: str) -> float:
    """Codes and numbers ("top1", "57", "u23") single out one clause; ordinary words are shared more."""
    return DISTINCTIVE_WEIGHT if any(c.isdigit() for c in word) else 1.0


DISTINCTIVE_WEIGHT = 3.0


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
        if expected.unit and _counts(expected.unit, sentence[b:]):
            score += DISTINCTIVE_WEIGHT  # "5 lần" for "bao nhiêu lần"
        scores.append(score)
    return scores


def _counts(unit: str, after: str) -> bool:
    """Does the text after a figure say it counts `unit` ("5 lần", "24 trẻ nhỏ", "hàng chục trẻ")?"""
    return bool(re.match(rf"\W*(?:\w+\s+)?{re.escape(unit.split()[0])}\b", after.lower()))


@dataclass
class Verdict:
    ok: bool
    reason: str = ""
    better: str | None = None  # the candidate the evidence ties to the question, when it is clear


# "tại <place>" up to the verb or clause that follows it: the place a sentence names, as specific as it is.
_LOCATION = re.compile(
    r"\b(?:tại|ở)\s+(?P<place>(?:[^.;:!?]|\.(?=\w))+?)(?=\s+(?:diễn ra|xảy ra|do|với|vào|trong|từ|đã|sẽ|được|đang|là|có|"
    r"khi|nhằm|để|gây|khiến|làm|bị|cho|thuộc|của|ngày|hôm|sáng|trưa|chiều|tối|đêm)\b|[.;:!?](?!\w)|$)",
    re.I)


def locations(sentence: str) -> list[str]:
    return [m.group("place").strip(" ,") for m in _LOCATION.finditer(sentence)]


def _vaguer_place(claim_new: str, evidence: str, first: str | None = None, asked: str = "") -> str | None:
    """The fuller location phrase of the evidence when the claim names only part of it ("TP.HCM" where the
    sentence says "tại Trung tâm Hội nghị và Triển lãm, phường Bình Dương, TP.HCM"), looked for in `first`
    (the sentence about the question) before the others; words of the question `asked` count as said."""
    said = set(text.syllables(text.fold_diacritics(claim_new)))
    if not said:
        return None
    known = said | set(text.syllables(text.fold_diacritics(asked)))
    fuller = [place for sentence in ([first] if first else []) + [evidence[a:b] for a, b in text.split_sentences(evidence)]
              for place in locations(sentence)
              if said < (whole := set(text.syllables(text.fold_diacritics(place)))) and len(whole - known) >= 2]
    # one that names a venue or a smaller unit ("Trung tâm …, phường …") before one that only goes on ("TP.HCM sau hợp nhất")
    return next((p for p in fuller if _VENUE.search(p)), fuller[0] if fuller else None)


_BIRTH = re.compile(r"\b(?:sn|sinh(?: ngày| năm)?|born(?: on| in)?)\s*$", re.I)
_ADMIN_ASKED = re.compile(r"\b(xã|phường|thị trấn|huyện|quận|thị xã|tỉnh|thành phố)\s+nào\b")
_MONEY_UNITS = {"tiền", "đồng", "usd", "phần trăm", "money"}
_COUNTED_ELSE = re.compile(r"^\s*(?:triệu|tỷ|tỉ|nghìn|ngàn)?\s*(?:đồng|usd|vnd|euro|%)", re.I)


def _birth_dates(evidence: str) -> set[str]:
    """Dates and years the evidence gives as someone's birth ("Võ Mạnh Linh (SN 1990)", "sinh ngày 24/10/1978")."""
    out = set()
    for kind in (DATE, YEAR):
        for a, _, span in candidates(kind, evidence):
            if _BIRTH.search(evidence[max(0, a - 12) : a]):
                out.add(candidate_key(span))
    return out


def _the_unit_asked(question: str, claim: str, evidence: str) -> bool:
    """For "ở xã nào?": does the claim name a xã (the word itself, or a name the evidence calls "xã <name>")?"""
    m = _ADMIN_ASKED.search(question.lower())
    new = _new_part(claim, question)
    if not m or m.group(1) in new.lower():
        return bool(m)
    folded, unit = text.fold_diacritics(evidence.lower()), text.fold_diacritics(m.group(1))
    return any(f"{unit} {text.fold_diacritics(n.lower())}" in folded for n in ground.names(new))


# A name is a person's when it starts with a Vietnamese family name (and is not a street, a station, a company).
_SURNAMES = set("""nguyễn trần lê phạm hoàng huỳnh phan vũ võ đặng bùi đỗ hồ ngô dương lý đinh trương lâm đào mai
cao tô trịnh hà tạ lương đoàn vương thái châu la kiều trầm quách lưu tăng triệu văn đàm khúc chu giang hứa mạc
lại kim thân tôn âu lục ông diệp doãn khổng nghiêm phùng quan thạch tiêu từ ninh hầu""".split())
_NOT_A_PERSON = re.compile(
    r"(?:công ty|tập đoàn|ngân hàng|trường|đường|phố|huyện|quận|xã|phường|tỉnh|thành phố|thị xã|thị trấn|thôn|ấp|"
    r"bản|làng|sông|cầu|chợ|khu|dự án|hội|báo|đài|ga|bến|cảng|sân|tp\.?|ở|tại)\s*$", re.I)
_MODIFIER_OF = re.compile(r"(?:của|of)\s*$", re.I)


def persons_asked(question: str) -> list[str]:
    """The people a question is about: names that start with a family name ("Trầm Bê"), not a street, a
    station or a company named after one ("đường Hà Huy Tập"), and not one only named as an owner ("đại án
    của Phạm Công Danh") when someone else is named too."""
    found = []
    for m in ground._NAME.finditer(question):
        name = ground._HONORIFIC.sub("", m.group(0))
        if _is_person(name) and not _NOT_A_PERSON.search(question[: m.start()]):
            found.append((name, bool(_MODIFIER_OF.search(question[: m.start()]))))
    main = [n for n, owner in found if not owner]
    return main or [n for n, _ in found]


def _is_person(name: str) -> bool:
    return 2 <= len(name.split()) <= 4 and name.split()[0].lower() in _SURNAMES


def _person_names(s: str) -> list[str]:
    return [n for n in (ground._HONORIFIC.sub("", m.group(0)) for m in ground._NAME.finditer(s)) if _is_person(n)]


def _nearest_person(evidence: str, at: int, people_: list[str]) -> str | None:
    """The person named last before position `at` (in its sentence or the one before), in full or by the
    given name that Vietnamese news goes on to use ("Phạm Công Danh" ... "Danh"); None when none is."""
    spans = text.split_sentences(evidence)
    i = next((k for k, (a, b) in enumerate(spans) if a <= at < b), 0)
    lo = spans[i - 1][0] if i and spans else 0
    best = None
    for person in people_:
        for form in (person, person.split()[-1]):
            for m in re.finditer(rf"(?<!\w){re.escape(form)}(?!\w)", evidence[lo:at]):
                if best is None or m.end() > best[0]:
                    best = (m.end(), person)
    return best[1] if best else None


def _about_someone_else(expected: Expected, question: str, claim: str, evidence: str) -> str:
    """The person the question asks about when, wherever the evidence gives the claimed value, the person
    named nearest before it is someone else, or "": "how many years for Trầm Bê" answered with the figure
    that follows Phạm Công Danh's name."""
    asked = persons_asked(question)
    if not asked:
        return ""
    keys = {candidate_key(c[2]) for c in candidates(expected.kind, question)}
    said = {candidate_key(c[2]) for c in candidates(expected.kind, _new_part(claim, question))} - keys
    with_unit_ = {pair for pair in _figure_and_unit(claim) if pair[0] in said}
    places = [a for a, b, span in candidates(expected.kind, evidence) if candidate_key(span) in said
              and (not with_unit_ or any(pair[0] == candidate_key(span) for pair in with_unit_ & _figure_and_unit(evidence[a:b + 20])))]
    named = list(dict.fromkeys(_person_names(evidence) + asked))
    same = lambda x, y: text.fold_diacritics(x.lower()) == text.fold_diacritics(y.lower())  # noqa: E731
    for at in places:
        nearest = _nearest_person(evidence, at, named)
        if nearest is None or any(same(nearest, p) or same(nearest.split()[-1], p.split()[-1]) for p in asked):
            return ""
    return asked[0] if places else ""


# The parts people play in court and crime news: the defendant named where the judge is asked for is a wrong answer.
_CASE_ROLE = r"\b(bị cáo|bị can|nghi phạm|đối tượng|thẩm phán|chủ toạ|chủ tọa|luật sư|kiểm sát viên|nạn nhân|bị hại|nhân chứng|điều tra viên)"
_CASE_ROLE_BEFORE = re.compile(_CASE_ROLE + r"\s+$", re.I)  # "Bị cáo " right before a name


def _other_part(question: str, claim: str, evidence: str) -> str:
    """The part the evidence gives the person a who-question is answered with, when it calls them only by
    another one than the question asks for ("Bị cáo Nguyễn Đức Mạnh" for "Thẩm phán nào ..."), or ""."""
    asked = {m.group(1).lower() for m in re.finditer(_CASE_ROLE + r"\b", question, re.I)}
    if not asked:
        return ""
    for person in _person_names(_new_part(claim, question)):
        parts = {m.group(1).lower() for m in (_CASE_ROLE_BEFORE.search(evidence[max(0, k.start() - 20) : k.start()])
                                                for k in re.finditer(re.escape(person), evidence)) if m}
        if parts and not parts & asked:
            return sorted(parts)[0]
    return ""


def _figure_and_unit(s: str) -> set[tuple[str, str]]:
    """(number, the word after it) for each figure followed by a word: "3 năm tù" -> ("3", "nam")."""
    out = set()
    for a, b, span in candidates(NUMBER, s):
        m = re.match(r"\s+([^\W\d_]+)", s[b:])
        if m:
            out.add((candidate_key(span), text.fold_diacritics(m.group(1).lower())))
    return out


def _figure_elsewhere(claim: str, question: str, evidence: str) -> str:
    """A figure of the claim that its evidence gives only with another word after it ("3 năm tù" where the
    source says "sau 3 ngày"), or ""."""
    held = _figure_and_unit(evidence)
    asked = {candidate_key(c[2]) for c in candidates(NUMBER, question)}
    for number, unit in _figure_and_unit(claim) - {(n, u) for n, u in _figure_and_unit(claim) if n in asked}:
        if any(n == number for n, _ in held) and (number, unit) not in held:
            return f"{number} {unit}"
    return ""


def _news_checks(expected: Expected, question: str, claim: str, evidence: str) -> str:
    """Why the claim is not what the question asks for, by the ways news answers go wrong; "" when none applies:
    a birth date for "when" (crime news gives everyone's), a deputy for the head the question names
    ("Phó Chủ tịch" for "Chủ tịch"), a province for "xã nào", one figure for a question asking two, money
    for "how many people"."""
    q, new = question.lower(), _new_part(claim, question)
    if expected.kind in (YEAR, DATE, TIME) and "sinh" not in q and "born" not in q:
        said = {candidate_key(c[2]) for c in candidates(expected.kind, new)}
        if said and said <= _birth_dates(evidence):
            return "a birth date, not the date asked for"
    if expected.kind in (YEAR, DATE, TIME, NUMBER) and (who := _about_someone_else(expected, question, claim, evidence)):
        return f"another person's figure, not {who}'s"
    if expected.kind == AGENT and (part := _other_part(question, claim, evidence)):
        return f"the {part} in its source, not the one asked for"
    if expected.kind == AGENT and (role := _qualified_role(claim.lower(), q)):
        return f"a {role}, where the question asks for the role unqualified"
    if expected.kind == PLACE and (m := _ADMIN_ASKED.search(q)) and not _the_unit_asked(question, claim, evidence):
        return f"not a {m.group(1)}"
    if expected.kind == NUMBER:
        if figure := _figure_elsewhere(claim, question, evidence):
            return f"'{figure}' is not what its source says"
        if len(re.findall(r"\b(?:bao nhiêu|mấy)\b", q)) >= 2 and len(candidates(NUMBER, new)) < 2:
            return "one figure where two were asked for"
        if expected.unit and expected.unit not in _MONEY_UNITS and expected.unit not in new.lower():
            found = candidates(NUMBER, new)
            if found and all(_COUNTED_ELSE.match(new[b:]) for _, b, _ in found):
                return f"an amount, where the question counts {expected.unit}"
    return ""


def check_claim(expected: Expected, question: str, claim: str, evidence: str) -> Verdict:
    """Does `claim` answer `question`, given the source text it was verified against?"""
    one_place = expected.kind == PLACE and not expected.plural and not _ADMIN_ASKED.search(question.lower())
    if not right_type(expected, claim, question) and not _the_unit_asked(question, claim, evidence):
        # "ở TP.HCM, tại địa điểm nào?" answered "TP.HCM": the place its source names around it may be the answer
        fuller = _vaguer_place(ground.MARKER.sub(" ", claim), evidence, _question_sentence(expected, evidence)) if one_place else None
        return Verdict(False, f"not a {expected.kind}", fuller)
    if why := _news_checks(expected, question, claim, evidence):
        return Verdict(False, why)
    if one_place:
        fuller = _vaguer_place(_new_part(claim, question), evidence, _question_sentence(expected, evidence), question)
        return Verdict(False, "less specific than the place its source names", fuller) if fuller else Verdict(True)
    if expected.kind not in (YEAR, DATE, TIME, NUMBER) or expected.plural:
        return Verdict(True)
    asked = {candidate_key(c[2]) for c in candidates(expected.kind, question)}
    said = {candidate_key(c[2]) for c in candidates(expected.kind, _new_part(claim, question))} - asked
    # The sentence that holds most of the question's terms names its own candidate, and not the claimed one:
    # the claim took a value from another sentence ("Phiên toàn thể (…, 3-12)" answered with "2-12").
    own = _question_sentence(expected, evidence)
    keys = {candidate_key(c[2]) for c in candidates(expected.kind, own)} - asked if own is not None else set()
    if said and len(keys) == 1 and not keys & said:
        return Verdict(False, f"the sentence about the question names {sorted(keys)[0]!r}", next(
            c[2] for c in candidates(expected.kind, own) if candidate_key(c[2]) in keys))
    # where the claimed value stands in the sentence about the question, only that sentence is weighed
    spans = [(0, len(own))] if keys & said else text.split_sentences(evidence)
    best = None
    for a, b in spans:
        sentence = own[a:b] if keys & said else evidence[a:b]
        cands = [c for c in candidates(expected.kind, sentence) if candidate_key(c[2]) not in asked]
        if len(cands) < 2 or not said & {candidate_key(c[2]) for c in cands}:
            continue  # one candidate: nothing to choose between; none said: not this sentence
        scores = anchor_scores(expected, sentence, cands)
        if best is None or max(scores) > best[0]:
            best = (max(scores), cands, scores)
    if best is None:
        return Verdict(True)
    top, cands, scores = best
    ranked = sorted(zip(scores, [candidate_key(c[2]) for c in cands], [c[2] for c in cands]), reverse=True)
    clear = top > 0 and (len(ranked) < 2 or ranked[0][0] >= CLEAR_MARGIN * ranked[1][0])
    winner_key, winner = ranked[0][1], ranked[0][2]
    if not clear:
        return Verdict(True)
    if winner_key not in said:
        return Verdict(False, f"the evidence ties {winner!r} to the question, not {sorted(said)}", winner)
    others = said & {k for _, k, _ in ranked[1:]}
    if others:  # the sentence pasted whole: several candidates where one was asked for
        return Verdict(False, f"names {len(others) + 1} candidates where one was asked for", winner)
    return Verdict(True)


QUESTION_SENTENCE_COVERAGE = 0.6  # share of the question's terms a sentence needs to be "the sentence about it"
TOPIC_SHARE = 0.25


def _question_sentence(expected: Expected, evidence: str) -> str | None:
    """The one sentence of the evidence that is clearly about the question: its share of the question's
    distinctive terms, each weighted by how few sentences hold it (the topic is everywhere, "phiên toàn
    thể" in one sentence), is at least QUESTION_SENTENCE_COVERAGE and CLEAR_MARGIN times the next
    sentence's; or None."""
    import math

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


def extract(expected: Expected, question: str, passage: str, min_coverage: float = 0.85) -> tuple[tuple[int, int, str], str] | None:
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
        born = _birth_dates(sentence) if "sinh" not in question.lower() else set()
        cands = [c for c in candidates(expected.kind, sentence) if candidate_key(c[2]) not in asked | born
                 and (not expected.unit or _counts(expected.unit, sentence[c[1]:]))]  # "36 tuổi" is no count of người
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


def people(s: str) -> list[str]:
    """Names in a text that are neither places, organisations nor acronyms: "Lâm Đình Thắng" in an answer."""
    return [n for n in _names_outside_places(s)
            if not _ORG_WORDS.search(n) and not any(c.isdigit() for c in n) and not n.replace(".", "").isupper()]


_LIST_JOIN = re.compile(r",|;|\b(và|cùng|with|and)\b", re.I)


def names_listed(claim: str, question: str) -> list[str]:
    """The names a claim lists in what it adds to the question ("Lâm Đình Thắng và Võ Minh Thành"), when it
    joins two or more of them; else []."""
    asked = set(text.syllables(text.fold_diacritics(question)))
    found = [n for n in dict.fromkeys(ground.names(claim)) if not set(text.syllables(text.fold_diacritics(n))) <= asked]
    return found if len(found) >= 2 and _LIST_JOIN.search(claim) else []


# ------------------------------------------------------------------ when was the article published?

# "đăng" but not "đăng cai" (host), "đăng ký" (register), "đăng quang" (be crowned)
_PUBLISHED = re.compile(r"\b(?:đăng(?! cai| ký| kí| nhập| quang)|xuất bản|phát hành|published|posted|came out)\b", re.I)
_ARTICLE = re.compile(r"\b(?:bài|bản tin|tin|article|story|report|piece)\b", re.I)
PUBLICATION_COVERAGE = 0.5  # share of the question's terms the article's title, source and text must hold


def asks_publication(question: str) -> bool:
    """"Bài báo của HTV về … được đăng ngày nào?": when an article came out, which its date says."""
    q = text.nfc(question)
    return classify(q).kind in (DATE, TIME, YEAR) and bool(_PUBLISHED.search(q) and _ARTICLE.search(q))


# ------------------------------------------------------------------ yes / no

_YESNO_WORDS = {"phải", "chăng", "liệu", "đúng", "sai", "hay", "không", "chưa"}
_YESNO_FOLDED = {text.fold_diacritics(w) for w in _YESNO_WORDS} | {"co"}
_MODIFIER = re.compile(r"\b(phó|nguyên|cựu|quyền|deputy|former|acting|vice)\s+(\w+)", re.I)
_NEGATION = re.compile(r"\b(không|chưa|chẳng|chả|không hề|chưa từng)\s+(\w+)", re.I)


def _qualified_role(s: str, question: str, same=lambda x: x) -> str:
    """A role `s` qualifies ("phó chủ") where the question names it bare ("chủ tịch"), or ""."""
    for m in _MODIFIER.finditer(s):
        if same(m.group(2)) in question and same(m.group(0)) not in question:
            return m.group(0)
    return ""


# Words that narrow or strengthen a claim: a claim carrying one that the deciding sentence lacks says more
# than the source does ("chỉ", "nhất thiết", "có thể", "vẫn", "hơn": how false statements differ from the law).
_QUALIFIER = re.compile(
    r"\b(chỉ|duy nhất|nhất thiết|bắt buộc|có thể|không cần|không phải|vẫn|luôn|mọi|tất cả|hơn|nhất|thêm|ngay|"
    r"only|must|always|never|all|every|more|less|most)\b", re.I)
YES_COVERAGE = 0.8  # share of the question's claim words the deciding sentence (and the one before) must hold
ADDRESS_COVERAGE = 0.6  # below this the articles do not address the claim: no verdict


def decide_yesno(question: str, passage: str) -> tuple[bool | None, str]:
    """(True for yes / False for no / None for no verdict, the deciding sentence) from a passage.

    No when the deciding sentence ties another year, date or number to the claim's terms than the one
    claimed, or lacks a qualifier the claim makes ("chỉ", "có thể", "hơn"), or qualifies a role the claim
    states bare ("Phó Giám đốc" vs "Giám đốc"), or negates a word the claim asserts; yes when it holds
    nearly all the claim's words and contradicts none of them."""
    folded = without_diacritics(question)
    claim = frozenset(terms(question, folded) - _YESNO_WORDS - _YESNO_FOLDED)
    held = set(text.syllables(ground.with_aliases(passage)))
    unheld = [n for n in ground.names(question) if not set(text.syllables(n)) <= held]
    if not claim or ground.check_mentions(question, passage) or unheld:
        return None, ""  # a name or number of the claim that the articles never mention: no verdict
    spans = text.split_sentences(passage)
    best, addressed = None, []
    for i, (a, b) in enumerate(spans):
        around = terms(passage[spans[i - 1][0] : b] if i else passage[a:b], folded)
        coverage = len(claim & around) / len(claim)
        numbers_held = len(ground.numbers(question) & ground.numbers(passage[a:b]))
        if coverage >= ADDRESS_COVERAGE:
            addressed.append(passage[a:b])
        if best is None or (coverage, numbers_held) > best[0]:
            best = ((coverage, numbers_held), passage[a:b])
    (coverage, _), sentence = best
    if coverage < ADDRESS_COVERAGE:
        return None, sentence
    expected = Expected(YESNO, False, claim, folded=folded)
    for kind in (YEAR, DATE, NUMBER):
        claimed = {candidate_key(c[2]) for c in candidates(kind, question)}
        found = candidates(kind, sentence)
        if not claimed or not found:
            continue
        keys = [candidate_key(c[2]) for c in found]
        if not claimed & set(keys):
            return False, sentence  # the sentence gives its own value where the question claims one
        if len(found) > 1 and kind != NUMBER:  # numbers in codes and counts are too many to rank
            focus = Expected(kind, False, expected.focus - claimed, folded=folded)
            ranked = sorted(zip(anchor_scores(focus, sentence, found), keys), reverse=True)
            if ranked[0][0] > 0 and ranked[0][0] >= CLEAR_MARGIN * ranked[1][0] and ranked[0][1] not in claimed:
                return False, sentence
    same = text.fold_diacritics if folded else (lambda x: x)  # a question without diacritics: compare without
    q_lower, s_lower = question.lower(), sentence.lower()
    if any(m.group(0) not in s_lower for m in _QUALIFIER.finditer(q_lower)):
        return False, sentence
    if _qualified_role(s_lower, q_lower, same):
        return False, sentence
    def negates(s: str) -> bool:
        return any(same(m.group(2)) in claim and same(m.group(0)) not in q_lower for m in _NEGATION.finditer(s.lower()))

    # the sentence, or another one about the claim, denies what it asserts ("không thu được ma tuý tại nhà")
    denial = next((x for x in [sentence, *addressed] if negates(x)), None)
    if denial is not None:
        return False, denial
    return (True if coverage >= YES_COVERAGE else None), sentence
