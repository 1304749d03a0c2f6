"""Vietnamese-first question answering over news articles, with citations."""
from rag.config import Settings, load_settings
from rag.types import Answer, Article, Chunk, Citation, Hit

__all__ = ["Answer", "Article", "Chunk", "Citation", "Hit", "Settings", "load_settings"]
