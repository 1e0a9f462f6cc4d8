"""A real district in: its own boundary, streets, communities, unit grid and units, from its files.

A district's data team holds these as Shapefiles (often GBK without .cpg), GeoPackages,
FileGDB folders or GeoJSON, with Chinese or pinyin-initial headers. :func:`read_district`
reads them, maps their columns, links each community to its street and each cell to its
community where no column says so (by where they lie), and :func:`check_district` says what
is wrong with the hierarchy: codes missing or repeated, cells that do not tile their
community, communities that do not tile their street, streets that do not tile the
district. ``citygrid init`` builds a registry from them.

Examples
--------
>>> d = read_district(streets="streets.shp", communities="communities.geojson",
...                   grid="grid.gdb#cells", units="units.csv")  # doctest: +SKIP
>>> check_district(d)  # doctest: +SKIP
[]
"""

from __future__ import annotations

import unicodedata
from collections.abc import Hashable
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from citygrid import settings
from citygrid._i18n import N_, _
from citygrid._text import find_column
from citygrid.admin import District, code_problems, load_profile, read_units
from citygrid.errors import DistrictError
from citygrid.io import read_vector

if TYPE_CHECKING:
    from citygrid.registry import Registry

__all__ = ["ALIASES", "check_district", "init_registry", "read_district"]

ALIASES: dict[str, tuple[str, ...]] = {
    "code": ("code", "代码", "编码", "编号", "区划代码", "行政区划代码", "adcode"),
    "name": ("name", "名称", "name_zh", "mc"),
    "street_code": ("street_code", "街道代码", "街道编码", "所属街道代码", "jddm", "jdbm"),
    "community_code": ("community_code", "社区代码", "社区编码", "所属社区代码", "sqdm", "sqbm"),
}
"""Header names read as each field (case-insensitive), tried after a kind's own (街道名称 …)."""

_OWN: dict[str, dict[str, tuple[str, ...]]] = {
    "street": {"code": ("街道代码", "街道编码", "jddm", "jdbm"), "name": ("街道名称", "街道", "jdmc")},
    "community": {"code": ("社区代码", "社区编码", "sqdm", "sqbm"), "name": ("社区名称", "社区", "sqmc")},
    "grid": {"code": ("网格编码", "单元网格编码", "网格代码", "bgid", "wgbm", "wgdm", "grid", "grid_code"),
             "name": ()},
    "district": {"code": ("区县代码", "区代码", "qxdm"), "name": ("区县名称", "区名称", "qxmc")},
}
_KINDS = {"street": N_("street"), "community": N_("community"), "grid": N_("grid cell"), "district": N_("district"),
          "road": N_("road")}
_FIELDS = {"code": N_("code"), "name": N_("name"), "street_code": N_("street code"),
           "community_code": N_("community code")}
_LEVELS = {"error": N_("error"), "warning": N_("warning")}
_ERROR_SHARE = 0.001  # a gap or overlap over 0.1 % of the parent's area is an error; smaller ones are noted


def _column(frame: pd.DataFrame, kind: str, field: str, given: dict[str, str], path: str,
            required: bool = True) -> Hashable | None:
    if field in given:
        if given[field] not in frame.columns:
            raise DistrictError(_("{path}: no column {header!r} for the {kind} {field}; it has {columns}.").format(
                path=path, header=given[field], kind=_(_KINDS[kind]), field=_(_FIELDS[field]),
                columns=", ".join(str(c) for c in frame.columns if c != "geometry")))
        return given[field]
    columns = [c for c in frame.columns if c != frame.geometry.name]
    found = find_column(columns, (*_OWN[kind].get(field, ()), *ALIASES[field]))
    if found is None and required:
        raise DistrictError(_("{path}: which column holds the {kind} {field}? It has {columns}; name it with "
                              "--columns {key}=HEADER.").format(
            path=path, kind=_(_KINDS[kind]), field=_(_FIELDS[field]), columns=", ".join(map(str, columns)),
            key=f"{kind}.{field}"))
    return found


SIMPLIFY_M = 0.001
"""Vertices closer than a millimetre to the line through their neighbours are dropped from a district's
layers as they are read (below any survey's precision): a polygon densified to a million vertices keeps
its shape, and the tiling checks finish in seconds, not in half an hour."""


