"""The catalog of component categories (部件分类).

A district adopts the national list (CJ/T 214-2007 / GB/T 30428.2-2013, 4-digit codes,
carried into GB/T 47678.5-2026 as 5-digit codes) and extends it. The shipped catalog is
the reference district's 136 categories: the 85 standard ones plus 51 district
extensions in major class 07 (扩展部件). Each category carries both codes, so the
catalog *is* the old-to-new code mapping; a district with another mapping loads its own
CSV with :func:`load_catalog`.

Examples
--------
>>> cat = load_catalog()
>>> len(cat)
136
>>> cat["0101"].name_zh, cat["0101"].code_2026, cat["上水井盖"].geometry
('上水井盖', '01001', 'point')
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from citygrid._i18n import _
from citygrid._text import read_csv_table, suggest
from citygrid.errors import CatalogError, NotFound

GEOMETRY_KINDS = ("point", "line", "polygon")
"""Expected geometry of a category's components."""


@dataclass(frozen=True)
class Category:
    """One component category.

    Attributes
    ----------
    code : str
        4-digit code of CJ/T 214 / GB/T 30428.2 (2-digit major + 2-digit minor).
    code_2026 : str
        5-digit code of GB/T 47678.5-2026 (2-digit major + 3-digit minor).
    major_code, major_name_zh, major_name_en : str
        The major class (大类).
    name_zh, name_en : str
        Category name in Chinese (the standard name) and English.
    geometry : {"point", "line", "polygon"}
        Expected geometry type of its components.
    department : str
        Default responsible department (主管部门).
    tolerance_m : float
        Two components of this category closer than this are suspected duplicates.
    origin : str
        ``"GB/T 30428.2-2013"`` or ``"district extension"``.
    move_m : float
        For point categories: an update that moves a component further than this is no
        survey correction (``geom.moved_far``); NaN for lines and polygons. Optional in a
        catalog file, default :data:`MOVE_M`.
    """

    code: str
    code_2026: str
    major_code: str
    major_name_zh: str
    major_name_en: str
    name_zh: str
    name_en: str
    geometry: str
    department: str
    tolerance_m: float
    origin: str
    move_m: float = float("nan")


_COLUMNS = [f.name for f in fields(Category)]
_OPTIONAL = ("move_m",)
MOVE_M = 5.0
"""Default move threshold of point categories, in metres: a survey correction of a point
component (GNSS, re-measured from a kerb) stays well inside it."""


class Catalog:
    """The categories of a district, looked up by old code, new code or Chinese name.

    Parameters
    ----------
    categories : list of Category
        Already checked categories (use :func:`load_catalog` to read a file).

    Examples
    --------
    >>> cat = load_catalog()
    >>> "0118" in cat, "01018" in cat, "路灯" in cat
    (True, True, True)
    >>> cat.to_2026(["0101", "0718"]).tolist()
    ['01001', '07018']
    """

    def __init__(self, categories: list[Category]) -> None:
        self._by_code = {c.code: c for c in categories}
        self._lookup = {**self._by_code}
        self._lookup.update({c.code_2026: c for c in categories})
        self._lookup.update({c.name_zh: c for c in categories})

    def __len__(self) -> int:
        return len(self._by_code)

    def __iter__(self) -> Iterator[Category]:
        return iter(self._by_code.values())

    def __contains__(self, key: object) -> bool:
        return key in self._lookup

    def __getitem__(self, key: str) -> Category:
        try:
            return self._lookup[key]
        except KeyError:
            raise NotFound(_("no category {key!r} in the catalog; give a 4-digit code (e.g. '0101'), a 5-digit "
                             "GB/T 47678.5 code (e.g. '01001') or a Chinese name (e.g. {example!r})").format(
                key=key, example="上水井盖") + suggest(key, [c.name_zh for c in self]) + _(".")) from None

    def __repr__(self) -> str:
        majors = sorted({c.major_code for c in self})
        return f"<Catalog: {len(self)} categories in major classes {', '.join(majors)}>"

    def tolerance(self) -> dict[str, float]:
        """The duplicate tolerance in metres of each category, by either code (the one table every user reads).

        Examples
        --------
        >>> from citygrid.catalog import load_catalog
        >>> tolerance = load_catalog().tolerance()
        >>> tolerance["0101"], tolerance["01001"]
        (0.4, 0.4)
        """
        return {code: c.tolerance_m for c in self for code in (c.code, c.code_2026)}

    @property
    def codes(self) -> list[str]:
        """The 4-digit codes, in catalog order."""
        return list(self._by_code)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, source: str = "catalog") -> Catalog:
        """A catalog from a table with the columns of :class:`Category` (as :meth:`to_frame` writes it).

        Raises
        ------
        CatalogError
            If a row is bad (the message names `source`, each row and column).
        """
        return cls(_check_rows(frame, source))

    def to_frame(self) -> pd.DataFrame:
        """The catalog as a DataFrame indexed by 4-digit code."""
        frame = pd.DataFrame([asdict(c) for c in self], columns=_COLUMNS)
        return frame.set_axis(frame["code"].to_numpy(), axis=0)

    def to_2026(self, codes: ArrayLike) -> NDArray[np.object_]:
        """Map 4-digit codes to GB/T 47678.5-2026 5-digit codes (unknown codes -> None)."""
        table = {c.code: c.code_2026 for c in self}
        return np.array([table.get(c) for c in np.asarray(codes, dtype=object)], dtype=object)

    def from_2026(self, codes: ArrayLike) -> NDArray[np.object_]:
        """Map GB/T 47678.5-2026 5-digit codes to 4-digit codes (unknown codes -> None)."""
        table = {c.code_2026: c.code for c in self}
        return np.array([table.get(c) for c in np.asarray(codes, dtype=object)], dtype=object)

    def normalise(self, codes: ArrayLike) -> NDArray[np.object_]:
        """Map codes given in either layout, or Chinese names, to 4-digit codes.

        Unknown values map to None.
        """
        return np.array(
            [getattr(self._lookup.get(c), "code", None) for c in np.asarray(codes, dtype=object)],
            dtype=object,
        )


