"""The model's reply as it streams, cut into sentences, each with how sure the model was of its claim
(the pipeline verifies and shows a reply sentence by sentence)."""
from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?…])(?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])*\s+|\n+")


def sentence_ends(buffer: str) -> list[int]:
    """Where the finished sentences of `buffer` end (end punctuation + its markers + whitespace)."""
    ends, start = [], 0
    for m in _SENTENCE_END.finditer(buffer):
        # a sentence end inside an abbreviation ("TP. Hồ Chí Minh") or a number ("1.500") is not one
        piece = buffer[start : m.end()].strip()
        if piece and not piece.endswith(("TP.", "Tp.")):
            ends.append(m.end())
            start = m.end()
    return ends


class Reply:
    """The model's reply, cut into sentences as it streams, each with how sure the model was of its claim:
    the lowest probability it gave a word of the claim after the first one. The first only picks a phrasing
    ("Ông Lâm …" or "Lâm …"), and punctuation and [n] markers are not the claim; where the model hesitated
    over a word of the claim itself, it was choosing between facts (measured: eval/RESULTS.md). None when
    the backend reports no probabilities."""

    def __init__(self):
        self.buffer = ""
        self.start = 0  # offset of buffer[0] in the whole reply
        self.pieces: list[tuple[int, str, tuple[float, ...]]] = []  # (offset in the reply, text, probabilities)

    def add(self, delta: str) -> list[tuple[str, float | None]]:
        """The sentences `delta` finishes."""
        self.pieces.append((self.start + len(self.buffer), delta, getattr(delta, "probs", ())))
        self.buffer += delta
        done, begin = [], 0
        for end in sentence_ends(self.buffer):
            done.append(self._sentence(begin, end))
            begin = end
        self.buffer, self.start = self.buffer[begin:], self.start + begin
        self.pieces = [p for p in self.pieces if p[0] + len(p[1]) > self.start]
        return done

    def rest(self) -> list[tuple[str, float | None]]:
        """The unfinished last sentence, when the reply ends."""
        return [self._sentence(0, len(self.buffer))] if self.buffer.strip() else []

    def _sentence(self, begin: int, end: int) -> tuple[str, float | None]:
        text_ = self.buffer[begin:end]
        claim_end = self.start + begin + (text_.find("[") if "[" in text_ else len(text_))
        words = [p for at, piece, p in self.pieces
                 if at < claim_end and at + len(piece) > self.start + begin and any(c.isalnum() for c in piece)]
        if not all(words):  # a piece without probabilities: the backend does not report them
            return text_.strip(), None
        return text_.strip(), min((min(p) for p in words[1:]), default=1.0)
