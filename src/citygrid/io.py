"""Reading survey batches into one canonical frame.

A batch arrives as a Shapefile (often GBK without ``.cpg``, sometimes without ``.prj``),
a GeoPackage, GeoJSON, or a CSV/Excel table with coordinate columns. :func:`read_batch`
turns any of them into a GeoDataFrame with citygrid's field names (see
:data:`citygrid.schema.FIELDS`), text decoded correctly, dates parsed and geometries in
``settings.default_crs``. Everything the reader noticed that validation must report
(how the CRS was decided, rows with swapped axes — read with their axes put right —,
values that did not parse) is kept in
``frame.attrs["citygrid"]``; the ``row`` column numbers the batch's features from 1.

Examples
--------
>>> import geopandas as gpd, shapely
>>> raw = gpd.GeoDataFrame({"OBJID": ["4403100101000001"], "OBJSTATE": ["完好"],
...                         "ORDATE": ["20190514"]},
...                        geometry=[shapely.Point(114.35, 22.70)], crs="EPSG:4326")
>>> batch = read_batch(raw, required=())
>>> batch[["component_id", "category", "status"]].iloc[0].tolist()
['4403100101000001', '0101', '完好']
>>> batch.crs.to_string(), str(batch["survey_date"].iloc[0].date())
('EPSG:4547', '2019-05-14')
"""

from __future__ import annotations

import datetime as dt
import difflib
import struct
import unicodedata
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import shapely

from citygrid import settings
from citygrid._arrays import NONE
from citygrid._coordinates import read_coordinates
from citygrid._dates import read_times
from citygrid._i18n import _
from citygrid._tables import read_table
from citygrid._text import decode, find_column, refuse_twin_headers
from citygrid._vector import check_engine
from citygrid.catalog import Catalog, load_catalog
from citygrid.crs import geometries_gcj02_to_wgs84
from citygrid.errors import BatchError, MissingFile
from citygrid.schema import DATE_FIELDS, FIELDS, REQUIRED_FIELDS, column_aliases, parse_ids

VECTOR_SUFFIXES = {".shp", ".gpkg", ".gdb", ".geojson", ".json", ".fgb", ".gml", ".kml"}
TABLE_SUFFIXES = {".csv", ".txt", ".xlsx", ".xlsm", ".xls"}

_COORDINATE_COLUMNS = [
    ("经度", "纬度"), ("LON", "LAT"), ("LNG", "LAT"), ("LONGITUDE", "LATITUDE"),
    ("X", "Y"), ("东坐标", "北坐标"), ("X坐标", "Y坐标"), ("POINT_X", "POINT_Y"),
]
_DEGREE_NAMES = {"经度", "LON", "LNG", "LONGITUDE"}
"""Coordinate columns that say they hold longitude and latitude: WGS84 unless told otherwise."""
_WKT_COLUMNS = ("WKT", "GEOMETRY", "GEOM", "几何", "SHAPE")
_RETIRE_WORDS = {"retire", "delete", "删除", "注销", "作废", "移除", "撤销"}


def read_batch(  # noqa: PLR0913 - the reading options, keyword-only
    source: str | Path | pd.DataFrame,
    *,
    layer: str | None = None,
    columns: dict[str, str] | None = None,
    crs: Any = None,
    encoding: str | None = None,
    gcj02: bool = False,
    catalog: Catalog | None = None,
    engine: str = "pyogrio",
    required: tuple[str, ...] | None = None,
) -> gpd.GeoDataFrame:
    """Read a survey batch into citygrid's canonical form.

    Parameters
    ----------
    source : str, Path, DataFrame or GeoDataFrame
        A file (``.shp .gpkg .geojson .json .fgb .parquet .csv .txt .xlsx``) or a frame.
    layer : str, optional
        Layer of a multi-layer file.
    columns : dict, optional
        The contractor's column names mapped to citygrid's field names (e.g.
        ``{"井盖编号": "component_id"}``); added to the standard abbreviations.
    crs : optional
        CRS of the coordinates when the file has none (missing ``.prj``, CSV). Without
        it the CRS is guessed from the coordinate ranges and noted for validation.
    encoding : str, optional
        Text encoding; by default ``.cpg`` is obeyed, else UTF-8 or GBK/GB18030 is
        detected from the bytes.
    gcj02 : bool, default False
        The coordinates are GCJ-02 (copied from Amap/Gaode): shift them back to WGS84.
    catalog : Catalog, optional
        Used to resolve category names and 2026 codes; default the shipped one.
    engine : {"pyogrio", "fiona"}, default "pyogrio"
        Vector I/O engine.
    required : tuple of str, optional
        Fields that must be mappable; default the registry's required fields except the
        identifier (new components get one at ingest).

    Returns
    -------
    geopandas.GeoDataFrame
        Fields of :data:`citygrid.schema.FIELDS`, then ``action`` (``"retire"`` or NA),
        ``row`` (1-based feature number), any extra columns, geometry in
        ``settings.default_crs``. ``attrs["citygrid"]`` holds what validation needs.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    BatchError
        If the file cannot be read, holds no geometry, or required fields cannot be
        mapped (the message lists them with the columns found).
    """
    parts = BatchChunks(source, size=None, layer=layer, columns=columns, crs=crs, encoding=encoding, gcj02=gcj02,
                        catalog=catalog, engine=engine, required=required)
    (frame,) = parts  # all rows in one part
    frame.attrs["citygrid"] = parts.notes
    return frame


