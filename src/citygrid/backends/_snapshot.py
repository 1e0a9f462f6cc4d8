"""The components of one state kept as Arrow beside where they came from: the cache every backend reads first.

A GeoPackage keeps its snapshot beside the file (``<name>.gpkg.snapshot``), a shared registry's
client in its cache folder; either way the file is keyed on a 32-character state key, checked
against the SHA-256 in its header before Arrow reads a byte, written in the background and
atomically replaced. It is only a cache: deleting it loses nothing.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import shapely

from citygrid._vector import without_gc

__all__ = ["read_snapshot", "settle", "snapshot_path", "store_snapshot"]


def snapshot_path(path: Path) -> Path:
    """Where the components of the registry's current state are kept for fast reading."""
    return path.with_name(path.name + ".snapshot")


_HEADER = struct.Struct("<8s32sq32s")  # magic, the state id, length of the points part, SHA-256 of the rest
_MAGIC = b"citygrd2"


def read_snapshot(path: Path, state: str, columns: Sequence[str] | None = None) -> gpd.GeoDataFrame | None:
    """The components kept for the state id `state` (only `columns`, when given), or None.

    Reading these Arrow buffers is about 2.5 times faster than reading the layers through
    GDAL. The file beside the registry is only a cache: deleting it loses nothing. Its
    contents are checked against the SHA-256 in its header before Arrow reads a byte of
    them: a damaged, truncated or foreign file is ignored (and replaced by the next read).
    """
    settle(path)
    try:
        data = pa.memory_map(str(snapshot_path(path))).read_buffer()
    except OSError:
        return None
    if data.size < _HEADER.size:
        return None
    magic, kept, first, digest = _HEADER.unpack(data[:_HEADER.size].to_pybytes())
    if magic != _MAGIC or kept != state.encode("ascii") or not 0 <= first <= data.size - _HEADER.size:
        return None
    if hashlib.sha256(data[_HEADER.size:]).digest() != digest:  # damaged: never parsed, never served
        return None
    bounds = [(_HEADER.size, _HEADER.size + first), (_HEADER.size + first, data.size)]
    try:
        with without_gc():
            tables = [ipc.open_stream(data[a:b]).read_all() for a, b in bounds if b > a]
            parts = [gpd.GeoDataFrame.from_arrow(t if columns is None else t.select(list(columns))) for t in tables]
    except (pa.ArrowException, OSError, ValueError):  # a damaged cache is read from the layers again
        return None
    if not parts:  # a registry without components: its (empty) layers say what the columns are
        return None
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def store_snapshot(path: Path, state: str, frame: gpd.GeoDataFrame) -> None:
    """Keep `frame`, read in the state id `state`, beside the registry (atomically replaced).

    Points are kept as coordinates (GeoArrow), which read back far faster than WKB; the
    rest as WKB. A thread turns the frame into Arrow, compresses and writes it, off the
    caller's path. It works on a shallow copy: with pandas' copy-on-write, whatever the
    caller then does to `frame` leaves the copy as it was. Every later use of the snapshot
    of `path` in this process, and every write to the registry, waits for it
    (:func:`settle`), and so does the end of the process. A read-only folder or a full
    disk simply goes without.
    """
    settle(path)
    thread = threading.Thread(target=_write_snapshot, args=(path, state, frame.copy(deep=False)),
                              name=f"snapshot of {path.name}")
    thread.start()
    with _WRITING_LOCK:
        _WRITING.setdefault(os.path.abspath(path), []).append(thread)


_WRITING: dict[str, list[threading.Thread]] = {}
"""Snapshots being written in the background, by registry path (two threads may each merge)."""
_WRITING_LOCK = threading.Lock()


def settle(path: Path) -> None:
    """Wait until the snapshots of `path` that this process writes in the background are written."""
    with _WRITING_LOCK:
        threads = _WRITING.pop(os.path.abspath(path), [])
    for thread in threads:
        thread.join()


def _write_snapshot(path: Path, state: str, frame: gpd.GeoDataFrame) -> None:
    target = snapshot_path(path)
    partial = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}")
    points = shapely.get_type_id(frame.geometry.to_numpy()) == 0
    first = int(points.sum()) if points[:points.sum()].all() else 0  # the layers put points first
    try:
        tables = [_arrow(part, encoding) for part, encoding in ((frame.iloc[:first], "geoarrow"),
                                                                (frame.iloc[first:], "WKB"))]
        with open(partial, "w+b") as out:
            out.write(_HEADER.pack(_MAGIC, state.encode("ascii"), 0, bytes(32)))
            sizes = [_write_stream(out, table) for table in tables]
            out.seek(_HEADER.size)
            digest = hashlib.file_digest(out, "sha256").digest()
            out.seek(0)
            out.write(_HEADER.pack(_MAGIC, state.encode("ascii"), sizes[0], digest))
        partial.replace(target)
    except (OSError, pa.ArrowException, TypeError, ValueError):  # only a cache: the next open reads the layers
        partial.unlink(missing_ok=True)


def _arrow(part: gpd.GeoDataFrame, encoding: str) -> pa.Table | None:
    """`part` as an Arrow table (None for no rows), made in the calling thread alone.

    ``to_arrow`` hands the columns of a large frame to pyarrow's thread pool, which takes no
    work once the interpreter shuts down, as it does while the snapshot thread of a command's
    last merge still runs. The attributes are converted here with one thread, and the
    geometry column on its own (one column never uses the pool).
    """
    if not len(part):
        return None
    name = part.geometry.name
    geometry = pa.table(part[[name]].to_arrow(index=False, geometry_encoding=encoding))
    table = pa.Table.from_pandas(pd.DataFrame(part).assign(**{name: None}), preserve_index=False, nthreads=1)
    return table.set_column(table.schema.get_field_index(name), geometry.schema.field(0), geometry.column(0))


def _write_stream(out: BinaryIO, table: pa.Table | None) -> int:
    """Append `table` to `out` as an Arrow stream; its size in bytes (0 for none).

    Zstandard-compressed: at 420k components less than half the size of LZ4, and as fast to read.
    """
    if table is None:
        return 0
    start = out.tell()
    # one chunk per column (GDAL reads a layer in batches, merges add pieces): read back, the
    # frame filters several times faster (dropping the retired: 0.3 s at 420k with 11 chunks)
    table = table.combine_chunks()
    with ipc.new_stream(out, table.schema, options=ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_table(table)
    return out.tell() - start


# --- creation and upgrades ----------------------------------------------------------------

