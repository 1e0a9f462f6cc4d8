"""The component registry: open/create, query, stats, owner lookup, ingest, history, export.

A registry is one GeoPackage by default (see :mod:`citygrid.backends.gpkg`): it carries
its district (streets, communities, grid, roads), its catalog and unit list, the
components per geometry family, and the full history of every change. Components are
retired, never deleted; any past state can be read back with :meth:`Registry.as_of`.

Examples
--------
>>> import citygrid as cg, tempfile, pathlib
>>> d = cg.synth.make_district(seed=0, n_components=1_000)
>>> path = pathlib.Path(tempfile.mkdtemp()) / "pingshan.gpkg"
>>> reg = Registry.create(path, district=d)
>>> len(reg.query(street="马峦街道")) > 0, reg.layout
(True, 'cjt214')
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj.exceptions import CRSError

from citygrid import settings
from citygrid._arrays import Positions, isin
from citygrid.admin import MULTI_LAYERS, District, read_layer
from citygrid.backends import gpkg
from citygrid.catalog import Catalog, _check_rows
from citygrid.crs import gcj02_to_wgs84, transformer
from citygrid.io import read_batch
from citygrid.schema import (
    CJT214,
    DATE_FIELDS,
    FIELD_NAMES,
    GBT47678,
    LAYOUTS,
    SERIAL_MAX,
    conform,
    make_ids,
    max_serials,
    migrate_ids,
    parse_ids,
    standard_columns,
)
from citygrid.validate import Report, validate

BOOK_COLUMNS = ("retired_at", "version", "updated_at", "batch_id")
"""Columns the registry adds to every component."""

_FAMILY = {"Point": "point", "LineString": "line", "MultiLineString": "line",
           "Polygon": "polygon", "MultiPolygon": "polygon"}
_TYPE_LAYER = {0: gpkg.LAYERS["point"], 1: gpkg.LAYERS["line"], 5: gpkg.LAYERS["line"],
               3: gpkg.LAYERS["polygon"], 6: gpkg.LAYERS["polygon"]}
"""Registry layer of each shapely geometry type id."""


class RegistryError(ValueError):
    """The registry refuses an operation; the message says why and what to do."""


class _Stale(Exception):
    """The registry changed between planning a merge and writing it."""


def _now() -> str:
    """UTC now to the microsecond: when history rows and batches happened."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _layer_time(now: str) -> str:
    """`now` as a layer's DATETIME value, to the millisecond.

    GDAL reads milliseconds without a warning; it calls microseconds non-conformant.
    """
    return now[:23]


def _field_text(name: str, values: Any) -> np.ndarray:
    """Values of one field as history text (None where missing): ISO dates, WKB hex geometries.

    Text fields are stored as this text too.

    Examples
    --------
    >>> _field_text("survey_date", [pd.Timestamp("2026-03-01"), None]).tolist()
    ['2026-03-01T00:00:00', None]
    """
    values = np.asarray(values, dtype=object)
    if name == "geometry":
        return shapely.to_wkb(values, hex=True).astype(object)
    missing = pd.isna(values)
    if name in DATE_FIELDS or name == "retired_at":
        text = pd.to_datetime(values).strftime("%Y-%m-%dT%H:%M:%S").to_numpy(dtype=object)
    else:
        text = pd.Series(values, dtype=object).map(str, na_action="ignore").to_numpy(dtype=object)
    text[missing] = None
    return text


