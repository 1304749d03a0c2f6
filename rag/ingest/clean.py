"""Remove page furniture from Vietnamese news text: comment boxes, related-article teasers, photo
credits, page header lines and repeated titles.

The rules describe the *kind* of line (a comment-box prompt, a "Tin liên quan" heading, a line
ending in "- Ảnh: <credit>", a "category + weekday + date" header), so that they hold for pages
of other Vietnamese news sites, not only for the pages they were written against. The input has
one paragraph per line; the output joins the kept paragraphs with blank lines.
"""
from __future__ import annotations

import datetime as dt
import re

from rag.text import nfc

# Prompts that open a comment box (regular expressions, lower case, each starting with a letter).
# The box and everything after it (footers, other articles) are page, not article.
_COMMENT_BOX = [
    "ý kiến của bạn", "ý kiến bạn đọc", "bình luận(?: của bạn)?", "các bình luận",
    "gửi bình luận", "viết bình luận", "xem thêm bình luận", "xem tất cả bình luận",
    "hiện chưa có bình luận(?: nào)?", "chưa có bình luận(?: nào)?",
    "hiện chưa có bình luận nào[,.]? hãy là người đầu tiên bình luận",
    r"tối đa:? ?\d[\d.,]* ký tự",
]
# Comment counters ("Bình luận (3)", "12 bình luận") are links near the title: drop the line only.
_COMMENT_COUNT = re.compile(r"(?:bình luận|ý kiến) ?\(\d+\)|\d+ (?:bình luận|ý kiến)", re.I)
# Headings of related-article teaser blocks.
_TEASER = [
    "có thể bạn sẽ thích", "có thể bạn quan tâm", "xem thêm", "đọc thêm",
    "tin liên quan", "tin bài liên quan", "bài liên quan", "bài viết liên quan",
    "tin cùng chuyên mục", "bài cùng chuyên mục", "cùng chuyên mục", "tin cùng chủ đề",
    "tin khác", "tin mới", "tin mới nhất", "tin nổi bật", "tin xem nhiều", "xem nhiều", "đọc nhiều",
]
# Whole lines that are buttons or share widgets.
_WIDGETS = {
    "chia sẻ", "chia sẻ bài viết", "share", "tweet", "facebook", "zalo", "copy link", "sao chép liên kết",
    "in bài", "bản in", "lưu", "lưu bài", "quay lại", "trở lại", "về trang chủ", "nghe bài viết",
    "theo dõi", "gửi bài viết", "gửi tin bài",
}


def _alternation(patterns: list[str], capitalised: bool = False) -> str:
    # Longest first, so "xem thêm bình luận" wins over "xem thêm" and "tin mới nhất" over "tin mới".
    ordered = sorted(patterns, key=len, reverse=True)
    if capitalised:  # first letter upper case, the rest any case: "Bình luận", "Xem THÊM"
        ordered = [f"{p[0].upper()}(?i:{p[1:]})" for p in ordered]
    return "|".join(ordered)


# A furniture phrase at the start of a line (after an optional ">>"), and what follows it.
_COMMENT_LINE = re.compile(rf"(?:>+ ?)?(?:{_alternation(_COMMENT_BOX)})(?P<rest>.*)", re.I)
_TEASER_LINE = re.compile(rf"(?:>+ ?|[»›] ?)?(?:{_alternation(_TEASER)})(?P<rest>.*)", re.I)
# What may follow a heading on its own line: punctuation and arrows; or, on an inline link
# ("Xem thêm: <title>", "Xem thêm >>> <title>"), the linked title.
_HEADING_TAIL = re.compile(r"[\s:.…|>»›\-–]*")
_LINK_TAIL = re.compile(r"\s*[:>»›|–-][\s:>»›|–-]*\S")
# A capitalised furniture phrase run on to the text before it ("…bền vững.Ý kiến của bạn"):
# _lines splits the line there. Capitalised only, or "Martin khác" would split as "Mar|tin khác".
_GLUED = re.compile(_alternation(_COMMENT_BOX + _TEASER, capitalised=True))
_GLUE_AFTER = re.compile(r"[^\W\d_]|[.!?…”)]")  # what the phrase is glued to (not an opening quote)

