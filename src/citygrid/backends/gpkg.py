"""The embedded GeoPackage store (the default registry).

Layers are written by pyogrio (or fiona) so the file is a plain GeoPackage that QGIS opens
as is: the district (``boundary``, ``streets``, ``communities``, ``grid``, ``roads``) and
the components per geometry family (``components_point``, ``components_line``,
``components_polygon``). Registry bookkeeping lives in attribute tables registered in
``gpkg_contents``, each with an integer primary key as the GeoPackage standard asks:
``citygrid_meta``, ``citygrid_catalog``, ``citygrid_units``, ``citygrid_batches``,
``citygrid_history``, ``citygrid_aliases``, ``citygrid_allow``; and QGIS's ``layer_styles``, with
a default style for every layer (:mod:`citygrid.styles`).

Every change after creation goes through one SQLite transaction (``BEGIN IMMEDIATE``,
WAL journal): a process killed at any instant leaves the file as before or as after; a
second writer waits up to ``timeout`` seconds, then gets :class:`RegistryLocked`; readers
are never blocked. The GeoPackage R-tree triggers call ``ST_MinX`` & co., which plain
SQLite lacks; they are registered on each connection.

**State id.** Every commit, citygrid's own and any edit of a components layer by another
program (through triggers), writes a new random ``state`` into ``citygrid_meta``. The
Arrow snapshot beside the file (``<name>.gpkg.snapshot``) is keyed on it, so a restored
backup, a copied file or a foreign snapshot can never be served for another state.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
import sqlite3
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.request import pathname2url

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from citygrid import settings
from citygrid._arrays import NONE
from citygrid._i18n import _
from citygrid._layers import COMPONENT_LAYERS, DISTRICT_LAYERS, as_multi, as_single, families
from citygrid._vector import read_layer, write_layer
from citygrid.backends import OUTSIDE_BATCH, NewRegistry, Stale, Written
from citygrid.backends._bookkeeping import BookkeepingReads
from citygrid.backends._snapshot import read_snapshot, settle, snapshot_path, store_snapshot
from citygrid.catalog import Catalog
from citygrid.errors import (
    AccessDenied,
    OutputError,
    RegistryError,
    RegistryExists,
    RegistryLocked,
    RegistryNotFound,
    UsageError,
)
from citygrid.schema import DATE_FIELDS, FIELD_NAMES, conform
from citygrid.styles import registry_styles

if TYPE_CHECKING:
    from citygrid.admin import District
    from citygrid.backends import Store
    from citygrid.merge import Batch, Plan

SCHEMA_VERSION = 2
"""1: the first layout; 2: integer primary keys on every attribute table, the random state id,
DATE and DATETIME values as the GeoPackage standard writes them."""

TABLES = {
    "citygrid_meta": "fid INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, value TEXT",
    "citygrid_batches": ("batch_id INTEGER PRIMARY KEY, source TEXT, user TEXT, started_at TEXT, "
                         "finished_at TEXT, created INTEGER, updated INTEGER, retired INTEGER, "
                         "unchanged INTEGER, kind TEXT"),
    "citygrid_history": ("change_id INTEGER PRIMARY KEY AUTOINCREMENT, batch_id INTEGER, "
                         "component_id TEXT, action TEXT, field TEXT, old_value TEXT, "
                         "new_value TEXT, changed_at TEXT"),
    "citygrid_aliases": ("fid INTEGER PRIMARY KEY AUTOINCREMENT, alias TEXT NOT NULL UNIQUE, component_id TEXT, "
                         "kind TEXT"),
    "citygrid_allow": ("fid INTEGER PRIMARY KEY AUTOINCREMENT, component_id TEXT NOT NULL, rule TEXT NOT NULL, "
                       "note TEXT, added_at TEXT, UNIQUE (component_id, rule)"),
}
"""Bookkeeping tables; ``citygrid_catalog`` and ``citygrid_units`` get text columns from their frames."""

_BUMP = "UPDATE citygrid_meta SET value = lower(hex(randomblob(16))) WHERE key = 'state'"
"""A new random state id (the triggers of schema 1 counted a ``revision`` instead)."""
INDEXES = (
    "CREATE INDEX IF NOT EXISTS citygrid_history_component ON citygrid_history (component_id)",
    "CREATE INDEX IF NOT EXISTS citygrid_history_time ON citygrid_history (changed_at)",
    "CREATE INDEX IF NOT EXISTS citygrid_history_batch ON citygrid_history (batch_id)",
)
CHAIN_LENGTH = 64
"""How many of citygrid's last commits ``citygrid_meta`` remembers as ``parent state → state, batch``."""


# --- values as the GeoPackage standard writes them ----------------------------------------

def layer_time(moment: dt.datetime) -> str:
    """A DATETIME value: UTC, to the millisecond, with the ``Z`` the standard requires.

    Examples
    --------
    >>> layer_time(dt.datetime(2026, 11, 30, 8, 5, 1, 123456))
    '2026-11-30T08:05:01.123Z'
    """
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"


