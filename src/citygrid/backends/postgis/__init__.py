"""The shared registry in PostGIS: many departments editing one registry at once.

Everything lives in the database schema ``citygrid`` (tables named as in the GeoPackage,
so the registry's bookkeeping queries are the same): ``components`` (one table, every
geometry family, EPSG:4547, GiST index), the district layers (``boundary``, ``streets``,
``communities``, ``grid``, ``roads``) and ``citygrid_meta``, ``citygrid_catalog``,
``citygrid_units``, ``citygrid_batches``, ``citygrid_history``, ``citygrid_aliases``,
``citygrid_allow``, ``citygrid_unit_roles``.

The database itself keeps the rules, whoever writes — the library or plain SQL:

* **history** — a trigger records every inserted or changed component field (old and new
  value, batch, time, database role); components cannot be deleted, only retired;
* **who may change what** — row-level security: a member of ``citygrid_unit`` mapped to
  a unit in ``citygrid_unit_roles`` may insert and change only components that unit owns
  or maintains, and may not move ownership (确权); ``citygrid_admin`` may do everything;
  every role reads every component unless the district sets ``units_read_all`` to false;
* **concurrency** — an ingest is one ``REPEATABLE READ`` transaction that changes a
  component only at the version it planned against: two departments merging different
  components both succeed; touching the same one, the later gets
  :class:`RegistryConflict`. Serials of new identifiers are reserved per category in
  ``citygrid_serials`` (outside the transaction, like a sequence: a failed ingest leaves
  a gap), so concurrent ingests never create the same identifier.

The schema is versioned (``citygrid_meta.schema_version``); :func:`upgrade` applies the
missing steps of :data:`MIGRATIONS` in order.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import glob
import hashlib
import importlib.util
import os
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import shapely

from citygrid import settings
from citygrid._i18n import N_, _
from citygrid._layers import DISTRICT_LAYERS
from citygrid._vector import without_gc
from citygrid.admin import District
from citygrid.backends import OUTSIDE_BATCH, NewRegistry, Stale, Written
from citygrid.backends._bookkeeping import BookkeepingReads
from citygrid.backends._snapshot import read_snapshot, store_snapshot
from citygrid.errors import (
    AccessDenied,
    RegistryConflict,
    RegistryError,
    RegistryLocked,
    RegistryUnavailable,
    UsageError,
    require,
)
from citygrid.schema import DATE_FIELDS, FIELD_NAMES, conform

if TYPE_CHECKING:
    from citygrid.backends import Store
    from citygrid.merge import Batch, Checked, Plan

SCHEMA = "citygrid"
_SRID = 4547

_WITHIN_REACH = ("unnest(%s::text[], %s::text[], %s::float8[]) AS b(wkb, cat, reach) JOIN components c ON "
                 f"ST_DWithin(c.geom, ST_SetSRID(ST_GeomFromWKB(decode(b.wkb, 'hex')), {_SRID}), b.reach)")
"""Components within each of several places' reach (hex WKB, category, metres), found through the GiST
index; callers compare the categories after an ``OFFSET 0`` fence, or the planner would start from a
category's rows and test each against every place."""

_FIELD_COLUMNS = ",\n    ".join(f'"{f}" {"date" if f in DATE_FIELDS else "text"}' for f in FIELD_NAMES)

_SETTING = "NULLIF(current_setting('citygrid.batch_id', true), '')::bigint"
"""The batch of the transaction as schema 1 took it: from a setting any session may set."""


def _history_function(create: str, batch: str) -> str:
    """The history trigger's function; `batch` is the SQL giving the transaction's batch."""
    return f"""{create} record_history() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = {SCHEMA}, public AS $f$
DECLARE
    batch bigint := {batch};
    stamp text := to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US');
    old_row jsonb; new_row jsonb; key text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO citygrid_history (batch_id, component_id, action, changed_at)
        VALUES (batch, NEW.component_id, 'create', stamp);
        RETURN NEW;
    END IF;
    old_row := to_jsonb(OLD) - ARRAY['fid', 'version', 'updated_at', 'batch_id', 'geom'];
    new_row := to_jsonb(NEW) - ARRAY['fid', 'version', 'updated_at', 'batch_id', 'geom'];
    FOR key IN SELECT jsonb_object_keys(new_row) LOOP
        IF old_row -> key IS DISTINCT FROM new_row -> key THEN
            INSERT INTO citygrid_history (batch_id, component_id, action, field, old_value, new_value, changed_at)
            VALUES (batch, NEW.component_id,
                    CASE WHEN key = 'retired_at' AND OLD.retired_at IS NULL THEN 'retire' ELSE 'update' END,
                    key, old_row ->> key, new_row ->> key, stamp);
        END IF;
    END LOOP;
    IF NOT ST_Equals(OLD.geom, NEW.geom) OR ST_AsBinary(OLD.geom) IS DISTINCT FROM ST_AsBinary(NEW.geom) THEN
        INSERT INTO citygrid_history (batch_id, component_id, action, field, old_value, new_value, changed_at)
        VALUES (batch, NEW.component_id, 'update', 'geometry', encode(ST_AsBinary(OLD.geom, 'NDR'), 'hex'),
                encode(ST_AsBinary(NEW.geom, 'NDR'), 'hex'), stamp);
    END IF;
    RETURN NEW;
END $f$;
"""


_PLACE_CHECKS = f"""    SELECT * INTO r FROM components WHERE fid = NEW.fid;
    IF NOT FOUND OR r.retired_at IS NOT NULL THEN
        RETURN NULL;
    END IF;
    IF to_regclass('boundary') IS NOT NULL AND NOT EXISTS (SELECT FROM boundary b WHERE ST_Intersects(b.geom, r.geom))
    THEN
        RAISE EXCEPTION 'component % lies outside the district', r.component_id USING ERRCODE = 'check_violation';
    END IF;
    IF r.grid IS NOT NULL AND to_regclass('grid') IS NOT NULL AND NOT EXISTS (
        SELECT FROM grid g WHERE g.code = r.grid AND CASE WHEN ST_Dimension(r.geom) = 0
            THEN ST_DWithin(g.geom, r.geom, {settings.grid_tolerance_m}) ELSE ST_Intersects(g.geom, r.geom) END)
    THEN
        RAISE EXCEPTION 'component % is not in the grid cell % it claims', r.component_id, r.grid
            USING ERRCODE = 'check_violation';
    END IF;
"""
"""The commit-time check's first part (schemas 5 and 6): the row as it is then, inside the outline and its grid cell."""


