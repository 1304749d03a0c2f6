"""Train: the reader's training data (reader_data, with the exclusion filter) and its resumable CPU training
(reader_train). The weights it writes are package data under rag/data/reader/, read by rag.answer.reader.

Beside the stages: may import any of them, never a face (tests/test_layout.py)."""