def _row_problems(row: dict) -> list[tuple[str, object, str]]:
    """What is wrong with one catalog row: ``(column, value, problem)`` each."""
    found: list[tuple[str, object, str]] = []
    formats = {
        "code": (r"\d{4}", _("is not a 4-digit code")),
        "code_2026": (r"\d{5}", _("is not a 5-digit GB/T 47678.5 code")),
        "major_code": (r"\d{2}", _("is not a 2-digit major class code")),
    }
    found += [(column, row[column], expected) for column, (pattern, expected) in formats.items()
              if not re.fullmatch(pattern, row[column])]
    if not found:
        no_major = _("does not start with its major class {major}").format(major=row["major_code"])
        found += [(column, row[column], no_major) for column in ("code", "code_2026")
                  if not row[column].startswith(row["major_code"])]
    if row["geometry"] not in GEOMETRY_KINDS:
        found.append(("geometry", row["geometry"], _("is not one of {known}").format(known="/".join(GEOMETRY_KINDS))))
    found += [(column, row[column], _("is empty")) for column in ("name_zh", "department", "major_name_zh")
              if not row[column]]
    if np.isnan(_distance(row["tolerance_m"])):
        found.append(("tolerance_m", row["tolerance_m"], _("is not a distance in metres in (0, 1000]")))
    move = row.get("move_m")
    if not (pd.isna(move) or move == "") and np.isnan(_distance(move)):
        found.append(("move_m", move, _("is not a distance in metres in (0, 1000], or empty")))
    return found


def _check_rows(frame: pd.DataFrame, source: str) -> list[Category]:
    problems: list[str] = []

    def bad(i: int, column: str, value: object, expected: str) -> None:
        problems.append(_("line {line}, column {column!r}: {value!r} {problem}").format(
            line=i + 2, column=column, value=str(value)[:40], problem=expected))

    categories = []
    for i, row in enumerate(frame.to_dict("records")):
        for column, value, problem in _row_problems(row):
            bad(i, column, value, problem)
        move = row.get("move_m")
        if pd.isna(move) or move == "":
            move = MOVE_M if row["geometry"] == "point" else None
        fixed = {c: row[c] for c in _COLUMNS if c not in _OPTIONAL}
        categories.append(Category(**{**fixed, "tolerance_m": _distance(row["tolerance_m"]),
                                      "move_m": _distance(move)}))
    for column in ("code", "code_2026", "name_zh"):
        repeated = frame[column].duplicated(keep="first")
        for n in np.flatnonzero(repeated.to_numpy()):
            first = int(np.flatnonzero((frame[column] == frame[column].iloc[n]).to_numpy())[0])
            bad(int(n), column, frame[column].iloc[n], _("repeats line {line}").format(line=first + 2))
    if problems:
        shown = "\n  ".join(problems[:20])
        more = "\n  " + _("... and {n} more").format(n=len(problems) - 20) if len(problems) > 20 else ""
        raise CatalogError(_("catalog {source!r} has {n} bad value(s):").format(source=source, n=len(problems))
                           + f"\n  {shown}{more}")
    if not categories:
        raise CatalogError(_("catalog {source!r} has no categories.").format(source=source))
    return categories


def _distance(value: Any) -> float:
    """`value` as metres in (0, 1000], else NaN."""
    try:
        metres = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return metres if 0 < metres <= 1000 else float("nan")


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load a catalog of categories.

    Parameters
    ----------
    path : str or Path, optional
        A CSV (UTF-8 or GBK) with the columns of :class:`Category` (``move_m`` optional). Default: the
        shipped catalog of the reference district (136 categories).

    Returns
    -------
    Catalog

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    CatalogError
        If a row is bad (the message names each line and column) or columns are missing.

    Examples
    --------
    >>> load_catalog()["0405"].geometry
    'polygon'
    """
    if path is None:
        with resources.as_file(resources.files("citygrid") / "data" / "catalog.csv") as p:
            return load_catalog(p)
    try:
        frame = read_csv_table(path, what=_("catalog"), required=[c for c in _COLUMNS if c not in _OPTIONAL])
    except ValueError as exc:
        raise CatalogError(str(exc)) from exc
    return Catalog(_check_rows(frame[[c for c in _COLUMNS if c in frame.columns]], str(path)))
