"""What BEIR's ignore_identical_ids by the id alone did to the shared collections (a script).

    python benchmarks/identical_ids.py

For each shared dataset: its test queries that share an id with a document, how many of
those pairs are judged relevant, how many queries are documents too (`Dataset.identical_ids`:
the document also holds the query's text), and frozen nDCG@10 over every judged test query
with each query's same-id document left out against the rule the protocol applies now.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
from script_io import use_shared_data

from dive.data import load_dataset
from dive.embed import get_embeddings
from dive.evaluate.metrics import ndcg_at_k
from dive.evaluate.search import identical_id_rows, to_run, top_k

DATASETS = ("scifact", "nfcorpus", "cranfield", "cisi", "cacm", "npl", "time")


def main(argv: Sequence[str] | None = None) -> None:
    # no options, but `--help` (or a typo) must not run the script
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args(argv)
    use_shared_data()
    for name in DATASETS:
        dataset = load_dataset(name)
        emb = get_embeddings(dataset, "all-MiniLM-L6-v2")
        test = dataset.split("test")
        ids = [q for q in emb.query_ids if q in test]
        queries = emb.queries[[emb.query_ids.index(q) for q in ids]]
        shared = [q for q in ids if q in set(emb.corpus_ids)]
        relevant = sum(test[q].get(q, 0) > 0 for q in shared)
        identical = dataset.identical_ids()
        scores = []
        for only in (None, identical):  # by the id alone, then as the protocol does
            exclude = identical_id_rows(ids, emb.corpus_ids, only)
            rows, values = top_k(queries, emb.corpus, 100, exclude=exclude)
            run = to_run(ids, emb.corpus_ids, rows, values)
            scores.append(float(np.mean(list(ndcg_at_k(run, test, 10).values()))))
        print(f"{name}: {len(shared)}/{len(ids)} test queries share an id with a document "
              f"({relevant} judged relevant), {len(identical)} are documents; frozen nDCG@10 "
              f"{scores[0]:.4f} by id, {scores[1]:.4f} now")


if __name__ == "__main__":
    main()
