"""Training and measuring the reader (rag/answer/reader.py) on the 2-core CPU, resumably.

1. `encode`: every example becomes windows with answer labels (the token span, or the first token for
   "no answer in this window").
2. `train`: the lower `frozen` layers run without gradients, the adapted top layers and the head learn;
   `epochs` may be fractional (a seeded sample of the windows); a checkpoint every CHECKPOINT_EVERY steps,
   so a killed run resumes where it was. (The frozen layers' outputs were cached once: with ~50,000
   windows that is ~20 GB, and one pass costs no more computed than cached.)
3. `choose_threshold`: the no-answer probability that maximises SQuAD-v2 F1 on the validation part
   (passages never trained on, none from any evaluation set).
Seeds are fixed; `rag reader train` writes the weights, config and provenance to one folder.
"""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rag.eval import metrics
from rag.ingest.corpus import atomic_write
from rag.answer.reader import Reader, ReaderConfig, Window, build_model, pad, windows
from rag.train.reader_data import Example

CHECKPOINT_EVERY = 100  # optimizer steps between checkpoints (a few minutes on 2 cores)


@dataclass
class Labelled:
    window: Window
    start: int  # token index of the answer's first token; 0 (the first token) = no answer here; -100 = unknown
    end: int
    has: float  # 1.0: the window holds an answer (the answerability target)
    example: int  # index into the examples


def encode(tokenizer, items: list[Example], config: ReaderConfig) -> list[Labelled]:
    """Windows with labels. An answer without a span ("answer-nospan") trains answerability only, and only
    when its passage fits one window (otherwise which window answers is unknown)."""
    out = []
    for k, ex in enumerate(items):
        a, b = ex.start, ex.start + len(ex.answer)
        ws = windows(tokenizer, ex.question, [ex.context], config)
        if ex.kind == "answer-nospan":
            if len(ws) == 1:
                out.append(Labelled(ws[0], -100, -100, 1.0, k))
            continue
        for w in ws:
            s = e = 0
            if ex.answer:
                inside = [i for i, (x, y) in enumerate(w.offsets) if x >= 0 and y > a and x < b]
                if inside and w.offsets[inside[0]][0] <= a and w.offsets[inside[-1]][1] >= b:
                    s, e = inside[0], inside[-1]
            out.append(Labelled(w, s, e, float(s > 0), k))
    return out


def _device(model):
    return next(model.parameters()).device


def _batch(data, idx, pad_id: int, device):
    """Padded ids, mask, allowed answer positions and labels of windows `idx`."""
    import torch

    ws = [data[i].window for i in idx]
    ids, mask = pad(ws, pad_id)
    allowed = torch.zeros(ids.shape, dtype=torch.bool)  # passage tokens, and the first one (no answer)
    for row, w in enumerate(ws):
        allowed[row, 0] = True
        allowed[row, : len(w.ids)] |= torch.tensor([o[0] >= 0 for o in w.offsets])
    labels = [torch.tensor([getattr(data[i], f) for i in idx]) for f in ("start", "end", "has")]
    return [t.to(device) for t in (ids, mask, allowed, *labels)]


def _forward(model, config, ids, mask):
    """The frozen lower layers without gradients (nothing of theirs learns), the adapted ones with."""
    import torch

    with torch.autocast(ids.device.type, dtype=torch.bfloat16):
        with torch.no_grad():
            low = model.run(ids, mask, 0, config.frozen)
        top = model.run(low, mask, config.frozen, config.depth)
    return model.heads(top)


