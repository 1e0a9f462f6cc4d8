"""The district hierarchy: district > street (街道) > community (社区) > unit grid cell.

A district *profile* is data: an admin CSV (``level, code, name_zh, parent_code``), a
boundary file and a list of units (departments, owners, maintainers). The shipped
profile is Shenzhen's Pingshan district (坪山区, 440310). Community codes the CSV leaves
empty are assigned in file order under their street (``street code + 001, 002 …``) and
flagged ``provisional``.

Codes nest: street (9 digits) = district (6) + 3; community (12) = street + 3;
unit grid cell (15) = community + 3.

Examples
--------
>>> profile = load_profile()
>>> profile.code, profile.name, len(profile.streets), len(profile.communities)
('440310', '坪山区', 6, 23)
>>> profile.communities.iloc[0][["code", "name", "street_code"]].tolist()
['440310001001', '坪山社区', '440310001']
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from numpy.typing import ArrayLike

from citygrid import settings
from citygrid._i18n import N_, _, list_text
from citygrid._layers import COMPONENT_LAYERS, MULTI_LAYERS, as_multi, families
from citygrid._text import decode, read_csv_table
from citygrid._vector import read_layer
from citygrid.crs import geometries_gcj02_to_wgs84
from citygrid.errors import DistrictError, MissingFile, NotFound

UNIT_KINDS = ("government", "institution", "enterprise", "street_office")
CODE_FORMS = {"district": r"\d{6}", "street": r"\d{9}", "community": r"\d{12}", "grid": r"\d{13,19}"}
"""The form of each level's code (GB/T 2260 division code, GB/T 10114 street and community codes, a unit grid
cell's code extending its community's): digits of these lengths, each starting with its parent's."""


def code_problems(district: District, *, parents: bool = True) -> list[str]:
    """Codes that are not of their level's form or (if `parents`) do not extend their parent's, one line each.

    Codes become folder names and query values downstream (a dataset's partitions, Spark's
    views), so a code of another form is refused where a district comes in: ``citygrid init``,
    opening a registry and reading a dataset. A code of the right form under a parent it does
    not extend is a fault of the data (``grid.outside_parent`` finds a cell filed under another
    community), not a danger: only ``citygrid init`` asks for `parents`.

    Examples
    --------
    >>> from citygrid import synth
    >>> d = synth.make_district(seed=0, n_components=500)
    >>> code_problems(d)
    []
    >>> d.streets.loc[0, "code"] = "../../x"
    >>> code_problems(d)[0].endswith("extending their parent's code, e.g. '../../x'")
    True
    """
    problems = []
    if not re.fullmatch(CODE_FORMS["district"], str(district.code)):
        problems.append(_("the district code {code!r} is not 6 digits").format(code=str(district.code)[:40]))
    levels = (("street", district.streets, None), ("community", district.communities, "street_code"),
              ("grid", district.grid, "community_code"))
    for level, frame, parent in levels:
        codes = frame["code"].astype("string")
        up = frame[parent].astype("string") if parent else pd.Series(str(district.code), index=frame.index)
        bad = ~codes.str.fullmatch(CODE_FORMS[level]).fillna(False).astype(bool)
        if parents:
            bad |= ~pd.Series([str(c).startswith(str(p)) for c, p in zip(codes, up)], index=frame.index)
        if bad.any():
            shown = ", ".join(repr(str(c)[:40]) for c in codes[bad].head(5))
            problems.append(_("{n:,} {level} code(s) are not of the form {form} extending their parent's code, e.g. "
                              "{codes}").format(n=int(bad.sum()), level=_(_LEVELS[level]), form=CODE_FORMS[level],
                                                codes=shown))
    return problems


def check_codes(district: District, *, source: str) -> District:
    """`district` if its codes are of their forms (:func:`code_problems` without `parents`).

    Raises
    ------
    DistrictError
        Naming `source` and the first codes of the wrong form.
    """
    problems = code_problems(district, parents=False)
    if problems:
        raise DistrictError(_("{source}: {problems}; codes are digits of their level's length, each starting with "
                              "its parent's.").format(source=source, problems="; ".join(problems)))
    return district


_LEVELS = {"street": N_("street"), "community": N_("community"), "grid": N_("grid cell")}


def _package_file(name: str) -> Path:
    with resources.as_file(resources.files("citygrid") / "data" / name) as path:
        return Path(path)


