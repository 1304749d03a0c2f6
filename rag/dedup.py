"""Near-duplicate articles: the same story syndicated on several sites, or republished under a new
headline, with a trimmed lead or light edits.

Each article's cleaned text (not its title: a new headline is the commonest change) becomes a set of
word shingles (SHINGLE consecutive lowercased words); MinHash (datasketch, NUM_PERM permutations)
estimates the Jaccard similarity of two sets, and an LSH index over the signatures finds candidates in
near-constant time per article, so a 22,643-article corpus is checked in one pass. A candidate is a
duplicate when its estimated Jaccard similarity reaches the threshold (settings.dedup_threshold;
precision/recall per threshold measured by eval/dedup.py, see eval/RESULTS.md).
"""
from __future__ import annotations

import re
import zlib

import numpy as np
from datasketch import MinHash, MinHashLSH

SHINGLE = 3  # words per shingle (3 vs 5 measured in eval/RESULTS.md)
NUM_PERM = 128
_SEED = 1
_WORD = re.compile(r"\w+")
_MASK = np.uint64(0xFFFFFFFF)
_template = MinHash(num_perm=NUM_PERM, seed=_SEED)  # the permutations, drawn once and shared


def shingles(text: str, k: int = SHINGLE) -> np.ndarray:
    """Distinct 32-bit hashes of the k-word shingles of `text` (stable across processes: crc32-based)."""
    words = np.array([zlib.crc32(w.encode("utf-8")) for w in _WORD.findall(text.lower())], dtype=np.uint64)
    if len(words) < k:  # a very short text is one shingle
        return np.unique(words.sum(keepdims=True) & _MASK) if len(words) else words
    h = np.zeros(len(words) - k + 1, dtype=np.uint64)
    for j in range(k):  # polynomial hash of the k word hashes; uint64 arithmetic wraps, which is fine
        h = h * np.uint64(1_000_003) + words[j : len(words) - k + 1 + j]
    return np.unique(h & _MASK)


def signature(text: str, k: int = SHINGLE) -> MinHash:
    m = MinHash(num_perm=NUM_PERM, seed=_SEED, hashfunc=int, permutations=_template.permutations, scheme=_template.scheme)
    hashes = shingles(text, k)
    if len(hashes):
        m.update_batch(hashes.tolist())
    return m


def jaccard(a: str, b: str, k: int = SHINGLE) -> float:
    """Exact Jaccard similarity of two texts' shingle sets (for evaluation; the index uses estimates)."""
    sa, sb = set(shingles(a, k).tolist()), set(shingles(b, k).tolist())
    return len(sa & sb) / len(sa | sb) if sa or sb else 1.0


class NearDuplicates:
    """An incremental near-duplicate finder: `find(key, text)` returns the key of an earlier text this one
    duplicates (the most similar), or None and remembers it."""

    def __init__(self, threshold: float, k: int = SHINGLE):
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
        self.threshold, self.k = threshold, k
        self._lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        self._sigs: dict[str, MinHash] = {}

    def find(self, key: str, text: str) -> str | None:
        sig = signature(text, self.k)
        scored = sorted((sig.jaccard(self._sigs[o]), o) for o in self._lsh.query(sig))
        scored = [(sim, o) for sim, o in scored if sim >= self.threshold]
        if scored:  # the most similar; among equals the smallest key, so the result never depends on set order
            return max(scored, key=lambda s: s[0])[1]
        self._lsh.insert(key, sig)
        self._sigs[key] = sig
        return None
