"""Export a fitted compressor as an ONNX graph, built node by node from its `Runtime`.

The graph computes exactly the runtime's steps (see `dive.compressors.runtime`): input rows
whose norm is off 1 by more than 1e-3 divided by their norm, in float64 as numpy does (others
divided by exactly 1, so unit rows pass unchanged), the optional residual adapter (MatMul/Add,
then Relu or the tanh-GELU formula written out in elementary ops so any runtime computes the
same thing as numpy), the optional centre (Sub) and projection (MatMul), then L2 normalisation
(ReduceL2, Max with 1e-12, Div), then the precision (`dive.compressors.precision`): float16 a
Cast; int8 the same Sub, Div, Clip, Mul by 255, Floor and shift as numpy, Cast to int8; binary
Greater-than-0 and one MatMul by `pack_weights` (np.packbits' bit order), Cast to uint8.
Input `embeddings` is float32 (batch, D) with a dynamic batch axis; output `compressed` is
(batch, d) float32, float16 or int8, or (batch, ceil(d/8)) uint8 for binary.
No torch involved: the `onnx` package's helper API builds the graph.

Left out: float16 arithmetic inside the graph (only the output is cast), and folding the
tokenizer/encoder into the same graph (export the sentence-transformers model with its own
tools and chain the two).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from dive import __version__
from dive._io import as_path, atomic_write_bytes, check_output, refuse_folder_form
from dive.arrays import UNIT_NORM_TOLERANCE
from dive.compressors.precision import INT8_LEVELS, Quantizer, pack_weights
from dive.compressors.runtime import Runtime
from dive.errors import DiveError
from dive.export.folder import RUNTIME_METHOD, as_loaded

logger = logging.getLogger(__name__)

INPUT_NAME = "embeddings"
OUTPUT_NAME = "compressed"
ONNX_SUFFIX = ".onnx"
OPSET = 17  # ReduceL2 still takes `axes` as an attribute; supported by every current runtime
IR_VERSION = 8  # the IR version that goes with opset 17, so older onnxruntime builds load it
NORM_EPS = 1e-12  # the runtime's NORM_FLOOR: a row it refuses is divided by it here
INPUT_EPS = float(np.finfo(np.float64).tiny)  # below the norm of any non-zero float32 row


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise DiveError("ONNX export needs the onnx package; install dive-compress[onnx]") from None
    return onnx


def build_onnx_model(runtime: Runtime, *, method: str = RUNTIME_METHOD) -> Any:
    """The `onnx.ModelProto` computing `runtime` (checked with onnx.checker)."""
    onnx = _import_onnx()
    from onnx import TensorProto, helper, numpy_helper

    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, value: np.ndarray | np.floating[Any] | float) -> str:
        arr = np.ascontiguousarray(np.asarray(value, dtype=np.float32))
        inits.append(numpy_helper.from_array(arr, name=name))
        return name

    def op(kind: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(kind, inputs, [output], name=output, **attrs))
        return output

    # As dive.arrays.as_unit_rows: rescale only rows that are not already of unit norm, in
    # float64 (a float32 sum of squares underflows below norm ~1e-19 and overflows above ~1e19)
    # and clamped only to keep a zero row zero (NORM_EPS would shrink a row of norm < 1e-12).
    def const64(name: str, value: float) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float64), name=name))
        return name

    wide = op("Cast", [INPUT_NAME], "input.wide", to=TensorProto.DOUBLE)
    in_norm = op("ReduceL2", [wide], "input.norm", axes=[1], keepdims=1)
    off = op("Greater", [op("Abs", [op("Sub", [in_norm, const64("input.one", 1.0)], "input.dev")],
                            "input.absdev"), const64("input.tol", UNIT_NORM_TOLERANCE)],
             "input.off")
    divisor = op("Where", [off, op("Max", [in_norm, const64("input.eps", INPUT_EPS)],
                                   "input.norm_clamped"), const64("input.unit", 1.0)],
                 "input.divisor")
    h = op("Cast", [op("Div", [wide, divisor], "input.wide_unit_rows")], "input.unit_rows",
           to=TensorProto.FLOAT)
    if runtime.adapter is not None:
        a = runtime.adapter
        pre = op("Add", [op("MatMul", [h, const("adapter.w1T", a.w1.T)], "adapter.x_w1"),
                         const("adapter.b1", a.b1)], "adapter.pre")
        if a.activation == "relu":
            act = op("Relu", [pre], "adapter.act")
        else:
            # 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))), in numpy's order of ops.
            cube = op("Mul", [op("Mul", [pre, pre], "gelu.x2"), pre], "gelu.x3")
            inner = op("Add", [pre, op("Mul", [const("gelu.k", 0.044715), cube], "gelu.kx3")],
                       "gelu.inner")
            scaled = op("Mul", [const("gelu.c", np.float32(np.sqrt(2.0 / np.pi))), inner],
                        "gelu.scaled")
            one_plus = op("Add", [const("gelu.one", 1.0), op("Tanh", [scaled], "gelu.tanh")],
                          "gelu.one_plus")
            half_x = op("Mul", [const("gelu.half", 0.5), pre], "gelu.half_x")
            act = op("Mul", [half_x, one_plus], "adapter.act")
        up = op("MatMul", [act, const("adapter.w2T", a.w2.T)], "adapter.up")
        h = op("Add", [op("Add", [h, up], "adapter.x_up"), const("adapter.b2", a.b2)], "adapter.h")
    if runtime.center is not None:
        h = op("Sub", [h, const("center", runtime.center)], "centered")
    if runtime.projection is not None:
        h = op("MatMul", [h, const("projection.T", runtime.projection.T)], "projected")
    norm = op("ReduceL2", [h], "norm", axes=[1], keepdims=1)
    norm = op("Max", [norm, const("norm.eps", NORM_EPS)], "norm.clamped")
    quantizer = runtime.quantizer
    out_type = int(TensorProto.FLOAT)
    if quantizer is None:
        op("Div", [h, norm], OUTPUT_NAME)
    else:
        out_type = _quantize(quantizer, op("Div", [h, norm], "normalized"), const, op,
                             TensorProto)

    graph = helper.make_graph(
        nodes,
        f"dive_{method}",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                       ["batch", runtime.input_dim])],
        [helper.make_tensor_value_info(OUTPUT_NAME, out_type, ["batch", runtime.code_width])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        producer_name="dive",
        producer_version=__version__,
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {
        "dive_version": __version__,
        "method": method,
        "input_dim": str(runtime.input_dim),
        "output_dim": str(runtime.output_dim),
        "precision": runtime.precision,
    })
    onnx.checker.check_model(model)
    return model


def _quantize(quantizer: Quantizer, z: str, const: Any, op: Any, types: Any) -> int:
    """Nodes from the unit vectors `z` to OUTPUT_NAME's codes; returns the output's type."""
    if quantizer.precision == "float16":
        op("Cast", [z], OUTPUT_NAME, to=types.FLOAT16)
        return int(types.FLOAT16)
    if quantizer.precision == "binary":
        bits = op("Cast", [op("Greater", [z, const("binary.zero", 0.0)], "binary.positive")],
                  "binary.bits", to=types.FLOAT)
        packed = op("MatMul", [bits, const("binary.pack", pack_weights(quantizer.dim))],
                    "binary.packed")
        op("Cast", [packed], OUTPUT_NAME, to=types.UINT8)
        return int(types.UINT8)
    assert quantizer.low is not None and quantizer.width is not None
    xi = op("Div", [op("Sub", [z, const("quantizer.low", quantizer.low)], "int8.shifted"),
                    const("quantizer.width", quantizer.width)], "int8.scaled")
    xi = op("Clip", [xi, const("int8.zero", 0.0), const("int8.one", 1.0)], "int8.clipped")
    level = op("Floor", [op("Mul", [const("int8.levels", INT8_LEVELS), xi], "int8.level")],
               "int8.floor")
    code = op("Sub", [level, const("int8.offset", 128.0)], "int8.code")
    op("Cast", [code], OUTPUT_NAME, to=types.INT8)
    return int(types.INT8)


def is_onnx_export(path: Path) -> bool:
    """Whether `path` is an ONNX file `export_onnx` wrote (its producer is dive)."""
    if not path.is_file():
        return False
    onnx = _import_onnx()  # without it, say so: not that dive's own export is not dive's
    try:
        return bool(onnx.load(str(path), load_external_data=False).producer_name == "dive")
    except Exception:  # any unreadable file is simply not ours
        return False


def export_onnx(source: Any, file: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write `source` (a model folder, fitted/loaded compressor or `Runtime`) as an ONNX file.

    The file is written atomically; returns its path. Only an ONNX file dive exported is
    ever replaced (`is_onnx_export`; anything else raises `DiveError`), and that only with
    `overwrite`; `overwrite=False` keeps even one a concurrent run wrote meanwhile.
    """
    target = as_path(file, "export_onnx: file")
    refuse_folder_form(file, "an ONNX export is one file")
    check_output(target, overwrite=overwrite, ours=is_onnx_export,
                 what="an ONNX file dive exported", suffix=ONNX_SUFFIX)
    compressor = as_loaded(source)
    runtime = compressor.fitted_runtime()
    model = build_onnx_model(runtime, method=compressor.method)
    atomic_write_bytes(target, model.SerializeToString(), overwrite=overwrite, output=True)
    logger.info("wrote ONNX graph (%d -> %d) to %s", runtime.input_dim, runtime.output_dim, target)
    return target
