"""Recall and precision of every rule on faults made without the validator (see ``faults.py``)."""

import dataclasses
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

import citygrid as cg
import faults
from citygrid import synth
from citygrid.registry import Registry

TARGET = 0.99


@pytest.fixture(scope="module")
def world():
    district = synth.make_district(seed=3, n_components=8_000)
    registered, spare = faults.split(district, 0.25, seed=3)
    return district, registered, spare


@pytest.fixture(scope="module")
def batch_case(world, tmp_path_factory):
    district, registered, spare = world
    path = tmp_path_factory.mktemp("faults") / "registry.gpkg"
    reg = Registry.create(path, district=dataclasses.replace(district, components=registered))
    gone = registered.sample(12, random_state=3).assign(action="retire")
    assert reg.ingest(gone, source="retired before the survey").accepted
    current = registered[~registered["component_id"].isin(gone["component_id"])]
    case = faults.batch_case(district, current, spare, list(gone["component_id"]), per_shape=3, seed=3)
    return reg, case


@pytest.fixture(scope="module")
def registry_case(world, tmp_path_factory):
    district, registered, spare = world
    path = tmp_path_factory.mktemp("faulty") / "registry.gpkg"
    Registry.create(path, district=dataclasses.replace(district, components=registered))
    case, grid_faults = faults.registry_case(district, registered, spare, per_shape=3, seed=4)
    faults.write_into(path, case, grid_faults, district.grid)
    return cg.open_registry(path), case, grid_faults, district.grid


def _assert_on_target(table: pd.DataFrame) -> None:
    low = table[(table["recall"] < TARGET) | (table["precision"] < TARGET)]
    assert low.empty, "\n" + table.to_string()


def test_a_batch_against_the_registry(batch_case):
    reg, case = batch_case
    report = cg.validate(case.frame, registry=reg)
    table = faults.score(report.issues, case.truth)
    _assert_on_target(table)
    clean = {r for f in case.truth if not f["rules"] and not f["maybe"] for r in f["rows"]}
    assert not clean & set(report.issues["row"].dropna().astype(int)), "a clean row was reported"


def test_an_ingest_decides_as_validate_does(batch_case):
    reg, case = batch_case
    dry = reg.ingest(case.frame, source="faulty survey", dry_run=True)
    assert not dry.accepted
    plain = cg.validate(case.frame, registry=reg).issues
    assert sorted(zip(dry.report.issues["rule"], dry.report.issues["row"])) == \
        sorted(zip(plain["rule"], plain["row"]))


def _as_file(case, tmp_path):
    """The faulty batch as a GeoPackage (dates that do not parse become empty)."""
    path = tmp_path / "batch.gpkg"
    frame = case.frame.copy()
    for column in ("survey_date", "change_date"):
        frame[column] = pd.to_datetime(frame[column], errors="coerce")
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # GDAL: mixed geometry types in one layer
        frame.to_file(path, layer="batch", engine="pyogrio")
    return path


def test_the_batch_read_back_from_a_file(batch_case, tmp_path):
    """The same batch through a GeoPackage file: no crash, the same faults found."""
    reg, case = batch_case
    path = _as_file(case, tmp_path)
    report = cg.validate(path, registry=reg)
    found = set(report.issues["rule"])
    expected = {r for f in case.truth for r in f["rules"]}
    assert expected - found <= {"schema.bad_value"}, expected - found  # unparseable dates became empty


def test_whole_batches_for_the_crs_rules(batch_case):
    reg, case = batch_case
    table = faults.score_batches(case.batch_level, lambda frame, **o: cg.validate(frame, registry=reg, **o))
    assert set(table["rule"]) == {"crs.missing", "crs.axis_swapped", "crs.gcj02_suspected", "crs.assumed",
                                  "schema.unknown_column"}
    _assert_on_target(table)


def test_a_registry_edited_by_another_program(registry_case):
    reg, case, grid_faults, grid = registry_case
    issues = reg.validate().issues
    components = issues[~issues["rule"].str.startswith("grid.")]
    _assert_on_target(faults.score(components, case.truth, key="ids"))
    _assert_on_target(faults.score_grid(issues, grid_faults, grid))


def test_every_rule_meets_a_fault(batch_case, registry_case):
    _, case = batch_case
    _, reg_case, grid_faults, _ = registry_case
    exercised = {r for f in case.truth + reg_case.truth for r in f["rules"]}
    exercised |= {r for _, _, rules in case.batch_level for r in rules}
    exercised |= {r for f in grid_faults for r in f["rules"]}
    assert exercised == set(cg.RULES)


def _same_reports(a, b) -> None:
    columns = ["rule", "severity", "component_id", "sheet", "row", "column", "message"]
    left, right = a.issues[columns].astype(object), b.issues[columns].astype(object)
    assert len(left) == len(right)
    assert left.where(left.notna(), None).values.tolist() == right.where(right.notna(), None).values.tolist()
    assert list(a.issues.geometry.to_wkb()) == list(b.issues.geometry.to_wkb())
    assert a.checked == b.checked