def sql_columns(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[np.ndarray]:
    """Columns as SQLite values: None for missing, dates ``YYYY-MM-DD``, times as :func:`layer_time`."""
    out: list[np.ndarray] = []
    for column in columns:
        series = frame[column]
        if pd.api.types.is_datetime64_any_dtype(series):
            values = series.dt.tz_localize(None) if series.dt.tz is not None else series
            unit = "D" if column in DATE_FIELDS else "ms"
            text = np.datetime_as_string(values.to_numpy().astype(f"datetime64[{unit}]"))
            text = text.astype(object) if unit == "D" else np.char.add(text, "Z").astype(object)
            out.append(np.where(series.notna().to_numpy(), text, NONE))
        else:
            out.append(series.astype(object).where(series.notna(), None).to_numpy(dtype=object))
    return out


def layer_frame(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Components as their layer stores them: dates as DATE, bookkeeping times as UTC DATETIME."""
    out = frame.copy()
    for column in DATE_FIELDS:
        if column in out:
            out[column] = pd.array(out[column].dt.date.where(out[column].notna(), None), dtype=object)
    for column in ("retired_at", "updated_at"):
        if column in out and out[column].dt.tz is None:
            out[column] = out[column].dt.tz_localize("UTC")
    return out


def read_components_layers(path: Path, *, engine: str) -> gpd.GeoDataFrame:
    """Every component from the layers (points, lines, polygons, each in fid order), canonical dtypes.

    Features another program added without citygrid's bookkeeping read as version 1 of
    batch :data:`OUTSIDE_BATCH`; one without ``updated_at`` reads as NaT.
    """
    parts = [read_layer(path, layer, engine=engine) for layer in COMPONENT_LAYERS.values()]
    frame = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    frame = gpd.GeoDataFrame(conform(frame), geometry=as_single(frame.geometry.to_numpy()), crs=settings.default_crs)
    for column in ("retired_at", "updated_at"):
        values = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        frame[column] = values.dt.tz_localize(None).astype("datetime64[ms]")
    # a feature added by another program (QGIS, ogr2ogr) has no bookkeeping: version 1, batch 0
    frame["version"] = frame["version"].fillna(1).astype("int64")
    frame["batch_id"] = frame["batch_id"].fillna(OUTSIDE_BATCH).astype("int64")
    return frame


# --- geometry blobs and the SQL functions of the R-tree triggers ----------------------------

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


# --- connections and transactions ---------------------------------------------------------

def connect(path: Path, *, timeout: float = 10.0, readonly: bool = False) -> sqlite3.Connection:
    """An SQLite connection with the GeoPackage functions the triggers need."""
    # quoted: a "%20", "#" or "?" in the path is part of the file name, not of the URI
    uri = f"file:{pathname2url(str(Path(path).absolute()))}?mode={'ro' if readonly else 'rw'}"
    if readonly and not (os.access(path, os.W_OK) and os.access(Path(path).absolute().parent, os.W_OK)):
        uri += "&immutable=1"  # no -shm can be made beside a read-only registry: read it as it is
    conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
    _register_functions(conn)
    # WAL: a killed process or a power cut leaves the registry before or after a merge;
    # synchronous=FULL (settings.synchronous) syncs the WAL at each commit, so a merge that
    # returned survives a power cut; a bigger page cache for random updates in 400k-row tables
    level = str(settings.synchronous).upper()
    if level not in ("FULL", "NORMAL", "EXTRA"):
        raise UsageError(_("settings.synchronous={level!r}: use FULL, EXTRA or NORMAL (CITYGRID_SYNCHRONOUS).").format(
            level=settings.synchronous))
    conn.execute(f"PRAGMA synchronous={level}")
    conn.execute("PRAGMA cache_size=-65536")
    return conn


@contextlib.contextmanager
def transaction(path: Path, *, timeout: float, state: str | None = None) -> Iterator[sqlite3.Connection]:
    """One all-or-nothing write: BEGIN IMMEDIATE … COMMIT, rolled back on any error.

    The commit writes a new state id: `state` when given (so the caller knows it), else a
    random one. A snapshot still being written in the background is written first, so that
    a write never races it for the disk.
    """
    settle(path)
    conn = connect(path, timeout=timeout)
    try:
        start = time.monotonic()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise RegistryLocked(_("registry {path!r} is being changed by another process; waited {s:.1f} s. Try "
                                       "again when it is done, or wait longer (--wait).").format(
                    path=str(path), s=time.monotonic() - start)) from None
            raise _storage_error(path, exc) from None
        try:
            yield conn
            conn.execute(_BUMP)
            if state is not None:
                conn.execute("UPDATE citygrid_meta SET value = ? WHERE key = 'state'", (state,))
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):  # SQLite has rolled back already after a full disk
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise _storage_error(path, exc) from None
            raise
    finally:
        conn.close()


def _storage_error(path: Path, exc: sqlite3.OperationalError) -> Exception:
    """What a failed write means to the user; nothing of it was written either way."""
    text = str(exc)
    if "full" in text:
        return OutputError(_("registry {path!r}: the disk is full, so nothing was written (the registry is as it "
                             "was). Free some space and run it again.").format(path=str(path)))
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return AccessDenied(_("registry {path!r} is read-only here (file or folder permissions): it can be read, not "
                              "changed. Ask for write access to the file and its folder, or work on a copy.").format(
            path=str(path)))
    return RegistryError(_("registry {path!r}: {reason}; nothing was written.").format(path=str(path), reason=text))


def read_table(path: Path, sql: str, params: tuple = ()) -> pd.DataFrame:
    """A query on the attribute tables as a DataFrame."""
    conn = connect(path, readonly=True)
    try:
        cursor = conn.execute(sql, params)
        columns = [c[0] for c in cursor.description]
        return pd.DataFrame(cursor.fetchall(), columns=columns)
    finally:
        conn.close()


def read_meta(path: Path) -> dict[str, str]:
    """The registry's key/value metadata (state, layout, admin code …)."""
    frame = read_table(path, "SELECT key, value FROM citygrid_meta")
    return dict(zip(frame["key"], frame["value"]))


def srs_ids(conn: sqlite3.Connection) -> dict[str, int]:
    """SRS id of each layer's geometry column."""
    rows = conn.execute("SELECT table_name, srs_id FROM gpkg_geometry_columns").fetchall()
    return {name: int(srs) for name, srs in rows}


def geometry_column(conn: sqlite3.Connection, layer: str) -> str:
    """Name of a layer's geometry column."""
    (name,) = conn.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?",
                           (layer,)).fetchone()
    return name


# --- the snapshot cache -------------------------------------------------------------------

def _text_table(name: str, frame: pd.DataFrame) -> str:
    cols = ", ".join(f'"{c}" TEXT' for c in frame.columns if c != "fid")
    return f'CREATE TABLE "{name}" (fid INTEGER PRIMARY KEY AUTOINCREMENT, {cols})'


def guards() -> list[str]:
    """Names of the triggers that give every edit a new state, and of the unique id indexes.

    A layer rewritten by another program (``ogr2ogr -overwrite``) loses them.
    """
    layers = COMPONENT_LAYERS.values()
    return [f"{layer}_{event}_revision" for layer in layers for event in ("insert", "update", "delete")] + \
        [f"{layer}_component_id" for layer in layers]


def missing_guards(path: Path) -> list[str]:
    """The :func:`guards` that `path` lacks."""
    have = set(read_table(path, "SELECT name FROM sqlite_master WHERE type IN ('trigger', 'index')")["name"])
    return [name for name in guards() if name not in have]


def _restore_guards(conn: sqlite3.Connection) -> bool:
    """Inside a write: re-create the triggers and unique indexes another program dropped.

    Opening never writes: a registry without its guards is read without trusting a cache
    (:meth:`GpkgStore.state`), ``citygrid verify`` names what is missing, and citygrid's next
    write puts them back in its own transaction. A unique index that repeated ids prevent
    stays missing (``citygrid validate`` reports them as ``id.duplicate``).

    Returns
    -------
    bool
        Whether any guard was missing.
    """
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('trigger', 'index')")}
    if all(name in have for name in guards()):
        return False
    _triggers(conn)
    for layer in COMPONENT_LAYERS.values():
        with contextlib.suppress(sqlite3.IntegrityError):
            conn.execute(f'CREATE UNIQUE INDEX IF NOT EXISTS "{layer}_component_id" ON "{layer}" (component_id)')
    return True


def _triggers(conn: sqlite3.Connection) -> None:
    for layer in COMPONENT_LAYERS.values():
        for event in ("INSERT", "UPDATE", "DELETE"):  # any edit, also from QGIS, is a new state
            name = f"{layer}_{event.lower()}_revision"
            conn.execute(f'DROP TRIGGER IF EXISTS "{name}"')
            conn.execute(f'CREATE TRIGGER "{name}" AFTER {event} ON "{layer}" BEGIN {_BUMP}; END')


def backup(path: Path, dest: Path) -> Path:
    """A consistent copy of the registry at `dest`, taken while others read and write.

    SQLite's online backup copies one committed state; it goes to ``<dest>.partial`` and is
    renamed into place when whole, so an interrupted backup leaves no half file at `dest`.

    Raises
    ------
    RegistryExists
        If `dest` exists.
    OutputError
        If `dest` cannot be written.
    """
    from citygrid.errors import RegistryExists, writing

    dest = Path(dest)
    if dest.exists():
        raise RegistryExists(f"{str(dest)!r} exists; back up to a new file.")
    partial = dest.with_name(dest.name + ".partial")
    with writing(dest):
        partial.unlink(missing_ok=True)
        source = connect(path, readonly=True)
        target = sqlite3.connect(partial)
        try:
            source.backup(target)
            target.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            target.close()
            source.close()
        with open(partial, "rb") as done:
            os.fsync(done.fileno())
        os.replace(partial, dest)
    return dest


def verify(path: Path) -> list[str]:
    """What is wrong with the file of a registry, one line each (empty: nothing found).

    SQLite's integrity and foreign-key checks; the GeoPackage rules a registry can break
    (application id, every table registered in ``gpkg_contents``, an R-tree per geometry
    column holding exactly the features' boxes); citygrid's triggers and unique id indexes;
    and history against batches (every history row and component in a recorded batch, every
    component created in the history).
    """
    problems: list[str] = []
    conn = connect(path, readonly=True)
    try:
        checked = [r[0] for r in conn.execute("PRAGMA integrity_check(20)")]
        problems += [_("integrity_check: {line}").format(line=line) for line in checked if line != "ok"]
        loose = conn.execute("PRAGMA foreign_key_check").fetchall()
        problems += [_("foreign key: {table} row {row} refers to a missing row of {parent}").format(
            table=table, row=row, parent=parent) for table, row, parent, _key in loose]
        if conn.execute("PRAGMA application_id").fetchone()[0] != 0x47504B47:
            problems.append(_("application_id is not 'GPKG': GIS software will not read it as a GeoPackage"))
        tables = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name NOT LIKE 'gpkg_%' AND name NOT LIKE 'rtree_%'")}
        registered = {r[0] for r in conn.execute("SELECT table_name FROM gpkg_contents")}
        problems += [_("table {name} is not registered in gpkg_contents").format(name=name)
                     for name in sorted(tables - registered)]
        problems += [_("gpkg_contents lists {name}, which does not exist").format(name=name)
                     for name in sorted(registered - tables)]
        for table, column in conn.execute("SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall():
            problems += _rtree_problems(conn, table, column)
        problems += [_("guard missing: {name} (an edit by another program would not make a new state)").format(
            name=name) for name in missing_guards(path)]
        problems += _digest_problems(conn)
        batches = "SELECT batch_id FROM citygrid_batches"
        orphans = conn.execute(f"SELECT count(*), count(DISTINCT batch_id) FROM citygrid_history "
                               f"WHERE batch_id NOT IN ({batches})").fetchone()
        if orphans[0]:
            problems.append(_("history: {n:,} change(s) in {batches} batch(es) that are not recorded").format(
                n=orphans[0], batches=orphans[1]))
        for layer in COMPONENT_LAYERS.values():
            stray = conn.execute(f'SELECT count(*) FROM "{layer}" WHERE batch_id IS NOT NULL '
                                 f"AND batch_id <> {OUTSIDE_BATCH} AND batch_id NOT IN ({batches})").fetchone()[0]
            if stray:
                problems.append(_("{layer}: {n:,} component(s) of a batch that is not recorded").format(
                    layer=layer, n=stray))
            unborn = conn.execute(  # created under the id it had then (a migration renames)
                f'SELECT count(*) FROM "{layer}" c WHERE COALESCE(c.batch_id, {OUTSIDE_BATCH}) <> {OUTSIDE_BATCH} '
                "AND NOT EXISTS (SELECT 1 FROM citygrid_history h WHERE h.action = 'create' AND "
                "(h.component_id = c.component_id OR h.component_id IN "
                "(SELECT alias FROM citygrid_aliases a WHERE a.component_id = c.component_id)))").fetchone()[0]
            if unborn:
                problems.append(_("{layer}: {n:,} component(s) without a 'create' in the history").format(
                    layer=layer, n=unborn))
            problems += _history_problems(conn, layer)
    except sqlite3.DatabaseError as exc:
        problems.append(_("cannot read the file: {reason}").format(reason=exc))
    finally:
        conn.close()
    return problems


_VERSIONS = """WITH names AS (SELECT component_id AS said, component_id FROM "{layer}"
                  UNION ALL SELECT alias, component_id FROM citygrid_aliases),
    batches AS (SELECT n.component_id, count(DISTINCT h.batch_id) AS recorded
                FROM citygrid_history h JOIN names n ON n.said = h.component_id GROUP BY n.component_id)
    SELECT c.component_id, c.version, COALESCE(b.recorded, 0) FROM "{layer}" c LEFT JOIN batches b USING (component_id)
    WHERE COALESCE(c.batch_id, {outside}) <> {outside} AND c.version <> COALESCE(b.recorded, 0)"""
"""Components whose version is not the number of batches their history records (each batch that changes a
component raises its version by one): a history row deleted, or one forged for a batch that never changed it."""


_HISTORY_ROWS = ("SELECT change_id, batch_id, component_id, action, field, old_value, new_value, changed_at "
                 "FROM citygrid_history WHERE batch_id IS ? ORDER BY change_id")


def _history_digest(conn: sqlite3.Connection, batch_id: int, before: str) -> str:
    """The digest of the history after `batch_id`: SHA-256 of the digest `before` and the batch's rows."""
    digest = hashlib.sha256(bytes.fromhex(before))
    for row in conn.execute(_HISTORY_ROWS, (batch_id,)):
        digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def _seal_history(conn: sqlite3.Connection, batch_id: int) -> None:
    """Chain the rows `batch_id` wrote into the history's digest (``citygrid_meta``), inside its write.

    Each batch's digest covers the one before it, so a history row changed, deleted or added by
    another program since, or a batch removed, shows in :func:`verify`. A registry made before citygrid kept the
    digest starts its chain at its next batch.
    """
    row = conn.execute("SELECT value FROM citygrid_meta WHERE key = 'history_digest'").fetchone()
    before: dict = json.loads(row[0]) if row else {"batch": None, "digest": ""}
    if row is None and batch_id != 1:  # an older registry: the chain starts here
        before["from"] = batch_id
    sealed = {**before, "batch": batch_id, "digest": _history_digest(conn, batch_id, before["digest"])}
    conn.execute("INSERT INTO citygrid_meta (key, value) VALUES ('history_digest', ?) "
                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (json.dumps(sealed),))


def _digest_problems(conn: sqlite3.Connection) -> list[str]:
    """The history's rows against the digest citygrid's writes chained over them."""
    row = conn.execute("SELECT value FROM citygrid_meta WHERE key = 'history_digest'").fetchone()
    if row is None:
        return []  # made before citygrid kept one; its next write starts the chain
    sealed = json.loads(row[0])
    first = int(sealed.get("from", 1))
    digest = ""
    batches = [b for (b,) in conn.execute("SELECT batch_id FROM citygrid_batches WHERE batch_id >= ? "
                                          "ORDER BY batch_id", (first,))]
    for batch_id in batches:
        digest = _history_digest(conn, batch_id, digest)
    if batches[-1:] != [sealed["batch"]] or digest != sealed["digest"]:
        return [_("history: its rows are not those citygrid wrote (rows were changed, deleted or added by another "
                  "program since batch {batch})").format(batch=first)]
    return []


def _history_problems(conn: sqlite3.Connection, layer: str) -> list[str]:
    """The history of a layer's components against their versions."""
    off = conn.execute(_VERSIONS.format(layer=layer, outside=OUTSIDE_BATCH)).fetchall()
    if not off:
        return []
    shown = ", ".join(f"{i} (version {v}, {n} batch(es) recorded)" for i, v, n in off[:3])
    return [_("{layer}: the history of {n:,} component(s) disagrees with their versions, e.g. {shown}: history rows "
              "were deleted or forged").format(layer=layer, n=len(off), shown=shown)]


def _rtree_problems(conn: sqlite3.Connection, table: str, column: str) -> list[str]:
    """The R-tree of a geometry column against the features' boxes (R-trees store float32, rounded outwards)."""
    rtree = f"rtree_{table}_{column}"
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (rtree,)).fetchone():
        return [_("{table}: no spatial index ({rtree})").format(table=table, rtree=rtree)]
    triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ?",
                                           (f"{rtree}_%",))}
    lost = [f"{rtree}_{kind}" for kind in ("insert", "delete") if f"{rtree}_{kind}" not in triggers]
    if not any(name.startswith(f"{rtree}_update") for name in triggers):
        lost.append(f"{rtree}_update…")
    problems = [_("{table}: the spatial index's trigger {name} is missing, so edits leave the index behind").format(
        table=table, name=name) for name in lost]
    key = next(r[1] for r in conn.execute(f'PRAGMA table_info("{table}")') if r[5])
    present = f'"{column}" IS NOT NULL AND NOT ST_IsEmpty("{column}")'
    features = conn.execute(f'SELECT count(*) FROM "{table}" WHERE {present}').fetchone()[0]
    entries = conn.execute(f'SELECT count(*) FROM "{rtree}"').fetchone()[0]
    wrong = conn.execute(
        f'SELECT count(*) FROM "{table}" t JOIN "{rtree}" r ON r.id = t."{key}" WHERE '
        f'r.minx > ST_MinX(t."{column}") + 1 OR r.maxx < ST_MaxX(t."{column}") - 1 OR '
        f'r.miny > ST_MinY(t."{column}") + 1 OR r.maxy < ST_MaxY(t."{column}") - 1').fetchone()[0]
    if features != entries:
        problems.append(_("{table}: the spatial index holds {entries:,} boxes for {features:,} features").format(
            table=table, entries=entries, features=features))
    if wrong:
        problems.append(_("{table}: {n:,} box(es) of the spatial index do not cover their feature").format(
            table=table, n=wrong))
    return problems


