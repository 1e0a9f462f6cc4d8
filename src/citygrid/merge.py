"""Merge planning: what a validated batch changes in the registry, as a typed :class:`Plan`.

A plan is made against one state of the registry and written by the store only if the
registry is still in that state (see :meth:`citygrid.backends.Store.write`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from citygrid._arrays import Positions, isin
from citygrid._i18n import _
from citygrid._layers import as_single, families
from citygrid.errors import BatchRejected, RegistryError
from citygrid.schema import DATE_FIELDS, FIELD_NAMES, SERIAL_MAX, make_ids, max_serials
from citygrid.validation import Report

__all__ = ["Batch", "IngestResult", "Plan", "apply_plan", "assign_ids", "field_text", "make_plan", "still_holds",
           "utc_now"]


def utc_now() -> str:
    """UTC now to the microsecond (ISO, no zone): when history rows and batches happened."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


@dataclass
class Batch:
    """Who merges what, and when it started."""

    source: str
    user: str | None = None
    started: str = field(default_factory=utc_now)
    kind: str = "ingest"

    def finished(self) -> str:
        """Now, as the batch's end."""
        return utc_now()


def field_text(name: str, values: Any) -> np.ndarray:
    """Values of one field as history text (None where missing): ISO dates, WKB hex geometries.

    Examples
    --------
    >>> field_text("survey_date", [pd.Timestamp("2026-03-01"), None]).tolist()
    ['2026-03-01T00:00:00', None]
    """
    values = np.asarray(values, dtype=object)
    if name == "geometry":
        return shapely.to_wkb(values, hex=True).astype(object)
    missing = pd.isna(values)
    if name in DATE_FIELDS or name == "retired_at":
        text = pd.to_datetime(values).strftime("%Y-%m-%dT%H:%M:%S").to_numpy(dtype=object)
    else:
        text = pd.Series(values, dtype=object).map(str, na_action="ignore").to_numpy(dtype=object)
    text[missing] = None
    return text


@dataclass
class Checked:
    """Where a plan puts components, and which components its batch was validated against.

    A store that does not compare whole states (PostGIS) checks, while it holds a lock on
    these places, that no other component has come within reach of them since.

    Attributes
    ----------
    places : GeoDataFrame
        ``category, reach`` (the category's duplicate tolerance, metres) and the geometry of
        every component the plan creates or moves (those with a geometry).
    seen : ndarray
        Identifiers of the components the batch was validated against.
    """

    places: gpd.GeoDataFrame
    seen: np.ndarray


@dataclass
class Plan:
    """What a batch changes.

    Attributes
    ----------
    create : GeoDataFrame
        New components, with their identifiers.
    update : DataFrame
        One row per changed field: ``component_id, family, field, old, new, old_text, text``
        (the texts as history keeps them).
    updated_ids : ndarray
        Components with at least one changed field.
    retire : DataFrame
        ``component_id, family, status``.
    unchanged : int
        Batch rows that change nothing.
    versions : Series
        The version of each updated or retired component the plan was made on, by id (a
        shared store writes a change only at that version).
    checked : Checked, optional
        Where it puts components and what it was validated against there (set for a
        shared store, see :func:`checked`).
    """

    create: gpd.GeoDataFrame
    update: pd.DataFrame
    updated_ids: np.ndarray
    retire: pd.DataFrame
    unchanged: int
    versions: pd.Series
    checked: Checked | None = None

    def history(self, retired_at: str) -> Iterator[tuple]:
        """History rows ``(component_id, action, field, old_value, new_value)`` of the plan."""
        yield from zip(self.create["component_id"].tolist(), repeat("create"), repeat(None), repeat(None),
                       repeat(None))
        yield from zip(self.update["component_id"].tolist(), repeat("update"), self.update["field"].tolist(),
                       self.update["old_text"].tolist(), self.update["text"].tolist())
        yield from zip(self.retire["component_id"].tolist(), repeat("retire"), repeat("retired_at"), repeat(None),
                       repeat(retired_at))


