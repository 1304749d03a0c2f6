"""Training data for the reader (rag/answer/reader.py): question + passage -> answer span or no answer.

Sources (../shared/data/qa, read at run time, never copied into the repo), each with its terms:
- `viquad`: UIT-ViQuAD 2.0 rows from 301 on; a third of its questions are unanswerable, each with a
  tempting wrong span;
- `xquad`: XQuAD-vi rows from 301 on;
- the training pack in `train/` (see ../shared/data/README.md): `viquad1` (UIT-ViQuAD 1.0), `vinewsqa`
  (UIT-ViNewsQA, health news), `uit` (hand-made Wikipedia and regulation questions), `mailong25` ("who"
  questions, two thirds asking a relation the sentence does not state), `zalo` (question-paragraph pairs
  labelled "answers" without a span, or "does not answer"), `squad2mt` (SQuAD 2.0's adversarial
  unanswerable questions, machine-translated).
Rows 1-300 of ViQuAD2_dev.csv and XQuAD_vi.csv are the evaluation slice: their rows *and their passages*
stay out of every source, so no evaluated passage was ever read in training. Everything listed in
`training_exclude.sha256` (an evaluation set kept outside the project) stays out too: a row whose passage
or question is listed. Made negatives pair a question with another passage of its article that does not
hold its answer.

Kinds: `answer` (a span), `answer-nospan` (answers, span unknown: trains answerability only),
`unanswerable` (a real question its passage does not answer), `not-answering` (a related paragraph that
does not answer), `negative` (made).

`rag reader prepare` writes one JSON object per example; `--permissive` keeps only CC BY-SA data.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import json
import random
import re
import unicodedata
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from rag.errors import RagError
from rag.text import fold_diacritics

EVAL_ROWS = 300  # rows 1-300 of ViQuAD2_dev.csv and XQuAD_vi.csv: the evaluation slice
EVAL_FILES = ("ViQuAD2_dev.csv", "XQuAD_vi.csv")
NONCOMMERCIAL = "UIT research data, no licence stated: non-commercial use only"
# name -> (files under the QA folder, licence); CSVs are the evaluation files' rows from 301 on
SOURCES = {
    "viquad": (("ViQuAD2_dev.csv",), "UIT-ViQuAD 2.0 (VLSP 2021 MRC): " + NONCOMMERCIAL),
    "xquad": (("XQuAD_vi.csv",), "XQuAD (Artetxe et al. 2020): CC BY-SA 4.0"),
    "viquad1": (("train/viquad1_train.jsonl.gz", "train/viquad1_dev_test.jsonl.gz"), "UIT-ViQuAD 1.0: " + NONCOMMERCIAL),
    "vinewsqa": (("train/vinewsqa_dev_test.jsonl.gz",), "UIT-ViNewsQA: " + NONCOMMERCIAL),
    "uit": (("train/uit_wiki_reg.jsonl.gz",), "Nanibot ZaloAIChallenge2019 hand-made Wikipedia/regulation questions: MIT (repository)"),
    "mailong25": (("train/mailong25_person_qa.jsonl.gz",), "mailong25/bert-vietnamese-question-answering: no licence stated"),
    "zalo": (("train/zalo2019_part.jsonl.gz",), "Zalo AI Challenge 2019 QA (via hoangtheanhhp/ZaloQA, MIT): the competition data's own terms are not stated"),
    "squad2mt": (("train/squad2_vi_mt_unanswerable.jsonl.gz",), "SQuAD 2.0 (Rajpurkar et al. 2018): CC BY-SA 4.0; machine translation: MIT (repository)"),
}
PERMISSIVE = ("xquad", "squad2mt")
VALID_SHARE = 0.1  # of passages: the validation part the no-answer threshold is chosen on
NEGATIVE_SHARE = 0.25  # answerable questions that also get a passage of their article without the answer
# Rows kept at most, by source (a seeded sample). Every translated SQuAD passage in `squad2mt` carries an
# unanswerable question, and XQuAD's ~880 training rows are its only answerable ones: at 4,397 the passages' style
# itself meant "no answer" (the reader trained on all of them refused 41 % of XQuAD's answerable questions).
CAPS = {"squad2mt": 900}
HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass
class Example:
    id: str
    source: str
    question: str
    context: str
    answer: str  # "" = no answer in this passage (or, for "answer-nospan", an answer whose span is unknown)
    start: int  # character offset of the answer in the context; -1 = no answer, or no span
    kind: str  # "answer" | "answer-nospan" | "unanswerable" | "not-answering" | "negative" (module doc)
    split: str  # "train" | "valid"


def normalised_hash(text: str) -> str:
    """sha256 of the NFC-normalised, whitespace-collapsed text: the form of training_exclude.sha256."""
    return hashlib.sha256(" ".join(unicodedata.normalize("NFC", text).split()).encode("utf-8")).hexdigest()


def load_exclude(path: Path) -> set[str]:
    """The listed hashes (contexts and questions alike: a hash names its text whatever its kind). Every line
    that is not a comment must be `KIND HEX` with 64 hex digits: a list of anything else would let the held-out
    items through, so it is refused."""
    try:
        lines = Path(path).read_bytes().decode("utf-8").splitlines()
    except OSError as e:
        raise RagError(f"{path}: cannot read the exclusion list ({e.strerror or e}); training data is never "
                       "prepared without it") from e
    except UnicodeDecodeError as e:
        raise RagError(f"{path}: the exclusion list is not UTF-8 text (a binary file?)") from e
    hashes = set()
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or not HEX64.fullmatch(parts[1].lower()):
            raise RagError(f"{path}:{n}: not an exclusion line (want `context|question <64 hex digits>`): {line[:80]!r}")
        hashes.add(parts[1].lower())
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


_SPACED = re.compile(r"\s+([.,;:!?)%\]»”])|([(\[«“])\s+")


def _detokenise(text: str) -> str:
    """Zalo's text has a space before punctuation ("Facebook ."): joined as in the other sources, so the space
    cannot become a cue for "does not answer"."""
    return _SPACED.sub(lambda m: m.group(1) or m.group(2), text)


def _rows(data_dir: Path, name: str) -> list[dict]:
    """A source's rows as dicts with title, context, question, answer, start, kind (`start` -1 = find it)."""
    out = []
    for file in SOURCES[name][0]:
        path = data_dir / file
        if not path.exists():
            raise RagError(f"{path}: missing (source {name!r}; see ../shared/data/README.md)")
        if file.endswith(".csv"):
            for i, r in enumerate(read_csv(path)[EVAL_ROWS:], start=EVAL_ROWS + 2):  # +2: header line, 1-based lines
                impossible = (r.get("is_impossible") or "0").strip().lower() in ("1", "true")
                out.append({"id": f"{name}-{i}", "title": r.get("title", ""), "context": r["context"], "question": r["question"],
                            "answer": "" if impossible else (r.get("answer") or "").strip(), "start": -1,
                            "kind": "unanswerable" if impossible else "answer"})
            continue
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                ctx, q = r["context"], r["question"]
                if name == "zalo":
                    ctx, q = _detokenise(ctx), _detokenise(q)
                if r["answerable"]:
                    kind = "answer" if r["answer"] else "answer-nospan"
                else:
                    kind = "not-answering" if name == "zalo" else "unanswerable"
                out.append({"id": f"{name}-{r['id']}", "title": r.get("title", ""), "context": ctx, "question": q,
                            "answer": (r["answer"] or "").strip() if kind == "answer" else "",
                            "start": int(r["start"]) if kind == "answer" else -1, "kind": kind})
    return out