def plan(data: list[Labelled], epochs: float, batch: int, seed: int) -> list[list[int]]:
    """The run's batches: passes over the windows in a seeded order, batches of similar length (less padding);
    a fractional `epochs` samples that share of the last pass. The same plan on every resume."""
    rng = random.Random(seed)
    out: list[list[int]] = []
    for _ in range(max(1, math.ceil(epochs))):
        order = sorted(range(len(data)), key=lambda i: (len(data[i].window.ids) // 32, rng.random()))
        batches = [order[i : i + batch] for i in range(0, len(order), batch)]
        rng.shuffle(batches)
        out.extend(batches)
    per_pass = math.ceil(len(data) / batch)
    return out[: max(1, round(epochs * per_pass))]


def train(model, data: list[Labelled], config: ReaderConfig, folder: Path, *, pad_id: int, epochs: float = 1.0,
          batch: int = 16, lr: float = 5e-4, answer_weight: float = 1.0, seed: int = 0, progress=True,
          log=print, checkpoint_every: int = CHECKPOINT_EVERY) -> list[dict]:
    """Adapters and head, AdamW with warm-up and linear decay. A checkpoint every `checkpoint_every` steps in
    `folder/checkpoint.pt`: a killed run resumes at its last checkpoint with the same batches to come.
    `answer_weight` weighs the answerability loss against the span loss."""
    import torch

    torch.manual_seed(seed)
    device = _device(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    batches = plan(data, epochs, batch, seed)
    total = len(batches)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / (0.06 * total)) * max(0.0, 1 - s / total))
    folder.mkdir(parents=True, exist_ok=True)
    ckpt, history, step = folder / "checkpoint.pt", [], 0
    if ckpt.exists():
        saved = torch.load(ckpt)
        model.load_state_dict(saved["model"], strict=False)
        opt.load_state_dict(saved["opt"])
        sched.load_state_dict(saved["sched"])
        torch.set_rng_state(saved["rng"])
        history, step = saved["history"], saved["step"]
        log(f"resumed at step {step} of {total}")
    bce = torch.nn.BCEWithLogitsLoss()
    ce = torch.nn.CrossEntropyLoss(ignore_index=-100)
    model.train()
    t0, losses = time.perf_counter(), []
    bar = tqdm(total=total, initial=step, desc="training", unit="batch", disable=not progress)
    while step < total:
        ids, mask, allowed, starts, ends, has = _batch(data, batches[step], pad_id, device)
        s, e, answerable = _forward(model, config, ids, mask)
        s, e = s.float().masked_fill(~allowed, -1e4), e.float().masked_fill(~allowed, -1e4)
        span = (ce(s, starts) + ce(e, ends)) / 2 if (starts >= 0).any() else s.sum() * 0
        loss = span + answer_weight * bce(answerable.float(), has.float())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
        if step % checkpoint_every == 0 or step == total:
            history.append({"step": step, "loss": round(float(np.mean(losses)), 4), "seconds": round(time.perf_counter() - t0)})
            log(f"step {step}/{total}: mean loss {history[-1]['loss']} ({history[-1]['seconds']} s since start or resume)")
            losses = []
            tmp = ckpt.with_suffix(".partial")
            torch.save({"model": {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad},
                        "opt": opt.state_dict(), "sched": sched.state_dict(), "rng": torch.get_rng_state(),
                        "history": history, "step": step}, tmp)
            tmp.replace(ckpt)
    bar.close()
    model.eval()
    return history


def predict(model, data: list[Labelled], items: list[Example], config: ReaderConfig, *, pad_id: int, batch=32,
            progress=False) -> list[tuple[str, float]]:
    """(best span text, no-answer probability) per example: the best-scoring window's span, the lowest
    no-answer probability over its windows (as Reader.read)."""
    import torch

    from rag.answer.reader import decode

    device = _device(model)
    best: dict[int, tuple[str, float, float]] = {}  # example -> (best span, lowest no-answer probability, its score)
    order = sorted(range(len(data)), key=lambda i: len(data[i].window.ids))
    for first in tqdm(range(0, len(order), batch), desc="validation", unit="batch", disable=not progress):
        idx = order[first : first + batch]
        ids, mask, *_ = _batch(data, idx, pad_id, device)
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16):
            s, e, has = model.heads(model.run(ids, mask, 0, config.depth))
        no = torch.sigmoid(-has.float()).cpu().numpy()
        for row, i in enumerate(idx):
            d = data[i]
            span = decode(items[d.example].context, d.window.offsets, s[row].float().cpu().numpy(), e[row].float().cpu().numpy())
            text_, score = (span.text, span.score) if span else ("", -1e9)
            old = best.get(d.example, ("", 1.0, -1e9))
            if old[2] >= score:
                text_, score = old[0], old[2]
            best[d.example] = (text_, min(old[1], float(no[row])), score)
    return [(best[k][0], best[k][1]) if k in best else ("", 1.0) for k in range(len(items))]


def squad_scores(preds: list[tuple[str, float]], items: list[Example], threshold: float) -> dict:
    """SQuAD-v2 EM/F1 (an empty prediction is exact on a question without answer), and no-answer accuracy.
    An answer without a span counts only in `answerable_answered`."""
    em, f1, refused_ok, answered_ok = [], [], [], []
    for (text_, no), ex in zip(preds, items):
        shown = "" if no >= threshold else text_
        if ex.kind == "answer-nospan":
            answered_ok.append(shown != "")
        elif not ex.answer:
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


def refused_by_kind(preds: list[tuple[str, float]], items: list[Example], threshold: float) -> dict:
    """Per kind of example: how many, and the share refused (no span shown) in %."""
    out: dict[str, list[bool]] = {}
    for (text_, no), ex in zip(preds, items):
        out.setdefault(ex.kind, []).append(no >= threshold or not text_)
    return {k: {"n": len(v), "refused": round(100 * sum(v) / len(v), 1)} for k, v in sorted(out.items())}


