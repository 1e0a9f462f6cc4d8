"""The validation report: issues as data, every one at once."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from citygrid import settings
from citygrid._i18n import N_, _, language
from citygrid._text import spreadsheet_safe
from citygrid._vector import write_styles
from citygrid.errors import UsageError, writing
from citygrid.styles import report_styles
from citygrid.validation._engine import Messages

COLUMNS = ("rule", "severity", "component_id", "sheet", "row", "column", "message")
"""The columns of every report: ``sheet``, ``row`` and ``column`` say where a spreadsheet shows the cell."""
SEVERITY_NAMES = {"error": N_("error"), "warning": N_("warning"), "info": N_("info")}
"""How each severity is shown to a person (the ``severity`` column keeps the code)."""


def severity_name(code: str) -> str:
    """A severity code (``error`` …) as shown to a person, in the language in use."""
    return _(SEVERITY_NAMES.get(code, code))

HEADERS = {"rule": N_("rule"), "severity": N_("severity"), "component_id": N_("component_id"), "sheet": N_("sheet"),
           "row": N_("row"), "column": N_("column"), "message": N_("message"), "x": N_("x"), "y": N_("y")}
"""The headers of a CSV report: the field names in English, words in Chinese (a .json or .gpkg report keeps
the field names whatever the language)."""
HTML_ROWS = 10_000
"""Issues an HTML report lists (a page of a million rows opens in no browser); the summary counts all."""


def _json_records(records: pd.DataFrame) -> Iterator[dict]:
    """Issue records as JSON values (None for missing, rows as integers), 50,000 at a time."""
    for start in range(0, len(records), 50_000):
        for rec in records.iloc[start:start + 50_000].to_dict("records"):
            out = {k: (None if pd.isna(v) else v) for k, v in rec.items()}
            out["row"] = None if out["row"] is None else int(out["row"])
            yield out


class Report:
    """Issues found in a batch or a registry.

    Attributes
    ----------
    source : str
        What was validated.
    checked : int
        How many features were checked.

    Examples
    --------
    >>> import geopandas as gpd
    >>> r = Report(gpd.GeoDataFrame({"rule": [], "severity": [], "component_id": [], "row": [],
    ...                              "message": []}, geometry=[], crs="EPSG:4547"))
    >>> r.ok, len(r)
    (True, 0)
    """

    def __init__(self, issues: gpd.GeoDataFrame, *, source: str = "batch", checked: int = 0,
                 messages: Messages | None = None) -> None:
        for name in ("sheet", "column"):  # reports read back from older files, findings made in Spark
            if name not in issues.columns:
                issues = issues.assign(**{name: pd.Series(None, index=issues.index, dtype=object)})
        self._table = issues  # with `messages`, column ``message`` holds their keys until the text is asked for
        self._messages = messages
        self.source = source
        self.checked = checked

    @property
    def issues(self) -> gpd.GeoDataFrame:
        """One row per issue.

        Columns ``rule``, ``severity`` (error, warning or info), ``component_id``, ``sheet`` (of a
        workbook), ``row`` (the row number a spreadsheet shows, the header and title rows counted;
        the feature's number, from 1, in a vector file; NA when none), ``column`` (the spreadsheet's
        column letter, when known), ``message``, geometry (the feature or the fault's location, in
        ``settings.default_crs``; may be empty).

        The messages' text is put in the first time this is read, and the rule, severity, sheet
        and column spelt out in each row (a report keeps them as categories): counts, :meth:`summary`, and
        :meth:`first` never copy the messages of a report of millions of issues.
        """
        spelt = {name: self._table[name].astype("str") for name in ("rule", "severity", "sheet", "column")
                 if isinstance(self._table[name].dtype, pd.CategoricalDtype)}
        if self._messages is not None:
            spelt["message"] = self._messages.take(self._table["message"].to_numpy())
            self._messages = None
        if spelt:
            self._table = self._table.assign(**spelt)
        return self._table

    @property
    def sheets(self) -> list[str]:
        """The workbook sheets the issues are on (none for a vector file)."""
        return list(self._table["sheet"].dropna().unique())

    def __len__(self) -> int:
        return len(self._table)

    def __bool__(self) -> bool:
        """Refused: ``if report:`` could mean "has issues" or "passed"; say which.

        Raises
        ------
        TypeError
            Always; use ``report.ok`` (no error) or ``len(report)`` (any issue).
        """
        raise TypeError(_("the truth value of a report is ambiguous: use report.ok (no error, so it may be merged) "
                          "or len(report) (how many issues, warnings included)."))

    def __repr__(self) -> str:
        counts = self._table["severity"].value_counts()
        return (f"<Report on {self.source}: {counts.get('error', 0)} errors, "
                f"{counts.get('warning', 0)} warnings, {counts.get('info', 0)} info in {self.checked:,} features>")

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings do not block)."""
        return not (self._table["severity"] == "error").any()

    def summary(self) -> pd.DataFrame:
        """Issue counts per rule and severity (columns ``error``, ``warning``, ``info``)."""
        if self._table.empty:
            return pd.DataFrame(columns=list(SEVERITY_NAMES), dtype=int)
        table = pd.crosstab(self._table["rule"], self._table["severity"])
        return table.reindex(columns=list(SEVERITY_NAMES), fill_value=0).astype(int)

    def summary_line(self) -> str:
        """Issue counts per rule on one line, e.g. ``"3 × id.duplicate, 1 × geom.invalid"``."""
        counts = self._table.groupby("rule").size()
        return ", ".join(f"{n} × {rule}" for rule, n in counts.items())

    def _records(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.issues.reindex(columns=list(COLUMNS)))
        geoms = self.issues.geometry.to_numpy()
        present = ~(pd.isna(geoms) | shapely.is_empty(np.where(pd.isna(geoms), shapely.Point(), geoms)))
        with np.errstate(invalid="ignore"):  # a faulty geometry (NaN coordinates …) has no point: its x, y stay NaN
            inside = shapely.point_on_surface(np.where(present, geoms, shapely.Point(0, 0)))
        points = gpd.GeoSeries(np.where(present, inside, None), crs=settings.default_crs)
        wgs = points.to_crs(settings.web_crs)
        frame["x"] = np.where(present, wgs.x, np.nan)
        frame["y"] = np.where(present, wgs.y, np.nan)
        return frame

    @classmethod
    def read(cls, path: str | Path) -> Report:
        """Read a report written by :meth:`to_file` as GeoPackage.

        Raises
        ------
        UsageError
            If the file holds no ``issues`` layer.
        """
        path = Path(path)
        try:
            issues = gpd.read_file(path, layer="issues", engine="pyogrio")
        except Exception as exc:  # pyogrio raises several kinds for a wrong file
            raise UsageError(_("{path!r} is not a citygrid report: {reason}").format(path=str(path), reason=exc)) \
                from None
        issues["row"] = issues["row"].astype("Int64")
        return cls(issues.to_crs(settings.default_crs), source=str(path))

    def to_dict(self, limit: int | None = None) -> dict:
        """The JSON form: ``{"issues": [...], "summary": {...}}`` with x/y in EPSG:4326.

        Parameters
        ----------
        limit : int, optional
            List at most this many issues, errors first, then warnings (the summary counts them all, and
            ``summary["listed"]`` says how many are listed).

        Examples
        --------
        >>> r = Report(gpd.GeoDataFrame({"rule": ["a", "b"], "severity": ["warning", "error"],
        ...     "component_id": [None, None], "row": [1, 2], "message": ["x", "y"]}, geometry=[None, None]))
        >>> d = r.to_dict(limit=1)
        >>> [i["rule"] for i in d["issues"]], d["summary"]["listed"], d["summary"]["errors"]
        (['b'], 1, 1)
        """
        shown = self.first(limit)
        return {"issues": list(_json_records(shown._records())), "summary": self._summary(listed=len(shown))}

    def first(self, limit: int | None) -> Report:
        """The report with at most `limit` issues, errors first, then warnings, then info."""
        if limit is None or len(self) <= limit:
            return self
        severity = self._table["severity"]  # compared in Arrow: a million issues' severities never become objects
        rank = np.select([(severity == s).to_numpy(dtype=bool, na_value=False) for s in SEVERITY_NAMES],
                         range(len(SEVERITY_NAMES)), default=0)
        order = np.argsort(rank, kind="stable")[:limit]
        return Report(self._table.iloc[np.sort(order)], source=self.source, checked=self.checked,
                      messages=self._messages)

    def _summary(self, *, listed: int) -> dict:
        counts = self._table["severity"].value_counts()
        return {"source": self.source, "checked": self.checked, "ok": self.ok,
                "errors": int(counts.get("error", 0)), "warnings": int(counts.get("warning", 0)),
                "info": int(counts.get("info", 0)),
                "by_rule": {k: int(v) for k, v in self._table["rule"].value_counts().sort_index().items()
                            if v},  # a categorical rule counts its other rules as 0; its categories sort as names
                "listed": listed}

    def to_file(self, path: str | Path) -> Path:
        """Write the report as GeoPackage, CSV, JSON or a standalone HTML page.

        Parameters
        ----------
        path : str or Path
            Its suffix chooses the format: ``.gpkg``, ``.csv``, ``.json``, ``.html``.

        Raises
        ------
        UsageError
            For another suffix.
        OutputError
            If the file cannot be written there.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        with writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            if suffix == ".gpkg":
                frame = self.issues.copy()
                frame["row"] = frame["row"].astype("float64")
                frame.to_file(path, layer="issues", engine="pyogrio")
                write_styles(path, report_styles("issues"))  # QGIS draws the issues by severity
            elif suffix == ".csv":
                spreadsheet_safe(self._readable(self._records())).to_csv(path, index=False, encoding="utf-8-sig")
            elif suffix == ".json":  # streamed: a million issues never sit in memory as Python dicts
                with open(path, "w", encoding="utf-8") as out:
                    summary = json.dumps(self._summary(listed=len(self)), ensure_ascii=False)
                    out.write(f'{{"summary": {summary},\n "issues": [')
                    for i, record in enumerate(_json_records(self._records())):
                        out.write(("\n  " if i == 0 else ",\n  ") + json.dumps(record, ensure_ascii=False))
                    out.write("\n ]}\n")
            elif suffix in (".html", ".htm"):
                path.write_text(self._html(), encoding="utf-8")
            else:
                raise UsageError(_("cannot write a report as {suffix!r}; use .gpkg, .csv, .json or .html.").format(
                    suffix=suffix))
        return path

    @staticmethod
    def _readable(records: pd.DataFrame) -> pd.DataFrame:
        """Records for a person: severities and headers in the language in use, codes kept beside them."""
        out = records.copy()
        out["severity"] = out["severity"].map(severity_name)
        return out.rename(columns={k: _(v) for k, v in HEADERS.items()})

    def _html(self) -> str:
        esc = html.escape
        summary = self.summary()
        rows = "".join(
            f"<tr><td>{esc(str(r))}</td><td>{e}</td><td>{w}</td><td>{i}</td></tr>"
            for r, (e, w, i) in summary[list(SEVERITY_NAMES)].iterrows())
        shown = self.first(HTML_ROWS)
        records = shown._records()
        severity = {k: _(v) for k, v in SEVERITY_NAMES.items()}
        body = "".join(
            "<tr>" + "".join(f"<td>{esc('' if pd.isna(v) else str(v))}</td>" for v in (
                rec.rule, severity.get(rec.severity, rec.severity), rec.component_id, rec.sheet, rec.row,
                rec.column, rec.message,
                "" if pd.isna(rec.x) else f"{rec.x:.6f}, {rec.y:.6f}")) + "</tr>"
            for rec in records.itertuples())
        status = _("passed") if self.ok else _("rejected")
        more = "" if len(shown) == len(self) else "<p>" + esc(_(
            "The first {shown:,}, errors first; write the report as .csv or .gpkg for all {total:,}.").format(
                shown=len(shown), total=len(self))) + "</p>"
        head = [esc(_(t)) for t in (N_("rule"), N_("severity"), N_("component"), N_("sheet"), N_("row"),
                                    N_("column"), N_("message"), N_("lon, lat"))]
        title = esc(_("Validation report"))
        lang = "zh-CN" if language() == "zh" else "en"
        return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>citygrid {title} {esc(self.source)}</title>
<style>body{{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px}}
th{{background:#eee}}</style></head><body>
<h1>{title}</h1>
<p>{esc(self.source)} — {esc(_("{n:,} features").format(n=self.checked))} — <b>{esc(status)}</b></p>
<h2>{esc(_("Summary"))}</h2><table><tr><th>{head[0]}</th><th>{esc(_("errors"))}</th><th>{esc(_("warnings"))}</th>
<th>{esc(_("info"))}</th></tr>
{rows}</table>
<h2>{esc(_("Issues ({n:,})").format(n=len(self)))}</h2>{more}
<table><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr>{body}</table></body></html>
"""