def _layer(spec: str | Path, kind: str, crs: str | None) -> gpd.GeoDataFrame:
    """A layer (``FILE`` or ``FILE#LAYER``) in the registry's CRS."""
    text = str(spec)
    path, _hash, layer = text.partition("#")
    frame, notes = read_vector(Path(path), layer=layer or None)
    if frame.crs is None:
        guess = crs or notes.get("crs_guess")
        if guess is None:
            raise DistrictError(_("{path}: the {kind} layer has no CRS (no .prj) and its coordinates fit none "
                                  "citygrid knows; give it with --crs.").format(path=path, kind=_(_KINDS[kind])))
        frame = frame.set_crs(guess)
    frame = frame[~(frame.geometry.isna() | frame.geometry.is_empty)]
    if frame.empty:
        raise DistrictError(_("{path}: the {kind} layer has no features with a geometry.").format(
            path=path, kind=_(_KINDS[kind])))
    frame = frame.to_crs(settings.default_crs)
    geoms = shapely.simplify(shapely.make_valid(frame.geometry.to_numpy()), SIMPLIFY_M, preserve_topology=True)
    return frame.set_geometry(geoms, crs=settings.default_crs)


def _text(values: pd.Series) -> pd.Series:
    """Codes as text; full-width digits (４４０３１０) read as digits, empty cells as missing.

    440310001 read as a number is still the code, not 440310001.0.
    """
    if pd.api.types.is_float_dtype(values):
        values = values.astype("Int64")
    text = values.astype("string").str.normalize("NFKC").str.strip()
    return text.where(text != "")


def _parent(children: gpd.GeoDataFrame, parents: gpd.GeoDataFrame) -> np.ndarray:
    """For each child, the code of the parent it lies in (its point on surface), else of the largest overlap."""
    at = shapely.point_on_surface(children.geometry.to_numpy())
    child, parent = parents.sindex.query(at, predicate="within")
    codes = np.full(len(children), None, dtype=object)
    codes[child] = parents["code"].to_numpy(dtype=object)[parent]
    for k in np.flatnonzero(pd.isna(codes)):  # on an edge: the parent holding most of it
        touching = parents.sindex.query(children.geometry.iloc[k], predicate="intersects")
        if len(touching):
            shared = shapely.area(shapely.intersection(parents.geometry.to_numpy()[touching],
                                                       children.geometry.iloc[k]))
            codes[k] = parents["code"].iloc[touching[np.argmax(shared)]]
    return codes