@dataclass(frozen=True)
class Profile:
    """What defines a district before any component exists.

    Attributes
    ----------
    code, name : str
        6-digit division code and Chinese name of the district.
    streets : pandas.DataFrame
        Columns ``code`` (9 digits), ``name``.
    communities : pandas.DataFrame
        Columns ``code`` (12 digits), ``name``, ``street_code``, ``provisional``.
    units : pandas.DataFrame
        Departments, owners and maintainers: ``code`` (18-character unified social
        credit code), ``name``, ``level`` (city/district), ``kind``, ``maintainer``.
    boundary : shapely.Geometry
        District outline in ``settings.default_crs``.
    """

    code: str
    name: str
    streets: pd.DataFrame
    communities: pd.DataFrame
    units: pd.DataFrame
    boundary: shapely.Geometry = field(repr=False)


def _admin_table(path: Path) -> tuple[str, str, pd.DataFrame, pd.DataFrame]:
    table = read_csv_table(path, what=_("admin profile"), required=["level", "code", "name_zh", "parent_code"])
    named = _("admin profile {path!r}").format(path=str(path))
    problems = []
    districts = table[table["level"] == "district"]
    if len(districts) != 1:
        problems.append(_("needs exactly one row with level 'district', found {n}").format(n=len(districts)))
    unknown = sorted(set(table["level"]) - {"district", "street", "community"})
    if unknown:
        problems.append(_("has unknown level(s) {levels}; use district, street, community").format(
            levels=", ".join(unknown[:5])))
    if problems:
        raise DistrictError(named + _(": ") + "; ".join(problems) + _("."))
    code, name = districts.iloc[0]["code"], districts.iloc[0]["name_zh"]
    streets = table[table["level"] == "street"][["code", "name_zh"]].rename(
        columns={"name_zh": "name"}).reset_index(drop=True)
    bad_street = ~streets["code"].str.fullmatch(rf"{code}\d{{3}}")
    communities = table[table["level"] == "community"].rename(
        columns={"name_zh": "name", "parent_code": "street_code"}).reset_index(drop=True)
    orphan = ~communities["street_code"].isin(streets["code"])
    for mask, frame, problem in (
        (bad_street, streets, _("street(s) {rows} need a 9-digit code starting with {code}.")),
        (orphan, communities, _("community(s) {rows} need a parent_code naming one of the streets.")),
    ):
        if mask.any():
            rows = list_text(frame.loc[mask, "name"].head(5).tolist())
            raise DistrictError(named + _(": ") + problem.format(rows=rows, code=code))
    if streets.empty:
        raise DistrictError(_("{file} has no streets.").format(file=named))
    serial = communities.groupby("street_code").cumcount() + 1
    provisional = communities["code"] == ""
    assigned = communities["street_code"] + serial.astype(str).str.zfill(3)
    communities["code"] = communities["code"].where(~provisional, assigned)
    communities["provisional"] = provisional
    bad = ~communities["code"].str.fullmatch(r"\d{12}") | ~communities.apply(
        lambda r: r["code"].startswith(r["street_code"]), axis=1)
    dup = communities["code"].duplicated() | streets["code"].duplicated().reindex(
        communities.index, fill_value=False)
    if (bad | dup).any():
        rows = communities.loc[bad | dup, ["name", "code"]].head(5).values.tolist()
        raise DistrictError(named + _(": ") + _("community codes must be 12 unique digits extending their street's "
                                                "code; bad rows {rows}.").format(rows=rows))
    if communities.empty:
        raise DistrictError(_("{file} has no communities.").format(file=named))
    return code, name, streets, communities[["code", "name", "street_code", "provisional"]]


def read_boundary(path: str | Path, *, crs: str = "gcj02") -> shapely.Geometry:
    """Read a district outline (GeoJSON geometry, Feature or FeatureCollection).

    Parameters
    ----------
    path : str or Path
        The GeoJSON file.
    crs : str, default "gcj02"
        CRS of its coordinates: ``"gcj02"`` (Amap-derived outlines) or any CRS pyproj
        understands (e.g. ``"EPSG:4326"``).

    Returns
    -------
    shapely.Geometry
        Valid (multi)polygon in ``settings.default_crs``.

    Raises
    ------
    DistrictError
        If the file holds no polygon.

    Examples
    --------
    >>> b = read_boundary(_package_file("pingshan_boundary_gcj02.geojson"))
    >>> round(b.area / 1e6)
    164
    """
    path = Path(path)
    named = _("boundary file {path!r}").format(path=str(path))
    if not path.is_file():
        raise MissingFile(_("{file} does not exist.").format(file=named))
    text = decode(path.read_bytes(), what=named)[0]
    try:
        geom = shapely.from_geojson(text)
    except shapely.errors.GEOSException as exc:
        raise DistrictError(_("{file} is not GeoJSON: {reason}").format(file=named, reason=str(exc)[:200])) from exc
    parts = shapely.get_parts(geom)
    polygons = [g for g in parts if g.geom_type in ("Polygon", "MultiPolygon")]
    if not polygons:
        raise DistrictError(_("{file} holds no polygon (found {kind}).").format(file=named, kind=geom.geom_type))
    geom = shapely.make_valid(shapely.union_all(polygons))
    if crs.lower() in ("gcj02", "gcj-02"):
        geom, crs = geometries_gcj02_to_wgs84([geom])[0], settings.web_crs
    return gpd.GeoSeries([geom], crs=crs).to_crs(settings.default_crs).iloc[0]


