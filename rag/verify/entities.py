"""Places, people and organisations in a claim or its evidence, and what a claim adds to its question
(its new part: where its answer must be)."""
from __future__ import annotations

import re

from rag import ground, text
from rag.verify.lexicon import (ADMIN_ASKED, LOCATION, MODIFIER, MODIFIER_OF, NOT_A_PERSON, ORG_WORDS, PLACE_WORDS,
                                PLACES, ROLE_WORDS, SURNAMES, VENUE)
from rag.verify.question import DATE, NUMBER, PLACE, TIME, YEAR, Expected
from rag.verify.spans import candidates


def new_part(claim: str, question: str) -> str:
    """The claim without the words it repeats from the question: where its answer must be."""
    asked = set(text.syllables(text.fold_diacritics(question)))
    words = re.findall(r"\S+", ground.MARKER.sub(" ", claim))
    return " ".join(w for w in words if not set(text.syllables(text.fold_diacritics(w))) <= asked or not text.syllables(w))


# ------------------------------------------------------------------ places

def has_place(s: str) -> bool:
    folded = " " + " ".join(text.syllables(text.fold_diacritics(s))) + " "
    return bool(PLACE_WORDS.search(s)) or any(f" {' '.join(text.syllables(p))} " in folded for p in PLACES)


def locations(sentence: str) -> list[str]:
    return [m.group("place").strip(" ,") for m in LOCATION.finditer(sentence)]


def vaguer_place(claim_new: str, evidence: str, first: str | None = None, asked: str = "") -> str | None:
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
    return next((p for p in fuller if VENUE.search(p)), fuller[0] if fuller else None)


def the_unit_asked(question: str, claim: str, evidence: str) -> bool:
    """For "ở xã nào?": does the claim name a xã (the word itself, or a name the evidence calls "xã <name>")?"""
    m = ADMIN_ASKED.search(question.lower())
    new = new_part(claim, question)
    if not m or m.group(1) in new.lower():
        return bool(m)
    folded, unit = text.fold_diacritics(evidence.lower()), text.fold_diacritics(m.group(1))
    return any(f"{unit} {text.fold_diacritics(n.lower())}" in folded for n in ground.names(new))


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


def persons_asked(question: str) -> list[str]:
    """The people a question is about: names that start with a family name ("Trầm Bê"), not a street, a
    station or a company named after one ("đường Hà Huy Tập"), and not one only named as an owner ("đại án
    của Phạm Công Danh") when someone else is named too."""
    found = []
    for m in ground.NAME.finditer(question):
        name = ground.HONORIFIC.sub("", m.group(0))
        if is_person(name) and not NOT_A_PERSON.search(question[: m.start()]):
            found.append((name, bool(MODIFIER_OF.search(question[: m.start()]))))
    main = [n for n, owner in found if not owner]
    return main or [n for n, _ in found]


def is_person(name: str) -> bool:
    return 2 <= len(name.split()) <= 4 and name.split()[0].lower() in SURNAMES


def person_names(s: str) -> list[str]:
    return [n for n in (ground.HONORIFIC.sub("", m.group(0)) for m in ground.NAME.finditer(s)) if is_person(n)]


def nearest_person(evidence: str, at: int, people_: list[str]) -> str | None:
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


def qualified_role(s: str, question: str, same=lambda x: x) -> str:
    """A role `s` qualifies ("phó chủ") where the question names it bare ("chủ tịch"), or ""."""
    for m in MODIFIER.finditer(s):
        if same(m.group(2)) in question and same(m.group(0)) not in question:
            return m.group(0)
    return ""


# ------------------------------------------------------------------ does the claim have the right type?

def right_type(expected: Expected, claim: str, question: str) -> bool:
    """Does the claim's new part (what it adds to the question) hold an answer of the asked-for kind?"""
    if not expected.typed:
        return True
    new = new_part(claim, question)
    if expected.kind in (YEAR, DATE, TIME, NUMBER):
        return bool(candidates(expected.kind, new))
    if expected.kind == PLACE:
        return has_place(new)
    # AGENT: a person (a name that is not a place, or a role) or an organisation; a venue is not one
    if names_outside_places(new) or ROLE_WORDS.search(new):
        return True
    return bool(ORG_WORDS.search(new)) and not VENUE.search(new)