def read_district(  # noqa: PLR0913 - a keyword per file of the district, all keyword-only
        *, streets: str | Path, communities: str | Path, grid: str | Path, units: str | Path | None = None,
        boundary: str | Path | None = None, roads: str | Path | None = None, code: str | None = None,
        name: str | None = None, crs: str | None = None, columns: dict[str, str] | None = None) -> District:
    """A district from its own files, in the registry's CRS (EPSG:4547).

    Parameters
    ----------
    streets, communities, grid : path
        Polygon layers: ``FILE`` or ``FILE#LAYER`` (Shapefile, GeoPackage, FileGDB folder,
        GeoJSON …). Codes and names are found by header (代码/编码, 名称, JDDM, SQMC, BGID …).
        A community without a street code column is linked to the street it lies in; a cell
        without community and street codes likewise.
    units : path, optional
        The unit list CSV (``code, name_zh, level, kind, maintainer``); default Pingshan's.
    boundary : path, optional
        The district outline; default the union of the streets.
    roads : path, optional
        Road centre lines (``name``, ``road_class``), drawn on maps.
    code, name : str, optional
        The district's division code and name; default from the boundary's attributes, else
        the first six digits of the street codes.
    crs : str, optional
        CRS of layers without one (no .prj).
    columns : dict, optional
        Headers to use, e.g. ``{"street.code": "JDDM", "grid.community_code": "SQDM"}``.

    Raises
    ------
    DistrictError
        Naming the file and what it lacks (a layer, a column, a CRS).
    MissingFile
        If a file does not exist.
    """
    given: dict[str, dict[str, str]] = {}
    for key, header in (columns or {}).items():
        kind, _dot, field = key.partition(".")
        if kind not in _OWN or field not in ALIASES:
            raise DistrictError(_("--columns {key!r} is not KIND.FIELD with KIND one of {kinds} and FIELD one of "
                                  "{fields}.").format(key=key, kinds=", ".join(sorted(_OWN)),
                                                      fields=", ".join(sorted(ALIASES))))
        given.setdefault(kind, {})[field] = header
    layers = {"street": _layer(streets, "street", crs), "community": _layer(communities, "community", crs),
              "grid": _layer(grid, "grid", crs)}
    paths = {"street": str(streets), "community": str(communities), "grid": str(grid)}
    out = {}
    for kind, frame in layers.items():
        mine = given.get(kind, {})
        table = pd.DataFrame({"code": _text(frame[_column(frame, kind, "code", mine, paths[kind])])})
        if kind != "grid":
            table["name"] = frame[_column(frame, kind, "name", mine, paths[kind])].astype("string").str.strip()
        for field in {"community": ("street_code",), "grid": ("community_code", "street_code")}.get(kind, ()):
            found = _column(frame, kind, field, mine, paths[kind], required=False)
            table[field] = _text(frame[found]) if found else pd.NA
        out[kind] = gpd.GeoDataFrame(table, geometry=frame.geometry.to_numpy(), crs=settings.default_crs)
    streets_, communities_, grid_ = out["street"], out["community"], out["grid"]
    if communities_["street_code"].isna().all():
        communities_["street_code"] = _parent(communities_, streets_)
    if grid_["community_code"].isna().all():
        grid_["community_code"] = _parent(grid_, communities_)
    if grid_["street_code"].isna().all():
        grid_["street_code"] = grid_["community_code"].map(dict(zip(communities_["code"], communities_["street_code"])))
    outline, meta = None, {}
    if boundary is not None:
        frame = _layer(boundary, "district", crs)
        outline = shapely.union_all(frame.geometry.to_numpy())
        for field in ("code", "name"):
            found = _column(frame, "district", field, given.get("district", {}), str(boundary), required=False)
            if found is not None:
                meta[field] = str(frame[found].iloc[0]).strip()
    if outline is None:
        outline = shapely.union_all(streets_.geometry.to_numpy())
    known = streets_["code"].dropna()
    code = unicodedata.normalize("NFKC", str(code or meta.get("code") or (known.iloc[0][:6] if len(known) else "")))
    code = code.strip()
    road_frame = None
    if roads is not None:
        road_frame = _layer(roads, "road", crs)
        keep = {c: c for c in ("name", "road_class") if c in road_frame.columns}
        road_frame = gpd.GeoDataFrame(road_frame[list(keep)], geometry=road_frame.geometry.to_numpy(),
                                      crs=settings.default_crs)
    return District(code=code, name=name or meta.get("name") or code, boundary=outline,
                    streets=streets_, communities=communities_, grid=grid_,
                    units=read_units(units) if units is not None else load_profile().units, roads=road_frame)


def _tiling(children: gpd.GeoDataFrame, parents: gpd.GeoDataFrame, texts: tuple[str, str, str],
            link: str) -> list[tuple[str, str]]:
    """Where `children` do not tile their parent: gaps, parts outside, overlaps (m² and share).

    `texts` say each of the three of a parent, with ``{parent}`` and ``{amount}``.
    """
    problems = []
    for parent in parents.itertuples():
        mine = children[children[link] == parent.code].geometry.to_numpy()
        area = parent.geometry.area
        union = shapely.union_all(mine) if len(mine) else shapely.Polygon()
        gap = shapely.difference(parent.geometry, union).area
        outside = shapely.difference(union, parent.geometry).area
        overlap = float(shapely.area(mine).sum()) - union.area if len(mine) else 0.0
        name = f"{parent.code} {getattr(parent, 'name', '') or ''}".rstrip()
        for amount, says in zip((gap, outside, overlap), texts):
            if amount > 1.0:  # m²: slivers below a square metre are digitising noise
                level = "error" if amount > _ERROR_SHARE * area else "warning"
                problems.append((level, says.format(parent=name, amount=f"{amount:,.0f} m² ({amount / area:.2%})")))
    return problems


