"""The layers a registry stores and the geometry family each component belongs to (one table each)."""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import ArrayLike

COMPONENT_LAYERS = {"point": "components_point", "line": "components_line", "polygon": "components_polygon"}
"""Layer of each geometry family."""

DISTRICT_LAYERS = ("boundary", "streets", "communities", "grid", "roads")
"""The district's layers, in the order they are written."""

MULTI_LAYERS = frozenset({"boundary", "streets", "communities", "grid"})
"""District layers stored as multi-polygons (one declared geometry type per layer)."""

LAYER_TYPES = {"point": "Point", "line": "MultiLineString", "polygon": "MultiPolygon"}
"""The geometry type each family's layer declares."""

_FAMILY_OF_TYPE_ID = np.array(["point", "line", "", "polygon", "", "line", "polygon", ""], dtype=object)
"""Family of each shapely geometry type id (0 Point … 6 MultiPolygon). A component is one point, so a
MultiPoint has none, nor have rings and collections."""


def families(geoms: ArrayLike) -> np.ndarray:
    """The geometry family (``"point"``, ``"line"``, ``"polygon"``) of each geometry; ``""`` for others.

    Examples
    --------
    >>> families([shapely.Point(0, 0), shapely.box(0, 0, 1, 1), shapely.MultiPoint([(0, 0)]), None]).tolist()
    ['point', 'polygon', '', '']
    """
    ids = shapely.get_type_id(np.asarray(geoms, dtype=object))
    out = np.full(len(ids), "", dtype=object)
    known = (ids >= 0) & (ids < len(_FAMILY_OF_TYPE_ID))
    out[known] = _FAMILY_OF_TYPE_ID[ids[known]]
    return out


def as_multi(geoms: ArrayLike) -> np.ndarray:
    """Single lines and polygons as one-part multi geometries (the layers' declared type)."""
    geoms = np.asarray(geoms, dtype=object).copy()
    kinds = shapely.get_type_id(geoms)
    for single, make in ((1, shapely.multilinestrings), (3, shapely.multipolygons)):
        pos = np.flatnonzero(kinds == single)
        if len(pos):
            geoms[pos] = make(geoms[pos], indices=np.arange(len(pos)))
    return geoms


def as_single(geoms: ArrayLike) -> np.ndarray:
    """One-part multi geometries back to single ones (as they were registered)."""
    geoms = np.asarray(geoms, dtype=object).copy()
    multi = np.isin(shapely.get_type_id(geoms), (4, 5, 6)) & (shapely.get_num_geometries(geoms) == 1)
    geoms[multi] = shapely.get_geometry(geoms[multi], 0)
    return geoms
