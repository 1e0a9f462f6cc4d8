"""Rules on identifiers: ``id.*``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from citygrid._arrays import isin
from citygrid._i18n import _
from citygrid.schema import ADMIN_DIGITS, LAYOUTS, SERIAL_DIGITS, id_problems
from citygrid.validation._engine import Context, Findings, rule
from citygrid.validation._sedona import finding, query, sedona


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
      "identifier repeated in the batch, or reusing the identifier of a retired component", whole=True)
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


# --- on Sedona ---------------------------------------------------------------------------

@sedona("id.duplicate")
def duplicate_ids_on_sedona(spark: Any) -> pd.DataFrame:
    """Identifiers repeated within a district, after their first row."""
    return query(spark, "SELECT 'id.duplicate' AS rule, 'error' AS severity, component_id, row, "
                        "concat('identifier ', component_id, ' repeats row ', first_row) AS message, admin_code, "
                        "ST_AsBinary(geometry) AS wkb FROM (SELECT *, row_number() OVER w AS k, first(row) OVER w "
                        "AS first_row FROM cg_c WHERE component_id IS NOT NULL "
                        "WINDOW w AS (PARTITION BY admin_code, component_id ORDER BY row)) WHERE k > 1")


@sedona("id.malformed")
def malformed_ids_on_sedona(spark: Any) -> pd.DataFrame:
    """Identifiers not of the district's layout."""
    lengths = sorted({layout.id_length for layout in LAYOUTS.values()})  # the layouts say them, not this query
    reason = ("CASE WHEN c.component_id IS NULL THEN 'is empty or not text' "
              "WHEN NOT c.component_id RLIKE '^[0-9]+$' THEN 'has characters other than digits' "
              f"WHEN length(c.component_id) NOT IN ({', '.join(map(str, lengths))}) THEN concat('has ', "
              f"length(c.component_id), ' characters, expected {' or '.join(map(str, lengths))} digits') "
              "WHEN length(c.component_id) <> m.id_length THEN concat('is not in the layout of ', m.layout) "
              f"WHEN left(c.component_id, {ADMIN_DIGITS}) <> c.admin_code THEN concat('starts with division code ', "
              f"left(c.component_id, {ADMIN_DIGITS}), ', not the district''s ', c.admin_code) END")
    found = finding("id.malformed", "true", reason, "JOIN cg_meta m USING (admin_code)")
    return query(spark, f"SELECT * FROM ({found}) WHERE message IS NOT NULL")


@sedona("id.category_mismatch")
def category_digits_on_sedona(spark: Any) -> pd.DataFrame:
    """Identifiers whose category digits disagree with the category field."""
    digits = f"substr(c.component_id, {ADMIN_DIGITS + 1}, length(c.component_id) - {ADMIN_DIGITS + SERIAL_DIGITS})"
    where = (f"c.component_id RLIKE '^[0-9]+$' AND length(c.component_id) = m.id_length "
             f"AND left(c.component_id, {ADMIN_DIGITS}) = c.admin_code AND length(c.category) = length({digits}) "
             f"AND c.category <> {digits}")
    return query(spark, finding("id.category_mismatch", where,
                              f"concat('id says category ', {digits}, ', the category field says ', c.category)",
                              "JOIN cg_meta m USING (admin_code)"))
