"""Routes learned from closed events: which unit acts on which kind of event where.

A closed event says which unit disposed of it (DISPOSE_UNIT_NAME, 处置单位). Over a history,
each sub type × community has its units with their counts; where a community has too few
events of a sub type the route backs off to the street, the district, and last the main type.
:class:`RoutingTable` learns these routes, saves them as a CSV a dispatcher can read and
edit, and gives each event its unit, two alternatives and the share of past events that went
there (the confidence), with the reason in words.

Unit names differ between a history and the registry (agencies were renamed, a street's
offices carry its name in brackets): :class:`UnitNames` matches them exactly, then without
the street qualifier where that leaves one unit, then through an alias table; the names it
cannot match are listed, never dropped.

Examples
--------
>>> import pandas as pd
>>> history = pd.DataFrame({"event_type": ["下水井盖"] * 4 + ["路灯"], "main_type": "公用部件",
...                         "street": "龙田街道", "community": "竹坑社区",
...                         "closing_unit": ["水务公司", "水务公司", "水务公司", "电信", "照明所"]})
>>> routes = RoutingTable.learn(history, min_events=3)
>>> answer = routes.route(pd.DataFrame({"event_type": ["下水井盖"], "main_type": ["公用部件"],
...                                     "street": ["龙田街道"], "community": ["竹坑社区"]}))
>>> answer.loc[0, "unit"], float(answer.loc[0, "share"]), answer.loc[0, "level"]
('水务公司', 0.75, 'community')
>>> answer.loc[0, "alternatives"]
'电信 (0.25)'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from citygrid._i18n import N_, _
from citygrid._text import read_csv_table
from citygrid.errors import InputError, replacing

LEVELS = (N_("community"), N_("street"), N_("district"), N_("main type"))
"""Where a route is learned, most specific first; an event takes the first with enough events (marked for
translation: the command names them)."""
_KEYS = {"community": ("event_type", "street", "community"), "street": ("event_type", "street"),
         "district": ("event_type",), "main type": ("main_type",)}
_WHERE = {"community": N_("in {community}"), "street": N_("in {street}"), "district": N_("in the district"),
          "main type": N_("in the district")}
_QUALIFIER = re.compile(r"[（(][^（）()]*(?:街道办事处|街道|辖区|办)[)）]\s*$")
COLUMNS = ("level", "event_type", "main_type", "street", "community", "unit", "events", "share")
"""The columns of a saved routing table."""


@dataclass
class RoutingTable:
    """Units per sub type and area, learned from closed events.

    Attributes
    ----------
    routes : DataFrame
        One row per level, key and unit: :data:`COLUMNS`; ``share`` is the unit's part of
        the key's events.
    min_events : int
        Fewest events a key needs before a route is taken from it rather than from the
        next, coarser level.
    """

    routes: pd.DataFrame
    min_events: int = 5

    @classmethod
    def learn(cls, history: pd.DataFrame, *, min_events: int = 5) -> RoutingTable:
        """Learn from events with their ``closing_unit`` (as :func:`citygrid.events.read_events` reads them).

        Events without a unit, repeats (``repeat_of``) and those closed by a test unit
        (``test_unit``) are left out.
        """
        use = history[history["closing_unit"].notna()]
        for column, keep in (("repeat_of", lambda s: s.isna()), ("test_unit", lambda s: ~s.astype(bool))):
            if column in use:
                use = use[keep(use[column])]
        parts = []
        for level in LEVELS:
            keys = list(_KEYS[level])
            counted = use.dropna(subset=keys).groupby([*keys, "closing_unit"]).size().rename("events").reset_index()
            counted["share"] = counted["events"] / counted.groupby(keys)["events"].transform("sum")
            parts.append(counted.assign(level=level).rename(columns={"closing_unit": "unit"}))
        routes = pd.concat(parts, ignore_index=True).reindex(columns=list(COLUMNS))
        routes = routes.sort_values(["level", "event_type", "main_type", "street", "community", "events"],
                                    ascending=[True, True, True, True, True, False], ignore_index=True)
        routes["share"] = routes["share"].round(4)
        return cls(routes, min_events)

    @classmethod
    def read(cls, path: str | Path, *, min_events: int = 5) -> RoutingTable:
        """A routing table saved by :meth:`to_csv`, perhaps edited by hand (shares are counted again)."""
        table = read_csv_table(path, what=_("routing table"), required=["level", "unit", "events"])
        table = table.reindex(columns=list(COLUMNS)).replace("", None)
        bad = ~table["level"].isin(LEVELS)
        if bad.any():
            raise InputError(_("routing table {path!r}: level {level!r} is not one of {known}.").format(
                path=str(path), level=table.loc[bad, "level"].iloc[0], known=", ".join(LEVELS)))
        table["events"] = pd.to_numeric(table["events"], errors="coerce").fillna(0).astype(int)
        keys = ["level", "event_type", "main_type", "street", "community"]
        table = table.groupby([*keys, "unit"], dropna=False, sort=False)["events"].sum().reset_index()  # one unit once
        totals = table.groupby(keys, dropna=False)["events"].transform("sum")
        table["share"] = (table["events"] / totals.where(totals > 0)).round(4)
        return cls(table.reindex(columns=list(COLUMNS)), min_events)

    def to_csv(self, path: str | Path) -> Path:
        """Save the routes as a CSV (UTF-8 with BOM, as Excel opens it), written whole or not at all."""
        with replacing(Path(path)) as partial:
            self.routes.to_csv(partial, index=False, encoding="utf-8-sig")
        return Path(path)

    def route(self, events: pd.DataFrame) -> pd.DataFrame:
        """The unit for each event from its ``event_type``, ``main_type``, ``street`` and ``community``.

        Returns
        -------
        pandas.DataFrame
            Per event: ``unit`` (None where no route fits), ``share`` (its part of the past
            events at the level used: the confidence), ``alternatives`` (the next two units
            with their shares), ``level``, ``events`` (past events at that level) and
            ``reason`` ("282 of 447 past 下水井盖 events in 龙田街道 went to …").
        """
        index = {level: {k if isinstance(k, tuple) else (k,): g for k, g in self.routes[
            self.routes["level"] == level].groupby(list(_KEYS[level]), sort=False)} for level in LEVELS}
        columns = ["event_type", "main_type", "street", "community"]
        keys = events.reindex(columns=columns).astype(object).where(events.reindex(columns=columns).notna(), None)
        answers: dict[tuple, dict] = {}
        rows = []
        for values in keys.itertuples(index=False, name=None):
            if values not in answers:
                answers[values] = self._one(dict(zip(columns, values)), index)
            rows.append(answers[values])
        return pd.DataFrame(rows, index=events.index,
                            columns=["unit", "share", "alternatives", "level", "events", "reason"])

    def _one(self, event: dict, index: dict) -> dict:
        fallback = None
        for level in LEVELS:
            key = tuple(event[k] for k in _KEYS[level])
            if any(v is None for v in key):
                continue
            group = index[level].get(key)
            if group is None:
                continue
            total = int(group["events"].sum())
            if total >= self.min_events:
                return self._answer(group, total, level, event)
            if fallback is None or total > fallback[1]:  # too few everywhere: the level that saw the most
                fallback = (group, total, level)
        if fallback is not None:
            return self._answer(*fallback, event)
        return {"unit": None, "share": np.nan, "alternatives": "", "level": None, "events": 0,
                "reason": _("no past event of this type to learn a unit from")}

    @staticmethod
    def _answer(group: pd.DataFrame, total: int, level: str, event: dict) -> dict:
        top = group.sort_values("events", ascending=False).head(3)
        unit, n = top["unit"].iloc[0], int(top["events"].iloc[0])
        where = _(_WHERE[level]).format(community=event["community"], street=event["street"])
        if level == "main type":
            reason = _("{n:,} of {total:,} past events of the main type {what} {where} went to {unit}").format(
                n=n, total=total, what=event["main_type"], where=where, unit=unit)
        else:
            reason = _("{n:,} of {total:,} past {what} events {where} went to {unit}").format(
                n=n, total=total, what=event["event_type"], where=where, unit=unit)
        others = "; ".join(f"{u} ({s:.2f})" for u, s in zip(top["unit"].iloc[1:], top["events"].iloc[1:] / total))
        return {"unit": unit, "share": round(n / total, 4), "alternatives": others, "level": level,
                "events": total, "reason": reason}


class UnitNames:
    """Match unit names of events and histories to the registry's units.

    Exactly; else without a street qualifier (``六和社区（坪山街道办事处）`` → ``六和社区``)
    where that names one unit; else through `aliases` (renamed agencies: ``环境保护和水务局`` →
    ``坪山区水务局``).

    Parameters
    ----------
    units : iterable of str
        The registry's unit names.
    aliases : dict, optional
        Other names mapped to registry unit names.
    """

    def __init__(self, units, aliases: dict[str, str] | None = None) -> None:
        self.units = set(units)
        self.aliases = dict(aliases or {})
        bare: dict[str, set[str]] = {}
        for name in self.units:
            bare.setdefault(_QUALIFIER.sub("", name), set()).add(name)
        self._bare = {k: next(iter(v)) for k, v in bare.items() if len(v) == 1}

    @classmethod
    def read_aliases(cls, path: str | Path) -> dict[str, str]:
        """An alias table: CSV with columns ``name`` (as events say it) and ``unit`` (the registry's name)."""
        table = read_csv_table(path, what=_("unit alias table"), required=["name", "unit"])
        return dict(zip(table["name"].str.strip(), table["unit"].str.strip()))

    def match(self, names: pd.Series) -> pd.Series:
        """The registry's name for each name, None where none matches."""
        def one(name):
            if not isinstance(name, str):
                return None
            if name in self.units:
                return name
            if name in self.aliases and self.aliases[name] in self.units:
                return self.aliases[name]
            bare = _QUALIFIER.sub("", name)
            return bare if bare in self.units else self._bare.get(bare)

        return names.map({n: one(n) for n in names.dropna().unique()})

    def unmatched(self, names: pd.Series) -> pd.Series:
        """Names no registry unit matches, with how many times each appears, most first."""
        matched = self.match(names)
        return names[names.notna() & matched.isna()].value_counts()