def read_units(path: str | Path) -> pd.DataFrame:
    """Read a district's unit list (departments, owners, maintainers).

    Columns: ``code``, ``name_zh``, ``level``, ``kind``, ``maintainer`` (the unit that
    maintains its components by default, empty if itself).

    Raises
    ------
    DistrictError
        On duplicate names, unknown kinds or a maintainer that is not a unit.
    """
    units = read_csv_table(path, what=_("unit list"), required=["code", "name_zh", "level", "kind", "maintainer"])
    units = units.rename(columns={"name_zh": "name"})
    problems = []
    if units["name"].duplicated().any():
        problems.append(_("repeated names {names}").format(
            names=list_text(units.loc[units["name"].duplicated(), "name"].tolist()[:5])))
    if (~units["kind"].isin(UNIT_KINDS)).any():
        problems.append(_("kinds must be one of {known}").format(known=", ".join(UNIT_KINDS)))
    loose = (units["maintainer"] != "") & ~units["maintainer"].isin(units["name"])
    if loose.any():
        problems.append(_("maintainers {names} are not units").format(
            names=list_text(units.loc[loose, "maintainer"].tolist()[:5])))
    if problems:
        raise DistrictError(_("unit list {path!r}").format(path=str(path)) + _(": ") + "; ".join(problems) + _("."))
    return units[["code", "name", "level", "kind", "maintainer"]]


def load_profile(
    admin: str | Path | None = None,
    boundary: str | Path | None = None,
    units: str | Path | None = None,
    *,
    boundary_crs: str = "gcj02",
) -> Profile:
    """Load a district profile; the defaults are Pingshan's shipped files.

    Parameters
    ----------
    admin : str or Path, optional
        Admin CSV with columns ``level, code, name_zh, parent_code``.
    boundary : str or Path, optional
        District outline as GeoJSON (see :func:`read_boundary`).
    units : str or Path, optional
        Unit list CSV (see :func:`read_units`).
    boundary_crs : str, default "gcj02"
        CRS of the boundary coordinates.

    Returns
    -------
    Profile
    """
    code, name, streets, communities = _admin_table(
        Path(admin) if admin else _package_file("pingshan_admin.csv"))
    outline = read_boundary(boundary or _package_file("pingshan_boundary_gcj02.geojson"),
                            crs=boundary_crs)
    unit_list = read_units(units or _package_file("pingshan_units.csv"))
    return Profile(code, name, streets, communities, unit_list, outline)