def _migrations() -> tuple[str, ...]:
    """The schema's versions: the ``.sql`` files shipped in ``migrations/``, rendered with the values they name.

    A file's ``{name}`` is one of the values below; ``{{`` and ``}}`` are braces.
    """
    values = {"schema": SCHEMA, "srid": _SRID, "outside_batch": OUTSIDE_BATCH, "field_columns": _FIELD_COLUMNS,
              "place_checks": _PLACE_CHECKS, "grid_tolerance_m": settings.grid_tolerance_m,
              "history_trigger_1": _history_function("CREATE FUNCTION", _SETTING),
              "history_trigger_3": _history_function("CREATE OR REPLACE FUNCTION", "drawn_batch()"),
              "field_list": ", ".join(f'"{f}"' for f in FIELD_NAMES),
              "fields_json": "jsonb_build_object({})".format(
                  ", ".join(f"'{f}', r.\"{f}\"" for f in (*FIELD_NAMES, "retired_at")))}
    folder = resources.files(__name__) / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return tuple(f.read_text(encoding="utf-8").format(**values) for f in files)


MIGRATIONS: tuple[str, ...] = _migrations()
"""The schema's versions, in order (``migrations/NNNN_*.sql``, package data); version N is ``MIGRATIONS[N - 1]``."""


_IDLE: list[tuple[tuple[int, str, float], Any]] = []
"""Connections this client made and is not using, by process, URL and timeout, the last left last (see
:func:`connect`)."""
_IDLE_LOCK = threading.Lock()
_IDLE_KEPT = 6  # in all: a merge holds two at once (its places and its transaction), a service a few
_INHERITED: list[Any] = []  # a forked child's copies of its parent's sessions: never used, never closed


def _forget_idle_in_child() -> None:
    """In a forked child: the parent's idle connections are kept, not closed (closing ends the parent's sessions)."""
    _INHERITED.extend(conn for _key, conn in _IDLE)
    _IDLE.clear()


def close_idle_connections() -> None:
    """Close the connections this client keeps idle (see :func:`connect`); they are closed at exit too.

    A database with a session open cannot be dropped, or copied as a template: call this first.
    """
    with _IDLE_LOCK:
        idle = [conn for _key, conn in _IDLE]
        _IDLE.clear()
    for conn in idle:
        with contextlib.suppress(Exception):
            conn.close()


os.register_at_fork(after_in_child=_forget_idle_in_child)
atexit.register(close_idle_connections)


def _idle_connection(key: tuple[int, str, float]) -> Any | None:
    """A connection this process made to the URL before and left idle, still alive (one round trip to know)."""
    import psycopg

    while True:
        with _IDLE_LOCK:
            at = next((k for k in range(len(_IDLE) - 1, -1, -1) if _IDLE[k][0] == key), None)
            if at is None:
                return None
            conn = _IDLE.pop(at)[1]
        try:
            conn.autocommit = True
            conn.execute("SELECT 1")  # a server restarted since has closed it
            conn.autocommit = False
            return conn
        except psycopg.Error:
            conn.close()


def _leave_idle(key: tuple[int, str, float], conn: Any) -> None:
    """Keep `conn` for the next :func:`connect` to its URL if it is healthy and idle (as if new); else close it.

    At most a few are kept in all; the one left idle longest is closed first.
    """
    from psycopg import pq

    closing = [conn]
    if not (conn.closed or conn.broken) and conn.info.transaction_status == pq.TransactionStatus.IDLE:
        with contextlib.suppress(Exception):
            conn.autocommit, conn.isolation_level, conn.read_only, conn.deferrable = False, None, None, None
            with _IDLE_LOCK:
                _IDLE.append((key, conn))
                closing = [old for _key, old in _IDLE[:-_IDLE_KEPT]]
                del _IDLE[:-_IDLE_KEPT]
    for old in closing:
        old.close()


@contextlib.contextmanager
def connect(url: str, *, timeout: float = 10.0) -> Iterator[Any]:
    """A psycopg connection with ``search_path`` on the citygrid schema (committed on leaving).

    A client keeps the connections it made and reuses them (at most six in all, each checked alive
    first): each call does not pay a new session, and the first PostGIS call in it.

    Raises
    ------
    RegistryUnavailable
        If the server cannot be reached, or the connection breaks (the server stopped):
        what the server had not committed is rolled back, so nothing is half-written.
    MissingDependency
        If psycopg is not installed (the ``postgis`` extra).
    """
    psycopg = require("psycopg", _("a PostGIS registry"), "postgis")
    key = (os.getpid(), url, timeout)
    conn = _idle_connection(key)
    try:
        # no JIT: it compiled a merge's reads for longer than they ran (0.27 s of a 0.6 s read); nothing
        # prepared: a kept session would hold a statement's plan across a schema upgrade
        conn = conn or psycopg.connect(url, connect_timeout=max(1, int(timeout)), prepare_threshold=None,
                                       options=f"-c search_path={SCHEMA},public "
                                               f"-c lock_timeout={int(timeout * 1000)} -c jit=off")
    except psycopg.OperationalError as exc:
        raise RegistryUnavailable(_("cannot reach the registry's database {url}: {reason}. Check that the server runs "
                                    "and that host, port, database and user are right.").format(
            url=redacted(url), reason=_reason(exc))) from None
    try:
        try:
            yield conn
        except BaseException:
            if not conn.closed:
                with contextlib.suppress(psycopg.Error):
                    conn.rollback()
            raise
        conn.commit()
    except psycopg.errors.LockNotAvailable:  # lock_timeout: another session holds what this one waits for
        raise RegistryLocked(_("another session holds a lock on the registry in {url}; waited {s:g} s. Nothing was "
                               "written; try again later, or ask the registry admin who holds it.").format(
            url=redacted(url), s=timeout)) from None
    except psycopg.OperationalError as exc:
        if not conn.broken:
            raise
        raise RegistryUnavailable(_("the connection to {url} broke ({reason}); the server rolls back what it had not "
                                    "committed. Run it again when the server is back.").format(
            url=redacted(url), reason=_reason(exc))) from None
    finally:
        _leave_idle(key, conn)


