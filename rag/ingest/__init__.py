"""Ingest: articles into a corpus folder. Files and uploads (corpus, manage), web pages, feeds and sitemaps
(fetch under netpolicy, feeds, webpage, watch: `rag add` / `rag watch`), cleaned (clean), near-duplicate
stories grouped (dedup). A write ends in an incremental index update (manage -> rag.index.build).

Imports only the shared top modules and rag.index; never answer, serve, eval or train (tests/test_layout.py).
The package imports nothing itself: import the module you need."""
