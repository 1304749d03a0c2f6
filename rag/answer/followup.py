"""Follow-up questions: a question asked after others ("Ông ấy giữ chức vụ gì?") made self-contained, so
retrieval sees what it is about. `history` is the chat so far as OpenAI-style messages ({"role", "content"}),
the form the API, the web chat and the OpenAI-compatible server all take."""
from __future__ import annotations

import re

from rag.answer import prompt
from rag.answer.verify import entities
from rag.answer.verify.question import KIND_PATTERNS


def standalone(question: str, history: list[dict] | None, generator, how: str) -> str:
    """A follow-up made self-contained, so retrieval, the reader and the model see what it is about. "rules":
    the person the last answer named for "ông ấy", else the last question's topic before a short or elliptic
    follow-up ("kéo dài đến ngày nào?"); no model pass, which on 2 cores costs seconds before anything is
    read. "model": the generator rewrites what the rules leave unchanged."""
    if not history or not any(h.get("role") == "user" for h in history):
        return question
    resolved = resolve_person(question, history)
    if resolved != question:  # "Ông ấy ...?" after an answer naming one person: no model needed
        return resolved
    if how == "rules":
        return with_topic(question, history)
    from rag.answer.generate import complete

    try:
        out = complete(generator, prompt.rewrite_messages(question, history), max_tokens=60).strip()
    except Exception:  # a failed rewrite must not lose the question: fall back to plain concatenation
        out = ""
    out = out.splitlines()[0].strip(' "“”') if out else ""
    if not out or len(out) > 3 * len(question) + 200:
        last_user = next(h["content"] for h in reversed(history) if h.get("role") == "user")
        out = f"{last_user} {question}"
    return out


_PRONOUN = re.compile(r"\b(ông|bà|anh|chị|cô)\s+(ấy|này|đó|ta)\b|\b(người này|người đó|vị này|he|she|him|her)\b", re.I)


def resolve_person(question: str, history: list[dict]) -> str:
    """Put the person the last answer named in place of "ông ấy" / "he" ("Ông ấy giữ chức vụ gì?" ->
    "Ông Lâm Đình Thắng giữ chức vụ gì?"); the question unchanged when there is no such person."""
    last = next((h.get("content") or "" for h in reversed(history) if h.get("role") == "assistant"), "")
    people = entities.people(last)
    if not people or not _PRONOUN.search(question):
        return question

    def name(m: re.Match) -> str:
        return f"{m.group(1)} {people[0]}" if m.group(1) else people[0]

    return _PRONOUN.sub(name, question, count=1)


_ELLIPTIC = re.compile(r"^(còn|thế còn|vậy|thế|vậy còn|rồi)\b|\b(đó|này|ấy|kia|họ|nó|what about|it|they|that)\b", re.I)
SHORT = 8  # words: a follow-up this short rarely names its topic again


def with_topic(question: str, history: list[dict]) -> str:
    """The last question's topic (its words less the question words) before a short or elliptic follow-up:
    "Diễn đàn … 2025 tổ chức ở đâu?" then "kéo dài đến ngày nào?" -> "Diễn đàn … 2025 tổ chức: kéo dài đến
    ngày nào?". What is asked stays the follow-up's own (only its question words remain)."""
    if len(question.split()) > SHORT and not _ELLIPTIC.search(question):
        return question
    last = next(h.get("content") or "" for h in reversed(history) if h.get("role") == "user")
    topic = " ".join(_ASKING.sub(" ", last).split()).strip(" ,;:")
    return f"{topic}: {question}" if topic else question


_ASKING = re.compile("|".join(p for _, p in KIND_PATTERNS) + r"|\b(gì|nào|sao|thế nào|ra sao|không)\b|\?", re.I)