ROW_NOTES = ("flattened_rows", "swapped_rows", "bad_values", "read_as", "metric_rows", "unknown_category_names")
"""What a reader notes row by row (lists of rows or of dicts with a ``row``, or dicts keyed on rows): the notes
of a batch read in parts are these put together, and the first part's of the rest."""


class BatchChunks:
    """A survey batch read into canonical form part by part, for batches larger than memory allows at once.

    Iterating gives canonical frames of at most `size` rows each (all rows at once when `size` is
    None), in the batch's order, each with the notes on its own rows in ``attrs["citygrid"]``;
    :attr:`notes` then holds the notes on the whole batch. A GeoPackage, Shapefile or other vector
    file is read from GDAL's Arrow stream `size` features at a time; a table, a GeoParquet file or
    a frame is read whole and handed out in parts. The parameters are those of :func:`read_batch`.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> raw = gpd.GeoDataFrame({"OBJID": ["4403100101000001", "4403100101000002", "4403100101000003"]},
    ...                        geometry=[shapely.Point(114.35, 22.70)] * 3, crs="EPSG:4326")
    >>> parts = BatchChunks(raw, size=2, required=())
    >>> [frame["row"].tolist() for frame in parts], parts.notes["crs_from"]
    ([[1, 2], [3]], 'file')
    """

    def __init__(self, source: str | Path | pd.DataFrame, *, size: int | None, **options: Any) -> None:
        self.source = source
        self.size = size
        self.options = options
        self.notes: dict[str, Any] = {}

    def __iter__(self) -> Iterator[gpd.GeoDataFrame]:
        options = dict(self.options)
        catalog = options.pop("catalog", None) or load_catalog()
        engine = options.pop("engine", "pyogrio")
        source = self.source
        start = {"source": str(source) if not isinstance(source, pd.DataFrame) else "<frame>", "encoding": None}
        streamed = not isinstance(source, pd.DataFrame) and Path(source).suffix.lower() in VECTOR_SUFFIXES \
            and engine == "pyogrio"
        if streamed:
            raws = _vector_parts(Path(source), layer=options.get("layer"), encoding=options.get("encoding"),
                                 size=self.size, notes=start)
        else:
            notes = dict(start)
            if isinstance(source, pd.DataFrame):
                raw = source.copy()
                whole = raw if isinstance(raw, gpd.GeoDataFrame) else _table_geometry(raw, notes)
            else:
                whole = _read_file(Path(source), layer=options.get("layer"), encoding=options.get("encoding"),
                                   engine=engine, notes=notes)
            raws = iter([(whole, notes)])
        self.notes = {}
        decided: tuple[Any, Any] | None = None
        for raw, notes in raws:
            frame = _map_columns(raw, options.get("columns") or {}, options.get("required"), notes)
            frame = _place(frame, crs=options.get("crs"), gcj02=options.get("gcj02", False), notes=notes,
                           decided=decided)
            decided = (notes["crs_from"], notes["crs"])
            frame = _normalise_values(frame, catalog, notes)
            if streamed:
                notes.pop("rows")
            _add_notes(self.notes, notes)
            if not streamed and self.size is not None and len(frame) > self.size:
                for at in range(0, len(frame), self.size):
                    part = frame.iloc[at:at + self.size]
                    part.attrs = {"citygrid": notes}
                    yield part
            else:
                frame.attrs["citygrid"] = notes
                yield frame


def _add_notes(into: dict[str, Any], part: dict[str, Any]) -> None:
    """Put the notes on one part of a batch into the notes on the batch (see :data:`ROW_NOTES`)."""
    for key, value in part.items():
        if key not in into:
            into[key] = type(value)(value) if isinstance(value, (list, dict)) else value
        elif key in ROW_NOTES and isinstance(value, list):
            into[key].extend(value)
        elif key in ROW_NOTES and isinstance(value, dict):
            into[key].update(value)


def read_vector(path: str | Path, *, layer: str | None = None, encoding: str | None = None,
                engine: str = "pyogrio") -> tuple[gpd.GeoDataFrame, dict]:
    """One layer of any vector file a batch may come in, read as :func:`read_batch` reads it.

    Shapefile text in GBK without a .cpg is detected; a file of one spatial layer needs no
    `layer`. Columns are kept as they are (no mapping).

    Returns
    -------
    (GeoDataFrame, dict)
        The layer, and notes: ``encoding`` and, for a layer without a CRS, ``crs_guess``
        (EPSG:4326 or EPSG:4547 from the coordinate ranges, or None).

    Raises
    ------
    MissingFile, BatchError
        As for :func:`read_batch`.
    """
    notes: dict = {}
    frame = _read_file(Path(path), layer=layer, encoding=encoding, engine=engine, notes=notes)
    if frame.crs is None:
        notes["crs_guess"] = _guess_crs(frame.geometry.to_numpy())
    return frame, notes


