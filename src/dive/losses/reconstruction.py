"""L1 reconstruction: how far an adapter moved the embeddings (SPEC 4.2 and 4.3).

    L_rec = mean over rows and coordinates of | e^ - e |

With a residual adapter e^ = e + f(e) this is Search-Adaptor's |f(e)|_1 regulariser and
Matryoshka-Adaptor's |e - e^|_1. Both papers write a per-row L1 norm (a sum over the D
coordinates); we divide by D (and average over rows) so the term stays on the scale of the
cosine losses it is added to with weight 1 (Matryoshka) or 0.1 (Search): a per-row sum would
outweigh them ~D-fold and pin the adapter at the identity, i.e. at plain truncation.
"""

from __future__ import annotations

import torch

__all__ = ["reconstruction_loss"]


def reconstruction_loss(adapted: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between adapted and original embeddings; a scalar."""
    if adapted.shape != original.shape:
        raise ValueError(
            f"adapted {tuple(adapted.shape)} and original {tuple(original.shape)} differ in shape"
        )
    if adapted.numel() == 0:
        raise ValueError("reconstruction loss of an empty batch")
    return (adapted - original).abs().mean()
