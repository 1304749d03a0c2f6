"""Store parity on the shared gold sets (README "Scaling out"): `rag eval retrieval` through the local store
and through Milvus (a milvus-lite server started here on a free loopback port), with the test suite's fake
embedder so no model is needed: both stores get identical vectors, so any metric difference is the store's.

    PYTHONPATH=$PWD .venv/bin/python eval/store_parity.py ALQAC ViRHE4QA_v2
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import FakeEmbedder  # noqa: E402

from rag.eval import evaluate, evalsets  # noqa: E402
from rag.config import load_settings  # noqa: E402

METRICS = ("P@1", "R@10", "MRR@10", "nDCG@10", "R@20")


def main(names: list[str]) -> None:
    embedder = FakeEmbedder(dim=768)
    evaluate.load_embedder = lambda settings: embedder  # the one model-loading call in evaluate.retrieval
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = Path(tempfile.mkdtemp())
    server = subprocess.Popen(
        [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(tmp / "milvus"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        for name in names:
            gold = evalsets.load_csv(ROOT.parent / "shared" / "data" / "qa" / f"{name}.csv")
            base = load_settings(cache_dir=tmp / "cache", embedder="fake-hash", milvus_uri=f"http://127.0.0.1:{port}")
            for store in ("local", "milvus"):
                r = evaluate.retrieval(gold, base.replace(store=store), ("bm25", "dense", "hybrid"), progress=False, log=lambda m: None)
                row = {mode: {k: s[k] for k in METRICS} | {"search_ms_p50": s["search_ms_p50"]} for mode, s in r["retrievers"].items()}
                print(name, store, json.dumps(row), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main(sys.argv[1:] or ["ALQAC", "ViRHE4QA_v2"])
