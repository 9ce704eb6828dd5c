"""`dive export` and `dive index`: a saved compressor as ONNX or a sentence-transformers
model, or a corpus compressed into a FAISS index."""

from __future__ import annotations

import argparse
from pathlib import Path

from dive._io import check_output
from dive.cli.interrupts import written_in_full
from dive.cli.loading import load_compressor, warn_of_another_model
from dive.errors import DiveError


def cmd_export(args: argparse.Namespace) -> int:
    if args.format == "onnx":
        from dive.export.onnx import ONNX_SUFFIX, export_onnx, is_onnx_export

        if args.model is not None:
            raise DiveError("--model applies to --format sentence-transformers only")
        check_output(Path(args.output), overwrite=args.overwrite, ours=is_onnx_export,
                     what="an ONNX file dive exported", suffix=ONNX_SUFFIX)
        path = export_onnx(load_compressor(args), args.output, overwrite=args.overwrite)
    else:
        from dive.export.sentence_transformers import (
            check_st_output,
            export_sentence_transformers,
        )

        check_st_output(Path(args.output), overwrite=args.overwrite, bundled=args.model is not None)
        path = export_sentence_transformers(load_compressor(args), args.output,
                                            base_model=args.model, overwrite=args.overwrite)
    written_in_full(args, path)
    print(f"wrote {path}")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from dive.arrays import row_blocks
    from dive.compressors.runtime import runtime_digest
    from dive.embed import load_embeddings
    from dive.export.faiss_index import build_index, check_index_output, save_index

    if args.seed is not None and args.opq is None:
        raise DiveError("--seed is used only with --opq (the seed of its k-means)")
    check_index_output(Path(args.output), overwrite=args.overwrite)
    compressor = load_compressor(args)
    if (args.hnsw or args.opq) and compressor.precision != "float32":
        raise DiveError(f"--{'hnsw' if args.hnsw else 'opq'} indexes float32 vectors; "
                        f"{args.model_dir} outputs {compressor.precision} codes, which go into "
                        "the exact flat index")
    emb = load_embeddings(args.embeddings, mmap=True)
    if emb.dim != compressor.input_dim:  # named here: the compressor would name only itself
        raise DiveError(f"{Path(args.embeddings) / 'corpus.npy'}: vectors have dimension "
                        f"{emb.dim}, but {args.model_dir} expects {compressor.input_dim} "
                        "(embeddings from another model?)")
    warn_of_another_model(args.embeddings, emb.meta.get("model"), compressor)
    runtime = compressor.fitted_runtime()
    # compressed a block at a time: memory holds the index, not a compressed corpus beside it
    blocks = runtime.blocks(row_blocks(emb.corpus), name=str(Path(args.embeddings) / "corpus.npy"))
    index = build_index(blocks, "hnsw" if args.hnsw else "flat", ids=emb.corpus_ids,
                        model_sha256=runtime_digest(runtime), quantizer=runtime.quantizer,
                        product=args.opq, seed=args.seed or 0)
    path = save_index(index, args.output, overwrite=args.overwrite)
    written_in_full(args, path)
    # an HNSW graph's links are bytes per vector too: the file says how many
    graph = (f" of codes, {path.stat().st_size / len(index):.0f} on disk with its graph links"
             if args.hnsw else "")
    # "flat" read as exact: an OPQ+PQ index is searched exhaustively, but over lossy codes
    kind = "hnsw" if args.hnsw else "exhaustive over PQ codes" if args.opq else "flat"
    print(f"indexed {len(index)} documents ({index.dim}-d {index.precision}, "
          f"{index.bytes_per_vector} bytes/vector{graph}, {kind})")
    print(f"wrote {path}")
    return 0

