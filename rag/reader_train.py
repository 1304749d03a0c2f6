"""Training and measuring the reader (rag/reader.py) on the 2-core CPU, resumably.

1. `encode`: every example becomes windows with answer labels (the token span, or the first token for
   "no answer in this window").
2. `cache_frozen`: the lower `frozen` layers never change, so their output for every window is computed
   once and saved in shards (a killed run resumes at the next shard).
3. `train`: only the adapted top layers and the head run each step; a checkpoint per epoch.
4. `choose_threshold`: the no-answer probability that maximises SQuAD-v2 F1 on the validation part
   (passages never trained on, none from any evaluation set).
Seeds are fixed; `rag reader train` writes the weights, config and provenance to one folder.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rag import metrics
from rag.corpus import atomic_write
from rag.reader import Reader, ReaderConfig, Window, build_model, pad, windows
from rag.reader_data import Example

SHARD = 64  # windows per cache shard


@dataclass
class Labelled:
    window: Window
    start: int  # token index of the answer's first token; 0 (the first token) = no answer here
    end: int
    example: int  # index into the examples


def encode(tokenizer, items: list[Example], config: ReaderConfig) -> list[Labelled]:
    out = []
    for k, ex in enumerate(items):
        a, b = ex.start, ex.start + len(ex.answer)
        for w in windows(tokenizer, ex.question, [ex.context], config):
            s = e = 0
            if ex.answer:
                inside = [i for i, (x, y) in enumerate(w.offsets) if x >= 0 and y > a and x < b]
                if inside and w.offsets[inside[0]][0] <= a and w.offsets[inside[-1]][1] >= b:
                    s, e = inside[0], inside[-1]
            out.append(Labelled(w, s, e, k))
    return out


def cache_frozen(model, data: list[Labelled], config: ReaderConfig, folder: Path, pad_id: int, *, batch: int = 16, progress=True) -> list:
    """The frozen layers' output of every window (bf16, without padding), from shards in `folder`."""
    import torch

    device = _device(model)
    folder.mkdir(parents=True, exist_ok=True)
    states = []
    shards = range(0, len(data), SHARD)
    for first in tqdm(shards, desc="frozen layers (cached)", unit="shard", disable=not progress):
        path = folder / f"shard-{first // SHARD:05d}.pt"
        if path.exists():
            states.extend(s.to(device) for s in torch.load(path))
            continue
        part = data[first : first + SHARD]
        order = sorted(range(len(part)), key=lambda i: len(part[i].window.ids))
        done: dict[int, object] = {}
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            ids, mask = pad([part[j].window for j in idx], pad_id)
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16):
                h = model.run(ids.to(device), mask.to(device), 0, config.frozen)
            for row, j in enumerate(idx):
                done[j] = h[row, : len(part[j].window.ids)].to(torch.bfloat16).clone()
        shard = [done[j] for j in range(len(part))]
        tmp = path.with_suffix(".partial")
        torch.save([s.cpu() for s in shard], tmp)
        tmp.replace(path)
        states.extend(shard)
    return states


def _device(model):
    return next(model.parameters()).device


def _batch(states, data, idx):
    """Padded inputs and labels of windows `idx`, on the device the states are on."""
    import torch

    width = max(len(data[i].window.ids) for i in idx)
    device = states[idx[0]].device
    hidden = torch.zeros((len(idx), width, states[idx[0]].shape[-1]), dtype=torch.float32, device=device)
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    allowed = torch.zeros((len(idx), width), dtype=torch.bool)  # passage tokens, and the first one (no answer)
    for row, i in enumerate(idx):
        n = len(data[i].window.ids)
        hidden[row, :n] = states[i].float()
        mask[row, :n] = 1
        allowed[row, 0] = True
        allowed[row, :n] |= torch.tensor([o[0] >= 0 for o in data[i].window.offsets])
    starts = torch.tensor([data[i].start for i in idx])
    ends = torch.tensor([data[i].end for i in idx])
    return hidden, mask.to(device), allowed.to(device), starts.to(device), ends.to(device)


def _forward(model, config, hidden, mask):
    import torch

    with torch.autocast(hidden.device.type, dtype=torch.bfloat16):
        top = model.run(hidden, mask, config.frozen, config.depth)
    return model.heads(top)