@dataclass
class IngestResult:
    """What an ingest did.

    Attributes
    ----------
    accepted : bool
        False when the batch had errors: then nothing was written.
    batch_id : int or None
        The batch's number in ``reg.batches()`` (None when rejected or a dry run).
    created, updated, retired, unchanged : int
        Components per outcome.
    report : Report
        The validation report.
    new_ids : list of str
        Identifiers given to new components, in batch row order.
    seconds : float
        Wall time.
    """

    accepted: bool
    batch_id: int | None
    created: int = 0
    updated: int = 0
    retired: int = 0
    unchanged: int = 0
    report: Report | None = field(default=None, repr=False)
    new_ids: list[str] = field(default_factory=list, repr=False)
    seconds: float = 0.0

    def why(self) -> str:
        """Why the batch was refused (the errors per rule), or "" when it was accepted."""
        if self.accepted or self.report is None:
            return ""
        errors = self.report.summary()["error"]
        counts = errors[errors > 0].sort_values(ascending=False)
        return _("rejected, nothing written: {n:,} error(s) — {rules}").format(
            n=int(counts.sum()), rules=", ".join(f"{n} × {rule}" for rule, n in counts.items()))

    def __repr__(self) -> str:
        counts = (f"created={self.created}, updated={self.updated}, retired={self.retired}, "
                  f"unchanged={self.unchanged}")
        if not self.accepted:
            return f"IngestResult(accepted=False, {self.why()})"
        return f"IngestResult(accepted=True, batch_id={self.batch_id}, {counts}, seconds={self.seconds:.2f})"

    def raise_for_errors(self) -> IngestResult:
        """Raise :class:`~citygrid.errors.BatchRejected` if the batch was refused; else return self.

        Examples
        --------
        >>> reg.ingest("batch.shp", source="W48").raise_for_errors()  # doctest: +SKIP
        """
        if not self.accepted:
            raise BatchRejected(self.why() + _("; see .report"), self.report)
        return self


def assign_ids(frame: gpd.GeoDataFrame, *, registered: dict[str, int], admin_code: str,
               reserve: Any) -> gpd.GeoDataFrame:
    """Give rows without an identifier a new one, per category after the largest serial in use.

    Parameters
    ----------
    registered : dict
        Largest serial per category in the registry.
    reserve : callable
        ``reserve(needed, used) -> start`` per category (the store's :meth:`reserve_serials`).

    Raises
    ------
    RegistryError
        If a category would run past the last serial.
    """
    frame = frame.copy()
    empty = frame["component_id"].isna()
    given = max_serials(frame["component_id"].dropna(), admin_code)
    used = {c: max(registered.get(c, 0), given.get(c, 0)) for c in registered.keys() | given.keys()}
    todo = frame.loc[empty, "category"]
    start = reserve(todo.value_counts().to_dict(), used)
    offset = todo.map(lambda c: start.get(c, 0)).to_numpy(dtype=np.int64)
    serials = offset + todo.groupby(todo.to_numpy()).cumcount().to_numpy() + 1
    if len(serials) and serials.max() > SERIAL_MAX:
        full = sorted(set(todo[serials > SERIAL_MAX]))
        raise RegistryError(_("categories {categories} would pass serial {last}; retire and renumber first.").format(
            categories=", ".join(full), last=SERIAL_MAX))
    if len(serials):
        frame.loc[empty, "component_id"] = make_ids(admin_code, todo.to_numpy(dtype=object), serials)
    return frame


