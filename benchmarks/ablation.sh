#!/usr/bin/env bash
# DIVE ablations (SPEC 4.1): full DIVE vs each switch, SciFact, ratio 8 (48-d), 64 labels,
# 3 seeds. Resumable (results appended, finished runs skipped); regenerates docs/ablation/.
#   bash benchmarks/ablation.sh
set -euo pipefail
if [ $# -gt 0 ]; then  # it takes none: `--help` would have started the whole run
  echo "usage: bash benchmarks/ablation.sh (no arguments; writes benchmarks/results/ablation.jsonl and docs/ablation/)" >&2
  exit 2
fi
cd "$(dirname "$0")/.."
shared=$(cd .. && pwd)/shared/data
export DIVE_DATA=${DIVE_DATA:-$shared/beir} DIVE_EMBEDDINGS=${DIVE_EMBEDDINGS:-$shared/embeddings}
methods=(
  pca pca-uncentered dive
  dive:ntxent_weight=0        # no head-wise NT-Xent
  dive:triplet_weight=0       # no triplet loss
  dive:anchor_weight=0        # no similarity anchor
  dive:heads=1                # one head
  dive:loss=softplus          # soft, non-self-limiting triplet
  dive:head_init=pca-bootstrap
  dive:head_init=random
  dive:start=centered         # centred mu, no start selection
)
list=$(printf '%s,' "${methods[@]}")
.venv/bin/dive evaluate --datasets scifact --methods "${list%,}" --ratios 8 --budgets 64 \
  --seeds 0,1,2 --results benchmarks/results/ablation.jsonl --report docs/ablation --overwrite