def guess_can_open(target: object) -> bool:
    """Whether `target` names a GeoPackage registry: any path that is not a URL (the last backend asked)."""
    return isinstance(target, (str, os.PathLike)) and "://" not in str(target)


def open_store(target: str | Path, *, engine: str = "pyogrio", timeout: float = 10.0) -> GpkgStore:
    """The GeoPackage registry at `target`.

    Raises
    ------
    RegistryNotFound
        If there is no such file.
    """
    if not Path(target).is_file():
        raise RegistryNotFound(_("registry {path!r} does not exist; create it with citygrid demo (a sample) or from "
                                 "a district's own files with citygrid init.").format(path=str(target)))
    return GpkgStore(Path(target), engine=engine, timeout=timeout)


def copy_in(source: Store, target: str | Path, *, timeout: float = 10.0) -> GpkgStore:
    """Copy a registry (any store) into a new GeoPackage at `target`, history and all, in one transaction."""
    from citygrid.merge import Batch

    meta = {k: v for k, v in source.meta().items() if k in ("layout", "admin_code", "district_name", "crs",
                                                             "created_at")}
    components = source.read_components(source.state())
    empty = components.iloc[:0][[*FIELD_NAMES, "retired_at", "version", "updated_at", "batch_id", "geometry"]]
    catalog = source.read_catalog()
    styles = registry_styles(Catalog.from_frame(catalog, source.name), layout=meta["layout"])
    new = NewRegistry(district=source.read_district(), components=empty, catalog=catalog, units=source.read_units(),
                      meta=meta, batch=Batch(source="copy", kind="create"), styles=tuple(styles))
    store = create(target, new, timeout=timeout)
    store.append(source.read_bookkeeping(), components)
    return store


