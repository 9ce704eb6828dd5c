"""One fit's outputs scored at a precision, with or without funnel rescoring.

A `Variant` is what the evaluator varies after a fit, without fitting again: the precision of
the first-stage index (`dive.compressors.precision`, int8 calibrated on the corpus outputs; or
`opq{M}`, product quantization of the outputs, `dive.evaluate.product`) and the rescoring
factor r. With r = 0 the first stage is the search. With r > 0 it is a
funnel: the first stage over the codes keeps r x k candidates, which are re-ranked by float32
vectors (`rescore_with`: "full", the original embeddings, or "compressed", the compressor's
float32 outputs), of which the metrics read the top k (ties in trec_eval's order, as without
rescoring), the prefetch-then-rescore pattern of vector databases. Each
metric gets the funnel of its own cut-off, as a user asking for k results would: nDCG@10 and
MRR@10 rescore the first stage's top 10r, Recall@100 its top 100r.

`Variant.fields` is what a results record says about it: `precision`, `rescore`,
`bytes_per_vector` (what the first-stage index holds per vector: 4d, 2d, d, ceil(d/8) or M) and,
when rescoring, `rescore_with` and `rescore_bytes_per_vector` (the float32 copy it reads).
Left out: approximate first stages (the codes are searched exactly).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dive.compressors.precision import calibrate, check_precision
from dive.evaluate.metrics import Qrels, evaluate_run
from dive.evaluate.product import fits, is_product, product_index, stage_bytes
from dive.evaluate.records import RescoreSource
from dive.evaluate.search import rescore, to_run, top_k_codes

# The metrics of `evaluate_run` by the cut-off they read.
CUTOFF_METRICS = ((10, ("ndcg@10", "mrr@10")), (100, ("recall@100",)))


@dataclass(frozen=True)
class Variant:
    """A first-stage precision and a rescoring factor (0: none) with its float32 source."""

    precision: str = "float32"  # a runtime precision or `opq{M}` (`dive.evaluate.product`)
    rescore: int = 0
    rescore_with: RescoreSource | None = None  # set exactly when rescore > 0

    def fields(self, dim: int, full_dim: int) -> dict[str, Any]:
        """The record fields describing this variant for `dim`-d outputs of `full_dim` inputs."""
        out: dict[str, Any] = {"precision": self.precision, "rescore": self.rescore,
                               "bytes_per_vector": stage_bytes(self.precision, dim)}
        if self.rescore:
            source_dim = full_dim if self.rescore_with == "full" else dim
            out.update(rescore_with=self.rescore_with,
                       rescore_bytes_per_vector=stage_bytes("float32", source_dim))
        return out


def plan_variants(
    precisions: Sequence[str],
    rescores: Sequence[int],
    rescore_with: RescoreSource,
    *,
    full_dim: bool,
    dim: int,
    input_ranking: bool = False,
) -> list[Variant]:
    """Every precision x rescore factor, less rescorings that could not change a ranking
    (float32 rescored by the same float32 vectors: `compressed`, or any source for a method
    whose outputs are the input embeddings, `input_ranking`: frozen) and product stages the
    grid leaves out: at the full dimension (that is the `faiss-opq:M` anchor) and where M does
    not divide `dim` or equals it (`dive.evaluate.product.fits`). A method at the full
    dimension that transforms its input (a centred PCA rotation, a learned adapter) ranks
    otherwise than the full embeddings, so its float32 rescored by them is kept."""
    out = []
    for precision in dict.fromkeys(precisions):
        if is_product(precision) and (full_dim or not fits(precision, dim)):
            continue
        for factor in dict.fromkeys(rescores):
            if factor == 0:
                out.append(Variant(precision))
            elif precision != "float32" or (rescore_with == "full" and not input_ranking):
                out.append(Variant(precision, factor, rescore_with))
    return out


@dataclass(frozen=True)
class Outputs:
    """What one fitted compressor made of a split: compressed float32 queries and corpus,
    with the full embeddings they came from, the ids, and the rows each query must skip."""

    queries: np.ndarray  # (m, d)
    corpus: np.ndarray  # (n, d)
    full_queries: np.ndarray  # (m, D)
    full_corpus: np.ndarray  # (n, D)
    query_ids: Sequence[str]
    corpus_ids: Sequence[str]
    exclude: np.ndarray  # (m,) corpus row of the query's own id, -1 if none


def score_variants(variants: Sequence[Variant], out: Outputs, qrels: Qrels, top_k: int,
                   seed: int = 0) -> list[tuple[dict[str, float], int]]:
    """nDCG@10, Recall@100 and MRR@10 of each of `variants` on `out`, keeping `top_k` hits per
    query, each with the number of values its first stage was fitted (int8's calibration
    ranges, a product stage's rotation and codebooks; 0 for float32, float16 and binary). A
    product stage's index is trained (k-means seeded by `seed`) and searched once, as deep as
    its deepest funnel, and shared by its variants."""
    stages: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
    scored = []
    for variant in variants:
        stage = variant.precision
        if not is_product(stage):
            scored.append(score_variant(variant, out, qrels, top_k))
            continue
        if stage not in stages:
            deepest = max(v.rescore for v in variants if v.precision == stage)
            index = product_index(stage, out.corpus, seed)
            stages[stage] = (*index.search(out.queries, top_k * max(1, deepest), out.exclude),
                             index.n_params)
        cut = top_k * max(1, variant.rescore)
        rows, scores, n_params = stages[stage]
        scored.append((score_funnel(rows[:, :cut], scores[:, :cut], variant, out, qrels, top_k),
                       n_params))
    return scored


def score_variant(variant: Variant, out: Outputs, qrels: Qrels, top_k: int
                  ) -> tuple[dict[str, float], int]:
    """nDCG@10, Recall@100 and MRR@10 of `variant` (a runtime precision) on `out`, keeping
    `top_k` hits per query, and the values its quantizer was calibrated (int8: 2 x dim)."""
    quantizer = calibrate(check_precision(variant.precision), out.corpus)
    codes = quantizer.encode(out.corpus)
    depth = top_k * max(1, variant.rescore)
    rows, scores = top_k_codes(out.queries, codes, quantizer, depth, exclude=out.exclude)
    return score_funnel(rows, scores, variant, out, qrels, top_k), quantizer.n_params


def score_funnel(rows: np.ndarray, scores: np.ndarray, variant: Variant, out: Outputs,
                 qrels: Qrels, top_k: int) -> dict[str, float]:
    """The metrics of a first stage's `rows` and `scores` (m, top_k x max(1, rescore)), best
    first, rescored as `variant` says: what any first stage (codes, an anchor's index) shares."""
    if not variant.rescore:
        return evaluate_run(to_run(out.query_ids, out.corpus_ids, rows, scores), qrels)
    queries, vectors = ((out.full_queries, out.full_corpus) if variant.rescore_with == "full"
                        else (out.queries, out.corpus))
    metrics: dict[str, float] = {}
    for cutoff, names in CUTOFF_METRICS:
        # every candidate re-ranked, not cut to k: the metrics read the top k in trec_eval's
        # order, so documents tied at rank k are ordered as in a run without rescoring (a cut
        # kept the lower row: float16 rescored by float32 outscored float32 alone)
        depth = variant.rescore * min(cutoff, top_k)
        kept, kept_scores = rescore(queries, vectors, rows[:, :depth], depth)
        run = to_run(out.query_ids, out.corpus_ids, kept, kept_scores)
        metrics.update({name: evaluate_run(run, qrels)[name] for name in names})
    return metrics
