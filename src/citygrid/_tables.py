"""Tables as offices send them: CSV and Excel with title rows, a second header row, merged cells, several sheets.

:func:`read_table` finds the header (the row among the first ones whose cells are the most
known headers), skips a second header row beneath it (the standard's abbreviations under the
Chinese names, or units in brackets), fills merged cells from their first cell, picks the
sheet that holds components, and keeps for every data row the row number the spreadsheet
shows (title and header rows counted) and for every column its letter, so that a report
names the cell a person opens. It also refuses what no survey table is (NUL bytes, a line of
megabytes, a thousand columns, a workbook that unpacks a hundredfold, more rows than
``settings.max_rows``) in one line, before reading it into memory.
"""

from __future__ import annotations

import csv
import io as _stdio
import re
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from citygrid import settings
from citygrid._i18n import _
from citygrid._text import decode
from citygrid.errors import BatchError

HEADER_ROWS = 30
"""How far down a sheet the header is looked for (title rows, notes, empty rows above it)."""
_UNITS = re.compile(r"^[\(（\[【].*[\)）\]】]$|^(度|米|m|°|deg|degree|degrees)$", re.I)


@dataclass
class Table:
    """A table read from a file, with where each of its rows and columns is in it.

    Attributes
    ----------
    frame : DataFrame
        The data rows under their headers (text, numbers or dates as the file holds them).
    rows : list of int
        The row number each data row has in the file as a spreadsheet shows it (1-based;
        title, header and empty rows counted).
    letters : dict
        Each header's column letter (``A``, ``B`` … ``AA``).
    sheet : str or None
        The sheet read (Excel), else None.
    header_row : int
        The row number of the header.
    notes_below : dict
        Rows under the table that are notes, not components (制表人：…, 审核：…): their row
        number and text. They are not in `frame`.
    """

    frame: pd.DataFrame
    rows: list[int]
    letters: dict[str, str] = field(default_factory=dict)
    sheet: str | None = None
    header_row: int = 1
    notes_below: dict[int, str] = field(default_factory=dict)


def column_letter(k: int) -> str:
    """The spreadsheet letter of column `k` (from 0).

    Examples
    --------
    >>> column_letter(0), column_letter(25), column_letter(26), column_letter(701)
    ('A', 'Z', 'AA', 'ZZ')
    """
    out = ""
    k += 1
    while k:
        k, rest = divmod(k - 1, 26)
        out = chr(65 + rest) + out
    return out


def _key(cell: Any) -> str:
    return unicodedata.normalize("NFKC", str(cell)).strip().upper() if cell is not None else ""


def header_score(cells: Sequence[Any], known: set[str]) -> int:
    """How many of a row's cells are known headers."""
    return sum(1 for c in cells if _key(c) in known)


def find_header(rows: Sequence[Sequence[Any]], known: set[str]) -> tuple[int, int]:
    """The index of the header row among the first rows, and how many rows beneath it are a second header.

    The header is the row with the most known headers (at least two; else the first row with
    anything in it). A row beneath it is a second header when it names known headers too, or
    holds only units in brackets.
    """
    scores = [header_score(r, known) for r in rows[:HEADER_ROWS]]
    best = max(range(len(scores)), key=lambda k: (scores[k], -k)) if scores else 0
    if not scores or scores[best] < 2:
        best = next((k for k, r in enumerate(rows[:HEADER_ROWS]) if any(_key(c) for c in r)), 0)
    below = rows[best + 1] if best + 1 < len(rows) else []
    filled = [c for c in below if _key(c)]
    second = bool(filled) and (header_score(below, known) >= 2 or all(_UNITS.match(_key(c)) for c in filled))
    return best, int(second)


def read_table(path: Path, *, known: set[str], encoding: str | None, sheet: str | None,
               notes: dict) -> Table:
    """A CSV or Excel table: its header found, its rows and columns located (see the module).

    Parameters
    ----------
    path : Path
    known : set of str
        Known headers, upper-cased (what makes a row the header).
    encoding : str, optional
        A CSV's encoding (default: UTF-8, else GBK/GB18030, detected).
    sheet : str, optional
        The Excel sheet (``--layer``); default the one that holds the most known headers.
    notes : dict
        Receives ``encoding``.

    Raises
    ------
    BatchError
        For a file that is no table, is too big, or whose sheet is not clear.
    """
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        return _workbook(path, known=known, sheet=sheet, notes=notes)
    return _csv(path, known=known, encoding=encoding, notes=notes)


