"""A registry's caches follow its state id: a restored backup or a foreign snapshot is never served."""

import shutil

import pandas as pd
import pyogrio
import pytest

from citygrid import synth
from citygrid.backends import _snapshot, gpkg
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
    gpkg.settle(path)  # written in the background
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
    gpkg.settle(path)
    assert snapshot.exists()
    shutil.copy(snapshot, twin.with_name(twin.name + ".snapshot"))
    pd.testing.assert_series_equal(names_opened(twin), names_in_layers(twin), check_dtype=False)
    assert (names_opened(twin) == "乙").sum() == 30


def test_after_a_merge_the_kept_components_are_exactly_what_the_layers_hold(path, district):
    """The merge keeps the new state in memory and as the snapshot, without reading the layers: the
    kept frame must equal GDAL's reading of the layers, value for value and dtype for dtype."""
    import shapely

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


def test_a_snapshot_written_in_the_background_is_whole_when_the_process_ends(path, district):
    """The open returns before its snapshot is written; the process does not end before it is."""
    import subprocess
    import sys

    conn = gpkg.connect(path)  # an edit by another program: the next open reads the layers
    conn.execute("UPDATE components_point SET name = '外' WHERE fid = 1")
    conn.close()
    code = ("import sys; from citygrid.registry import open_registry; "
            "reg = open_registry(sys.argv[1]); print(reg.state, len(reg.components_with_retired()))")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    state, count = done.stdout.split()
    kept = gpkg.read_snapshot(path, state)
    assert kept is not None and len(kept) == int(count)
    pd.testing.assert_frame_equal(kept, gpkg.read_components_layers(path, engine="pyogrio"))
    assert [p.name for p in path.parent.iterdir() if ".snapshot." in p.name] == []  # no partial file left
    reg = open_registry(path)  # a merge right after a cold open waits for the snapshot, then writes
    conn = gpkg.connect(path)
    conn.execute("UPDATE components_point SET name = '外2' WHERE fid = 1")
    conn.close()
    assert len(reg.components) and reg.ingest(renamed(district, 1, "丙"), source="C").accepted
    gpkg.settle(path)
    assert [p.name for p in path.parent.iterdir() if ".snapshot." in p.name] == []
    assert (names_opened(path) == "丙").sum() == 30


def test_a_command_that_ends_right_after_its_merge_leaves_the_snapshot_of_its_state(tmp_path):
    """`citygrid ingest` ends as soon as it has merged; the thread that keeps the new state must
    still finish. 6,000 rows: enough that pyarrow would convert the columns in its thread pool,
    which takes no work once the interpreter shuts down."""
    import subprocess
    import sys
    from pathlib import Path

    district = synth.make_district(seed=12, n_components=6_000, reserve=300)
    path = tmp_path / "registry.gpkg"
    Registry.create(path, district=district)
    batch = tmp_path / "batch.gpkg"
    synth.make_batch(district, new=200, updated=100, retired=10, seed=2).to_file(batch, layer="batch")
    citygrid = Path(sys.executable).with_name("citygrid")
    done = subprocess.run([str(citygrid), "ingest", str(batch), "--registry", str(path), "--source", "survey"],
                          capture_output=True, text=True, check=True)
    assert "Traceback" not in done.stderr and "Exception" not in done.stderr, done.stderr
    reg = open_registry(path)
    kept = gpkg.read_snapshot(path, reg.state)
    assert kept is not None and len(kept) == 6_200  # the next command opens warm
    pd.testing.assert_frame_equal(kept, gpkg.read_components_layers(path, engine="pyogrio"))


def test_what_the_caller_does_to_the_frame_after_an_open_never_reaches_the_snapshot(path):
    """The snapshot is made from the frame by a thread after the open returns; the caller may
    already be changing that frame."""
    conn = gpkg.connect(path)  # an edit by another program: the next open reads the layers
    conn.execute("UPDATE components_point SET name = '外' WHERE fid = 1")
    conn.close()
    reg = open_registry(path)
    frame = reg.components_with_retired()
    frame["name"] = "改"  # right away, while the thread may still be converting it
    frame.loc[frame.index[:5], "remarks"] = "<b>在笔记本里改的</b>"
    frame["extra"] = 1
    del frame["status"]
    gpkg.settle(path)
    kept = gpkg.read_snapshot(path, reg.state)
    assert kept is not None
    pd.testing.assert_frame_equal(kept, gpkg.read_components_layers(path, engine="pyogrio"))


