"""`DiveCompression`: a sentence-transformers module that applies a fitted compressor.

Appended after a model's pooling (and Normalize) modules, it maps
`features["sentence_embedding"]` through the compressor's runtime in torch, so
`SentenceTransformer.encode` returns compressed, L2-normalised vectors (input rows not of unit
norm are normalised first, as the runtime does). The math mirrors
`dive.compressors.runtime` step by step (GELU with the tanh approximation), so outputs match
the numpy runtime to float32 rounding. A compressor saved with a precision other than float32
ends in the same quantization (`dive.compressors.precision`), so `encode` returns its codes:
float16, int8, or packed uint8 sign bits (keep `encode(precision="float32")`, the default:
sentence-transformers' own quantization expects floats).

The module folder is a dive model folder (`config.json` + `model.safetensors`, see
`dive.export.folder`), written and read through the same code, so a saved
SentenceTransformer carries the method, its config and the training summary, and its
`modules.json` names this class (`dive.export.st_module.DiveCompression`). Its buffers are the
runtime's arrays (`Runtime.arrays()`) under torch-safe names, `.` spelled `_` (`adapter_w1`,
`quantizer_low`; `buffer_name`), plus binary's `pack_weights`. The class is a plain
`torch.nn.Module` with a one-argument `load(path)`, the module protocol every
sentence-transformers release from 3 to 6 accepts.

Left out: training through the module (buffers, not parameters: fit with dive, then export).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dive.arrays import UNIT_NORM_TOLERANCE
from dive.compressors.precision import INT8_LEVELS, pack_weights
from dive.compressors.runtime import ADAPTER_ARRAYS, ARRAY_NAMES, Runtime
from dive.export.folder import LoadedCompressor, SaveSource, as_loaded, load, save

_CODE_DTYPES = {"float16": torch.float16, "int8": torch.int8, "binary": torch.uint8}


def buffer_name(array_name: str) -> str:
    """The buffer holding a runtime array: torch names cannot contain dots."""
    return array_name.replace(".", "_")


_BUFFERS = (*(buffer_name(name) for name in ARRAY_NAMES), "pack_weights")
_ADAPTER_BUFFERS = tuple(buffer_name(name) for name in ADAPTER_ARRAYS)


def _tensor(arr: np.ndarray | None) -> torch.Tensor | None:
    return None if arr is None else torch.from_numpy(np.array(arr, dtype=np.float32, copy=True))


class DiveCompression(torch.nn.Module):
    """Compress `features["sentence_embedding"]` with a fitted dive compressor."""

    feature = "sentence_embedding"  # the features key read and overwritten

    def __init__(self, source: SaveSource | str | os.PathLike[str]) -> None:
        """`source`: a model folder, a fitted or loaded compressor, or a `Runtime`."""
        super().__init__()
        compressor = as_loaded(source)
        runtime = compressor.fitted_runtime()
        self.method = compressor.method
        self.method_config = compressor.config()
        self.summary = dict(compressor.summary)
        self.input_dim = runtime.input_dim
        self.output_dim = runtime.output_dim
        self.precision = runtime.precision
        self.code_width = runtime.code_width
        adapter = runtime.adapter
        self.activation = adapter.activation if adapter is not None else None
        arrays = {buffer_name(name): arr for name, arr in runtime.arrays().items()}
        if self.precision == "binary":
            arrays["pack_weights"] = pack_weights(self.output_dim)
        for name in _BUFFERS:
            self.register_buffer(name, _tensor(arrays.get(name)))

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        x = features[self.feature]
        features[self.feature] = self.compress(x)
        return features

    def _buffer(self, name: str) -> torch.Tensor | None:
        value: torch.Tensor | None = getattr(self, name)
        return value

    def compress(self, x: torch.Tensor) -> torch.Tensor:
        """The runtime's computation on a (batch, D) tensor: its codes (`quantize(embed(x))`)."""
        return self.quantize(self.embed(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The runtime's computation before its precision: (batch, d) unit rows."""
        if not x.is_floating_point():  # token ids or codes, cast and compressed without a word
            raise ValueError(f"DiveCompression: embeddings of dtype {x.dtype}; expected float "
                             "embeddings, as Runtime and transform take")
        if x.shape[-1] != self.input_dim:
            raise ValueError(
                f"DiveCompression: embeddings have dimension {x.shape[-1]}, "
                f"the compressor expects {self.input_dim}"
            )
        w1, b1, w2, b2 = (self._buffer(n) for n in _ADAPTER_BUFFERS)
        center, projection = self._buffer("center"), self._buffer("projection")
        # the buffers' dtype (float32 unless the module was cast); float32 where there are
        # none (frozen), as the numpy runtime returns: not the input's float64 or float16
        dtype = next((b.dtype for b in (w1, center, projection) if b is not None),
                     torch.float32)
        h = x.to(dtype)
        # As dive.arrays.as_unit_rows: rescale only rows that are not already of unit norm, in
        # float64 (a float32 sum of squares underflows below norm ~1e-19 and overflows above
        # ~1e19), each row divided by its largest value first (a float64 row of 1e-200s has
        # squares of 0: NaN, and 1e160s squares of inf: a zero row), clamped only to keep a
        # zero row zero (1e-12 would shrink a row of norm 1e-20).
        tiny = torch.finfo(torch.float64).tiny
        wide = x.to(torch.float64)
        peak = wide.abs().amax(dim=-1, keepdim=True)
        scaled = wide / peak.clamp_min(tiny)
        length = scaled.norm(dim=-1, keepdim=True)
        norm = peak * length
        unit = (scaled / length.clamp_min(tiny)).to(dtype)
        h = torch.where((norm - 1).abs() > UNIT_NORM_TOLERANCE, unit, h)
        if w1 is not None and b1 is not None and w2 is not None and b2 is not None:
            pre = h @ w1.T + b1
            act = torch.relu(pre) if self.activation == "relu" else F.gelu(pre, approximate="tanh")
            h = h + act @ w2.T + b2
        if center is not None:
            h = h - center
        if projection is not None:
            h = h @ projection.T
        return F.normalize(h, p=2, dim=-1, eps=1e-12)

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """Codes of unit rows `z` at the module's precision, as the numpy runtime makes them."""
        if self.precision == "float32":
            return z
        dtype = _CODE_DTYPES[self.precision]
        if self.precision == "float16":
            return z.to(dtype)
        if self.precision == "binary":
            weights = self._buffer("pack_weights")
            assert weights is not None
            return ((z > 0).to(weights.dtype) @ weights).to(dtype)
        low, width = self._buffer("quantizer_low"), self._buffer("quantizer_width")
        assert low is not None and width is not None
        xi = ((z.to(low.dtype) - low) / width).clamp(0, 1)
        return (torch.floor(INT8_LEVELS * xi) - 128).to(dtype)

    def to_compressor(self) -> LoadedCompressor:
        """The current buffers as a numpy `LoadedCompressor` (what `save` writes)."""

        arrays = {}
        for name in ARRAY_NAMES:
            t = self._buffer(buffer_name(name))
            if t is not None:
                arrays[name] = t.detach().to("cpu", torch.float32).numpy().copy()
        runtime = Runtime.from_arrays(arrays, input_dim=self.input_dim, output_dim=self.output_dim,
                                      activation=self.activation, precision=self.precision,
                                      where="DiveCompression")
        return LoadedCompressor(runtime, method=self.method, method_config=self.method_config,
                                summary=self.summary)

    def get_embedding_dimension(self) -> int:
        """Columns of the module's output: d, or ceil(d/8) bytes for binary."""
        return self.code_width

    def get_sentence_embedding_dimension(self) -> int:
        # The name sentence-transformers < 6 looks for.
        return self.code_width

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True,
             **kwargs: Any) -> None:
        """Write the module folder (a dive model folder, safetensors) over any earlier one."""
        save(self.to_compressor(), output_path, overwrite=True)

    @staticmethod
    def load(input_path: str) -> DiveCompression:
        return DiveCompression(load(input_path))

    def extra_repr(self) -> str:
        precision = "" if self.precision == "float32" else f", {self.precision}"
        return f"method={self.method!r}, {self.input_dim} -> {self.output_dim}{precision}"
