"""Dates and times as Chinese offices and systems write them, read to the district's local time.

One reader for survey dates (初始日期, 变更日期) and hotline times (上报时间, 办结时间):

- ISO dates and times, with ``-``, ``/`` or ``.`` between year, month and day
  (``2026-11-23``, ``2026/11/23 08:30``, ``2026.11.23``), and ``YYYYMMDD``;
- ``2026年11月23日`` and ``2026年11月23日 8时30分`` (full-width digits too);
- Excel serial numbers (``46349`` is 2026-11-23), as a spreadsheet gives an unformatted date cell;
- times with a UTC offset (``+08:00``, ``Z``), converted to the district's zone
  (``settings.timezone``); times without one are taken as local already.

Everything comes out as a naive time in the district's zone. Nothing is guessed: a form that
could mean two things (``03/04/2026``: March or April?) is refused, and so are words
(``now``, ``today``, ``yesterday``), which would change meaning with the day the file is read.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from citygrid import settings

EXCEL_EPOCH = dt.datetime(1899, 12, 30)
"""Day 0 of Excel's serial dates (1900 system, with its leap-year bug folded in)."""
_SERIALS = (20_000, 80_000)  # 1954-10-03 to 2119-01-10: a serial date of a component or an event

_YMD = re.compile(r"(\d{4})\s*([-/.])\s*(\d{1,2})\s*\2\s*(\d{1,2})"
                  r"(?:[T\s]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?")
_CHINESE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?"
                      r"(?:\s*(\d{1,2})\s*[时点:：]\s*(?:(\d{1,2})\s*分?)?\s*(?:(\d{1,2})\s*秒)?)?")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?")
_DMY = re.compile(r"\d{1,2}\s*[-/.]\s*\d{1,2}\s*[-/.]\s*\d{4}.*")
_SERIAL = re.compile(r"\d{5}(?:\.\d+)?")

FORMS = ("iso", "chinese", "compact", "excel", "offset")
"""How a value was read when it was not an ISO date already: the codes of ``read_times``' forms."""


def _local(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """A naive local time: an aware one converted to `zone`, a naive one as it is."""
    return moment.astimezone(zone).replace(tzinfo=None) if moment.tzinfo is not None else moment


def _offset(text: str | None) -> dt.timezone | None:
    if not text:
        return None
    if text == "Z":
        return dt.timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _one(value: Any, zone: ZoneInfo) -> tuple[dt.datetime | None, str]:
    """One value as ``(local time, form)``; ``(None, "")`` when empty, ``(None, why)`` when refused."""
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None, ""
    if isinstance(value, dt.datetime):
        return _local(pd.Timestamp(value).to_pydatetime(), zone), "offset" if value.tzinfo else "iso"
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day), "iso"
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).to_pydatetime(), "iso"
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        if _SERIALS[0] <= value <= _SERIALS[1]:
            return EXCEL_EPOCH + dt.timedelta(days=float(value)), "excel"
        return None, "unreadable"
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if not text:
        return None, ""
    try:
        if match := _YMD.fullmatch(text):
            y, _sep, m, d, hh, mm, ss, frac, off = match.groups()
            moment = dt.datetime(int(y), int(m), int(d), int(hh or 0), int(mm or 0), int(ss or 0),
                                 int((frac or "0").ljust(6, "0")), tzinfo=_offset(off))
            return _local(moment, zone), "offset" if off else "iso"
        if match := _CHINESE.fullmatch(text):
            y, m, d, hh, mm, ss = match.groups()
            return dt.datetime(int(y), int(m), int(d), int(hh or 0), int(mm or 0), int(ss or 0)), "chinese"
        if match := _COMPACT.fullmatch(text):
            y, m, d, hh, mm, ss = match.groups()
            return dt.datetime(int(y), int(m), int(d), int(hh or 0), int(mm or 0), int(ss or 0)), "compact"
        if _SERIAL.fullmatch(text) and _SERIALS[0] <= float(text) <= _SERIALS[1]:
            return EXCEL_EPOCH + dt.timedelta(days=float(text)), "excel"
    except ValueError:  # a month 13, a 30 February, an hour 25
        return None, "unreadable"
    return None, "ambiguous" if _DMY.fullmatch(text) else "unreadable"


def read_times(values: Any, *, zone: str | None = None) -> tuple[pd.Series, pd.Series]:
    """Read dates and times as :mod:`this module <citygrid._dates>` describes.

    Parameters
    ----------
    values : array_like
        Text, numbers, dates or datetimes, mixed as a spreadsheet gives them.
    zone : str, optional
        The district's time zone (default ``settings.timezone``).

    Returns
    -------
    (Series, Series)
        The naive local times (``datetime64[ms]``, NaT where empty or refused), and how each
        value was read: ``""`` (empty), one of :data:`FORMS`, ``"unreadable"`` or
        ``"ambiguous"`` (day and month could be either way round).

    Examples
    --------
    >>> times, forms = read_times(["2026年11月23日", "2026-11-23T01:00:00Z", "46349", "03/04/2026", "now", None])
    >>> [str(t) for t in times]
    ['2026-11-23 00:00:00', '2026-11-23 09:00:00', '2026-11-23 00:00:00', 'NaT', 'NaT', 'NaT']
    >>> forms.tolist()
    ['chinese', 'offset', 'excel', 'ambiguous', 'unreadable', '']
    """
    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        local = series.dt.tz_convert(zone or settings.timezone).dt.tz_localize(None) \
            if getattr(series.dt, "tz", None) is not None else series
        return local.astype("datetime64[ms]"), pd.Series(np.where(series.isna(), "", "iso"), index=series.index)
    tz = ZoneInfo(zone or settings.timezone)
    objects = series.astype(object)
    uniques = pd.unique(objects.to_numpy())
    read = {key: _one(key, tz) for key in uniques if not _unhashable(key)}
    pairs = objects.map(lambda v: read.get(v, (None, "")) if not _unhashable(v) else _one(v, tz))
    times = pd.to_datetime(pairs.map(lambda p: p[0]), errors="coerce").astype("datetime64[ms]")
    forms = pairs.map(lambda p: p[1]).astype(object)
    return pd.Series(times.to_numpy(), index=series.index), forms


def _unhashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return True
    return isinstance(value, float) and np.isnan(value)  # every NaN is another key
