"""Export a fitted compressor: the saved folder, ONNX, a sentence-transformers module, FAISS.

`folder` (config.json + model.safetensors, numpy-only inference) is imported eagerly because it
needs nothing beyond numpy and safetensors; the other exporters pull optional, heavy packages
(onnx, torch/sentence-transformers, faiss) and are reached lazily through this package's
attributes or by importing their modules.
"""

from __future__ import annotations

import importlib
from typing import Any

from dive.export.folder import FORMAT_VERSION, LoadedCompressor, load, save

_LAZY = {
    "export_onnx": "dive.export.onnx",
    "export_sentence_transformers": "dive.export.sentence_transformers",
    "DiveCompression": "dive.export.st_module",
    "SearchIndex": "dive.export.faiss_index",
    "build_index": "dive.export.faiss_index",
    "load_index": "dive.export.faiss_index",
    "save_index": "dive.export.faiss_index",
    "search_index": "dive.export.faiss_index",
}

__all__ = [
    "FORMAT_VERSION",
    "DiveCompression",
    "LoadedCompressor",
    "SearchIndex",
    "build_index",
    "export_onnx",
    "export_sentence_transformers",
    "load",
    "load_index",
    "save",
    "save_index",
    "search_index",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dive.export' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
