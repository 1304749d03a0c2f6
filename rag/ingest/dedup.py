"""Near-duplicate articles: the same story syndicated on several sites, or republished under a new
headline, with a trimmed lead or light edits.

Each article's cleaned text (not its title: a new headline is the commonest change) becomes a set of
word shingles (SHINGLE consecutive lowercased words); MinHash (datasketch, NUM_PERM permutations)
estimates the Jaccard similarity of two sets, and an LSH index over the signatures finds candidates in
near-constant time per article, so a 22,643-article corpus is checked in one pass. A candidate is a
duplicate when its estimated Jaccard similarity reaches the threshold (settings.dedup_threshold;
precision/recall per threshold measured by eval/dedup.py, see eval/RESULTS.md) and its numbers agree.

The number check is there because the most similar different stories in real news are templates:
lottery results, exam answer keys and weather bulletins share most of their wording (Jaccard 0.6-0.98 in
vietnews) and differ in their figures, which are the news. A syndicated copy keeps the figures, and
its headline brings no multi-digit number (exam code, date, toll) that the other story lacks.
"""
from __future__ import annotations

import functools
import hashlib
import re
import zlib

import numpy as np
from datasketch import MinHash, MinHashLSH

SHINGLE = 3  # words per shingle (3 vs 5 measured in eval/RESULTS.md)
NUM_PERM = 128
_SEED = 1
_WORD = re.compile(r"\w+")
_MASK = np.uint64(0xFFFFFFFF)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
NUMBERS_MIN = 3  # both texts need this many distinct numbers for the number check to apply
NUMBERS_AGREE = 0.7  # share of the shorter text's numbers found in the other one
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


def signature(text: str, k: int = SHINGLE, hashvalues: np.ndarray | None = None) -> MinHash:
    """The MinHash of the text's shingles (or, from a cache, of its known `hashvalues`)."""
    m = MinHash(num_perm=NUM_PERM, seed=_SEED, hashfunc=int, permutations=_template.permutations,
                scheme=_template.scheme, hashvalues=hashvalues)
    hashes = shingles(text, k) if hashvalues is None else ()
    if len(hashes):
        m.update_batch(hashes.tolist())
    return m


def open_cache(settings):
    """Signatures by text hash, under settings.cache_dir: a re-index signs only new or changed texts."""
    from rag.index.cache import BlobCache

    return BlobCache(settings.cache_dir / "minhash.sqlite", "minhash")


def numbers(text: str) -> frozenset[str]:
    return frozenset(_NUMBER.findall(text))


def numbers_agree(a: frozenset[str], b: frozenset[str]) -> bool:
    """Do two texts report the same figures? (Few numbers: nothing to compare, so yes.)"""
    if min(len(a), len(b)) < NUMBERS_MIN:
        return True
    return len(a & b) / min(len(a), len(b)) >= NUMBERS_AGREE


def headline_numbers_agree(title_a: str, all_b: frozenset[str]) -> bool:
    """The multi-digit numbers of one story's headline (an exam code, a lottery date, a death toll) are
    all in the other story: a copy under a new headline does not bring new key figures."""
    return all(n in all_b for n in numbers(title_a) if len(n) >= 2)


def jaccard(a: str, b: str, k: int = SHINGLE) -> float:
    """Exact Jaccard similarity of two texts' shingle sets (for evaluation; the index uses estimates)."""
    sa, sb = set(shingles(a, k).tolist()), set(shingles(b, k).tolist())
    return len(sa & sb) / len(sa | sb) if sa or sb else 1.0


@functools.lru_cache(maxsize=None)
def _bands(threshold: float) -> tuple[int, int]:
    """LSH bands x rows for a threshold; datasketch finds them by numerical integration (~0.1 s), once."""
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    return lsh.b, lsh.r


class NearDuplicates:
    """An incremental near-duplicate finder: `find(key, text)` returns the key of an earlier text this one
    duplicates (the most similar), or None and remembers it."""

    def __init__(self, threshold: float, k: int = SHINGLE, check_numbers: bool = True, cache=None):
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
        self.threshold, self.k, self.check_numbers = threshold, k, check_numbers
        self._lsh = MinHashLSH(num_perm=NUM_PERM, params=_bands(threshold))
        self._sigs: dict[str, MinHash] = {}
        self._numbers: dict[str, frozenset[str]] = {}
        self._titles: dict[str, str] = {}
        self._cache, self._new = cache, {}  # signatures computed this run, written by flush()

    def find(self, key: str, text: str, title: str = "") -> str | None:
        sig, nums = self._signature(text), numbers(text)
        scored = sorted((sig.jaccard(self._sigs[o]), o) for o in self._lsh.query(sig))
        scored = [(sim, o) for sim, o in scored if sim >= self.threshold and (not self.check_numbers or self._same_figures(
            nums, title, o))]
        if scored:  # the most similar; among equals the smallest key, so the result never depends on set order
            return max(scored, key=lambda s: s[0])[1]
        self._lsh.insert(key, sig)
        self._sigs[key], self._numbers[key], self._titles[key] = sig, nums, title
        return None

    def _signature(self, text: str) -> MinHash:
        if self._cache is None:
            return signature(text, self.k)
        key = f"{self.k}:{NUM_PERM}:{hashlib.sha256(text.encode('utf-8')).hexdigest()}"
        if (raw := self._cache.get_many([key]).get(key)) is not None:
            return signature(text, self.k, np.frombuffer(raw, dtype=np.uint64))
        sig = self._new[key] = signature(text, self.k)
        if len(self._new) >= 1000:
            self.flush()
        return sig

    def flush(self) -> None:
        """Write the signatures computed since the last flush to the cache."""
        if self._cache is not None and self._new:
            self._cache.put_many({k: m.hashvalues.astype(np.uint64).tobytes() for k, m in self._new.items()})
        self._new = {}

    def _same_figures(self, nums: frozenset[str], title: str, other: str) -> bool:
        theirs = self._numbers[other] | numbers(self._titles[other])
        return (
            numbers_agree(nums, self._numbers[other])
            and headline_numbers_agree(title, theirs)
            and headline_numbers_agree(self._titles[other], nums | numbers(title))
        )
