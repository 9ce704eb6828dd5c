"""The model a compress run uses: any model argument resolved to its numpy `Runtime`
(`resolve_runtime`) and the element type a run writes (`output_dtype`). `runtime_digest`, the
model's identity, is `dive.compressors.runtime`'s, also importable from here (its earlier
home).

Left out: loading a model folder (`dive.export.folder`) and computing with the runtime
(`dive.compressors.runtime`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from dive.compressors.runtime import Runtime
from dive.compressors.runtime import runtime_digest as runtime_digest  # its earlier home
from dive.errors import DiveError, kind_of

if TYPE_CHECKING:
    from dive.compressors.base import Compressor
    from dive.export.folder import LoadedCompressor

    ModelLike = Runtime | LoadedCompressor | Compressor | str | os.PathLike[str]


OutputDtype = Literal["float32", "float16"]
OUTPUT_DTYPES: tuple[str, ...] = get_args(OutputDtype)


def resolve_runtime(model: ModelLike) -> Runtime:
    """The numpy `Runtime` of a model folder path, a loaded or fitted compressor, or a runtime."""
    if isinstance(model, Runtime):
        return model
    if isinstance(model, (str, os.PathLike)):
        from dive.export.folder import load

        return load(model).runtime_
    fitted = getattr(model, "fitted_runtime", None)
    if callable(fitted):
        runtime = fitted()
        if isinstance(runtime, Runtime):
            return runtime
    # one line, as every other argument's (a TypeError was a traceback in the API's callers)
    raise DiveError(f"model is {kind_of(model)}; expected a Runtime, a fitted or loaded "
                    "compressor, or a model folder path", param="model")


def output_dtype(runtime: Runtime, dtype: str | None) -> np.dtype[Any]:
    """The element type a compress run writes: the model's codes, or its float32 output cast
    to `dtype` (float32 or float16, for float32 models only)."""
    if dtype is not None and dtype not in OUTPUT_DTYPES:
        raise DiveError(f"dtype must be one of {', '.join(OUTPUT_DTYPES)}, got {dtype!r}")
    if runtime.quantizer is None:
        return np.dtype(dtype or "float32")
    if dtype is not None and np.dtype(dtype) != runtime.quantizer.dtype:
        raise DiveError(f"the model outputs {runtime.precision} codes; dtype {dtype} applies "
                        "to float32 models only (leave it out)")
    return runtime.quantizer.dtype
