"""`dive embed`: a dataset encoded, or vectors made elsewhere imported, into an embeddings
folder."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from dive.cli.interrupts import written_in_full
from dive.errors import DiveError


def cmd_embed(args: argparse.Namespace) -> int:
    from dive.data import load_dataset
    from dive.embed import cache_folder
    from dive.embed.encode import env_entry_ahead_of, model_label
    from dive.embed.imported import IMPORTED_MODEL, from_npy, from_parquet
    from dive.embed.resumable import encode_to_folder
    from dive.embed.store import check_embeddings_output

    imported = args.from_parquet is not None or args.from_npy is not None
    model = args.model or (IMPORTED_MODEL if imported else "all-MiniLM-L6-v2")
    if args.from_parquet is not None and args.queries_parquet is None:
        raise DiveError("--from-parquet needs --queries-parquet (the query vectors)")
    if args.from_npy is not None and None in (args.ids, args.queries_npy, args.query_ids):
        raise DiveError("--from-npy needs --ids, --queries-npy and --query-ids")
    for owner, source, companions in (
        ("--from-parquet", args.from_parquet, {"--queries-parquet": args.queries_parquet,
                                               "--id-column": args.id_column,
                                               "--vector-column": args.vector_column}),
        ("--from-npy", args.from_npy,
         {"--ids": args.ids, "--queries-npy": args.queries_npy, "--query-ids": args.query_ids}),
    ):
        stray = [flag for flag, value in companions.items() if value is not None]
        if stray and source is None:
            verb = "goes" if len(stray) == 1 else "go"
            raise DiveError(f"{' and '.join(stray)} {verb} with {owner}, which is not given")
    encoding = _given(args, "batch_size", "device", "chunk_size")
    if imported and encoding:  # else ignored without a word
        flags = " and ".join(f"--{name.replace('_', '-')}" for name in encoding)
        owner = "--from-parquet" if args.from_parquet is not None else "--from-npy"
        raise DiveError(f"{flags} {'sets' if len(encoding) == 1 else 'set'} how texts are "
                        f"encoded; {owner} imports vectors, which are not encoded")
    dataset = load_dataset(args.dataset, data_dir=args.data_dir)
    out = Path(args.output) if args.output else cache_folder(dataset, model)
    check_embeddings_output(out, overwrite=args.overwrite)
    ahead = None if args.output else env_entry_ahead_of(dataset, model)
    if ahead is not None:  # evaluate and fit read that folder, without a word on this one
        logging.getLogger(__name__).warning(
            "%s ($DIVE_EMBEDDINGS) holds %s embeddings of %s too, which evaluate and fit "
            "read ahead of the cache: pass them --embeddings %s to read these", ahead,
            model_label(model), dataset.name, out)
    args.output = str(out)  # where an interruption once it is in place says it was written
    if imported:
        if args.from_parquet is not None:
            emb = from_parquet(dataset, args.from_parquet, args.queries_parquet, out,
                               **_given(args, "id_column", "vector_column"),
                               model=model, overwrite=args.overwrite)
        else:
            emb = from_npy(dataset, args.from_npy, args.ids, args.queries_npy, args.query_ids,
                           out, model=model, overwrite=args.overwrite)
        written_in_full(args, out)
        unit = ("unit-norm" if emb.meta["normalized"] else
                f"not unit-norm: {_norms_off_unit(emb.meta['norms'])}, normalised where used")
        print(f"imported {emb.corpus.shape[0]} corpus and {emb.queries.shape[0]} query vectors "
              f"({emb.dim}-d, {unit}) as {emb.meta['model']}: {out}")
        return 0
    result = encode_to_folder(dataset, out, model_name=model, **encoding,
                              overwrite=args.overwrite, progress=not args.no_progress)
    written_in_full(args, out)
    emb = result.embeddings
    resumed = (f", resumed after {result.resumed_chunks} of {result.chunks} chunks"
               if result.resumed_chunks else "")
    print(f"embedded {emb.corpus.shape[0]} documents and {emb.queries.shape[0]} queries with "
          f"{emb.meta['model']} ({emb.dim}-d) in {result.seconds:.1f} s{resumed}: {out}")
    return 0


def _given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The flags of `names` given, by name, as keyword arguments: one not given is left out,
    so it takes the library's default."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _norms_off_unit(norms: dict[str, dict[str, float]]) -> str:
    """The norm range of each side (corpus, queries) not at unit norm: "queries norms 3..3"."""
    from dive.embed.imported import at_unit_norm

    return "; ".join(f"{side} norms {n['min']:.3g}..{n['max']:.3g}" for side, n in norms.items()
                     if not at_unit_norm(n))
