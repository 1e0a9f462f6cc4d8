"""validate and ingest agree: one normalising step, so a batch that validates clean is a batch that ingests."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citygrid import synth
from citygrid.errors import BatchError
from citygrid.registry import Registry
from citygrid.validation import validate

DATA = Path(__file__).resolve().parents[1] / "data"
ADMIN = ["grid", "street_code", "street", "community_code", "community"]


@pytest.fixture(scope="module")
def district():
    return synth.make_district(seed=9, n_components=2_500, reserve=600)


@pytest.fixture(scope="module")
def reg(tmp_path_factory, district):
    return Registry.create(tmp_path_factory.mktemp("normalise") / "registry.gpkg", district=district)


def agree(reg, batch, **options) -> bool:
    """Both paths' verdicts; a batch neither can read must fail both with BatchError."""
    try:
        ok = validate(batch, registry=reg, **options).ok
    except BatchError:
        with pytest.raises(BatchError):
            reg.ingest(batch, source="dry", dry_run=True, **options)
        return False
    accepted = reg.ingest(batch, source="dry", dry_run=True, **options).accepted
    assert ok == accepted, (ok, accepted)
    return ok


def as_2026(ids):
    return [None if i is None or i != i else i[:8] + "0" + i[8:] for i in ids]


def test_an_empty_grid_cell_street_or_community_is_filled_for_both(reg, district):
    batch = synth.make_batch(district, new=6, updated=6, retired=0, seed=1).reset_index(drop=True)
    batch.loc[0:4, ADMIN] = None
    report = validate(batch, registry=reg)
    assert report.ok, report.summary()
    assert agree(reg, batch)


def test_identifiers_in_the_2026_layout_are_read_in_the_registrys_layout_by_both(reg, district):
    batch = synth.make_batch(district, new=3, updated=5, retired=0, seed=2).reset_index(drop=True)
    batch["component_id"] = as_2026(batch["component_id"])
    batch["category"] = [c[:2] + "0" + c[2:] for c in batch["category"]]
    report = validate(batch, registry=reg)
    assert report.ok, report.summary()
    assert agree(reg, batch)


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.iterdir()
                                        if p.suffix in (".gpkg", ".shp", ".csv") and "truth" not in p.name))
def test_every_sample_batch_gets_the_same_verdict(reg, name):
    agree(reg, DATA / name, **({"gcj02": True} if "gcj02" in name else {}))


FAULTS = ("blank_admin", "ids_2026", "blank_id", "bad_status", "unknown_category", "retire_unknown",
          "duplicate_row", "move_far", "drop_geometry", "category_name", "blank_department")


def perturb(batch, faults, rng):
    """Apply each named fault to a few random rows (the generator knows nothing of the rules)."""
    batch = batch.copy().reset_index(drop=True)
    for fault in faults:
        rows = rng.choice(len(batch), size=min(3, len(batch)), replace=False)
        if fault == "blank_admin":
            batch.loc[rows, ADMIN] = None
        elif fault == "ids_2026":
            batch.loc[rows, "component_id"] = as_2026(batch.loc[rows, "component_id"])
        elif fault == "blank_id":
            batch.loc[rows, "component_id"] = None
        elif fault == "bad_status":
            batch.loc[rows, "status"] = "损坏了"
        elif fault == "unknown_category":
            batch.loc[rows, "category"] = "9999"
        elif fault == "retire_unknown":
            unknown = [i[:-6] + "999999" for i in batch["component_id"].fillna("4403100101000001")[rows]]
            batch.loc[rows, "component_id"] = unknown  # well-formed, never registered
            batch.loc[rows, "action"] = "retire"
        elif fault == "duplicate_row":
            batch = batch.iloc[np.r_[np.arange(len(batch)), rows]].reset_index(drop=True)
        elif fault == "move_far":
            batch.loc[rows, "geometry"] = batch.geometry[rows].translate(50_000, 0)
        elif fault == "drop_geometry":
            batch.loc[rows, "geometry"] = None
        elif fault == "category_name":
            batch.loc[rows, "category"] = "上水井盖"
        elif fault == "blank_department":
            batch.loc[rows, "department"] = None
    return batch


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), faults=st.lists(st.sampled_from(FAULTS), max_size=3, unique=True))
def test_validate_and_a_dry_run_ingest_agree_on_generated_batches(reg, district, seed, faults):
    batch = synth.make_batch(district, new=8, updated=8, retired=2, seed=seed % 50)
    agree(reg, perturb(batch, faults, np.random.default_rng(seed)))
