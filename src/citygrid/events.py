"""Hotline event exports as city systems write them, and the event type table.

Two shapes are read alike, in any column order, as CSV (UTF-8 or GBK) or XLSX:

- a 12345 system's export with Chinese headers (工单编号, 上报时间, 事件类型, 经度/纬度 …);
- a digital urban-management system's export such as Pingshan's of 2018, 26 columns of
  ID/name pairs (REC_ID, CREATE_TIME, EVENT_SRC_NAME, SUB_TYPE_ID/NAME, MAIN_TYPE_NAME,
  STREET_NAME, COMMUNITY_NAME, OCCUR_PLACE, DISPOSE_UNIT_NAME …).

A place is optional: coordinate columns are read when there are some, else OCCUR_PLACE when it
holds a coordinate pair; an event without one is still an event (it is routed by its type and
area, see :mod:`citygrid.routes`). Text written with HTML entities (``路灯&#40;灯光&#41;井盖``)
is decoded; rows identical but for their record id are marked as repeats of the first; a unit
named as a test unit (区测试责任单位一) is flagged.

Examples
--------
>>> table = load_event_types()
>>> row = table.set_index("name_zh").loc["下水井盖"]
>>> row["categories"], row["main_name"]
(['0102', '0103', '0127'], '公用部件')
>>> int((table["categories"].map(len) > 0).sum())  # sub types that concern components
81
"""

from __future__ import annotations

import html
import re
from importlib import resources
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from citygrid._arrays import NONE
from citygrid._dates import read_times
from citygrid._i18n import N_, _
from citygrid._tables import read_table
from citygrid._text import find_column, read_csv_table, refuse_twin_headers
from citygrid.errors import BatchError, MissingFile
from citygrid.io import TABLE_SUFFIXES, read_vector, row_numbers, table_points

EVENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "event_id": ("event_id", "REC_ID", "事件编号", "工单编号", "工单号", "案件编号", "编号", "id"),
    "created_at": ("created_at", "CREATE_TIME", "上报时间", "受理时间", "创建时间", "发生时间", "created", "time"),
    "channel": ("channel", "EVENT_SRC_NAME", "来源渠道", "事件来源", "来源", "渠道"),
    "property": ("property", "EVENT_PROPERTY_NAME", "事件性质", "诉求类型"),
    "description": ("description", "问题描述", "事件描述", "诉求内容", "描述", "text"),
    "event_type_code": ("event_type_code", "SUB_TYPE_ID", "事件类型代码", "小类代码", "类型代码", "type_code"),
    "event_type": ("event_type", "SUB_TYPE_NAME", "事件类型", "小类名称", "事件小类", "type"),
    "main_type": ("main_type", "MAIN_TYPE_NAME", "大类名称", "事件大类"),
    "category": ("category", "部件类别", "部件小类", "部件类型"),
    "component_id": ("component_id", "部件编号", "部件标识码", "部件编码", "部件代码"),
    "address": ("address", "OCCUR_PLACE", "地址", "事发地址", "事发地点", "发生地点"),
    "street": ("street", "STREET_NAME", "街道", "所属街道", "街道名称"),
    "community": ("community", "COMMUNITY_NAME", "社区", "所属社区", "社区名称"),
    "closed_at": ("closed_at", "办结时间", "结案时间", "关闭时间", "closed"),
    "closing_unit": ("closing_unit", "DISPOSE_UNIT_NAME", "处置单位", "办理单位", "承办单位", "责任单位"),
}
"""Headers read as each event field (case-insensitive); the first is citygrid's own name."""

READ_PROBLEMS = {
    "no_location": N_("no location: {where}"),
    "unreadable_time": N_("unreadable {field} {value!r}"),
}
"""What reading an event can find wrong with a row, by the code ``problem_code`` holds."""

_TEST_UNIT = re.compile(r"测试|test", re.IGNORECASE)
_PAIR = re.compile(r"^\s*(-?\d{1,3}\.\d+)\s*[,，;；\s]\s*(-?\d{1,3}\.\d+)\s*$")
_KNOWN = {h.upper() for names in EVENT_COLUMNS.values() for h in names} | {"经度", "纬度", "LON", "LAT", "LNG"}


def load_event_types(path: str | Path | None = None) -> pd.DataFrame:
    """The event type table: each sub type, the catalog categories it concerns, and why.

    Parameters
    ----------
    path : str or Path, optional
        A district's own table as CSV with at least ``code, name_zh, categories`` (and, for
        routing to back off to, ``main_name``); default the shipped one: Pingshan's 2018
        hierarchy (``data/event_types.csv``: 373 sub types under 134 main types and 18
        event types, with the number of events of each in 2018). ``categories`` holds
        catalog codes separated by spaces, empty for a sub type that concerns no component;
        ``note`` says why where the mapping is a judgement.

    Returns
    -------
    pandas.DataFrame
        The table, ``categories`` as lists; names with HTML entities decoded.
    """
    source = path if path is not None else resources.files("citygrid") / "data" / "event_types.csv"
    table = read_csv_table(Path(str(source)), what=_("event type table"), required=["code", "name_zh", "categories"])
    table["categories"] = table["categories"].fillna("").map(str.split)
    for column in ("name_zh", "main_name"):
        if column in table:
            table[column] = table[column].map(html.unescape)
    if "main_name" not in table:
        table["main_name"] = ""
    return table


