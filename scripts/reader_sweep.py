"""Choose the reader's training settings on a lent GPU (the `device` tool), then train the chosen ones
on the CPU with `rag reader train` as documented.

Why a package: the device machine reaches no model registry and takes at most 64 MiB per call, so the
base encoder travels cut to the reader's depth, its embedding table pruned to the tokens the training
data uses (int8 per row), its layers in int4 (groups of 32), with the data already cut into windows. The quantised base only ranks settings against each other on the
validation split (never an evaluation set); the shipped weights are trained on the CPU on the real base.

    python scripts/reader_sweep.py pack build/sweep-pack            # here (needs the provisioned base)
    python3 scripts/reader_sweep.py run build/sweep-pack $OUT       # there, with the pack carried
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.answer.reader import ReaderConfig, Window  # noqa: E402
from rag.train.reader_data import Example  # noqa: E402
from rag.train.reader_train import Labelled  # noqa: E402

# (name, overrides of ReaderConfig, train() arguments). "shipped" trains nothing: the committed weights on
# the quantised base, against their validation F1 on the real base (57.7), show what the quantisation costs.
GRID = [
    ("shipped", {}, {}),
    ("base-e2", {}, {"epochs": 2}),
    ("e4", {}, {"epochs": 4}),
    ("e6", {}, {"epochs": 6}),
    ("e4-seed1", {}, {"epochs": 4, "seed": 1}),
    ("e4-lr1e-3", {}, {"epochs": 4, "lr": 1e-3}),
    ("e4-lr2e-4", {}, {"epochs": 4, "lr": 2e-4}),
    ("e4-aw3", {}, {"epochs": 4, "answer_weight": 3.0}),
    ("e4-f4", {"frozen": 4}, {"epochs": 4}),
]
MATRICES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _int8_rows(w: np.ndarray):
    scale = np.abs(w).max(axis=1, keepdims=True) / 127 + 1e-12
    return np.round(w / scale).astype(np.int8), scale.astype(np.float32)


def _int4_groups(w: np.ndarray, group: int = 32):
    g = w.reshape(-1, group)
    scale = np.abs(g).max(axis=1, keepdims=True) / 7 + 1e-12
    q = (np.clip(np.round(g / scale), -8, 7).astype(np.int8) + 8).astype(np.uint8).reshape(-1)
    return (q[0::2] | (q[1::2] << 4)).astype(np.uint8), scale.astype(np.float16)


def _dequant(arrays: dict, name: str, shape) -> np.ndarray:
    kind = str(arrays[f"{name}.kind"])
    if kind == "int8":
        return arrays[f"{name}.q"].astype(np.float32) * arrays[f"{name}.s"]
    if kind == "int4":
        packed = arrays[f"{name}.q"]
        q = np.empty(packed.size * 2, dtype=np.int8)
        q[0::2], q[1::2] = (packed & 15).astype(np.int8) - 8, (packed >> 4).astype(np.int8) - 8
        return (q.reshape(-1, 32).astype(np.float32) * arrays[f"{name}.s"].astype(np.float32)).reshape(shape)
    return arrays[f"{name}.w"].astype(np.float32)


def pack(out: Path, data_path: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from rag import models
    from rag.train import reader_data
    from rag.config import load_settings
    from rag.train.reader_train import encode

    config = ReaderConfig()
    base = models.resolve(config.base, load_settings(), models.EMBEDDER)
    tok = AutoTokenizer.from_pretrained(str(base))
    items = reader_data.read(data_path)
    parts = {split: [e for e in items if e.split == split] for split in ("train", "valid")}
    data = {split: encode(tok, parts[split], config) for split in parts}
    vocab = sorted({t for split in data for d in data[split] for t in d.window.ids} | {tok.pad_token_id})
    remap = {t: i for i, t in enumerate(vocab)}
    out.mkdir(parents=True, exist_ok=True)
    for split, labelled in data.items():  # the training examples' text is not needed there, only their windows
        lengths = np.array([len(d.window.ids) for d in labelled], dtype=np.int32)
        np.savez_compressed(out / f"{split}.npz", lengths=lengths,
                            ids=np.array([remap[t] for d in labelled for t in d.window.ids], dtype=np.uint16),
                            offsets=np.array([o for d in labelled for o in d.window.offsets], dtype=np.int32),
                            labels=np.array([(d.start, d.end, d.example) for d in labelled], dtype=np.int32))
    (out / "valid.jsonl").write_text("".join(json.dumps(asdict(e), ensure_ascii=False) + "\n" for e in parts["valid"]),
                                     encoding="utf-8")
    encoder = AutoModel.from_pretrained(str(base), dtype=torch.float32)
    arrays = {}
    for name, tensor in encoder.state_dict().items():
        w = tensor.numpy()
        layer = int(name.split(".")[1]) if name.startswith("layers.") else -1
        if layer >= config.depth:
            continue
        if name == "embed_tokens.weight":
            w = w[vocab]
        if name == "embed_tokens.weight":
            arrays[f"{name}.kind"], (arrays[f"{name}.q"], arrays[f"{name}.s"]) = np.array("int8"), _int8_rows(w)
        elif w.ndim == 2:
            arrays[f"{name}.kind"], (arrays[f"{name}.q"], arrays[f"{name}.s"]) = np.array("int4"), _int4_groups(w)
        else:
            arrays[f"{name}.kind"], arrays[f"{name}.w"] = np.array("fp16"), w.astype(np.float16)
        arrays[f"{name}.shape"] = np.array(w.shape)
    np.savez(out / "weights.npz", **arrays)
    cfg = encoder.config.to_dict()
    cfg.update(vocab_size=len(vocab), num_hidden_layers=config.depth, layer_types=cfg["layer_types"][: config.depth],
               pad_token_id=remap[tok.pad_token_id], bos_token_id=remap[tok.bos_token_id], eos_token_id=remap[tok.eos_token_id])
    (out / "gemma_config.json").write_text(json.dumps(cfg, indent=1), encoding="utf-8")
    size = sum(p.stat().st_size for p in out.iterdir()) / 2**20
    print(f"packed {len(vocab)} tokens, {sum(len(v) for v in data.values())} windows into {out} ({size:.1f} MiB)")


def _load(pack_dir: Path, split: str, limit: int | None = None):
    z = np.load(pack_dir / f"{split}.npz")
    path = pack_dir / f"{split}.jsonl"
    items = [Example(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    ends = np.cumsum(z["lengths"])
    out = []
    for k, (stop, (s, e, ex)) in enumerate(zip(ends, z["labels"])):
        a = stop - z["lengths"][k]
        w = Window(z["ids"][a:stop].astype(np.int64).tolist(), [tuple(o) for o in z["offsets"][a:stop].tolist()], 0)
        out.append(Labelled(w, int(s), int(e), int(ex)))
    if limit:  # a smoke test: the windows of the first `limit` examples
        out = [d for d in out if d.example < limit]
        items = items[:limit]
    return items, out


def one(pack_dir: Path, out: Path, name: str, limit: int | None = None) -> dict:
    """Train and validate one setting of GRID on the GPU; the weights and scores go to out/name/."""
    import torch
    from transformers import Gemma3TextConfig, Gemma3TextModel

    from rag.answer.reader import build_model
    from rag.train.reader_train import choose_threshold, predict, squad_scores, train

    torch.set_num_threads(2)  # several of these share the machine's cores
    _, overrides, kwargs = next(g for g in GRID if g[0] == name)
    config = ReaderConfig(**overrides)
    cfg = json.loads((pack_dir / "gemma_config.json").read_text())
    encoder = Gemma3TextModel(Gemma3TextConfig(**cfg))
    arrays = np.load(pack_dir / "weights.npz")
    names = {k.rsplit(".", 1)[0] for k in arrays.files}
    state = {n: torch.from_numpy(_dequant(arrays, n, tuple(arrays[f"{n}.shape"]))) for n in names}
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    assert not unexpected and all("rotary" in m for m in missing), (missing, unexpected)
    torch.manual_seed(kwargs.get("seed", 0))
    model = build_model(encoder, config).to("cuda" if torch.cuda.is_available() else "cpu")
    _, train_data = _load(pack_dir, "train", limit)
    valid_items, valid_data = _load(pack_dir, "valid", limit)
    t0 = time.perf_counter()
    work = Path("/tmp/reader-sweep") / name
    pad_id = cfg["pad_token_id"]
    if name == "shipped":
        from rag.answer.reader import WEIGHTS_DIR, load_trained

        load_trained(model, WEIGHTS_DIR)
        history = []
    else:
        history = train(model, train_data, config, work, pad_id=pad_id, progress=False, log=lambda *_: None, **kwargs)
    preds = predict(model, valid_data, valid_items, config, pad_id=pad_id)
    threshold, scores = choose_threshold(preds, valid_items)
    by_source = {src: squad_scores([p for p, e in zip(preds, valid_items) if e.source == src],
                                   [e for e in valid_items if e.source == src], threshold) for src in ("viquad", "xquad")}
    result = {"name": name, "config": overrides, "train": kwargs, "threshold": threshold, "valid": scores,
              "valid_by_source": by_source, "history": history, "seconds": round(time.perf_counter() - t0, 1)}
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    save_file(model.trained_state(), str(folder / "reader.safetensors"))
    (folder / "config.json").write_text(json.dumps(asdict(config) | {"threshold": threshold}, indent=2))
    (folder / "result.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result), flush=True)
    return result


def run(pack_dir: Path, out: Path, jobs: int, only: list[str] | None = None, limit: int | None = None) -> None:
    """Every setting of GRID (or `only` these), `jobs` processes at a time on the one GPU; the best one's
    weights to `out`."""
    import shutil

    work = Path("/tmp/reader-sweep-out")
    grid = [g for g in GRID if not only or g[0] in only]
    pending, running, results = [g[0] for g in grid], [], []
    while pending or running:
        while pending and len(running) < jobs:
            name = pending.pop(0)
            extra = ["--limit", str(limit)] if limit else []
            running.append(subprocess.Popen([sys.executable, __file__, "one", str(pack_dir), str(work), name, *extra]))
        time.sleep(1)
        running = [p for p in running if p.poll() is None]
    for g in grid:
        path = work / g[0] / "result.json"
        results.append(json.loads(path.read_text()) if path.exists() else {"name": g[0], "failed": True})
    (out / "sweep.json").write_text(json.dumps(results, indent=1))
    ok = [r for r in results if not r.get("failed")]
    trained = [r for r in ok if r["name"] != "shipped"]
    f = lambda x: "-" if x is None else f"{x:.1f}"  # noqa: E731
    print(f"{'setting':14} {'F1':>5} {'EM':>5} {'unans':>6} {'ans':>5} {'vq F1':>6} {'xq F1':>6} {'thr':>5} {'s':>5}")
    for r in ok:
        v, b = r["valid"], r["valid_by_source"]
        print(f"{r['name']:14} {f(v['f1']):>5} {f(v['em']):>5} {f(v['unanswerable_refused']):>6} {f(v['answerable_answered']):>5} "
              f"{f(b['viquad']['f1']):>6} {f(b['xquad']['f1']):>6} {r['threshold']:5.2f} {r['seconds']:5.0f}")
    for r in results:
        if r.get("failed"):
            print(f"{r['name']}: FAILED")
    if trained:
        best = max(trained, key=lambda r: r["valid"]["f1"])
        for f in ("reader.safetensors", "config.json"):
            shutil.copy(work / best["name"] / f, out / f"best-{f}")
        print(f"best on validation: {best['name']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack")
    a.add_argument("out", type=Path)
    a.add_argument("--data", type=Path, default=Path("build/reader/data.jsonl"))
    b = sub.add_parser("run")
    b.add_argument("pack", type=Path)
    b.add_argument("out", type=Path)
    b.add_argument("--jobs", type=int, default=len(GRID))
    b.add_argument("--only", help="settings to run, comma-separated (default: all)")
    b.add_argument("--limit", type=int, help="only the first examples (a smoke test)")
    c = sub.add_parser("one")
    c.add_argument("pack", type=Path)
    c.add_argument("out", type=Path)
    c.add_argument("name")
    c.add_argument("--limit", type=int, help="only the first examples (a smoke test)")
    args = p.parse_args()
    if args.cmd == "pack":
        pack(args.out, args.data)
    elif args.cmd == "run":
        run(args.pack, args.out, args.jobs, args.only.split(",") if args.only else None, args.limit)
    else:
        one(args.pack, args.out, args.name, args.limit)


if __name__ == "__main__":
    main()