@pytest.mark.slow
def test_a_damaged_snapshot_is_never_served_and_never_fatal(path, district, tmp_path):
    """Bytes flipped, the file cut, parts swapped or replaced, 240 times: an open gives exactly the
    layers' components, or reads them again; it never crashes."""
    import numpy as np

    names_opened(path)  # the first open keeps the snapshot
    gpkg.settle(path)
    snapshot = path.with_name(path.name + ".snapshot")
    good = snapshot.read_bytes()
    other = tmp_path / "other.gpkg"
    Registry.create(other, district=synth.make_district(seed=12, n_components=300))
    names_opened(other)
    gpkg.settle(other)
    foreign = other.with_name(other.name + ".snapshot").read_bytes()
    truth = gpkg.read_components_layers(path, engine="pyogrio")
    rng = np.random.default_rng(0)
    for case in range(240):
        data = bytearray(good)
        how = case % 6
        if how == 0:  # a few bytes flipped anywhere
            for at in rng.integers(0, len(data), size=int(rng.integers(1, 9))):
                data[at] ^= int(rng.integers(1, 256))
        elif how == 1:  # one byte flipped inside the Arrow data
            at = int(rng.integers(_snapshot._HEADER.size, len(data)))
            data[at] ^= 0xFF
        elif how == 2:  # cut short, as by a full disk
            data = data[:int(rng.integers(0, len(data)))]
        elif how == 3:  # the two parts' bytes swapped
            cut = int(rng.integers(_snapshot._HEADER.size, len(data)))
            data = data[:_snapshot._HEADER.size] + data[cut:] + data[_snapshot._HEADER.size:cut]
        elif how == 4:  # another registry's snapshot under this name, its header made to match
            data = bytearray(good[:_snapshot._HEADER.size]) + foreign[_snapshot._HEADER.size:]
        else:  # random garbage of the same length
            data = bytearray(rng.integers(0, 256, size=len(data), dtype=np.uint8).tobytes())
        gpkg.settle(path)  # the snapshot an open wrote again, before it is damaged anew
        snapshot.write_bytes(bytes(data))
        read = gpkg.read_snapshot(path, open_registry(path).state)
        assert read is None or read.equals(truth), case
        opened = open_registry(path).components_with_retired()
        pd.testing.assert_frame_equal(opened, truth, obj=f"case {case}")


def test_a_layer_rewritten_by_another_program_is_seen(path, district):
    """ogr2ogr -overwrite (here: pyogrio) drops the triggers and the unique index with the table."""
    names_opened(path)  # a snapshot of the state before
    points = pyogrio.read_dataframe(path, layer="components_point")
    points.loc[points.index[:5], "name"] = "外部改写"
    pyogrio.write_dataframe(points, path, layer="components_point")  # a new table: no trigger fires
    assert gpkg.missing_guards(path)
    pd.testing.assert_series_equal(names_opened(path), names_in_layers(path), check_dtype=False)
    assert (names_opened(path) == "外部改写").sum() == 5
    assert gpkg.missing_guards(path)  # opening never writes: verify names what is missing
    assert any("guard missing" in line for line in open_registry(path).verify())
    reg = open_registry(path)
    reg.allow(reg.components["component_id"].iloc[0], "geom.moved_far", "a write")  # citygrid's next write
    assert gpkg.missing_guards(path) == []  # put them back
    conn = gpkg.connect(path)  # a later edit is seen again through the triggers
    with conn:
        conn.execute("UPDATE components_point SET name = '再改' WHERE fid IN (SELECT fid FROM components_point "
                     "ORDER BY fid LIMIT 3 OFFSET 5)")
    conn.close()
    assert (names_opened(path) == "再改").sum() == 3


@pytest.mark.parametrize("before", [True, False])
def test_reading_leaves_garbage_collection_as_it_was(path, before):
    """Reads switch the cyclic collector off while they make geometries, and back as it was."""
    import gc

    (gc.enable if before else gc.disable)()
    try:
        open_registry(path).components_with_retired()  # the layers, then the snapshot
        assert len(open_registry(path).components) == 1_500
        assert gc.isenabled() is before
    finally:
        gc.enable()