def _reason(exc: Exception) -> str:
    """The first line of a driver's message."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def schema_version(conn) -> int:
    """The schema version of the database (0: no citygrid schema yet)."""
    found = conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.citygrid_meta",)).fetchone()[0]
    if found is None:
        return 0
    row = conn.execute("SELECT value FROM citygrid_meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def upgrade(conn) -> int:
    """Apply the missing migrations, each in its own transaction; returns the version reached."""
    version = schema_version(conn)
    for number, sql in enumerate(MIGRATIONS[version:], start=version + 1):
        with conn.transaction():
            conn.execute(sql)
            conn.execute("INSERT INTO citygrid_meta VALUES ('schema_version', %s) "
                         "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (str(number),))
    conn.commit()
    return len(MIGRATIONS)


def read_frame(conn, sql: str, params: tuple = ()) -> pd.DataFrame:
    """Rows of a query as a frame (``%s`` placeholders)."""
    cur = conn.execute(sql, params)
    names = [d.name for d in cur.description]
    return pd.DataFrame(cur.fetchall(), columns=names, dtype=object)


_TYPED = ("date", "timestamp without time zone", "integer", "bigint")
"""Column types read in their own type over the binary protocol (see :func:`read_geoframe`)."""


def read_geoframe(conn, table: str, tail: str = "", params: tuple = (), *, url: str | None = None
                  ) -> gpd.GeoDataFrame:
    """A table with a ``geom`` column as a GeoDataFrame in EPSG:4547, every other column text.

    `tail` (``WHERE …``, ``ORDER BY …``, with ``%s`` placeholders for `params`) follows the
    ``FROM``.

    With `url` and no `params`, and ADBC's PostgreSQL driver installed (the ``postgis`` extra),
    the rows come over the database's binary protocol straight into Arrow, on a connection of
    their own that reads the snapshot of `conn`'s transaction (which must be REPEATABLE READ);
    else the server writes CSV (``COPY … TO STDOUT``) and Arrow parses it. Either is many times
    faster than fetching Python row tuples at 420k rows; the binary protocol twice the CSV. Over
    the binary protocol, dates, timestamps and integers keep their types (``datetime64``, numbers:
    nothing is printed to be parsed again), and points come as coordinates, not WKB.
    """
    described = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
        "AND column_name NOT IN ('geom', 'fid') ORDER BY ordinal_position", (SCHEMA, table)).fetchall()
    columns = [name for name, _kind in described]
    if url is not None and not params and importlib.util.find_spec("adbc_driver_postgresql") is not None:
        select = "".join(f'"{c}", ' if kind in _TYPED else f'"{c}"::text, ' for c, kind in described)
        point = "GeometryType(geom) = 'POINT'"  # 2D and never empty: the column's type and a check say so
        query = (f"SELECT {select}CASE WHEN {point} THEN NULL ELSE ST_AsBinary(geom) END AS wkb, "
                 f'CASE WHEN {point} THEN ST_X(geom) END AS x, CASE WHEN {point} THEN ST_Y(geom) END AS y '
                 f'FROM {SCHEMA}."{table}" {tail}')
        return _geoframe(_arrow_rows(conn, url, query), columns)
    select = "".join(f'"{c}"::text, ' for c in columns)
    with conn.cursor().copy(f'COPY (SELECT {select}encode(ST_AsBinary(geom), \'hex\') FROM "{table}" {tail}) '
                            "TO STDOUT (FORMAT csv)", params or None) as copy:
        data = b"".join(copy)
    names = [*columns, "wkb"]
    if not data:  # no rows: Arrow reads no columns from an empty file
        return gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in columns}, geometry=[], crs=settings.default_crs)
    table_ = pa_csv.read_csv(
        pa.py_buffer(data), read_options=pa_csv.ReadOptions(column_names=names),
        convert_options=pa_csv.ConvertOptions(column_types={c: pa.string() for c in names},
                                              strings_can_be_null=True, quoted_strings_can_be_null=False))
    return _geoframe(table_, columns)


def _geoframe(table: pa.Table, columns: list[str]) -> gpd.GeoDataFrame:
    """The frame of Arrow rows of `columns`, then WKB (text hex or binary), then perhaps x and y (the points)."""
    frame = table.rename_columns([*columns, "wkb", "x", "y"][:table.num_columns]).to_pandas(date_as_object=False)
    with without_gc():
        geoms = shapely.from_wkb(frame.pop("wkb").to_numpy(dtype=object))
        if "x" in frame:
            x, y = frame.pop("x").to_numpy(dtype=float), frame.pop("y").to_numpy(dtype=float)
            point = ~np.isnan(x)
            geoms[point] = shapely.points(x[point], y[point])
    return gpd.GeoDataFrame(frame, geometry=geoms, crs=settings.default_crs)


def _without_jit(url: str) -> str:
    """`url` with ``-c jit=off`` added to its ``options``, as :func:`connect` sets it.

    Examples
    --------
    >>> _without_jit("postgresql://u@h/db?options=-c%20statement_timeout%3D5000&sslmode=prefer")
    'postgresql://u@h/db?options=-c%20statement_timeout%3D5000%20-c%20jit%3Doff&sslmode=prefer'
    """
    from urllib.parse import parse_qsl, quote, urlencode, urlsplit

    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query))
    options["options"] = f"{options.get('options', '')} -c jit=off".strip()
    return parts._replace(query=urlencode(options, quote_via=quote)).geturl()


def _arrow_rows(conn, url: str, query: str) -> pa.Table:
    """The rows of `query` as Arrow, over the binary protocol (ADBC), in the snapshot of `conn`'s transaction."""
    from adbc_driver_postgresql import dbapi

    snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
    with dbapi.connect(_without_jit(url)) as other, other.cursor() as cur:  # a transaction, as the DB-API opens one
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        # batches of up to 1 GiB: the registry's columns come in one chunk, not joined from a dozen later
        cur.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(1 << 30)})
        cur.execute(query)
        rows = cur.fetch_arrow_table()
        other.rollback()
    return rows


def write_geoframe(conn, table: str, frame: gpd.GeoDataFrame) -> None:
    """Create `table` (text columns and ``geom``) and copy `frame` into it."""
    columns = [c for c in frame.columns if c != frame.geometry.name]
    defs = ", ".join(f'"{c}" text' for c in columns)
    conn.execute(f'CREATE TABLE "{table}" (fid bigserial PRIMARY KEY, {defs}{", " if defs else ""}'
                 f"geom geometry(Geometry, {_SRID}))")
    conn.execute(f'CREATE INDEX "{table}_geom" ON "{table}" USING gist (geom)')
    names = ", ".join([*(f'"{c}"' for c in columns), "geom"])
    with conn.cursor().copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        for row in zip(*(_values(frame[c]) for c in columns), _ewkb(frame.geometry.to_numpy())):
            copy.write_row(row)


def write_table(conn, table: str, frame: pd.DataFrame) -> None:
    """Create a text table from `frame` and copy its rows."""
    defs = ", ".join(f'"{c}" text' for c in frame.columns)
    conn.execute(f'CREATE TABLE "{table}" ({defs})')
    with conn.cursor().copy(f'COPY "{table}" FROM STDIN') as copy:
        for row in zip(*(_values(frame[c]) for c in frame.columns)):
            copy.write_row(row)