def _located(rows: list[list[Any]], first: int, known: set[str], *, sheet: str | None,
             name: str) -> Table:
    """The table of `rows` (cell values; `first` is the spreadsheet number of ``rows[0]``)."""
    at, second = find_header(rows, known)
    header = [("" if c is None else str(c).strip()) for c in rows[at]] if rows else []
    body = rows[at + 1 + second:]
    width = max([len(header), *map(len, body)]) if body or header else 0
    header += [""] * (width - len(header))
    used = [k for k in range(width) if header[k] or any(k < len(r) and _key(r[k]) for r in body)]
    names = [header[k] or column_letter(k) for k in used]
    keep = [k for k, r in enumerate(body) if any(k2 < len(r) and _key(r[k2]) for k2 in used)]
    below: dict[int, str] = {}
    while len(keep) > 1 and len(used) >= 5 and _a_note(body[keep[-1]]):
        k = keep.pop()
        below[first + at + 1 + second + k] = " ".join(str(c).strip() for c in body[k] if _key(c))
    if len(keep) > settings.max_rows:
        raise BatchError(_("{name!r} has more than {n:,} rows; give a higher --max-rows, or split the batch.").format(
            name=name, n=settings.max_rows))
    frame = pd.DataFrame([[body[r][k] if k < len(body[r]) else None for k in used] for r in keep],
                         columns=names, dtype=object)
    rows_shown = [first + at + 1 + second + r for r in keep]
    return Table(frame, rows_shown, {n: column_letter(k) for n, k in zip(names, used)}, sheet, first + at,
                 dict(sorted(below.items())))


def _a_note(row: Sequence[Any]) -> bool:
    """Whether a row under a table is a note (制表人：张三, 审核：李四, 填表日期：…).

    One or two cells of text with a colon, and no number.
    """
    filled = [c for c in row if _key(c)]
    return 0 < len(filled) <= 2 and all(isinstance(c, str) and re.search(r"[:：]", c) for c in filled)


# --- CSV ---------------------------------------------------------------------------------------

