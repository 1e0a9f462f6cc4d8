"""The component model: fields, statuses and identifiers in both standards.

Two layouts are in use at once (see ``data/README.md`` of the repository):

========================  ==============  ============  ==========================
layout                    category code   identifier    field abbreviations
========================  ==============  ============  ==========================
``"cjt214"`` (old)        4 digits        16 digits     OBJID, OBJNAME, DEPTNAME1 …
``"gbt47678"`` (2026)     5 digits        17 digits     GLBJBSM, GLBJMC, ZGBMMC …
========================  ==============  ============  ==========================

An identifier (标识码) is the district's 6-digit administrative division code, the
category code and a 6-digit serial: ``440310`` + ``0101`` + ``000001``.

Examples
--------
>>> make_ids("440310", "0101", [1, 2]).tolist()
['4403100101000001', '4403100101000002']
>>> parse_ids(["44031001001000001"]).iloc[0].to_dict()
{'admin_code': '440310', 'category': '01001', 'serial': 1, 'layout': 'gbt47678'}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute as pc
from numpy.typing import ArrayLike, NDArray
from stdnum.cn import uscc

from citygrid import settings
from citygrid._arrays import NONE
from citygrid._i18n import _
from citygrid.catalog import Catalog
from citygrid.errors import require

if TYPE_CHECKING:
    import pandera.pandas as pa


@dataclass(frozen=True)
class IdLayout:
    """Layout of identifiers and category codes of one standard.

    Attributes
    ----------
    name : str
        Short key: ``"cjt214"`` or ``"gbt47678"``.
    standard : str
        The standard's full designation.
    category_digits : int
        Digits of a category code (4 or 5).
    """

    name: str
    standard: str
    category_digits: int

    @property
    def id_length(self) -> int:
        """Digits of a component identifier: the division code, the category, the serial."""
        return ADMIN_DIGITS + self.category_digits + SERIAL_DIGITS


ADMIN_DIGITS = 6
"""Digits of the division code an identifier starts with (GB/T 2260)."""
SERIAL_DIGITS = 6
"""Digits of the serial an identifier ends with."""

CJT214 = IdLayout("cjt214", "CJ/T 214-2007 / GB/T 30428.2-2013", 4)
GBT47678 = IdLayout("gbt47678", "GB/T 47678.5-2026", 5)
LAYOUTS: dict[str, IdLayout] = {CJT214.name: CJT214, GBT47678.name: GBT47678}
SERIAL_MAX = 999_999

STATUSES: dict[str, str] = {
    "完好": "intact",
    "破损": "damaged",
    "丢失": "missing",
    "占用": "occupied",
    "废弃": "abandoned",
    "移除": "removed",
}
"""Component statuses (管理部件状态) of both standards, with English names."""


@dataclass(frozen=True)
class Field:
    """One attribute of a component.

    Attributes
    ----------
    name : str
        citygrid's column name.
    kind : {"str", "date"}
        Value type.
    required : bool
        Must be present and non-empty in a registry.
    cjt214, gbt47678 : str or None
        The field's abbreviation in each standard's exchange files.
    label_zh : str
        Chinese label, used in maps and reports.
    """

    name: str
    kind: str
    required: bool
    cjt214: str | None
    gbt47678: str | None
    label_zh: str


FIELDS: tuple[Field, ...] = (
    Field("component_id", "str", True, "OBJID", "GLBJBSM", "标识码"),
    Field("category", "str", True, None, None, "部件小类代码"),
    Field("category_name", "str", False, "OBJNAME", "GLBJMC", "部件名称"),
    Field("name", "str", False, None, None, "名称"),
    Field("department_code", "str", False, "DEPTCODE1", "ZGBMDM", "主管部门代码"),
    Field("department", "str", True, "DEPTNAME1", "ZGBMMC", "主管部门"),
    Field("owner_code", "str", False, "DEPTCODE2", "QSDWDM", "权属单位代码"),
    Field("owner", "str", False, "DEPTNAME2", "QSDWMC", "权属单位"),
    Field("maintainer_code", "str", False, "DEPTCODE3", "YHDWDM", "养护单位代码"),
    Field("maintainer", "str", False, "DEPTNAME3", "YHDWMC", "养护单位"),
    Field("street_code", "str", False, None, "SZJDDM", "所在街道代码"),
    Field("street", "str", False, None, "SZJDMC", "所在街道"),
    Field("community_code", "str", False, None, "SZSQDM", "所在社区代码"),
    Field("community", "str", False, None, "SZSQMC", "所在社区"),
    Field("grid", "str", True, "BGID", "SZDYWGBSM", "所在单元网格"),
    Field("status", "str", True, "OBJSTATE", "GLBJZT", "部件状态"),
    Field("survey_date", "date", True, "ORDATE", "CSRQ", "初始日期"),
    Field("change_date", "date", False, "CHDATE", "BGRQ", "变更日期"),
    Field("source", "str", False, "DATASOURCE", "SJLY", "数据来源"),
    Field("remarks", "str", False, "NOTE", "BZ", "备注"),
    Field("photo", "str", False, "PICTURE", None, "照片"),
    Field("material", "str", False, "MATERIAL", None, "材质"),
)
"""Every component attribute, in column order (the geometry comes last)."""

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
REQUIRED_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.required)
DATE_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.kind == "date")

_EXTRA_ALIASES: dict[str, list[str]] = {
    "component_id": ["OBJCODE", "标识码", "部件标识码", "管理部件标识码", "部件编码", "部件编号", "管理部件编号",
                     "部件ID", "部件代码"],
    "category": ["小类代码", "部件小类", "部件类别", "类别", "小类", "类别代码", "部件类别代码", "部件小类编码",
                 "小类编码", "CATEGORY_CODE"],
    "category_name": ["部件类型", "管理部件名称", "部件小类名称", "小类名称", "类别名称", "部件类别名称"],
    "name": ["STOPNAME", "SCULPTNAME", "SITENAME", "名称", "设施名称"],
    "department_code": ["主管部门编码", "主管单位代码"],
    "department": ["主管部门名称", "主管单位", "主管单位名称"],
    "owner_code": ["产权单位代码", "权属单位编码"],
    "owner": ["权属单位名称", "产权单位", "产权单位名称", "权属人", "产权人"],
    "maintainer_code": ["维护单位代码", "管养单位代码", "养护单位编码"],
    "maintainer": ["养护单位名称", "维护单位", "维护单位名称", "管养单位", "管护单位"],
    "street_code": ["街道代码", "街道编码", "所属街道代码"],
    "street": ["街道", "街道名称", "所在街道名称", "所属街道"],
    "community_code": ["社区代码", "社区编码", "所属社区代码"],
    "community": ["社区", "社区名称", "所在社区名称", "所属社区"],
    "grid": ["BGCODE", "单元网格", "网格编码", "单元网格编码", "单元网格编号", "单元网格标识码", "所在单元网格标识码",
             "所在单元网格编码", "网格编号", "网格号", "所在网格", "所属网格", "所属单元网格"],
    "status": ["状态", "管理部件状态", "使用状态", "现状"],
    "survey_date": ["普查日期", "调查日期", "采集日期", "采集时间", "普查时间", "调查时间", "建档日期"],
    "change_date": ["更新日期", "变更时间", "更新时间", "修改日期"],
    "source": ["来源"],
    "remarks": ["说明", "备注说明"],
    "photo": ["图片", "照片路径", "图片路径", "现场照片"],
    "material": ["材料"],
}
"""Headers Chinese offices, exports and collector apps write, besides each field's label and abbreviations."""


