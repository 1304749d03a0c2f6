"""Eval: gold sets (evalsets), metric arithmetic (metrics) and eval runs (evaluate). The experiments that
use them live in the top-level eval/ folder, as bench/ holds the benchmarks.

Beside the stages: may import any of them, never a face (tests/test_layout.py)."""