def copy_rows(conn, table: str, frame: pd.DataFrame) -> None:
    """Append `frame`'s rows to an existing table (columns by name)."""
    names = ", ".join(f'"{c}"' for c in frame.columns)
    with conn.cursor().copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        for row in zip(*(_values(frame[c]) for c in frame.columns)):
            copy.write_row(row)


def write_components(conn, frame: gpd.GeoDataFrame) -> None:
    """Copy registry components (fields, bookkeeping columns, geometry) into ``components``.

    Through a temporary table: PostgreSQL refuses ``COPY FROM`` into a table with row-level
    security, and the ``INSERT … SELECT`` from it is checked against the unit's policies.
    """
    columns = [*FIELD_NAMES, "retired_at", "version", "updated_at", "batch_id"]
    names = ", ".join([*(f'"{c}"' for c in columns), "geom"])
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS arriving ON COMMIT DELETE ROWS AS SELECT {names} FROM components "
                 "WITH NO DATA")
    with conn.cursor().copy(f"COPY arriving ({names}) FROM STDIN") as copy:
        for row in zip(*(_values(frame[c]) for c in columns), _ewkb(frame.geometry.to_numpy())):
            copy.write_row(row)
    conn.execute(f"INSERT INTO components ({names}) SELECT {names} FROM arriving")
    conn.execute("TRUNCATE arriving")


def read_components(conn, where: str = "", params: tuple = (), *, url: str | None = None) -> gpd.GeoDataFrame:
    """Every component (retired ones too), or those `where` selects, in the registry's canonical columns.

    `url`: read over the binary protocol where :func:`read_geoframe` can.
    """
    frame = read_geoframe(conn, "components", f"{where} ORDER BY fid", params, url=url)
    for column in (*DATE_FIELDS, "retired_at", "updated_at"):
        frame[column] = pd.to_datetime(frame[column], format="ISO8601").astype("datetime64[ms]")
    frame = gpd.GeoDataFrame(conform(frame), geometry=frame.geometry, crs=settings.default_crs)
    # rows written before schema 3 by another program may lack them: version 1 of batch 0
    frame["version"] = pd.to_numeric(frame["version"]).fillna(1).astype("int64")
    frame["batch_id"] = pd.to_numeric(frame["batch_id"]).fillna(OUTSIDE_BATCH).astype("int64")
    return frame


def _values(series: pd.Series) -> list:
    """Values for COPY: None for missing, ISO text for dates, plain Python scalars."""
    if pd.api.types.is_datetime64_any_dtype(series):
        text = np.datetime_as_string(series.to_numpy().astype("datetime64[us]"))
        return [None if m else t for t, m in zip(text, series.isna().to_numpy())]
    out: list = []
    for v in series.to_numpy(dtype=object):
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            out.append(None)
        elif isinstance(v, (np.integer, np.floating)):
            out.append(v.item())
        elif isinstance(v, (pd.Timestamp, dt.datetime)):
            out.append(v.isoformat())
        else:
            out.append(v)
    return out


def _ewkb(geoms: np.ndarray) -> list[str | None]:
    """Hex EWKB with the registry's SRID, which PostGIS reads in COPY."""
    geoms = shapely.set_srid(np.asarray(geoms, dtype=object), _SRID)
    return list(shapely.to_wkb(geoms, hex=True, include_srid=True))


@contextlib.contextmanager
def ingest_transaction(url: str, *, timeout: float) -> Iterator[Any]:
    """One ``REPEATABLE READ`` transaction; concurrent-update failures become :class:`RegistryConflict`."""
    import psycopg
    from psycopg import errors

    start, committing = time.monotonic(), False
    try:
        with connect(url, timeout=timeout) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            with conn.transaction():
                yield conn
                committing = True
    except RegistryUnavailable as exc:
        if committing:  # the server may have committed before the connection broke
            raise RegistryUnavailable(f"{exc} " + _("The connection broke while the merge was committing: look "
                                                    "at citygrid history for the batch before merging it again.")) \
                from None
        raise RegistryUnavailable(f"{exc} " + _("Nothing of this merge was written.")) from None
    except (errors.SerializationFailure, errors.DeadlockDetected, errors.LockNotAvailable,
            errors.UniqueViolation) as exc:
        raise RegistryConflict(_("another writer changed some of the same components at the same time ({reason}; "
                                 "after {s:.1f} s); nothing was written — re-open the registry and ingest the batch "
                                 "again.").format(reason=exc.diag.message_primary, s=time.monotonic() - start)) \
            from None
    except errors.InsufficientPrivilege as exc:
        raise AccessDenied(_("the database refused the change: {reason}. A unit changes only the components it owns "
                             "or maintains.").format(reason=exc.diag.message_primary)) from None
    except errors.CheckViolation as exc:  # the database's own rules: what validation let through, it did not
        raise RegistryError(_("the database refused the batch: {reason}; nothing was written.").format(
            reason=exc.diag.message_primary)) from None


def _state(conn: Any) -> str:
    """The state of the registry as the connection's role sees it (see :meth:`PostgisStore.state`)."""
    n, last, everyone, unit, admin = conn.execute(
        "SELECT count(*), max(change_id), read_all(), my_unit(), session_is_admin() FROM citygrid_history").fetchone()
    return f"{n}:{last}:{everyone}:{unit}:{admin}"