# Photo captions: a short line whose end is a credit: "... - Ảnh: T.D.", "... (Ảnh: Reuters)",
# "... - Ảnh minh họa", "Nguồn ảnh: ...". The credit must follow a line start, a dash, a bracket or
# a sentence end, and a bare "ảnh" needs its ":", so prose that mentions "(ảnh)" or "hình ảnh" stays.
# The caption's text is content (it often names a person and a role the body never repeats: "Ông X -
# Chủ tịch Y phát biểu"); only the credit is furniture, so only the credit is dropped.
_CREDIT = (
    r"(?:(?:nguồn ảnh|nguồn|ảnh|đồ h(?:ọa|oạ)|photo)\s*:\s*[^()]{1,60}?"
    r"|ảnh (?:minh h(?:ọa|oạ)|chụp màn hình|tư liệu)(?:\s*:\s*[^()]{1,60}?)?)"
)
_CAPTION = re.compile(rf"(?:^|[-–—|]\s*|\(\s*|[.!?…]\s+)(?P<credit>{_CREDIT})\s*\)?\s*\.?$", re.I)
_CAPTION_MAX = 300  # characters; a longer line is a paragraph that happens to end with a credit
_CREDIT_SPAN = 130  # characters from the line end within which a credit starts (searching less is faster)

# Page header and teaser meta lines: an optional short category, then only weekday/date/time
# ("Công nghệ Thứ Sáu 28/11/2025, 07:36", "Kinh tế 09:48 27/11/2025", "28/11/2025 07:36 GMT+7").
_WEEKDAY = r"(?:thứ ?(?:hai|ba|tư|năm|sáu|bảy|[2-7])|chủ ?nhật|cn)"
_DATE = r"(?:\d{1,2}[/.-]\d{1,2}[/.-]\d{4}|\d{4}-\d{1,2}-\d{1,2})"
_TIME = r"(?:\d{1,2}[:h]\d{2}(?::\d{2})?(?: ?(?:am|pm|sa|ch))?)"
_ZONE = r"(?:\(?(?:gmt|utc) ?[+-] ?\d{1,2}\)?)"
_DATELINE = re.compile(
    rf"(?:[^\W\d_]+(?: [^\W\d_]+){{0,4}} ?[|•·,–-]? ?)?"  # category
    rf"(?:(?:{_WEEKDAY}|{_DATE}|{_TIME}|{_ZONE})[\s,|–-]*)+",
    re.I,
)
_HAS_DATE = re.compile(_DATE)
# With a category in front, a date alone is not enough ("Hàng không tăng giá từ 1/10/2017" is a
# sentence): a header also has a weekday or a time.
_DATE_ONLY = re.compile(rf"{_DATE}[\s,.]*")
_DAY_OR_TIME = re.compile(rf"\b(?:{_WEEKDAY}|{_TIME})\b", re.I)
_DATELINE_MAX = 80  # characters

_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")  # zero-width spaces, BOM, soft hyphen
_MIN_REPEAT = 20  # characters; shorter repeated lines ("Ảnh", "Video", a name) may legitimately recur
_TITLE_LIKE_MAX = 160  # characters; a teaser title, not a paragraph
_SENTENCE_END = tuple(".!?…:;")  # a teaser title has none of these at its end; a paragraph does


# C0 and C1 control characters but tab and newline: an article (text or metadata) holding ESC or NUL
# could drive the terminal of whoever prints it. Whitespace ones (CR, FF, NEL...) become a space.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_controls(text: str) -> str:
    """`text` without control characters (tab and newline kept; CR, FF and the like as a space)."""
    return _CONTROL.sub(lambda m: " " if m[0].isspace() else "", text)


def escape_controls(text: str, template: str = "\\x{:02x}") -> str:
    """`text` with each control character (but tab and newline) written as an escape, e.g. ESC as
    the four characters \\x1b: for a terminal, which must never receive them raw."""
    return _CONTROL.sub(lambda m: template.format(ord(m[0])), text)


def normalize(text: str) -> str:
    """NFC, invisible characters removed, all whitespace runs (newlines included) as one space."""
    return " ".join(_INVISIBLE.sub("", nfc(text)).split())


def is_dateline(line: str) -> bool:
    """A page header or teaser meta line: optional category, then only weekday/date/time."""
    return _is_dateline(normalize(line))


def is_furniture_line(line: str) -> bool:
    """A line that clean_text does not keep as it is: header, caption, widget, comment or teaser heading."""
    return _line_kind(normalize(line)) != "body"