def evaluated_hashes(data_dir: Path) -> set[str]:
    """Passages and questions of both evaluation slices: kept out of every source."""
    out = set()
    for file in EVAL_FILES:
        path = Path(data_dir) / file
        if path.exists():
            for r in read_csv(path)[:EVAL_ROWS]:
                out |= {normalised_hash(r["context"]), normalised_hash(r["question"])}
    return out


def examples(data_dir: Path, sources=tuple(SOURCES), exclude: set[str] | None = None, seed: int = 0) -> tuple[list[Example], dict]:
    """The training examples of `sources` and counts of what was kept and left out, by reason."""
    data_dir = Path(data_dir)
    exclude = load_exclude(data_dir / "training_exclude.sha256") if exclude is None else exclude
    evaluated = evaluated_hashes(data_dir)
    rng = random.Random(seed)
    out: list[Example] = []
    counts: dict[str, int] = defaultdict(int)
    seen: set[tuple[str, str]] = set()
    for name in sources:
        by_title: dict[str, list[str]] = defaultdict(list)
        kept = []
        for r in _rows(data_dir, name):
            ctx, q = r["context"].strip(), r["question"].strip()
            h, hq = normalised_hash(ctx), normalised_hash(q)
            if h in exclude or hq in exclude:
                counts[f"{name}: excluded (training_exclude.sha256)"] += 1
                continue
            if h in evaluated or hq in evaluated:
                counts[f"{name}: passage or question in an evaluation slice"] += 1
                continue
            if (h, hq) in seen:
                counts[f"{name}: duplicate"] += 1
                continue
            seen.add((h, hq))
            if ctx not in by_title[r["title"]]:
                by_title[r["title"]].append(ctx)
            kept.append(r | {"context": ctx, "question": q})
        cap = CAPS.get(name)
        if cap is not None and len(kept) > cap:
            counts[f"{name}: left out (CAPS)"] = len(kept) - cap
            kept = random.Random(seed).sample(kept, cap)
        for r in kept:
            ctx, q, answer, kind = r["context"], r["question"], r["answer"], r["kind"]
            start = r["start"]
            if answer and ctx[start : start + len(answer)] != answer:  # offsets of the raw text, or none: find it
                start = ctx.find(answer)
                if start < 0:
                    counts[f"{name}: answer not found in its passage"] += 1
                    continue
            split = _split(ctx)
            out.append(Example(r["id"], name, q, ctx, answer, start, kind, split))
            counts[f"{name}: {kind}"] += 1
            if answer and rng.random() < NEGATIVE_SHARE:
                others = [c for c in by_title[r["title"]]
                          if c != ctx and answer.lower() not in c.lower() and _split(c) == split]
                if others:
                    out.append(Example(f"{r['id']}-neg", name, q, rng.choice(others), "", -1, "negative", split))
                    counts[f"{name}: negative"] += 1
    return out, dict(counts)


