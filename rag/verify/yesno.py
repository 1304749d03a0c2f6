"""Yes / no questions, decided by the evidence sentence itself or not at all (the small model says "Có" to
nearly anything): no when the deciding sentence ties another value to the claim's terms, lacks a
qualifier the claim makes, qualifies a role the claim states bare, or negates a word the claim asserts."""
from __future__ import annotations

from rag import ground, text
from rag.verify.entities import qualified_role
from rag.verify.lexicon import NEGATION, QUALIFIER, YESNO_WORDS
from rag.verify.question import DATE, NUMBER, YEAR, YESNO, Expected, terms, without_diacritics
from rag.verify.spans import CLEAR_MARGIN, anchor_scores, candidate_key, candidates

_YESNO_FOLDED = {text.fold_diacritics(w) for w in YESNO_WORDS} | {"co"}
YES_COVERAGE = 0.8  # share of the question's claim words the deciding sentence (and the one before) must hold
ADDRESS_COVERAGE = 0.6  # below this the articles do not address the claim: no verdict


def decide_yesno(question: str, passage: str) -> tuple[bool | None, str]:
    """(True for yes / False for no / None for no verdict, the deciding sentence) from a passage.

    No when the deciding sentence ties another year, date or number to the claim's terms than the one
    claimed, or lacks a qualifier the claim makes ("chỉ", "có thể", "hơn"), or qualifies a role the claim
    states bare ("Phó Giám đốc" vs "Giám đốc"), or negates a word the claim asserts; yes when it holds
    nearly all the claim's words and contradicts none of them."""
    folded = without_diacritics(question)
    claim = frozenset(terms(question, folded) - YESNO_WORDS - _YESNO_FOLDED)
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
    if any(m.group(0) not in s_lower for m in QUALIFIER.finditer(q_lower)):
        return False, sentence
    if qualified_role(s_lower, q_lower, same):
        return False, sentence
    def negates(s: str) -> bool:
        return any(same(m.group(2)) in claim and same(m.group(0)) not in q_lower for m in NEGATION.finditer(s.lower()))

    # the sentence, or another one about the claim, denies what it asserts ("không thu được ma tuý tại nhà")
    denial = next((x for x in [sentence, *addressed] if negates(x)), None)
    if denial is not None:
        return False, denial
    return (True if coverage >= YES_COVERAGE else None), sentence
