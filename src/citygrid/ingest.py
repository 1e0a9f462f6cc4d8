"""The ingest loop: validate a batch against one state, plan it, write it, or rebase it on another writer's commit.

:meth:`citygrid.Registry.ingest` reads the state (or, on PostGIS, the components near the
batch), then calls :func:`merge`; a :class:`~citygrid.backends.Stale` it raises makes the
facade read the latest state and start again.
"""

from __future__ import annotations

import geopandas as gpd

from citygrid.backends import Stale, Store
from citygrid.merge import Batch, IngestResult, apply_plan, assign_ids, checked, make_plan, still_holds
from citygrid.schema import max_serials
from citygrid.validation import Reference, validate
from citygrid.view import View

__all__ = ["merge"]


def merge(frame: gpd.GeoDataFrame, info: Batch, *, store: Store, loaded: View, reference: Reference,
          admin_code: str, by_place: bool, dry_run: bool) -> tuple[IngestResult, bool, View | None]:
    """Validate, plan and write a normalised batch against the state of `loaded` (see `reference`).

    Where the store checks the state on writing, a merge starts from the state read last:
    when others merged since, the store says what they changed, and the plan is written on
    top of them (new identifiers after theirs) when they touched none of its components and
    nothing within a category's duplicate tolerance of its rows. `by_place`: `loaded` holds
    only the components near the batch (PostGIS), and the store checks the plan's places.

    Returns
    -------
    tuple
        The result; whether anything was written; the view of the state the write made when
        this commit alone made it (kept by the store for the next open), else None.

    Raises
    ------
    Stale
        When others' commits change what the batch is checked against: validate again from
        the latest state.
    """
    tolerance = reference.catalog.tolerance()
    report = validate(frame, registry=reference)
    found = reference.positions(frame["component_id"].to_numpy(dtype=object))
    retire = (frame["action"] == "retire").fillna(False).to_numpy()
    if not report.ok:
        return IngestResult(False, None, report=report), False, None
    frame = frame.copy(deep=False)
    frame.attrs = {}  # read notes, which pandas would deep-copy at every step from here
    registered = loaded.derive("serials", lambda: max_serials(loaded.all["component_id"], admin_code))
    expected, on_top = reference.state, False
    while True:  # other merges that touch nothing of this batch: write on top of them
        plan = make_plan(assign_ids(frame, registered=registered, admin_code=admin_code,
                                    reserve=store.reserve_serials), reference.components, found, retire)
        if by_place:  # the store checks the plan's places, not the whole state
            plan.checked = checked(plan, reference.components, tolerance)
        result = IngestResult(True, None, created=len(plan.create), updated=len(plan.updated_ids),
                              retired=len(plan.retire), unchanged=plan.unchanged, report=report,
                              new_ids=plan.create["component_id"].tolist())
        if dry_run:
            return result, False, None
        try:
            written = store.write(plan, info, expected=expected)
            break
        except Stale as stale:
            if stale.changed is None or not still_holds(frame, stale.changed, reference.components,
                                                        reference.positions, tolerance):
                raise
            new = max_serials(stale.changed["component_id"], admin_code)  # new ids come after theirs
            registered = {c: max(registered.get(c, 0), new.get(c, 0)) for c in registered.keys() | new.keys()}
            expected, on_top = stale.state, True
    result.batch_id = written.batch_id
    if written.state is None or on_top or by_place:  # others' commits may be in that state too
        return result, True, None
    kept = View(written.state, apply_plan(loaded.all, plan, positions=loaded.positions(), batch_id=written.batch_id,
                                          stamp=written.at))
    store.keep(written.state, kept.all)
    return result, True, kept
