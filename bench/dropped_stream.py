"""Dropped streams (issue 22, item 3): how long the next /v1 question waits for its first token after a
client dropped its streamed answer, as a ratio against the same question on an idle server.

The /v1 router (rag/serve/openai_api.py) on a real uvicorn server on 127.0.0.1, over the fake embedder and a
slow fake model (tests/test_stream_cancel.py's SlowModel: one stream at a time, a word every 0.1 s, the
first question never finishing its second sentence). No real model: this measures the server's release
of an abandoned generation, not generation speed. A ratio near 1 means the dropped stream cost the next
question nothing; before the fix the next question waited for the whole abandoned answer (60 s here).

    PYTHONPATH=. python bench/dropped_stream.py [--repeats 3] [--json bench/results/dropped_stream.json]
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fastapi import FastAPI  # noqa: E402

from conftest import FakeEmbedder, make_articles  # noqa: E402
from rag.index import build as index  # noqa: E402
from rag.serve import openai_api
from rag.config import Settings  # noqa: E402
from rag.answer.pipeline import Pipeline  # noqa: E402
from test_stream_cancel import SlowModel, first_content, serve, wait_for  # noqa: E402


def one_round(url: str, model: SlowModel, hold: float) -> dict:
    idle, response, client = first_content(url)  # the model is free: a plain first-token time
    response.close()
    client.close()
    wait_for(lambda: not model.lock.locked(), 10)
    model.calls = 0  # the next question is the slow, never-ending one again
    _, response, client = first_content(url)
    before = len(model.closed)
    time.sleep(hold)  # the client reads for a while...
    response.close()  # ...and goes away
    client.close()
    dropped = time.monotonic()
    after, response, client = first_content(url)
    released = model.closed[before] - dropped if len(model.closed) > before else None
    response.close()
    client.close()
    wait_for(lambda: not model.lock.locked(), 10)
    return {"idle_s": idle, "after_drop_s": after, "closed_after_drop_s": released}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--hold", type=float, default=1.0, help="seconds the dropping client reads before it goes")
    ap.add_argument("--json", type=Path, help="write the figures here too")
    args = ap.parse_args()
    print("command:", shlex.join(["python", "bench/dropped_stream.py", *sys.argv[1:]]))

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(corpus_dir=Path(tmp) / "corpus", index_dir=Path(tmp) / "index", cache_dir=Path(tmp) / "cache",
                            embedder="fake-hash", embed_dim=64, chunk_size=200, chunk_overlap=20, today="2025-11-27")
        embedder = FakeEmbedder()
        index.update(settings, make_articles(), embedder, progress=False, log=lambda m: None)
        model = SlowModel()
        app = FastAPI()
        app.include_router(openai_api.router(Pipeline(settings, embedder=embedder, generator=model)))
        with serve(app) as url:
            rounds = [one_round(url, model, args.hold) for _ in range(args.repeats)]

    idle = statistics.median(r["idle_s"] for r in rounds)
    after = statistics.median(r["after_drop_s"] for r in rounds)
    for i, r in enumerate(rounds, 1):
        closed = f"{r['closed_after_drop_s']:.3f} s" if r["closed_after_drop_s"] is not None else "?"
        print(f"round {i}: idle first token {r['idle_s']:.3f} s; after a dropped stream {r['after_drop_s']:.3f} s; "
              f"abandoned generation closed {closed} after the drop")
    print(f"median first token: idle {idle:.3f} s, after a dropped stream {after:.3f} s; ratio {after / idle:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds, "idle_s": idle, "after_drop_s": after,
                                         "ratio": after / idle}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
