"""Extracts of the registry for other systems: GeoPackage, Shapefile, GeoJSON, CSV, Excel, GeoParquet."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from citygrid import settings
from citygrid._i18n import _
from citygrid._layers import COMPONENT_LAYERS, LAYER_TYPES, as_multi, families
from citygrid._text import spreadsheet_safe
from citygrid._vector import write_layer
from citygrid.errors import UsageError, writing
from citygrid.schema import FIELD_NAMES, standard_columns

__all__ = ["FORMATS", "write_extract"]

FORMATS = (".gpkg", ".shp", ".geojson", ".csv", ".xlsx", ".parquet")
_XLSX_ROWS = 1_048_575  # an Excel sheet's rows, less the header


def write_extract(frame: gpd.GeoDataFrame, path: str | Path, *, fields: str = "citygrid", include_retired: bool = False,
                  engine: str = "pyogrio") -> list[Path]:
    """Write components to `path`; its suffix chooses the format.

    Parameters
    ----------
    frame : GeoDataFrame
        Components in the registry's columns.
    path : str or Path
        ``.gpkg .shp .geojson .csv .xlsx .parquet``. A Shapefile holds one geometry type, so
        mixed extracts become ``name_point.shp``, ``name_line.shp`` …, each with a ``.cpg``
        (UTF-8) and text fields as wide as their longest value. CSV and Excel carry the
        geometry as WKT in EPSG:4547 plus ``lon``/``lat`` (WGS84) of a point on it.
    fields : {"citygrid", "cjt214", "gbt47678"}, default "citygrid"
        Column names: citygrid's own, or a standard's abbreviations (Shapefiles always get
        names of at most 10 characters).
    include_retired : bool, default False
        Keep the ``retired_at`` column.
    engine : {"pyogrio", "fiona"}, default "pyogrio"

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    UsageError
        For another suffix, a Shapefile value longer than a DBF field holds, or more rows
        than an Excel sheet holds.
    OutputError
        If the file cannot be written there.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(_("cannot export to {suffix!r}; use {known}.").format(suffix=suffix, known=", ".join(FORMATS)))
    names = standard_columns(fields if fields != "citygrid" or suffix != ".shp" else "shapefile")
    keep = list(FIELD_NAMES) + (["retired_at"] if include_retired else [])
    out = gpd.GeoDataFrame(frame[keep].rename(columns=names), geometry=frame.geometry.to_numpy(), crs=frame.crs)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".parquet":
            out.to_parquet(path)
        elif suffix in (".csv", ".xlsx"):
            table = spreadsheet_safe(_table(out))
            if suffix == ".csv":
                table.to_csv(path, index=False, encoding="utf-8-sig")
            elif len(table) > _XLSX_ROWS:
                raise UsageError(_("{n:,} rows do not fit an Excel sheet ({most:,}); export to .csv or .gpkg, or "
                                   "narrow it with --street/--category.").format(n=len(table), most=_XLSX_ROWS))
            else:
                table.to_excel(path, index=False, sheet_name="components", engine="openpyxl")
        elif suffix == ".geojson":
            out.to_crs(settings.web_crs).to_file(path, driver="GeoJSON", engine="pyogrio")
        elif suffix == ".gpkg":
            family = families(out.geometry.to_numpy())
            for kind, layer in COMPONENT_LAYERS.items():
                if (family == kind).any():
                    write_layer(out[family == kind], path, layer, engine=engine, kind=kind)
        else:
            return _write_shapefiles(out, path)
        return [path]


def _table(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    """Attributes, WKT and a lon/lat point, for spreadsheets."""
    table = pd.DataFrame(frame.drop(columns="geometry"))
    for column in table.columns:
        if pd.api.types.is_datetime64_any_dtype(table[column]):
            table[column] = table[column].dt.strftime("%Y-%m-%d")
    geoms = frame.geometry.to_numpy()
    table["wkt"] = shapely.to_wkt(geoms, rounding_precision=3)
    at = gpd.GeoSeries(shapely.point_on_surface(geoms), crs=frame.crs).to_crs(settings.web_crs)
    table["lon"], table["lat"] = at.x.round(7).to_numpy(), at.y.round(7).to_numpy()  # by position: labels differ
    return table


def _write_shapefiles(frame: gpd.GeoDataFrame, path: Path) -> list[Path]:
    """One Shapefile per geometry family, UTF-8 with .cpg, dates as DBF dates."""
    text = [c for c in frame.columns if c != "geometry" and not pd.api.types.is_datetime64_any_dtype(frame[c])]
    for column in text:
        size = frame[column].dropna().astype(str).str.encode("utf-8").str.len()
        if (size > 254).any():
            raise UsageError(_("{n} value(s) of {column!r} are longer than the 254 bytes a Shapefile field holds; "
                               "export to .gpkg or .geojson instead so that nothing is cut.").format(
                n=int((size > 254).sum()), column=column))
    family = families(frame.geometry.to_numpy())
    kinds = [k for k in COMPONENT_LAYERS if (family == k).any()]
    files = []
    for kind in kinds:
        target = path if len(kinds) == 1 else path.with_name(f"{path.stem}_{kind}.shp")
        part = frame[family == kind]
        part = part.set_geometry(list(as_multi(part.geometry.to_numpy())) if kind != "point" else part.geometry)
        schema = {"geometry": LAYER_TYPES[kind],
                  "properties": {c: "date" if pd.api.types.is_datetime64_any_dtype(part[c])
                                 else f"str:{_width(part[c])}" for c in part.columns if c != part.geometry.name}}
        part.to_file(target, driver="ESRI Shapefile", engine="fiona", schema=schema, encoding="UTF-8")
        files.append(target)
    return files


def _width(values: pd.Series) -> int:
    """Bytes of the longest value in UTF-8 (a DBF field is as wide as that, 1 to 254)."""
    size = values.dropna().astype(str).str.encode("utf-8").str.len()
    return int(min(254, max(1, size.max() if len(size) else 1)))
