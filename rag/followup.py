"""Follow-up questions: a question asked after others ("Ông ấy giữ chức vụ gì?") made self-contained, so
retrieval sees what it is about. `history` is the chat so far as OpenAI-style messages ({"role", "content"}),
the form the API, the web chat and the OpenAI-compatible server all take."""
from __future__ import annotations

import re

from rag import prompt
from rag.verify import entities


def standalone(question: str, history: list[dict] | None, generator) -> str:
    """Rewrite a follow-up into a self-contained question, so retrieval sees what it is about."""
    if not history or not any(h.get("role") == "user" for h in history):
        return question
    resolved = resolve_person(question, history)
    if resolved != question:  # "Ông ấy ...?" after an answer naming one person: no model needed
        return resolved
    from rag.generate import complete

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
