"""Compressors: the contract (`base`), the numpy runtime, and one module per method."""

from __future__ import annotations

from dive.compressors.base import Compressor, LabelledQueries, TrainingData
from dive.compressors.frozen import Frozen
from dive.compressors.pca import PCA, PCAUncentered
from dive.compressors.random_projection import RandomProjection
from dive.compressors.registry import REGISTRY, make_compressor, parse_spec
from dive.compressors.runtime import Adapter, Runtime
from dive.compressors.truncate import Truncate

__all__ = [
    "PCA",
    "REGISTRY",
    "Adapter",
    "Compressor",
    "Frozen",
    "LabelledQueries",
    "PCAUncentered",
    "RandomProjection",
    "Runtime",
    "TrainingData",
    "Truncate",
    "make_compressor",
    "parse_spec",
]
