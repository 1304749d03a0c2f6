"""Time in questions: "hôm qua", "tuần trước", "tháng này", "năm ngoái", "mới nhất", "ngày 27/11",
"yesterday", "last week", "latest"... resolved against a reference date (settings.today, else the real
today) into a `Period`: what the retriever should do with publication dates, and a line for the answer.

Three kinds, because the words mean different things:
- "filter": a relative period ("tuần trước" = Monday-Sunday of last week) asks for news published
  then. For a single day ("hôm qua") the filter reaches REPORT_LAG_DAYS further, since a day's events
  are often reported the next morning; a week, month or year is taken as it is (else "tuần trước"
  would take in this Monday's news).
- "prefer": a calendar day named in the question ("ngày 27/11", "27/11/2025") is usually when the
  event happened; articles about it appear before (announcements) and after (reports), and a wrong
  year guess must not empty the results. So relevant articles published within PREFER_WINDOW days of
  it rank first, and nothing is excluded. A day without a year is the latest one not after today.
- "recent": "mới nhất", "gần đây", "latest" rank relevant articles newest first, nothing excluded.
Explicit months and years ("năm 2023") are left alone: questions name them mostly as history.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import asdict, dataclass, replace

from rag.errors import InvalidSetting
from rag.answer.retrieve import Filters

REPORT_LAG_DAYS = 1
PREFER_WINDOW = (1, 3)  # days before, after a named day

_NUMBERS = {"một": 1, "hai": 2, "ba": 3, "bốn": 4, "năm": 5, "sáu": 6, "bảy": 7, "tám": 8, "chín": 9, "mười": 10,
            "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "ten": 10}
_UNIT_VI = {"ngày": "day", "tuần": "week", "tháng": "month", "năm": "year"}
_UNIT_EN = {"day": "day", "days": "day", "week": "week", "weeks": "week", "month": "month", "months": "month",
            "year": "year", "years": "year"}
_N = r"(\d{1,3}|" + "|".join(_NUMBERS) + r")"


def _rx(pattern: str) -> re.Pattern:
    return re.compile(rf"(?<!\w)(?:{pattern})(?!\w)", re.IGNORECASE)


# (pattern, what it means); the first match in the question wins, so longer phrases come first
_RULES: list[tuple[re.Pattern, str]] = [
    (_rx(rf"{_N} (ngày|tuần|tháng|năm) (?:qua|vừa qua|gần đây|gần nhất|trở lại đây)"), "last_n"),
    (_rx(rf"(?:past|last) {_N} (days?|weeks?|months?|years?)"), "last_n_en"),
    (_rx(rf"{_N} (ngày|tuần|tháng|năm) trước"), "ago"),
    (_rx(rf"{_N} (days?|weeks?|months?|years?) ago"), "ago_en"),
    (_rx(r"hôm nay|ngày hôm nay|today"), "today"),
    (_rx(r"hôm qua|ngày hôm qua|yesterday"), "yesterday"),
    (_rx(r"hôm kia|day before yesterday"), "day_before"),
    (_rx(r"tuần này|this week"), "this_week"),
    (_rx(r"tuần trước|tuần rồi|last week"), "last_week"),
    (_rx(r"tuần qua|tuần vừa qua|past week"), "past_week"),
    (_rx(r"tháng này|this month"), "this_month"),
    (_rx(r"tháng trước|tháng rồi|last month"), "last_month"),
    (_rx(r"tháng qua|tháng vừa qua|past month"), "past_month"),
    (_rx(r"năm nay|this year"), "this_year"),
    (_rx(r"năm ngoái|năm trước|năm rồi|last year"), "last_year"),
    (_rx(r"mới nhất|gần nhất|mới đây|gần đây|vừa qua|latest|newest|most recent|recently|recent"), "recent"),
    (_rx(r"(?:ngày|hôm|on)?\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})"), "day_dmy"),
    (_rx(r"(?:ngày|hôm|on)\s+(\d{1,2})[/-](\d{1,2})(?![/.-]\d)"), "day_dm"),
]


# "7 năm rồi" is a duration ("for 7 years"), not "last year": a relative phrase right after a number
# is not one ("3 năm trước", "ba tuần qua" are matched whole by the rules above).
_RELATIVE = {"today", "yesterday", "day_before", "this_week", "last_week", "past_week", "this_month",
             "last_month", "past_month", "this_year", "last_year"}
_AFTER_NUMBER = re.compile(rf"(?<!\w){_N}\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Period:
    kind: str  # "filter" | "prefer" | "recent"
    phrase: str  # the words of the question it came from
    since: str | None = None  # ISO, inclusive: the period the question names
    until: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def filter_range(self) -> tuple[str | None, str | None]:
        """Publication dates a "filter" period admits (for one day, a report the day after counts)."""
        if self.kind != "filter":
            return None, None
        if self.since != self.until:
            return self.since, self.until
        return self.since, (dt.date.fromisoformat(self.until) + dt.timedelta(days=REPORT_LAG_DAYS)).isoformat()

    def prefer_range(self) -> tuple[str, str] | None:
        if self.kind != "prefer":
            return None
        day = dt.date.fromisoformat(self.since)
        return (day - dt.timedelta(days=PREFER_WINDOW[0])).isoformat(), (day + dt.timedelta(days=PREFER_WINDOW[1])).isoformat()

    def note(self, lang: str = "vi") -> str:
        """The line the answer ends with, saying which period was used."""
        vi = lang == "vi"
        if self.kind == "recent":
            return "(Ưu tiên tin mới nhất)" if vi else "(Newest articles first)"
        span = format_range(self.since, self.until)
        if self.kind == "prefer":
            return f"(Ưu tiên bài đăng quanh ngày {span})" if vi else f"(Preferring articles from around {span})"
        return f"(Khoảng thời gian: {span})" if vi else f"(Period: {span})"


def format_range(since: str, until: str) -> str:
    """'2025-11-24', '2025-11-30' -> '24/11–30/11/2025'; one day -> '27/11/2025'."""
    a, b = dt.date.fromisoformat(since), dt.date.fromisoformat(until)
    if a == b:
        return f"{a:%d/%m/%Y}"
    return f"{a:%d/%m}–{b:%d/%m/%Y}" if a.year == b.year else f"{a:%d/%m/%Y}–{b:%d/%m/%Y}"


def reference_date(today: str | dt.date | None = None) -> dt.date:
    """settings.today ('YYYY-MM-DD') as a date; empty: the real today."""
    if isinstance(today, dt.date):
        return today
    if not today:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(str(today).strip())
    except ValueError:
        raise InvalidSetting("RAG_TODAY", today, "a date as YYYY-MM-DD, e.g. 2025-12-01") from None


def resolve(question: str, today: str | dt.date | None = None) -> Period | None:
    """The period a time phrase in `question` names, or None when it names none."""
    ref = reference_date(today)
    q = unicodedata.normalize("NFC", question)
    for pattern, meaning in _RULES:
        if (m := pattern.search(q)) and not (meaning in _RELATIVE and _AFTER_NUMBER.search(q[: m.start()])):
            period = _period(meaning, m, ref)
            if period is not None:
                return period
    return None


def apply(filters: Filters | dict | None, period: Period | None) -> Filters | None:
    """The caller's filters with the period added; dates the caller gave explicitly win."""
    f = filters if isinstance(filters, Filters) or filters is None else Filters.from_dict(filters)
    if period is None:
        return f
    f = f or Filters()
    since, until = period.filter_range()
    prefer = period.prefer_range() or (None, None)
    explicit = f.date_from or f.date_to
    return replace(
        f,
        date_from=f.date_from if explicit else since,
        date_to=f.date_to if explicit else until,
        recent=f.recent or period.kind == "recent",
        prefer_from=f.prefer_from or prefer[0],
        prefer_to=f.prefer_to or prefer[1],
    )


