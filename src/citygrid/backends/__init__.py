"""Where a registry keeps its data: the :class:`Store` protocol and its backends.

:class:`citygrid.Registry` holds one store and *uses* it; it never reaches past this
protocol, and writes no SQL: the store answers named reads (``read_batches()``,
``read_history(ids)`` …). Backends: :mod:`~citygrid.backends.gpkg` (one GeoPackage file,
the default), :mod:`~citygrid.backends.postgis` (a shared database many departments edit
at once) and :mod:`~citygrid.backends.dataset` (an exported GeoParquet dataset, read-only).

Each backend module says whether it can open a target (``guess_can_open``), opens it
(``open_store``), creates or fills a new registry there (``create``, ``copy_in``) and
upgrades an older one (``upgrade_store``); :func:`open_store`, :func:`create_store`,
:func:`copy_store` and :func:`upgrade_store` pick the backend, the way xarray picks a
backend entrypoint for a file.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    import geopandas as gpd
    import numpy as np
    import pandas as pd

    from citygrid.admin import District
    from citygrid.merge import Batch, Plan

__all__ = ["OUTSIDE_BATCH", "NewRegistry", "Stale", "Store", "Written", "copy_store", "create_store", "open_store",
           "upgrade_store"]

OUTSIDE_BATCH = 0
"""The ``batch_id`` a component reads with when another program wrote it without one."""


class Stale(Exception):
    """The registry's state changed between reading it and writing a plan made from it.

    Parameters
    ----------
    state : str
        The state the writer found.
    changed : GeoDataFrame, optional
        ``component_id, category, geometry`` as they are now, of every component that
        citygrid's own merges changed since the plan's state. None when that is not known
        (another program edited the layers, a migration ran …): the batch must then be
        validated and planned again from scratch.
    """

    def __init__(self, state: str, changed: gpd.GeoDataFrame | None = None) -> None:
        super().__init__(state)
        self.state, self.changed = state, changed


class NewRegistry(NamedTuple):
    """Everything a new registry is made of, checked by :meth:`citygrid.Registry.create` first."""

    district: District
    """The hierarchy (its components are not read: see `components`)."""
    components: gpd.GeoDataFrame
    """The components in the registry's columns, with ``retired_at, version, updated_at, batch_id``."""
    catalog: pd.DataFrame
    """The category catalog as a table."""
    units: pd.DataFrame
    """The units, ``name_zh`` for their names."""
    meta: dict[str, str]
    """``layout, admin_code, district_name, crs, created_at``."""
    batch: Batch
    """The first batch (kind ``create``)."""
    styles: tuple[dict[str, object], ...] = ()
    """How GIS software draws its layers (:func:`citygrid.styles.registry_styles`), for stores that keep styles."""


class Written(NamedTuple):
    """What a commit wrote."""

    batch_id: int
    """The batch's number."""
    state: str | None
    """The state the commit left the registry in, or None when other writers' commits may be in it too."""
    at: str
    """The commit's time as the layers hold it (UTC, ISO, to the millisecond)."""