def make_plan(frame: gpd.GeoDataFrame, current: gpd.GeoDataFrame, found: np.ndarray, retire: np.ndarray) -> Plan:
    """Split a validated batch into creates, updates (changed fields only) and retirements.

    `found` holds each batch row's position in `current` (-1: a new component).
    """
    known = found >= 0
    creates = frame[~known & ~retire]
    rows = frame[known & ~retire].reset_index(drop=True)
    old = current.iloc[found[known & ~retire]].reset_index(drop=True)
    touched_rows = np.concatenate([found[known & ~retire], found[retire & known]])
    family_of = pd.Series(families(current.geometry.to_numpy()[touched_rows]),
                          index=pd.Index(current["component_id"].iloc[touched_rows].to_numpy(dtype=object),
                                         dtype=object))
    family_of = family_of[~family_of.index.duplicated()]
    changes = []
    for f in (f for f in FIELD_NAMES if f not in ("component_id", "change_date")):
        new_values, old_values = rows[f], old[f]
        if f == "survey_date":  # the first survey's date: set where the registry lacks it, never changed
            differs = new_values.notna() & old_values.isna()
        elif f in DATE_FIELDS:
            differs = new_values.notna() & (new_values != old_values).fillna(True)
        else:
            differs = new_values.notna() & (new_values.astype(object) != old_values.astype(object))
        pos = np.flatnonzero(differs.to_numpy())
        if len(pos):
            changes.append(pd.DataFrame({"pos": pos, "field": f, "old": old_values.to_numpy(dtype=object)[pos],
                                         "new": new_values.to_numpy(dtype=object)[pos]}))
    moved = np.flatnonzero(~shapely.equals_exact(old.geometry.to_numpy(), rows.geometry.to_numpy(), tolerance=0.001))
    if len(moved):
        changes.append(pd.DataFrame({"pos": moved, "field": "geometry", "old": old.geometry.to_numpy()[moved],
                                     "new": rows.geometry.to_numpy()[moved]}))
    table = pd.concat(changes, ignore_index=True) if changes else \
        pd.DataFrame({"pos": pd.Series(dtype=int), "field": [], "old": [], "new": []})
    touched = np.unique(table["pos"].to_numpy())
    given = rows["change_date"]
    dated = pd.DataFrame({"pos": touched, "field": "change_date",
                          "old": old["change_date"].to_numpy(dtype=object)[touched],
                          "new": np.where(given.notna().to_numpy()[touched], given.to_numpy(dtype=object)[touched],
                                          pd.Timestamp(dt.date.today()))})
    dated = dated.assign(old_text=field_text("change_date", dated["old"]), text=field_text("change_date", dated["new"]))
    dated = dated[dated["old_text"].to_numpy() != dated["text"].to_numpy()]  # None equals None here
    table = pd.concat([_with_text(table), dated], ignore_index=True)
    table["component_id"] = rows["component_id"].to_numpy(dtype=object)[table["pos"].to_numpy(dtype=int)]
    table["family"] = family_of.loc[table["component_id"]].to_numpy()
    gone = frame[retire]
    status = gone["status"].where(gone["status"].notna(), "移除")
    retirements = pd.DataFrame({"component_id": gone["component_id"].to_numpy(dtype=object),
                                "family": family_of.loc[gone["component_id"]].to_numpy(),
                                "status": status.to_numpy(dtype=object)})
    updated_ids = rows["component_id"].to_numpy()[touched]
    changed = pd.unique(np.concatenate([np.asarray(updated_ids, dtype=object),
                                        retirements["component_id"].to_numpy(dtype=object)]))
    versions = pd.Series(current["version"].to_numpy()[touched_rows],
                         index=current["component_id"].to_numpy(dtype=object)[touched_rows])
    versions = versions[~versions.index.duplicated()].reindex(changed)
    return Plan(create=creates, update=table, updated_ids=updated_ids, retire=retirements,
                unchanged=len(rows) - len(touched), versions=versions)


