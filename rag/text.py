"""Vietnamese text primitives shared by indexing, grounding and evaluation:
normalisation, tokenisation for BM25, sentence splitting."""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_WORD = re.compile(r"\w+", re.UNICODE)


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def fold_diacritics(text: str) -> str:
    """'Đột phá' -> 'Dot pha': for diacritics-insensitive comparisons (eval), never for indexing."""
    text = unicodedata.normalize("NFD", nfc(text).replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in text if unicodedata.category(c) != "Mn")


def syllables(text: str) -> list[str]:
    """Lowercased syllables with diacritics kept; punctuation dropped (it only adds noise to BM25)."""
    return _WORD.findall(nfc(text).lower())


@lru_cache(maxsize=1)
def _pyvi():
    from pyvi import ViTokenizer  # imported lazily: it loads a CRF model

    return ViTokenizer


def words(text: str) -> list[str]:
    """pyvi word segmentation: multi-syllable words joined by '_' ('thành_phố')."""
    return _WORD.findall(_pyvi().tokenize(nfc(text)).lower())


def syllables_and_words(text: str) -> list[str]:
    """Both views at once: every syllable, plus each multi-syllable word pyvi finds ("thành_phố")."""
    return syllables(text) + [w for w in words(text) if "_" in w]


TOKENIZERS = {"syllable": syllables, "pyvi": words, "syllable+pyvi": syllables_and_words}
TOKENIZER_VERSION = 1  # bump when any tokenizer's output changes: it keys the BM25 token cache


def tokenizer(name: str):
    try:
        return TOKENIZERS[name]
    except KeyError:
        raise ValueError(f"unknown tokenizer {name!r}; choose one of {sorted(TOKENIZERS)}") from None


# A sentence ends at . ! ? … followed by space and a capital, digit or opening quote, or at a line break.
# Abbreviations like "TP. Hồ Chí Minh" must not end a sentence.
_ABBREV = ("TP.", "Tp.", "TS.", "PGS.", "GS.", "ThS.", "BS.", "St.", "Mr.", "Mrs.", "Dr.", "No.")
_BOUNDARY = re.compile(r"(?<=[.!?…])[\"”’)]?\s+(?=[\"“‘(]?[A-ZÀ-Ỹ0-9Đ])|\n+")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans (start, end) of the sentences of `text`, whitespace-trimmed."""
    spans, start = [], 0
    for m in _BOUNDARY.finditer(text):
        piece = text[start : m.start()]
        if piece.rstrip().endswith(_ABBREV):
            continue
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out
