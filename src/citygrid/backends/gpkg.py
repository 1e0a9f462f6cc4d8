"""The embedded GeoPackage store.

Layers are written by pyogrio (or fiona) so the file is a plain GeoPackage that QGIS
opens as is: the district (``boundary``, ``streets``, ``communities``, ``grid``,
``roads``) and the components per geometry family (``components_point``,
``components_line``, ``components_polygon``). Registry bookkeeping lives in attribute
tables registered in ``gpkg_contents``: ``citygrid_meta``, ``citygrid_catalog``,
``citygrid_units``, ``citygrid_batches``, ``citygrid_history``, ``citygrid_aliases``,
``citygrid_allow``.

Every change after creation goes through one SQLite transaction (``BEGIN IMMEDIATE``,
WAL journal): a process killed at any instant leaves the file as before or as after;
a second writer waits up to ``timeout`` seconds, then gets :class:`RegistryLocked`;
readers are never blocked. The GeoPackage R-tree triggers call ``ST_MinX`` & co., which
plain SQLite lacks; they are registered on each connection from the geometry blob's
header (:func:`gpkg_blob` always writes the envelope).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import shapely

LAYERS = {"point": "components_point", "line": "components_line", "polygon": "components_polygon"}
DISTRICT_LAYERS = ("boundary", "streets", "communities", "grid", "roads")
SCHEMA_VERSION = 1

TABLES = {
    "citygrid_meta": "key TEXT PRIMARY KEY, value TEXT",
    "citygrid_batches": ("batch_id INTEGER PRIMARY KEY, source TEXT, user TEXT, started_at TEXT, "
                         "finished_at TEXT, created INTEGER, updated INTEGER, retired INTEGER, "
                         "unchanged INTEGER, kind TEXT"),
    "citygrid_history": ("change_id INTEGER PRIMARY KEY AUTOINCREMENT, batch_id INTEGER, "
                         "component_id TEXT, action TEXT, field TEXT, old_value TEXT, "
                         "new_value TEXT, changed_at TEXT"),
    "citygrid_aliases": "alias TEXT PRIMARY KEY, component_id TEXT, kind TEXT",
    "citygrid_allow": "component_id TEXT, rule TEXT, note TEXT, added_at TEXT, PRIMARY KEY (component_id, rule)",
}
_BUMP = "UPDATE citygrid_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'revision'"
INDEXES = (
    "CREATE INDEX IF NOT EXISTS citygrid_history_component ON citygrid_history (component_id)",
    "CREATE INDEX IF NOT EXISTS citygrid_history_time ON citygrid_history (changed_at)",
)


class RegistryLocked(OSError):
    """Another process is changing the registry."""


def as_multi(geoms: np.ndarray) -> np.ndarray:
    """Single lines and polygons as one-part multi geometries (the layers' declared type)."""
    geoms = np.asarray(geoms, dtype=object).copy()
    kinds = shapely.get_type_id(geoms)
    for single, make in ((1, shapely.multilinestrings), (3, shapely.multipolygons)):
        pos = np.flatnonzero(kinds == single)
        if len(pos):
            geoms[pos] = make(geoms[pos], indices=np.arange(len(pos)))
    return geoms


def as_single(geoms: np.ndarray) -> np.ndarray:
    """One-part multi geometries back to single ones (as they were registered)."""
    geoms = np.asarray(geoms, dtype=object).copy()
    multi = np.isin(shapely.get_type_id(geoms), (4, 5, 6)) & (shapely.get_num_geometries(geoms) == 1)
    geoms[multi] = shapely.get_geometry(geoms[multi], 0)
    return geoms


def gpkg_blob(geoms: np.ndarray, srs_id: int, *, multi: bool = False) -> list[bytes | None]:
    """GeoPackage geometry blobs (little-endian header with an XY envelope, then WKB).

    With `multi`, single lines/polygons are written as one-part multi geometries.
    """
    geoms = as_multi(geoms) if multi else np.asarray(geoms, dtype=object)
    wkb = shapely.to_wkb(geoms, byte_order=1)
    bounds = shapely.bounds(geoms)
    out: list[bytes | None] = []
    pack = struct.Struct("<2sBBi4d").pack
    for blob, (minx, miny, maxx, maxy) in zip(wkb, bounds):
        out.append(None if blob is None else pack(b"GP", 0, 0x03, srs_id, minx, maxx, miny, maxy) + blob)
    return out


_POINT_TYPES = (1, 1001, 2001, 3001)  # ISO WKB Point, Point Z, Point M, Point ZM


def _envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
    """``(minx, maxx, miny, maxy)`` of a GeoPackage geometry blob; None if empty or not one.

    From the header's envelope when it has one. GDAL writes points without one, so a
    point's coordinates are read straight from its WKB: parsing it with GEOS costs ten
    times more, and the R-tree triggers ask several times per row.
    """
    if blob is None or len(blob) < 8:
        return None
    flags = blob[3]
    if flags & 0x10:  # empty
        return None
    indicator = (flags >> 1) & 0x07
    if indicator:
        minx, maxx, miny, maxy = struct.unpack_from("<4d" if flags & 0x01 else ">4d", blob, 8)
        return minx, maxx, miny, maxy
    order = "<" if blob[8:9] == b"\x01" else ">"
    if len(blob) >= 29 and struct.unpack_from(order + "I", blob, 9)[0] in _POINT_TYPES:
        x, y = struct.unpack_from(order + "2d", blob, 13)
        return None if x != x else (x, x, y, y)  # NaN coordinates: an empty point
    geom = shapely.from_wkb(blob[8:])
    if geom is None or geom.is_empty:
        return None
    minx, miny, maxx, maxy = geom.bounds
    return minx, maxx, miny, maxy


def _register_functions(conn: sqlite3.Connection) -> None:
    last: list = [None, None]  # the R-tree triggers ask up to five times in a row about one blob

    def envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
        if blob != last[0]:
            last[:] = blob, _envelope(blob)
        return last[1]

    def part(i: int) -> Callable[[bytes | None], float | None]:
        return lambda blob: None if (box := envelope(blob)) is None else box[i]

    conn.create_function("ST_MinX", 1, part(0), deterministic=True)
    conn.create_function("ST_MaxX", 1, part(1), deterministic=True)
    conn.create_function("ST_MinY", 1, part(2), deterministic=True)
    conn.create_function("ST_MaxY", 1, part(3), deterministic=True)
    conn.create_function("ST_IsEmpty", 1, lambda blob: int(envelope(blob) is None), deterministic=True)


def connect(path: Path, *, timeout: float = 10.0, readonly: bool = False) -> sqlite3.Connection:
    """An SQLite connection with the GeoPackage functions the triggers need."""
    uri = f"file:{path}?mode={'ro' if readonly else 'rw'}"
    conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
    _register_functions(conn)
    # WAL with synchronous=NORMAL: a killed process still leaves before-or-after (only a
    # power cut may lose the last commit, never consistency); a bigger page cache for
    # random updates in 400k-row tables
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-65536")
    return conn


def init_tables(path: Path, meta: dict[str, str], tables: dict[str, pd.DataFrame]) -> None:
    """Create citygrid's attribute tables in a freshly written GeoPackage."""
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for name, columns in TABLES.items():
            conn.execute(f"CREATE TABLE {name} ({columns})")
        for name, frame in tables.items():
            cols = ", ".join(f'"{c}" TEXT' for c in frame.columns)
            conn.execute(f"CREATE TABLE {name} ({cols})")
            conn.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * len(frame.columns))})",
                             frame.astype(object).where(frame.notna(), None).itertuples(index=False))
        for name in list(TABLES) + list(tables):
            conn.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, description) "
                         "VALUES (?, 'attributes', ?, ?)", (name, name, "citygrid"))
        for layer in LAYERS.values():
            conn.execute(f'CREATE UNIQUE INDEX "{layer}_component_id" ON "{layer}" (component_id)')
            for event in ("INSERT", "UPDATE", "DELETE"):  # any edit, also from QGIS, is a new revision
                conn.execute(f'CREATE TRIGGER "{layer}_{event.lower()}_revision" AFTER {event} ON "{layer}" '
                             f"BEGIN {_BUMP}; END")
        for statement in INDEXES:
            conn.execute(statement)
        conn.executemany("INSERT INTO citygrid_meta VALUES (?, ?)", list(meta.items()))
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