def create(path: str | Path, new: NewRegistry, *, engine: str = "pyogrio", timeout: float = 10.0,
           overwrite: bool = False) -> GpkgStore:
    """Write a new registry at `path`, beside its final name first, renamed only when complete.

    Raises
    ------
    RegistryExists
        If `path` exists and `overwrite` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise RegistryExists(_("{path!r} exists; open it (citygrid stats -r {path}) or write the new registry "
                               "elsewhere.").format(path=str(path)))
    partial = path.with_name(f"{path.stem}.creating{path.suffix}")
    components, batch = new.components, new.batch
    partial.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        layers = new.district.layers()
        for name in DISTRICT_LAYERS:
            if name in layers:
                write_layer(layers[name], partial, name, engine=engine)
        family = families(components.geometry.to_numpy())
        rows = layer_frame(components)
        for kind, layer in COMPONENT_LAYERS.items():
            write_layer(rows[family == kind], partial, layer, engine=engine, kind=kind)
        conn = connect(partial)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for name, columns in TABLES.items():
                conn.execute(f"CREATE TABLE {name} ({columns})")
            for name, frame in (("citygrid_catalog", new.catalog), ("citygrid_units", new.units)):
                conn.execute(_text_table(name, frame))
                _insert_rows(conn, name, frame)
            for name in [*TABLES, "citygrid_catalog", "citygrid_units"]:
                conn.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, description) "
                             "VALUES (?, 'attributes', ?, ?)", (name, name, "citygrid"))
            for layer in COMPONENT_LAYERS.values():
                conn.execute(f'CREATE UNIQUE INDEX "{layer}_component_id" ON "{layer}" (component_id)')
            _triggers(conn)
            for statement in INDEXES:
                conn.execute(statement)
            store_styles(conn, list(new.styles))
            meta = [*new.meta.items(), ("schema_version", str(SCHEMA_VERSION)), ("state", secrets.token_hex(16))]
            conn.executemany("INSERT INTO citygrid_meta (key, value) VALUES (?, ?)", meta)
            conn.execute("INSERT INTO citygrid_batches VALUES (1, ?, ?, ?, ?, ?, 0, 0, 0, 'create')",
                         (batch.source, batch.user, batch.started, batch.finished(), len(components)))
            conn.executemany("INSERT INTO citygrid_history (batch_id, component_id, action, changed_at) "
                             "VALUES (1, ?, 'create', ?)", zip(components["component_id"], repeat(batch.started)))
            _seal_history(conn, 1)
            conn.execute("COMMIT")
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()
        settle(path)
        snapshot_path(path).unlink(missing_ok=True)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return GpkgStore(path, engine=engine, timeout=timeout)


LAYER_STYLES = """CREATE TABLE IF NOT EXISTS layer_styles (
    id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), f_table_schema TEXT(256),
    f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT,
    useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),
    update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"""
"""QGIS's own table of styles in a GeoPackage (as QGIS creates it), registered in ``gpkg_contents``."""