class Store(Protocol):
    """What a registry needs from where it is kept.

    Attributes
    ----------
    name : str
        The registry's path or URL (without password), for messages.
    kind : str
        ``"GeoPackage"``, ``"PostGIS"`` ….
    path : Path or None
        The file or folder the registry is kept in (None for a database).
    timeout : float
        Seconds a writer waits for another one.
    engine : str
        The vector I/O engine extracts are written with (``"pyogrio"`` or ``"fiona"``).
    checks_state : bool
        Whether :meth:`write` refuses a plan made on a state that is gone (raising
        :class:`Stale`): then a merge may start from the state read last.
    read_only : str or None
        Why the store takes no writes (merges, migrations, allow-list entries), said to the
        user; None when it takes them.
    """

    @property
    def name(self) -> str:
        """The registry's path or URL (without password), for messages."""
    @property
    def kind(self) -> str:
        """``"GeoPackage"``, ``"PostGIS"`` …."""
    @property
    def path(self) -> Path | None:
        """The file or folder the registry is kept in (None for a database)."""
    @property
    def timeout(self) -> float:
        """Seconds a writer waits for another one."""
    @property
    def engine(self) -> str:
        """The vector I/O engine extracts are written with."""
    @property
    def checks_state(self) -> bool:
        """Whether :meth:`write` refuses a plan made on a state that is gone."""
    @property
    def read_only(self) -> str | None:
        """Why the store takes no writes, said to the user; None when it takes them."""

    def meta(self) -> dict[str, str]:
        """Key/value metadata: ``layout``, ``admin_code``, ``district_name``, ``created_at`` …."""

    def state(self) -> str:
        """The identity of the committed state; a new one after every commit, whoever makes it."""

    def read_components(self, state: str, columns: Sequence[str] | None = None) -> gpd.GeoDataFrame:
        """Every component of `state`, retired ones too, in canonical columns (only `columns`, when given)."""

    def read_near(self, ids: np.ndarray, geoms: np.ndarray, categories: np.ndarray,
                  reach: np.ndarray) -> gpd.GeoDataFrame | None:
        """The components named by `ids`, or of a row's category within its `reach` of its geometry.

        Retired ones too: what a batch with these identifiers, geometries and categories is
        validated against (`reach`: metres per row). None where the store has no faster way
        than :meth:`read_components`.
        """

    def hidden_near(self, geoms: np.ndarray, categories: np.ndarray, reach: np.ndarray) -> dict[int, float] | None:
        """How far the nearest current component of each row's category lies, among those the reader may not read.

        By row position (from 0), only rows with one within `reach`; None where the reader
        reads every component. The store never says which component it is.
        """

    def read_district(self) -> District:
        """The district: boundary, streets, communities, grid, roads and units."""

    def read_catalog(self) -> pd.DataFrame:
        """The registry's category catalog, one row per category."""

    def read_units(self) -> pd.DataFrame:
        """The units (departments, owners, maintainers) with their codes."""

    def read_batches(self) -> pd.DataFrame:
        """Every batch ever merged, in order (the initial load is batch 1)."""

    def read_history(self, component_ids: Sequence[str]) -> pd.DataFrame:
        """Every recorded change of the given identifiers, with its batch's source, oldest first.

        Raises :class:`~citygrid.errors.UsageError` where the store keeps no history.
        """

    def read_changes_since(self, at: str) -> pd.DataFrame:
        """The changes recorded after `at` (UTC, ``YYYY-MM-DDTHH:MM:SS.ffffff``), newest last.

        Raises :class:`~citygrid.errors.UsageError` where the store keeps no history.
        """

    def resolve_alias(self, alias: str) -> str | None:
        """The identifier a component carries now that once was `alias`, or None."""

    def read_allowed(self) -> pd.DataFrame:
        """The allow-list: ``component_id, rule, note, added_at``, oldest first."""

    def read_bookkeeping(self) -> dict[str, pd.DataFrame]:
        """Batches, history, aliases and allow-list whole, for a lossless copy."""

    def reserve_serials(self, needed: dict[str, int], used: dict[str, int]) -> dict[str, int]:
        """Per category, the serial after which `needed` new identifiers may be handed out."""

    def write(self, plan: Plan, batch: Batch, *, expected: str) -> Written:
        """Write `plan` all or nothing (under the store's write lock), planned on state `expected`.

        Raises :class:`Stale` when the registry is no longer in state `expected`, and
        :class:`~citygrid.errors.RegistryLocked` when another writer holds the lock too long.
        """

    def keep(self, state: str, frame: gpd.GeoDataFrame) -> None:
        """Keep `frame` as the components of `state` for the next open (a store may do nothing)."""

    def write_migration(self, frame: gpd.GeoDataFrame, new_ids: np.ndarray, new_cats: np.ndarray, layout: str,
                        batch: Batch) -> None:
        """Rename every component to another identifier layout, all or nothing."""

    def allow(self, component_id: str, rule: str, note: str, at: str) -> None:
        """Put a known exception on the allow-list."""

    def backup(self, dest: Path) -> Path:
        """A consistent copy of the registry at `dest`, taken while others read and write."""

    def verify(self) -> list[str]:
        """What is wrong with the stored registry itself, one line each (empty: nothing found)."""


_BACKENDS = ("citygrid.backends.postgis", "citygrid.backends.dataset", "citygrid.backends.gpkg")
"""The backends asked in turn whether they can open a target; the GeoPackage takes any other path."""


def backend_for(target: Any) -> ModuleType:
    """The backend module that keeps registries at `target` (a path or a ``postgresql://`` URL)."""
    for name in _BACKENDS:
        backend = importlib.import_module(name)
        if backend.guess_can_open(target):
            return backend
    raise AssertionError("the GeoPackage backend takes every path")  # pragma: no cover


def open_store(target: Any, *, engine: str = "pyogrio", timeout: float = 10.0) -> Store:
    """The store of the registry at `target`, by the backend that can open it.

    Raises :class:`~citygrid.errors.RegistryNotFound` when there is none, and
    :class:`~citygrid.errors.RegistryError` when `target` is not a citygrid registry.
    """
    return backend_for(target).open_store(target, engine=engine, timeout=timeout)


def create_store(target: Any, new: NewRegistry | None, *, engine: str = "pyogrio", timeout: float = 10.0,
                 overwrite: bool = False) -> Store:
    """A new registry at `target`, written all or nothing.

    Raises :class:`~citygrid.errors.RegistryExists` where one is (unless `overwrite`, for a
    file), and :class:`~citygrid.errors.UsageError` for a target that cannot be created (a
    dataset: those are exported).
    """
    return backend_for(target).create(target, new, engine=engine, timeout=timeout, overwrite=overwrite)


def upgrade_store(target: Any, *, timeout: float = 10.0) -> tuple[int, int]:
    """Bring the registry at `target` to this citygrid's schema; the schema versions before and after.

    Opening a registry never upgrades it: an older GeoPackage is read as it is and takes no
    change until upgraded, and an older PostGIS schema is refused until its admin upgrades it.
    """
    return backend_for(target).upgrade_store(target, timeout=timeout)


def copy_store(source: Store, target: Any, *, timeout: float = 10.0) -> Store:
    """Copy every table of `source` (history included) into a new registry at `target`."""
    return backend_for(target).copy_in(source, target, timeout=timeout)