@contextlib.contextmanager
def transaction(path: Path, *, timeout: float) -> Iterator[sqlite3.Connection]:
    """One all-or-nothing write: BEGIN IMMEDIATE … COMMIT, rolled back on any error."""
    conn = connect(path, timeout=timeout)
    try:
        start = time.monotonic()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise RegistryLocked(
                    f"registry {str(path)!r} is being changed by another process; waited "
                    f"{time.monotonic() - start:.1f} s. Try again when it is done, or pass a longer "
                    "timeout= to open_registry()."
                ) from None
            raise
        try:
            yield conn
            conn.execute(_BUMP)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


def read_meta(path: Path) -> dict[str, str]:
    """The registry's key/value metadata (revision, layout, admin code …)."""
    conn = connect(path, readonly=True)
    try:
        return dict(conn.execute("SELECT key, value FROM citygrid_meta").fetchall())
    finally:
        conn.close()


def read_table(path: Path, sql: str, params: tuple = ()) -> pd.DataFrame:
    """A query on the attribute tables as a DataFrame."""
    conn = connect(path, readonly=True)
    try:
        cursor = conn.execute(sql, params)
        columns = [c[0] for c in cursor.description]
        return pd.DataFrame(cursor.fetchall(), columns=columns)
    finally:
        conn.close()


