"""Training data for the reader (rag/reader.py): question + passage -> answer span or no answer.

Sources (../shared/data/qa, read at run time, never copied into the repo):
- `viquad`: UIT-ViQuAD 2.0 rows from 301 on (research data, no licence stated: non-commercial use only);
  a third of its questions are unanswerable, each with a tempting wrong span;
- `xquad`: XQuAD-vi rows from 301 on (CC BY-SA 4.0).
Rows 1-300 of each file are the evaluation slice: their rows *and their passages* stay out, so no
evaluated passage was ever read in training. Everything listed in `training_exclude.sha256` (an
evaluation set kept outside the project) stays out too: a row whose passage or question is listed.
Negatives are made: a question paired with another passage of its article that does not hold its answer.

`rag reader prepare` writes one JSON object per example; `--permissive` keeps only CC BY-SA data.
"""
from __future__ import annotations

import csv
import hashlib
import json
import random
import unicodedata
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from rag.errors import RagError
from rag.text import fold_diacritics

EVAL_ROWS = 300  # rows 1-300 of each file: the evaluation slice
SOURCES = {
    "viquad": ("ViQuAD2_dev.csv", "UIT-ViQuAD 2.0 (VLSP 2021 MRC): research data, no licence stated; non-commercial use only"),
    "xquad": ("XQuAD_vi.csv", "XQuAD (Artetxe et al. 2020): CC BY-SA 4.0"),
}
PERMISSIVE = ("xquad",)
VALID_SHARE = 0.1  # of passages: the validation part the no-answer threshold is chosen on
NEGATIVE_SHARE = 0.5  # answerable questions that also get a passage of their article without the answer


@dataclass
class Example:
    id: str
    source: str
    question: str
    context: str
    answer: str  # "" = no answer in this passage
    start: int  # character offset of the answer in the context; -1 = no answer
    kind: str  # "answer" | "unanswerable" (the set's own) | "negative" (made: another passage of the article)
    split: str  # "train" | "valid"


def normalised_hash(text: str) -> str:
    """sha256 of the NFC-normalised, whitespace-collapsed text: the form of training_exclude.sha256."""
    return hashlib.sha256(" ".join(unicodedata.normalize("NFC", text).split()).encode("utf-8")).hexdigest()


def load_exclude(path: Path) -> set[str]:
    """The listed hashes (contexts and questions alike: a hash names its text whatever its kind)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise RagError(f"{path}: cannot read the exclusion list ({e.strerror or e}); training data is never "
                       "prepared without it") from e
    hashes = {parts[1] for line in lines if len(parts := line.split()) == 2 and not line.startswith("#")}
    if not hashes:
        raise RagError(f"{path}: no hashes in the exclusion list")
    return hashes


def read_csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def unaccented(question: str) -> str:
    """The question as many users type it, without diacritics: 'Ai phát biểu?' -> 'ai phat bieu?' (the sets'
    questions are all accented; `rag reader eval --unaccented` measures the reader on this form)."""
    return fold_diacritics(question).lower()


def _split(context: str) -> str:
    """By passage, so no passage is in both parts."""
    return "valid" if int(normalised_hash(context)[:8], 16) / 0xFFFFFFFF < VALID_SHARE else "train"


def examples(data_dir: Path, sources=tuple(SOURCES), exclude: set[str] | None = None, seed: int = 0) -> tuple[list[Example], dict]:
    """The training examples of `sources` and counts of what was kept and left out, by reason."""
    data_dir = Path(data_dir)
    exclude = load_exclude(data_dir / "training_exclude.sha256") if exclude is None else exclude
    rng = random.Random(seed)
    out: list[Example] = []
    counts: dict[str, int] = defaultdict(int)
    for name in sources:
        rows = read_csv(data_dir / SOURCES[name][0])
        evaluated = {normalised_hash(r["context"]) for r in rows[:EVAL_ROWS]}
        by_title: dict[str, list[str]] = defaultdict(list)
        kept: list[tuple[int, dict]] = []
        for i, r in enumerate(rows[EVAL_ROWS:], start=EVAL_ROWS + 2):  # +2: header line, 1-based lines
            ctx, q = r["context"].strip(), r["question"].strip()
            h = normalised_hash(ctx)
            if h in exclude or normalised_hash(q) in exclude:
                counts[f"{name}: excluded (training_exclude.sha256)"] += 1
                continue
            if h in evaluated:
                counts[f"{name}: passage in the evaluation slice"] += 1
                continue
            if ctx not in by_title[r.get("title", "")]:
                by_title[r.get("title", "")].append(ctx)
            kept.append((i, r))
        for i, r in kept:
            ctx, q = r["context"].strip(), r["question"].strip()
            impossible = (r.get("is_impossible") or "0").strip().lower() in ("1", "true")
            answer = "" if impossible else (r.get("answer") or "").strip()
            start = ctx.find(answer) if answer else -1
            if answer and start < 0:
                counts[f"{name}: answer not found in its passage"] += 1
                continue
            split = _split(ctx)
            out.append(Example(f"{name}-{i}", name, q, ctx, answer, start, "unanswerable" if impossible else "answer", split))
            counts[f"{name}: {out[-1].kind}"] += 1
            if answer and rng.random() < NEGATIVE_SHARE:
                others = [c for c in by_title[r.get("title", "")]
                          if c != ctx and answer.lower() not in c.lower() and _split(c) == split]
                if others:
                    out.append(Example(f"{name}-{i}-neg", name, q, rng.choice(others), "", -1, "negative", split))
                    counts[f"{name}: negative"] += 1
    return out, dict(counts)


def evaluation_examples(path: Path, limit: int = EVAL_ROWS, *, accents: bool = True) -> list[Example]:
    """The evaluation slice of a QA CSV (its first `limit` rows), every third row the held-out part as in
    rag.evalsets; `accents=False`: the questions typed without diacritics."""
    out = []
    for i, r in enumerate(read_csv(Path(path))[:limit]):
        impossible = (r.get("is_impossible") or "0").strip().lower() in ("1", "true")
        q = r["question"].strip() if accents else unaccented(r["question"].strip())
        out.append(Example(f"{Path(path).stem}-{i + 2}", Path(path).stem, q, r["context"].strip(),
                           "" if impossible else (r.get("answer") or "").strip(), -1,
                           "unanswerable" if impossible else "answer", "holdout" if i % 3 == 2 else "dev"))
    return out


def write(path: Path, items: list[Example], counts: dict, sources) -> Path:
    """The examples as JSON Lines, written atomically, with a sidecar of counts and licences."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", encoding="utf-8") as f:
        for e in items:
            f.write(json.dumps(asdict(e), ensure_ascii=False) + "\n")
    tmp.replace(path)
    meta = {"counts": counts, "sources": {s: SOURCES[s][1] for s in sources},
            "examples": len(items), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    path.with_suffix(".meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def read(path: Path) -> list[Example]:
    with open(path, encoding="utf-8") as f:
        return [Example(**json.loads(line)) for line in f if line.strip()]