_FLAGS = {"": False, "0": False, "false": False, "1": True, "true": True}


def evaluation_examples(path: Path, limit: int = EVAL_ROWS, *, accents: bool = True) -> list[Example]:
    """The evaluation slice of a QA CSV (its first `limit` rows), every third row the held-out part as in
    rag.eval.evalsets; `accents=False`: the questions typed without diacritics. A file that cannot be scored (no
    such file, missing columns, no rows, a row without question, passage or answer, an `is_impossible`
    that is not 0/1) is refused with the line at fault: a score over nothing would read as a result."""
    path = Path(path)
    try:
        rows = read_csv(path)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise RagError(f"{path}: cannot read the evaluation CSV ({e})") from e
    missing = {"question", "context", "answer"} - set(rows[0] if rows else {})
    if not rows or missing:
        raise RagError(f"{path}: " + (f"missing column(s) {', '.join(sorted(missing))}" if rows else "no rows")
                       + " (want question, context, answer and optionally is_impossible)")
    out = []
    for i, r in enumerate(rows[:limit]):
        line = i + 2  # the header is line 1
        flag = (r.get("is_impossible") or "").strip().lower()
        if flag not in _FLAGS:
            raise RagError(f"{path}:{line}: is_impossible is {flag!r}; want 0 or 1")
        impossible = _FLAGS[flag]
        q, ctx, answer = ((r.get(k) or "").strip() for k in ("question", "context", "answer"))
        if not q or not ctx or not (answer or impossible):
            raise RagError(f"{path}:{line}: empty " + ("question" if not q else "context" if not ctx else "answer")
                           + " (an unanswerable row says is_impossible=1)")
        out.append(Example(f"{path.stem}-{line}", path.stem, q if accents else unaccented(q), ctx,
                           "" if impossible else answer, -1,
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
    kinds: dict[str, int] = defaultdict(int)
    for e in items:
        kinds[f"{e.split} {e.kind}"] += 1
    meta = {"counts": counts, "kinds": dict(sorted(kinds.items())), "sources": {s: SOURCES[s][1] for s in sources},
            "examples": len(items), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    path.with_suffix(".meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def read(path: Path) -> list[Example]:
    """Prepared data (`rag reader prepare`); a missing or damaged file is refused with what to run."""
    try:
        with open(path, encoding="utf-8") as f:
            return [Example(**json.loads(line)) for line in f if line.strip()]
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as e:
        raise RagError(f"{path}: not prepared reader data ({e}); run `rag reader prepare`") from e
