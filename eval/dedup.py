"""Near-duplicate detection (rag/ingest/dedup.py): precision and recall per threshold.

Three sets, all from the shared vietnews corpus (read at run time, never copied):
- real pairs: eval/gold/dedup_pairs.jsonl, 40 hand-labelled pairs of vietnews articles that MinHash/LSH
  finds similar (Jaccard >= 0.3 over 3-word shingles; stratified by similarity band), each marked
  same story (republished, syndicated or rewritten from the same release) or not (templates such as
  lottery results, follow-ups, same case on another day); plus the corpus's exact duplicate groups;
- synthetic positives: for sampled articles, realistic republications made through the same cleaning
  as corpus loading: a new headline with page furniture around the text, a trimmed lead with an agency
  credit, light edits (~5% of words changed, one sentence dropped), an abridged copy (lead and last
  paragraph cut, ~10% of words changed);
- synthetic negatives: each sampled article with its nearest other article by TF-IDF cosine (same
  topic, different story), excluding exact copies and hand-labelled same-story pairs.

A pair counts as detected when NearDuplicates, fed the first text then the second, returns the first:
the exact code path of corpus loading (LSH candidates, estimated Jaccard >= threshold, number check).

    PYTHONPATH=. .venv/bin/python eval/dedup.py [--sample 150] [--corpus-scan]
"""
from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import json
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.ingest import dedup  # noqa: E402
from rag.ingest.clean import clean_text  # noqa: E402

VIETNEWS = ROOT.parent / "shared" / "data" / "vietnews" / "articles-test.jsonl.gz"
PAIRS = ROOT / "eval" / "gold" / "dedup_pairs.jsonl"
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
FURNITURE_TOP = ["Thời sự", "Thứ Ba, 02/12/2025, 08:15", "Chia sẻ", "Bình luận (12)"]
FURNITURE_BOTTOM = ["Tin liên quan", "Xem thêm: Giá vàng hôm nay tăng mạnh", "Có thể bạn quan tâm",
                    "Hà Nội cấm xe máy từ năm 2030", "Ý kiến của bạn", "Tối đa: 1500 ký tự", "Gửi bình luận"]
CREDITS = ["Theo TTXVN", "Nguồn: VnExpress", "(Theo Dân trí)", "PV"]


def load_vietnews() -> dict[str, dict]:
    with gzip.open(VIETNEWS, "rt", encoding="utf-8") as f:
        return {r["id"]: r for r in map(json.loads, f)}


def _edit(words: list[str], share: float, rng: random.Random) -> list[str]:
    """Change ~share of the words the way an editor does: drop one, or swap in another word of the text."""
    out = []
    for w in words:
        r = rng.random()
        if r < share / 2:
            continue
        out.append(rng.choice(words) if r < share else w)
    return out


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


