"""A real district in: its own files, in the formats a district has, to a registry."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyogrio
import pytest
import shapely

import citygrid as cg
from citygrid.district_files import check_district, init_registry, read_district
from citygrid.errors import BatchRejected, DistrictError


@pytest.fixture(scope="module")
def district():
    return cg.synth.make_district(seed=3, n_components=2000)


def write_files(d, out: Path, *, grid=None, communities=None) -> dict[str, str]:
    """The district as its data team keeps it: a GBK Shapefile without .cpg and Chinese headers, GeoJSON
    in WGS84 without street codes, a FileGDB grid with BGID only, a CGCS2000 outline, a unit list."""
    out.mkdir(parents=True, exist_ok=True)
    streets = d.streets.rename(columns={"code": "街道代码", "name": "街道名称"})
    pyogrio.write_dataframe(streets, out / "街道.shp", encoding="GB18030")
    (out / "街道.cpg").unlink(missing_ok=True)
    comms = (communities if communities is not None else d.communities).drop(columns="street_code")
    comms.rename(columns={"code": "SQDM", "name": "SQMC"}).to_crs("EPSG:4326").to_file(out / "社区.geojson")
    cells = (grid if grid is not None else d.grid).rename(columns={"code": "BGID"})[["BGID", "geometry"]]
    pyogrio.write_dataframe(cells, out / "网格.gdb", layer="cells", driver="OpenFileGDB", promote_to_multi=True)
    d.layers()["boundary"].to_crs("EPSG:4490").to_file(out / "区界.geojson")
    units = out / "units.csv"
    d.units.rename(columns={"name": "name_zh"}).to_csv(units, index=False)
    comps = d.components.assign(component_id=None)
    comps.to_file(out / "部件.gpkg", layer="components")
    return {"streets": str(out / "街道.shp"), "communities": str(out / "社区.geojson"),
            "grid": f"{out / '网格.gdb'}#cells", "boundary": str(out / "区界.geojson"), "units": str(units)}


def test_init_builds_the_registry_from_a_districts_own_files(tmp_path, district):
    files = write_files(district, tmp_path / "files")
    target = tmp_path / "pingshan.gpkg"
    args = [a for key, value in files.items() for a in (f"--{key}", value)]
    done = subprocess.run([sys.executable, "-m", "citygrid.cli", "init", str(target), *args,
                           "--components", str(tmp_path / "files" / "部件.gpkg"), "--json"],
                          capture_output=True, text=True, env={"CITYGRID_LANG": "en", "PATH": "/usr/bin"})
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    assert (said["streets"], said["communities"], said["components"]) == (6, 23, 2000)
    assert said["grid_cells"] == len(district.grid) and said["warnings"] == []
    reg = cg.open_registry(target)
    assert reg.district.code == "440310" and reg.district.name == "坪山区"
    truth = district.communities.set_index("code")["street_code"]
    found = reg.district.communities.set_index("code")["street_code"]
    assert found.sort_index().tolist() == truth.sort_index().tolist()  # linked by place, as the truth says
    cells = reg.district.grid.set_index("code")["community_code"].sort_index()
    assert cells.tolist() == district.grid.set_index("code")["community_code"].sort_index().tolist()
    assert sorted(reg.district.streets["name"]) == sorted(district.streets["name"])  # GBK read right
    assert len(reg.components) == 2000 and reg.components["component_id"].notna().all()
    assert reg.verify() == [] and reg.validate().ok


def test_a_broken_hierarchy_is_named_and_no_registry_is_made(tmp_path, district):
    removed = district.grid.iloc[:40]
    shifted = district.communities.copy()
    moved = shifted["code"].iloc[3]
    shifted.loc[shifted.index[3], "geometry"] = shapely.affinity.translate(shifted.geometry.iloc[3], 300, 0)
    files = write_files(district, tmp_path / "files", grid=district.grid.iloc[40:], communities=shifted)
    broken = read_district(**files)
    problems = check_district(broken)
    gaps = removed.groupby("community_code").apply(lambda g: g.geometry.area.sum(), include_groups=False)
    for community, area in gaps.items():  # the gap each community has is the area of its removed cells
        line = next(p for p in problems if f"community {community}" in p and "not covered by its grid" in p)
        assert abs(float(re.search(r"([\d,]+) m²", line).group(1).replace(",", "")) - area) < area * 0.01 + 5
    assert any(f"community {moved}" in p and "reaching outside" in p for p in problems)
    assert any(p.startswith("error: street") and "overlapping" not in p for p in problems) or \
        any(f"street {shifted['street_code'].iloc[3]}" in p for p in problems)
    with pytest.raises(DistrictError, match="no registry was made"):
        init_registry(tmp_path / "r.gpkg", **files)
    assert not (tmp_path / "r.gpkg").exists()


def test_components_with_errors_leave_no_registry(tmp_path, district):
    files = write_files(district, tmp_path / "files")
    bad = district.components.assign(component_id=None)
    bad.loc[bad.index[0], "status"] = "良好"
    bad.to_file(tmp_path / "bad.gpkg", layer="components")
    with pytest.raises(BatchRejected, match="1 × schema.bad_value") as caught:
        init_registry(tmp_path / "r.gpkg", components=tmp_path / "bad.gpkg", **files)
    assert caught.value.report is not None
    assert not list(tmp_path.glob("r.gpkg*"))


def test_headers_it_cannot_guess_are_asked_for_by_option(tmp_path, district):
    out = tmp_path / "files"
    files = write_files(district, out)
    odd = district.streets.rename(columns={"code": "JD_BM", "name": "JD_NAME"})
    odd.to_file(out / "odd.gpkg", layer="streets")
    files["streets"] = str(out / "odd.gpkg")
    with pytest.raises(DistrictError, match=r"--columns street.code=HEADER"):
        read_district(**files)
    d = read_district(**files, columns={"street.code": "JD_BM", "street.name": "JD_NAME"})
    assert sorted(d.streets["code"]) == sorted(district.streets["code"])
    shutil.rmtree(out / "网格.gdb")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_district(**files)
