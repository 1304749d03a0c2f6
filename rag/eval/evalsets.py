"""Gold question sets: JSON Lines (ours) and ViRE/SQuAD-style CSV (question, context, answer).

A CSV's distinct contexts become a corpus of their own; each question's gold source is its own context.
"""
from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import RagError
from rag.types import Article


class GoldFileError(RagError):
    pass


@dataclass
class GoldItem:
    id: str
    question: str
    answers: list[str] = field(default_factory=list)  # aliases; any one counts
    article_ids: list[str] = field(default_factory=list)  # gold sources
    answerable: bool = True
    type: str = ""
    group: str = ""  # paraphrases of one question share a group (the original's id): consistency
    split: str = ""  # "dev" (looked at while working) or "holdout" (reported apart, never tuned to)


@dataclass
class GoldSet:
    items: list[GoldItem]
    corpus: list[Article] | None = None  # CSV sets bring their own corpus
    skipped: list[str] = field(default_factory=list)  # "path:line: reason"
    name: str = ""


def context_id(context: str) -> str:
    return "ctx-" + hashlib.sha256(context.strip().encode("utf-8")).hexdigest()[:12]


def _open_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise GoldFileError(f"{path}: cannot read gold file ({e.strerror or e})") from e
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise GoldFileError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from e
    if not text.strip():
        raise GoldFileError(f"{path}: gold file is empty")
    return text


HOLDOUT_EVERY = 3  # CSV sets: every third row (by position) is the held-out part


def load_csv(
    path: Path,
    question_col: str = "question",
    context_col: str = "context",
    answer_cols: tuple[str, ...] = ("answer", "extractive answer"),
) -> GoldSet:
    """One question per row; `is_impossible` = 1 marks an unanswerable one (SQuAD v2 style), a `title`
    column names the context's article."""
    path = Path(path)
    rows = csv.DictReader(_open_text(path).splitlines())
    header = rows.fieldnames or []
    for col in (question_col, context_col):
        if col not in header:
            raise GoldFileError(f"{path}: no column {col!r} (columns: {', '.join(header)})")
    answer_col = next((c for c in answer_cols if c in header), None)
    items, skipped, contexts, titles = [], [], {}, {}
    for line, row in enumerate(rows, start=2):
        q, ctx = (row.get(question_col) or "").strip(), (row.get(context_col) or "").strip()
        if not q or not ctx:
            skipped.append(f"{path}:{line}: empty {'question' if not q else 'context'}")
            continue
        cid = context_id(ctx)
        contexts.setdefault(cid, ctx)
        titles.setdefault(cid, (row.get("title") or "").replace("_", " ").strip())
        answer = (row.get(answer_col) or "").strip() if answer_col else ""
        impossible = (row.get("is_impossible") or "").strip().lower() in ("1", "true")
        items.append(GoldItem(
            id=f"{path.stem}-{line}", question=q, answers=[answer] if answer and not impossible else [], article_ids=[cid],
            answerable=not impossible, type="unanswerable" if impossible else "",
            split="holdout" if len(items) % HOLDOUT_EVERY == HOLDOUT_EVERY - 1 else "dev",
        ))
    if not items:
        raise GoldFileError(f"{path}: no usable rows")
    corpus = [Article(id=cid, title=titles[cid], text=ctx, source=path.name) for cid, ctx in contexts.items()]
    return GoldSet(items, corpus, skipped, path.stem)


def load_jsonl(path: Path) -> GoldSet:
    path = Path(path)
    items, skipped = [], []
    for line, raw in enumerate(_open_text(path).splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
            question = str(row["question"]).strip()
            if not question:
                raise ValueError("empty question")
            answers = row.get("answers", row.get("answer", []))
            answers = [answers] if isinstance(answers, str) else [str(a) for a in answers]
            ids = row.get("article_ids", [])
            ids = [ids] if isinstance(ids, str) else [str(a) for a in ids]
            answerable = bool(row.get("answerable", True))
            if answerable and not answers:
                raise ValueError("answerable question without answers")
        except (ValueError, KeyError, TypeError) as e:
            reason = f"missing field {e}" if isinstance(e, KeyError) else str(e)
            skipped.append(f"{path}:{line}: {reason}")
            continue
        items.append(
            GoldItem(
                id=str(row.get("id") or f"{path.stem}-{line}"),
                question=question,
                answers=answers,
                article_ids=ids,
                answerable=answerable,
                type=str(row.get("type", "")),
                group=str(row.get("paraphrase_of") or row.get("id") or ""),
                split=str(row.get("split", "")),
            )
        )
    if not items:
        raise GoldFileError(f"{path}: no usable rows ({len(skipped)} malformed)")
    return GoldSet(items, None, skipped, path.stem)


def load(path: Path, **csv_options) -> GoldSet:
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return load_csv(path, **{k: v for k, v in csv_options.items() if v is not None})
    return load_jsonl(path)