def checked(plan: Plan, reference: gpd.GeoDataFrame, tolerance: dict[str, float]) -> Checked:
    """The places `plan` creates or moves components at, and the `reference` it was validated against.

    A moved component keeps its category unless the plan changes that too. `tolerance` is
    metres per category code, the largest for other codes.

    Examples
    --------
    >>> ref = gpd.GeoDataFrame({"component_id": ["a"], "category": ["0101"]}, geometry=[shapely.Point(0, 0)])
    >>> new = gpd.GeoDataFrame({"component_id": ["b"], "category": ["0102"]}, geometry=[shapely.Point(9, 9)])
    >>> moved = pd.DataFrame({"component_id": ["a"], "field": ["geometry"], "new": [shapely.Point(1, 0)]})
    >>> plan = Plan(new, moved, np.array(["a"]), pd.DataFrame(), 0, pd.Series(dtype=int))
    >>> done = checked(plan, ref, {"0101": 0.5, "0102": 1.0})
    >>> done.places[["category", "reach"]].values.tolist(), done.seen.tolist()
    ([['0102', 1.0], ['0101', 0.5]], ['a'])
    """
    update = plan.update
    moved = update[update["field"] == "geometry"]
    category = dict(zip(reference["component_id"], reference["category"]))
    category.update(zip(update.loc[update["field"] == "category", "component_id"],
                        update.loc[update["field"] == "category", "new"]))
    cats = np.concatenate([plan.create["category"].to_numpy(dtype=object),
                           [category.get(i) for i in moved["component_id"]]]).astype(object)
    geoms = np.concatenate([plan.create.geometry.to_numpy(), moved["new"].to_numpy()])
    usable = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))  # no place: near nothing
    places = gpd.GeoDataFrame({"category": cats[usable], "reach": _reach(cats[usable], tolerance)},
                              geometry=geoms[usable], crs=getattr(plan.create, "crs", None))
    return Checked(places, reference["component_id"].to_numpy(dtype=object))


def _reach(cats: np.ndarray, tolerance: dict[str, float]) -> np.ndarray:
    """Each category's duplicate tolerance in metres; the largest for codes `tolerance` lacks."""
    largest = max(tolerance.values(), default=0.0)
    return np.array([tolerance.get(c, largest) for c in cats], dtype=float)


def still_holds(frame: gpd.GeoDataFrame, changed: gpd.GeoDataFrame, before: gpd.GeoDataFrame,
                positions: Positions, tolerance: dict[str, float]) -> bool:
    """Whether a batch validated and planned on one state holds after other merges `changed` components.

    The rules that look at the registry (identifiers in use or retired, ownership, moves,
    duplicates and overlaps within a category's tolerance) see a batch row's own component
    and components of its category within the tolerance. So the report and the plan hold
    when no row of `frame` names a changed component, and no changed component, as it is
    now or as it was in `before` (found there by `positions`), lies within the `tolerance`
    (metres per category code; the largest for other codes) of a row of its category.

    Examples
    --------
    >>> before = gpd.GeoDataFrame({"component_id": ["a"], "category": ["0101"]}, geometry=[shapely.Point(0, 0)])
    >>> changed = before.assign(geometry=[shapely.Point(50, 0)])
    >>> batch = gpd.GeoDataFrame({"component_id": [None], "category": ["0101"]}, geometry=[shapely.Point(0, 1)])
    >>> still_holds(batch, changed, before, Positions(["a"]), {"0101": 2.0})  # "a" was 1 m away
    False
    >>> still_holds(batch, changed, before, Positions(["a"]), {"0101": 0.5})
    True
    >>> still_holds(batch.assign(category="0102"), changed, before, Positions(["a"]), {"0101": 2.0})
    True
    """
    ids = changed["component_id"].to_numpy(dtype=object)
    if isin(frame["component_id"].to_numpy(dtype=object), ids).any():
        return False
    at = positions(ids)
    at = at[at >= 0]
    near = np.concatenate([changed.geometry.to_numpy(), before.geometry.to_numpy()[at]])
    near_cats = np.concatenate([changed["category"].to_numpy(dtype=object),
                                before["category"].to_numpy(dtype=object)[at]])
    rows, cats = frame.geometry.to_numpy(), frame["category"].to_numpy(dtype=object)
    usable = ~shapely.is_missing(rows) & ~shapely.is_empty(rows)
    rows, cats = rows[usable], cats[usable]
    if not len(near) or not len(rows):
        return True
    reach = _reach(cats, tolerance)
    hit, other = shapely.STRtree(near).query(rows, predicate="dwithin", distance=reach)
    return not (cats[hit] == near_cats[other]).any()


