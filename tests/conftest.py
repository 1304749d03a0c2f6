"""Shared fixtures: a fake embedder (hashed bag of syllables) and tiny articles, so unit tests need no model."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from rag import text
from rag.config import Settings
from rag.types import Article

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


class FakeEmbedder:
    """Deterministic bag-of-syllables vectors: similar wording -> similar vectors. Counts what it embeds."""

    def __init__(self, dim: int = 64, name: str = "fake-hash"):
        self.dim, self.name = dim, f"{name}@{dim}"
        self.embedded: list[str] = []

    def _vec(self, s: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for tok in text.syllables(s):
            v[int(hashlib.md5(tok.encode()).hexdigest(), 16) % self.dim] += 1.0
        return v / max(np.linalg.norm(v), 1e-12)

    def embed_queries(self, texts):
        return np.stack([self._vec(t) for t in texts])

    def embed_documents(self, texts, titles):
        self.embedded.extend(texts)
        return np.stack([self._vec(f"{ti} {t}") for t, ti in zip(texts, titles)])


@pytest.fixture
def fake_embedder():
    return FakeEmbedder()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        corpus_dir=tmp_path / "corpus",
        index_dir=tmp_path / "index",
        cache_dir=tmp_path / "cache",
        embedder="fake-hash",
        embed_dim=64,
        chunk_size=200,
        chunk_overlap=20,
    )


def make_articles() -> list[Article]:
    return [
        Article(
            id="vang",
            title="Giá vàng tăng mạnh",
            date="2025-11-27",
            source="Báo A",
            text="Giá vàng miếng hôm nay tăng 1 triệu đồng mỗi lượng.\n\nNhà đầu tư lo ngại lạm phát.",
        ),
        Article(
            id="bongda",
            title="Đội tuyển Việt Nam thắng Thái Lan",
            date="2025-12-01",
            source="Báo B",
            text="Đội tuyển Việt Nam thắng Thái Lan 2-1 tại sân Mỹ Đình.\n\nHuấn luyện viên khen các cầu thủ trẻ.",
        ),
        Article(
            id="mua",
            title="Mưa lớn ở miền Trung",
            date="2025-10-15",
            source="Báo A",
            text="Mưa lớn kéo dài ở Huế và Đà Nẵng gây ngập nhiều tuyến phố.\n\nHàng nghìn hộ dân phải sơ tán.",
        ),
    ]


@pytest.fixture
def articles() -> list[Article]:
    return make_articles()