def store_styles(conn: sqlite3.Connection, rows: list[dict[str, object]]) -> None:
    """Write `rows` into the GeoPackage's ``layer_styles`` on `conn`, in the caller's transaction.

    citygrid's earlier styles of those layers are replaced; styles a user saved under other
    names are kept, and no longer the default where citygrid's is.
    """
    conn.execute(LAYER_STYLES)
    conn.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, description) "
                 "SELECT 'layer_styles', 'attributes', 'layer_styles', 'QGIS styles' WHERE NOT EXISTS "
                 "(SELECT 1 FROM gpkg_contents WHERE table_name = 'layer_styles')")
    for row in rows:
        conn.execute("UPDATE layer_styles SET useAsDefault = 0 WHERE f_table_name = ?", (row["f_table_name"],))
        conn.execute("DELETE FROM layer_styles WHERE f_table_name = ? AND styleName = ?",
                     (row["f_table_name"], row["styleName"]))
        columns = list(row)
        conn.execute(f"INSERT INTO layer_styles ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                     [int(bool(row[c])) if c == "useAsDefault" else row[c] for c in columns])


def upgrade_store(target: str | Path, *, timeout: float = 10.0) -> tuple[int, int]:
    """Bring the GeoPackage registry at `target` to this citygrid's schema, in one transaction.

    Returns the schema versions before and after (equal when there was nothing to do).

    Raises
    ------
    RegistryError
        If it is not a citygrid registry, or a newer citygrid made it.
    """
    store = open_store(target, timeout=timeout)  # names a missing file, a non-registry, a newer schema
    meta = store.meta()
    before = int(meta.get("schema_version", 0))
    if before < SCHEMA_VERSION:
        styles = registry_styles(Catalog.from_frame(store.read_catalog(), store.name), layout=meta["layout"])
        with transaction(store.path, timeout=timeout) as conn:
            _upgrade_1_to_2(conn)
            store_styles(conn, styles)  # a registry made before citygrid wrote styles gets them
    return before, SCHEMA_VERSION


def _upgrade_1_to_2(conn: sqlite3.Connection) -> None:
    """Integer primary keys, the state id, DATETIME values with their ``Z``, DATE values without a time.

    Schema 1's triggers count a revision in ``citygrid_meta``; renaming that table would make
    SQLite point them at the copy that is then dropped, so they go first and today's come last.
    """
    for layer in COMPONENT_LAYERS.values():
        for event in ("insert", "update", "delete"):
            conn.execute(f'DROP TRIGGER IF EXISTS "{layer}_{event}_revision"')
    for name in ("citygrid_meta", "citygrid_aliases", "citygrid_allow", "citygrid_catalog", "citygrid_units"):
        columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{name}")')]
        names = ", ".join(f'"{c}"' for c in columns)
        conn.execute(f'ALTER TABLE "{name}" RENAME TO "{name}_v1"')
        conn.execute(f"CREATE TABLE {name} ({TABLES[name]})" if name in TABLES else
                     _text_table(name, pd.DataFrame(columns=columns)))
        conn.execute(f'INSERT INTO "{name}" ({names}) SELECT {names} FROM "{name}_v1"')
        conn.execute(f'DROP TABLE "{name}_v1"')
    for layer in COMPONENT_LAYERS.values():
        for column in ("retired_at", "updated_at"):
            conn.execute(f'UPDATE "{layer}" SET "{column}" = "{column}" || \'Z\' '
                         f'WHERE "{column}" IS NOT NULL AND "{column}" NOT LIKE \'%Z\'')
        kinds = {r[1]: str(r[2]).upper() for r in conn.execute(f'PRAGMA table_info("{layer}")')}
        for column in (c for c in DATE_FIELDS if kinds.get(c) == "DATETIME"):  # schema 1 kept a day as a time
            conn.execute(f'ALTER TABLE "{layer}" ADD COLUMN "{column}_day" DATE')
            conn.execute(f'UPDATE "{layer}" SET "{column}_day" = substr("{column}", 1, 10)')
            conn.execute(f'ALTER TABLE "{layer}" DROP COLUMN "{column}"')
            conn.execute(f'ALTER TABLE "{layer}" RENAME COLUMN "{column}_day" TO "{column}"')
    _triggers(conn)
    conn.execute("INSERT OR IGNORE INTO citygrid_meta (key, value) VALUES ('state', '')")
    conn.execute(_BUMP)  # the upgrade is a commit: a new state
    conn.execute("UPDATE citygrid_meta SET value = '2' WHERE key = 'schema_version'")


# --- the chain of citygrid's own commits -----------------------------------------------------

def _chain(conn: sqlite3.Connection) -> list[list]:
    """The last commits citygrid made, oldest first, as ``[parent state, state, batch id]``."""
    row = conn.execute("SELECT value FROM citygrid_meta WHERE key = 'chain'").fetchone()
    try:
        links = json.loads(row[0]) if row and row[0] else []
    except ValueError:  # edited by hand: no link can be trusted
        return []
    ok = isinstance(links, list) and all(isinstance(link, list) and len(link) == 3 for link in links)
    return links if ok else []


def _link(conn: sqlite3.Connection, parent: str, state: str, batch_id: int) -> None:
    """Remember that the commit under way turns `parent` into `state` with batch `batch_id`."""
    links = [*_chain(conn), [parent, state, batch_id]][-CHAIN_LENGTH:]
    conn.execute("INSERT INTO citygrid_meta (key, value) VALUES ('chain', ?) "
                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (json.dumps(links),))


def _changed_since(conn: sqlite3.Connection, expected: str, found: str) -> gpd.GeoDataFrame | None:
    """The components citygrid's merges changed from state `expected` to `found`, as they are now.

    None unless every commit in between was one of citygrid's merges: an edit by another
    program, a migration or an allow-list entry leaves no link, and then nothing is known.
    """
    parents = {state: (parent, batch) for parent, state, batch in _chain(conn)}
    batches: list[int] = []
    while found != expected:
        if found not in parents or len(batches) > CHAIN_LENGTH:
            return None
        found, batch = parents[found]
        batches.append(int(batch))
    marks = ", ".join("?" * len(batches))
    ids, cats, blobs = [], [], []
    for layer in COMPONENT_LAYERS.values():
        column = geometry_column(conn, layer)
        for cid, cat, blob in conn.execute(
                f'SELECT component_id, category, "{column}" FROM "{layer}" WHERE component_id IN '
                f"(SELECT component_id FROM citygrid_history WHERE batch_id IN ({marks}))", batches):
            ids.append(cid)
            cats.append(cat)
            blobs.append(blob)
    return gpd.GeoDataFrame({"component_id": ids, "category": cats},
                            geometry=[_geometry(blob) for blob in blobs])


def _geometry(blob: bytes | None) -> shapely.Geometry | None:
    """The geometry of a GeoPackage blob (None when there is none, or it is not one)."""
    if blob is None or len(blob) < 8 or blob[:2] != b"GP":
        return None
    envelope = (0, 32, 48, 48, 64)[min((blob[3] >> 1) & 0x07, 4)]
    return shapely.from_wkb(blob[8 + envelope:], on_invalid="ignore")


# --- the store ----------------------------------------------------------------------------

class GpkgStore(BookkeepingReads):
    """A registry in one GeoPackage file (see the module docstring).

    Parameters
    ----------
    path : Path
        An existing registry.
    engine : {"pyogrio", "fiona"}
        Vector I/O engine for reading layers.
    timeout : float
        Seconds a writer waits for another writer before :class:`RegistryLocked`.
    """

    kind = "GeoPackage"
    checks_state = True
    read_only: str | None = None

    def __init__(self, path: Path, *, engine: str = "pyogrio", timeout: float = 10.0) -> None:
        self.path, self.engine, self.timeout = Path(path), engine, timeout
        self._guarded: tuple[int, bool] | None = None  # (schema cookie, every guard there)
        self.name = str(self.path)
        try:
            meta = read_meta(self.path)
        except (sqlite3.DatabaseError, KeyError) as exc:
            raise RegistryError(_("{name!r} is not a citygrid registry ({reason}); open a file made by citygrid demo "
                                  "or citygrid init.").format(name=self.name, reason=exc)) from None
        version = int(meta.get("schema_version", 0))
        if version > SCHEMA_VERSION:
            raise RegistryError(_("{name!r} was made by a newer citygrid (schema {version}); upgrade citygrid.").format(
                name=self.name, version=version))
        # opening never writes: an older file is read as it is, and written only once upgraded
        self.read_only = None if version == SCHEMA_VERSION else _(
            "{name} was made by an earlier citygrid (schema {version}); it is read as it is, and takes changes once "
            "upgraded: citygrid upgrade {name}").format(name=self.name, version=version)

    def meta(self) -> dict[str, str]:
        """The key/value metadata."""
        return read_meta(self.path)

    def backup(self, dest: Path) -> Path:
        """A consistent copy at `dest` (see :func:`backup`)."""
        return backup(self.path, dest)

    def verify(self) -> list[str]:
        """What is wrong with the file (see :func:`verify`)."""
        return verify(self.path)

    def state(self) -> str:
        """The state id of the committed registry, read from the file each time.

        A short-lived connection (GDAL, which links its own SQLite, must never share an open
        file with this process's sqlite3); a file's modification time is too coarse to tell
        two quick commits apart. A registry whose triggers another program removed has no
        trustworthy state: ``"unguarded:…"``, which no cache is kept for.
        """
        conn = connect(self.path, readonly=True)
        try:
            # the schema cookie changes with any change of the schema, by any program: the guards
            # (a scan of sqlite_master, most of an owner lookup's time) are looked for again only then
            cookie = conn.execute("PRAGMA schema_version").fetchone()[0]
            meta = dict(conn.execute("SELECT key, value FROM citygrid_meta WHERE key IN ('state', 'revision')"))
            if self._guarded is None or self._guarded[0] != cookie:
                have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('trigger', 'index')")}
                self._guarded = (cookie, all(name in have for name in guards()))
        finally:
            conn.close()
        state = meta.get("state") or f"v1:{meta.get('revision')}"
        # without its triggers an edit leaves the state as it was: trust no cache then
        return state if self._guarded[1] else f"unguarded:{state}"

    def read_components(self, state: str, columns: Sequence[str] | None = None) -> gpd.GeoDataFrame:
        """Every component (retired ones too) in `state`: from the snapshot, else the layers (only `columns`)."""
        frame = read_snapshot(self.path, state, columns) if len(state) == 32 else None
        if frame is None:  # the first read after a change: from the layers, then kept for the next
            frame = read_components_layers(self.path, engine=self.engine)
            if self.state() == state and len(state) == 32:  # not changed while reading
                store_snapshot(self.path, state, frame)
            if columns is not None:
                frame = frame[list(columns)]
        return frame

    def read_near(self, ids: np.ndarray, geoms: np.ndarray, categories: np.ndarray, reach: np.ndarray) -> None:
        """Nothing: a merge checks against the components in memory (see :meth:`read_components`)."""

    def hidden_near(self, geoms: np.ndarray, categories: np.ndarray, reach: np.ndarray) -> None:
        """Nothing: whoever reads the file reads every component."""

    def read_district(self) -> District:
        """The district layers and the unit list."""
        from citygrid.admin import District

        units = self.read_units()
        return District.from_file(self.path, units=units.rename(columns={"name_zh": "name"}), components=False,
                                  engine=self.engine)

    def _rows(self, sql: str, params: tuple = ()) -> pd.DataFrame:
        """Rows of a bookkeeping query (``?`` placeholders) as a frame."""
        return read_table(self.path, sql, params)

    def reserve_serials(self, needed: dict[str, int], used: dict[str, int]) -> dict[str, int]:
        """The serial after which each category's new ids start: here the largest in use.

        The plan is checked against the state inside the write, which one writer holds at a time.
        """
        return used

    def write(self, plan: Plan, batch: Batch, *, expected: str) -> Written:
        """Write `plan` in one transaction if the registry is still in state `expected`.

        Returns
        -------
        Written
            The batch's number, the state id the commit wrote and the commit's layer time.

        Raises
        ------
        Stale
            If another writer committed since `expected` was read; it carries the components
            that citygrid's merges changed since, when only they came in between.
        """
        state = secrets.token_hex(16)
        now = batch.finished()
        stamp = layer_time(dt.datetime.fromisoformat(now))
        with transaction(self.path, timeout=self.timeout, state=state) as conn:
            (found,) = conn.execute("SELECT value FROM citygrid_meta WHERE key = 'state'").fetchone()
            if _restore_guards(conn):  # the state was read as an unguarded one
                found = f"unguarded:{found}"
            if found != expected:
                raise Stale(found, _changed_since(conn, expected, found))
            (batch_id,) = conn.execute("SELECT COALESCE(MAX(batch_id), 0) + 1 FROM citygrid_batches").fetchone()
            _link(conn, expected, state, int(batch_id))
            srs = srs_ids(conn)
            _insert(conn, srs, plan.create.assign(version=1, updated_at=stamp, batch_id=batch_id))
            _update(conn, srs, plan.update, stamp, batch_id)
            for family, group in plan.retire.groupby("family"):
                conn.executemany(f'UPDATE "{COMPONENT_LAYERS[family]}" SET retired_at = ?, status = ?, '
                                 "version = version + 1, updated_at = ?, batch_id = ? WHERE component_id = ?",
                                 zip(repeat(stamp), group["status"].tolist(), repeat(stamp), repeat(batch_id),
                                     group["component_id"].tolist()))
            conn.executemany("INSERT INTO citygrid_history (batch_id, component_id, action, field, "
                             "old_value, new_value, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             ((batch_id, *change, now) for change in plan.history(now[:19])))
            conn.execute("INSERT INTO citygrid_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (batch_id, batch.source, batch.user, batch.started, batch.finished(), len(plan.create),
                          len(plan.updated_ids), len(plan.retire), plan.unchanged, batch.kind))
            _seal_history(conn, int(batch_id))
        return Written(int(batch_id), state, stamp)

    def keep(self, state: str, frame: gpd.GeoDataFrame) -> None:
        """Keep `frame` as the snapshot of `state`, so that the next open in any process is fast.

        Written in the background: the merge is done when it returns.
        """
        store_snapshot(self.path, state, frame)

    def write_migration(self, frame: gpd.GeoDataFrame, new_ids: np.ndarray, new_cats: np.ndarray, layout: str,
                        batch: Batch) -> None:
        """Rename every component (ids and categories) to another layout in one transaction."""
        now = batch.started
        stamp = layer_time(dt.datetime.fromisoformat(now))
        old_ids = frame["component_id"].to_numpy(dtype=object)
        family = families(frame.geometry.to_numpy())
        with transaction(self.path, timeout=self.timeout) as conn:
            _restore_guards(conn)
            (batch_id,) = conn.execute("SELECT COALESCE(MAX(batch_id), 0) + 1 FROM citygrid_batches").fetchone()
            for kind, layer in COMPONENT_LAYERS.items():
                sel = family == kind
                conn.executemany(f'UPDATE "{layer}" SET component_id = ?, category = ?, version = version + 1, '
                                 "updated_at = ?, batch_id = ? WHERE component_id = ?",
                                 zip(new_ids[sel], new_cats[sel], repeat(stamp), repeat(batch_id), old_ids[sel]))
            conn.executemany("INSERT INTO citygrid_aliases (alias, component_id, kind) VALUES (?, ?, 'cjt214')",
                             zip(old_ids, new_ids))
            changes = [*zip(new_ids, repeat("component_id"), old_ids, new_ids),
                       *zip(new_ids, repeat("category"), frame["category"].to_numpy(dtype=object), new_cats)]
            conn.executemany("INSERT INTO citygrid_history (batch_id, component_id, action, field, old_value, "
                             "new_value, changed_at) VALUES (?, ?, 'migrate', ?, ?, ?, ?)",
                             ((batch_id, *change, now) for change in changes))
            conn.execute("UPDATE citygrid_meta SET value = ? WHERE key = 'layout'", (layout,))
            conn.execute("INSERT INTO citygrid_batches VALUES (?, ?, NULL, ?, ?, 0, ?, 0, 0, 'migrate')",
                         (batch_id, batch.source, now, batch.finished(), len(frame)))
            _seal_history(conn, int(batch_id))

    def allow(self, component_id: str, rule: str, note: str, at: str) -> None:
        """Put `rule` for `component_id` on the allow-list."""
        with transaction(self.path, timeout=self.timeout) as conn:
            _restore_guards(conn)
            conn.execute("INSERT INTO citygrid_allow (component_id, rule, note, added_at) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (component_id, rule) DO UPDATE SET note = excluded.note, "
                         "added_at = excluded.added_at", (component_id, rule, note, at))

    def append(self, tables: dict[str, pd.DataFrame], components: gpd.GeoDataFrame) -> None:
        """Replace the bookkeeping tables and add components, in one transaction (a lossless copy in)."""
        with transaction(self.path, timeout=self.timeout) as conn:
            _restore_guards(conn)
            for table, rows in tables.items():
                conn.execute(f"DELETE FROM {table}")
                _insert_rows(conn, table, rows)
            _insert(conn, srs_ids(conn), components)
            conn.execute("DELETE FROM citygrid_meta WHERE key = 'history_digest'")
            for (batch_id,) in conn.execute("SELECT batch_id FROM citygrid_batches ORDER BY batch_id").fetchall():
                _seal_history(conn, batch_id)


def _insert(conn: sqlite3.Connection, srs: dict[str, int], rows: gpd.GeoDataFrame) -> None:
    """Insert components into their family's layer.

    `rows` carries ``version``, ``updated_at``, ``batch_id`` and, optionally, ``retired_at``.
    """
    extra = [c for c in ("retired_at", "version", "updated_at", "batch_id") if c in rows]
    family = families(rows.geometry.to_numpy())
    for kind, layer in COMPONENT_LAYERS.items():
        part = rows[family == kind]
        if part.empty:
            continue
        columns = [geometry_column(conn, layer), *FIELD_NAMES, *extra]
        blobs = gpkg_blob(part.geometry.to_numpy(), srs[layer], multi=kind != "point")
        values = sql_columns(part, (*FIELD_NAMES, *extra))
        conn.executemany(f'INSERT INTO "{layer}" ({", ".join(chr(34) + c + chr(34) for c in columns)}) '
                         f"VALUES ({', '.join('?' * len(columns))})", zip(blobs, *values))


def _update(conn: sqlite3.Connection, srs: dict[str, int], changes: pd.DataFrame, stamp: str, batch_id: int) -> None:
    """Write the changed fields of components: one UPDATE per component.

    `changes` holds one row per changed field (``component_id, family, field, new, text``).
    Components changing the same set of fields share one statement; each also gets
    ``version + 1`` and `stamp` as ``updated_at``.
    """
    for family, group in changes.groupby("family"):
        layer = COMPONENT_LAYERS[family]
        values = group["text"].to_numpy(dtype=object).copy()
        dated = group["field"].isin(DATE_FIELDS).to_numpy() & pd.notna(values)
        values[dated] = [v[:10] for v in values[dated]]  # a DATE column holds the day
        moved = (group["field"] == "geometry").to_numpy()
        values[moved] = gpkg_blob(group["new"].to_numpy()[moved], srs[layer], multi=family != "point")
        fields, column = np.unique(group["field"].to_numpy(dtype=object), return_inverse=True)
        ids, row = np.unique(group["component_id"].to_numpy(dtype=object), return_inverse=True)
        table = np.empty((len(ids), len(fields)), dtype=object)
        table[row, column] = values
        given = np.zeros((len(ids), len(fields)), dtype=bool)
        given[row, column] = True
        names = [geometry_column(conn, layer) if f == "geometry" else f for f in fields]
        sets, at = np.unique(given, axis=0, return_inverse=True)
        for k, mask in enumerate(sets):
            rows = np.flatnonzero(at.ravel() == k)
            assign = ", ".join(f'"{n}" = ?' for n, m in zip(names, mask) if m)
            conn.executemany(f'UPDATE "{layer}" SET {assign}, version = version + 1, updated_at = ?, '
                             "batch_id = ? WHERE component_id = ?",
                             [(*table[r, mask], stamp, batch_id, ids[r]) for r in rows])


def _insert_rows(conn: sqlite3.Connection, table: str, rows: pd.DataFrame) -> None:
    """Append a frame's rows to a table (columns by name), each column converted once (:func:`sql_columns`)."""
    names = ", ".join(f'"{c}"' for c in rows.columns)
    conn.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(rows.columns))})',
                     zip(*sql_columns(rows, tuple(rows.columns))))
