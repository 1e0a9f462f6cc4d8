"""The component registry: a thin facade over a :class:`~citygrid.backends.Store`.

A registry carries its district (streets, communities, grid, roads), its catalog and unit
list, the components, and the full history of every change. Components are retired, never
deleted; any past state can be read back with :meth:`Registry.as_of`. Where it is kept is
the store's business: one GeoPackage (:mod:`citygrid.backends.gpkg`, the default) or a
shared PostGIS database (:mod:`citygrid.backends.postgis`). Merge planning lives in
:mod:`citygrid.merge`, the past in :mod:`citygrid.history`, extracts in
:mod:`citygrid.exports`, identifier layouts in :mod:`citygrid.layout`.

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

import dataclasses
import datetime as dt
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from citygrid._arrays import Positions
from citygrid._i18n import _
from citygrid._vector import check_engine
from citygrid.admin import District, check_codes
from citygrid.backends import Stale, Store, copy_store, create_store, open_store
from citygrid.catalog import Catalog
from citygrid.creation import founding
from citygrid.errors import AccessDenied, NotFound, RegistryConflict, RegistryError, UsageError
from citygrid.exports import write_extract
from citygrid.history import as_of, readable
from citygrid.ingest import merge
from citygrid.layout import migration
from citygrid.lookup import OWNER_COLUMNS, owner_at
from citygrid.merge import Batch, IngestResult, utc_now
from citygrid.normalise import normalise
from citygrid.project import write_extract_project
from citygrid.query import NAMES, Filters, known, select
from citygrid.schema import CJT214, GBT47678, standard_columns
from citygrid.validation import RULES, Reference, Report
from citygrid.view import View

__all__ = ["IngestResult", "Registry", "copy_registry", "open_registry"]


def _is_url(target: object) -> bool:
    return str(target).startswith(("postgresql://", "postgres://"))


class Registry:
    """A district's component registry.

    Use :meth:`create` or :func:`open_registry`; all data frames are in EPSG:4547.

    Parameters
    ----------
    store : Store
        Where the registry is kept.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._meta = store.meta()
        catalog = store.read_catalog()
        self.catalog = Catalog.from_frame(catalog, store.name)
        self._district: District | None = None
        self._cache: View | None = None

    def __repr__(self) -> str:
        return (f"<Registry {self.name} ({self.store.kind}): {self._meta['district_name']} ({self.admin_code}), "
                f"layout {self.layout}, state {self.state[:8]}>")

    @property
    def name(self) -> str:
        """The registry's path or URL (without password)."""
        return self.store.name

    @property
    def path(self) -> Path | None:
        """The GeoPackage file (None for a database registry)."""
        return self.store.path

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
        """Create a registry from a district and its components, all or nothing.

        A GeoPackage is written beside its final name and renamed only when complete; a
        shared registry is copied into its empty PostGIS database in one transaction.

        Parameters
        ----------
        path : str or Path
            The ``.gpkg`` to create, or the ``postgresql://`` URL of a database without a registry.
        district : District
            Its hierarchy and (optionally) components.
        catalog : Catalog, optional
            Default: the shipped catalog.
        layout : {"cjt214", "gbt47678"}, default "cjt214"
            Identifier layout of the registry; components are converted to it.
        engine : {"pyogrio", "fiona"}, default "pyogrio"
            Vector I/O engine.
        overwrite : bool, default False
            Replace an existing file (a database registry is never overwritten).
        source : str, default "initial load"
            Recorded as the first batch.
        timeout : float, default 10.0
            Seconds a writer waits for another one.

        Raises
        ------
        RegistryExists
            If `path` exists and `overwrite` is False.
        RegistryError
            If the database at a URL holds a registry already, or if the components have errors
            (duplicate or malformed ids, missing or wrong geometries, unknown categories); the
            message summarises the report.
        """
        check_engine(engine)
        new = founding(district, catalog=catalog, layout=layout, source=source)
        return cls(create_store(path if _is_url(path) else Path(path), new, engine=engine, timeout=timeout,
                                overwrite=overwrite))

    # --- state --------------------------------------------------------------------------
    @property
    def layout(self) -> str:
        """Identifier layout: ``"cjt214"`` (16 digits) or ``"gbt47678"`` (17 digits)."""
        return self.store.meta()["layout"]

    @property
    def admin_code(self) -> str:
        """The district's 6-digit division code."""
        return self._meta["admin_code"]

    @property
    def state(self) -> str:
        """The identity of the registry's committed state: new after every commit, by anyone."""
        return self.store.state()

    @property
    def district(self) -> District:
        """The registry's district: boundary, streets, communities, grid, roads, units."""
        if self._district is None:  # codes name folders and query values downstream: checked as they come in
            self._district = check_codes(self.store.read_district(), source=self.name)
        return self._district

    def _loaded(self, *, latest: bool = True) -> View:
        """The components of the committed state (read once per state) and what is derived from them.

        With ``latest=False``, the state read last, even if others have committed since.
        """
        if self._cache is not None and not latest:
            return self._cache
        state = self.state
        if self._cache is None or self._cache.state != state:
            self._cache = View(state, self.store.read_components(state))
        return self._cache

    def components_with_retired(self) -> gpd.GeoDataFrame:
        """Every component ever registered, retired ones with ``retired_at`` set.

        Cached for the registry's state; any commit, by citygrid or another program such
        as QGIS, is a new state.
        """
        return self._loaded().all

    @property
    def positions(self) -> Positions:
        """Finds component ids' rows in :meth:`components_with_retired` (-1: not registered)."""
        return self._loaded().positions()

    @property
    def components(self) -> gpd.GeoDataFrame:
        """The current components (retired ones left out); cached until the registry changes."""
        return self._loaded().current

    def reference(self, columns: Sequence[str] | None = None) -> Reference:
        """The current state as validation reads it (components, district, layout, allow-list).

        With `columns`, a state not yet in memory is read in those columns only (a batch is checked
        against a few: :data:`citygrid.validation.REGISTRY_COLUMNS`) and not kept; a state in memory
        is used whole.
        """
        if columns is None:
            return self._reference(self._loaded())
        state = self.state
        if self._cache is not None and self._cache.state == state:
            return self._reference(self._cache)
        return self._reference(View(state, self.store.read_components(state, columns)))

    def _reference(self, loaded: View) -> Reference:
        return Reference(components=loaded.all, positions=loaded.positions(), district=self.district,
                         catalog=self.catalog, layout=self.layout, allowed=self.allowed(), name=self.name,
                         state=loaded.state)

    # --- queries ------------------------------------------------------------------------
    def query(  # noqa: PLR0913 - one keyword-only filter per column a user filters on
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
            Unit name (whole) or unified social credit code.
        status : str or list of str, optional
            E.g. ``"破损"`` (one of ``citygrid.STATUSES``).
        bbox : (minx, miny, maxx, maxy), optional
            In `bbox_crs` (default the registry's CRS, EPSG:4547, in metres).
        include_retired : bool, default False
            Include retired components.

        Returns
        -------
        geopandas.GeoDataFrame

        Raises
        ------
        NotFound
            For an unknown category, street, community, grid cell, status or unit: a value
            that can match nothing is an error, not an empty result (the message names
            units containing a partial name, or close matches).
        UsageError
            For a bbox in degrees without `bbox_crs`.
        """
        frame = self.components_with_retired() if include_retired else self.components
        return select(frame, Filters(category=category, street=street, community=community, grid=grid, owner=owner,
                                     maintainer=maintainer, department=department, status=status, bbox=bbox,
                                     bbox_crs=bbox_crs), district=self.district, code_of=self._category_code,
                      units=self._units)

    def _units(self, column: str) -> tuple[set[str], np.ndarray]:
        """The names and codes of a unit column (ever registered), and the names alone."""
        loaded = self._loaded()
        every = loaded.all
        return loaded.derive(f"units {column}", lambda: (
            {*every[column].dropna(), *every[f"{column}_code"].dropna()}, every[column].dropna().unique()))

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
        UsageError
            For an unknown grouping.
        """
        groups = ("category", "street", "community", "owner", "maintainer", "department", "status", "grid")
        if by not in groups:
            raise UsageError(_("--by {by!r} is not known; use one of {known}.").format(by=by, known=", ".join(groups)))
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

        Raises
        ------
        UsageError
            For a point outside the district (saying so when latitude and longitude
            look swapped), non-finite coordinates or an unknown CRS.
        """
        loaded = self._loaded()
        frame = loaded.current
        return owner_at(frame, self.district, x, y, crs=crs, radius=radius, limit=limit, columns=lambda: loaded.derive(
            "lookup", lambda: {c: frame[c].to_numpy(dtype=object) for c in OWNER_COLUMNS}))

    # --- history ------------------------------------------------------------------------
    def batches(self) -> pd.DataFrame:
        """Every batch ever merged (the initial load is batch 1)."""
        return self.store.read_batches()

    def history(self, component_id: str) -> pd.DataFrame:
        """Every recorded change of a component, oldest first (old ids are resolved).

        Columns: ``change_id, batch_id, source, component_id, action, field, old_value,
        new_value, changed_at, moved_m``. A geometry's old and new value are given as
        ``"lon, lat"`` (WGS84) and ``moved_m`` says how far an update moved it (see
        :func:`citygrid.history.readable`).
        """
        ident = self.store.resolve_alias(component_id) or component_id
        if self.positions([ident])[0] < 0:
            raise NotFound(_("no component {id!r} in the registry that you may read (current, retired or "
                             "renamed).").format(id=component_id))
        return readable(self.store.read_history(list(dict.fromkeys([ident, component_id]))))

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
        later = self.store.read_changes_since(stamp.strftime("%Y-%m-%dT%H:%M:%S.%f"))
        batches = self.store.read_batches()
        begun = batches.loc[pd.to_numeric(batches["batch_id"]) >= 1, "started_at"].dropna()
        first = begun.min() if len(begun) else None
        if first is not None and stamp < pd.to_datetime(first, utc=True).tz_localize(None):
            raise UsageError(_("as_of({when!r}) is before the registry began ({first} UTC): there is no state to "
                               "give.").format(when=when, first=str(first)[:19]))
        return as_of(self.components_with_retired(), later)

    # --- ingest -------------------------------------------------------------------------
    def ingest(self, batch: str | Path | pd.DataFrame, *, source: str, user: str | None = None,
               dry_run: bool = False, **read_options: Any) -> IngestResult:
        """Validate a survey batch and merge it, all or nothing.

        Rows whose identifier is in the registry update it (only the fields the batch fills;
        ``change_date`` defaults to today); rows with a new identifier, or none, are new
        components (identifiers are generated per category); rows with ``action`` =
        retire/删除/注销/作废 or status 移除 retire their component. Grid cell, street and
        community left empty are filled from the location. Every change goes to history.

        The batch is validated against the very state the merge is written into. If another
        writer commits in between, the batch is validated and planned again, unless only
        citygrid merges came in that touch none of its components and nothing within a
        category's duplicate tolerance of its rows (then the report would be the same; new
        identifiers are given again after theirs).

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
            If another process holds the registry's write lock longer than the timeout.
        RegistryConflict
            If other writers kept changing the registry for longer than the timeout.
        """
        start = time.monotonic()
        info = Batch(source=source, user=user)
        self._writable()
        timeout = self.store.timeout
        frame = normalise(batch, catalog=self.catalog, layout=self.layout, district=self.district, **read_options)
        while True:  # another writer may commit between reading the state and writing: start again
            try:
                result = self._merge(frame, info, dry_run=dry_run)
                break
            except Stale:
                if time.monotonic() - start > timeout:
                    raise RegistryConflict(_("registry {name!r} kept changing under other writers for {s:.0f} s; "
                                             "nothing was written. Try again later.").format(name=self.name,
                                                                                            s=timeout)) from None
        result.seconds = time.monotonic() - start
        return result

    def _merge(self, frame: gpd.GeoDataFrame, info: Batch, *, dry_run: bool) -> IngestResult:
        """Validate, plan and write a normalised batch against one state (see :func:`citygrid.ingest.merge`).

        Where the store finds components by place (PostGIS), the batch is checked against those
        it names and those of a row's category within its duplicate tolerance; else against the
        state read last (a store that checks the state on writing says what others changed).
        """
        tolerance = self.catalog.tolerance()
        cats = frame["category"].to_numpy(dtype=object)
        reach = np.array([tolerance.get(c, 0.0) for c in cats])
        near = self.store.read_near(frame["component_id"].to_numpy(dtype=object), frame.geometry.to_numpy(), cats,
                                    reach)
        loaded = self._loaded(latest=dry_run or not self.store.checks_state) if near is None else \
            View(self.state, near)
        ref = self._reference(loaded)
        hidden = self.store.hidden_near(frame.geometry.to_numpy(), cats, reach)
        if hidden:  # by batch row, as validation names rows
            rows = frame["row"].to_numpy()
            ref = dataclasses.replace(ref, hidden={int(rows[k]): d for k, d in hidden.items()})
        try:
            result, written, kept = merge(frame, info, store=self.store, loaded=loaded, reference=ref,
                                          admin_code=self.admin_code, by_place=near is not None, dry_run=dry_run)
        except Stale:
            self._cache = None  # the next try reads the latest state
            raise
        if written:
            self._cache = kept
        return result

    # --- validation -------------------------------------------------------------------------
    def validate(self, **options: Any) -> Report:
        """Check the whole registry and its grid (see :func:`citygrid.validation.validate_registry`)."""
        from citygrid.validation import validate_registry

        return validate_registry(self, **options)

    def _writable(self) -> None:
        """Refuse a write to a store that takes none, in the store's own words."""
        if self.store.read_only is not None:
            raise AccessDenied(self.store.read_only)

    def allow(self, component_id: str, rule: str, note: str = "") -> None:
        """Put a known exception on the allow-list: `rule` is not reported for `component_id`.

        Raises
        ------
        UsageError
            If `rule` is not a rule code.
        """
        if rule not in RULES:
            raise UsageError(_("rule {rule!r} is not a rule code; codes are {known}.").format(
                rule=rule, known=", ".join(sorted(RULES))))
        self._writable()
        self.store.allow(component_id, rule, note, utc_now())

    def dispatch(self, events: str | Path | pd.DataFrame, **options: Any) -> gpd.GeoDataFrame:
        """Hotline events to the component and the unit that must act (see :func:`citygrid.dispatch.dispatch`).

        Examples
        --------
        >>> result = reg.dispatch("events.csv")  # doctest: +SKIP
        """
        from citygrid.dispatch import dispatch

        return dispatch(self, events, **options)

    def backup(self, dest: str | Path) -> Path:
        """A consistent copy of the registry at `dest`, taken while others read and write.

        A GeoPackage is copied with SQLite's online backup (one committed state; written
        beside `dest` and renamed into place when whole); a PostGIS registry with ``pg_dump``.
        A restored copy keeps its own state id, so no cache of another state is ever served for it.

        Examples
        --------
        >>> reg.backup("backups/pingshan-2026-12-01.gpkg")  # doctest: +SKIP
        """
        return self.store.backup(Path(dest))

    def verify(self) -> list[str]:
        """What is wrong with the stored registry itself, one line each (empty: nothing found).

        Storage, not rules: integrity, the GeoPackage structure and spatial indexes, citygrid's
        triggers, history against batches. Rule validation of the components is :meth:`validate`.
        """
        return self.store.verify()

    def allowed(self) -> pd.DataFrame:
        """The allow-list: ``component_id, rule, note, added_at``."""
        return self.store.read_allowed()

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
            raise RegistryError(_("to={to!r}: registries migrate from 'cjt214' to 'gbt47678' only.").format(to=to))
        if self.layout == to:
            raise RegistryError(_("{name} already uses the {standard} layout.").format(
                name=self.name, standard=GBT47678.standard))
        self._writable()
        frame = self.components_with_retired()
        new_ids, new_cats = migration(frame, self.catalog)
        self.store.write_migration(frame, new_ids, new_cats, to,
                                   Batch(source=f"migration to {GBT47678.standard}", kind="migrate"))
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
            Target; its suffix chooses the format (see :func:`citygrid.exports.write_extract`).
        department, street, category : str, optional
            Restrict the extract; `department` is a unit's name or code, and matches the
            components it is the responsible department or the owner of.
        fields : {"citygrid", "cjt214", "gbt47678"}, default "citygrid"
            Column names: citygrid's own, or a standard's abbreviations.
        include_retired : bool, default False

        Returns
        -------
        list of Path
            The files written.
        """
        frame = self.query(street=street, category=category, include_retired=include_retired)
        if department is not None:
            (departments, names), (owners, owner_names) = self._units("department"), self._units("owner")
            known(NAMES["department or owner"], [department], departments | owners, hints=[*names, *owner_names])
            hit = np.zeros(len(frame), dtype=bool)
            for column in ("department", "department_code", "owner", "owner_code"):
                hit |= (frame[column] == department).fillna(False).to_numpy(dtype=bool)
            frame = frame[hit]
        files = write_extract(frame, path, fields=fields, include_retired=include_retired, engine=self.store.engine)
        if Path(path).suffix.lower() == ".gpkg":  # QGIS opens it styled; its project shows it in context
            files.append(write_extract_project(path, self.district, self.catalog, layout=self.layout,
                                               columns=standard_columns(fields),
                                               street=None if street is None else self.district.street(street)["code"],
                                               engine=self.store.engine))
        return files

    def to_parquet(self, path: str | Path) -> Path:
        """A GeoParquet snapshot of every component (retired ones included)."""
        path = Path(path)
        self.components_with_retired().to_parquet(path)
        return path


def open_registry(path: str | Path, *, engine: str = "pyogrio", timeout: float = 10.0) -> Registry:
    """Open an existing registry: a GeoPackage path, or a ``postgresql://`` URL (shared registry).

    Raises
    ------
    RegistryNotFound
        If `path` does not exist.
    RegistryError
        If it is not a citygrid registry.

    Examples
    --------
    >>> open_registry("no/such/file.gpkg")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    citygrid.errors.RegistryNotFound: registry 'no/such/file.gpkg' does not exist; create it with ...
    """
    check_engine(engine)
    return Registry(open_store(path, engine=engine, timeout=timeout))


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
    if _is_url(source) != _is_url(target):
        copy_store(open_store(source, timeout=timeout), target, timeout=timeout)
        return open_registry(target, timeout=timeout)
    raise UsageError(_("copy_registry copies between a GeoPackage path and a postgresql:// URL; got {source!r} and "
                       "{target!r}.").format(source=str(source), target=str(target)))