def table_points(frame: pd.DataFrame, *, required: bool = True,
                 notes: dict | None = None) -> tuple[gpd.GeoDataFrame, dict]:
    """Points from a table's coordinate columns (经度/纬度, lon/lat, x/y) or WKT, as :func:`read_batch` makes them.

    Parameters
    ----------
    frame : DataFrame
    required : bool, default True
        Refuse a table without coordinates (or whose coordinates are no numbers at all);
        with False its rows get no geometry instead (events may come without a place).
    notes : dict, optional
        What the table's reader noted (``rows``: the spreadsheet's row numbers).

    Returns
    -------
    (GeoDataFrame, dict)
        The rows with a geometry (None where the coordinates are not numbers) and notes:
        ``unparsed_coordinates`` maps row numbers to the text that was not read.
    """
    notes = {} if notes is None else notes
    return _table_geometry(frame, notes, required=required), notes


def _read_file(path: Path, *, layer, encoding, engine, notes) -> gpd.GeoDataFrame:
    """One layer of a file, whole."""
    suffix = _known_file(path)
    if suffix in TABLE_SUFFIXES:
        table = read_table(path, known=known_headers(), encoding=encoding, sheet=layer, notes=notes)
        notes.update(rows=table.rows, letters=table.letters, sheet=table.sheet, header_row=table.header_row,
                     notes_below=table.notes_below)
        return _table_geometry(table.frame, notes)
    if suffix == ".parquet":
        try:
            return gpd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise BatchError(_("cannot read {name!r} as GeoParquet: {reason}").format(
                name=path.name, reason=_reason(exc))) from None
    check_engine(engine)
    if engine == "pyogrio":
        ((frame, _part),) = _vector_parts(path, layer=layer, encoding=encoding, size=None, notes=notes)
        return frame
    layer, encoding = _vector_layer(path, layer, encoding, notes)
    try:
        frame = gpd.read_file(path, layer=layer, engine="fiona", **({"encoding": encoding} if encoding else {}))
    except (OSError, ValueError) as exc:
        raise BatchError(_("cannot read {name!r}: {reason}").format(name=path.name, reason=_reason(exc))) from None
    return _without_prj(path, frame)


def _known_file(path: Path) -> str:
    """The suffix of a batch file that exists and is of a kind a batch comes in."""
    if not path.exists():
        raise MissingFile(_("file {path!r} does not exist.").format(path=str(path)))
    suffix = path.suffix.lower()
    if suffix not in VECTOR_SUFFIXES | TABLE_SUFFIXES | {".parquet"}:
        raise BatchError(_("cannot read {name!r}: unknown kind of file {suffix!r}; use one of {known}.").format(
            name=path.name, suffix=suffix, known=" ".join(sorted(VECTOR_SUFFIXES | TABLE_SUFFIXES | {".parquet"}))))
    return suffix


def _vector_layer(path: Path, layer: str | None, encoding: str | None, notes: dict) -> tuple[str | None, str | None]:
    """The layer of a vector file to read (the only spatial one if not named) and its text encoding."""
    if path.suffix.lower() == ".shp":
        encoding = encoding or _shapefile_encoding(path, notes)
    notes["encoding"] = encoding or "UTF-8"
    try:
        layers = pyogrio.list_layers(path)
    except pyogrio.errors.DataSourceError as exc:
        raise BatchError(_("cannot read {name!r}: {reason}").format(name=path.name, reason=_reason(exc))) from None
    names = [str(n) for n, _kind in layers]
    if layer is None and len(names) > 1:
        spatial = [str(n) for n, kind in layers if kind is not None]
        # a citygrid extract carries the outlines that place its components beside them
        components = [n for n in spatial if n.startswith("components_")]
        if len(spatial) == 1 or len(components) == 1:
            layer = (spatial if len(spatial) == 1 else components)[0]
        else:
            raise BatchError(_("{name!r} has several layers ({layers}); choose one with --layer NAME.").format(
                name=path.name, layers=", ".join(names[:10])))
    if layer is not None and layer not in names:
        raise BatchError(_("{name!r} has no layer {layer!r}; it has {layers}.").format(
            name=path.name, layer=layer, layers=", ".join(names[:10])))
    return layer, encoding


def _vector_parts(path: Path, *, layer: str | None, encoding: str | None, size: int | None,
                  notes: dict) -> Iterator[tuple[gpd.GeoDataFrame, dict]]:
    """A vector file's layer from GDAL's Arrow stream, `size` features at a time (at least one part).

    Each part comes with notes of its own (a copy of `notes` with ``rows``, its features' numbers);
    datetimes are read as GDAL writes them in text and parsed here, so that a time keeps the
    offset the file gives it (or none).
    """
    _known_file(path)
    layer, encoding = _vector_layer(path, layer, encoding, notes)
    done = 0
    try:
        with pyogrio.open_arrow(path, layer=layer, encoding=encoding, batch_size=min(size or _STREAM, _STREAM),
                                use_pyarrow=True, datetime_as_string=True) as (meta, reader):
            stamps = [name for name, kind in zip(meta["fields"], meta["dtypes"])
                      if kind is not None and str(kind).startswith("datetime")]
            geometry = meta["geometry_name"] or "wkb_geometry"
            for table in _tables(reader, size):
                frame = _arrow_frame(table, geometry, stamps, meta["crs"])
                part = {**notes, "rows": np.arange(done + 1, done + len(frame) + 1)}
                done += len(frame)
                yield _without_prj(path, frame), part
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, pyogrio.errors.FieldError,
            pyogrio.errors.GeometryError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise BatchError(_("cannot read {name!r}: {reason}").format(name=path.name, reason=_reason(exc))) from None


