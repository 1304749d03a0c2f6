"""The embedder exported once to ONNX and run by ONNX Runtime or OpenVINO instead of PyTorch.

Same model, same prompts, same pooling and dense layers (the whole sentence-transformers pipeline is
one graph), several times the passages/s of PyTorch on CPU (bench/embed_speed.py). Runtimes:
    onnx           ONNX Runtime, fp32 (vectors equal PyTorch's to ~1e-6)
    openvino       OpenVINO, fp32 (the same)
    openvino-bf16  OpenVINO computing in bfloat16 where the CPU has it (nearly identical, the fastest)
Measured and dropped: ONNX Runtime on a dynamically quantised int8 copy (5.3x, but hybrid MRR@10 -0.5
on ALQAC, past the 0.3 allowed; bench/results/SUMMARY.md).
The export (~1.5 min, ~4 GB RAM, a 1.2 GB file) happens on first use into
cache_dir/models/onnx/<model>/ under a file lock, so concurrent processes (Ray actors) export once; it runs
in a child process, so running out of memory there fails the export, not the caller (which then falls
back to torch: rag.index.embed). OpenVINO keeps its compiled model beside the export (6 s to compile, 0.8 s to
load again). openvino, onnx and onnxscript are installed by default (openvino-bf16 is the default runtime:
rag.index.embed.runtime); onnxruntime comes with the `scale` extra."""
from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from rag.errors import ModelMissing

RUNTIMES = ("onnx", "openvino", "openvino-bf16")
_PACKAGES = {"onnx": "onnxruntime", "openvino": "openvino", "openvino-bf16": "openvino"}
_EXPORT_PACKAGES = ("onnx", "onnxscript")  # torch's ONNX exporter needs them


def installed(runtime: str) -> bool:
    """Whether the packages `runtime` needs (to export and to run) are installed, without importing them."""
    return all(importlib.util.find_spec(p) is not None for p in (_PACKAGES[runtime],) + _EXPORT_PACKAGES)


def export_dir(model_path: Path, models_dir: Path) -> Path:
    """Where the exports of one model folder live; keyed by its resolved path, so two models never share."""
    resolved = str(Path(model_path).resolve())
    return models_dir / "onnx" / f"{Path(resolved).name}-{hashlib.sha256(resolved.encode()).hexdigest()[:8]}"


def _export(model_path: Path, target: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)

    class Pipeline(torch.nn.Module):  # tokens -> the model's sentence embedding (pooling + dense + normalise)
        def __init__(self):
            super().__init__()
            self.st = st

        def forward(self, input_ids, attention_mask):
            return self.st({"input_ids": input_ids, "attention_mask": attention_mask})["sentence_embedding"]

    example = st.tokenizer(["title: a | text: b c", "d"], padding=True, return_tensors="pt")
    seq = torch.export.Dim("seq", max=st.max_seq_length)
    shapes = {"input_ids": {0: torch.export.Dim("batch"), 1: seq}, "attention_mask": {0: torch.export.Dim("batch"), 1: seq}}
    # The dynamo exporter: the legacy one fails on transformers' vmap-built attention masks.
    torch.onnx.export(
        Pipeline().eval(), (example["input_ids"], example["attention_mask"]), str(target),
        input_names=["input_ids", "attention_mask"], output_names=["vectors"], dynamo=True,
        dynamic_shapes=shapes, external_data=False,
    )