def apply_plan(frame: gpd.GeoDataFrame, plan: Plan, *, positions: Positions, batch_id: int,
               stamp: str) -> gpd.GeoDataFrame:
    """The components after `plan` was written, as the layers then read: without reading them.

    `frame` is every component of the state the plan was made on (in the layers' order:
    points, lines, polygons, each in insertion order), `positions` finds ids in it; `stamp`
    is the commit's layer time.
    New components go to the end of their family's part, dates keep the day only (a DATE
    column), geometries are stored as their single or one-part form.
    """
    at = pd.Timestamp(stamp).tz_localize(None).as_unit("ms")
    out = frame.copy()
    columns = {c: k for k, c in enumerate(out.columns)}
    for name, group in plan.update.groupby("field"):
        pos = positions(group["component_id"].to_numpy(dtype=object))
        values = group["new"].to_numpy(dtype=object)
        if name == "geometry":
            out.iloc[pos, columns["geometry"]] = as_single(values)
        elif name in DATE_FIELDS:
            out.iloc[pos, columns[name]] = pd.to_datetime(values).normalize().as_unit("ms")
        else:
            out.iloc[pos, columns[name]] = group["text"].to_numpy(dtype=object)
    gone = positions(plan.retire["component_id"].to_numpy(dtype=object))
    out.iloc[gone, columns["status"]] = plan.retire["status"].to_numpy(dtype=object)
    out.iloc[gone, columns["retired_at"]] = at
    touched = positions(plan.versions.index.to_numpy(dtype=object))
    out.iloc[touched, columns["version"]] = out["version"].to_numpy()[touched] + 1
    out.iloc[touched, columns["updated_at"]] = at
    out.iloc[touched, columns["batch_id"]] = batch_id
    new = plan.create[list(FIELD_NAMES)].copy()
    for name in DATE_FIELDS:
        new[name] = new[name].dt.normalize()
    new = gpd.GeoDataFrame(new.assign(retired_at=pd.Series(pd.NaT, index=new.index, dtype="datetime64[ms]"),
                                      version=1, updated_at=at, batch_id=batch_id),
                           geometry=as_single(plan.create.geometry.to_numpy()), crs=out.crs)
    new = new.astype(out.dtypes.to_dict())
    # `out` is in the layers' order, so each family is one block: its new components go to the block's end
    new_rank = _family_rank(new.geometry.to_numpy())
    new = new.iloc[np.argsort(new_rank, kind="stable")]
    cut_old = np.searchsorted(_family_rank(out.geometry.to_numpy()), [1, 2, 3])
    cut_new = np.searchsorted(np.sort(new_rank), [1, 2, 3])
    parts = [part for k in range(3) for part in (out.iloc[(cut_old[k - 1] if k else 0):cut_old[k]],
                                                  new.iloc[(cut_new[k - 1] if k else 0):cut_new[k]])]
    result = pd.concat([part for part in parts if len(part)] or [out], ignore_index=True)
    return gpd.GeoDataFrame(result.reset_index(drop=True), geometry="geometry", crs=out.crs)


def _family_rank(geoms: np.ndarray) -> np.ndarray:
    """0 for points, 1 for lines, 2 for polygons: the order of the families' layers."""
    kinds = families(geoms)
    return (kinds == "line").astype(np.int8) + 2 * (kinds == "polygon").astype(np.int8)


def _with_text(changes: pd.DataFrame) -> pd.DataFrame:
    """`changes` with its old and new values as history text (``old_text``, ``text``)."""
    parts = [group.assign(old_text=field_text(name, group["old"]), text=field_text(name, group["new"]))
             for name, group in changes.groupby("field")]
    return pd.concat(parts) if parts else changes.assign(old_text=[], text=[])
