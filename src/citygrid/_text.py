"""Text shared by every reader: decoding (UTF-8 first, then GB18030, a superset of GBK), headers, hints."""

from __future__ import annotations

import difflib
import io
from collections.abc import Hashable, Iterable
from pathlib import Path

import pandas as pd

from citygrid._i18n import _, list_text
from citygrid.errors import InputError, MissingFile

ENCODINGS = ("utf-8-sig", "gb18030")


def find_column(columns: Iterable[Hashable], names: Iterable[str]) -> Hashable | None:
    """The first of `names` among the headers `columns`, compared without case or surrounding blanks.

    Examples
    --------
    >>> find_column(["ID", " 经度 ", "Lat"], ["lon", "经度"])
    ' 经度 '
    >>> find_column(["ID"], ["lon"]) is None
    True
    """
    known = {str(c).strip().casefold(): c for c in columns}
    return next((known[key] for name in names if (key := name.strip().casefold()) in known), None)


def refuse_twin_headers(headers: Iterable[Hashable]) -> None:
    """Refuse headers that read alike (``经度`` and ``经度 ``): which one is meant would be left to chance.

    Raises
    ------
    InputError
        Naming the two headers.

    Examples
    --------
    >>> refuse_twin_headers(["经度", "纬度"])
    >>> refuse_twin_headers(["经度", " 经度"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    citygrid.errors.InputError: the headers '经度' and ' 经度' differ only by spaces or case; ...
    """
    seen: dict[str, str] = {}
    for header in headers:
        key = str(header).strip().casefold()
        if key in seen:
            raise InputError(_("the headers {a!r} and {b!r} differ only by spaces or case; rename one so that it is "
                               "clear which is meant.").format(a=seen[key], b=str(header)))
        seen[key] = str(header)


def suggest(value: str, known: Iterable[str], *, limit: int = 5) -> str:
    """A hint for a value that matched nothing: known values containing it, else close ones.

    Examples
    --------
    >>> suggest("水务局", ["深圳市水务局", "坪山区水务局", "深圳供电局"])
    "; containing '水务局': 深圳市水务局, 坪山区水务局"
    >>> suggest("损坏", ["完好", "破损", "丢失"])
    '; known: 完好, 破损, 丢失'
    """
    known = [str(k) for k in dict.fromkeys(known) if isinstance(k, str) and k]
    value = str(value)
    containing = [k for k in known if value and value in k][:limit]
    if containing:
        return _("; containing {value!r}: {found}").format(value=value, found=list_text(containing))
    close = difflib.get_close_matches(value, known, n=limit, cutoff=0.6)
    if close:
        return _("; did you mean {found}").format(found=list_text(close))
    return _("; known: {found}").format(found=list_text(known[:12]) + (" …" if len(known) > 12 else ""))


def decode(data: bytes, *, what: str) -> tuple[str, str]:
    """Decode bytes as UTF-8 or else GB18030; return ``(text, encoding)``.

    Raises
    ------
    InputError
        If neither encoding decodes the bytes strictly.
    """
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise InputError(_("{what} is neither UTF-8 nor GBK/GB18030 text; save it as UTF-8 and try again.").format(
        what=what))


def read_csv_table(path: str | Path, *, what: str, required: list[str]) -> pd.DataFrame:
    """Read a small CSV of reference data as strings, checking its header.

    Parameters
    ----------
    path : str or Path
        The CSV file (UTF-8 or GBK).
    what : str
        What the table is, for error messages (``_("catalog")``, ``_("unit list")`` ...).
    required : list of str
        Columns that must be present.

    Raises
    ------
    MissingFile
        If the file does not exist.
    InputError
        If it cannot be decoded or parsed, or lacks a required column.
    """
    path = Path(path)
    named = _("{what} file {path!r}").format(what=what, path=str(path))
    if not path.is_file():
        raise MissingFile(_("{file} does not exist.").format(file=named))
    text = decode(path.read_bytes(), what=named)[0]
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(_("{file} is not a readable CSV: {reason}").format(file=named, reason=exc)) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(_("{file} lacks column(s) {missing}; it has {columns}. Expected columns: {required}.").format(
            file=named, missing=", ".join(missing), columns=", ".join(list(frame.columns)[:20]),
            required=", ".join(required)))
    return frame.apply(lambda col: col.str.strip())


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every text cell a spreadsheet would run as a formula led by an apostrophe.

    Excel, WPS and LibreOffice show a cell starting with ``= + - @`` (or a tab or carriage
    return) as a formula; led by ``'`` it is plain text (OWASP's advice on CSV injection).

    Examples
    --------
    >>> spreadsheet_safe(pd.DataFrame({"a": ["=HYPERLINK(1)", "井盖"], "n": [-1, 2]}))["a"].tolist()
    ["'=HYPERLINK(1)", '井盖']
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
            text = values.map(lambda v: v if isinstance(v, str) else "")
            risky = text.str.startswith(_FORMULA).to_numpy(dtype=bool)
            if risky.any():
                out[column] = values.astype(object).where(~risky, "'" + text)
    return out
