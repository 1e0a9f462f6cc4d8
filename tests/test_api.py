"""The public API and the layout of the package: one error root, no shadowed names, no import circles."""

import re
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

import citygrid as cg
from citygrid import errors

SRC = Path(cg.__file__).resolve().parent


def test_everything_in_all_exists_and_every_error_is_exported():
    assert all(hasattr(cg, name) for name in cg.__all__)
    for name in errors.__all__:
        assert name in cg.__all__ and issubclass(getattr(cg, name), cg.CitygridError)


@pytest.mark.parametrize("name, builtin", [
    ("BatchError", ValueError), ("CatalogError", ValueError), ("RegistryError", ValueError),
    ("RegistryNotFound", FileNotFoundError), ("RegistryExists", FileExistsError), ("RegistryLocked", OSError),
    ("RegistryConflict", RuntimeError), ("AccessDenied", PermissionError), ("MapError", ValueError),
    ("NotFound", KeyError), ("UsageError", ValueError), ("MissingFile", FileNotFoundError)])
def test_each_error_is_a_citygrid_error_and_the_fitting_builtin(name, builtin):
    cls = getattr(cg, name)
    assert issubclass(cls, cg.CitygridError) and issubclass(cls, builtin)


def test_a_stale_plan_timeout_is_not_a_lock_error():
    assert not issubclass(cg.RegistryConflict, cg.RegistryLocked)


def test_not_found_reads_as_its_message():
    with pytest.raises(cg.NotFound) as err:
        cg.load_catalog()["9999"]
    assert str(err.value).startswith("no category '9999'")


def test_the_rule_table_a_message_points_to_exists():
    frame = gpd.GeoDataFrame({"category": ["0101"]}, geometry=[shapely.Point(0, 0)], crs="EPSG:4547")
    with pytest.raises(cg.UsageError) as err:
        cg.validate(frame, severities={"no.such": "error"})
    named = re.search(r"citygrid(\.\w+)*\.RULES", str(err.value)).group(0)
    target = cg
    for part in named.split(".")[1:]:
        target = getattr(target, part)
    assert "geom.invalid" in target
    assert callable(cg.validate) and "geom.invalid" in cg.validation.RULES
