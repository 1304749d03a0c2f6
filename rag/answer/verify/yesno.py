"""Yes / no questions, decided by the evidence sentence itself or not at all (the small model says "Có" to
nearly anything): the sentence that holds most of the claim's words decides; the yes/no rule of
rag.answer.verify.checks (`yesno_qualifier`: a qualifier of the claim it lacks) says when it says no."""
from __future__ import annotations

from typing import NamedTuple

from rag import text
from rag.answer import ground
from rag.answer.verify import checks
from rag.answer.verify.checks import ClaimContext, Rejection
from rag.answer.verify.lexicon import YESNO_WORDS
from rag.answer.verify.question import YESNO, Expected, terms, without_diacritics

_YESNO_FOLDED = {text.fold_diacritics(w) for w in YESNO_WORDS} | {"co"}
YES_COVERAGE = 0.8  # share of the question's claim words the deciding sentence (and the one before) must hold
ADDRESS_COVERAGE = 0.6  # below this the articles do not address the claim: no verdict


class YesNo(NamedTuple):
    verdict: bool | None  # True: yes, False: no, None: the passage gives no verdict
    sentence: str  # the deciding sentence ("" when none addresses the claim)
    rejection: Rejection | None = None  # the yes/no rule that said no


def decide_yesno(question: str, passage: str, disabled: frozenset[str] = frozenset()) -> YesNo:
    """The verdict of a passage on a yes/no question, and the sentence that decides it.

    The deciding sentence is the one (with the sentence before it) that holds most of the claim's words. No
    when a yes/no rule of rag.answer.verify.checks fires on it (`disabled` switches rules off); yes when it holds
    nearly all the claim's words and no rule fires. (Rules for another value, a qualified role or a denial in
    the sentence were measured and deleted: eval/RESULTS.md.)"""
    folded = without_diacritics(question)
    claim = frozenset(terms(question, folded) - YESNO_WORDS - _YESNO_FOLDED)
    held = set(text.syllables(ground.with_aliases(passage)))
    unheld = [n for n in ground.names(question) if not set(text.syllables(n)) <= held]
    if not claim or ground.check_mentions(question, passage) or unheld:
        return YesNo(None, "")  # a name or number of the claim that the articles never mention: no verdict
    spans = text.split_sentences(passage)
    best = None
    for i, (a, b) in enumerate(spans):
        around = terms(passage[spans[i - 1][0] : b] if i else passage[a:b], folded)
        coverage = len(claim & around) / len(claim)
        numbers_held = len(ground.numbers(question) & ground.numbers(passage[a:b]))
        if best is None or (coverage, numbers_held) > best[0]:
            best = ((coverage, numbers_held), passage[a:b])
    (coverage, _), sentence = best
    if coverage < ADDRESS_COVERAGE:
        return YesNo(None, sentence)
    # why the sentence says no: the yes/no rule of rag.answer.verify.checks, named and switchable
    ctx = ClaimContext(Expected(YESNO, False, claim, folded=folded), question, sentence, "")
    rejection = checks.run(ctx, disabled, checks.YESNO_RULES)
    if rejection is not None:
        return YesNo(False, sentence, rejection)
    return YesNo(True if coverage >= YES_COVERAGE else None, sentence)
