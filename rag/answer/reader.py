"""The reader: given a question and passages, the answer span of each (character offsets into the
passage, so what is shown is verbatim and citable) and how likely the passage holds no answer.

The model is the embedder the project already provisions (EmbeddingGemma-300M, a bidirectional Gemma3
encoder), cut to its first `depth` layers, with low-rank adapters (LoRA) on the top `depth - frozen`
of them and a small head: start/end logits per token and an answerability logit read off the first
token. Only the adapters and the head are trained (rag/train/reader_train.py) and shipped in the package
(rag/data/reader/, ~5.6 MB); the base weights come from the model cache like the embedder's.

Why this shape, measured on the 2-core CPU (eval/RESULTS.md): a full forward pass of the 24 layers
costs ~1.8 s per 384 tokens, so the frozen lower layers are run once per training example and cached,
and only the top layers learn; the cut depth keeps reading the few sentences the prompt holds well
under a second.
"""
from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "data" / "reader"  # rag/data/reader, package data
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
MAX_ANSWER_TOKENS = 40
MAX_QUESTION_TOKENS = 64


@dataclass(frozen=True)
class ReaderConfig:
    base: str = "embeddinggemma-300m"  # a rag.models name (or a local folder)
    depth: int = 14  # encoder layers used
    frozen: int = 6  # the first `frozen` of them are not adapted (their outputs are cached in training)
    rank: int = 32
    alpha: float = 32.0
    max_len: int = 320  # tokens per window (question + passage part)
    stride: int = 128  # passage tokens shared by consecutive windows
    threshold: float = 0.5  # no-answer probability above which the reader says "no answer" (chosen on validation)
    # no-answer probability at or below which its span answers alone, before (and without) the model, where the
    # question asks for one short fact (rag.answer.pipeline); 0: never. Chosen on the pipeline's dev rows (eval/RESULTS.md)
    alone: float = 0.0

    def __post_init__(self):
        """Ranges checked once, here, so a hand-edited config fails at load with one clear message instead of
        looping forever (a window step <= 0), silently never refusing (threshold >= 1) or building nonsense."""
        def whole(name, low, high=None):
            v = getattr(self, name)
            if type(v) is not int or v < low or (high is not None and v > high):
                raise ValueError(f"{name} must be a whole number >= {low}" + (f" and <= {high}" if high is not None else "")
                                 + f", not {v!r}")

        if not isinstance(self.base, str) or not self.base:
            raise ValueError(f"base must name a model, not {self.base!r}")
        whole("depth", 1)
        whole("frozen", 0, self.depth - 1)
        whole("rank", 1, 1024)
        whole("max_len", 8, 8192)
        whole("stride", 0, self.max_len // 2 - 1)
        for name, low, high in (("alpha", 0.0, 1e4), ("threshold", 0.0, 1.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not low < v < high:
                raise ValueError(f"{name} must be a number strictly between {low:g} and {high:g}, not {v!r}")
        if isinstance(self.alone, bool) or not isinstance(self.alone, (int, float)) or not 0 <= self.alone <= self.threshold:
            raise ValueError(f"alone must be a number from 0 to the threshold ({self.threshold}), not {self.alone!r}")

    @classmethod
    def load(cls, folder: Path) -> "ReaderConfig":
        from rag.errors import ModelVerificationError

        path = Path(folder) / "config.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (OSError, UnicodeDecodeError, ValueError, TypeError) as e:
            raise ModelVerificationError(f"{path}: not a usable reader config ({e}); restore it from git or retrain "
                                         "with `rag reader train`") from e


@dataclass(frozen=True)
class Span:
    start: int  # character offsets into the passage
    end: int
    text: str
    score: float  # start + end logit


@dataclass(frozen=True)
class Reading:
    """What the reader found in one passage."""

    span: Span | None  # the best answer span (None: the passage is too short to hold one)
    no_answer: float  # probability that the passage does not answer the question

    def answers(self, threshold: float) -> bool:
        return self.span is not None and self.no_answer < threshold


# ------------------------------------------------------------------ the network

def _torch():
    import torch  # only when a reader is used: `rag --help` and the fast tests never import it

    return torch


def build_model(encoder, config: ReaderConfig):
    """The reader network around a loaded Gemma3 encoder (cut to `config.depth` layers, adapters added)."""
    torch = _torch()
    nn = torch.nn

    class LoRALinear(nn.Module):
        def __init__(self, base: nn.Linear, rank: int, alpha: float):
            super().__init__()
            self.base = base
            self.a = nn.Parameter(torch.randn(rank, base.in_features) / math.sqrt(base.in_features))
            self.b = nn.Parameter(torch.zeros(base.out_features, rank))  # starts as the base layer exactly
            self.scale = alpha / rank

        def forward(self, x):
            return self.base(x) + (x @ self.a.T.to(x.dtype)) @ self.b.T.to(x.dtype) * self.scale

    if config.depth > len(encoder.layers):
        from rag.errors import ModelVerificationError

        raise ModelVerificationError(f"the reader's depth is {config.depth} but its base has {len(encoder.layers)} layers")

    class ReaderModel(nn.Module):
        def __init__(self):
            super().__init__()
            encoder.layers = encoder.layers[: config.depth]  # the rest is never run: free its memory
            for p in encoder.parameters():
                p.requires_grad_(False)
            for layer in encoder.layers[config.frozen :]:
                for block in (layer.self_attn, layer.mlp):
                    for name in LORA_TARGETS:
                        if isinstance(getattr(block, name, None), nn.Linear):
                            setattr(block, name, LoRALinear(getattr(block, name), config.rank, config.alpha))
            self.encoder = encoder
            hidden = encoder.config.hidden_size
            self.norm = nn.LayerNorm(hidden)
            self.span = nn.Linear(hidden, 2)
            self.answerable = nn.Linear(hidden, 1)

        def masks(self, hidden, attention_mask):
            """The per-layer-type masks and rotary embeddings, as Gemma3TextModel.forward makes them."""
            from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask

            cfg = self.encoder.config
            positions = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0)
            kw = dict(config=cfg, inputs_embeds=hidden, attention_mask=attention_mask, past_key_values=None,
                      position_ids=positions)
            window = cfg.sliding_window
            masks = {
                "full_attention": create_causal_mask(**kw, or_mask_function=lambda *a: torch.tensor(True)),
                "sliding_attention": create_sliding_window_causal_mask(
                    **kw, or_mask_function=lambda b, h, q, k: abs(q - k) < window),
            }
            rope = {t: self.encoder.rotary_emb(hidden, positions, t) for t in set(cfg.layer_types)}
            return masks, rope, positions

        def run(self, hidden, attention_mask, start: int, stop: int):
            """Hidden states after layers [start, stop) (embeddings when start == 0 and hidden is ids)."""
            if start == 0:
                hidden = self.encoder.embed_tokens(hidden)
            masks, rope, positions = self.masks(hidden, attention_mask)
            types = self.encoder.config.layer_types
            for i in range(start, stop):
                hidden = self.encoder.layers[i](hidden, attention_mask=masks[types[i]], position_embeddings=rope[types[i]],
                                                position_ids=positions)
            return hidden

        def heads(self, hidden):
            h = self.norm(hidden.float())
            start, end = self.span(h).unbind(-1)
            return start, end, self.answerable(h[:, 0]).squeeze(-1)

        def trained_state(self) -> dict:
            """Only what training changes: adapters and head (the base comes from the model cache)."""
            return {k: v.detach().to(torch.float16).contiguous() for k, v in self.named_parameters() if v.requires_grad}

    return ReaderModel()


# ------------------------------------------------------------------ inputs

@dataclass
class Window:
    """One model input: [bos] question [eos] part of the passage [eos]."""

    ids: list[int]
    offsets: list[tuple[int, int]]  # character offsets in the passage per token; (-1, -1) outside it
    passage: int  # which passage of the call


def windows(tokenizer, question: str, passages: list[str], config: ReaderConfig) -> list[Window]:
    q_ids = tokenizer(question, add_special_tokens=False)["input_ids"][:MAX_QUESTION_TOKENS]
    head = [tokenizer.bos_token_id, *q_ids, tokenizer.eos_token_id]
    room = config.max_len - len(head) - 1
    if room - config.stride < 1:  # each window must move on, or the loop below never ends
        from rag.errors import InvalidQuestion

        raise InvalidQuestion(f"the question takes {len(head)} of the reader's {config.max_len}-token window: "
                              "no room left for the passage")
    out = []
    for n, passage in enumerate(passages):
        enc = tokenizer(passage, add_special_tokens=False, return_offsets_mapping=True)
        ids, offs = enc["input_ids"], [tuple(o) for o in enc["offset_mapping"]]
        start = 0
        while True:
            part = slice(start, start + room)
            out.append(Window(head + ids[part] + [tokenizer.eos_token_id],
                              [(-1, -1)] * len(head) + offs[part] + [(-1, -1)], n))
            if start + room >= len(ids):
                break
            start += room - config.stride
    return out


def pad(windows_: list[Window], pad_id: int):
    torch = _torch()
    width = max(len(w.ids) for w in windows_)
    ids = torch.full((len(windows_), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(windows_), width), dtype=torch.long)
    for i, w in enumerate(windows_):
        ids[i, : len(w.ids)] = torch.tensor(w.ids)
        mask[i, : len(w.ids)] = 1
    return ids, mask


def best_span(start: np.ndarray, end: np.ndarray, offsets: list[tuple[int, int]], top: int = 20) -> tuple[int, int, float] | None:
    """(first token, last token, score) of the best span inside the passage part, or None."""
    inside = np.array([o[0] >= 0 for o in offsets] + [False] * (len(start) - len(offsets)))
    if not inside.any():
        return None
    s = np.where(inside, start, -np.inf)
    e = np.where(inside, end, -np.inf)
    best = None
    for i in np.argsort(-s)[:top]:
        for j in np.argsort(-e)[:top]:
            if not (np.isfinite(s[i]) and np.isfinite(e[j])) or j < i or j - i >= MAX_ANSWER_TOKENS:
                continue
            score = float(s[i] + e[j])
            if best is None or score > best[2]:
                best = (int(i), int(j), score)
    return best


def decode(passage: str, offsets: list[tuple[int, int]], start: np.ndarray, end: np.ndarray) -> Span | None:
    """The best span of one window, as whole words of the passage (None: no span inside the passage part)."""
    found = best_span(start, end, offsets)
    if not found:
        return None
    a, b = _word_bounds(passage, offsets[found[0]][0], offsets[found[1]][1])
    return Span(a, b, passage[a:b], found[2]) if b > a else None


def _word_bounds(passage: str, a: int, b: int) -> tuple[int, int]:
    """The span widened to whole words (a token may start or end inside a syllable) and stripped of
    punctuation. A token's offsets include the space before it ("▁Ch" of "và Chivas"): that space is not
    part of the word, and the word before it is not either."""
    while a < b and passage[a].isspace():
        a += 1
    while 0 < a < len(passage) and passage[a].isalnum() and passage[a - 1].isalnum():
        a -= 1
    while 0 < b < len(passage) and passage[b - 1].isalnum() and passage[b].isalnum():
        b += 1
    while a < b and not passage[a].isalnum() and passage[a] not in "\"“'(«":
        a += 1
    while b > a and not passage[b - 1].isalnum() and passage[b - 1] not in "\"”')»%":
        b -= 1
    return a, b


# ------------------------------------------------------------------ the reader

class Reader:
    """Loads once (lazily), reads many. Thread-safe: torch inference under one lock."""

    def __init__(self, model, tokenizer, config: ReaderConfig):
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self._lock = threading.Lock()

    @property
    def threshold(self) -> float:
        return self.config.threshold

    @property
    def alone(self) -> float:
        return self.config.alone

    def read(self, question: str, passages: list[str]) -> list[Reading]:
        """One Reading per passage: its best span and its no-answer probability (over its windows: the
        best-scoring window's span, the lowest no-answer probability)."""
        torch = _torch()
        if not passages:
            return []
        ws = windows(self.tokenizer, question, passages, self.config)
        ids, mask = pad(ws, self.tokenizer.pad_token_id)
        # bf16 as in training (rag/train/reader_train.py), and ~1.4x faster than fp32 on these CPUs
        with self._lock, torch.inference_mode():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                hidden = self.model.run(ids, mask, 0, self.config.depth)
            start, end, answerable = self.model.heads(hidden)
        start, end = start.float().numpy(), end.float().numpy()
        no_answer = torch.sigmoid(-answerable.float()).numpy()
        best: dict[int, Reading] = {}  # per passage: the best-scoring window's span, the lowest no-answer probability
        for i, w in enumerate(ws):
            span = decode(passages[w.passage], w.offsets, start[i], end[i])
            old = best.get(w.passage, Reading(None, 1.0))
            if old.span is not None and (span is None or old.span.score >= span.score):
                span = old.span
            best[w.passage] = Reading(span, min(old.no_answer, float(no_answer[i])))
        return [best.get(n, Reading(None, 1.0)) for n in range(len(passages))]


    def best(self, question: str, passages: list[str]) -> tuple[int, Reading]:
        """The passage most likely to answer (lowest no-answer probability; the better span among equals)
        and its Reading."""
        readings = self.read(question, passages)
        n = min(range(len(readings)), key=lambda i: (readings[i].no_answer, -(readings[i].span.score if readings[i].span else -1e9)))
        return n, readings[n]


def load_trained(model, folder: Path) -> None:
    from safetensors.torch import load_file

    from rag.errors import ModelVerificationError

    path = Path(folder) / "reader.safetensors"
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for a truncated or foreign file
        raise ModelVerificationError(f"{path}: not readable reader weights ({type(e).__name__}: {e}); restore them "
                                     "from git or retrain with `rag reader train`") from e
    own = dict(model.named_parameters())
    missing = [k for k in own if own[k].requires_grad and k not in state]
    if missing or set(state) - set(own) or any(state[k].shape != own[k].shape for k in set(state) & set(own)):
        raise ModelVerificationError(f"{folder}: reader weights do not fit the network (missing {missing[:3]}, "
                                     f"unexpected {sorted(set(state) - set(own))[:3]}); retrain with `rag reader train`")
    with _torch().no_grad():
        for k, v in state.items():
            own[k].copy_(v.to(own[k].dtype))


_LOADED: dict[tuple, Reader] = {}
_LOAD_LOCK = threading.Lock()


def load_reader(settings, folder: Path | None = None) -> Reader:
    """The trained reader (once per process): the base from the model cache, adapters and head from `folder`."""
    from rag import models

    folder = Path(folder or settings.reader_dir or WEIGHTS_DIR)
    config = ReaderConfig.load(folder)
    key = (str(folder), str(settings.models_dir))
    with _LOAD_LOCK:
        if key not in _LOADED:
            torch = _torch()
            from transformers import AutoModel, AutoTokenizer

            if settings.threads:
                torch.set_num_threads(settings.threads)
            base = models.resolve(config.base, settings, models.EMBEDDER)
            encoder = AutoModel.from_pretrained(str(base), dtype=torch.float32)
            model = build_model(encoder, config).eval()
            load_trained(model, folder)
            _LOADED[key] = Reader(model, AutoTokenizer.from_pretrained(str(base)), config)
        return _LOADED[key]
