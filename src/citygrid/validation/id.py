"""Rules on identifiers: ``id.*``."""

from __future__ import annotations

import numpy as np

from citygrid._arrays import isin
from citygrid._i18n import _
from citygrid.schema import id_problems
from citygrid.validation._engine import Context, Findings, rule


def _problems(ctx: Context):
    ids = ctx.values("component_id")
    return ids, ctx.memo("id_problems", lambda: id_problems(ids, ctx.values("category"),
                                                            admin_code=ctx.admin_code, layout=ctx.layout))


@rule("id.malformed", "error", "identifier does not follow the layout")
def malformed(ctx: Context) -> Findings:
    ids, problems = _problems(ctx)
    present = np.array([isinstance(v, str) for v in ids], dtype=bool)
    bad = (problems["malformed"] != "").to_numpy() & (present | ctx.notes.get("ids_required", False))
    pos = np.flatnonzero(bad)
    text = _("identifier {id!r}: {problem}")
    message = [text.format(id=str(ids[p])[:30], problem=problems["malformed"].iloc[p]) for p in pos]
    return Findings(pos, np.array(message, dtype=object), field="component_id")


@rule("id.category_mismatch", "error", "identifier's category digits disagree with the category field")
def category_mismatch(ctx: Context) -> Findings:
    ids, problems = _problems(ctx)
    pos = np.flatnonzero((problems["category_mismatch"] != "").to_numpy())
    text = _("identifier {id}: {problem}")
    message = [text.format(id=ids[p], problem=problems["category_mismatch"].iloc[p]) for p in pos]
    return Findings(pos, np.array(message, dtype=object), field="category")


@rule("id.duplicate", "error",
      "identifier repeated in the batch, or reusing the identifier of a retired component")
def duplicate(ctx: Context) -> Findings:
    ids = ctx.frame["component_id"]
    repeated = ids.notna() & ids.duplicated(keep="first")
    first_row = ctx.frame.loc[ids.notna()].drop_duplicates("component_id").set_index(
        "component_id")["row"]
    pos = np.flatnonzero(repeated.to_numpy())
    text = _("identifier {id} repeats row {row}")
    message = [text.format(id=ids.iloc[p], row=first_row[ids.iloc[p]]) for p in pos]
    if ctx.registry is not None and "retired_at" in ctx.registry:
        retired = ctx.known_registry.loc[ctx.known_registry["retired_at"].notna(), ["component_id", "retired_at"]]
        when = dict(zip(retired["component_id"], retired["retired_at"]))
        reused = np.flatnonzero(isin(ids, list(when)) & ~repeated.to_numpy())
        pos = np.concatenate([pos, reused])
        text = _("identifier {id} belongs to a component retired on {day:%Y-%m-%d}; retired identifiers are never "
                 "reused")
        message += [text.format(id=ids.iloc[p], day=when[ids.iloc[p]]) for p in reused]
    return Findings(np.asarray(pos, dtype=int), np.array(message, dtype=object), field="component_id")
