"""Write the sample survey batches of data/ with citygrid's own generator.

Run from the repository root: ``python data/make_samples.py``. The batches fit the registry
that ``citygrid demo --small`` builds (same seed, same district).
"""

from pathlib import Path

import pandas as pd
import pyogrio

from citygrid import synth

HERE = Path(__file__).parent
SHAPEFILE_FIELDS = {"component_id": "OBJID", "category_name": "OBJNAME", "department": "DEPTNAME1",
                    "owner": "DEPTNAME2", "maintainer": "DEPTNAME3", "grid": "BGID", "status": "OBJSTATE",
                    "survey_date": "ORDATE", "change_date": "CHDATE", "source": "DATASOURCE", "name": "NOTE",
                    "action": "ACTION"}


def as_contractor_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A CSV as contractors send it: Chinese headers, 经度/纬度, dates as YYYYMMDD."""
    out = pd.DataFrame({
        "标识码": frame["component_id"], "部件小类": frame["category"], "部件名称": frame["category_name"],
        "名称": frame["name"], "主管部门": frame["department"], "权属单位": frame["owner"],
        "养护单位": frame["maintainer"], "所在单元网格": frame["grid"], "状态": frame["status"],
        "初始日期": frame["survey_date"].dt.strftime("%Y%m%d"), "变更日期": frame["change_date"].dt.strftime("%Y%m%d"),
        "数据来源": frame["source"], "操作": frame["action"],
        "经度": frame.geometry.x.round(7), "纬度": frame.geometry.y.round(7)})
    return out


def write_shapefile(frame, path: Path) -> None:
    """A GBK (GB18030) Shapefile with CJ/T 214 field names and no .cpg (the common contractor case)."""
    out = frame[list(SHAPEFILE_FIELDS) + ["geometry"]].rename(columns=SHAPEFILE_FIELDS)
    for column in ("ORDATE", "CHDATE"):
        out[column] = out[column].dt.strftime("%Y%m%d")
    out["CATEGORY"] = frame["category"]
    pyogrio.write_dataframe(out, path, encoding="GB18030")
    path.with_suffix(".cpg").unlink(missing_ok=True)


def main() -> None:
    """Write every sample batch beside this script."""
    batches = synth.sample_batches(synth.sample_district())
    for name in ("clean", "defects"):
        frame = batches[name]
        frame.drop(columns=["truth"], errors="ignore").to_file(HERE / f"batch_{name}.gpkg", layer="batch",
                                                              engine="pyogrio")
        write_shapefile(frame, HERE / f"batch_{name}_gbk.shp")
        as_contractor_table(frame).to_csv(HERE / f"batch_{name}.csv", index=False, encoding="utf-8-sig")
    truth = batches["defects"][["truth"]].assign(row=range(1, len(batches["defects"]) + 1)).dropna()
    truth[["row", "truth"]].to_csv(HERE / "batch_defects_truth.csv", index=False)
    as_contractor_table(batches["gcj02"]).to_csv(HERE / "batch_gcj02.csv", index=False, encoding="utf-8-sig")
    district = synth.sample_district()
    history, _ = synth.make_events(district, n=8_000, seed=1, start="2026-01-01", days=270)
    history.drop(columns=["经度", "纬度"]).to_csv(HERE / "events_history.csv", index=False, encoding="utf-8-sig")
    events, truth = synth.make_events(district, n=2_000, seed=0, start="2026-10-01", days=60)
    events.drop(columns=["经度", "纬度"]).to_csv(HERE / "events_export.csv", index=False, encoding="utf-8-sig")
    events.to_csv(HERE / "events_app.csv", index=False, encoding="utf-8-sig")
    truth.to_csv(HERE / "events_truth.csv", index=False)


if __name__ == "__main__":
    main()
