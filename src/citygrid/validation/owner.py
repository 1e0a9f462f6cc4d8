"""Rules on departments, owners and maintainers: ``owner.*``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from stdnum.cn import uscc
from stdnum.exceptions import InvalidChecksum, ValidationError

from citygrid._i18n import N_, _
from citygrid.schema import is_uscc
from citygrid.validation._engine import Context, Findings, rule
from citygrid.validation._sedona import query, sedona

_ROLES = (("department", N_("responsible department")), ("owner", N_("owner")), ("maintainer", N_("maintainer")))


@rule("owner.unknown", "error",
      "department/owner/maintainer not in the district's unit list, or a name beside the code of another unit",
      needs=("district",))
def unknown(ctx: Context) -> Findings:
    units = ctx.known_district.units
    known = set(units["name"]) | set(units["code"])
    code_of = dict(zip(units["name"], units["code"]))
    problems = np.full(len(ctx.frame), "", dtype=object)
    fields = np.full(len(ctx.frame), None, dtype=object)  # the first cell at fault
    sentence = _("{role} {value!r} is not in the unit list")
    mismatch = _("{role} {name!r} is not the unit of code {code}")
    for column, label in _ROLES:
        values = ctx.values(column)
        bad = ~pd.isna(values) & ~pd.Series(values, dtype=object).isin(known).to_numpy()
        for i in np.flatnonzero(bad):
            text = sentence.format(role=_(label), value=str(values[i])[:60])
            problems[i] = f"{problems[i]}; {text}" if problems[i] else text
            fields[i] = fields[i] or column
        if f"{column}_code" in ctx.frame:  # a known name beside a known code of another unit
            codes = ctx.values(f"{column}_code")
            named = pd.Series(values, dtype=object).map(code_of).to_numpy(dtype=object)
            other = ~pd.isna(named) & ~pd.isna(codes) & pd.Series(codes, dtype=object).isin(known).to_numpy()
            other &= named != codes
            for i in np.flatnonzero(other):
                text = mismatch.format(role=_(label), name=str(values[i])[:60], code=codes[i])
                problems[i] = f"{problems[i]}; {text}" if problems[i] else text
                fields[i] = fields[i] or column
    pos = np.flatnonzero(problems != "")
    hint = _(" (add it to the units, or correct the name)")
    return Findings(pos, np.array([p + hint for p in problems[pos]], dtype=object), field=fields[pos])


@rule("owner.conflict", "error",
      "existing component whose owner in the batch differs from the registry (needs 确权)", needs=("registry",))
def conflict(ctx: Context) -> Findings:
    """The owner is its code as much as its name: a change of either needs 确权."""
    twins = ctx.current_twins()
    pos = np.flatnonzero(twins >= 0)
    differs = np.zeros(len(pos), dtype=bool)
    said, kept = [], []
    for column in ("owner", "owner_code"):
        claimed = ctx.values(column)[pos]
        reg = ctx.known_registry
        registered = reg[column].iloc[twins[pos]].to_numpy(dtype=object) if column in reg \
            else np.full(len(pos), None, dtype=object)
        differs |= ~pd.isna(claimed) & ~pd.isna(registered) & (claimed != registered)
        said.append(claimed)
        kept.append(registered)

    def who(name, code):
        return " ".join(f"{v!s}" if i == 0 else f"({v})" for i, v in enumerate((name, code)) if not pd.isna(v))

    text = _("the batch says owner {batch!r}, the registry {registry!r}: confirm the ownership before merging")
    message = [text.format(batch=who(sn, sc), registry=who(rn, rc))
               for sn, sc, rn, rc in zip(said[0][differs], said[1][differs], kept[0][differs], kept[1][differs])]
    return Findings(pos[differs], np.array(message, dtype=object), field="owner")


@rule("owner.bad_code", "error",
      "department/owner/maintainer code not a valid unified social credit code (GB 32100)")
def bad_code(ctx: Context) -> Findings:
    problems = np.full(len(ctx.frame), "", dtype=object)
    fields = np.full(len(ctx.frame), None, dtype=object)
    for label_column, label in _ROLES:
        column = f"{label_column}_code"
        if column not in ctx.frame:
            continue
        values = ctx.values(column)
        given = ~pd.isna(values)
        bad = given.copy()
        bad[given] = ~is_uscc(values[given])
        for i in np.flatnonzero(bad):
            text = _why(_(label), str(values[i]))
            problems[i] = f"{problems[i]}; {text}" if problems[i] else text
            fields[i] = fields[i] or column
    pos = np.flatnonzero(problems != "")
    hint = _(" (a unified social credit code has 18 characters; take it from the unit list)")
    return Findings(pos, np.array([p + hint for p in problems[pos]], dtype=object), field=fields[pos])


def _why(role: str, code: str) -> str:
    """Why `code` is no unified social credit code, in a few words."""
    try:
        uscc.validate(code)
    except InvalidChecksum:
        return _("{role} code {code!r} is wrong in its check character (it would be {check!r})").format(
            role=role, code=code[:40], check=uscc.calc_check_digit(uscc.compact(code)))
    except ValidationError:
        pass
    return _("{role} code {code!r} is not a unified social credit code").format(role=role, code=code[:40])


# --- on Sedona ---------------------------------------------------------------------------

@sedona("owner.unknown")
def owner_unknown_on_sedona(spark: Any) -> pd.DataFrame:
    """Department, owner or maintainer not in the district's unit list."""
    checks = []
    for column, label in (("department", "department"), ("owner", "owner"), ("maintainer", "maintainer")):
        checks.append(f"""SELECT c.admin_code, c.row, c.component_id, ST_AsBinary(c.geometry) AS wkb,
            concat('{label} ', c.{column}, ' is not in the unit list') AS text FROM cg_c c
            LEFT ANTI JOIN (SELECT admin_code, name AS v FROM cg_units UNION SELECT admin_code, code FROM cg_units) u
              ON u.admin_code = c.admin_code AND u.v = c.{column} WHERE c.{column} IS NOT NULL""")
    found = query(spark, " UNION ALL ".join(checks))
    if not len(found):
        return found
    grouped = found.groupby(["admin_code", "row"], sort=False).agg(
        component_id=("component_id", "first"), wkb=("wkb", "first"), message=("text", "; ".join)).reset_index()
    grouped["message"] += " (add it to the units, or correct the name)"
    return grouped.assign(rule="owner.unknown", severity="error")
