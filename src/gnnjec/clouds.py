"""The particle-cloud files between the stages: one row a jet, its constituents as lists of structs,
Parquet with zstd. ``convert`` writes one per input file, ``merge_splits`` makes the train/val/test files,
training, export and evaluation read them.
"""

from __future__ import annotations

import contextlib
import os

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import provenance
from .command import Command
from .errors import InputError
from .files import atomic_output, guarded, reading
from .ragged import offsets_from_counts
from .spec import SPLITS


def list_column(fields: dict, counts: np.ndarray) -> pa.ListArray:
    """A non-nullable list<struct<fields>> Arrow column from flat arrays and per-jet counts."""
    struct = pa.StructArray.from_arrays([pa.array(v) for v in fields.values()],
                                        fields=[pa.field(k, pa.from_numpy_dtype(v.dtype), nullable=False)
                                                for k, v in fields.items()])
    item = pa.field("item", struct.type, nullable=False)
    return pa.ListArray.from_arrays(pa.array(offsets_from_counts(counts).astype(np.int32)), struct, type=pa.list_(item))


def arrow_table(columns: dict) -> pa.Table:
    arrays = [c if isinstance(c, pa.Array) else pa.array(c) for c in columns.values()]
    schema = pa.schema([pa.field(k, a.type, nullable=False) for k, a in zip(columns, arrays)])
    return pa.Table.from_arrays(arrays, schema=schema)


def _float_columns(schema: pa.Schema) -> list[str]:
    """Parquet paths of the float32 leaves (lists of structs are ``name.list.element.field``)."""
    paths = []
    for field in schema:
        if pa.types.is_list(field.type):
            paths += [f"{field.name}.list.element.{f.name}" for f in field.type.value_type
                      if pa.types.is_float32(f.type)]
        elif pa.types.is_float32(field.type):
            paths.append(field.name)
    return paths


def parquet_writer(path, schema: pa.Schema) -> pq.ParquetWriter:
    """Clouds files: zstd, no dictionaries (useless for floats, and slow), byte-stream-split floats."""
    schema = schema.with_metadata({**(schema.metadata or {}), provenance.KEY.encode(): provenance.as_json().encode()})
    return pq.ParquetWriter(path, schema, compression="zstd", use_dictionary=False,
                            use_byte_stream_split=_float_columns(schema),
                            write_statistics=["run", "luminosity_block", "event", "split"])


def merge_splits(parts: list[str], outputs: dict[str, str]) -> dict:
    """Stream per-file clouds into one Parquet file per split (train/val/test), row group by row group."""
    counts = dict.fromkeys(outputs, 0)
    schema = None
    if not parts:
        raise InputError("no converted files to merge; check the config's samples")
    with contextlib.ExitStack() as stack:
        tmps = {name: stack.enter_context(atomic_output(path)) for name, path in outputs.items()}
        writers = {}
        for part in parts:
            with reading(part, "clouds Parquet file", CONVERT_AGAIN):
                reader = pq.ParquetFile(part)
            if schema is None:
                schema = reader.schema_arrow
                writers = {name: parquet_writer(tmps[name], schema) for name in outputs}
            elif reader.schema_arrow != schema:
                raise InputError(f"{part}: its columns differ from {parts[0]}; "
                                 "reconvert all files with the same version")
            for table in guarded(map(reader.read_row_group, range(reader.num_row_groups)), part,
                                 "clouds Parquet file", CONVERT_AGAIN):
                split = table.column("split").to_numpy()
                for code, name in enumerate(SPLITS):
                    if name in writers:
                        sel = table.filter(pa.array(split == code))
                        if sel.num_rows:
                            writers[name].write_table(sel)
                            counts[name] += sel.num_rows
        for w in writers.values():
            w.close()
    return counts


CONVERT_AGAIN = "delete it and run the convert stage again (snakemake reruns it)"

_LARGER_SHARE = {"train": "raise split.train", "val": "raise split.val",
                 "test": "lower split.train + split.val (the test split is the rest)"}
"""Per split, the change of the configuration's fractions that gives it more jets."""


def n_jets(path: str) -> int:
    """The number of jets (rows) in a clouds file, from its footer."""
    clouds_schema(path)  # there, and Parquet
    with reading(path, "clouds Parquet file", CONVERT_AGAIN):
        return pq.ParquetFile(path).metadata.num_rows


def no_jets(path: str) -> InputError:
    """The one line for a clouds file without a jet: which split it is (by its name, as merge-clouds writes them),
    and the fix."""
    split = os.path.splitext(os.path.basename(path))[0]
    if split in _LARGER_SHARE:
        return InputError(f"{path}: holds no jets: the {split} split is empty; convert more events or files, or "
                          f"{_LARGER_SHARE[split]} in the config")
    return InputError(f"{path}: holds no jets; convert more events or files")


def clouds_schema(path: str) -> pa.Schema:
    """The columns of a clouds file, or one InputError line if it is missing or not Parquet."""
    if not os.path.exists(path):
        raise InputError(f"{path}: no such clouds file; run the convert stage first")
    with reading(path, "clouds Parquet file", CONVERT_AGAIN):
        return pq.read_schema(path)


def require_columns(path: str, columns: list[str]) -> None:
    """One InputError line if the clouds file lacks a column (``name`` or ``collection.field``): a file
    converted by an older version, before that feature existed."""
    schema = clouds_schema(path)
    for column in columns:
        name, _, field = column.partition(".")
        if name not in schema.names:
            missing = name
        elif field and field not in [f.name for f in schema.field(name).type.value_type]:
            missing = column
        else:
            continue
        raise InputError(f"{path}: no column {missing!r}; the file was converted by an older version or with "
                         f"other features: {CONVERT_AGAIN}")


def read_clouds(path: str, columns: list[str] | None = None, row_groups: list[int] | None = None) -> ak.Array:
    """Read a clouds Parquet file (all columns, or the named ones; all row groups, or the listed ones); a file
    without a jet is one InputError line (:func:`no_jets`)."""
    require_columns(path, columns or [])
    if n_jets(path) == 0:
        raise no_jets(path)
    with reading(path, "clouds Parquet file", CONVERT_AGAIN):
        return ak.from_parquet(path, columns=columns, row_groups=row_groups)


def _arguments(p) -> None:
    p.add_argument("parts", nargs="+")
    for split in SPLITS:
        p.add_argument(f"--{split}", required=True, help=f"output: the {split} split")


def _run(a) -> None:
    import logging

    counts = merge_splits(a.parts, {split: getattr(a, split) for split in SPLITS})
    logging.getLogger(__name__).info("jets per split: %s", counts)


COMMANDS = {"merge-clouds": Command(_arguments, _run, reads=("parts",), outputs=SPLITS)}