def train(model, states, data: list[Labelled], config: ReaderConfig, folder: Path, *, epochs: int = 2, batch: int = 16,
          lr: float = 5e-4, answer_weight: float = 1.0, seed: int = 0, progress=True, log=print) -> list[dict]:
    """Adapters and head, AdamW with warm-up and linear decay; resumes from `folder/checkpoint.pt`.
    `answer_weight` weighs the answerability loss against the span loss."""
    import torch

    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    rng = random.Random(seed)
    # batches of similar length (less padding), in a seeded random order, the same every epoch plan
    plans = []
    for _ in range(epochs):
        order = sorted(range(len(data)), key=lambda i: (len(data[i].window.ids) // 32, rng.random()))
        batches = [order[i : i + batch] for i in range(0, len(order), batch)]
        rng.shuffle(batches)
        plans.append(batches)
    total = sum(len(b) for b in plans)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / (0.06 * total)) * max(0.0, 1 - s / total))
    ckpt, history, epoch0 = folder / "checkpoint.pt", [], 0
    if ckpt.exists():
        saved = torch.load(ckpt)
        model.load_state_dict(saved["model"], strict=False)
        opt.load_state_dict(saved["opt"])
        sched.load_state_dict(saved["sched"])
        history, epoch0 = saved["history"], saved["epoch"]
        log(f"resumed after epoch {epoch0}")
    bce = torch.nn.BCEWithLogitsLoss()
    model.train()
    for epoch in range(epoch0, epochs):
        t0, losses = time.perf_counter(), []
        bar = tqdm(plans[epoch], desc=f"epoch {epoch + 1}/{epochs}", unit="batch", disable=not progress)
        for idx in bar:
            hidden, mask, allowed, starts, ends = _batch(states, data, idx)
            s, e, has = _forward(model, config, hidden, mask)
            s, e = s.masked_fill(~allowed, -1e4), e.masked_fill(~allowed, -1e4)
            loss = (torch.nn.functional.cross_entropy(s, starts) + torch.nn.functional.cross_entropy(e, ends)) / 2
            loss = loss + answer_weight * bce(has, (starts > 0).float())
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
        history.append({"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 4), "seconds": round(time.perf_counter() - t0)})
        log(f"epoch {epoch + 1}: mean loss {history[-1]['loss']} ({history[-1]['seconds']} s)")
        tmp = ckpt.with_suffix(".partial")
        torch.save({"model": {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad},
                    "opt": opt.state_dict(), "sched": sched.state_dict(), "history": history, "epoch": epoch + 1}, tmp)
        tmp.replace(ckpt)
    model.eval()
    return history


def predict_cached(model, states, data: list[Labelled], items: list[Example], config: ReaderConfig, *, batch=32) -> list[tuple[str, float]]:
    """(best span text, no-answer probability) per example, from the cached frozen states."""
    import torch

    from rag.reader import decode

    best: dict[int, tuple[str, float, float]] = {}  # example -> (best span, lowest no-answer probability, its score)
    for first in range(0, len(data), batch):
        idx = list(range(first, min(first + batch, len(data))))
        hidden, mask, _, _, _ = _batch(states, data, idx)
        with torch.inference_mode():
            s, e, has = _forward(model, config, hidden, mask)
        no = torch.sigmoid(-has.float()).cpu().numpy()
        for row, i in enumerate(idx):
            d = data[i]
            span = decode(items[d.example].context, d.window.offsets, s[row].float().cpu().numpy(), e[row].float().cpu().numpy())
            text_, score = (span.text, span.score) if span else ("", -1e9)
            old = best.get(d.example, ("", 1.0, -1e9))
            if old[2] >= score:
                text_, score = old[0], old[2]
            best[d.example] = (text_, min(old[1], float(no[row])), score)
    return [(best[k][0], best[k][1]) for k in range(len(items))]


def squad_scores(preds: list[tuple[str, float]], items: list[Example], threshold: float) -> dict:
    """SQuAD-v2 EM/F1 (an empty prediction is exact on a question without answer), and no-answer accuracy."""
    em, f1, refused_ok, answered_ok = [], [], [], []
    for (text_, no), ex in zip(preds, items):
        shown = "" if no >= threshold else text_
        if not ex.answer:
            em.append(float(shown == ""))
            f1.append(float(shown == ""))
            refused_ok.append(shown == "")
        else:
            em.append(metrics.exact_match(shown, [ex.answer]) if shown else 0.0)
            f1.append(metrics.token_f1(shown, [ex.answer]) if shown else 0.0)
            answered_ok.append(shown != "")
    pct = lambda xs: round(100 * float(np.mean(xs)), 1) if xs else None  # noqa: E731
    return {"n": len(items), "em": pct(em), "f1": pct(f1), "unanswerable_refused": pct(refused_ok),
            "answerable_answered": pct(answered_ok)}


def choose_threshold(preds, items) -> tuple[float, dict]:
    grid = [round(x, 2) for x in np.arange(0.05, 0.96, 0.05)]
    scored = [(squad_scores(preds, items, t), t) for t in grid]
    best = max(scored, key=lambda st: (st[0]["f1"], -abs(st[1] - 0.5)))
    return best[1], best[0]


def read_examples(reader: Reader, items: list[Example], *, progress=True) -> list[tuple[str, float]]:
    """(span, no-answer probability) per example through the full Reader (no cache): for evaluation sets."""
    out = []
    for ex in tqdm(items, desc="reading", unit="q", disable=not progress):
        r = reader.read(ex.question, [ex.context])[0]
        out.append((r.span.text if r.span else "", r.no_answer))
    return out


def save(model, config: ReaderConfig, folder: Path, provenance: dict) -> Path:
    """Each file written whole (never half a file) and readable like any new file, not owner-only."""
    from safetensors.torch import save

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / "reader.safetensors", save(model.trained_state()))
    atomic_write(folder / "config.json", (json.dumps(asdict(config), indent=2) + "\n").encode("utf-8"))
    atomic_write(folder / "provenance.json", (json.dumps(provenance, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
    return folder


def new_model(settings, config: ReaderConfig):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from rag import models

    base = models.resolve(config.base, settings, models.EMBEDDER)
    encoder = AutoModel.from_pretrained(str(base), dtype=torch.float32)
    return build_model(encoder, config), AutoTokenizer.from_pretrained(str(base))




def run(settings, data_path: Path, out: Path, *, epochs: int = 2, seed: int = 0, work: Path | None = None,
        config: ReaderConfig | None = None, progress=True, log=print) -> dict:
    """The whole training run, from prepared data to weights in `out`; resumable through `work`."""
    import hashlib
    import subprocess

    import torch

    from rag import reader_data

    torch.manual_seed(seed)
    config = config or ReaderConfig()
    items = reader_data.read(data_path)
    train_items = [e for e in items if e.split == "train"]
    valid_items = [e for e in items if e.split == "valid"]
    data_sha = hashlib.sha256(Path(data_path).read_bytes()).hexdigest()
    # the frozen layers' outputs depend on the data and the windows only; a checkpoint on everything
    work = work or Path(settings.cache_dir) / "reader-train" / f"{data_sha[:12]}-f{config.frozen}-l{config.max_len}-s{config.stride}"
    run_dir = work / f"d{config.depth}-r{config.rank}-e{epochs}-seed{seed}"
    log(f"{len(train_items)} training and {len(valid_items)} validation examples; work folder {work}")
    model, tokenizer = new_model(settings, config)
    t0 = time.perf_counter()
    train_data, valid_data = encode(tokenizer, train_items, config), encode(tokenizer, valid_items, config)
    log(f"{len(train_data)} training windows, {len(valid_data)} validation windows")
    train_states = cache_frozen(model, train_data, config, work / "train", tokenizer.pad_token_id, progress=progress)
    valid_states = cache_frozen(model, valid_data, config, work / "valid", tokenizer.pad_token_id, progress=progress)
    cached_s = time.perf_counter() - t0
    run_dir.mkdir(parents=True, exist_ok=True)
    history = train(model, train_states, train_data, config, run_dir, epochs=epochs, seed=seed, progress=progress, log=log)
    preds = predict_cached(model, valid_states, valid_data, valid_items, config)
    threshold, valid_scores = choose_threshold(preds, valid_items)
    config = ReaderConfig(**(asdict(config) | {"threshold": threshold}))
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    meta_path = Path(data_path).with_suffix(".meta.json")
    provenance = {
        "command": f"rag reader prepare && rag reader train --epochs {epochs} --seed {seed} --depth {config.depth} "
                   f"--frozen {config.frozen} --rank {config.rank}",
        "commit": commit,
        "data": {"file": Path(data_path).name, "sha256": data_sha, "train": len(train_items), "valid": len(valid_items),
                 **(json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {})},
        "seed": seed, "epochs": epochs,
        "history": history, "cache_seconds": round(cached_s),
        "validation": valid_scores | {"threshold": threshold},
        "torch": torch.__version__,
    }
    save(model, config, Path(out), provenance)
    log(f"validation (threshold {threshold}): {valid_scores}")
    return provenance
