"""Where a registry keeps its data: the :class:`Store` protocol and its backends.

:class:`citygrid.Registry` holds one store and *uses* it; it never reaches past this
protocol. Backends: :mod:`~citygrid.backends.gpkg` (one GeoPackage file, the default) and
:mod:`~citygrid.backends.postgis` (a shared database many departments edit at once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    import geopandas as gpd
    import numpy as np
    import pandas as pd

    from citygrid.admin import District
    from citygrid.merge import Batch, Plan

__all__ = ["OUTSIDE_BATCH", "Stale", "Store", "Written"]

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
    checks_state : bool
        Whether :meth:`write` refuses a plan made on a state that is gone (raising
        :class:`Stale`): then a merge may start from the state read last.
    """

    name: str
    kind: str
    checks_state: bool

    def meta(self) -> dict[str, str]:
        """Key/value metadata: ``layout``, ``admin_code``, ``district_name``, ``created_at`` …."""

    def state(self) -> str:
        """The identity of the committed state; a new one after every commit, whoever makes it."""

    def read_components(self, state: str) -> gpd.GeoDataFrame:
        """Every component of `state`, retired ones too, in canonical columns."""

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

    def read(self, sql: str, params: tuple = ()) -> pd.DataFrame:
        """A read-only query on the bookkeeping tables (history, batches, aliases, allow-list, catalog)."""

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