SHORT_NAMES: dict[str, str] = {
    "component_id": "COMP_ID", "category": "CATEGORY", "category_name": "CAT_NAME", "name": "NAME",
    "department_code": "DEPT_CODE", "department": "DEPT", "owner_code": "OWNER_CODE", "owner": "OWNER",
    "maintainer_code": "MAINT_CODE", "maintainer": "MAINT", "street_code": "STRT_CODE",
    "street": "STREET", "community_code": "COMM_CODE", "community": "COMMUNITY", "grid": "GRID",
    "status": "STATUS", "survey_date": "SURVEYED", "change_date": "CHANGED", "source": "SOURCE",
    "remarks": "REMARKS", "photo": "PHOTO", "material": "MATERIAL",
}
"""citygrid's field names cut to at most 10 characters, for Shapefiles."""


def column_aliases() -> dict[str, str]:
    """Map every known column name to citygrid's field name.

    Known names: either standard's abbreviation, common Chinese headers and citygrid's
    own names; keys are upper-cased.

    Examples
    --------
    >>> aliases = column_aliases()
    >>> aliases["OBJID"], aliases["GLBJBSM"], aliases["DEPTNAME2"], aliases["BGRQ"]
    ('component_id', 'component_id', 'owner', 'change_date')
    """
    table: dict[str, str] = {}
    for f in FIELDS:
        table[f.name.upper()] = f.name
        table[f.label_zh] = f.name
        for abbreviation in (f.cjt214, f.gbt47678):
            if abbreviation:
                table[abbreviation] = f.name
    table.update({header.upper(): name for name, headers in _EXTRA_ALIASES.items() for header in headers})
    table.update({k.upper(): v for v, k in SHORT_NAMES.items()})
    return table


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Give a components frame every field of :data:`FIELDS`, in order, with its dtype.

    Text fields become pandas string columns (missing values as NA), date fields
    ``datetime64[ms]``; other columns (the geometry, extras) follow unchanged.

    Raises
    ------
    ValueError
        If a date field holds values that are not dates (the message shows some).

    Examples
    --------
    >>> out = conform(pd.DataFrame({"status": ["完好", None], "survey_date": ["2019-05-01", None]}))
    >>> out["status"].dtype, str(out["survey_date"].dtype), len(out.columns)
    (<StringDtype(na_value=nan)>, 'datetime64[ms]', 22)
    """
    out = frame.copy(deep=False)  # copy-on-write: setting a column here leaves `frame` as it was
    for f in FIELDS:
        values = out[f.name] if f.name in out.columns else pd.Series(None, index=out.index)
        if f.kind == "date" and values.dtype == "datetime64[ms]":
            continue
        if f.kind == "date":
            try:
                out[f.name] = pd.to_datetime(values, errors="raise").astype("datetime64[ms]")
            except (ValueError, TypeError) as exc:
                shown = values.dropna().astype(str).head(3).tolist()
                raise ValueError(f"field {f.name!r} holds values that are not dates, e.g. {shown}: {exc}") \
                    from None
        elif not (pd.api.types.is_string_dtype(values.dtype) and values.dtype != object):
            out[f.name] = values.astype(object).where(values.notna(), None).astype("str")
    rest = [c for c in out.columns if c not in FIELD_NAMES]
    return out[list(FIELD_NAMES) + rest]


def standard_columns(layout: str) -> dict[str, str]:
    """Map citygrid field names to a standard's abbreviations (for exports).

    Fields the standard lacks keep a name of at most 10 characters so that Shapefile
    exports stay unambiguous.

    Parameters
    ----------
    layout : {"cjt214", "gbt47678", "citygrid", "shapefile"}
        ``"shapefile"``: citygrid's names cut to 10 characters, unambiguously.

    Examples
    --------
    >>> standard_columns("gbt47678")["owner"]
    'QSDWMC'
    """
    if layout == "citygrid":
        return {f.name: f.name for f in FIELDS}
    if layout == "shapefile":
        return dict(SHORT_NAMES)
    _layout(layout)
    own = {"category": "CATEGORY", "name": "NAME", "street_code": "STREETCODE",
           "street": "STREET", "community_code": "COMMCODE", "community": "COMMUNITY",
           "photo": "PHOTO", "material": "MATERIAL"}
    return {f.name: getattr(f, layout) or own[f.name] for f in FIELDS}


def _layout(name: str) -> IdLayout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(
            f"layout={name!r} is not known; use one of {sorted(LAYOUTS)} "
            "('cjt214' for 16-digit ids, 'gbt47678' for 17-digit ids)."
        ) from None


def make_ids(
    admin_code: str, category: str | ArrayLike, serials: ArrayLike
) -> NDArray[np.object_]:
    """Build identifiers from an admin code, category code(s) and serial number(s).

    The layout follows the category code: 4 digits give 16-digit ids, 5 digits 17.

    Parameters
    ----------
    admin_code : str
        6-digit administrative division code of the district.
    category : str or array_like of str
        Category code(s), all 4-digit or all 5-digit.
    serials : array_like of int
        Serial numbers, 1 to 999999.

    Raises
    ------
    ValueError
        On a malformed admin code, category code or serial out of range.

    Examples
    --------
    >>> make_ids("440310", ["0118", "0405"], [7, 8]).tolist()
    ['4403100118000007', '4403100405000008']
    """
    if not (isinstance(admin_code, str) and len(admin_code) == 6 and admin_code.isdigit()):
        raise ValueError(f"admin_code={admin_code!r} must be a 6-digit division code, e.g. '440310'.")
    serials = np.asarray(serials, dtype=np.int64)
    categories = pd.Series(np.broadcast_to(np.asarray(category, dtype=object), serials.shape))
    lengths = categories.str.len()
    if not (categories.str.fullmatch(r"\d{4,5}").all() and lengths.nunique() <= 1):
        bad = categories[~categories.str.fullmatch(r"\d{4,5}").fillna(False)].head(3).tolist()
        raise ValueError(
            f"category codes must all be 4-digit or all 5-digit strings; got e.g. {bad or 'mixed lengths'}."
        )
    if serials.size and (serials.min() < 1 or serials.max() > SERIAL_MAX):
        raise ValueError(
            f"serials must be in 1..{SERIAL_MAX}; got {int(serials.min())}..{int(serials.max())}."
        )
    text = pd.Series(serials).astype(str).str.zfill(6)
    return (admin_code + categories + text).to_numpy(dtype=object)


def parse_ids(ids: ArrayLike) -> pd.DataFrame:
    """Split identifiers into admin code, category, serial and layout.

    Malformed identifiers give missing values in every column.

    Parameters
    ----------
    ids : array_like of str

    Returns
    -------
    pandas.DataFrame
        Columns ``admin_code``, ``category``, ``serial`` (nullable int), ``layout``.

    Examples
    --------
    >>> parse_ids(["4403100101000001", "bad"])["layout"].tolist()
    ['cjt214', None]
    """
    text = _as_text(ids).astype("str")
    digits = text.str.fullmatch(r"\d+").fillna(False).astype(bool).to_numpy()
    length = text.str.len().fillna(0).to_numpy()
    old = digits & (length == 16)
    new = digits & (length == 17)
    ok = old | new
    admin = np.where(ok, text.str.slice(0, 6).to_numpy(dtype=object), None)
    category = np.where(new, text.str.slice(6, 11).to_numpy(dtype=object),
                        np.where(old, text.str.slice(6, 10).to_numpy(dtype=object), None))
    serial = text.str.slice(-6).where(ok).astype("Int64")  # all digits where ok
    layout = np.where(new, GBT47678.name, np.where(old, CJT214.name, NONE))
    return pd.DataFrame({"admin_code": pd.Series(admin, dtype=object),
                         "category": pd.Series(category, dtype=object),
                         "serial": serial.reset_index(drop=True),
                         "layout": pd.Series(layout, dtype=object)})


def _as_text(values: ArrayLike) -> pd.Series:
    """Strings stay, anything else (numbers, None, NaN) becomes None."""
    if isinstance(values, pd.Series) and pd.api.types.is_string_dtype(values.dtype) \
            and values.dtype != object:
        return values.astype(object).where(values.notna(), None).reset_index(drop=True)
    series = pd.Series(np.asarray(values, dtype=object), dtype=object)
    if pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
        return series.where(series.notna(), None)
    return series.map(lambda v: v if isinstance(v, str) else None).astype(object)


def id_problems(
    ids: ArrayLike,
    categories: ArrayLike | None = None,
    *,
    admin_code: str | None = None,
    layout: str | None = None,
) -> pd.DataFrame:
    """Check identifiers; one row per input, empty strings where all is well.

    Parameters
    ----------
    ids : array_like
        Identifiers (non-strings are malformed).
    categories : array_like of str, optional
        The category field of each row (4- or 5-digit); compared with the id's digits.
    admin_code : str, optional
        The district's code; an id of another district is malformed.
    layout : {"cjt214", "gbt47678"}, optional
        Require this layout (otherwise either is accepted).

    Returns
    -------
    pandas.DataFrame
        Columns ``malformed`` and ``category_mismatch``: a reason, or ``""``.

    Examples
    --------
    >>> p = id_problems(["4403100101000001", "440310010100001"], ["0102", "0101"])
    >>> p["malformed"].tolist()
    ['', 'has 15 characters, expected 16 or 17 digits']
    >>> p["category_mismatch"].tolist()
    ['id says category 0101, the category field says 0102', '']
    """
    text = _as_text(ids)
    parsed = parse_ids(text)
    malformed = pd.Series("", index=parsed.index, dtype=object)
    arrow = text.astype("str")  # Arrow-backed: vectorised string kernels
    length = arrow.str.len()
    is_str = text.notna()
    malformed[~is_str] = _("is empty or not text")
    digits = arrow.str.fullmatch(r"\d+").fillna(False).astype(bool)
    malformed[is_str & ~digits] = _("has characters other than digits")
    wrong_len = is_str & digits & parsed["layout"].isna()
    text = _("has {n} characters, expected 16 or 17 digits")
    malformed[wrong_len] = length[wrong_len].astype("Int64").map(lambda n: text.format(n=n)).astype(object)
    if layout is not None:
        want = _layout(layout)
        other = parsed["layout"].notna() & (parsed["layout"] != want.name)
        malformed[other] = _("is not in the {standard} layout ({n} digits)").format(standard=want.standard,
                                                                                    n=want.id_length)
    if admin_code is not None:
        foreign = parsed["admin_code"].notna() & (parsed["admin_code"] != admin_code)
        text = _("starts with division code {code}, not the district's {district}")
        malformed[foreign & (malformed == "")] = parsed["admin_code"][foreign].astype(str).map(
            lambda code: text.format(code=code, district=admin_code)).astype(object)
    mismatch = pd.Series("", index=parsed.index, dtype=object)
    if categories is not None:
        cats = _as_text(categories)
        same_len = cats.astype("str").str.len() == parsed["category"].astype("str").str.len()
        check = (malformed == "") & cats.notna() & same_len.fillna(False).astype(bool)
        differs = check & (cats != parsed["category"])
        text = _("id says category {id_category}, the category field says {category}")
        mismatch[differs] = [text.format(id_category=i, category=c)
                             for i, c in zip(parsed["category"][differs], cats[differs])]
    return pd.DataFrame({"malformed": malformed, "category_mismatch": mismatch})


def next_ids(
    existing: ArrayLike, admin_code: str, category: str, n: int
) -> NDArray[np.object_]:
    """Generate `n` new identifiers for `category`, after the largest serial in use.

    Parameters
    ----------
    existing : array_like of str
        Identifiers already in use (any categories; malformed ones are ignored).
    admin_code : str
        6-digit division code of the district.
    category : str
        4-digit (16-digit ids) or 5-digit (17-digit ids) category code.
    n : int
        How many.

    Raises
    ------
    ValueError
        If the serials of the category would pass 999999.

    Examples
    --------
    >>> next_ids(["4403100101000041", "4403100102000099"], "440310", "0101", 2).tolist()
    ['4403100101000042', '4403100101000043']
    """
    start = max_serials(existing, admin_code).get(category, 0)
    if start + n > SERIAL_MAX:
        raise ValueError(
            f"category {category} of district {admin_code} has serials up to {start}; "
            f"{n} more would pass {SERIAL_MAX}. Retire and renumber, or split the category."
        )
    return make_ids(admin_code, category, np.arange(start + 1, start + n + 1))


def max_serials(existing: ArrayLike, admin_code: str) -> dict[str, int]:
    """The largest serial in use per category code among a district's identifiers.

    Examples
    --------
    >>> max_serials(["4403100101000041", "4403100101000007", "4403200101000099"], "440310")
    {'0101': 41}
    """
    text = existing if isinstance(existing, pd.Series) and existing.dtype == "str" else \
        _as_text(existing).astype("str")
    ids = pyarrow.array(text)  # Arrow kernels: no Python string per id
    mine = pc.and_kleene(pc.starts_with(ids, admin_code),
                         pc.and_kleene(pc.is_in(pc.utf8_length(ids), pyarrow.array([16, 17], pyarrow.int32())),
                                       pc.utf8_is_digit(ids)))
    ids = ids.filter(mine.fill_null(False))
    if not len(ids):
        return {}
    number = pc.cast(ids, pyarrow.int64()).to_numpy()  # 17 digits fit in an int64
    serial = pd.Series(number % 1_000_000).groupby(number // 1_000_000).max()
    return {str(k)[6:]: int(v) for k, v in serial.items()}


def migrate_ids(ids: ArrayLike, catalog: Catalog) -> NDArray[np.object_]:
    """Convert 16-digit CJ/T 214 ids to 17-digit GB/T 47678.5 ids via the catalog.

    17-digit ids are returned unchanged.

    Raises
    ------
    ValueError
        If an id is malformed or its category has no 2026 code in the catalog.

    Examples
    --------
    >>> from citygrid.catalog import load_catalog
    >>> migrate_ids(["4403100118000007"], load_catalog()).tolist()
    ['44031001018000007']
    """
    parsed = parse_ids(ids)
    bad = parsed["layout"].isna()
    if bad.any():
        sample = pd.Series(np.asarray(ids, dtype=object))[bad.to_numpy()].head(3).tolist()
        raise ValueError(f"{int(bad.sum())} identifier(s) are malformed, e.g. {sample}; fix them first.")
    old = (parsed["layout"] == CJT214.name).to_numpy()
    new_codes = catalog.to_2026(parsed["category"])
    missing = old & pd.isna(new_codes)
    if missing.any():
        codes = sorted(set(parsed.loc[missing, "category"]))[:5]
        raise ValueError(f"categories {codes} have no GB/T 47678.5 code in the catalog.")
    out = np.asarray(ids, dtype=object).copy()
    serial = parsed["serial"].astype("int64").astype(str).str.zfill(6)
    joined = parsed["admin_code"].astype(str) + pd.Series(new_codes).astype(str) + serial
    out[old] = joined[old].to_numpy(dtype=object)
    return out


def is_uscc(codes: ArrayLike) -> NDArray[np.bool_]:
    """Whether each value is a valid unified social credit code (统一社会信用代码, GB 32100-2015).

    The check characters are verified with ``stdnum.cn.uscc``.

    Examples
    --------
    >>> is_uscc(["91350100M000100Y43", "91350100M000100Y44", "not-a-code", None]).tolist()
    [True, False, False, False]
    """
    codes, uniques = pd.factorize(_as_text(codes))  # a registry repeats a few hundred codes
    valid = np.array([isinstance(c, str) and uscc.is_valid(c) for c in uniques] + [False], dtype=bool)
    return valid[np.asarray(codes)]


def component_schema(catalog: Catalog, *, layout: str = CJT214.name) -> pa.DataFrameSchema:
    """A pandera schema for a components GeoDataFrame in citygrid's field names.

    It checks types, required values, statuses, the identifier layout and category codes;
    the validation rules of :mod:`citygrid.validation` go further (topology, ownership ...).

    Parameters
    ----------
    catalog : Catalog
        Known categories.
    layout : {"cjt214", "gbt47678"}, default "cjt214"
        The registry's identifier layout.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from citygrid.catalog import load_catalog
    >>> schema = component_schema(load_catalog())
    >>> "status" in schema.columns
    True
    """
    # here: importing pandera costs half a second (it imports pyspark.pandas)
    pandera = require("pandera.pandas", _("a pandera schema of the components"), "pandera")
    Geometry = require("pandera.engines.geopandas_engine", _("a pandera schema of the components"),
                       "pandera").Geometry

    lay = _layout(layout)
    codes = [c.code if lay is CJT214 else c.code_2026 for c in catalog]
    columns: dict[str, Any] = {}
    for f in FIELDS:
        checks = []
        if f.name == "component_id":
            checks.append(pandera.Check.str_matches(rf"^\d{{{lay.id_length}}}$"))
        elif f.name == "category":
            checks.append(pandera.Check.isin(codes))
        elif f.name == "status":
            checks.append(pandera.Check.isin(list(STATUSES)))
        if f.required and f.kind == "str":
            checks.append(pandera.Check.str_length(min_value=1))
        dtype = "datetime64[ms]" if f.kind == "date" else str
        columns[f.name] = pandera.Column(
            dtype, checks=checks, nullable=not f.required, required=f.required, coerce=True,
            unique=f.name == "component_id",
        )
    columns["geometry"] = pandera.Column(Geometry(crs=settings.default_crs), nullable=False)
    return pandera.DataFrameSchema(columns, strict=False, name=f"components ({lay.standard})")
