"""One committed state of a registry, read-only: its components and what is derived from them once.

The facade (:class:`citygrid.Registry`) keeps the view of the state it read last; the engines
below it (the ingest loop of :mod:`citygrid.ingest`) take a view and never the facade.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import geopandas as gpd

from citygrid._arrays import Positions, one_chunk

__all__ = ["View"]


class View:
    """The components of one state (retired ones too), and lookups derived from them once.

    Parameters
    ----------
    state : str
        The state the components were read in.
    frame : GeoDataFrame
        Every component of that state (its text columns are joined into one chunk each, so
        that picking rows is quick).
    """

    def __init__(self, state: str, frame: gpd.GeoDataFrame) -> None:
        self.state, self.all = state, one_chunk(frame)
        self._memo: dict[str, Any] = {}

    @property
    def current(self) -> gpd.GeoDataFrame:
        """The components not retired."""
        return self.derive("current", lambda: self.all[self.all["retired_at"].isna()])

    def derive(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once for this state."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def positions(self) -> Positions:
        """Finds component ids' rows in :attr:`all` (-1: not registered)."""
        return self.derive("positions", lambda: Positions(self.all["component_id"].to_numpy(dtype=object)))