def redacted(url: str) -> str:
    """A database URL without its password, for messages.

    Examples
    --------
    >>> redacted("postgresql://ann:secret@db.example:5433/pingshan")
    'postgresql://ann@db.example:5433/pingshan'
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    return (f"postgresql://{parts.username + '@' if parts.username else ''}{host}"
            f"{':' + str(parts.port) if parts.port else ''}{parts.path}")


class PostgisStore(BookkeepingReads):
    """A registry in PostGIS, shared by many departments (see the module docstring).

    Parameters
    ----------
    url : str
        ``postgresql://user:password@host:port/database``.
    timeout : float
        Seconds to wait for a connection or a lock.
    """

    kind = "PostGIS"
    path = None
    checks_state = False
    read_only = None
    engine = "pyogrio"  # extracts are written with it
    _mark = "%s"
    _STATE_TTL = 0.5  # seconds a state read is trusted before asking the database again

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        psycopg = require("psycopg", _("a PostGIS registry"), "postgis")

        self.url, self.timeout, self.name = url, timeout, redacted(url)
        try:
            with connect(url, timeout=timeout) as conn:
                version = schema_version(conn)
        except psycopg.Error as exc:  # reached, but refused: no access to the schema …
            raise RegistryError(_("cannot open the PostGIS registry {name}: {reason}").format(
                name=self.name, reason=_reason(exc))) from None
        if version == 0:
            raise RegistryError(_("{name} holds no citygrid registry; copy one in with "
                                  "citygrid.copy_registry(gpkg_path, url).").format(name=self.name))
        if version != len(MIGRATIONS):
            raise RegistryError(_("{name} has schema version {version}, this citygrid uses {ours}: ").format(
                name=self.name, version=version, ours=len(MIGRATIONS))
                + (_("the registry admin upgrades it: citygrid upgrade URL.")
                   if version < len(MIGRATIONS) else _("upgrade citygrid.")))
        self._state: tuple[float, str] | None = None

    def _rows(self, sql: str, params: tuple = ()) -> pd.DataFrame:
        """Rows of a bookkeeping query (``%s`` placeholders) as a frame."""
        with connect(self.url, timeout=self.timeout) as conn:
            return read_frame(conn, sql, params)

    def meta(self) -> dict[str, str]:
        """The key/value metadata."""
        frame = self._rows("SELECT key, value FROM citygrid_meta")
        return dict(zip(frame["key"], frame["value"]))

    def state(self) -> str:
        """The committed state as this role sees it.

        The history's size and last change (every change writes history), and what decides
        which rows the role reads: whether units read all, the role's unit, whether it is an
        admin (none of which writes history).
        """
        now = time.monotonic()
        if self._state is None or now - self._state[0] > self._STATE_TTL:
            with connect(self.url, timeout=self.timeout) as conn:
                self._state = (now, _state(conn))
        return self._state[1]

    def may_write(self) -> bool:
        """Whether this role may insert, update or delete components (a service should not)."""
        with connect(self.url, timeout=self.timeout) as conn:
            return bool(conn.execute("SELECT has_table_privilege('components', 'INSERT') OR "
                                     "has_table_privilege('components', 'UPDATE') OR "
                                     "has_table_privilege('components', 'DELETE')").fetchone()[0])

    def read_components(self, state: str, columns: Sequence[str] | None = None) -> gpd.GeoDataFrame:
        """Every component (retired ones too) this role may read, from the client's cache when it holds `state`.

        With `columns`, only those are taken from the cache (the database is read whole, to be kept).

        The cache (``settings.cache_dir``) is kept per database and role, so a unit's cache holds
        only what the unit may read, and keyed on the state, which any commit changes. Rows are
        read with the state in one snapshot of the database: only then is the cache written.
        """
        cache, key = self._cache(state)
        frame = read_snapshot(cache, key, columns) if cache is not None else None
        if frame is not None:
            return frame
        import psycopg

        with connect(self.url, timeout=self.timeout) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            with conn.transaction():
                seen = _state(conn)
                frame = read_components(conn, url=self.url)
        if cache is not None and seen == state:
            store_snapshot(cache, key, frame)
        return frame if columns is None else frame[list(columns)]

    def _cache(self, state: str) -> tuple[Path | None, str]:
        """The cache file's base path for this database and role (None: keep none), and the key of `state`."""
        key = hashlib.sha256(f"{self.name}\n{state}".encode()).hexdigest()[:32]
        if not settings.cache_dir:
            return None, key
        folder = Path(settings.cache_dir)
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:  # no cache where none can be kept
            return None, key
        return folder / f"pg-{hashlib.sha256(self.name.encode()).hexdigest()[:24]}", key

    def read_near(self, ids: np.ndarray, geoms: np.ndarray, categories: np.ndarray,
                  reach: np.ndarray) -> gpd.GeoDataFrame:
        """The components named by `ids`, or of a row's category within its `reach` (metres) of its geometry.

        What a batch is validated against, found through the GiST index: a department's
        client does not read the whole district to merge a few hundred rows.
        """
        wkb = shapely.to_wkb(np.asarray(geoms, dtype=object), hex=True).tolist()
        cats = [c if isinstance(c, str) else None for c in np.asarray(categories, dtype=object)]
        # the rows fetched by their fids (an array): a join made the planner read every row of the table
        where = (f"WHERE fid = ANY(ARRAY(SELECT fid FROM (SELECT c.fid, c.category, b.cat FROM {_WITHIN_REACH} "
                 "OFFSET 0) AS near WHERE category = cat "
                 "UNION SELECT fid FROM components WHERE component_id = ANY(%s)))")
        named = [i for i in pd.unique(np.asarray(ids, dtype=object)) if isinstance(i, str)]
        with connect(self.url, timeout=self.timeout) as conn:
            return read_components(conn, where, (wkb, cats, [float(r) for r in reach], named))

    def hidden_near(self, geoms: np.ndarray, categories: np.ndarray, reach: np.ndarray) -> dict[int, float] | None:
        """How far the nearest component of each row's category lies among those this role may not read.

        A function of the definer (``hidden_near()``) looks at every component and answers
        with row positions and distances only, so a unit's merge is checked against places it
        cannot see without learning what is there.
        """
        wkb = shapely.to_wkb(np.asarray(geoms, dtype=object), hex=True).tolist()
        cats = [c if isinstance(c, str) else None for c in np.asarray(categories, dtype=object)]
        with connect(self.url, timeout=self.timeout) as conn:
            rows = conn.execute("SELECT place, distance FROM hidden_near(%s, %s, %s)",
                                (wkb, cats, [float(r) for r in reach])).fetchall()
        return {int(place) - 1: float(distance) for place, distance in rows} or None

    def read_district(self) -> District:
        """The district, read from its tables."""
        with connect(self.url, timeout=self.timeout) as conn:
            layers = {n: read_geoframe(conn, n) for n in DISTRICT_LAYERS
                      if conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.{n}",)).fetchone()[0]}
            units = read_frame(conn, "SELECT * FROM citygrid_units").rename(columns={"name_zh": "name"})
        meta = layers["boundary"].iloc[0]
        return District(code=meta["code"], name=meta["name"], boundary=meta.geometry, streets=layers["streets"],
                        communities=layers["communities"], grid=layers["grid"], units=units,
                        roads=layers.get("roads"))

    def reserve_serials(self, needed: dict[str, int], used: dict[str, int]) -> dict[str, int]:
        """Reserve `needed` serials per category in the database.

        Each reservation commits at once, like a sequence, so concurrent ingests never wait
        on each other's reservations, nor deadlock over them.
        """
        with connect(self.url, timeout=self.timeout) as conn:
            conn.autocommit = True
            return {cat: conn.execute("SELECT reserve_serials(%s, %s, %s)",
                                      (cat, used.get(cat, 0), n)).fetchone()[0] for cat, n in sorted(needed.items())}

    def write(self, plan: Plan, batch: Batch, *, expected: str) -> Written:
        """Write `plan` in one transaction, each change at the version it was planned on.

        Other departments' merges of other components in between do not matter here, so
        `expected` is not compared: a component changed since planning gives
        :class:`RegistryConflict`. Where the plan creates or moves components, the writer
        first holds the places (:func:`places_held`): a component that another merge put
        within a category's tolerance of them since the batch was validated raises
        :class:`Stale`, and the batch is validated again.
        """
        now = batch.finished()
        stamp = now[:26]
        with places_held(self.url, plan.checked, timeout=self.timeout), \
                ingest_transaction(self.url, timeout=self.timeout) as conn:
            (batch_id,) = conn.execute("SELECT nextval('citygrid_batch_ids')").fetchone()
            conn.execute("SELECT set_config('citygrid.batch_id', %s, true)", (str(batch_id),))
            if len(plan.create):
                rows = plan.create.copy()
                rows["retired_at"] = pd.Series(pd.NaT, index=rows.index, dtype="datetime64[ms]")
                rows["version"], rows["updated_at"], rows["batch_id"] = 1, pd.Timestamp(stamp), batch_id
                write_components(conn, rows)
            if len(plan.versions):
                _claim(conn, plan, stamp, now[:19], batch_id)
            conn.execute("SELECT record_batch(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                         (batch.source, batch.user, batch.started, now, len(plan.create),
                          len(plan.updated_ids), len(plan.retire), plan.unchanged, batch.kind))
        self._state = None
        return Written(int(batch_id), None, stamp)  # other departments may have committed meanwhile

    def keep(self, state: str, frame: gpd.GeoDataFrame) -> None:
        """Nothing: the database is read again (each client has its own memory cache)."""

    def write_migration(self, frame: gpd.GeoDataFrame, new_ids: np.ndarray, new_cats: np.ndarray, layout: str,
                        batch: Batch) -> None:
        """Not on PostGIS yet: raises :class:`RegistryError` saying how to do it."""
        raise RegistryError(_("migrating identifiers is done on the GeoPackage registry for now: copy the registry "
                              "out with copy_registry(url, path), migrate, and copy it back in."))

    def allow(self, component_id: str, rule: str, note: str, at: str) -> None:
        """Put `rule` for `component_id` on the allow-list."""
        with ingest_transaction(self.url, timeout=self.timeout) as conn:
            conn.execute("INSERT INTO citygrid_allow VALUES (%s, %s, %s, %s) ON CONFLICT (component_id, rule) "
                         "DO UPDATE SET note = EXCLUDED.note, added_at = EXCLUDED.added_at",
                         (component_id, rule, note, at))
        self._state = None

    def backup(self, dest: Path) -> Path:
        """A consistent copy of the citygrid schema at `dest` with ``pg_dump`` (custom format).

        Restore it into a database with PostGIS: ``pg_restore --no-owner -d URL DEST``.

        Raises
        ------
        MissingFile
            If ``pg_dump`` is not installed.
        RegistryExists
            If `dest` exists.
        OutputError
            If pg_dump fails (the message is its own).
        """
        import subprocess

        from citygrid.errors import MissingFile, OutputError, RegistryExists, writing

        dest = Path(dest)
        if dest.exists():
            raise RegistryExists(f"{str(dest)!r} exists; back up to a new file.")
        found = shutil.which("pg_dump") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"))[-1:]), None)
        if found is None:
            raise MissingFile("backing up a PostGIS registry needs pg_dump (Debian: postgresql-client).")
        partial = dest.with_name(dest.name + ".partial")
        with writing(dest):
            done = subprocess.run([found, "--format=custom", f"--schema={SCHEMA}", f"--file={partial}",
                                   f"--dbname={self.url}"], capture_output=True, text=True)
            if done.returncode:
                partial.unlink(missing_ok=True)
                raise OutputError(_("pg_dump of {name} failed: {reason}").format(
                    name=self.name, reason=done.stderr.strip()[:300]))
            os.replace(partial, dest)
        return dest

    def verify(self) -> list[str]:
        """What is wrong with the stored registry, one line each (empty: nothing found).

        Rows breaking the rules that schema 4 checks on every write (rows written before it
        are not re-checked there), history against batches, triggers missing or disabled. A
        unit's verify counts every row, as the admin's does (``verify_components()``).
        """
        said = {"id": N_("components without an identifier or with one that does not fit its category"),
                "geometry": N_("components with an empty, invalid or mixed geometry"),
                "category": N_("components of a category the catalog does not know"),
                "batch": N_("components of a batch that is not recorded"),
                "create": N_("components without a 'create' in the history")}
        with connect(self.url, timeout=self.timeout) as conn:
            # counted by a function of the definer: every row, whichever role asks (and only counts come back)
            counts = dict(conn.execute("SELECT what, n FROM verify_components()").fetchall())
            problems = [f"{_(text)}: {counts[key]:,}" for key, text in said.items() if counts.get(key)]
            if counts.get("history"):
                problems.append(_("history: {n:,} change(s) in batches that are not recorded").format(
                    n=counts["history"]))
            triggers = {r[0] for r in conn.execute(
                "SELECT tgname FROM pg_trigger WHERE tgenabled <> 'D' "
                "AND tgrelid IN ('components'::regclass, 'citygrid_commit_checks'::regclass)")}
            problems += [_("trigger missing or disabled: {name}").format(name=name) for name in
                         ("components_history_created", "components_history_changed", "components_guard",
                          "components_stamp", "components_check", "components_relations_created",
                          "components_relations_changed", "commit_checks")
                         if name not in triggers]
        return problems


