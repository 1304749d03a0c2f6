"""People and organisations in a claim, and what a claim adds to its question (its new part: where its
answer must be)."""
from __future__ import annotations

import re

from rag import text
from rag.answer import ground
from rag.answer.verify.lexicon import ORG_WORDS, PLACES


def new_part(claim: str, question: str) -> str:
    """The claim without the words it repeats from the question: where its answer must be."""
    asked = set(text.syllables(text.fold_diacritics(question)))
    words = re.findall(r"\S+", ground.MARKER.sub(" ", claim))
    return " ".join(w for w in words if not set(text.syllables(text.fold_diacritics(w))) <= asked or not text.syllables(w))


# ------------------------------------------------------------------ people and organisations

def names_outside_places(s: str) -> list[str]:
    out = []
    for n in ground.names(s):
        folded = " ".join(text.syllables(text.fold_diacritics(n)))
        if folded and not any(folded == " ".join(text.syllables(p)) for p in PLACES):
            out.append(n)
    return out


def people(s: str) -> list[str]:
    """Names in a text that are neither places, organisations nor acronyms: "Lâm Đình Thắng" in an answer."""
    return [n for n in names_outside_places(s)
            if not ORG_WORDS.search(n) and not any(c.isdigit() for c in n) and not n.replace(".", "").isupper()]


_LIST_JOIN = re.compile(r",|;|\b(và|cùng|with|and)\b", re.I)


def names_listed(claim: str, question: str) -> list[str]:
    """The names a claim lists in what it adds to the question ("Lâm Đình Thắng và Võ Minh Thành"), when it
    joins two or more of them; else []."""
    asked = set(text.syllables(text.fold_diacritics(question)))
    found = [n for n in dict.fromkeys(ground.names(claim)) if not set(text.syllables(text.fold_diacritics(n))) <= asked]
    return found if len(found) >= 2 and _LIST_JOIN.search(claim) else []