WRONG_COST = 2.0  # a wrong answer shown with its citation costs two right ones: people trust the citation


def harm(preds: list[tuple[str, float]], items: list[Example], threshold: float) -> dict:
    """What the reader's answers are worth at `threshold`: `right` (answerable, shown with F1 >= 0.5), `wrong`
    (shown where there is no answer, or F1 < 0.5) and `value` = right - WRONG_COST * wrong; a refusal is worth 0.
    Answers without a known span are left out: their rightness cannot be told."""
    right = wrong = 0
    for (text_, no), ex in zip(preds, items):
        if ex.kind == "answer-nospan" or no >= threshold or not text_:
            continue
        if ex.answer and metrics.token_f1(text_, [ex.answer]) >= 0.5:
            right += 1
        else:
            wrong += 1
    return {"right": right, "wrong": wrong, "value": right - WRONG_COST * wrong}


def choose_threshold(preds, items) -> tuple[float, dict]:
    """The no-answer threshold on the validation part that maximises SQuAD-v2 F1; what its answers are worth by
    `harm` is reported beside it. (Maximising `harm` instead was tried for the shipped weights and not kept: it
    counts a partly right span as wrong, chose 0.10 and refused a third of the answerable questions:
    eval/RESULTS.md, "Reader v3".)"""
    grid = [round(float(x), 2) for x in np.arange(0.05, 0.96, 0.05)]  # plain floats: they go into config.json
    scored = [(squad_scores(preds, items, t), t) for t in grid]
    best = max(scored, key=lambda st: (st[0]["f1"], -abs(st[1] - 0.5)))
    return best[1], best[0] | {"harm": harm(preds, items, best[1])}


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


def run(settings, data_path: Path, out: Path, *, epochs: float = 1.0, seed: int = 0, work: Path | None = None,
        config: ReaderConfig | None = None, progress=True, log=print) -> dict:
    """The whole training run, from prepared data to weights in `out`; resumable through `work`."""
    import hashlib
    import subprocess

    import torch

    from rag.train import reader_data

    torch.manual_seed(seed)
    config = config or ReaderConfig()
    items = reader_data.read(data_path)
    train_items = [e for e in items if e.split == "train"]
    valid_items = [e for e in items if e.split == "valid"]
    data_sha = hashlib.sha256(Path(data_path).read_bytes()).hexdigest()
    c = config
    work = work or (Path(settings.cache_dir) / "reader-train" /
                    f"{data_sha[:12]}-d{c.depth}-f{c.frozen}-r{c.rank}-l{c.max_len}-s{c.stride}-e{epochs}-seed{seed}")
    work.mkdir(parents=True, exist_ok=True)
    log(f"{len(train_items)} training and {len(valid_items)} validation examples; checkpoints in {work}")
    model, tokenizer = new_model(settings, config)
    train_data, valid_data = encode(tokenizer, train_items, config), encode(tokenizer, valid_items, config)
    log(f"{len(train_data)} training windows, {len(valid_data)} validation windows")
    t0 = time.perf_counter()
    history = train(model, train_data, config, work, pad_id=tokenizer.pad_token_id, epochs=epochs, seed=seed,
                    progress=progress, log=log)
    train_s = time.perf_counter() - t0
    preds = predict(model, valid_data, valid_items, config, pad_id=tokenizer.pad_token_id, progress=progress)
    # kept beside the checkpoints: another threshold rule can be compared without predicting again
    atomic_write(work / "valid_preds.json", json.dumps([[e.id, e.kind, t, no] for (t, no), e in zip(preds, valid_items)],
                                                       ensure_ascii=False).encode("utf-8"))
    threshold, valid_scores = choose_threshold(preds, valid_items)
    config = ReaderConfig(**(asdict(config) | {"threshold": threshold}))
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    meta_path = Path(data_path).with_suffix(".meta.json")
    provenance = {
        "command": f"rag reader prepare && rag reader train --epochs {epochs} --seed {seed} --depth {config.depth} "
                   f"--frozen {config.frozen} --rank {config.rank} --max-len {config.max_len}",
        "commit": commit,
        "data": {"file": Path(data_path).name, "sha256": data_sha, "train": len(train_items), "valid": len(valid_items),
                 "train_windows": len(train_data), "valid_windows": len(valid_data),
                 **(json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {})},
        "seed": seed, "epochs": epochs,
        "history": history, "train_seconds": round(train_s),
        "validation": valid_scores | {"threshold": threshold},
        "validation_refused_by_kind": refused_by_kind(preds, valid_items, threshold),
        "torch": torch.__version__,
    }
    save(model, config, Path(out), provenance)
    log(f"validation (threshold {threshold}): {valid_scores}")
    return provenance