@pytest.mark.parametrize("size", [1, 7, 500])
def test_a_batch_in_parts_gives_the_report_of_the_whole(batch_case, tmp_path, monkeypatch, size):
    """The faulty batch validated part by part, from a frame and streamed from a file: issue for issue the same."""
    reg, case = batch_case
    path = _as_file(case, tmp_path)
    whole = {"frame": cg.validate(case.frame, registry=reg), "file": cg.validate(path, registry=reg)}
    monkeypatch.setattr(cg.settings, "batch_part_rows", size)
    assert len(whole["frame"]) > 100
    _same_reports(cg.validate(case.frame, registry=reg), whole["frame"])
    _same_reports(cg.validate(path, registry=reg), whole["file"])
    for k, (batch, options, _rules) in enumerate(case.batch_level):  # batch-level faults: the CRS decided once
        sources = [batch]
        if isinstance(batch, gpd.GeoDataFrame):  # also a file with no CRS: guessed from the first part's coordinates
            sources.append(tmp_path / f"level{k}.gpkg")
            text = {c: batch[c].astype(str) for c in ("survey_date", "change_date") if c in batch}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pyogrio: no CRS given (the point of this file)
                batch.assign(**text).set_crs(None, allow_override=True).to_file(sources[1], engine="pyogrio")
        for source in sources:
            monkeypatch.setattr(cg.settings, "batch_part_rows", 10**9)
            one = cg.validate(source, registry=reg, **options)
            monkeypatch.setattr(cg.settings, "batch_part_rows", 2)
            _same_reports(cg.validate(source, registry=reg, **options), one)


def test_the_first_issues_listed_read_as_in_the_whole_report(batch_case, monkeypatch):
    """A report lists its first issues (errors first) from the messages as the rules kept them, part by part:
    the same text, rule and component as the same rows of the whole report."""
    reg, case = batch_case
    monkeypatch.setattr(cg.settings, "batch_part_rows", 7)
    report = cg.validate(case.frame, registry=reg)
    listed = report.to_dict(limit=40)["issues"]
    whole = cg.validate(case.frame, registry=reg).issues
    rank = whole["severity"].map({"error": 0, "warning": 1, "info": 2}).to_numpy()
    chosen = whole.iloc[np.sort(np.argsort(rank, kind="stable")[:40])]
    assert len(listed) == 40 and len(whole) > 100
    assert [(i["rule"], i["component_id"], i["message"]) for i in listed] == [
        (r, None if pd.isna(c) else c, m) for r, c, m in zip(chosen["rule"], chosen["component_id"], chosen["message"])]
    counted = {(r, s): n for r, row in report.summary().iterrows() for s, n in row.items() if n}
    assert counted == whole.groupby(["rule", "severity"]).size().to_dict()


def test_a_report_counts_from_its_compact_columns_as_from_its_issues(batch_case):
    """A report keeps rule and severity as categories until its issues are read: every count, line and
    listing it gives from them equals what the same issues, spelt out as text, give."""
    reg, case = batch_case
    report = cg.validate(case.frame, registry=reg)
    assert isinstance(report._table["rule"].dtype, pd.CategoricalDtype)
    spelt = cg.Report(report.issues.copy(), source=report.source, checked=report.checked)
    assert str(report.issues["rule"].dtype) == "str" and str(report.issues["severity"].dtype) == "str"
    fresh = cg.validate(case.frame, registry=reg)  # not yet spelt out
    assert fresh.summary().equals(spelt.summary())
    assert list(fresh.summary().index) == sorted(fresh.summary().index)
    assert fresh.summary_line() == spelt.summary_line()
    assert repr(fresh) == repr(spelt) and fresh.ok == spelt.ok
    assert fresh.to_dict(limit=25) == spelt.to_dict(limit=25)
    assert fresh.to_dict(limit=25)["summary"]["by_rule"] == spelt.issues["rule"].value_counts().sort_index().to_dict()


@pytest.mark.parametrize("snapshot", [True, False])
def test_a_batch_checked_against_the_registrys_columns_it_reads(batch_case, snapshot):
    """A registry not yet in memory is read for validation in the columns the rules read (from its
    snapshot, or its layers): the report is the one against every column."""
    reg, case = batch_case
    whole = cg.validate(case.frame, registry=reg.reference())
    if not snapshot:
        reg.store.path.with_name(reg.store.path.name + ".snapshot").unlink(missing_ok=True)
    fresh = cg.open_registry(reg.store.path)
    assert list(fresh.reference(cg.validation.REGISTRY_COLUMNS).components.columns) == list(
        cg.validation.REGISTRY_COLUMNS)
    assert fresh._cache is None  # read for validation only, not kept as the registry's state
    _same_reports(cg.validate(case.frame, registry=fresh), whole)
    assert len(whole) > 100 and {"owner.conflict", "geom.moved_far", "schema.initial_date_changed",
                                 "topology.duplicate_feature", "id.duplicate"} <= set(whole.issues["rule"])