_PLACE_CELL_M = 50.0
"""Side of the cells, per category, that a writer locks around the places it puts components
at; at least twice the category's tolerance, so that two places within it share a cell."""

def place_keys(places: gpd.GeoDataFrame) -> list[int]:
    """Advisory lock keys, sorted, of the cells of each place's category within its reach.

    Two places of one category within its tolerance of each other share a key (one lies
    in the other's box grown by the tolerance); keys of other cells may collide, which only
    makes a writer wait.

    Examples
    --------
    >>> places = gpd.GeoDataFrame({"category": ["0101", "0101", "0101"], "reach": [1.0, 1.0, 1.0]},
    ...                           geometry=[shapely.Point(49.5, 0), shapely.Point(50.2, 0), shapely.Point(500, 0)])
    >>> a, b, c = (set(place_keys(places.iloc[[k]])) for k in range(3))
    >>> bool(a & b), bool(a & c)
    (True, False)
    """
    import zlib

    bounds = shapely.bounds(places.geometry.to_numpy())
    reach = places["reach"].to_numpy(dtype=float)
    side = np.maximum(_PLACE_CELL_M, 2 * reach)[:, None]
    usable = np.isfinite(bounds).all(axis=1)
    low = np.floor((bounds[:, :2] - reach[:, None]) / side)[usable].astype(np.int64)
    high = np.floor((bounds[:, 2:] + reach[:, None]) / side)[usable].astype(np.int64)
    tags = [zlib.crc32(str(c).encode()) & 0xFFFFF for c in places["category"].to_numpy(dtype=object)[usable]]
    keys = {1 << 61 | (x & 0xFFFFF) << 40 | (y & 0xFFFFF) << 20 | tag
            for (x0, y0), (x1, y1), tag in zip(low.tolist(), high.tolist(), tags)
            for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)}
    return sorted(keys)


