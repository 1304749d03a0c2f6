"""Index: a corpus folder into a searchable, versioned index. Chunking, embedding (embed and its runtimes:
onnx_embed, remote_embed, ray_embed, embed_format), the build (build: manifest, incremental and atomic
updates), the stores retrieval reads through (store, store_milvus), collections, the sqlite cache.

Imports only the shared top modules; never ingest, answer, serve, eval or train (tests/test_layout.py).
The package imports nothing itself: import the module you need."""