_STREAM = 65_536
"""Features GDAL puts in one Arrow batch (it sets memory aside for as many as asked)."""


def _tables(reader: pa.RecordBatchReader, size: int | None) -> Iterator[pa.Table]:
    """An Arrow stream's batches as tables of `size` rows (the last one shorter; all in one if None), at least one."""
    pending, given = pa.Table.from_batches([], schema=reader.schema), 0
    for batch in reader:
        pending = pa.concat_tables([pending, pa.Table.from_batches([batch])])
        while size and pending.num_rows >= size:
            yield pending.slice(0, size)
            pending, given = pending.slice(size), given + 1
    if pending.num_rows or not given:
        yield pending


def _arrow_frame(table: pa.Table, geometry: str, stamps: list[str], crs: Any) -> gpd.GeoDataFrame:
    """A GeoDataFrame from a table of GDAL's Arrow stream: WKB into shapely in one call, datetimes parsed."""
    wkb = table.column(geometry).to_numpy(zero_copy_only=False) if geometry in table.column_names else None
    frame = table.drop_columns([geometry] if wkb is not None else []).to_pandas()
    for name in stamps:
        frame[name] = _timestamps(frame[name])
    geoms = shapely.from_wkb(wkb, on_invalid="ignore") if wkb is not None else np.full(len(frame), None)
    return gpd.GeoDataFrame(frame, geometry=geoms, crs=crs)


def _timestamps(text: pd.Series) -> pd.Series:
    """ISO 8601 text as GDAL writes datetimes: times of one offset keep it, mixed offsets become UTC.

    Text that is no such time is left as it is (the batch's date reader reports it).
    """
    for utc in (False, True):
        try:
            return pd.to_datetime(text, format="ISO8601", utc=utc)
        except (ValueError, TypeError):
            continue
    return text


