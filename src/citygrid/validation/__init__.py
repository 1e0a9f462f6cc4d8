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

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd

from citygrid import settings
from citygrid._arrays import Positions
from citygrid._i18n import _
from citygrid.admin import District
from citygrid.catalog import Catalog, load_catalog
from citygrid.errors import UsageError
from citygrid.normalise import NormalisedParts
from citygrid.validation import crs, geom, grid, id, owner, schema, topology  # noqa: F401  (they register the rules)
from citygrid.validation._engine import (
    RULES,
    SEVERITIES,
    WHOLE_COLUMNS,
    Context,
    Messages,
    Rule,
    findings,
    issues,
    run,
)
from citygrid.validation.report import Report

__all__ = ["REGISTRY_COLUMNS", "RULES", "Reference", "Report", "Rule", "validate", "validate_registry"]


@dataclass(frozen=True)
class Reference:
    """What a batch is checked against: one state of a registry, read-only.

    Attributes
    ----------
    components : GeoDataFrame
        Every component of that state, retired ones too.
    positions : Positions
        Finds component ids' rows in `components`.
    district : District
    catalog : Catalog
    layout : str
        The registry's identifier layout.
    allowed : DataFrame
        The allow-list: ``component_id, rule``.
    name : str
        The registry, for reports.
    state : str
        The registry state these components are (a merge is written only into it).
    hidden : dict, optional
        For a shared registry whose reader may not read every component: the distance from
        each batch row (by its ``row``) to the nearest current component of its category that
        the reader may not see, where one lies within the category's tolerance. The database
        says how far, never which (``topology.duplicate_feature``).
    """

    components: gpd.GeoDataFrame
    positions: Positions
    district: District
    catalog: Catalog
    layout: str
    allowed: pd.DataFrame
    name: str
    state: str
    hidden: dict[int, float] | None = None

    def reference(self, columns: Sequence[str] | None = None) -> Reference:
        """Itself (a reference is its own source), whatever `columns` asks."""
        return self


REGISTRY_COLUMNS = ("component_id", "category", "retired_at", "survey_date", "owner", "owner_code", "geometry")
"""The registry's columns that the rules on a batch read: a batch is checked against these alone."""


class Referenced(Protocol):
    """Anything that gives a :class:`Reference`: a ``Registry``, or a reference itself."""

    def reference(self, columns: Sequence[str] | None = None) -> Reference:
        """The state to check against (in `columns` at least, when given)."""


def validate(
    batch: str | Path | pd.DataFrame,
    registry: Referenced | None = None,
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
    registry : Registry or Reference, optional
        Check against it too (identifiers in use, duplicates, ownership); gives the
        district, catalog, identifier layout and allow-list. The batch is normalised to
        it exactly as an ingest does (see :mod:`citygrid.normalise`).
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
    UsageError
        On an unknown rule code or severity.
    """
    ref = registry.reference(REGISTRY_COLUMNS) if registry is not None else None
    catalog = catalog or (ref.catalog if ref is not None else load_catalog())
    district = district or (ref.district if ref is not None else None)
    codes = _select(rules, skip)
    for code, severity in (severities or {}).items():
        if code not in RULES or severity not in SEVERITIES:
            raise UsageError(_("severities: {code!r}: {severity!r} — use a rule code from citygrid.RULES and one of "
                               "{known}.").format(code=code, severity=severity, known=", ".join(SEVERITIES)))
    parts = NormalisedParts(batch, size=settings.batch_part_rows, catalog=catalog,
                            layout=ref.layout if ref is not None else None, district=district, **read_options)
    hidden = {"hidden_near": ref.hidden} if ref is not None and ref.hidden else {}
    context = partial(Context, catalog=catalog, district=district, tolerances=tolerances or {},
                      registry=ref.components if ref is not None else None,
                      admin_code=district.code if district is not None else None,
                      layout=ref.layout if ref is not None else None,
                      registry_positions=ref.positions if ref is not None else None)
    found, kept, twins, checked, messages = [], [], [], 0, Messages()
    for part in parts:  # rules on each row alone, part by part; the batch kept in the columns the others read
        notes = {**part.attrs.get("citygrid", {}), **hidden}
        part = part.copy(deep=False)
        part.attrs = {}  # pandas deep-copies attrs at every step; the rules read the notes from ctx
        ctx = context(frame=part, notes=notes)
        found.append(findings(ctx, codes, severities or {}, messages, whole=False))
        kept.append(part[[c for c in WHOLE_COLUMNS if c in part.columns] + [part.geometry.name]])
        twins.append(ctx.twins())
        checked += len(part)
    whole = kept[0] if len(kept) == 1 else gpd.GeoDataFrame(pd.concat(kept, ignore_index=True), crs=kept[0].crs)
    del kept, ctx
    ctx = context(frame=whole, notes={**parts.notes, **hidden})
    ctx.memo("twins", lambda: np.concatenate(twins))  # found part by part: the ids are not looked up again
    found.append(findings(ctx, codes, severities or {}, messages, whole=True))
    del whole, part, ctx  # the batch goes before its issues are put together: the issues keep only their own geometries
    result = _without_allowed(issues(found, codes, severities or {}), ref)
    return Report(result, source=str(parts.notes.get("source", "batch")) if parts.notes else "frame", checked=checked,
                  messages=messages)


def validate_registry(
    registry: Referenced,
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
    ref = registry.reference()
    frame = ref.components[ref.components["retired_at"].isna()].copy()
    frame["row"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    codes = _select(rules, skip) if rules or skip else list(RULES)
    ctx = Context(frame=frame, catalog=ref.catalog, district=ref.district, registry=None,
                  tolerances=tolerances or {}, notes={"ids_required": True, "source": ref.name},
                  admin_code=ref.district.code, layout=ref.layout)
    found, messages = run(ctx, codes, severities or {})
    return Report(_without_allowed(found, ref), source=ref.name, checked=len(frame), messages=messages)


def _without_allowed(issues: gpd.GeoDataFrame, ref: Reference | None) -> gpd.GeoDataFrame:
    if ref is None or issues.empty or ref.allowed.empty:
        return issues
    pairs = set(zip(ref.allowed["component_id"], ref.allowed["rule"]))
    keep = [(c, r) not in pairs for c, r in zip(issues["component_id"], issues["rule"])]
    return issues[keep].reset_index(drop=True)


def _select(rules: list[str] | None, skip: list[str] | None) -> list[str]:
    def expand(names: list[str]) -> set[str]:
        out = set()
        for name in names:
            hits = {c for c in RULES if c == name or c.split(".")[0] == name}
            if not hits:
                raise UsageError(_("no rule or family {name!r}; rules are {known}.").format(
                    name=name, known=", ".join(sorted(RULES))))
            out |= hits
        return out

    chosen = expand(rules) if rules else {c for c, r in RULES.items() if r.scope == "batch"}
    chosen -= expand(skip or [])
    return [c for c in RULES if c in chosen]
