"""Compressors: the contract (`base`), the numpy runtime and its precision, and one module per
method."""

from __future__ import annotations

from dive.compressors.base import Compressor, LabelledQueries, TrainingData
from dive.compressors.dive import Dive, DiveConfig
from dive.compressors.dive_plus import DivePlus
from dive.compressors.frozen import Frozen
from dive.compressors.learned import LearnedCompressor, LearnedConfig
from dive.compressors.matryoshka_adaptor import MatryoshkaAdaptor, MatryoshkaAdaptorUnsup
from dive.compressors.pca import PCA, PCAUncentered
from dive.compressors.precision import PRECISIONS, Precision, Quantizer, bytes_per_vector, calibrate
from dive.compressors.random_projection import RandomProjection
from dive.compressors.registry import REGISTRY, make_compressor, parse_spec
from dive.compressors.runtime import Adapter, Runtime
from dive.compressors.search_adaptor import SearchAdaptor
from dive.compressors.smec import SMEC
from dive.compressors.truncate import Truncate

__all__ = [
    "PCA",
    "PRECISIONS",
    "REGISTRY",
    "SMEC",
    "Adapter",
    "Compressor",
    "Dive",
    "DiveConfig",
    "DivePlus",
    "Frozen",
    "LabelledQueries",
    "LearnedCompressor",
    "LearnedConfig",
    "MatryoshkaAdaptor",
    "MatryoshkaAdaptorUnsup",
    "PCAUncentered",
    "Precision",
    "Quantizer",
    "RandomProjection",
    "Runtime",
    "SearchAdaptor",
    "TrainingData",
    "Truncate",
    "bytes_per_vector",
    "calibrate",
    "make_compressor",
    "parse_spec",
]