def variants(article: dict, rng: random.Random) -> dict[str, tuple[str, str]]:
    """name -> (title, raw body) of realistic republications of `article`."""
    paras = [p for p in article["text"].split("\n") if p.strip()]
    body = "\n".join(paras)
    sents = _sentences(" ".join(paras))
    lead = max(1, len(sents) // 6)
    light = sents[:]
    del light[rng.randrange(len(light))]
    abridged = sents[lead:-max(1, len(sents) // 8)] or sents
    return {
        "new headline + furniture": ("Tin nóng: " + " ".join(article["summary"].split()[:12]),
                                     "\n".join(FURNITURE_TOP + [article["title"], body] + FURNITURE_BOTTOM)),
        "trimmed lead + credit": ("Cập nhật: " + article["title"], " ".join(sents[lead:]) + "\n" + rng.choice(CREDITS)),
        "light edits": (article["title"], " ".join(_edit(" ".join(light).split(), 0.05, rng))),
        "abridged + edits": (article["title"], " ".join(_edit(" ".join(abridged).split(), 0.10, rng))),
    }


def nearest_other(rows: dict[str, dict], ids: list[str], exclude: set[frozenset]) -> dict[str, str]:
    """For each id, the most similar other article by TF-IDF cosine over its text (same topic)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    keys = list(rows)
    digests = {k: hashlib.sha256(" ".join(rows[k]["text"].split()).encode()).hexdigest() for k in keys}
    vec = TfidfVectorizer(max_features=200_000, sublinear_tf=True).fit([rows[k]["text"] for k in keys])
    matrix = vec.transform([rows[k]["text"] for k in keys])
    sims = (vec.transform([rows[i]["text"] for i in ids]) @ matrix.T).toarray()
    out = {}
    for row, a in zip(sims, ids):
        for j in row.argsort()[::-1]:
            b = keys[j]
            if b != a and digests[b] != digests[a] and frozenset((a, b)) not in exclude:
                out[a] = b
                break
    return out


# Each text is compared at several thresholds and settings: sign it once per shingle size
# (NearDuplicates only reads signatures, so sharing them is safe).
dedup.signature = functools.lru_cache(maxsize=None)(dedup.signature)


def detected(a: tuple[str, str], b: tuple[str, str], threshold: float, k: int, check_numbers: bool) -> bool:
    """a, b: (title, cleaned text)."""
    finder = dedup.NearDuplicates(threshold, k, check_numbers)
    finder.find("a", a[1], a[0])
    return finder.find("b", b[1], b[0]) == "a"


def pr(pairs: list[tuple[str, str, bool]], threshold: float, k: int, check_numbers: bool) -> tuple[float, float, int, int]:
    tp = fp = fn = 0
    for a, b, same in pairs:
        hit = detected(a, b, threshold, k, check_numbers)
        tp += hit and same
        fp += hit and not same
        fn += (not hit) and same
    precision = tp / (tp + fp) if tp + fp else 1.0
    return precision, tp / (tp + fn) if tp + fn else 1.0, tp + fp, tp + fn


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample", type=int, default=150, help="articles sampled for synthetic pairs")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--corpus-scan", action="store_true", help="also run the default setting over all 22,643 articles")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows = load_vietnews()
    clean = lambda r: (r["title"], clean_text(r["text"], r["title"]))  # noqa: E731  what corpus loading indexes

    labelled = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines() if line.strip()]
    real = [(clean(rows[p["a"]]), clean(rows[p["b"]]), p["same_story"]) for p in labelled]
    groups: dict[str, list[str]] = {}
    for k, r in rows.items():
        groups.setdefault(hashlib.sha256(" ".join(r["text"].split()).encode()).hexdigest(), []).append(k)
    exact = [g for g in groups.values() if len(g) > 1]

    rng = random.Random(args.seed)
    pool = sorted(k for k, r in rows.items() if len(r["text"].split()) >= 150)
    sample = rng.sample(pool, args.sample)
    positives, kinds = [], {}
    for k in sample:
        for name, (title, body) in variants(rows[k], rng).items():
            pair = (clean(rows[k]), (title, clean_text(body, title)), True)
            positives.append(pair)
            kinds.setdefault(name, []).append(pair)
    exclude = {frozenset((p["a"], p["b"])) for p in labelled if p["same_story"]}
    neighbours = nearest_other(rows, sample, exclude)
    negatives = [(clean(rows[a]), clean(rows[b]), False) for a, b in neighbours.items()]
    synthetic = positives + negatives
    print(f"vietnews: {len(rows)} articles, {len(exact)} groups of exact duplicates "
          f"({sum(len(g) - 1 for g in exact)} copies); real labelled pairs: {len(real)} "
          f"({sum(s for *_, s in real)} same story); synthetic: {len(positives)} variants of {len(sample)} articles, "
          f"{len(negatives)} same-topic nearest neighbours; negatives with exact Jaccard >= 0.3: "
          f"{sum(dedup.jaccard(a[1], b[1]) >= 0.3 for a, b, _ in negatives)}")

    print("\n| shingle | number check | threshold | synthetic P | synthetic R | real P | real R (flagged/true) |")
    print("|---|---|---|---|---|---|---|")
    for k in (3, 5):
        for check in (False, True):
            for t in THRESHOLDS:
                sp, sr, *_ = pr(synthetic, t, k, check)
                rp, rr, flagged, true = pr(real, t, k, check)
                print(f"| {k} words | {'on' if check else 'off'} | {t} | {sp:.3f} | {sr:.3f} | {rp:.2f} | {rr:.2f} ({flagged}/{true}) |")

    print("\nrecall per kind of variant (3-word shingles, number check on):")
    print("| variant | " + " | ".join(str(t) for t in THRESHOLDS) + " |")
    print("|---|" + "---|" * len(THRESHOLDS))
    for name, pairs in kinds.items():
        print(f"| {name} | " + " | ".join(f"{pr(pairs, t, 3, True)[1]:.2f}" for t in THRESHOLDS) + " |")

    if args.corpus_scan:
        from rag.config import Settings

        t = Settings().dedup_threshold
        t1 = time.perf_counter()
        finder, found = dedup.NearDuplicates(t), []
        seen: set[str] = set()
        for key, r in rows.items():
            digest = hashlib.sha256(" ".join(r["text"].split()).encode()).hexdigest()
            if digest in seen:
                continue  # exact copies are the corpus reader's first rule
            seen.add(digest)
            if (kept := finder.find(key, r["text"], r["title"])) is not None:
                found.append((kept, key))
        print(f"\ncorpus scan at threshold {t}: {len(found)} near-duplicates among {len(seen)} distinct texts "
              f"in {time.perf_counter() - t1:.1f} s")
        for kept, key in found:
            print(f"  {kept} <- {key}: {rows[kept]['title'][:60]} | {rows[key]['title'][:60]}")
    print(f"\n({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