def _without_prj(path: Path, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A Shapefile without its .prj has no CRS, whatever GDAL assumed."""
    if path.suffix.lower() == ".shp" and not path.with_suffix(".prj").exists() \
            and not path.with_suffix(".PRJ").exists():
        return frame.set_crs(None, allow_override=True)
    return frame


def _reason(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


def _shapefile_encoding(path: Path, notes) -> str:
    """Encoding of a Shapefile's .dbf: the .cpg if there is one, else sniffed."""
    for cpg in (path.with_suffix(".cpg"), path.with_suffix(".CPG")):
        if cpg.exists():
            name = cpg.read_text(encoding="ascii", errors="replace").strip() or "UTF-8"
            notes["encoding_from"] = ".cpg"
            return {"936": "GBK", "65001": "UTF-8"}.get(name, name)
    dbf = next((p for p in (path.with_suffix(".dbf"), path.with_suffix(".DBF")) if p.exists()), None)
    if dbf is None:
        raise BatchError(_("{name!r} has no .dbf beside it; a Shapefile needs its .shp, .shx and .dbf.").format(
            name=path.name))
    data = dbf.read_bytes()
    if len(data) < 32:
        raise BatchError(_("{name!r} is truncated ({n} bytes).").format(name=dbf.name, n=len(data)))
    header_len = struct.unpack("<H", data[8:10])[0]
    encoding = decode(data[header_len:], what=_("the text in {name!r}").format(name=dbf.name))[1]
    notes["encoding_from"] = "detected"
    return "UTF-8" if encoding == "utf-8-sig" else "GB18030"


def _given(values: pd.Series) -> np.ndarray:
    """Cells that hold something (not empty, not only spaces)."""
    return (values.notna() & (values.astype(str).str.strip() != "")).to_numpy(dtype=bool)


def row_numbers(notes: dict, n: int) -> np.ndarray:
    """The row number each of `n` rows read with `notes` has in its file: the spreadsheet's for a table, else 1 to n."""
    rows = notes.get("rows")
    return np.asarray(rows, dtype=np.int64) if rows is not None and len(rows) == n else np.arange(1, n + 1)


def _numbers(values: pd.Series, column: str, rows: np.ndarray, notes: dict) -> pd.Series:
    """Coordinates as floats (see :mod:`citygrid._coordinates`), NaN where a value is no coordinate.

    Every value written in another form than a decimal number is noted as read (``read_as``).
    """
    numbers, forms = read_coordinates(values)
    other = np.flatnonzero(~forms.isin(["", "decimal", "unreadable"]).to_numpy())
    notes.setdefault("read_as", []).extend(
        {"row": int(rows[i]), "field": column, "value": str(values.iloc[i])[:60], "read": f"{numbers.iloc[i]:.7f}",
         "how": forms.iloc[i]} for i in other)
    return numbers.where(np.isfinite(numbers.to_numpy()))


def _table_geometry(frame: pd.DataFrame, notes, *, required: bool = True) -> gpd.GeoDataFrame:
    """Build geometries from coordinate columns or a WKT column (see :func:`table_points` for `required`)."""
    columns = list(frame.columns)
    refuse_twin_headers(columns)
    rows = row_numbers(notes, len(frame))
    for xname, yname in _COORDINATE_COLUMNS:
        x, y = find_column(columns, [xname]), find_column(columns, [yname])
        if x is not None and y is not None:
            xs, ys = _numbers(frame[x], str(x), rows, notes), _numbers(frame[y], str(y), rows, notes)
            given = _given(frame[x]) | _given(frame[y])
            bad = (xs.isna() | ys.isna()).to_numpy() & given
            if required and given.any() and bad[given].all():
                shown = ", ".join(f"{frame[x].iloc[i]!s}/{frame[y].iloc[i]!s}" for i in np.flatnonzero(bad)[:3])
                raise BatchError(_("the coordinate columns {x}/{y} hold no numbers (e.g. {shown}); give decimal "
                                   "degrees or metres, e.g. 114.3512/22.7013").format(x=x, y=y, shown=shown))
            notes["coordinate_columns"] = [str(x), str(y)]
            notes["degree_columns"] = xname in _DEGREE_NAMES
            notes["unparsed_coordinates"] = {int(rows[i]): f"{frame[x].iloc[i]!s}/{frame[y].iloc[i]!s}"
                                             for i in np.flatnonzero(bad)}
            geoms = np.where(xs.notna() & ys.notna(), shapely.points(xs.to_numpy(), ys.to_numpy()), None)
            return gpd.GeoDataFrame(frame.drop(columns=[x, y]), geometry=list(geoms))
    wkt = find_column(columns, _WKT_COLUMNS)
    if wkt is not None:
        text = frame[wkt].replace("", None)
        geoms = shapely.from_wkt(text.to_numpy(dtype=object), on_invalid="ignore")
        notes["unparsed_coordinates"] = {int(rows[i]): str(text.iloc[i])
                                         for i in np.flatnonzero((text.notna() & pd.isna(geoms)).to_numpy())}
        notes["coordinate_columns"] = [str(wkt)]
        return gpd.GeoDataFrame(frame.drop(columns=[wkt]), geometry=list(geoms))
    if not required:
        return gpd.GeoDataFrame(frame, geometry=[None] * len(frame))
    raise BatchError(_("the table has no coordinates: expected a pair of columns such as {pairs}, or a WKT column; "
                       "it has {columns}.").format(pairs="经度/纬度, lon/lat, x/y",
                                                   columns=", ".join(str(c) for c in columns[:20])))


_ACTION_HEADERS = {"操作", "ACTION", "变更类型", "变更操作"}
_BOOKKEEPING_HEADERS = {"序号", "FID", "OBJECTID", "OBJECTID_1", "SHAPE_LENG", "SHAPE_LEN", "SHAPE_LENGTH",
                        "SHAPE_AREA", "LON", "LAT", "RETIRED_AT", "VERSION", "UPDATED_AT", "BATCH_ID", "ROW"}
"""Columns that hold no component data (a sequence number, a GIS's own ids and measures, the registry's
bookkeeping in its extracts): dropped without a word."""


def _header_key(header: object) -> str:
    """A header as headers are compared: full-width letters and spaces folded, upper case."""
    return unicodedata.normalize("NFKC", str(header)).strip().upper()


def understood_headers() -> dict[str, list[str]]:
    """Every header :func:`read_batch` reads, by what it reads it as.

    Headers are matched without regard to case, full-width letters or spaces around them.
    Keys are field names (:data:`citygrid.schema.FIELDS`), ``action``, ``longitude``,
    ``latitude`` and ``wkt``.

    Examples
    --------
    >>> headers = understood_headers()
    >>> "部件编号" in headers["component_id"], "经度" in headers["longitude"], "操作" in headers["action"]
    (True, True, True)
    """
    out: dict[str, list[str]] = {f.name: [] for f in FIELDS}
    for header, field in column_aliases().items():
        out[field].append(header)
    out["action"] = sorted(_ACTION_HEADERS)
    out["longitude"] = list(dict.fromkeys(x for x, _y in _COORDINATE_COLUMNS))
    out["latitude"] = list(dict.fromkeys(y for _x, y in _COORDINATE_COLUMNS))
    out["wkt"] = list(_WKT_COLUMNS)
    return out


def known_headers() -> set[str]:
    """Every header citygrid reads, as :func:`_header_key` gives them."""
    return {_header_key(h) for headers in understood_headers().values() for h in headers}


def _nearest_header(name: str, aliases: dict[str, str]) -> tuple[str, str] | None:
    """The known header closest to `name` and its field, or None."""
    close = difflib.get_close_matches(_header_key(name), list(aliases), n=1, cutoff=0.5)
    return (close[0], aliases[close[0]]) if close else None


def _map_columns(raw: gpd.GeoDataFrame, columns: dict[str, str], required, notes) -> gpd.GeoDataFrame:
    aliases = column_aliases()
    known = {f.name for f in FIELDS} | {"action"}
    bad_targets = sorted(set(columns.values()) - known)
    if bad_targets:
        raise BatchError(_("--columns maps onto unknown field(s) {bad}; fields are {known}.").format(
            bad=", ".join(bad_targets), known=", ".join(sorted(known))))
    rename: dict[str, str] = {}
    taken: set[str] = set()
    unknown: list[str] = []
    geometry_name = raw.geometry.name if raw._geometry_column_name in raw.columns else None
    for col in raw.columns:
        if col == geometry_name:
            continue
        target = columns.get(str(col)) or aliases.get(_header_key(col))
        if target is None and _header_key(col) in _ACTION_HEADERS:
            target = "action"
        if target and target not in taken:
            rename[col] = target
            taken.add(target)
        elif not target and not str(col).startswith("_") and _header_key(col) not in _BOOKKEEPING_HEADERS:
            unknown.append(str(col))
    frame = raw.rename(columns=rename)
    notes["unknown_columns"] = [(name, _nearest_header(name, aliases)) for name in unknown]
    letters = notes.get("letters") or {}
    notes["letters"] = {rename.get(k, k): v for k, v in letters.items()}  # by field, once mapped
    if geometry_name is None or frame.geometry.isna().all() and len(frame) and geometry_name is None:
        raise BatchError(_("the batch has no geometry column."))
    needed = REQUIRED_FIELDS if required is None else required
    needed = [f for f in needed if f != "component_id"] if required is None else list(needed)
    have = set(frame.columns)
    missing = [f for f in needed if f not in have
               and not (f == "category" and have & {"category_name", "component_id"})]
    if missing:
        labels = {f.name: f"{f.name} ({'/'.join(a for a in (f.cjt214, f.gbt47678) if a)})" for f in FIELDS}
        raise BatchError(_("cannot map required field(s) {fields}; the batch has columns {columns}. Map them with "
                           "--columns 'FIELD=HEADER' (Python: columns={{'HEADER': 'field'}}); citygrid headers lists "
                           "the headers it reads.").format(
            fields=", ".join(labels.get(f, f) for f in missing),
            columns=", ".join([str(c) for c in raw.columns if c != geometry_name][:25])))
    notes["column_map"] = {str(k): v for k, v in rename.items()}
    return frame


def _place(frame: gpd.GeoDataFrame, *, crs, gcj02: bool, notes,
           decided: tuple[Any, Any] | None = None) -> gpd.GeoDataFrame:
    """Decide the CRS, flag swapped axes, undo GCJ-02 and reproject.

    `decided` is ``(crs_from, crs)`` as decided on an earlier part of the batch: taken as it is.
    """
    frame = frame.reset_index(drop=True)
    frame["row"] = row_numbers(notes, len(frame))
    geoms = frame.geometry.to_numpy()
    flattened = shapely.has_z(geoms) | shapely.has_m(geoms)
    notes["flattened_rows"] = frame.loc[flattened, "row"].tolist()
    frame = frame.set_geometry(shapely.force_2d(geoms), crs=frame.crs)
    guess = _guess_crs(frame.geometry.to_numpy()) if decided is None else None
    if decided is not None:
        notes["crs_from"], source_crs = decided
    elif frame.crs is not None:
        notes["crs_from"], source_crs = "file", frame.crs
    elif crs is not None:
        notes["crs_from"], source_crs = "given", crs
        _check_given_crs(crs, guess)
    elif notes.get("degree_columns") and guess == settings.web_crs:  # 经度/纬度: WGS84 unless said otherwise
        notes["crs_from"], source_crs = "columns", settings.web_crs
    else:
        source_crs = guess
        notes["crs_from"] = "detected" if source_crs else "none"
    if source_crs is None:
        raise BatchError(_("the batch has no CRS and its coordinates fit none of EPSG:4326/4490 (degrees) or "
                           "EPSG:4547 (metres, CM 114°E); give it with --crs EPSG:…"))
    frame = frame.set_crs(source_crs, allow_override=True)
    notes["crs"] = frame.crs.to_string()
    if frame.crs.is_geographic:
        frame = _without_metres(frame, notes)
    notes["swapped_rows"] = []
    if frame.crs.is_geographic:
        x, y = _centres(frame.geometry.to_numpy())
        swapped = (x >= 3) & (x <= 54) & (y >= 73) & (y <= 136)
        notes["swapped_rows"] = frame.loc[swapped, "row"].tolist()
        if swapped.any():  # read where they are; crs.axis_swapped reports them
            geoms = frame.geometry.to_numpy().copy()
            geoms[swapped] = shapely.transform(geoms[swapped], lambda c: c[:, ::-1])
            frame = frame.set_geometry(list(geoms), crs=frame.crs)
        if gcj02:
            frame = frame.set_geometry(list(geometries_gcj02_to_wgs84(frame.geometry.to_numpy())))
            notes["gcj02_converted"] = True
    elif gcj02:
        raise BatchError(_("--gcj02 needs longitude/latitude coordinates; this batch is in {crs}.").format(
            crs=notes["crs"]))
    with warnings.catch_warnings():  # pyproj's own warnings never reach the user: the rules say what is wrong
        warnings.simplefilter("ignore")
        return frame.to_crs(settings.default_crs)


def _metric_crs(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The CGCS2000 Gauss-Krüger CRS each pair of metres fits (EPSG:4547, or 4526 with the zone in front), or ""."""
    north = (y >= 2_000_000) & (y <= 6_000_000)
    return np.select([north & (x >= 300_000) & (x <= 700_000), north & (x >= 38_300_000) & (x <= 38_700_000)],
                     ["EPSG:4547", "EPSG:4526"], "")


def _without_metres(frame: gpd.GeoDataFrame, notes: dict) -> gpd.GeoDataFrame:
    """Rows of a longitude/latitude batch that hold Gauss-Krüger metres: no geometry, and the CRS they fit noted."""
    x, y = _centres(frame.geometry.to_numpy())
    fits = _metric_crs(x, y)
    rows = np.flatnonzero(fits != "")
    if not len(rows):
        return frame
    notes["metric_rows"] = {int(frame["row"].iloc[i]): (f"{x[i]:.2f}/{y[i]:.2f}", str(fits[i])) for i in rows}
    geoms = frame.geometry.to_numpy().copy()
    geoms[rows] = None
    return frame.set_geometry(list(geoms), crs=frame.crs)


def _check_given_crs(crs: Any, guess: str | None) -> None:
    """Refuse a --crs the coordinates cannot be in, naming the one they fit."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        given = CRS.from_user_input(crs)
    except CRSError:
        raise BatchError(_("--crs {crs!r} is not a CRS pyproj knows; use e.g. 'EPSG:4326', 'EPSG:4490' or "
                           "'EPSG:4547'.").format(crs=str(crs))) from None
    degrees = guess in (settings.web_crs, settings.geographic_crs)
    if guess is not None and given.is_geographic != degrees:
        raise BatchError(_("the coordinates do not fit --crs {crs}: they are {kind}; they fit {guess}.").format(
            crs=str(crs), kind=_("longitude/latitude in degrees") if degrees else _("metres"), guess=guess))


def _centres(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    bounds = shapely.bounds(geoms)
    return bounds[:, 0] / 2 + bounds[:, 2] / 2, bounds[:, 1] / 2 + bounds[:, 3] / 2  # no overflow near 1e308


def _guess_crs(geoms: np.ndarray) -> str | None:
    x, y = _centres(geoms)
    ok = np.isfinite(x)
    if not ok.any():
        return None
    x, y = x[ok], y[ok]
    lonlat = ((x >= 73) & (x <= 136) & (y >= 3) & (y <= 54)) | ((y >= 73) & (y <= 136) & (x >= 3) & (x <= 54))
    if lonlat.mean() > 0.5:
        return settings.web_crs
    fits = _metric_crs(x, y)
    for name in ("EPSG:4547", "EPSG:4526"):
        if (fits == name).mean() > 0.5:
            return name
    return None


_CODE_FIELDS = ("component_id", "category", "grid", "street_code", "community_code", "department_code",
                "owner_code", "maintainer_code")
"""Fields of codes: full-width digits, letters and spaces read as ASCII (NFKC), spaces around dropped; never in free
text. A space inside a code is left for ``id.malformed`` to name: it may be a typo of another kind."""
_LISTED_FIELDS = ("department", "owner", "maintainer", "street", "community", "status", "category_name")
"""Fields matched against a list: spaces before and after (ASCII and ideographic) dropped."""


def _note_changed(before: pd.Series, after: pd.Series, name: str, how: pd.Series, rows: pd.Series,
                  notes: dict) -> None:
    """Note every value of a field that was read into another form, and `how` (``schema.read_as`` says them)."""
    both = before.notna() & after.notna()
    changed = (both & (before.where(both, "") != after.where(both, ""))).to_numpy(dtype=bool)
    notes.setdefault("read_as", []).extend(
        {"row": int(rows.iloc[i]), "field": name, "value": str(before.iloc[i])[:60], "read": str(after.iloc[i]),
         "how": how.iloc[i]} for i in np.flatnonzero(changed))


def _tidy(frame: gpd.GeoDataFrame, notes: dict) -> None:
    """Codes in ASCII, codes and listed names without spaces around them; each change noted."""
    for name in _CODE_FIELDS + _LISTED_FIELDS:
        if name in frame.columns:
            raw = frame[name].astype("str")
            trimmed = raw.str.strip()
            tidy = trimmed.str.normalize("NFKC").str.strip() if name in _CODE_FIELDS else trimmed
            how = pd.Series(np.where((tidy != trimmed).fillna(False).to_numpy(dtype=bool), "full-width", "spaces"),
                            index=raw.index)
            tidy = tidy.where(tidy != "")
            _note_changed(raw, tidy, name, how, frame["row"], notes)
            frame[name] = tidy


def _normalise_values(frame: gpd.GeoDataFrame, catalog: Catalog, notes) -> gpd.GeoDataFrame:
    bad: list[dict] = []
    for name in [f.name for f in FIELDS if f.kind == "str"] + ["action"]:
        if name not in frame.columns:
            frame[name] = pd.Series(pd.NA, index=frame.index, dtype="str")
        else:
            frame[name] = _as_text(frame[name], name, bad, frame["row"],
                                   strip=name not in _CODE_FIELDS + _LISTED_FIELDS)  # those: _tidy, and said
    _tidy(frame, notes)
    for name in [f.name for f in FIELDS if f.kind == "str"]:
        if name in frame.columns:
            for i in np.flatnonzero(frame[name].str.contains("\x00", regex=False).fillna(False).to_numpy(bool)):
                bad.append({"row": int(frame["row"].iloc[i]), "field": name, "value": frame[name].iloc[i][:40],
                            "reason": _("holds a NUL character, where GIS files cut the text off")})
    for name in DATE_FIELDS:
        if name not in frame.columns:
            frame[name] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ms]")
    _resolve_categories(frame, catalog, notes)
    for name in DATE_FIELDS:
        frame[name] = _parse_dates(frame[name], name, bad, frame["row"], notes)
    action = frame["action"].str.strip().str.lower()
    retire = action.isin(_RETIRE_WORDS) | frame["status"].isin(["移除"])
    frame["action"] = pd.array(np.where(retire, "retire", NONE), dtype="str")
    notes["bad_values"] = bad
    order = [f.name for f in FIELDS] + ["action", "row"]
    rest = [c for c in frame.columns if c not in order and c != frame.geometry.name]
    return frame[order + rest + [frame.geometry.name]]


def _resolve_categories(frame: gpd.GeoDataFrame, catalog: Catalog, notes: dict) -> None:
    """The category code of each row: given, else from its name, else from its identifier.

    A category column holding names (部件小类: 污水井盖) is read by name, and the name kept in
    ``category_name`` when that is empty. Names the catalog does not know are noted, with the
    field that held them, in ``notes["unknown_category_names"]`` (``schema.unknown_category``).
    """
    category = frame["category"].to_numpy(dtype=object)
    names = frame["category_name"].to_numpy(dtype=object)
    worded = np.array([isinstance(c, str) and not c.isdigit() for c in category], dtype=bool)
    word_codes = catalog.normalise(category[worded])
    unknown = {int(frame["row"].iloc[i]): (str(category[i]), "category")
               for i, code in zip(np.flatnonzero(worded), word_codes) if code is None}
    names = np.where(worded & pd.isna(names), category, names)
    category = category.copy()
    category[worded] = word_codes
    by_name = catalog.normalise(names)
    from_id = parse_ids(frame["component_id"].to_numpy(dtype=object))["category"].to_numpy(dtype=object)
    unnamed = pd.isna(category) & ~pd.isna(names) & pd.isna(by_name) & pd.isna(from_id) & ~worded
    unknown.update({int(frame["row"].iloc[i]): (str(names[i]), "category_name") for i in np.flatnonzero(unnamed)})
    notes["unknown_category_names"] = unknown
    category = np.where(pd.isna(category), by_name, category)
    category = np.where(pd.isna(category), from_id, category)
    frame["category"] = pd.array(category, dtype="str")
    frame["category_name"] = pd.array(names, dtype="str")


def _as_text(values: pd.Series, name: str, bad: list, rows: pd.Series, *, strip: bool = True) -> pd.Series:
    """Text as text, spaces around it dropped if `strip`.

    Numbers that lost digits (ids typed into Excel) are reported.
    """
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        values = values.astype("str")
    if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
        stripped = values.str.strip()
        return values.where(stripped != "").str.strip() if strip else values.where(stripped != "")
    out = values.astype(object)
    floats = out.map(lambda v: isinstance(v, float) and np.isfinite(v))
    if floats.any():
        whole = out[floats].map(float.is_integer)
        for i in out[floats][~whole].index:
            bad.append({"row": int(rows[i]), "field": name, "value": str(out[i]),
                        "reason": _("a number where text was expected (format the column as text)")})
        cells = out.to_numpy(dtype=object, copy=True)  # ints stay ints only in a plain object array
        for i in np.flatnonzero((floats & whole.reindex(out.index, fill_value=False)).to_numpy(dtype=bool)):
            cells[i] = int(cells[i])
        out = pd.Series(cells, index=out.index, dtype=object)
    if name == "component_id":
        big = out.map(lambda v: isinstance(v, (int, np.integer)) and abs(int(v)) >= 2**53)
        for i in out[big].index:
            bad.append({"row": int(rows[i]), "field": name, "value": str(out[i]),
                        "reason": _("an identifier stored as a number may have lost digits")})
    out = out.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    out = out.where(out.map(lambda v: v is None or v.strip() != ""), None)
    if strip:
        out = out.map(lambda v: v if v is None else v.strip())
    return pd.Series(pd.array(out.to_numpy(dtype=object), dtype="str"), index=values.index)


def _parse_dates(values: pd.Series, name: str, bad: list, rows: pd.Series, notes: dict) -> pd.Series:
    """Dates in the forms offices write them (see :mod:`citygrid._dates`); the rest reported, not guessed."""
    parsed, forms = read_times(values)
    other = np.flatnonzero(forms.isin(["chinese", "excel", "offset"]).to_numpy())  # YYYYMMDD is the standard's
    notes.setdefault("read_as", []).extend(
        {"row": int(rows.iloc[i]), "field": name, "value": str(values.iloc[i])[:60],
         "read": f"{parsed.iloc[i]:%Y-%m-%d}", "how": forms.iloc[i]} for i in other
        if not isinstance(values.iloc[i], dt.date))  # a spreadsheet's own date cell needs no word
    reasons = {"unreadable": _("not a date (use YYYYMMDD or YYYY-MM-DD)"),
               "ambiguous": _("day and month could be either way round; write YYYY-MM-DD")}
    for i in np.flatnonzero(forms.isin(list(reasons)).to_numpy()):
        bad.append({"row": int(rows.iloc[i]), "field": name, "value": str(values.iloc[i])[:100],
                    "reason": reasons[forms.iloc[i]]})
    return parsed.dt.normalize()  # the fields are dates: a time of day is dropped, as a DATE column does
