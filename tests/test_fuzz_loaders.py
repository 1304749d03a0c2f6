"""Fuzzing the article loaders with a fixed seed and a bounded number of inputs: random bytes, random
YAML front matter and JSON structures (aliases, tags, deep nesting), huge lines, other encodings,
control characters. Whatever the input, no exception escapes, every input is either an article or a
reported skip, writing a loaded article back (what an upload does) stays small, and what
loads can be indexed.
Bounded by the number of cases (about 5 s of CPU), not by a clock."""
from __future__ import annotations

import json
import random
from pathlib import Path

from conftest import FakeEmbedder
from rag.index import build as index
from rag.ingest.corpus import load_corpus, write_article

SEED = 11
CASES = 400
WORDS = "giá vàng tăng mạnh mưa lớn Huế đội tuyển thắng 2-1 ngày 27/11/2025 tiêu đề bài báo".split()
SCALARS = ["x", "", "~", "null", "yes", "1e9", "2025-13-45", "'", '"', ":", "- a", "&a", "*a", "!!binary x",
           "!!python/object:os.system", "\x1b[2J", "\x00", "\u202e", "\ud7ff", "𝕏", "<img src=x onerror=alert(1)>"]
KEYS = ["id", "title", "date", "source", "url", "language", "text", "tags", "a", "b", "<<", "? x"]


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _value(rng: random.Random, depth: int = 0):
    kind = rng.random()
    if depth > 4 or kind < 0.4:
        return rng.choice([rng.choice(SCALARS), _words(rng, rng.randint(1, 8)), rng.randint(-10**12, 10**12),
                           rng.random(), None, True, [], {}])
    if kind < 0.7:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(KEYS): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _yaml_front(rng: random.Random) -> str:
    lines = [f"{rng.choice(KEYS)}: {json.dumps(_value(rng), ensure_ascii=False)}" for _ in range(rng.randint(0, 6))]
    if rng.random() < 0.3:  # anchors and aliases, self-reference included
        lines += ["a0: &a0 [x, x, x]", "a1: &a1 [*a0, *a0, *a0]", rng.choice(["b: *a1", "loop: &l [*l]", "m: {<<: *a0}"])]
    if rng.random() < 0.2:
        lines.append("deep: " + "[" * rng.randint(50, 3000) + "]" * rng.randint(0, 3000))
    if rng.random() < 0.3:  # types JSON has no word for, and a number too long for int()
        lines.append(rng.choice(["b: !!binary aGVsbG8=", "s: !!set {a, b}", "t: 2025-11-28 07:36:00+07:00",
                                 "f: .inf", "n: .nan", "big: " + "9" * 5000, "k: {[1, 2]: x}"]))
    if rng.random() < 0.2:
        lines.append(rng.choice(["bad: [unclosed", "\t tab: indent", "- a list", "key: !!python/name:os.system ''"]))
    return "\n".join(lines)


def _text_file(rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:
        return rng.randbytes(rng.randint(0, 3000))
    body = "\n".join(_words(rng, rng.randint(0, 40)) for _ in range(rng.randint(0, 6)))
    if kind == 1:
        body = "".join(c if rng.random() > 0.05 else chr(rng.choice([0, 7, 8, 11, 12, 13, 27, 127, 0x85, 0x9b]))
                       for c in body)
    text = f"---\n{_yaml_front(rng)}\n" + rng.choice(["---\n", "...\n", ""]) + body if kind >= 2 else body
    if kind == 5:
        text += "\n" + "ừ" * rng.randint(100_000, 400_000)  # a huge line
    encoding = rng.choice(["utf-8", "utf-8", "utf-8-sig", "utf-16", "cp1258", "latin-1"])
    return text.encode(encoding, errors="replace")


def _jsonl_file(rng: random.Random) -> bytes:
    lines = []
    for _ in range(rng.randint(0, 5)):
        kind = rng.randrange(6)
        if kind == 0:
            lines.append(rng.randbytes(rng.randint(0, 200)).replace(b"\n", b" "))
            continue
        if kind == 1:
            obj = {"title": _words(rng, 3), "text": _words(rng, 20), "m": json.loads("[" * 150 + "]" * 150)}
            raw = json.dumps(obj)
        elif kind == 2:
            raw = '{"text": "x", "m": ' + "[" * rng.randint(1000, 100_000) + "]" * rng.randint(0, 100_000) + "}"
        else:
            obj = {k: _value(rng) for k in rng.sample(KEYS, rng.randint(0, len(KEYS)))}
            if kind >= 4:
                obj.update(title=_words(rng, 4), text=_words(rng, rng.randint(0, 60)))
            raw = json.dumps(obj, ensure_ascii=rng.random() < 0.5)
        lines.append(raw.encode(rng.choice(["utf-8", "utf-16", "latin-1"]), errors="replace"))
    return b"\n".join(lines)


def test_loaders_survive_random_and_hostile_files(tmp_path, settings):
    rng = random.Random(SEED)
    folder = tmp_path / "corpus"
    folder.mkdir()
    for n in range(CASES):
        jsonl = rng.random() < 0.35
        path = folder / (f"f{n:03d}.jsonl" if jsonl else f"f{n:03d}{rng.choice(['.md', '.txt', '.markdown'])}")
        data = (_jsonl_file if jsonl else _text_file)(rng)
        path.write_bytes(data)
        result = load_corpus(path)  # must not raise, whatever the file holds

        def accounted(where: str) -> bool:
            return (any(a.path == where for a in result.articles) or any(e.path == where for e in result.errors)
                    or any(d == where for d, _ in result.duplicates))

        file_error = any(e.path == str(path) or e.path.startswith(f"{path}:") and "cannot read" in e.reason
                         for e in result.errors)
        if jsonl and not file_error:
            for lineno, raw in enumerate(data.split(b"\n"), 1):
                if raw.strip():
                    assert accounted(f"{path}:{lineno}"), (n, lineno, raw[:200], result)
        else:
            assert file_error or accounted(str(path)), (n, data[:300], result)
        for a in result.articles:  # what an upload writes back stays the size of what came in
            written = write_article(a, tmp_path / "out")
            assert written.stat().st_size <= 2 * len(data) + 2000, (n, written.stat().st_size, len(data))
    whole = load_corpus(folder)  # all together, duplicates and id clashes included
    assert whole.articles and whole.errors
    index.update(settings, whole.articles, FakeEmbedder(), progress=False, log=lambda m: None)  # and they index
