"""A registry's caches follow its state id: a restored backup or a foreign snapshot is never served."""

import shutil

import pandas as pd
import pyogrio
import pytest

from citygrid import synth
from citygrid.registry import Registry, open_registry

LAYERS = ("components_point", "components_line", "components_polygon")


@pytest.fixture(scope="module")
def district():
    return synth.make_district(seed=11, n_components=1_500, reserve=400)


@pytest.fixture
def path(tmp_path, district):
    path = tmp_path / "registry.gpkg"
    Registry.create(path, district=district)
    return path


def names_in_layers(path) -> pd.Series:
    """Component names as GDAL reads them from the layers, by id (no citygrid code involved)."""
    parts = [pyogrio.read_dataframe(path, layer=layer, read_geometry=False, columns=["component_id", "name"])
             for layer in LAYERS]
    frame = pd.concat(parts, ignore_index=True)
    return frame.set_index("component_id")["name"].astype(object).fillna("").sort_index()


def names_opened(path) -> pd.Series:
    frame = open_registry(path).components_with_retired()
    return frame.set_index("component_id")["name"].astype(object).fillna("").sort_index()


def renamed(district, seed: int, name: str):
    """A batch of the same size each time: the same updated components, another name."""
    batch = synth.make_batch(district, new=0, updated=30, retired=0, seed=3)
    batch["name"] = name
    return batch


def test_a_restored_backup_then_another_merge_never_serves_the_undone_state(path, district, tmp_path):
    backup = tmp_path / "backup.gpkg"
    shutil.copy(path, backup)
    assert open_registry(path).ingest(renamed(district, 1, "甲"), source="A").accepted
    assert (names_opened(path) == "甲").sum() == 30  # the cache now holds state A
    snapshot = path.with_name(path.name + ".snapshot")
    kept = snapshot.read_bytes()
    shutil.copy(backup, path)  # the user restores the backup …
    assert open_registry(path).ingest(renamed(district, 1, "乙"), source="B").accepted
    snapshot.write_bytes(kept)  # … and a folder sync brings back the cache written in state A
    opened = names_opened(path)
    pd.testing.assert_series_equal(opened, names_in_layers(path), check_dtype=False)
    assert (opened == "乙").sum() == 30 and (opened == "甲").sum() == 0


def test_a_snapshot_copied_in_from_a_copy_of_the_registry_is_not_served(path, district, tmp_path):
    twin = tmp_path / "twin.gpkg"
    shutil.copy(path, twin)  # same creation, same history so far
    assert open_registry(path).ingest(renamed(district, 1, "甲"), source="A").accepted
    assert open_registry(twin).ingest(renamed(district, 1, "乙"), source="B").accepted
    names_opened(path)  # writes path's cache
    snapshot = path.with_name(path.name + ".snapshot")
    assert snapshot.exists()
    shutil.copy(snapshot, twin.with_name(twin.name + ".snapshot"))
    pd.testing.assert_series_equal(names_opened(twin), names_in_layers(twin), check_dtype=False)
    assert (names_opened(twin) == "乙").sum() == 30


def test_after_a_merge_the_kept_components_are_exactly_what_the_layers_hold(path, district):
    """The merge keeps the new state in memory and as the snapshot, without reading the layers: the
    kept frame must equal GDAL's reading of the layers, value for value and dtype for dtype."""
    import shapely

    from citygrid.backends import gpkg

    reg = open_registry(path)
    batch = synth.make_batch(district, new=60, updated=80, retired=12, seed=4).reset_index(drop=True)
    updates = batch.index[batch["component_id"].notna() & batch["action"].isna()]
    batch.loc[updates[:10], "geometry"] = shapely.transform(batch.geometry[updates[:10]].to_numpy(),
                                                            lambda xy: xy + [0.6, -0.4])  # every family moved
    batch.loc[updates[10:20], "survey_date"] = pd.Timestamp("2025-05-06 17:45")  # a time a DATE column drops
    batch.loc[updates[20:30], ["name", "remarks"]] = ["<b>新名</b>", "O'Brien"]
    batch.loc[updates[30:35], "change_date"] = pd.Timestamp("2026-01-02")
    result = reg.ingest(batch, source="kept")
    assert result.accepted, result.report.summary()
    kept = reg.components_with_retired()
    from_layers = gpkg.read_components_layers(path, engine="pyogrio")
    pd.testing.assert_frame_equal(kept, from_layers)
    pd.testing.assert_frame_equal(open_registry(path).components_with_retired(), from_layers)
    assert gpkg.read_snapshot(path, reg.state) is not None  # the next process opens it warm