def _number(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBERS[word.lower()]


def _span(kind: str, phrase: str, a: dt.date, b: dt.date) -> Period:
    return Period(kind, phrase, a.isoformat(), b.isoformat())


def _month_start(day: dt.date, back: int = 0) -> dt.date:
    months = day.year * 12 + day.month - 1 - back
    return dt.date(months // 12, months % 12 + 1, 1)


def _month_end(start: dt.date) -> dt.date:
    return _month_start(start, -1) - dt.timedelta(days=1)


def _unit_span(unit: str, ref: dt.date, back: int) -> tuple[dt.date, dt.date]:
    """The whole day/week/month/year `back` units before the one `ref` is in."""
    if unit == "day":
        d = ref - dt.timedelta(days=back)
        return d, d
    if unit == "week":
        monday = ref - dt.timedelta(days=ref.weekday() + 7 * back)
        return monday, monday + dt.timedelta(days=6)
    if unit == "month":
        start = _month_start(ref, back)
        return start, _month_end(start)
    return dt.date(ref.year - back, 1, 1), dt.date(ref.year - back, 12, 31)


def _period(meaning: str, m: re.Match, ref: dt.date) -> Period | None:
    phrase = m.group(0).strip()
    if meaning in ("last_n", "last_n_en"):  # the last N units up to today
        n, unit = _number(m[1]), (_UNIT_VI.get(m[2].lower()) or _UNIT_EN[m[2].lower()])
        days = {"day": n, "week": 7 * n, "month": 30 * n, "year": 365 * n}[unit]
        return _span("filter", phrase, ref - dt.timedelta(days=days - 1), ref)
    if meaning in ("ago", "ago_en"):
        unit = _UNIT_VI.get(m[2].lower()) or _UNIT_EN[m[2].lower()]
        return _span("filter", phrase, *_unit_span(unit, ref, _number(m[1])))
    simple = {
        "today": ("day", 0), "yesterday": ("day", 1), "day_before": ("day", 2),
        "this_week": ("week", 0), "last_week": ("week", 1),
        "this_month": ("month", 0), "last_month": ("month", 1),
        "this_year": ("year", 0), "last_year": ("year", 1),
    }
    if meaning in simple:
        unit, back = simple[meaning]
        return _span("filter", phrase, *_unit_span(unit, ref, back))
    if meaning == "past_week":
        return _span("filter", phrase, ref - dt.timedelta(days=6), ref)
    if meaning == "past_month":
        return _span("filter", phrase, ref - dt.timedelta(days=29), ref)
    if meaning == "recent":
        return Period("recent", phrase)
    day, month = int(m[1]), int(m[2])
    try:
        if meaning == "day_dmy":
            d = dt.date(int(m[3]), month, day)
        else:  # no year: the latest such day not after today
            d = dt.date(ref.year, month, day)
            if d > ref:
                d = dt.date(ref.year - 1, month, day)
    except ValueError:  # "31/2", or a score like "3-1": not a date
        return None
    return _span("prefer", phrase, d, d)
