"""The validation report: issues as data, every one at once."""

from __future__ import annotations

import html
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from citygrid import settings
from citygrid._text import spreadsheet_safe
from citygrid.errors import UsageError, writing

COLUMNS = ("rule", "severity", "component_id", "row", "message")


class Report:
    """Issues found in a batch or a registry.

    Attributes
    ----------
    issues : geopandas.GeoDataFrame
        One row per issue: ``rule``, ``severity``, ``component_id``, ``row`` (1-based
        batch feature, NA when none), ``message``, geometry (the feature or the fault's
        location, in ``settings.default_crs``; may be empty).
    source : str
        What was validated.

    Examples
    --------
    >>> import geopandas as gpd
    >>> r = Report(gpd.GeoDataFrame({"rule": [], "severity": [], "component_id": [], "row": [],
    ...                              "message": []}, geometry=[], crs="EPSG:4547"))
    >>> r.ok, len(r)
    (True, 0)
    """

    def __init__(self, issues: gpd.GeoDataFrame, *, source: str = "batch", checked: int = 0) -> None:
        self.issues = issues
        self.source = source
        self.checked = checked

    def __len__(self) -> int:
        return len(self.issues)

    def __repr__(self) -> str:
        counts = self.issues["severity"].value_counts()
        return (f"<Report on {self.source}: {counts.get('error', 0)} errors, "
                f"{counts.get('warning', 0)} warnings in {self.checked:,} features>")

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings do not block)."""
        return not (self.issues["severity"] == "error").any()

    def summary(self) -> pd.DataFrame:
        """Issue counts per rule and severity."""
        if self.issues.empty:
            return pd.DataFrame(columns=["error", "warning"], dtype=int)
        table = self.issues.pivot_table(index="rule", columns="severity", values="message",
                                        aggfunc="count", fill_value=0)
        return table.reindex(columns=["error", "warning"], fill_value=0).astype(int)

    def summary_line(self) -> str:
        """Issue counts per rule on one line, e.g. ``"3 × id.duplicate, 1 × geom.invalid"``."""
        counts = self.issues.groupby("rule").size()
        return ", ".join(f"{n} × {rule}" for rule, n in counts.items())

    def _records(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.issues[list(COLUMNS)])
        geoms = self.issues.geometry.to_numpy()
        present = ~(pd.isna(geoms) | shapely.is_empty(np.where(pd.isna(geoms), shapely.Point(), geoms)))
        points = gpd.GeoSeries(np.where(present, shapely.point_on_surface(
            np.where(present, geoms, shapely.Point(0, 0))), None), crs=settings.default_crs)
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
            raise UsageError(f"{str(path)!r} is not a citygrid report: {exc}") from None
        issues["row"] = issues["row"].astype("Int64")
        return cls(issues.to_crs(settings.default_crs), source=str(path))

    def to_dict(self) -> dict:
        """The JSON form: ``{"issues": [...], "summary": {...}}`` with x/y in EPSG:4326."""
        records = self._records()
        issues = []
        for rec in records.to_dict("records"):
            out = {k: (None if pd.isna(v) else v) for k, v in rec.items()}
            out["row"] = None if out["row"] is None else int(out["row"])
            issues.append(out)
        counts = self.issues["severity"].value_counts()
        return {"issues": issues, "summary": {
            "source": self.source, "checked": self.checked, "ok": self.ok,
            "errors": int(counts.get("error", 0)), "warnings": int(counts.get("warning", 0)),
            "by_rule": {k: int(v) for k, v in self.issues["rule"].value_counts().sort_index().items()},
        }}

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
            elif suffix == ".csv":
                spreadsheet_safe(self._records()).to_csv(path, index=False, encoding="utf-8-sig")
            elif suffix == ".json":
                path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
            elif suffix in (".html", ".htm"):
                path.write_text(self._html(), encoding="utf-8")
            else:
                raise UsageError(f"cannot write a report as {suffix!r}; use .gpkg, .csv, .json or .html.")
        return path

    def _html(self) -> str:
        esc = html.escape
        summary = self.summary()
        rows = "".join(
            f"<tr><td>{esc(str(r))}</td><td>{e}</td><td>{w}</td></tr>"
            for r, (e, w) in summary[["error", "warning"]].iterrows())
        records = self._records()
        body = "".join(
            "<tr>" + "".join(f"<td>{esc('' if pd.isna(v) else str(v))}</td>" for v in (
                rec.rule, rec.severity, rec.component_id, rec.row, rec.message,
                "" if pd.isna(rec.x) else f"{rec.x:.6f}, {rec.y:.6f}")) + "</tr>"
            for rec in records.itertuples())
        status = "通过 passed" if self.ok else "未通过 rejected"
        return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>citygrid 校验报告 {esc(self.source)}</title>
<style>body{{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px}}
th{{background:#eee}}</style></head><body>
<h1>校验报告 Validation report</h1>
<p>{esc(self.source)} — {self.checked:,} features — <b>{status}</b></p>
<h2>Summary</h2><table><tr><th>rule</th><th>errors</th><th>warnings</th></tr>{rows}</table>
<h2>Issues ({len(records):,})</h2>
<table><tr><th>rule</th><th>severity</th><th>component</th><th>row</th><th>message</th>
<th>lon, lat</th></tr>{body}</table></body></html>
"""