@contextlib.contextmanager
def places_held(url: str, checked: Checked | None, *, timeout: float) -> Iterator[None]:
    """Hold the places a plan puts components at while it is written.

    Session advisory locks on the cells around them (:func:`place_keys`), on a connection
    of their own, taken in key order before the merge's transaction starts and released
    after it ends: so that its snapshot holds every merge that held the same cells before
    it. Then no current component of a place's category may lie within its reach but those
    the batch was validated against.

    Raises
    ------
    Stale
        If another merge put a component there since the batch was validated.
    RegistryLocked
        If another writer held the places longer than `timeout`.
    """
    keys = place_keys(checked.places) if checked is not None and len(checked.places) else []
    if checked is None or not keys:
        yield
        return
    from psycopg import errors

    start = time.monotonic()
    with connect(url, timeout=timeout) as conn:
        conn.autocommit = True
        try:
            conn.execute("SELECT hold_places(%s::bigint[])", (keys,))
        except errors.LockNotAvailable:
            raise RegistryLocked(_("another writer is merging components at the same places in {url}; waited "
                                   "{s:.1f} s. Nothing was written; try again when it is done.").format(
                url=redacted(url), s=time.monotonic() - start)) from None
        try:
            places = checked.places
            came = conn.execute("SELECT came_near(%s, %s, %s, %s)", (
                shapely.to_wkb(places.geometry.to_numpy(), hex=True).tolist(), places["category"].tolist(),
                places["reach"].astype(float).tolist(), [i for i in checked.seen if isinstance(i, str)])).fetchone()[0]
            if came is not None:  # "" for one this role may not read: the batch is validated again
                raise Stale(f"{came or 'a component'} came near the batch")
            yield
        finally:
            with contextlib.suppress(Exception):  # a broken connection has let its locks go with it
                conn.execute("SELECT pg_advisory_unlock_all()")


def _setters(changes: pd.DataFrame, ids: np.ndarray) -> tuple[list[str], list[list[object]], list[str]]:
    """SET clauses writing `changes` (``component_id, field, new``) to the rows of `ids`, and their arrays.

    A field gets a value array and a flag array over `ids`: a row whose flag is not set keeps
    the field's value. ``retired_at`` is a time, dates are dates, the geometry is hex WKB.
    """
    at = pd.Index(ids).get_indexer(changes["component_id"].to_numpy(dtype=object))
    setters: list[str] = []
    arrays: list[list[object]] = []
    names: list[str] = []
    fields = changes["field"].to_numpy(dtype=object)
    for k, name in enumerate(sorted(set(fields))):
        rows = np.flatnonzero(fields == name)
        new = changes["new"].to_numpy(dtype=object)[rows]
        if name == "geometry":
            given = list(shapely.to_wkb(new, hex=True))
            value, column = f"ST_SetSRID(ST_GeomFromWKB(decode(t.v{k}, 'hex')), {_SRID})", "geom"
        else:
            given = _values(pd.to_datetime(pd.Series(new))) if name in DATE_FIELDS else \
                _values(pd.Series(new, dtype=object))
            given = [None if v is None else str(v) for v in given]
            kind = "date" if name in DATE_FIELDS else "timestamp" if name == "retired_at" else "text"
            value, column = f"t.v{k}::{kind}", f'"{name}"'
        values: list[object] = [None] * len(ids)
        flags: list[object] = [False] * len(ids)
        for i, v in zip(at[rows], given):  # a later change of a row's field wins (a retirement's status)
            values[i], flags[i] = v, True
        setters.append(f"{column} = CASE WHEN t.s{k} THEN {value} ELSE c.{column} END")
        arrays += [values, flags]
        names += [f"v{k}", f"s{k}"]
    return setters, arrays, names


def _claim(conn, plan: Plan, stamp: str, retired_at: str, batch_id: int) -> None:
    """Write every change of the touched components, each at its planned version, in one statement.

    One statement gives each row one new version and fires each trigger once (a statement per
    field gave it one per field). A component not at its planned version is not written: then
    the other writer, or the unit's rights, are named and the transaction is rolled back.
    """
    touched = plan.versions.index.to_numpy(dtype=object)
    versions = [int(v) for v in plan.versions.to_numpy()]
    gone = plan.retire
    changes = pd.concat([plan.update[["component_id", "field", "new"]],
                         pd.DataFrame({"component_id": gone["component_id"], "field": "status", "new": gone["status"]}),
                         pd.DataFrame({"component_id": gone["component_id"], "field": "retired_at",
                                       "new": retired_at})], ignore_index=True)
    setters, arrays, names = _setters(changes, touched)
    casts = "".join(", %s::bool[]" if n.startswith("s") else ", %s::text[]" for n in names)
    claimed = {r[0] for r in conn.execute(
        "UPDATE components c SET version = c.version + 1, updated_at = %s, batch_id = %s"
        + "".join(f", {setter}" for setter in setters)
        + f" FROM unnest(%s::text[], %s::int[]{casts}) AS t(id, v{''.join(', ' + n for n in names)})"
        " WHERE c.component_id = t.id AND c.version = t.v RETURNING c.component_id",
        (stamp, batch_id, list(touched), versions, *arrays)).fetchall()}
    missing = [i for i in touched if i not in claimed]
    if not missing:
        return
    planned = dict(zip(touched, versions))
    visible = dict(conn.execute("SELECT component_id, version FROM components WHERE component_id = ANY(%s)",
                                (missing,)).fetchall())
    if any(visible.get(i) != planned[i] for i in missing):
        raise RegistryConflict(_("{n} component(s) were changed by another writer since this batch was planned, e.g. "
                                 "{ids}; nothing was written — re-open the registry and ingest again.").format(
            n=len(missing), ids=", ".join(missing[:3])))
    mine = conn.execute("SELECT my_unit()").fetchone()[0]
    raise AccessDenied(_("unit {unit} may not change {n} component(s) it neither owns nor maintains, e.g. {ids}; "
                         "nothing was written.").format(unit=mine, n=len(missing), ids=", ".join(missing[:3])))


