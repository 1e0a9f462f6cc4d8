"""Validation of survey batches and of the registry itself.

Rules are declared one small module per family (``schema``, ``id``, ``geom``, ``crs`` …)
and registered under the stable codes of the guide; :func:`validate` runs them and
returns a :class:`Report` with every issue at once.

Examples
--------
>>> import citygrid as cg
>>> d = cg.synth.make_district(seed=0, n_components=500)
>>> report = validate(d.components, district=d)
>>> report.ok
True
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd

from citygrid.admin import District
from citygrid.catalog import Catalog, load_catalog
from citygrid.io import read_batch
from citygrid.validate import crs, geom, grid, id, owner, schema, topology  # noqa: F401  (they register the rules)
from citygrid.validate._engine import RULES, SEVERITIES, Context, Rule, run
from citygrid.validate.report import Report

if TYPE_CHECKING:
    from citygrid.registry import Registry

__all__ = ["RULES", "Report", "Rule", "validate", "validate_registry"]


def validate(
    batch: str | Path | pd.DataFrame,
    registry: Registry | None = None,
    district: District | None = None,
    *,
    rules: list[str] | None = None,
    skip: list[str] | None = None,
    tolerances: dict[str, float] | None = None,
    severities: dict[str, str] | None = None,
    catalog: Catalog | None = None,
    **read_options: Any,
) -> Report:
    """Check a survey batch (or any components frame) and report every issue.

    Parameters
    ----------
    batch : path, DataFrame or GeoDataFrame
        A batch file, or a frame (read with :func:`citygrid.io.read_batch`).
    registry : Registry, optional
        Check against it too (identifiers in use, duplicates, ownership); gives the
        district, catalog and allow-list.
    district : District, optional
        Check location rules against it (without a registry).
    rules, skip : list of str, optional
        Run only these rule codes (or families, e.g. ``"geom"``), or all but these.
    tolerances : dict, optional
        Duplicate tolerance in metres per category code, overriding the catalog.
    severities : dict, optional
        Severity per rule code (``"error"`` or ``"warning"``), overriding the default.
    catalog : Catalog, optional
        Default: the registry's, else the shipped one.
    **read_options
        Passed to :func:`~citygrid.io.read_batch` (``crs=``, ``encoding=``, ``columns=`` …).

    Returns
    -------
    Report

    Raises
    ------
    ValueError
        On an unknown rule code or severity.
    """
    catalog = catalog or (registry.catalog if registry is not None else load_catalog())
    district = district or (registry.district if registry is not None else None)
    frame = batch if _is_canonical(batch) else read_batch(batch, catalog=catalog, required=(),
                                                          **read_options)
    codes = _select(rules, skip)
    for code, severity in (severities or {}).items():
        if code not in RULES or severity not in SEVERITIES:
            raise ValueError(f"severities: {code!r}: {severity!r} — use a rule code from "
                             f"citygrid.validate.RULES and one of {SEVERITIES}.")
    notes = frame.attrs.get("citygrid", {})
    frame = frame.copy(deep=False)
    frame.attrs = {}  # pandas deep-copies attrs at every step; the rules read the notes from ctx
    ctx = Context(
        frame=frame, catalog=catalog, district=district,
        registry=registry.components_with_retired() if registry is not None else None,
        tolerances=tolerances or {}, notes=notes,
        admin_code=district.code if district is not None else None,
        layout=registry.layout if registry is not None else None,
        registry_positions=registry.positions if registry is not None else None,
    )
    issues = _without_allowed(run(ctx, codes, severities or {}), registry)
    source = ctx.notes.get("source", "batch") if ctx.notes else "frame"
    return Report(issues, source=str(source), checked=len(frame))


def validate_registry(
    registry: Registry,
    *,
    rules: list[str] | None = None,
    skip: list[str] | None = None,
    tolerances: dict[str, float] | None = None,
    severities: dict[str, str] | None = None,
) -> Report:
    """Check a whole registry: its current components (identifiers required) and its grid.

    Parameters are those of :func:`validate`; grid rules (``grid.*``) are included.
    Issues on the registry's allow-list (``Registry.allow``) are left out.
    """
    frame = registry.components.copy()
    frame["row"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    codes = _select(rules, skip) if rules or skip else list(RULES)
    district = registry.district
    ctx = Context(frame=frame, catalog=registry.catalog, district=district, registry=None,
                  tolerances=tolerances or {}, notes={"ids_required": True, "source": str(registry.path)},
                  admin_code=district.code, layout=registry.layout)
    issues = _without_allowed(run(ctx, codes, severities or {}), registry)
    return Report(issues, source=str(registry.path), checked=len(frame))


def _without_allowed(issues: gpd.GeoDataFrame, registry: Registry | None) -> gpd.GeoDataFrame:
    if registry is None or issues.empty:
        return issues
    allowed = registry.allowed()
    if allowed.empty:
        return issues
    pairs = set(zip(allowed["component_id"], allowed["rule"]))
    keep = [(c, r) not in pairs for c, r in zip(issues["component_id"], issues["rule"])]
    return issues[keep].reset_index(drop=True)


def _is_canonical(batch: object) -> bool:
    return isinstance(batch, gpd.GeoDataFrame) and "row" in batch.columns and "citygrid" in batch.attrs


def _select(rules: list[str] | None, skip: list[str] | None) -> list[str]:
    def expand(names: list[str]) -> set[str]:
        out = set()
        for name in names:
            hits = {c for c in RULES if c == name or c.split(".")[0] == name}
            if not hits:
                raise ValueError(f"no rule or family {name!r}; rules are {sorted(RULES)}.")
            out |= hits
        return out

    chosen = expand(rules) if rules else {c for c, r in RULES.items() if r.scope == "batch"}
    chosen -= expand(skip or [])
    return [c for c in RULES if c in chosen]