def _clean(values: pd.Series) -> np.ndarray:
    """Text with blanks stripped and HTML entities decoded, None where empty or ``-``."""
    text = values.astype(object).where(values.notna(), None)
    text = text.map(lambda v: html.unescape(v).strip() if isinstance(v, str) else (None if v is None else str(v)))
    return text.where((text != "") & (text != "-"), None).to_numpy(dtype=object)


def join_problems(first, then) -> list[str]:
    """Two problems of each row as one text, ``"first; then"`` (an empty one left out)."""
    return ["; ".join(p for p in pair if p) for pair in zip(first, then)]


def _read(events: str | Path | pd.DataFrame) -> tuple[gpd.GeoDataFrame, dict]:
    """The rows of an event file or frame, with points where they have any, and what the reader noted."""
    if isinstance(events, gpd.GeoDataFrame):
        return events, {}
    if isinstance(events, pd.DataFrame):
        return table_points(events, required=False)
    path = Path(events)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        return read_vector(path)
    if not path.exists():
        raise MissingFile(_("file {path!r} does not exist.").format(path=str(path)))
    notes: dict = {}
    table = read_table(path, known=_KNOWN, encoding=None, sheet=None, notes=notes)
    notes["rows"] = table.rows
    return table_points(table.frame, required=False, notes=notes)


def read_events(events: str | Path | pd.DataFrame) -> gpd.GeoDataFrame:
    """An event export with its columns named as :data:`EVENT_COLUMNS` says, places as given.

    Every input row is kept, in order, with ``row`` (the spreadsheet's row number, the header
    being row 1, for a table; 1 to n for a vector file). A row with coordinates that cannot
    be read keeps no geometry and says why in ``problem``; unreadable times are left empty,
    named in ``problem`` too, and make ``times_ok`` false. ``repeat_of`` holds the id of the
    first of rows identical but for their id; ``test_unit`` marks rows closed by a unit
    named as a test unit.

    Raises
    ------
    BatchError
        If the file has no event id column.
    """
    frame, notes = _read(events)
    out = pd.DataFrame({"row": row_numbers(notes, len(frame))})
    position = {row: i for i, row in enumerate(out["row"])}
    headers = [c for c in frame.columns if c != "geometry"]
    refuse_twin_headers(headers)
    found = {field: find_column(headers, names) for field, names in EVENT_COLUMNS.items()}
    for field, column in found.items():
        out[field] = _clean(frame[column]) if column is not None else None
    if out["event_id"].isna().all():
        raise BatchError(_("the events have no id column (one of {names} …); they have {columns}.").format(
            names=", ".join(EVENT_COLUMNS["event_id"][:5]), columns=", ".join(map(str, headers[:15]))))
    geometry = frame.geometry.to_numpy().copy() if "geometry" in frame else np.full(len(frame), None)
    geometry = _places_in_address(geometry, out["address"].to_numpy(dtype=object))
    problem = pd.Series("", index=out.index, dtype=object)
    code = pd.Series("", index=out.index, dtype=object)
    for row, text in notes.get("unparsed_coordinates", {}).items():
        problem.iloc[position[row]] = _(READ_PROBLEMS["no_location"]).format(
            where=_("coordinates {text!r}").format(text=text))
        code.iloc[position[row]] = "no_location"
    times_ok = np.ones(len(out), dtype=bool)
    for field, label in (("created_at", N_("created at")), ("closed_at", N_("closed at"))):
        raw = out[field]
        out[field] = read_times(raw)[0]  # local time; offsets converted, words and D/M/Y refused
        bad = (raw.notna() & out[field].isna()).to_numpy()
        times_ok &= ~bad
        said = [_(READ_PROBLEMS["unreadable_time"]).format(field=_(label), value=v) for v in raw[bad]]
        problem[bad] = join_problems(problem[bad], said)
        code[bad & (code == "").to_numpy()] = "unreadable_time"
    out["problem"], out["problem_code"], out["times_ok"] = problem.to_numpy(), code.to_numpy(), times_ok
    said = frame.drop(columns=[c for c in ("geometry", found["event_id"]) if c])
    said["_place"] = [g.wkt if g is not None and not pd.isna(g) else "" for g in geometry]
    unparsed = notes.get("unparsed_coordinates", {})
    said["_unread"] = [unparsed.get(r, "") for r in out["row"]]
    out["repeat_of"] = _repeats(said, out["event_id"])
    out["test_unit"] = out["closing_unit"].map(lambda u: bool(isinstance(u, str) and _TEST_UNIT.search(u)))
    crs = frame.crs if isinstance(frame, gpd.GeoDataFrame) else None
    return gpd.GeoDataFrame(out, geometry=list(geometry), crs=crs)


def _places_in_address(geometry: np.ndarray, address: np.ndarray) -> np.ndarray:
    """Points from an address column holding ``lon,lat`` where a row has no point otherwise."""
    out = geometry.copy()
    for k in np.flatnonzero(pd.isna(out)):
        match = _PAIR.match(address[k]) if isinstance(address[k], str) else None
        if match:
            out[k] = shapely.Point(float(match[1]), float(match[2]))
    return out


def _repeats(rest: pd.DataFrame, ids: pd.Series) -> np.ndarray:
    """For each row, the id of the first row identical to it in every column but the id; None for the first."""
    if rest.empty or not len(rest.columns):
        return np.full(len(ids), None, dtype=object)
    key = pd.util.hash_pandas_object(rest.astype(str), index=False)
    first = ~key.duplicated(keep="first")
    first_id = pd.Series(ids.to_numpy(dtype=object)[first.to_numpy()], index=key[first].to_numpy())
    said = key.map(first_id).to_numpy(dtype=object)
    return np.where(first.to_numpy(), NONE, said)
