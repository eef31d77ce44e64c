"""Trajectories as rows of a table: Parquet and Arrow files, and Hugging Face datasets.

Public trajectory sets are published as tables, one trajectory per row: SWE-smith's
(``instance_id``, ``messages``, ``resolved``, ...; ``messages`` often as one JSON string), SWE-Gym's and
other OpenHands-style sets of OpenAI tool-call transcripts. Each row is a record like one line of a JSONL file,
read by the same formats (:data:`srl_swe.trajectories.FORMATS`) with the same error rules: a bad row is skipped
with its row number, the rest go on.

Rows are read in batches of :data:`BATCH_ROWS`, so a set of any size holds one batch in memory
(:func:`srl_swe.trajectories.iter_files`). Sources:

* a ``.parquet`` file, or an Arrow ``.arrow`` file in the IPC stream format (what ``datasets`` writes and
  ``save_to_disk`` leaves) or the IPC file format;
* ``hf:NAME``, ``hf:NAME:SPLIT`` or ``hf:NAME:CONFIG:SPLIT``: ``datasets.load_dataset(NAME, CONFIG,
  split=SPLIT, streaming=True)`` (split ``train`` by default), e.g. ``hf:SWE-bench/SWE-smith-trajectories:tool``.
  NAME is anything ``load_dataset`` takes: a hub id (needs the hub, or its cache with ``HF_DATASETS_OFFLINE=1``)
  or a local folder of data files.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from srl_swe.errors import TrajectoryFormatError

TABULAR_SUFFIXES = (".parquet", ".arrow")
HUB_PREFIX = "hf:"
#: Rows per batch handed on: a trajectory row is up to a few MB, so 64 keep a batch well under a GB.
BATCH_ROWS = 64

Batch = list[tuple[int, Any]]  # (row number, row as a dict)


def is_tabular(path: Path) -> bool:
    return path.name.endswith(TABULAR_SUFFIXES)


def is_hub(spec: str | Path) -> bool:
    return isinstance(spec, str) and spec.startswith(HUB_PREFIX)


def parse_hub(spec: str) -> tuple[str, str | None, str]:
    """``hf:NAME[:CONFIG]:SPLIT`` -> (NAME, CONFIG or None, SPLIT); SPLIT is ``train`` when left out."""
    parts = spec[len(HUB_PREFIX):].split(":")
    if not parts[0] or len(parts) > 3 or not all(parts):
        raise ValueError(f"{spec!r}: expected hf:NAME, hf:NAME:SPLIT or hf:NAME:CONFIG:SPLIT "
                         "(e.g. hf:SWE-bench/SWE-smith-trajectories:tool)")
    name, config, split = parts[0], (parts[1] if len(parts) == 3 else None), (parts[-1] if len(parts) > 1 else "train")
    return name, config, split


def iter_table(path: Path) -> Iterator[Batch]:
    """The rows of a Parquet or Arrow file in batches; a file that is not one is a TrajectoryFormatError."""
    import pyarrow as pa

    source = str(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise TrajectoryFormatError(source, "a readable file", got=e.strerror or str(e)) from None
    if not stat.S_ISREG(mode):  # a FIFO would block the reader: refused by type, never opened
        raise TrajectoryFormatError(source, "a regular file", got="not a regular file")
    kind = "a Parquet file" if path.name.endswith(".parquet") else "an Arrow IPC file or stream"
    start = 0
    try:
        for batch in _batches(path):
            for offset in range(0, batch.num_rows, BATCH_ROWS):
                rows = batch.slice(offset, BATCH_ROWS).to_pylist()
                yield list(enumerate(rows, start=start))
                start += len(rows)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise TrajectoryFormatError(source, kind, f"row {start}" if start else None, got=str(e)[:200]) from None


def _batches(path: Path) -> Iterator[Any]:
    import pyarrow as pa

    if path.name.endswith(".parquet"):
        import pyarrow.parquet as pq

        with pq.ParquetFile(path) as pf:
            yield from pf.iter_batches(batch_size=BATCH_ROWS)
        return
    with pa.memory_map(str(path)) as src:
        try:
            reader = pa.ipc.open_stream(src)
        except pa.ArrowInvalid:  # not a stream: the IPC file format (Feather v2)
            src.seek(0)
            f = pa.ipc.open_file(src)
            for i in range(f.num_record_batches):
                yield f.get_batch(i)
            return
        yield from reader


def iter_hub(spec: str) -> Iterator[Batch]:
    """The rows of a Hugging Face dataset (``hf:NAME[:CONFIG]:SPLIT``), streamed, in batches."""
    try:
        import datasets
    except ImportError as e:
        raise ImportError("reading a Hugging Face dataset needs the `datasets` package: pip install "
                          "'srl-swe[data]'") from e
    name, config, split = parse_hub(spec)
    try:
        ds = datasets.load_dataset(name, config, split=split, streaming=True)
    except Exception as e:  # the hub, a missing split or config: datasets raises many kinds
        raise TrajectoryFormatError(spec, "a dataset that datasets.load_dataset can open",
                                    got=f"{type(e).__name__}: {str(e)[:300]}") from None
    batch: Batch = []
    for i, row in enumerate(ds):
        batch.append((i, row))
        if len(batch) == BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch
