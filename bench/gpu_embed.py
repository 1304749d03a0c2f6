"""Passages per second of EmbeddingGemma-300M's encoder on one GPU, for bench/SCALE.md's 10M-article plan.

Runs on a lent GPU (the `device` tool): the model is built from its configuration alone with random
weights (the speed does not depend on them; no registry is reachable there and no tokenizer is
needed), bf16, SDPA attention, mean pooling and the two dense layers as sentence-transformers runs them.
Each variant is timed with CUDA events after a warm-up, median of repeats, and checked against the
eager model's output on the same batch (relative error):

- `eager`: transformers as is, every passage padded to the same length (the issue's baseline);
- `compiled`: torch.compile of the same model (default mode: fused norms, activations, rotary);
- `news lengths, unsorted` / `sorted`: passages with the token lengths of real chunks (LENGTHS, measured
  on vietnews chunks with the project's chunker and tokenizer), in arrival order or grouped by length,
  the way an indexing job can order them (padding is the waste that sorting removes).

    python3 bench/gpu_embed.py --out gpu_embed.json
"""
from __future__ import annotations

import argparse
import json
import time

CONFIG = {  # google/embeddinggemma-300m (Gemma3TextModel), ~1.2 KB
    "architectures": ["Gemma3TextModel"], "model_type": "gemma3_text", "hidden_size": 768, "intermediate_size": 1152,
    "num_hidden_layers": 24, "num_attention_heads": 3, "num_key_value_heads": 1, "head_dim": 256,
    "hidden_activation": "gelu_pytorch_tanh", "max_position_embeddings": 2048, "query_pre_attn_scalar": 256,
    "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000.0, "rope_theta": 1000000.0, "sliding_window": 512,
    "_sliding_window_pattern": 6, "layer_types": (["sliding_attention"] * 5 + ["full_attention"]) * 4,
    "use_bidirectional_attention": True, "vocab_size": 262144, "pad_token_id": 0, "bos_token_id": 2,
    "eos_token_id": 1, "attention_bias": False, "attention_dropout": 0.0,
}
# token lengths of the first 2,000 chunks of vietnews (articles-test.jsonl.gz, 800-character chunks with
# 120 overlap, "title: … | text: …" as indexed, EmbeddingGemma's tokenizer): every 5th percentile, 0..100;
# mean 190 tokens
LENGTHS = [36, 64, 71, 79, 88, 102, 124, 159, 188, 204, 221, 231, 238, 243, 250, 255, 261, 269, 277, 288, 367]


def build(torch):
    from transformers import Gemma3TextConfig, Gemma3TextModel

    model = Gemma3TextModel(Gemma3TextConfig(**CONFIG, attn_implementation="sdpa")).to("cuda", torch.bfloat16).eval()
    dense = torch.nn.Sequential(torch.nn.Linear(768, 3072, bias=False), torch.nn.Linear(3072, 768, bias=False))
    return model, dense.to("cuda", torch.bfloat16).eval()


def embed(model, dense, ids, mask):
    hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1) / m.sum(1)
    return torch_normalize(dense(pooled))


def torch_normalize(x):
    return x / x.norm(dim=-1, keepdim=True)


def batches_of(torch, lengths, batch, sort):
    """(ids, mask) batches for passages of the given token lengths, padded to each batch's longest."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i]) if sort else list(range(len(lengths)))
    g = torch.Generator(device="cuda").manual_seed(0)
    out = []
    for i in range(0, len(order), batch):
        part = [lengths[j] for j in order[i : i + batch]]
        width = max(part)
        ids = torch.randint(3, CONFIG["vocab_size"], (len(part), width), device="cuda", generator=g)
        mask = (torch.arange(width, device="cuda")[None, :] < torch.tensor(part, device="cuda")[:, None]).long()
        out.append((ids * mask, mask))
    return out


def timed(torch, fn, batches, repeats=5):
    """Median seconds for one pass over `batches`, after one warm-up pass."""
    with torch.inference_mode():
        for ids, mask in batches:
            fn(ids, mask)
        torch.cuda.synchronize()
        times = []
        for _ in range(repeats):
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for ids, mask in batches:
                fn(ids, mask)
            stop.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(stop) / 1000)
    return sorted(times)[len(times) // 2]


def main() -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="gpu_embed.json")
    p.add_argument("--skip-compile", action="store_true")
    args = p.parse_args()
    torch.manual_seed(0)
    model, dense = build(torch)
    eager = lambda ids, mask: embed(model, dense, ids, mask)  # noqa: E731
    rows = []

    def record(name, fn, lengths, batch, sort=False, reference=None):
        bs = batches_of(torch, lengths, batch, sort)
        err = None
        if reference is not None:
            with torch.inference_mode():
                ids, mask = bs[0]
                a, b = fn(ids, mask).float(), reference(ids, mask).float()
                err = float((a - b).norm() / b.norm())
        s = timed(torch, fn, bs)
        tokens = sum(lengths)
        padded = sum(b[0].numel() for b in bs)
        rows.append({"variant": name, "passages": len(lengths), "batch": batch, "mean_tokens": round(tokens / len(lengths), 1),
                     "padding_share": round(1 - tokens / padded, 3), "seconds": round(s, 4),
                     "passages_per_s": round(len(lengths) / s), "tokens_per_s": round(tokens / s),
                     "rel_error_vs_eager": err})
        print(json.dumps(rows[-1]), flush=True)

    for length, batch in ((160, 512), (160, 256), (256, 512), (512, 256)):
        record(f"eager {length} tokens", eager, [length] * 2048, batch)
    if LENGTHS:
        news = [LENGTHS[i % len(LENGTHS)] for i in range(4096)]
        import random

        random.Random(0).shuffle(news)
        record("eager news lengths, unsorted", eager, news, 512)
        record("eager news lengths, sorted", eager, news, 512, sort=True)
    if not args.skip_compile:
        t0 = time.perf_counter()
        compiled_model = torch.compile(model)
        compiled = lambda ids, mask: embed(compiled_model, dense, ids, mask)  # noqa: E731
        record("compiled 160 tokens", compiled, [160] * 2048, 512, reference=eager)
        rows[-1]["compile_seconds"] = round(time.perf_counter() - t0, 1)
        if LENGTHS:
            dyn_model = torch.compile(model, dynamic=True)
            dyn = lambda ids, mask: embed(dyn_model, dense, ids, mask)  # noqa: E731
            record("compiled (dynamic) news lengths, sorted", dyn, news, 512, sort=True, reference=eager)
    info = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
            "transformers": __import__("transformers").__version__, "rows": rows}
    with open(args.out, "w") as f:
        json.dump(info, f, indent=1)
    print(f"\n{'variant':42} {'batch':>5} {'tok/psg':>7} {'pad':>5} {'psg/s':>7} {'Mtok/s':>7} {'err':>8}")
    for r in rows:
        err = f"{r['rel_error_vs_eager']:.1e}" if r["rel_error_vs_eager"] is not None else "-"
        print(f"{r['variant']:42} {r['batch']:5} {r['mean_tokens']:7} {r['padding_share']:5.2f} {r['passages_per_s']:7} "
              f"{r['tokens_per_s'] / 1e6:7.2f} {err:>8}")


if __name__ == "__main__":
    main()
