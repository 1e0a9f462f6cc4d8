"""Reading and writing one vector layer with pyogrio (Arrow) or fiona: the plumbing under stores and exports."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from citygrid._i18n import _
from citygrid._layers import LAYER_TYPES, MULTI_LAYERS, as_multi
from citygrid.errors import UsageError, require

ENGINES = ("pyogrio", "fiona")


def check_engine(engine: str) -> str:
    """`engine` if citygrid knows it.

    Raises
    ------
    UsageError
        For another engine.
    MissingDependency
        For fiona when it is not installed (the ``fiona`` extra).
    """
    if engine not in ENGINES:
        raise UsageError(_("engine={engine!r} is not known; use 'pyogrio' or 'fiona'.").format(engine=engine))
    if engine == "fiona":
        require("fiona", _("the fiona engine"), "fiona")
    return engine


@contextlib.contextmanager
def without_gc() -> Iterator[None]:
    """No cyclic garbage collection while geometries are made by the hundred thousand.

    Each shapely geometry is a tracked Python object, so making 400k of them sets off
    collections that scan everything alive again and again: half the time of a read.
    Geometries hold no references, so no cycle waits for a collection meanwhile.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_layer(path: str | Path, layer: str, *, engine: str = "pyogrio") -> gpd.GeoDataFrame:
    """Read one layer; text as pandas strings, DATE columns as ``datetime64[ms]``.

    Raises
    ------
    UsageError
        For an unknown engine.
    """
    if check_engine(engine) == "pyogrio":
        with without_gc():
            return pyogrio.read_dataframe(path, layer=layer, use_arrow=True,
                                          arrow_to_pandas_kwargs={"date_as_object": False})
    frame = gpd.read_file(path, layer=layer, engine="fiona")
    for column in frame.columns:
        if frame[column].dtype == object and column != frame.geometry.name:
            frame[column] = frame[column].astype("str")
    return frame


def write_layer(frame: gpd.GeoDataFrame, path: Path, layer: str, *, engine: str, kind: str | None = None) -> None:
    """Write one layer of a GeoPackage (district layers as multi-polygons; a components layer as its family).

    An empty components layer still gets its geometry type and columns.
    """
    geometry_type = LAYER_TYPES.get(kind or "")
    if kind in ("line", "polygon") or layer in MULTI_LAYERS:
        frame = frame.set_geometry(list(as_multi(frame.geometry.to_numpy())), crs=frame.crs)
    if check_engine(engine) == "fiona":
        properties = {c: _fiona_type(frame[c]) for c in frame.columns if c != frame.geometry.name}
        schema = gpd.io.file.infer_schema(frame) if len(frame) else {"geometry": geometry_type or "Unknown"}
        schema["properties"] = properties
        frame.to_file(path, layer=layer, driver="GPKG", engine="fiona", schema=schema)
        return
    pyogrio.write_dataframe(frame, path, layer=layer, driver="GPKG", geometry_type=geometry_type, use_arrow=True)


def write_styles(path: Path, rows: list[dict[str, object]]) -> None:
    """Write QGIS's ``layer_styles`` table (rows of :mod:`citygrid.styles`) into the GeoPackage at `path`, via GDAL.

    QGIS applies a layer's default style from it when the layer is loaded.
    """
    pyogrio.write_dataframe(pd.DataFrame(rows).assign(update_time=pd.Timestamp.now("UTC")), path,
                            layer="layer_styles")


def _fiona_type(series: pd.Series) -> str:
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    first = series.dropna().head(1).tolist()
    if first and type(first[0]).__name__ == "date":
        return "date"
    return "str"
