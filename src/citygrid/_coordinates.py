"""Coordinates as people write them in a table: decimals, degrees with a sign, DMS and DDM, full-width digits.

``114.3416514``, ``114,3416514`` (a decimal comma), ``114.3416514°``, ``E114.3416514``,
``东经114.3416514``, ``114°20'29.95"E``, ``114°20′29.95″``, ``114度20分29.95秒``, ``114 20 29.95``
(degrees, minutes and seconds), ``114°20.499'`` (degrees and decimal minutes), with full-width
digits too. West and south are negative. Minutes and seconds must be under 60; anything else is
not a coordinate, and is reported, never guessed.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import numpy as np
import pandas as pd

_HEMISPHERE = r"(?P<h>[EWNSewns]|东经|西经|北纬|南纬)"
_AFTER = _HEMISPHERE.replace("h>", "h2>")
_SIGNED = re.compile(rf"^{_HEMISPHERE}?\s*(?P<d>[+-]?\d+(?:[.,]\d+)?(?:[eE][+-]?\d+)?)\s*(?:°|度)?\s*{_AFTER}?$")
_DMS = re.compile(rf"^{_HEMISPHERE}?\s*(?P<d>\d+)\s*(?:°|度|\s)\s*(?P<m>\d+)\s*(?:['′’]|分|\s)\s*"
                  rf"(?P<s>\d+(?:[.,]\d+)?)\s*(?:[\"″”]|''|秒)?\s*{_AFTER}?$")
_DDM = re.compile(rf"^{_HEMISPHERE}?\s*(?P<d>\d+)\s*(?:°|度|\s)\s*(?P<m>\d+(?:[.,]\d+)?)\s*(?:['′’]|分)?\s*"
                  rf"{_AFTER}?$")
_NEGATIVE = {"W", "S", "西经", "南纬"}

FORMS = ("decimal", "decimal comma", "full-width", "degrees", "dms", "ddm")
"""How a coordinate was written: plain decimal degrees or metres, a decimal comma, full-width digits,
degrees with a sign or hemisphere, degrees-minutes-seconds, degrees and decimal minutes."""


def _one(value: Any) -> tuple[float, str]:
    """One value as ``(number, form)``; ``(nan, "")`` when empty, ``(nan, "unreadable")`` when no coordinate."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan, ""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        number = float(value)
        return (number, "decimal") if np.isfinite(number) else (np.nan, "unreadable")
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if not text:
        return np.nan, ""
    wide = text != str(value).strip()
    for pattern, form in ((_SIGNED, "degrees"), (_DMS, "dms"), (_DDM, "ddm")):
        match = pattern.fullmatch(text)
        if match is None:
            continue
        parts = match.groupdict()
        degrees = float(parts["d"].replace(",", "."))
        minutes = float((parts.get("m") or "0").replace(",", "."))
        seconds = float((parts.get("s") or "0").replace(",", "."))
        if minutes >= 60 or seconds >= 60:
            return np.nan, "unreadable"
        number = abs(degrees) + minutes / 60 + seconds / 3600
        if not np.isfinite(number):
            return np.nan, "unreadable"
        negative = degrees < 0 or (parts.get("h") or parts.get("h2") or "").upper() in _NEGATIVE
        hemispheres = [h for h in (parts.get("h"), parts.get("h2")) if h]
        if form == "degrees" and not hemispheres and not re.search(r"°|度", text):
            form = "decimal comma" if "," in parts["d"] else "full-width" if wide else "decimal"
        return (-number if negative else number), form
    return np.nan, "unreadable"


def read_coordinates(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    r"""Read a coordinate column as numbers, and how each value was written.

    Returns
    -------
    (Series, Series)
        The numbers (NaN where empty or unreadable) and the form of each value: ``""``
        (empty), one of :data:`FORMS` or ``"unreadable"``.

    Examples
    --------
    >>> numbers, forms = read_coordinates(pd.Series(["114.3416514", "114°20'29.95\"E", "114°20.499'",
    ...                                              "１１４．３４", "W 70.5", "114,35", "东经114度"]))
    >>> [round(n, 6) for n in numbers]
    [114.341651, 114.341653, 114.34165, 114.34, -70.5, 114.35, 114.0]
    >>> forms.tolist()
    ['decimal', 'dms', 'ddm', 'full-width', 'degrees', 'decimal comma', 'degrees']
    """
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.astype(float)
        finite = np.isfinite(numbers.to_numpy())
        return numbers.where(finite), pd.Series(np.where(finite, "decimal", np.where(values.isna(), "",
                                                                                       "unreadable")),
                                                index=values.index)
    read = {v: _one(v) for v in pd.unique(values.to_numpy(dtype=object)) if not _nan(v)}
    pairs = values.map(lambda v: (np.nan, "") if _nan(v) else read[v])
    return (pd.Series([p[0] for p in pairs], index=values.index, dtype=float),
            pd.Series([p[1] for p in pairs], index=values.index, dtype=object))


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))