def upgrade_store(target: str, *, timeout: float = 10.0) -> tuple[int, int]:
    """Apply the missing migrations to the shared registry at `target` (run as its owner).

    Returns the schema versions before and after.
    """
    with connect(target, timeout=timeout) as conn:
        before = schema_version(conn)
        if before == 0:
            raise RegistryError(_("{name} holds no citygrid registry; copy one in with "
                                  "citygrid.copy_registry(gpkg_path, url).").format(name=redacted(target)))
        return before, upgrade(conn)


def guess_can_open(target: object) -> bool:
    """Whether `target` is a ``postgresql://`` (or ``postgres://``) URL."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def open_store(target: str, *, engine: str = "pyogrio", timeout: float = 10.0) -> PostgisStore:
    """The shared registry at the URL `target` (extracts are always written with pyogrio)."""
    return PostgisStore(target, timeout=timeout)


def create(target: str, new: NewRegistry, *, engine: str = "pyogrio", timeout: float = 10.0,
           overwrite: bool = False) -> PostgisStore:
    """A new shared registry in the empty database at `target`, all or nothing.

    The registry is made as a GeoPackage in a temporary folder (the same checks and the same
    first batch), then copied in within one transaction.

    Raises
    ------
    RegistryError
        If the database already holds a registry.
    UsageError
        For `overwrite`: a shared registry is dropped by its owner, never overwritten.
    """
    import tempfile

    from citygrid.backends import gpkg

    if overwrite:
        raise UsageError(_("a shared registry is never overwritten; its owner drops it first ({url}).").format(
            url=redacted(target)))
    with tempfile.TemporaryDirectory(prefix="citygrid-") as folder:
        local = gpkg.create(Path(folder) / "registry.gpkg", new, timeout=timeout)
        copy_in(local, target, timeout=timeout)
        gpkg.settle(local.path)
    return PostgisStore(target, timeout=timeout)


def copy_in(source: Store, url: str, *, timeout: float = 10.0) -> PostgisStore:
    """Copy a registry (any store) into an empty PostGIS database, history and all.

    Raises
    ------
    RegistryError
        If the database already holds components.
    """
    with connect(url, timeout=timeout) as conn:
        upgrade(conn)
        if conn.execute("SELECT EXISTS (SELECT FROM components)").fetchone()[0]:
            raise RegistryError(_("{url} already holds a registry; copy into an empty database.").format(
                url=redacted(url)))
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")  # history is copied, not re-made
            for key, value in source.meta().items():
                if key not in ("schema_version", "state"):
                    conn.execute("INSERT INTO citygrid_meta VALUES (%s, %s) ON CONFLICT (key) "
                                 "DO UPDATE SET value = EXCLUDED.value", (key, value))
            write_table(conn, "citygrid_catalog", source.read_catalog())
            write_table(conn, "citygrid_units", source.read_units())
            conn.execute("CREATE INDEX citygrid_units_code ON citygrid_units (code)")  # the check at commit finds units
            for name, layer in source.read_district().layers().items():
                write_geoframe(conn, name, layer)
            write_components(conn, source.read_components(source.state()))
            for table, rows in source.read_bookkeeping().items():
                copy_rows(conn, table, rows)
            conn.execute("SELECT setval('citygrid_batch_ids', "
                         "GREATEST(1, (SELECT max(batch_id) FROM citygrid_batches)))")
            conn.execute("SELECT setval(pg_get_serial_sequence('citygrid.citygrid_history', 'change_id'), "
                         "GREATEST(1, (SELECT max(change_id) FROM citygrid_history)))")
            conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} "
                         "TO citygrid_unit, citygrid_admin, citygrid_reader")
            conn.execute("DO $$ BEGIN IF to_regclass('citygrid_pending') IS NOT NULL THEN "  # the checks' own queue
                         "REVOKE ALL ON citygrid_pending, citygrid_commit_checks "
                         "FROM citygrid_unit, citygrid_admin, citygrid_reader; END IF; END $$")
        conn.execute("ANALYZE")  # the planner's figures of the tables just filled (checks at commit use them)
    return PostgisStore(url, timeout=timeout)


def add_reader_role(url: str, role: str, *, password: str | None = None) -> None:
    """Create a login role that may only read the registry (for ``citygrid serve``).

    Run as the database owner. The role reads what units read (every component, unless the
    district sets ``units_read_all`` to false) and can change nothing.

    Parameters
    ----------
    url : str
        The registry's database, connected as its owner.
    role : str
        Login name (letters, digits, underscores).
    password : str, optional
        Login password.
    """
    from psycopg import sql

    with _login_role(url, role, password) as (conn, name):
        conn.execute(sql.SQL("GRANT citygrid_reader TO {}").format(name))


def add_unit_role(url: str, role: str, unit_code: str, *, password: str | None = None, admin: bool = False) -> None:
    """Create a login role for a unit (or the registry admin) and map it to its unit.

    Run as the database owner. A unit role reads every component (unless the district
    sets ``units_read_all`` to false) and changes only those its unit owns or maintains.

    Parameters
    ----------
    url : str
        The registry's database, connected as its owner.
    role : str
        Login name (letters, digits, underscores).
    unit_code : str
        The unit's code in ``citygrid_units`` (its USCC).
    password : str, optional
        Login password.
    admin : bool, default False
        Make the role a registry admin (categories, grid, ownership transfers).
    """
    from psycopg import sql

    with _login_role(url, role, password) as (conn, name):
        group = "citygrid_admin" if admin else "citygrid_unit"
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), name))
        conn.execute("INSERT INTO citygrid_unit_roles VALUES (%s, %s) ON CONFLICT (role_name) "
                     "DO UPDATE SET unit_code = EXCLUDED.unit_code", (role, unit_code))


@contextlib.contextmanager
def _login_role(url: str, role: str, password: str | None) -> Iterator[tuple[Any, Any]]:
    """A transaction as the owner in which the login `role` exists (created if new), with its quoted name.

    Raises
    ------
    UsageError
        For a name that is not letters, digits and underscores.
    """
    from psycopg import sql

    if not role.replace("_", "").isalnum():
        raise UsageError(_("role={role!r}: use letters, digits and underscores only.").format(role=role))
    with connect(url) as conn, conn.transaction():
        name = sql.Identifier(role)
        if not conn.execute("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = %s)", (role,)).fetchone()[0]:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(name))
        if password is not None:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(name, sql.Literal(password)))
        yield conn, name
