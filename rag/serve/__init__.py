"""Serve: the web face. The Gradio chat (web), the OpenAI-compatible /v1 endpoint (openai_api), users and
their keys (users), who a request is (access), answer streams a dropped reader stops (streams).

A face over the stages: it may import any of them, never the other face (rag.cli). The modules in __all__
are this face's doors: the only ones rag.cli may import (`rag serve`, `rag users ...`); the rest are its
internals (tests/test_layout.py). The package imports nothing itself."""

__all__ = ["users", "web"]