def ensure_export(model_path: Path, models_dir: Path, log=None, every: float = 15.0) -> Path:
    """The ONNX file for this model, exported on first use by a child process (progress every `every` s);
    atomic, and locked against other processes. A failed export raises RuntimeError with its last line."""
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    folder = export_dir(model_path, models_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "model.onnx"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process exporting the same model: wait, then reuse
        if not target.exists():
            log(f"exporting the embedding model to {target} for a faster runtime (once; about a minute and a half)")
            tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
            errors = folder / "export.log"
            t0 = time.monotonic()
            try:
                with open(errors, "w") as err:
                    child = subprocess.Popen([sys.executable, "-m", "rag.index.onnx_embed", str(model_path), str(tmp)],
                                             stdout=err, stderr=err)
                    while child.poll() is None:
                        try:
                            child.wait(timeout=every)
                        except subprocess.TimeoutExpired:
                            log(f"  exporting… {time.monotonic() - t0:.0f} s")
                if child.returncode != 0 or not tmp.exists():
                    lines = [x for x in errors.read_text(errors="replace").splitlines() if x.strip()]
                    why = lines[-1] if lines else f"the exporting process ended with code {child.returncode}"
                    raise RuntimeError(f"export failed: {why} (details: {errors})")
                os.replace(tmp, target)
                log(f"  exported in {time.monotonic() - t0:.0f} s")
            finally:
                tmp.unlink(missing_ok=True)
    return target


class ExportedEmbedder:
    """Embedder protocol over the exported graph; tokenises exactly as sentence-transformers does."""

    def __init__(self, model_path: Path, models_dir: Path, runtime: str, *, name: str, dim: int = 768, threads: int = 0,
                 batch_size: int = 8):
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown embedding runtime {runtime!r}: one of torch, {', '.join(RUNTIMES)}")
        self.path, self.models_dir, self.runtime = Path(model_path), models_dir, runtime
        self.name, self.dim, self.batch_size = name, dim, batch_size
        self.threads = threads or os.cpu_count() or 1
        self._run = None
        self._lock = threading.Lock()
        config = self.path / "config_sentence_transformers.json"
        prompts = json.loads(config.read_text()).get("prompts", {}) if config.exists() else {}
        self.query_prompt = prompts.get("query", "")
        bert = self.path / "sentence_bert_config.json"
        self.max_length = json.loads(bert.read_text()).get("max_seq_length", 512) if bert.exists() else 512

    def load(self) -> None:
        """Export (once) and compile now instead of at the first text; raises what goes wrong."""
        with self._lock:
            if self._run is None:
                self._run = self._load()

    def _load(self):
        package = _PACKAGES[self.runtime]
        if not installed(self.runtime):
            missing = [p for p in (package,) + _EXPORT_PACKAGES if importlib.util.find_spec(p) is None]
            raise ModelMissing(f"embedding runtime {self.runtime!r} needs {', '.join(missing)}: "
                               f".venv/bin/pip install {' '.join(missing)}")
        from transformers import AutoTokenizer

        model = ensure_export(self.path, self.models_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        if package == "onnxruntime":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = self.threads, 1
            session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
            return lambda feed: session.run(None, feed)[0]
        import openvino as ov

        precision = "bf16" if self.runtime == "openvino-bf16" else "f32"
        core = ov.Core()
        core.set_property({"CACHE_DIR": str(model.parent / "openvino-cache")})  # compiled once, loaded after
        compiled = core.compile_model(
            str(model), "CPU", {"INFERENCE_NUM_THREADS": self.threads, "INFERENCE_PRECISION_HINT": precision})
        return lambda feed: compiled(feed)[0]

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        from rag.index.embed_format import normalise

        self.load()
        with self._lock:  # a compiled model/session is not shared across concurrent calls
            out = []
            for s in range(0, len(texts), self.batch_size):
                tok = self.tokenizer(list(texts[s : s + self.batch_size]), padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="np")
                feed = {k: tok[k].astype(np.int64) for k in ("input_ids", "attention_mask")}
                out.append(np.asarray(self._run(feed), dtype=np.float32))
        return normalise(np.concatenate(out) if out else np.zeros((0, 768), np.float32), self.dim)

    def embed_queries(self, texts):
        return self._embed([self.query_prompt + t for t in texts])

    def embed_documents(self, texts, titles):
        from rag.index.embed_format import document_text

        return self._embed([document_text(x, t) for x, t in zip(texts, titles)])


if __name__ == "__main__":  # the export's child process (ensure_export): MODEL_FOLDER TARGET
    _export(Path(sys.argv[1]), Path(sys.argv[2]))