@dataclass
class District:
    """A district with its streets, communities, unit grid, roads and components.

    All frames are in ``crs`` (``EPSG:4547`` by default).

    Attributes
    ----------
    code, name : str
        Division code and name.
    boundary : shapely.Geometry
        District outline.
    streets : geopandas.GeoDataFrame
        ``code``, ``name``, geometry.
    communities : geopandas.GeoDataFrame
        ``code``, ``name``, ``street_code``, geometry.
    grid : geopandas.GeoDataFrame
        Unit grid cells: ``code`` (15 digits), ``community_code``, ``street_code``, geometry.
    units : pandas.DataFrame
        Departments, owners and maintainers (see :func:`read_units`).
    roads : geopandas.GeoDataFrame, optional
        ``name``, ``road_class``, geometry.
    components : geopandas.GeoDataFrame, optional
        Components in citygrid's field names.
    defects : pandas.DataFrame, optional
        Ground truth of injected defects (synthetic districts): ``layer``, ``row``,
        ``component_id``, ``rule``.
    reserve : geopandas.GeoDataFrame, optional
        Synthetic components not registered, for making survey batches.
    """

    code: str
    name: str
    boundary: shapely.Geometry = field(repr=False)
    streets: gpd.GeoDataFrame = field(repr=False)
    communities: gpd.GeoDataFrame = field(repr=False)
    grid: gpd.GeoDataFrame = field(repr=False)
    units: pd.DataFrame = field(repr=False)
    roads: gpd.GeoDataFrame | None = field(default=None, repr=False)
    components: gpd.GeoDataFrame | None = field(default=None, repr=False)
    defects: pd.DataFrame | None = field(default=None, repr=False)
    reserve: gpd.GeoDataFrame | None = field(default=None, repr=False)
    crs: str = settings.default_crs

    def held(self, part: str) -> gpd.GeoDataFrame:
        """The district's ``components`` or ``reserve``, which a district read without them lacks.

        Raises
        ------
        DistrictError
            If the district holds none.
        """
        frame = getattr(self, part)
        if frame is None:
            raise DistrictError(_("district {code} holds no {part}; make it with them (citygrid.synth) or read "
                                  "it with components=True.").format(code=self.code, part=part))
        return frame

    def __repr__(self) -> str:
        n = 0 if self.components is None else len(self.components)
        return (f"<District {self.code} {self.name}: {len(self.streets)} streets, "
                f"{len(self.communities)} communities, {len(self.grid)} grid cells, "
                f"{n} components>")

    def to_file(self, path: str | Path) -> dict[str, int]:
        """Write the district to a GeoPackage, one layer per kind (opens in QGIS as is).

        Layers: ``boundary``, ``streets``, ``communities``, ``grid``, ``roads`` and the
        components split by geometry family (``components_point``, ``components_line``,
        ``components_polygon``). An existing file is replaced only once the new one is
        complete (written beside it, then renamed).

        Parameters
        ----------
        path : str or Path
            The ``.gpkg`` file.

        Returns
        -------
        dict
            Rows written per layer.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.stem}.partial{path.suffix}")
        partial.unlink(missing_ok=True)
        written = {}
        for name, frame in self.layers().items():
            if name in MULTI_LAYERS:
                frame = frame.set_geometry(list(as_multi(frame.geometry.to_numpy())), crs=frame.crs)
            pyogrio.write_dataframe(frame, partial, layer=name, driver="GPKG", use_arrow=True)
            written[name] = len(frame)
        partial.replace(path)
        return written

    @classmethod
    def from_file(cls, path: str | Path, *, units: pd.DataFrame | None = None,
                  components: bool = True, engine: str = "pyogrio") -> District:
        """Read a district written by :meth:`to_file` (or a registry's district layers).

        Parameters
        ----------
        path : str or Path
            The GeoPackage.
        units : DataFrame, optional
            The unit list; default Pingshan's.
        components : bool, default True
            Also read the components layers.
        engine : {"pyogrio", "fiona"}, default "pyogrio"
            Vector I/O engine.

        Raises
        ------
        MissingFile
            If `path` does not exist.
        DistrictError
            If a layer is missing (the message lists the layers found).
        """
        path = Path(path)
        if not path.is_file():
            raise MissingFile(_("district file {path!r} does not exist.").format(path=str(path)))
        found = {name for name, _kind in pyogrio.list_layers(path)}
        needed = {"boundary", "streets", "communities", "grid"}
        if not needed <= found:
            raise DistrictError(_("{path!r} is not a citygrid district: it lacks layers {missing} (has {found}).")
                                .format(path=str(path), missing=", ".join(sorted(needed - found)),
                                        found=", ".join(sorted(found))))
        wanted = needed | {"roads"} | (set(COMPONENT_LAYERS.values()) if components else set())
        read = {name: read_layer(path, name, engine=engine) for name in found & wanted}
        parts = [read[n] for n in COMPONENT_LAYERS.values() if n in read]
        found_components = pd.concat(parts, ignore_index=True) if parts else None
        meta = read["boundary"].iloc[0]
        return cls(code=meta["code"], name=meta["name"], boundary=meta.geometry,
                   streets=read["streets"], communities=read["communities"], grid=read["grid"],
                   units=units if units is not None else load_profile().units,
                   roads=read.get("roads"), components=found_components)

    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        """The district as layers, by name.

        ``boundary``, ``streets``, ``communities``, ``grid``, ``roads`` and, with components,
        ``components_point``, ``components_line``, ``components_polygon``.
        """
        layers = {
            "boundary": gpd.GeoDataFrame({"code": [self.code], "name": [self.name]},
                                         geometry=[self.boundary], crs=self.crs),
            "streets": self.streets, "communities": self.communities, "grid": self.grid,
        }
        if self.roads is not None:
            layers["roads"] = self.roads
        if self.components is not None:
            family = families(self.components.geometry.to_numpy())
            family[family == ""] = "point"  # nothing is left out: other kinds go where points go, as they are
            for kind, name in COMPONENT_LAYERS.items():
                layers[name] = self.components[family == kind]
        return layers

    def without_components(self) -> District:
        """The same district, without its components."""
        return District(code=self.code, name=self.name, boundary=self.boundary, streets=self.streets,
                        communities=self.communities, grid=self.grid, units=self.units, roads=self.roads)

    def street(self, key: str) -> pd.Series:
        """The street row for a 9-digit code or a Chinese name.

        Raises
        ------
        NotFound
            Naming the known streets.
        """
        hit = self.streets[(self.streets["code"] == key) | (self.streets["name"] == key)]
        if hit.empty:
            raise NotFound(_("no street {key!r} in {district}; streets are: {known}.").format(
                key=key, district=self.name, known=list_text(list(self.streets["name"]))))
        return hit.iloc[0]

    def _memo(self, name: str, frames: tuple[pd.DataFrame, ...], compute: Callable[[], Any]) -> Any:
        """``compute()`` once while `frames` stay the same objects (they may be replaced)."""
        key = tuple(id(f) for f in frames)
        cached = self.__dict__.get(name)
        if cached is None or cached[0] != key:
            cached = (key, compute())
            self.__dict__[name] = cached
        return cached[1]

    def _cell_table(self) -> dict[str, np.ndarray]:
        """Per grid cell: its code and its community's and street's codes and names."""
        def compute() -> dict[str, np.ndarray]:
            names = dict(zip(self.communities["code"], self.communities["name"]))
            names.update(zip(self.streets["code"], self.streets["name"]))
            table = {"grid": self.grid["code"].to_numpy(dtype=object)}
            for level in ("community", "street"):
                codes = self.grid[f"{level}_code"].to_numpy(dtype=object)
                table[f"{level}_code"] = codes
                table[level] = np.array([names.get(c) for c in codes], dtype=object)
            return table

        return self._memo("_cells", (self.grid, self.communities, self.streets), compute)

    def cell_parents(self, level: str) -> np.ndarray:
        """Per grid cell, the row of the street or community polygon wholly holding it (-1: none).

        From the polygons, not from the grid's attributes.

        Parameters
        ----------
        level : {"street", "community"}

        Examples
        --------
        >>> from citygrid import synth
        >>> d = synth.make_district(seed=0, n_components=1_000)
        >>> parents = d.cell_parents("street")
        >>> len(parents) == len(d.grid), bool((parents >= 0).mean() > 0.5)
        (True, True)
        """
        layer = {"street": self.streets, "community": self.communities}[level]

        def compute() -> np.ndarray:
            parent = np.full(len(self.grid), -1)
            outer, inner = self.grid.sindex.query(layer.geometry.to_numpy(), predicate="contains")
            parent[inner] = outer
            return parent

        return self._memo(f"_parents_{level}", (self.grid, layer), compute)

    def locate(self, geoms: ArrayLike | gpd.GeoSeries) -> pd.DataFrame:
        """Which grid cell, community and street each geometry lies in.

        Points are located as they are; lines and polygons by a point on their surface.
        Geometries outside the grid (or empty) get missing values.

        Parameters
        ----------
        geoms : array_like of shapely geometries or GeoSeries
            In the district's CRS.

        Returns
        -------
        pandas.DataFrame
            ``grid``, ``community_code``, ``street_code``, ``community``, ``street``;
            one row per input, in order.
        """
        arr = np.asarray(geoms.values if isinstance(geoms, gpd.GeoSeries) else geoms, dtype=object)
        probe = shapely.point_on_surface(arr)
        hit_in, hit_cell = self.grid.sindex.query(probe, predicate="intersects")
        first_in, first = np.unique(hit_in, return_index=True)
        cell = np.full(len(arr), -1)
        cell[first_in] = hit_cell[first]
        found = cell >= 0
        columns = {}
        for column, values in self._cell_table().items():
            columns[column] = np.full(len(arr), None, dtype=object)
            columns[column][found] = values[cell[found]]
        return pd.DataFrame(columns, dtype="str")  # stated, not inferred: cheap for one point