def clean_text(text: str, title: str | None = None) -> str:
    """The article body without page furniture, paragraphs separated by blank lines."""
    lines = _lines(text)
    title_key = _key(normalize(title)) if title else None
    total = sum(map(len, lines))
    kept: list[str] = []
    seen: set[str] = set()
    done = 0  # characters of input before the current line: where in the page we are
    in_teaser_box = False
    for line in lines:
        at, done = done, done + len(line)
        kind = _line_kind(line)
        if kept and (kind == "comment" or (kind == "teaser" and at >= total / 2)):
            break  # the article ended: what follows is the comment box or the related-articles tail
        if kind == "teaser":
            in_teaser_box = True  # a related box mid-article: drop its heading and the titles under it
            continue
        if in_teaser_box and len(line) <= _TITLE_LIKE_MAX and not line.endswith(_SENTENCE_END):
            continue
        in_teaser_box = False
        if kind == "caption":
            line, kind = _without_credit(line), "body"
        key = _key(line)
        if kind != "body" or not line or key == title_key or key in seen:
            continue
        if len(key) >= _MIN_REPEAT:
            seen.add(key)
        kept.append(line)
    return "\n\n".join(kept)


def _lines(text: str) -> list[str]:
    """Normalised non-empty lines, a glued furniture phrase split off the text before it."""
    out = []
    for raw in _INVISIBLE.sub("", nfc(text)).splitlines():
        cuts = [m.start() for m in _GLUED.finditer(raw) if m.start() and _GLUE_AFTER.match(raw, m.start() - 1)]
        for start, end in zip([0] + cuts, cuts + [len(raw)]):
            piece = " ".join(raw[start:end].split())
            if piece:
                out.append(piece)
    return out


# The helpers below take one normalised line.


def _key(line: str) -> str:
    """Comparison form: case-folded, Markdown heading marks dropped."""
    return line.lstrip("#").strip().casefold()


def _line_kind(line: str) -> str:
    """'comment' (a comment box starts), 'teaser' (a related-articles heading), 'caption', 'drop' or 'body'."""
    m = _COMMENT_LINE.match(line)
    if m and _ends_phrase(m["rest"]):
        return "comment"
    m = _TEASER_LINE.match(line)
    if m and _ends_phrase(m["rest"]):
        return "teaser"
    if m and _LINK_TAIL.match(m["rest"]) and len(line) <= _TITLE_LIKE_MAX:
        return "drop"  # "Xem thêm: <title of another article>"
    if _COMMENT_COUNT.fullmatch(line) or _is_dateline(line) or _key(line) in _WIDGETS:
        return "drop"
    return "caption" if _caption_credit(line) else "body"


def _ends_phrase(rest: str) -> bool:
    """The phrase is a heading: alone on its line, or glued to the next page element
    ("…người đầu tiên bình luậnTiêu đề khác"), not the start of a sentence ("Bình luận về …")."""
    if _HEADING_TAIL.fullmatch(rest):
        return True
    return rest[0].isupper() or rest[0].isdigit() or rest[0] in "\"“'‘"


def _is_dateline(line: str) -> bool:
    if len(line) > _DATELINE_MAX or not _HAS_DATE.search(line) or not _DATELINE.fullmatch(line):
        return False
    return bool(_DATE_ONLY.fullmatch(line) or _DAY_OR_TIME.search(line))


def _without_credit(caption: str) -> str:
    """The caption's text, its credit and the dash or bracket before it removed, ended as a sentence
    ("Ông X phát biểu - Ảnh: T.D." -> "Ông X phát biểu."); "" when the line was only a credit."""
    text = caption[: _caption_credit(caption).start("credit")].rstrip(" -–—|(")
    if not any(c.isalnum() for c in text):
        return ""
    return text if text.endswith(_SENTENCE_END) else text + "."


def _caption_credit(line: str) -> re.Match | None:
    if len(line) > _CAPTION_MAX:
        return None
    return _CAPTION.search(line, max(0, len(line) - _CREDIT_SPAN))


_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DMY_DATE = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")


def parse_date(value) -> str | None:
    """ISO YYYY-MM-DD from a date object or a string in a common form ('2025-11-28', '28/11/2025',
    '2-12-2025', 'Thứ Sáu 28/11/2025, 07:36', 'ngày 2-12-2025'); None if there is no valid date."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, str):
        return None
    if m := _ISO_DATE.search(value):
        y, mo, d = m.groups()
    elif m := _DMY_DATE.search(value):
        d, mo, y = m.groups()
    else:
        return None
    try:
        return dt.date(int(y), int(mo), int(d)).isoformat()
    except ValueError:
        return None
