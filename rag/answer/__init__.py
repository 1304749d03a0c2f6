"""Answer: a question into a cited Answer. retrieve (and dates, followup) -> reader -> prompt -> generate ->
reply -> ground + verify/ (the answer checks), ordered by pipeline (`Pipeline`, `ask`, `ask_stream`).

Imports the shared top modules, rag.index and rag.ingest; never serve, eval or train (tests/test_layout.py).
The package imports nothing itself: import the module you need (`from rag import ask` is the public door)."""
