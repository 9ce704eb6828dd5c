"""Exact search (over floats or quantized codes, with funnel rescoring), retrieval metrics, the
results file and the benchmark protocol."""

from __future__ import annotations

from dive.evaluate.metrics import evaluate_run, mrr_at_k, ndcg_at_k, recall_at_k
from dive.evaluate.records import ResultsFile, read_records
from dive.evaluate.search import rescore, search, top_k, top_k_codes

__all__ = [
    "ResultsFile",
    "evaluate_run",
    "mrr_at_k",
    "ndcg_at_k",
    "read_records",
    "recall_at_k",
    "rescore",
    "search",
    "top_k",
    "top_k_codes",
]