def _sql_columns(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[np.ndarray]:
    """Columns as SQLite values (None for missing, ISO text for dates), vectorised."""
    out = []
    for column in columns:
        series = frame[column]
        if pd.api.types.is_datetime64_any_dtype(series):
            text = pd.Series(np.datetime_as_string(series.to_numpy().astype("datetime64[s]")), index=series.index)
        else:
            text = series
        out.append(text.astype(object).where(series.notna(), None).to_numpy(dtype=object))
    return out


def _insert_components(conn, srs: dict[str, int], rows: gpd.GeoDataFrame) -> None:
    """Insert components into their family's layer.

    `rows` carries ``version``, ``updated_at``, ``batch_id`` and, optionally, ``retired_at``.
    """
    extra = [c for c in ("retired_at", "version", "updated_at", "batch_id") if c in rows]
    family = rows.geom_type.map(_FAMILY).to_numpy()
    for kind, layer in gpkg.LAYERS.items():
        part = rows[family == kind]
        if part.empty:
            continue
        columns = [gpkg.geometry_column(conn, layer), *FIELD_NAMES, *extra]
        blobs = gpkg.gpkg_blob(part.geometry.to_numpy(), srs[layer], multi=kind != "point")
        values = _sql_columns(part, (*FIELD_NAMES, *extra))
        conn.executemany(f'INSERT INTO "{layer}" ({", ".join(chr(34) + c + chr(34) for c in columns)}) '
                         f"VALUES ({', '.join('?' * len(columns))})", zip(blobs, *values))


def _update_components(conn, srs: dict[str, int], changes: pd.DataFrame, stamp: str, batch_id: int) -> None:
    """Write the changed fields of components: one UPDATE per component.

    `changes` holds one row per changed field (``component_id, layer, field, text``,
    `text` as :func:`_field_text` gives it, ``new`` the value). Components changing the
    same set of fields share one statement; each also gets ``version + 1`` and `stamp`
    as ``updated_at``.
    """
    for layer, group in changes.groupby("layer"):
        values = group["text"].to_numpy(dtype=object).copy()
        moved = (group["field"] == "geometry").to_numpy()
        values[moved] = gpkg.gpkg_blob(group["new"].to_numpy()[moved], srs[layer],
                                       multi=layer != gpkg.LAYERS["point"])
        fields, column = np.unique(group["field"].to_numpy(dtype=object), return_inverse=True)
        ids, row = np.unique(group["component_id"].to_numpy(dtype=object), return_inverse=True)
        table = np.empty((len(ids), len(fields)), dtype=object)
        table[row, column] = values
        given = np.zeros((len(ids), len(fields)), dtype=bool)
        given[row, column] = True
        names = [gpkg.geometry_column(conn, layer) if f == "geometry" else f for f in fields]
        sets, at = np.unique(given, axis=0, return_inverse=True)
        for k, mask in enumerate(sets):
            rows = np.flatnonzero(at.ravel() == k)
            assign = ", ".join(f'"{n}" = ?' for n, m in zip(names, mask) if m)
            conn.executemany(f'UPDATE "{layer}" SET {assign}, version = version + 1, updated_at = ?, '
                             "batch_id = ? WHERE component_id = ?",
                             [(*table[r, mask], stamp, batch_id, ids[r]) for r in rows])


@dataclass
class IngestResult:
    """What an ingest did.

    Attributes
    ----------
    accepted : bool
        False when the batch had errors: then nothing was written.
    batch_id : int or None
        The batch's number in ``reg.batches()`` (None when rejected).
    created, updated, retired, unchanged : int
        Components per outcome.
    report : Report
        The validation report.
    new_ids : list of str
        Identifiers given to new components, in batch row order.
    seconds : float
        Wall time.
    """

    accepted: bool
    batch_id: int | None
    created: int = 0
    updated: int = 0
    retired: int = 0
    unchanged: int = 0
    report: Report | None = field(default=None, repr=False)
    new_ids: list[str] = field(default_factory=list, repr=False)
    seconds: float = 0.0


class Registry:
    """A district's component registry in a GeoPackage.

    Use :meth:`create` or :func:`open_registry`; all data frames are in EPSG:4547.

    Parameters
    ----------
    path : str or Path
        The registry file.
    engine : {"pyogrio", "fiona"}, default "pyogrio"
        Vector I/O engine for reading layers.
    timeout : float, default 10.0
        Seconds a writer waits for another writer before :class:`RegistryLocked`.
    """

    def __init__(self, path: str | Path, *, engine: str = "pyogrio", timeout: float = 10.0) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"registry {str(self.path)!r} does not exist; create it with "
                                    "Registry.create(path, district=...).")
        if engine not in ("pyogrio", "fiona"):
            raise ValueError(f"engine={engine!r} is not known; use 'pyogrio' or 'fiona'.")
        self.engine = engine
        self.timeout = timeout
        try:
            meta = gpkg.read_meta(self.path)
        except Exception as exc:  # sqlite3.DatabaseError, OperationalError …
            raise RegistryError(f"{str(self.path)!r} is not a citygrid registry ({exc}); open a file "
                                "made by Registry.create().") from None
        if int(meta.get("schema_version", 0)) > gpkg.SCHEMA_VERSION:
            raise RegistryError(f"{str(self.path)!r} was made by a newer citygrid "
                                f"(schema {meta['schema_version']}); upgrade citygrid.")
        self._meta = meta
        self.catalog = Catalog(_check_rows(
            self._read("SELECT * FROM citygrid_catalog"), str(self.path)))
        self._district: District | None = None
        self._cache: tuple[int, gpd.GeoDataFrame, gpd.GeoDataFrame] | None = None
        self._derived: dict[str, Any] = {}
        self._revision: tuple[tuple, int] | None = None

    def __repr__(self) -> str:
        return (f"<Registry {self.path.name}: {self._meta['district_name']} ({self.admin_code}), "
                f"layout {self.layout}, revision {self.revision}>")

    # --- storage (the PostGIS registry overrides these) ----------------------------------
    def _read(self, sql: str, params: tuple = ()) -> pd.DataFrame:
        """Rows of a bookkeeping query (``?`` placeholders) as a frame of text."""
        return gpkg.read_table(self.path, sql, params)

    def _read_meta(self) -> dict[str, str]:
        return gpkg.read_meta(self.path)

    # --- creation ---------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        district: District,
        *,
        catalog: Catalog | None = None,
        layout: str = CJT214.name,
        engine: str = "pyogrio",
        overwrite: bool = False,
        source: str = "initial load",
        timeout: float = 10.0,
    ) -> Registry:
        """Create a registry from a district and its components.

        The file is written beside its final name and renamed only when complete.

        Parameters
        ----------
        path : str or Path
            The ``.gpkg`` to create.
        district : District
            Its hierarchy and (optionally) components.
        catalog : Catalog, optional
            Default: the shipped catalog.
        layout : {"cjt214", "gbt47678"}, default "cjt214"
            Identifier layout of the registry; components are converted to it.
        engine : {"pyogrio", "fiona"}, default "pyogrio"
            Vector I/O engine.
        overwrite : bool, default False
            Replace an existing file.
        source : str, default "initial load"
            Recorded as the first batch.

        Raises
        ------
        FileExistsError
            If `path` exists and `overwrite` is False.
        RegistryError
            If the components have errors (duplicate or malformed ids, missing or wrong
            geometries, unknown categories); the message summarises the report.
        """
        from citygrid.catalog import load_catalog

        path = Path(path)
        catalog = catalog or load_catalog()
        if layout not in LAYOUTS:
            raise ValueError(f"layout={layout!r} is not known; use one of {sorted(LAYOUTS)}.")
        if path.exists() and not overwrite:
            raise FileExistsError(f"{str(path)!r} exists; open it with open_registry() or pass overwrite=True.")
        comps = district.components if district.components is not None else \
            gpd.GeoDataFrame({f: [] for f in FIELD_NAMES}, geometry=[], crs=district.crs)
        comps = conform(comps.to_crs(settings.default_crs))
        comps = _to_layout(comps, layout, catalog)
        if comps["component_id"].isna().any():
            raise RegistryError(f"{int(comps['component_id'].isna().sum())} component(s) have no identifier; "
                                "a registry is made from identified components (ingest new ones instead).")
        report = validate(comps, district=district, catalog=catalog,
                          rules=["schema.unknown_category", "id", "geom.missing", "geom.wrong_type"])
        if not report.ok:
            raise RegistryError(f"the district's components have errors, so no registry was made: "
                                f"{_summary_line(report)}. Validate them with citygrid.validate().")
        now = _now()
        comps = comps[list(FIELD_NAMES) + ["geometry"]].copy()
        comps["retired_at"] = pd.Series(pd.NaT, index=comps.index, dtype="datetime64[ms]")
        comps["version"] = 1
        comps["updated_at"] = pd.Timestamp(now).as_unit("ms")
        comps["batch_id"] = 1
        partial = path.with_name(f"{path.stem}.creating{path.suffix}")
        partial.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            layers = district._layers()
            for name in ("boundary", "streets", "communities", "grid", "roads"):
                if name in layers:
                    _write_layer(layers[name], partial, name, engine=engine)
            family = comps.geom_type.map(_FAMILY)
            for kind, layer in gpkg.LAYERS.items():
                _write_layer(comps[(family == kind).to_numpy()], partial, layer, engine=engine,
                             kind=kind)
            meta = {"schema_version": str(gpkg.SCHEMA_VERSION), "revision": "0", "layout": layout,
                    "admin_code": district.code, "district_name": district.name,
                    "crs": settings.default_crs, "created_at": now, "edits_counted": "1"}
            units = district.units.rename(columns={"name": "name_zh"})
            gpkg.init_tables(partial, meta, {"citygrid_catalog": catalog.to_frame(),
                                             "citygrid_units": units})
            with gpkg.transaction(partial, timeout=timeout) as conn:
                conn.execute("INSERT INTO citygrid_batches VALUES (1, ?, NULL, ?, ?, ?, 0, 0, 0, 'create')",
                             (source, now, _now(), len(comps)))
                conn.executemany(
                    "INSERT INTO citygrid_history (batch_id, component_id, action, changed_at) "
                    "VALUES (1, ?, 'create', ?)", ((i, now) for i in comps["component_id"]))
            gpkg.snapshot_path(path).unlink(missing_ok=True)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        return cls(path, engine=engine, timeout=timeout)

    # --- state --------------------------------------------------------------------------
    @property
    def layout(self) -> str:
        """Identifier layout: ``"cjt214"`` (16 digits) or ``"gbt47678"`` (17 digits)."""
        return self._read_meta()["layout"]

    @property
    def admin_code(self) -> str:
        """The district's 6-digit division code."""
        return self._meta["admin_code"]

    @property
    def revision(self) -> int:
        """Increases with every committed change.

        Read from the file only when the file or its WAL changed since the last look (a
        stat is cheap; connections are short-lived so that GDAL, which links its own
        SQLite, never shares an open file with this process's sqlite3).
        """
        stamp = tuple((f.stat().st_mtime_ns, f.stat().st_size) if f.exists() else None
                      for f in (self.path, Path(f"{self.path}-wal")))
        if self._revision is None or self._revision[0] != stamp:
            self._revision = (stamp, int(gpkg.read_meta(self.path)["revision"]))
        return self._revision[1]

    @property
    def district(self) -> District:
        """The registry's district: boundary, streets, communities, grid, roads, units."""
        if self._district is None:
            units = self._read("SELECT * FROM citygrid_units").rename(
                columns={"name_zh": "name"})
            self._district = District.from_file(self.path, units=units, components=False,
                                                engine=self.engine)
        return self._district

    def components_with_retired(self) -> gpd.GeoDataFrame:
        """Every component ever registered, retired ones with ``retired_at`` set.

        Read from the layers after a change, and then kept beside the registry
        (``<name>.gpkg.snapshot``, Arrow, about 2.5 times faster to read) for that revision;
        any edit of a components layer, by citygrid or another program such as QGIS, is a
        new revision. The snapshot is only a cache: deleting it loses nothing.
        """
        revision = self.revision
        if self._cache is None or self._cache[0] != revision:
            frame = self._load(revision)
            self._cache = (revision, frame, frame[frame["retired_at"].isna()])
            self._derived = {}
        return self._cache[1]

    def _derive(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per revision of the components (lookups built from them)."""
        self.components_with_retired()
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]

    def _load(self, revision: int) -> gpd.GeoDataFrame:
        if self._meta.get("edits_counted") != "1":  # made before edits by other programs were counted
            return self._read_layers()
        state = f"{self._meta['created_at']}|{revision}"
        frame = gpkg.read_snapshot(self.path, state)
        if frame is None:  # the first read after a change: from the layers, then kept for the next
            frame = self._read_layers()
            gpkg.store_snapshot(self.path, state, frame)
        return frame

    def _read_layers(self) -> gpd.GeoDataFrame:
        parts = [read_layer(self.path, layer, engine=self.engine) for layer in gpkg.LAYERS.values()]
        frame = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
        frame = gpd.GeoDataFrame(conform(frame), geometry=gpkg.as_single(frame.geometry.to_numpy()),
                                 crs=settings.default_crs)
        for column in ("retired_at", "updated_at"):
            frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ms]")
        return frame

    @property
    def positions(self) -> Positions:
        """Finds component ids' rows in :meth:`components_with_retired` (-1: not registered)."""
        return self._derive("positions", lambda: Positions(
            self.components_with_retired()["component_id"].to_numpy(dtype=object)))

    @property
    def components(self) -> gpd.GeoDataFrame:
        """The current components (retired ones left out); cached until the registry changes."""
        self.components_with_retired()
        return self._cache[2]

    # --- queries ------------------------------------------------------------------------
    def query(
        self,
        *,
        category: str | list[str] | None = None,
        street: str | None = None,
        community: str | None = None,
        grid: str | list[str] | None = None,
        owner: str | None = None,
        maintainer: str | None = None,
        department: str | None = None,
        status: str | list[str] | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        bbox_crs: str | None = None,
        include_retired: bool = False,
    ) -> gpd.GeoDataFrame:
        """Components matching every given condition.

        Parameters
        ----------
        category : str or list of str, optional
            4- or 5-digit codes or Chinese names.
        street, community : str, optional
            Name or code.
        grid : str or list of str, optional
            Unit grid cell code(s).
        owner, maintainer, department : str, optional
            Unit name or unified social credit code.
        status : str or list of str, optional
            E.g. ``"破损"``.
        bbox : (minx, miny, maxx, maxy), optional
            In `bbox_crs` (default the registry's CRS, EPSG:4547).
        include_retired : bool, default False
            Include retired components.

        Returns
        -------
        geopandas.GeoDataFrame

        Raises
        ------
        KeyError
            For an unknown category or street (the message lists what is known).
        """
        frame = self.components_with_retired() if include_retired else self.components
        mask = np.ones(len(frame), dtype=bool)
        if category is not None:
            wanted = [category] if isinstance(category, str) else list(category)
            codes = [self._category_code(c) for c in wanted]
            mask &= frame["category"].isin(codes).to_numpy()
        if street is not None:
            code = self.district.street(street)["code"]
            mask &= (frame["street_code"] == code).to_numpy()
        if community is not None:
            hit = self.district.communities
            hit = hit[(hit["code"] == community) | (hit["name"] == community)]
            if hit.empty:
                raise KeyError(f"no community {community!r}; communities are: "
                               + ", ".join(self.district.communities["name"]))
            mask &= (frame["community_code"] == hit["code"].iloc[0]).to_numpy()
        for column, value in (("grid", grid), ("status", status)):
            if value is not None:
                mask &= frame[column].isin([value] if isinstance(value, str) else list(value)).to_numpy()
        for column, value in (("owner", owner), ("maintainer", maintainer), ("department", department)):
            if value is not None:
                mask &= ((frame[column] == value) | (frame[f"{column}_code"] == value)).fillna(False).to_numpy()
        if bbox is not None:
            box = shapely.box(*bbox)
            if bbox_crs is not None:
                box = gpd.GeoSeries([box], crs=bbox_crs).to_crs(settings.default_crs).iloc[0]
            inside = np.zeros(len(frame), dtype=bool)
            inside[frame.sindex.query(box, predicate="intersects")] = True
            mask &= inside
        return frame[mask]

    def _category_code(self, key: str) -> str:
        cat = self.catalog[key]
        return cat.code_2026 if self.layout == GBT47678.name else cat.code

    def stats(self, by: str = "category") -> pd.DataFrame:
        """Component counts per category, street, community, owner, maintainer, department or status.

        Returns
        -------
        pandas.DataFrame
            One row per group, largest first: ``count`` and ``share``; by category also
            ``name_zh``, ``name_en`` and ``geometry``.

        Raises
        ------
        ValueError
            For an unknown grouping.
        """
        groups = ("category", "street", "community", "owner", "maintainer", "department", "status", "grid")
        if by not in groups:
            raise ValueError(f"by={by!r} is not known; use one of {groups}.")
        counts = self.components.groupby(by, dropna=False).size().sort_values(ascending=False)
        out = counts.rename("count").to_frame()
        out["share"] = out["count"] / max(1, out["count"].sum())
        if by == "category":
            names = {k: self.catalog[k] for k in out.index if k in self.catalog}
            out.insert(0, "name_zh", [getattr(names.get(k), "name_zh", None) for k in out.index])
            out.insert(1, "name_en", [getattr(names.get(k), "name_en", None) for k in out.index])
            out.insert(2, "geometry", [getattr(names.get(k), "geometry", None) for k in out.index])
        return out

    def owner_at(self, x: float, y: float, *, crs: str = "EPSG:4326", radius: float = 10.0,
                 limit: int = 5) -> pd.DataFrame:
        """Whose is this? The components nearest a point, with their units and grid cell.

        Parameters
        ----------
        x, y : float
            The reported location (longitude/latitude for geographic CRSs).
        crs : str, default "EPSG:4326"
            CRS of `x`, `y`; ``"gcj02"`` for coordinates from Amap/Gaode.
        radius : float, default 10.0
            Search radius in metres.
        limit : int, default 5
            At most this many components, nearest first.

        Returns
        -------
        pandas.DataFrame
            ``component_id, category, category_name, name, department, owner,
            maintainer, grid, community, street, status, distance_m``; empty when nothing
            is within `radius`. ``attrs["grid"]`` is the grid cell at the point.
        """
        if crs.lower() in ("gcj02", "gcj-02"):
            lon, lat = gcj02_to_wgs84(x, y)
            x, y, crs = float(lon), float(lat), settings.web_crs
        try:
            to_local = transformer(crs, settings.default_crs)
        except CRSError as exc:
            raise ValueError(f"crs={crs!r} is not a CRS pyproj knows ({exc}); use e.g. 'EPSG:4326', "
                             "'EPSG:4490', 'EPSG:4547' or 'gcj02'.") from None
        px, py = to_local.transform(x, y)
        point = shapely.Point(px, py)
        frame = self.components
        columns = ["component_id", "category", "category_name", "name", "department", "owner",
                   "maintainer", "grid", "community", "street", "status"]
        lookup = self._derive("lookup", lambda: {c: frame[c].to_numpy(dtype=object) for c in columns}
                              | {"geometry": frame.geometry.to_numpy()})
        hits = frame.sindex.query(point, predicate="dwithin", distance=radius)
        distance = shapely.distance(lookup["geometry"][hits], point)
        order = np.argsort(distance, kind="stable")[:limit]
        out = pd.DataFrame({c: lookup[c][hits[order]] for c in columns}, dtype="str")  # no inference
        out.insert(len(columns), "distance_m", distance[order].round(2))
        cell = self.district.locate([point])
        out.attrs["grid"] = cell["grid"].iloc[0]
        out.attrs["street"] = cell["street"].iloc[0]
        return out

    # --- history ------------------------------------------------------------------------
    def batches(self) -> pd.DataFrame:
        """Every batch ever merged (the initial load is batch 1)."""
        return self._read("SELECT * FROM citygrid_batches ORDER BY batch_id")

    def history(self, component_id: str) -> pd.DataFrame:
        """Every recorded change of a component, oldest first (old ids are resolved).

        Columns: ``change_id, batch_id, source, component_id, action, field, old_value,
        new_value, changed_at``.
        """
        aliases = self._read("SELECT component_id FROM citygrid_aliases WHERE alias = ?",
                                  (component_id,))
        ident = aliases["component_id"].iloc[0] if len(aliases) else component_id
        return self._read(
            "SELECT h.change_id, h.batch_id, b.source, h.component_id, h.action, h.field, "
            "h.old_value, h.new_value, h.changed_at FROM citygrid_history h "
            "LEFT JOIN citygrid_batches b USING (batch_id) "
            "WHERE h.component_id = ? OR h.component_id = ? ORDER BY h.change_id",
            (ident, component_id))

    def as_of(self, when: str | dt.datetime | pd.Timestamp) -> gpd.GeoDataFrame:
        """The components as they were at `when` (UTC), retired ones left out.

        Parameters
        ----------
        when : str, datetime or Timestamp
            A moment; naive values are taken as UTC.
        """
        stamp = pd.Timestamp(when)
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        text = stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")
        later = self._read(
            "SELECT change_id, component_id, action, field, old_value FROM citygrid_history "
            "WHERE changed_at > ? ORDER BY change_id", (text,))
        frame = self.components_with_retired().copy()
        renamed = later[later["field"] == "component_id"].sort_values("change_id", ascending=False)
        current_to_old = {}
        for row in renamed.itertuples():
            new = next((k for k, v in current_to_old.items() if v == row.component_id), None)
            current_to_old[new or row.component_id] = row.old_value
        created = set(later.loc[later["action"] == "create", "component_id"])
        updates = later[later["field"].notna() & (later["field"] != "component_id")]
        first = updates.sort_values("change_id").drop_duplicates(["component_id", "field"])
        index = pd.Series(np.arange(len(frame)), index=frame["component_id"].to_numpy())
        for name, group in first.groupby("field"):
            pos = index.reindex(group["component_id"].to_numpy()).dropna().astype(int).to_numpy()
            values = group["old_value"].to_numpy()[index.reindex(group["component_id"].to_numpy()).notna()]
            if name == "geometry":
                frame.iloc[pos, frame.columns.get_loc("geometry")] = shapely.from_wkb(values)
            elif name in DATE_FIELDS or name in ("retired_at",):
                frame[name] = frame[name].astype("datetime64[ms]")
                frame.iloc[pos, frame.columns.get_loc(name)] = pd.to_datetime(values).astype("datetime64[ms]")
            elif name in frame.columns:
                frame.iloc[pos, frame.columns.get_loc(name)] = values
        frame = frame[~isin(frame["component_id"], list(created))]
        if current_to_old:
            frame["component_id"] = frame["component_id"].map(lambda i: current_to_old.get(i, i))
        return frame[frame["retired_at"].isna()].reset_index(drop=True)

    # --- ingest -------------------------------------------------------------------------
    def ingest(self, batch: str | Path | pd.DataFrame, *, source: str, user: str | None = None,
               dry_run: bool = False, **read_options: Any) -> IngestResult:
        """Validate a survey batch and merge it, all or nothing.

        Rows whose identifier is in the registry update it (only the fields the batch fills;
        ``change_date`` defaults to today); rows with a new identifier, or none, are new
        components (identifiers are generated per category); rows with ``action`` =
        retire/删除/注销/作废 or status 移除 retire their component. Grid cell, street and
        community left empty are filled from the location. Every change goes to history.

        Parameters
        ----------
        batch : path or frame
            The survey batch (see :func:`citygrid.io.read_batch`).
        source : str
            Where it comes from, e.g. ``"2026-W48 contractor A"``.
        user : str, optional
            Who merges it.
        dry_run : bool, default False
            Validate and plan, write nothing.
        **read_options
            Passed to :func:`~citygrid.io.read_batch`.

        Returns
        -------
        IngestResult
            ``accepted`` is False (and nothing written) when the report has errors.

        Raises
        ------
        RegistryLocked
            If another process holds the registry longer than ``timeout``.
        """
        start = dt.datetime.now()
        started = _now()
        frame = batch if isinstance(batch, gpd.GeoDataFrame) and "citygrid" in batch.attrs \
            else read_batch(batch, catalog=self.catalog, **read_options)
        frame = self._prepare(frame)
        deadline = time.monotonic() + self.timeout
        while True:  # another writer may commit between planning and writing: plan again
            try:
                result = self._merge(frame, source=source, user=user, started=started, dry_run=dry_run)
                break
            except _Stale:
                if time.monotonic() > deadline:
                    raise gpkg.RegistryLocked(f"registry {str(self.path)!r} kept changing under other writers for "
                                         f"{self.timeout:.0f} s; try again later or pass a longer timeout=.") from None
        result.seconds = (dt.datetime.now() - start).total_seconds()
        return result

    def _merge(self, frame: gpd.GeoDataFrame, *, source: str, user: str | None, started: str,
               dry_run: bool) -> IngestResult:
        """Validate, plan and write a prepared batch against the registry as it is now."""
        report = validate(frame, registry=self)
        current = self.components_with_retired()
        revision = self._cache[0]
        found = self.positions(frame["component_id"].to_numpy(dtype=object))
        known = found >= 0
        retire = (frame["action"] == "retire").fillna(False).to_numpy()
        orphan = retire & ~known
        if orphan.any():
            report = _add_issues(report, frame, orphan, "schema.bad_value",
                                 "asks to retire a component that is not in the registry")
        if not report.ok:
            return IngestResult(False, None, report=report)
        frame = frame.copy(deep=False)
        frame.attrs = {}  # read notes, which pandas would deep-copy at every step from here
        frame = self._assign_ids(frame)
        plan = _plan(frame, current, found, retire)
        result = IngestResult(True, None, created=len(plan["create"]), updated=len(plan["updated_ids"]),
                              retired=len(plan["retire"]), unchanged=plan["unchanged"], report=report,
                              new_ids=plan["create"]["component_id"].tolist())
        if not dry_run:
            result.batch_id = self._write(plan, source=source, user=user, started=started, revision=revision)
        return result

    def _prepare(self, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        frame = _to_layout(frame, self.layout, self.catalog)
        columns = ["grid", "street_code", "street", "community_code", "community"]
        empty = frame[columns].isna().to_numpy()
        rows = np.flatnonzero(empty.any(axis=1))
        if len(rows):
            located = self.district.locate(frame.geometry.to_numpy()[rows])
            for k, column in enumerate(columns):
                fill = rows[empty[rows, k]]
                frame.loc[frame.index[fill], column] = located[column].to_numpy(dtype=object)[empty[rows, k]]
        return frame

    def _assign_ids(self, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        frame = frame.copy()
        empty = frame["component_id"].isna()
        registered = self._derive("serials", lambda: max_serials(self.components_with_retired()["component_id"],
                                                                 self.admin_code))
        given = max_serials(frame["component_id"].dropna(), self.admin_code)
        used = {c: max(registered.get(c, 0), given.get(c, 0)) for c in registered.keys() | given.keys()}
        todo = frame.loc[empty, "category"]
        start = self._serial_offsets(todo.value_counts().to_dict(), used)
        offset = todo.map(lambda c: start.get(c, 0)).to_numpy(dtype=np.int64)
        serials = offset + todo.groupby(todo.to_numpy()).cumcount().to_numpy() + 1
        if len(serials) and serials.max() > SERIAL_MAX:
            full = sorted(set(todo[serials > SERIAL_MAX]))
            raise RegistryError(f"categories {full} would pass serial {SERIAL_MAX}; retire and renumber first.")
        if len(serials):
            frame.loc[empty, "component_id"] = make_ids(self.admin_code, todo.to_numpy(dtype=object), serials)
        return frame

    def _serial_offsets(self, needed: dict[str, int], used: dict[str, int]) -> dict[str, int]:
        """The serial after which each category's `needed` new identifiers start.

        Here the largest serial in use: the plan is checked against the registry's revision
        inside the write, which one writer at a time holds.
        """
        return used

    def _write(self, plan: dict, *, source: str, user: str | None, started: str, revision: int) -> int:
        now = _now()
        creates, updates, retire = plan["create"], plan["update"], plan["retire"]
        history = [  # component_id, action, field, old_value, new_value
            *zip(creates["component_id"].tolist(), repeat("create"), repeat(None), repeat(None), repeat(None)),
            *zip(updates["component_id"].tolist(), repeat("update"), updates["field"].tolist(),
                 updates["old_text"].tolist(), updates["text"].tolist()),
            *zip(retire["component_id"].tolist(), repeat("retire"), repeat("retired_at"), repeat(None),
                 repeat(now[:19])),
        ]
        with gpkg.transaction(self.path, timeout=self.timeout) as conn:
            (found,) = conn.execute("SELECT value FROM citygrid_meta WHERE key = 'revision'").fetchone()
            if int(found) != revision:
                raise _Stale()
            (batch_id,) = conn.execute("SELECT COALESCE(MAX(batch_id), 0) + 1 FROM citygrid_batches").fetchone()
            srs = gpkg.srs_ids(conn)
            stamp = _layer_time(now)
            _insert_components(conn, srs, creates.assign(version=1, updated_at=stamp, batch_id=batch_id))
            _update_components(conn, srs, updates, stamp, batch_id)
            for layer, group in retire.groupby("layer"):
                conn.executemany(f'UPDATE "{layer}" SET retired_at = ?, status = ?, version = version + 1, '
                                 "updated_at = ?, batch_id = ? WHERE component_id = ?",
                                 zip(repeat(now[:19]), group["status"].tolist(), repeat(stamp), repeat(batch_id),
                                     group["component_id"].tolist()))
            conn.executemany("INSERT INTO citygrid_history (batch_id, component_id, action, field, "
                             "old_value, new_value, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             ((batch_id, *change, now) for change in history))
            conn.execute("INSERT INTO citygrid_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'ingest')",
                         (batch_id, source, user, started, _now(), len(creates), len(plan["updated_ids"]),
                          len(retire), plan["unchanged"]))
        self._cache = None
        return int(batch_id)

    # --- validation -------------------------------------------------------------------------
    def validate(self, **options: Any) -> Report:
        """Check the whole registry and its grid (see :func:`citygrid.validate.validate_registry`)."""
        from citygrid.validate import validate_registry

        return validate_registry(self, **options)

    def allow(self, component_id: str, rule: str, note: str = "") -> None:
        """Put a known exception on the allow-list: `rule` is not reported for `component_id`.

        Raises
        ------
        ValueError
            If `rule` is not a rule code.
        """
        from citygrid.validate import RULES

        if rule not in RULES:
            raise ValueError(f"rule={rule!r} is not a rule code; codes are {sorted(RULES)}.")
        self._store_allow(component_id, rule, note)

    def _store_allow(self, component_id: str, rule: str, note: str) -> None:
        with gpkg.transaction(self.path, timeout=self.timeout) as conn:
            conn.execute("INSERT OR REPLACE INTO citygrid_allow VALUES (?, ?, ?, ?)",
                         (component_id, rule, note, _now()))

    def allowed(self) -> pd.DataFrame:
        """The allow-list: ``component_id, rule, note, added_at``."""
        return self._read("SELECT * FROM citygrid_allow ORDER BY added_at")

    # --- standard migration ---------------------------------------------------------------
    def migrate(self, to: str = GBT47678.name) -> int:
        """Move every identifier and category code to another standard, in one step.

        Old identifiers stay searchable (:meth:`history` resolves them) and each change is
        in history.

        Parameters
        ----------
        to : {"gbt47678"}
            Target layout (GB/T 47678.5-2026, 17-digit ids).

        Returns
        -------
        int
            Components migrated.

        Raises
        ------
        RegistryError
            If the registry is already in that layout or the target is not supported.
        """
        if to != GBT47678.name:
            raise RegistryError(f"to={to!r}: registries migrate from 'cjt214' to 'gbt47678' only.")
        if self.layout == to:
            raise RegistryError(f"{self.path.name} already uses the {GBT47678.standard} layout.")
        frame = self.components_with_retired()
        new_ids = migrate_ids(frame["component_id"].to_numpy(dtype=object), self.catalog)
        new_cats = self.catalog.to_2026(frame["category"].to_numpy(dtype=object))
        family = frame.geom_type.map(_FAMILY).to_numpy()
        now = _now()
        with gpkg.transaction(self.path, timeout=self.timeout) as conn:
            (batch_id,) = conn.execute("SELECT COALESCE(MAX(batch_id), 0) + 1 FROM citygrid_batches").fetchone()
            old_ids = frame["component_id"].to_numpy(dtype=object)
            for kind, layer in gpkg.LAYERS.items():
                sel = family == kind
                conn.executemany(f'UPDATE "{layer}" SET component_id = ?, category = ?, version = version + 1, '
                                 "updated_at = ?, batch_id = ? WHERE component_id = ?",
                                 zip(new_ids[sel], new_cats[sel], [_layer_time(now)] * int(sel.sum()),
                                     [batch_id] * int(sel.sum()), old_ids[sel]))
            conn.executemany("INSERT INTO citygrid_aliases VALUES (?, ?, 'cjt214')", zip(old_ids, new_ids))
            conn.executemany(
                "INSERT INTO citygrid_history (batch_id, component_id, action, field, old_value, new_value, "
                "changed_at) VALUES (?, ?, 'migrate', ?, ?, ?, ?)",
                [(batch_id, n, f, o, v, now) for n, o, v, f in
                 [*zip(new_ids, old_ids, new_ids, ["component_id"] * len(new_ids)),
                  *zip(new_ids, frame["category"].to_numpy(dtype=object), new_cats,
                       ["category"] * len(new_ids))]])
            conn.execute("UPDATE citygrid_meta SET value = ? WHERE key = 'layout'", (to,))
            conn.execute("INSERT INTO citygrid_batches VALUES (?, ?, NULL, ?, ?, 0, ?, 0, 0, 'migrate')",
                         (batch_id, f"migration to {GBT47678.standard}", now, _now(), len(frame)))
        self._cache = None
        return len(frame)

    # --- exports --------------------------------------------------------------------------
    def export(
        self,
        path: str | Path,
        *,
        department: str | None = None,
        street: str | None = None,
        category: str | None = None,
        fields: str = "citygrid",
        include_retired: bool = False,
    ) -> list[Path]:
        """Write an extract for another system: GeoPackage, Shapefile, GeoJSON, CSV or GeoParquet.

        Parameters
        ----------
        path : str or Path
            Target; its suffix chooses the format (``.gpkg .shp .geojson .csv .parquet``).
            A Shapefile holds one geometry type, so mixed extracts become
            ``name_point.shp``, ``name_line.shp`` …, each with a ``.cpg`` (UTF-8).
        department, street, category : str, optional
            Restrict the extract (department also matches owners).
        fields : {"citygrid", "cjt214", "gbt47678"}, default "citygrid"
            Column names: citygrid's own, or a standard's abbreviations (Shapefiles
            always get names of at most 10 characters).
        include_retired : bool, default False

        Returns
        -------
        list of Path
            The files written.
        """
        frame = self.query(street=street, category=category, include_retired=include_retired)
        if department is not None:
            frame = frame[((frame["department"] == department) | (frame["owner"] == department)).fillna(False)]
        path = Path(path)
        suffix = path.suffix.lower()
        short = suffix == ".shp"
        names = standard_columns(fields if fields != "citygrid" or not short else "shapefile")
        keep = list(FIELD_NAMES) + (["retired_at"] if include_retired else [])
        out = gpd.GeoDataFrame(frame[keep].rename(columns=names), geometry=frame.geometry.to_numpy(),
                               crs=frame.crs)
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".parquet":
            out.to_parquet(path)
            return [path]
        if suffix == ".csv":
            csv = pd.DataFrame(out.drop(columns="geometry"))
            csv["wkt"] = shapely.to_wkt(out.geometry.to_numpy(), rounding_precision=3)
            csv.to_csv(path, index=False, encoding="utf-8-sig")
            return [path]
        if suffix == ".geojson":
            out.to_crs(settings.web_crs).to_file(path, driver="GeoJSON", engine="pyogrio")
            return [path]
        if suffix == ".gpkg":
            written = []
            family = out.geom_type.map(_FAMILY).to_numpy()
            for kind, layer in gpkg.LAYERS.items():
                part = out[family == kind]
                if len(part):
                    _write_layer(part, path, layer, engine=self.engine)
                    written.append(layer)
            return [path]
        if suffix == ".shp":
            return _write_shapefiles(out, path)
        raise ValueError(f"cannot export to {suffix!r}; use .gpkg, .shp, .geojson, .csv or .parquet.")

    def to_parquet(self, path: str | Path) -> Path:
        """A GeoParquet snapshot of every component (retired ones included)."""
        path = Path(path)
        self.components_with_retired().to_parquet(path)
        return path


def open_registry(path: str | Path, *, engine: str = "pyogrio", timeout: float = 10.0) -> Registry:
    """Open an existing registry: a GeoPackage path, or a ``postgresql://`` URL (shared registry).

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    RegistryError
        If it is not a citygrid registry.

    Examples
    --------
    >>> open_registry("no/such/file.gpkg")
    Traceback (most recent call last):
    ...
    FileNotFoundError: registry 'no/such/file.gpkg' does not exist; create it with Registry.create(path, district=...).
    """
    if str(path).startswith(("postgresql://", "postgres://")):
        from citygrid.backends.postgis import PostgisRegistry

        return PostgisRegistry(str(path), timeout=timeout)
    return Registry(path, engine=engine, timeout=timeout)


def copy_registry(source: str | Path, target: str | Path, *, timeout: float = 10.0) -> Registry:
    """Copy a registry between a GeoPackage and PostGIS, without loss (history included).

    Parameters
    ----------
    source, target : str or Path
        A ``.gpkg`` path and a ``postgresql://`` URL, either way round. The target must
        be new: a path that does not exist, or a database without a registry.

    Returns
    -------
    Registry
        The copy, opened.
    """
    from citygrid.backends import postgis

    shared = [str(p).startswith(("postgresql://", "postgres://")) for p in (source, target)]
    if shared == [False, True]:
        postgis.copy_in(open_registry(source, timeout=timeout), str(target), timeout=timeout)
        return open_registry(str(target), timeout=timeout)
    if shared == [True, False]:
        return postgis.copy_out(str(source), target, timeout=timeout)
    raise ValueError("copy_registry copies between a GeoPackage path and a postgresql:// URL; "
                     f"got {str(source)!r} and {str(target)!r}.")


def _write_layer(frame: gpd.GeoDataFrame, path: Path, layer: str, *, engine: str, kind: str | None = None) -> None:
    """Write one layer; an empty components layer still gets its geometry type and columns."""
    geometry_type = {"point": "Point", "line": "MultiLineString", "polygon": "MultiPolygon"}.get(kind or "")
    multi = kind in ("line", "polygon") or layer in MULTI_LAYERS
    if engine == "fiona":
        if multi:
            frame = frame.set_geometry(list(gpkg.as_multi(frame.geometry.to_numpy())))
        schema = gpd.io.file.infer_schema(frame) if len(frame) else \
            {"geometry": geometry_type or "Unknown",
             "properties": {c: "str" for c in frame.columns if c != frame.geometry.name}}
        frame.to_file(path, layer=layer, driver="GPKG", engine="fiona", schema=schema)
        return
    if multi:
        frame = frame.set_geometry(list(gpkg.as_multi(frame.geometry.to_numpy())), crs=frame.crs)
    pyogrio.write_dataframe(frame, path, layer=layer, driver="GPKG", geometry_type=geometry_type or None,
                            use_arrow=True)


def _write_shapefiles(frame: gpd.GeoDataFrame, path: Path) -> list[Path]:
    """One Shapefile per geometry family, UTF-8 with .cpg, dates as DBF dates.

    Raises
    ------
    ValueError
        If a text value is longer than the 254 bytes a DBF field holds (nothing is cut).
    """
    text = [c for c in frame.columns if c != "geometry" and not pd.api.types.is_datetime64_any_dtype(frame[c])]
    for column in text:
        size = frame[column].dropna().astype(str).str.encode("utf-8").str.len()
        if (size > 254).any():
            raise ValueError(
                f"{int((size > 254).sum())} value(s) of {column!r} are longer than the 254 bytes a Shapefile "
                "field holds; export to .gpkg or .geojson instead so that nothing is cut.")
    family = frame.geom_type.map(_FAMILY).to_numpy()
    kinds = [k for k in gpkg.LAYERS if (family == k).any()]
    files = []
    for kind in kinds:
        target = path if len(kinds) == 1 else path.with_name(f"{path.stem}_{kind}.shp")
        part = frame[family == kind]
        part = part.set_geometry(list(gpkg.as_multi(part.geometry.to_numpy())) if kind != "point"
                                 else part.geometry)
        schema = {"geometry": {"point": "Point", "line": "MultiLineString", "polygon": "MultiPolygon"}[kind],
                  "properties": {c: "date" if pd.api.types.is_datetime64_any_dtype(part[c]) else "str:254"
                                 for c in part.columns if c != part.geometry.name}}
        part.to_file(target, driver="ESRI Shapefile", engine="fiona", schema=schema, encoding="UTF-8")
        files.append(target)
    return files


def _to_layout(frame: gpd.GeoDataFrame, layout: str, catalog: Catalog) -> gpd.GeoDataFrame:
    """Identifiers and category codes in the registry's layout."""
    frame = frame.copy()
    parsed = parse_ids(frame["component_id"].to_numpy(dtype=object))
    cats = frame["category"]
    if layout == GBT47678.name:
        old = (parsed["layout"] == CJT214.name).to_numpy()
        if old.any():
            frame.loc[old, "component_id"] = migrate_ids(frame.loc[old, "component_id"].to_numpy(dtype=object),
                                                         catalog)
        short = (cats.str.len() == 4).fillna(False).to_numpy()
        mapped = catalog.to_2026(cats[short].to_numpy(dtype=object))
        frame.loc[short, "category"] = np.where(pd.isna(mapped), cats[short].to_numpy(dtype=object), mapped)
    else:
        new = (parsed["layout"] == GBT47678.name).to_numpy()
        if new.any():
            old_cats = catalog.from_2026(parsed.loc[new, "category"].to_numpy(dtype=object))
            ok = ~pd.isna(old_cats)
            rewritten = parsed.loc[new, "admin_code"].to_numpy(dtype=object)[ok] + old_cats[ok].astype(object) + \
                parsed.loc[new, "serial"].astype("int64").astype(str).str.zfill(6).to_numpy(dtype=object)[ok]
            idx = np.flatnonzero(new)[ok]
            frame.iloc[idx, frame.columns.get_loc("component_id")] = rewritten
        long = (cats.str.len() == 5).fillna(False).to_numpy()
        mapped = catalog.from_2026(cats[long].to_numpy(dtype=object))
        frame.loc[long, "category"] = np.where(pd.isna(mapped), cats[long].to_numpy(dtype=object), mapped)
    return frame


def _plan(frame: gpd.GeoDataFrame, current: gpd.GeoDataFrame, found: np.ndarray, retire: np.ndarray) -> dict:
    """Split a validated batch into creates, updates (changed fields only) and retirements.

    `found` holds each batch row's position in `current` (-1: a new component).
    Returns a dict: ``create`` (frame), ``update`` (one row per changed field:
    component_id, layer, field, old, new, and old_text, text as history keeps them),
    ``updated_ids``, ``retire`` (component_id, layer, status) and ``unchanged`` (count).
    """
    known = found >= 0
    creates = frame[~known & ~retire]
    rows = frame[known & ~retire].reset_index(drop=True)
    old = current.iloc[found[known & ~retire]].reset_index(drop=True)
    touched_rows = np.concatenate([found[known & ~retire], found[retire & known]])
    layer_of = pd.Series(
        pd.Series(shapely.get_type_id(current.geometry.to_numpy()[touched_rows])).map(_TYPE_LAYER).to_numpy(),
        index=pd.Index(current["component_id"].iloc[touched_rows].to_numpy(dtype=object), dtype=object))
    layer_of = layer_of[~layer_of.index.duplicated()]
    changes = []
    compare = [f for f in FIELD_NAMES if f not in ("component_id", "change_date")]
    for f in compare:
        new_values, old_values = rows[f], old[f]
        if f in DATE_FIELDS:
            differs = new_values.notna() & (new_values != old_values).fillna(True)
        else:
            differs = new_values.notna() & (new_values.astype(object) != old_values.astype(object))
        pos = np.flatnonzero(differs.to_numpy())
        if len(pos):
            changes.append(pd.DataFrame({"pos": pos, "field": f, "old": old_values.to_numpy(dtype=object)[pos],
                                         "new": new_values.to_numpy(dtype=object)[pos]}))
    moved = np.flatnonzero(~shapely.equals_exact(old.geometry.to_numpy(), rows.geometry.to_numpy(),
                                                 tolerance=0.001))
    if len(moved):
        changes.append(pd.DataFrame({"pos": moved, "field": "geometry",
                                     "old": old.geometry.to_numpy()[moved],
                                     "new": rows.geometry.to_numpy()[moved]}))
    table = pd.concat(changes, ignore_index=True) if changes else \
        pd.DataFrame({"pos": pd.Series(dtype=int), "field": [], "old": [], "new": []})
    touched = np.unique(table["pos"].to_numpy())
    given = rows["change_date"]
    dated = pd.DataFrame({"pos": touched, "field": "change_date",
                          "old": old["change_date"].to_numpy(dtype=object)[touched],
                          "new": np.where(given.notna().to_numpy()[touched], given.to_numpy(dtype=object)[touched],
                                          pd.Timestamp(dt.date.today()))})
    dated = dated.assign(old_text=_field_text("change_date", dated["old"]),
                         text=_field_text("change_date", dated["new"]))
    dated = dated[dated["old_text"].to_numpy() != dated["text"].to_numpy()]  # None equals None here
    table = pd.concat([_with_text(table), dated], ignore_index=True)
    table["component_id"] = rows["component_id"].to_numpy(dtype=object)[table["pos"].to_numpy(dtype=int)]
    table["layer"] = layer_of.loc[table["component_id"]].to_numpy()
    gone = frame[retire]
    status = gone["status"].where(gone["status"].notna(), "移除")
    retirements = pd.DataFrame({"component_id": gone["component_id"].to_numpy(dtype=object),
                                "layer": layer_of.loc[gone["component_id"]].to_numpy(),
                                "status": status.to_numpy(dtype=object)})
    return {"create": creates, "update": table, "updated_ids": rows["component_id"].to_numpy()[touched],
            "retire": retirements, "unchanged": len(rows) - len(touched)}


def _with_text(changes: pd.DataFrame) -> pd.DataFrame:
    """`changes` with its old and new values as history text (``old_text``, ``text``)."""
    parts = [group.assign(old_text=_field_text(name, group["old"]), text=_field_text(name, group["new"]))
             for name, group in changes.groupby("field")]
    return pd.concat(parts) if parts else changes.assign(old_text=[], text=[])


def _summary_line(report: Report) -> str:
    counts = report.issues.groupby("rule").size()
    return ", ".join(f"{n} × {rule}" for rule, n in counts.items())


def _add_issues(report: Report, frame: gpd.GeoDataFrame, mask: np.ndarray, rule: str, text: str) -> Report:
    extra = gpd.GeoDataFrame({
        "rule": rule, "severity": "error", "component_id": frame.loc[mask, "component_id"].to_numpy(),
        "row": frame.loc[mask, "row"].to_numpy(), "message": text}, geometry=frame.geometry[mask].to_numpy(),
        crs=frame.crs)
    issues = pd.concat([report.issues, extra], ignore_index=True)
    return Report(gpd.GeoDataFrame(issues, geometry="geometry", crs=settings.default_crs),
                  source=report.source, checked=report.checked)