def _csv(path: Path, *, known: set[str], encoding: str | None, notes: dict) -> Table:
    data = table_bytes(path)
    if encoding:
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise BatchError(_("{name!r} is not {encoding}: {reason}").format(
                name=path.name, encoding=encoding, reason=exc)) from None
    else:
        text, encoding = decode(data, what=_("batch {name!r}").format(name=path.name))
    notes["encoding"] = "UTF-8" if encoding in ("utf-8-sig", "utf-8") else encoding
    text = text.lstrip("\ufeff")
    head = text[:1 << 16]
    try:
        delimiter = csv.Sniffer().sniff(head[:head.rfind("\n") + 1] or head, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    first_lines = head.splitlines()[:HEADER_ROWS]
    if max((line.count(delimiter) for line in first_lines), default=0) >= settings.max_columns:
        raise BatchError(_("{name!r} has more than {n:,} columns in its first line; a survey table has a few "
                           "dozen.").format(name=path.name, n=settings.max_columns))
    try:
        top = list(csv.reader(_stdio.StringIO("\n".join(first_lines)), delimiter=delimiter))
        at, second = find_header(top, known)
        frame = pd.read_csv(_stdio.StringIO(text), dtype=str, keep_default_na=False, sep=delimiter, engine="c",
                            header=None, skiprows=at, nrows=settings.max_rows + 2 + second, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeError, csv.Error) as exc:
        raise BatchError(_("cannot read {name!r} as CSV: {reason}").format(name=path.name, reason=exc)) from None
    rows = frame.to_numpy(dtype=object).tolist()
    return _located([[None if c == "" else c for c in r] for r in rows], at + 1, known, sheet=None, name=path.name) \
        if rows else Table(pd.DataFrame(), [])


def table_bytes(path: Path) -> bytes:
    """The bytes of a CSV file, once they are known to be a text table of a size citygrid reads."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if head.count(b"\x00") > max(8, len(head) // 100):  # a stray NUL in a field is schema.bad_value
        raise BatchError(_("{name!r} holds NUL bytes: it is no text table; save it as CSV (UTF-8 or GBK) or "
                           "Excel.").format(name=path.name))
    if size > settings.max_table_bytes:
        raise BatchError(_("{name!r} has {size:,} bytes, more than the {most:,} a CSV batch may have; split it, or "
                           "send it as GeoPackage or GeoParquet.").format(name=path.name, size=size,
                                                                          most=settings.max_table_bytes))
    data = path.read_bytes()
    longest = max((len(line) for line in data.split(b"\n")), default=0)
    if longest > settings.max_line_bytes:
        raise BatchError(_("{name!r} has a line of {n:,} bytes, more than the {most:,} a row of a survey table "
                           "needs.").format(name=path.name, n=longest, most=settings.max_line_bytes))
    return data


# --- Excel ----------------------------------------------------------------------------------------

def _workbook(path: Path, *, known: set[str], sheet: str | None, notes: dict) -> Table:
    import openpyxl

    check_workbook(path)
    notes["encoding"] = "xlsx"
    small = path.stat().st_size < 20_000_000  # merged cells are known only outside read-only mode
    try:
        book = openpyxl.load_workbook(path, read_only=not small, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on a broken workbook
        raise BatchError(_("cannot read {name!r} as Excel: {reason}").format(
            name=path.name, reason=str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__)) from None
    try:
        names = [ws.title for ws in book.worksheets]
        if sheet is not None and sheet not in names:
            raise BatchError(_("{name!r} has no sheet {sheet!r}; it has {sheets}.").format(
                name=path.name, sheet=sheet, sheets=", ".join(names)))
        chosen = sheet or _components_sheet(book, known, path.name)
        ws = book[chosen]
        rows = _sheet_rows(ws, merged=small)
    finally:
        book.close()
    return _located(rows, 1, known, sheet=chosen, name=path.name)


def _sheet_rows(ws: Any, *, merged: bool) -> list[list[Any]]:
    """A sheet's cell values, merged ranges filled from their first cell, up to the rows citygrid reads."""
    rows = []
    for row in ws.iter_rows(values_only=True):
        rows.append(list(row))
        if len(rows) > settings.max_rows + HEADER_ROWS:
            break
    if merged:
        for cells in ws.merged_cells.ranges:
            value = rows[cells.min_row - 1][cells.min_col - 1] if cells.min_row <= len(rows) else None
            for r in range(cells.min_row - 1, min(cells.max_row, len(rows))):
                for c in range(cells.min_col - 1, cells.max_col):
                    if c < len(rows[r]):
                        rows[r][c] = value
    return rows


def _components_sheet(book: Any, known: set[str], name: str) -> str:
    """The sheet whose header names the most known columns; refused when two are as good."""
    scored = []
    for ws in book.worksheets:
        top = [list(r) for _row, r in zip(range(HEADER_ROWS), ws.iter_rows(values_only=True))]
        scored.append((max((header_score(r, known) for r in top), default=0), ws.title))
    scored.sort(reverse=True)
    if len(scored) > 1 and scored[0][0] == scored[1][0] and scored[0][0] >= 2:
        raise BatchError(_("{name!r} has several sheets of components ({sheets}); choose one with --layer "
                           "NAME.").format(name=name, sheets=", ".join(t for _s, t in scored)))
    return scored[0][1]


def check_workbook(path: Path) -> None:
    """Refuse a workbook that unpacks to far more than it weighs (a zip bomb), before reading a cell."""
    try:
        with zipfile.ZipFile(path) as book:
            packed = sum(i.compress_size for i in book.infolist())
            unpacked = sum(i.file_size for i in book.infolist())
    except (zipfile.BadZipFile, OSError):
        return  # not a zip: openpyxl says what is wrong with it
    if unpacked > settings.max_unzip_ratio * max(packed, 1) and unpacked > 50_000_000:
        raise BatchError(_("{name!r} unpacks from {packed:,} to {unpacked:,} bytes; a workbook that grows {ratio:.0f} "
                           "times is refused (real ones grow 5 to 20 times).").format(
            name=path.name, packed=packed, unpacked=unpacked, ratio=unpacked / max(packed, 1)))