def snapshot_path(path: Path) -> Path:
    """Where the components of the registry's current revision are kept for fast reading."""
    return path.with_name(path.name + ".snapshot")


_HEADER = struct.Struct("<8s16sq")  # magic, digest of the registry's state, length of the points part


def _digest(state: str) -> bytes:
    return hashlib.blake2b(state.encode("utf-8"), digest_size=16).digest()


def read_snapshot(path: Path, state: str) -> gpd.GeoDataFrame | None:
    """The components kept for `state` (creation time and revision), or None.

    Reading these Arrow buffers is about 2.5 times faster than reading the layers through
    GDAL. The file beside the registry is only a cache: deleting it loses nothing.
    """
    try:
        data = pa.memory_map(str(snapshot_path(path))).read_buffer()
    except OSError:
        return None
    if data.size < _HEADER.size:
        return None
    magic, kept, first = _HEADER.unpack(data[:_HEADER.size].to_pybytes())
    if magic != b"citygrid" or kept != _digest(state):
        return None
    bounds = [(_HEADER.size, _HEADER.size + first), (_HEADER.size + first, data.size)]
    try:
        parts = [gpd.GeoDataFrame.from_arrow(ipc.open_stream(data[a:b]).read_all()) for a, b in bounds if b > a]
    except (pa.ArrowException, ValueError):  # a damaged cache is read from the layers again
        return None
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def store_snapshot(path: Path, state: str, frame: gpd.GeoDataFrame) -> bool:
    """Keep `frame`, read in `state`, beside the registry (atomically replaced).

    Points are kept as coordinates (GeoArrow), which read back far faster than WKB; the
    rest as WKB. Returns whether it was kept: a read-only folder simply goes without.
    """
    points = shapely.get_type_id(frame.geometry.to_numpy()) == 0
    first = int(points.sum()) if points[:points.sum()].all() else 0  # the layers put points first
    blobs = []
    for part, encoding in ((frame.iloc[:first], "geoarrow"), (frame.iloc[first:], "WKB")):
        if len(part) == 0:
            blobs.append(b"")
            continue
        table = pa.table(part.to_arrow(index=False, geometry_encoding=encoding))
        sink = pa.BufferOutputStream()
        with ipc.new_stream(sink, table.schema, options=ipc.IpcWriteOptions(compression="lz4")) as writer:
            writer.write_table(table)
        blobs.append(sink.getvalue().to_pybytes())
    target = snapshot_path(path)
    partial = target.with_name(f"{target.name}.{os.getpid()}")
    try:
        partial.write_bytes(_HEADER.pack(b"citygrid", _digest(state), len(blobs[0])) + blobs[0] + blobs[1])
        partial.replace(target)
        return True
    except OSError:
        partial.unlink(missing_ok=True)
        return False


def srs_ids(conn: sqlite3.Connection) -> dict[str, int]:
    """SRS id of each components layer's geometry column."""
    rows = conn.execute("SELECT table_name, srs_id FROM gpkg_geometry_columns").fetchall()
    return {name: int(srs) for name, srs in rows}


def geometry_column(conn: sqlite3.Connection, layer: str) -> str:
    """Name of a layer's geometry column."""
    (name,) = conn.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?",
                           (layer,)).fetchone()
    return name
