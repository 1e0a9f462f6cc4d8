"""The public API and the layout of the package: one error root, no shadowed names, no import circles."""

import ast
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


def imports(path: Path) -> set[str]:
    """The citygrid modules a module imports at load time (TYPE_CHECKING blocks and function bodies aside)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in tree.body:
        if isinstance(node, ast.If):  # `if TYPE_CHECKING:`
            continue
        for sub in ast.walk(node) if isinstance(node, (ast.Import, ast.ImportFrom, ast.Try)) else []:
            if isinstance(sub, ast.ImportFrom) and sub.module and sub.module.startswith("citygrid"):
                found |= {f"{sub.module}.{a.name}" for a in sub.names}
                found |= {sub.module} if sub.module != "citygrid" else set()  # `from citygrid import x` is x
            elif isinstance(sub, ast.Import):
                found |= {a.name for a in sub.names if a.name.startswith("citygrid")}
    return found


def modules() -> dict[str, set[str]]:
    table = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        table[name] = imports(path)
    return {name: {m for m in deps if m in table and m != name} for name, deps in table.items()}


def reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), list(graph[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo += graph.get(node, ())
    return seen


def test_no_module_imports_itself_back_through_others():
    graph = modules()
    assert [name for name in graph if name in reach(graph, name)] == []


def test_validation_and_the_district_never_reach_the_registry_or_a_backend():
    graph = modules()
    for name in ("citygrid.validation", "citygrid.admin", "citygrid.normalise", "citygrid.io"):
        assert not {d for d in reach(graph, name) if d.startswith(("citygrid.registry", "citygrid.backends"))}, name