def _problems(district: District) -> list[tuple[str, str]]:
    """``(level, text)`` of each problem of the hierarchy, level ``"error"`` or ``"warning"``."""
    problems = [("error", text) for text in code_problems(district)]
    for what, frame in (("street", district.streets), ("community", district.communities),
                        ("grid", district.grid)):
        kind = _(_KINDS[what])
        if frame["code"].isna().any():
            problems.append(("error", _("{n} {kind}(s) without a code").format(
                n=int(frame["code"].isna().sum()), kind=kind)))
        repeated = frame["code"].dropna()[frame["code"].dropna().duplicated()].unique().tolist()
        if repeated:
            problems.append(("error", _("{kind} codes repeated: {codes}").format(
                kind=kind, codes=", ".join(map(str, repeated[:10])))))
    loose = ~district.communities["street_code"].isin(district.streets["code"])
    if loose.any():
        problems.append(("error", _("communities in no known street: {codes}").format(
            codes=", ".join(district.communities.loc[loose, "code"].astype(str)[:10]))))
    stray = ~district.grid["community_code"].isin(district.communities["code"])
    if stray.any():
        problems.append(("error", _("{n:,} grid cell(s) in no known community, e.g. {codes}").format(
            n=int(stray.sum()), codes=", ".join(district.grid.loc[stray, "code"].astype(str)[:5]))))
    problems += _tiling(district.grid, district.communities, (
        _("community {parent} is not covered by its grid cells: {amount}"),
        _("community {parent} has grid cells reaching outside it: {amount}"),
        _("community {parent} has grid cells overlapping each other: {amount}")), "community_code")
    problems += _tiling(district.communities, district.streets, (
        _("street {parent} is not covered by its communities: {amount}"),
        _("street {parent} has communities reaching outside it: {amount}"),
        _("street {parent} has communities overlapping each other: {amount}")), "street_code")
    whole = gpd.GeoDataFrame({"code": [district.code], "name": [district.name], "parent": [district.code]},
                             geometry=[district.boundary], crs=district.crs)
    problems += _tiling(district.streets.assign(parent=district.code), whole, (
        _("district {parent} is not covered by its streets: {amount}"),
        _("district {parent} has streets reaching outside it: {amount}"),
        _("district {parent} has streets overlapping each other: {amount}")), "parent")
    if district.units["code"].duplicated().any():
        problems.append(("error", _("unit codes repeated: {codes}").format(
            codes=", ".join(district.units.loc[district.units["code"].duplicated(), "code"][:5]))))
    return sorted(problems, key=lambda problem: problem[0] != "error")


def check_district(district: District) -> list[str]:
    """What is wrong with a district's hierarchy, one line each, errors first (empty: nothing).

    Codes present and unique; every community in a known street and every cell in a known
    community; cells tile their community, communities their street and streets the
    district, without gaps, parts outside or overlaps (over 0.1 % of the area an error,
    above 1 m² a warning); unit codes unique. Each line starts with its level, ``error:``
    or ``warning:`` (in the language in use).
    """
    return [_(_LEVELS[level]) + _(": ") + text for level, text in _problems(district)]


def init_registry(path: str | Path, *, components: str | Path | None = None, source: str = "initial load",
                  **district_files) -> tuple[Registry, list[str]]:
    """Build a registry from a district's own files: the Python twin of ``citygrid init``.

    The hierarchy is checked first (:func:`check_district`); with errors no registry is made.
    Components, when given, are then merged as the first batch with every rule of
    :func:`citygrid.validate` (rows without an identifier get one); if they have errors the
    new registry is removed again, so nothing half-made stays.

    Parameters
    ----------
    path : str or Path
        The ``.gpkg`` to create (must not exist).
    components : path, optional
        A components file in any batch format (:func:`citygrid.read_batch`).
    source : str
        Recorded as the components' batch.
    **district_files
        As for :func:`read_district`.

    Returns
    -------
    (Registry, list of str)
        The registry and the hierarchy's warnings.

    Raises
    ------
    DistrictError
        With the hierarchy's errors.
    BatchRejected
        With the components' report, when they have errors.
    """
    from citygrid.registry import Registry

    district = read_district(**district_files)
    found = _problems(district)
    errors = [text for level, text in found if level == "error"]
    if errors:
        raise DistrictError(_("the district's files have {n} error(s), so no registry was made: {errors}").format(
            n=len(errors), errors="; ".join(errors[:8]) + ("; …" if len(errors) > 8 else "")))
    problems = [_(_LEVELS[level]) + _(": ") + text for level, text in found]
    path = Path(path)
    reg = Registry.create(path, district=district, source="district")
    if components is not None:
        try:
            reg.ingest(components, source=source).raise_for_errors()
        except BaseException:
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}.snapshot")):
                leftover.unlink(missing_ok=True)
            raise
    return reg, problems
