"""Hotline events (12345, WeChat, web mailbox) to the component and the unit that must act.

An event batch is a CSV or XLSX export of a hotline system: an id, a time, a channel, a
description, an event type, a location (often GCJ-02 from WeChat or Amap, sometimes BD-09
from Baidu), perhaps the closing time and unit. :func:`dispatch` finds, for every event, the
nearest registered component of the categories its type concerns (the event type table,
``data/event_types.csv``, or a category the event already names), with its owner,
maintainer, department, grid cell, community and street, or says why there is none. The
figures a district reports follow: events per unit, street and category, closed within one
and three days, median time to close; components reported again and again; events that fall
on no registered component, per grid cell.

Examples
--------
>>> result = dispatch(reg, "events.csv")  # doctest: +SKIP
>>> result[["event_id", "component_id", "distance_m", "maintainer", "reason"]].head()  # doctest: +SKIP
>>> closing_figures(result, by="maintainer")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from citygrid import settings
from citygrid._arrays import NONE
from citygrid._i18n import N_, _, list_text
from citygrid.crs import bd09_to_wgs84, gcj02_to_wgs84, transformer
from citygrid.errors import UsageError
from citygrid.events import READ_PROBLEMS, join_problems, load_event_types, read_events
from citygrid.lookup import near
from citygrid.routes import RoutingTable, UnitNames

if TYPE_CHECKING:
    from citygrid.registry import Registry

__all__ = ["COORDINATES", "OUTCOMES", "REASONS", "closing_figures", "dispatch", "learn_routes", "repeated_components",
           "unmatched_cells"]

COORDINATES = ("auto", "wgs84", "gcj02", "bd09")
"""How event locations are given; ``auto`` picks the one that puts events closest to the registry."""

REASONS = {
    "no_component": N_("no {what} within {radius:g} m"),
    "outside": N_("outside the district"),
    "not_component": N_("not a component event"),
    "unknown_type": N_("event type {type!r} is not in the event type table"),
    "unknown_category": N_("category {category!r} is not in the catalog"),
    "unknown_component": N_("component {component!r} is not in the registry"),
    "repeat": N_("repeat of event {event} (the same in every column but its id): answered once, with that event"),
    "no_route": N_("no closed event of its type or main type in the history to learn a unit from"),
    **READ_PROBLEMS,
}
"""Why an event went to no component, by its ``outcome`` code (``"matched"`` when one was found, ``"routed"``
when its unit comes from the routes of past events, the reason then saying why and from which; an event whose
place holds no component of its kind stays ``"no_component"``, a gap in the registry, and takes the route's unit)."""
OUTCOMES = ("matched", "routed", *REASONS)


def _reason(outcome: str, **values: Any) -> str:
    """The words of an outcome, in the language in use."""
    return _(REASONS[outcome]).format(**values)


def _to_local(lon: np.ndarray, lat: np.ndarray, coords: str) -> np.ndarray:
    """Points in the registry's CRS from longitude/latitude given as `coords`."""
    if coords == "gcj02":
        lon, lat = gcj02_to_wgs84(lon, lat)
    elif coords == "bd09":
        lon, lat = bd09_to_wgs84(lon, lat)
    x, y = transformer(settings.web_crs, settings.default_crs).transform(lon, lat)
    return shapely.points(x, y)


def _choose_coordinates(lon: np.ndarray, lat: np.ndarray, index) -> str:
    """WGS84, GCJ-02 or BD-09: whichever puts a sample of events nearest the registered components."""
    if not len(lon):
        return "wgs84"
    pick = np.random.default_rng(0).choice(len(lon), size=min(len(lon), 2000), replace=False)
    medians = {}
    for coords in COORDINATES[1:]:
        points = _to_local(lon[pick], lat[pick], coords)
        _, distance = index.nearest(points, return_distance=True, return_all=False)
        medians[coords] = float(np.median(distance))
    return min(medians, key=lambda coords: medians[coords])


def dispatch(reg: Registry, events: str | Path | pd.DataFrame, *, radius: float = 10.0, gps_m: float = 3.0,
             coords: str = "auto", event_types: str | Path | pd.DataFrame | None = None,
             history: str | Path | pd.DataFrame | RoutingTable | None = None,
             unit_aliases: str | Path | dict | None = None) -> gpd.GeoDataFrame:
    """For each event, the component and the unit that must act, or why there is none.

    Parameters
    ----------
    reg : Registry
    events : path or DataFrame
        CSV/XLSX export of a hotline or urban-management system (see
        :func:`citygrid.events.read_events`); places are optional.
    radius : float, default 10.0
        Metres around the event's location searched for a component of its categories. A
        phone's fix in a city is good to a few metres; a wider radius finds more of the
        right components but also takes a neighbour for a component the registry lacks
        (measured in ``benchmarks/RESULTS.md``).
    gps_m : float, default 3.0
        Standard deviation, per axis, of an event location's error in metres. It weighs
        the candidates within `radius` into ``confidence``.
    coords : {"auto", "wgs84", "gcj02", "bd09"}
        How locations are given; ``auto`` picks the one that puts the events nearest the
        registered components (``result.attrs["coordinates"]`` says which).
    event_types : path or DataFrame, optional
        The event type table (default Pingshan's, see :func:`citygrid.events.load_event_types`).
    history : path, DataFrame or RoutingTable, optional
        Closed events to learn routes from (an export with its dispose units), or a routing
        table saved before (:class:`citygrid.routes.RoutingTable`). Events that reach no
        component get their unit from it.
    unit_aliases : path or dict, optional
        Names of units in the events and the history mapped to the registry's (a CSV with
        ``name, unit``), for renamed agencies.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per event, in input order: ``row, event_id, created_at, closed_at, channel,
        event_type, main_type, component_event`` (whether the type concerns components),
        ``categories`` (those searched), ``component_id, category, category_name,
        distance_m, candidates`` (how many components of those categories lie within
        `radius`), ``nearby`` (up to three of them: id, category, distance, maintainer),
        ``confidence`` (for a component: the chance that the nearest candidate is the one
        reported rather than another within `radius` + 3 `gps_m`, from their distances and `gps_m`, 1.0
        for a component the event names by id; for a route: the share of past events that
        went to the unit), ``owner, owner_code, maintainer, department``, ``unit`` (the unit
        that must act: the component's maintainer, else its owner, else the route's),
        ``unit_source`` (``registry`` or ``history``), ``alternatives`` (the next units of
        the route), ``history_unit`` (the route's unit where it differs from the
        registry's: the difference a registry is for), ``grid, community, street`` (of the
        location, else as the event names them), ``reason`` (empty when a component was
        found), ``outcome`` (one of :data:`OUTCOMES`), ``repeat_of``, ``flags`` and the
        event's point (EPSG:4547). ``attrs["unmatched_units"]`` counts the unit names of
        the events and the history that match no registry unit (test units, flagged, aside);
        ``attrs["placed"]`` is how many events gave a place.

    Notes
    -----
    An event that names a component (a ``部件编号`` column, as the collectors' app fills it)
    is sent to that component, or told that the registry has no such id; no neighbour is
    guessed for it. A description that names one kind among the categories of the event's
    type (``污水井盖`` of all manhole covers, as the cover is stamped) narrows the search to it.

    Raises
    ------
    UsageError
        For an unknown `coords`, or a `gps_m` that is not positive.
    BatchError
        If the events cannot be read.
    """
    if coords not in COORDINATES:
        raise UsageError(_("coords={coords!r}: use one of {known}.").format(coords=coords,
                                                                          known=", ".join(COORDINATES)))
    if not gps_m > 0:
        raise UsageError(_("--gps-m {value!r}: give the location error as a positive number of metres.").format(
            value=gps_m))
    if not (np.isfinite(radius) and 0 < radius <= 1_000):
        raise UsageError(_("--radius {value!r}: give the search radius in metres, more than 0 and at most "
                           "1,000.").format(value=radius))
    frame = read_events(events)
    if frame.crs is not None and not frame.crs.is_geographic:  # a file that says its CRS is taken at its word
        frame = frame.to_crs(settings.web_crs)
        coords = "wgs84"
    table = event_types if isinstance(event_types, pd.DataFrame) else load_event_types(event_types)
    tree = reg.components.sindex
    located = ~(frame.geometry.isna() | frame.geometry.is_empty).to_numpy()
    lon = np.full(len(frame), np.nan)
    lat = np.full(len(frame), np.nan)
    lon[located] = shapely.get_x(frame.geometry.to_numpy()[located])
    lat[located] = shapely.get_y(frame.geometry.to_numpy()[located])
    off_earth = located & ~((np.abs(lon) <= 180) & (np.abs(lat) <= 90))  # NaN too (an empty point's)
    said = [_reason("no_location", where=_("longitude/latitude {x:g}/{y:g}").format(x=x, y=y))
            for x, y in zip(lon[off_earth], lat[off_earth])]
    frame.loc[off_earth, "problem"] = join_problems(said, frame["problem"][off_earth])
    frame.loc[off_earth, "problem_code"] = "no_location"
    located &= ~off_earth
    if coords == "auto":
        coords = _choose_coordinates(lon[located], lat[located], tree)
    points = np.full(len(frame), None, dtype=object)
    points[located] = _to_local(lon[located], lat[located], coords)
    wanted, reason, outcome = _wanted(frame, table, reg)
    # no place matters to an event about a component (or of a type not known); not to a noise complaint
    placeless = ~located & (frame["problem"] == "").to_numpy() & (outcome != "not_component")
    frame.loc[placeless, "problem"] = _reason("no_location", where=_("the event gives no place"))
    frame.loc[placeless, "problem_code"] = "no_location"
    named_type = frame["event_type_code"].map(dict(zip(table["code"], table["name_zh"])))
    said_types = zip(frame["event_type"], named_type)
    wanted = _narrowed(wanted, frame["description"].to_numpy(dtype=object), said_types, reg.catalog)
    problem = frame["problem"].to_numpy(dtype=object) != ""
    reason = np.where(problem, frame["problem"].to_numpy(dtype=object), reason)
    outcome = np.where(problem, frame["problem_code"].to_numpy(dtype=object), outcome)
    inside = np.zeros(len(frame), dtype=bool)
    inside[located] = shapely.contains_xy(reg.district.boundary, shapely.get_x(points[located]),
                                          shapely.get_y(points[located]))
    # outside the district says more than "not a component event" or an unknown type: no unit here acts
    outside = located & ~inside & ~problem
    reason = np.where(outside, _reason("outside"), reason)
    outcome = np.where(outside, "outside", outcome)
    out = _match(frame, points, wanted, (reason, outcome), (radius, gps_m), reg)
    _name_the_area(out, frame, table)
    names = UnitNames(reg.district.units["name"], unit_aliases if isinstance(unit_aliases, dict) or
                      unit_aliases is None else UnitNames.read_aliases(unit_aliases))
    routes = history if isinstance(history, RoutingTable) or history is None else learn_routes(history)
    _units(out, routes, names)
    _repeats(out, frame)
    said = pd.concat([out["closing_unit"][~frame["test_unit"].to_numpy(dtype=bool)], pd.Series(
        [] if routes is None else routes.routes["unit"].unique(), dtype=object)], ignore_index=True)
    unmatched = names.unmatched(said)
    out.attrs["coordinates"], out.attrs["radius_m"], out.attrs["placed"] = coords, radius, int(located.sum())
    out.attrs["unmatched_units"] = unmatched.to_dict()
    return out


def learn_routes(history: str | Path | pd.DataFrame, *, min_events: int = 5) -> RoutingTable:
    """Routes from closed events (an export, as :func:`citygrid.events.read_events` reads it), or a saved table.

    A CSV with the columns of :data:`citygrid.routes.COLUMNS` is read as a routing table saved
    before (and perhaps edited by a dispatcher); anything else as events to learn from.
    """
    if isinstance(history, (str, Path)) and Path(history).suffix.lower() == ".csv":
        head = Path(history).read_bytes()[:4096].decode("utf-8-sig", errors="replace").splitlines()[:1]
        if head and {"level", "unit", "events"} <= {c.strip() for c in head[0].split(",")}:
            return RoutingTable.read(history, min_events=min_events)
    past = read_events(history)
    past["main_type"] = _main_types(past, load_event_types())
    return RoutingTable.learn(past, min_events=min_events)


def _main_types(events: pd.DataFrame, table: pd.DataFrame) -> pd.Series:
    """Each event's main type: as its export says, else its sub type's in the event type table."""
    return events["main_type"].fillna(events["event_type"].map(dict(zip(table["name_zh"], table["main_name"]))))


def _name_the_area(out: pd.DataFrame, frame: pd.DataFrame, table: pd.DataFrame) -> None:
    """Main types, street and community of each event where its export or its place does not say them.

    The main type comes from the event type table; street and community as the event names them.
    """
    out["main_type"] = _main_types(frame, table).to_numpy(dtype=object)
    for column in ("street", "community"):
        out[column] = out[column].where(out[column].notna(), frame[column].to_numpy(dtype=object))
    out["component_event"] = [bool(c) for c in out["categories"]]


def _units(out: pd.DataFrame, routes: RoutingTable | None, names: UnitNames) -> None:
    """The unit that must act: the component's (maintainer, else owner, else department), else the route's."""
    registry_unit = out["maintainer"].fillna(out["owner"]).fillna(out["department"])
    out["unit"] = registry_unit
    out["unit_source"] = np.where(registry_unit.notna(), "registry", NONE)
    out["alternatives"], out["history_unit"] = "", None
    if routes is None:
        return
    routed = routes.route(out)
    by_history = names.match(routed["unit"]).fillna(routed["unit"])
    differs = registry_unit.notna() & by_history.notna() & (by_history != registry_unit)
    out.loc[differs, "history_unit"] = routed.loc[differs, "unit"]
    take = registry_unit.isna() & routed["unit"].notna() & ~out["outcome"].isin(["unreadable_time", "outside"])
    out.loc[take, "unit"] = by_history[take]
    out.loc[take, "unit_source"] = "history"
    out.loc[take, "alternatives"] = routed.loc[take, "alternatives"]
    out.loc[take, "confidence"] = routed.loc[take, "share"]
    out.loc[take, "reason"] = [f"{why}; {how}" for why, how in zip(out.loc[take, "reason"], routed.loc[take, "reason"])]
    # a placed event that found no component keeps saying so (a gap in the registry), with history's unit
    out.loc[take & (out["outcome"] != "no_component"), "outcome"] = "routed"
    lost = registry_unit.isna() & routed["unit"].isna() & ~out["outcome"].isin(
        ["unreadable_time", "outside", "routed"])
    out.loc[lost, "reason"] = [f"{why}; {_reason('no_route')}" for why in out.loc[lost, "reason"]]
    out.loc[lost, "outcome"] = "no_route"


def _repeats(out: pd.DataFrame, frame: pd.DataFrame) -> None:
    """Repeats keep their answer's place empty: the first row of them is the one dispatched."""
    again = frame["repeat_of"].notna().to_numpy()
    out["repeat_of"] = frame["repeat_of"].to_numpy(dtype=object)
    out["flags"] = np.where(frame["test_unit"].to_numpy(dtype=bool), _("closed by a test unit"), "")
    if not again.any():
        return
    for column in ("component_id", "unit", "unit_source", "history_unit", "owner", "owner_code", "maintainer",
                   "maintainer_code", "department"):
        out.loc[again, column] = None
    out.loc[again, "confidence"] = np.nan
    out.loc[again, "reason"] = [_reason("repeat", event=e) for e in out.loc[again, "repeat_of"]]
    out.loc[again, "outcome"] = "repeat"


def _wanted(frame: gpd.GeoDataFrame, table: pd.DataFrame,
            reg: Registry) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
    """The registry category codes each event concerns, and a reason and outcome code where there are none."""
    by_code = dict(zip(table["code"], table["categories"]))
    by_name = dict(zip(table["name_zh"], table["categories"]))
    layout_2026 = reg.layout == "gbt47678"
    decided: dict[tuple, tuple[list[str], tuple[str, str]]] = {}  # the same (category, type code, type) decides alike
    wanted: list[list[str]] = []
    reason = np.full(len(frame), "", dtype=object)
    outcome = np.full(len(frame), "", dtype=object)
    for k, key in enumerate(zip(frame["category"], frame["event_type_code"], frame["event_type"])):
        if key not in decided:
            decided[key] = _decide(*key, by_code, by_name, reg.catalog, layout_2026)
        wanted.append(decided[key][0])
        outcome[k], reason[k] = decided[key][1]
    return wanted, reason, outcome


def _decide(named, code, name, by_code: dict, by_name: dict, catalog,
            layout_2026: bool) -> tuple[list[str], tuple[str, str]]:
    """The registry codes an event of this category or type concerns, and ``(outcome, reason)`` when none."""
    if isinstance(named, str):
        try:
            cats = [catalog[named].code]
        except KeyError:
            return [], ("unknown_category", _reason("unknown_category", category=named))
    elif isinstance(code, str) and code in by_code:
        cats = by_code[code]
    elif isinstance(name, str) and name in by_name:
        cats = by_name[name]
    else:
        return [], ("unknown_type", _reason("unknown_type", type=code if isinstance(code, str) else name))
    if not cats:
        return [], ("not_component", _reason("not_component"))
    return [catalog[c].code_2026 if layout_2026 else c for c in cats if c in catalog], ("", "")


def _narrowed(wanted: list[list[str]], descriptions: np.ndarray, types: Iterable[tuple], catalog) -> list[list[str]]:
    """Of the categories each event's type concerns, those its description names, when it names any.

    The type's own name is no such word: 广告牌匾 in 广告牌匾破损隐患 is said of every sign board
    the type concerns, so the type's names (the event's, and the table's for its code) are taken
    out of the description before it is read.
    """
    words: dict[tuple[str, ...], dict[str, tuple[str, ...]]] = {}
    out = []
    for cats, text, kind in zip(wanted, descriptions, types):
        if len(cats) < 2 or not isinstance(text, str):
            out.append(cats)
            continue
        for name in kind:
            if isinstance(name, str) and name:
                text = text.replace(name, " ")
        if tuple(cats) not in words:
            words[tuple(cats)] = _kind_words(cats, catalog)
        named = [c for c, said in words[tuple(cats)].items() if any(w in text for w in said)]
        out.append(named or cats)
    return out


def _kind_words(cats: list[str], catalog) -> dict[str, tuple[str, ...]]:
    """Words that tell each category of a group from the others.

    Its name, and the name without the group's common ending when two characters or more
    remain (污水 for 污水井盖 among the covers).
    """
    names = {c: catalog[c].name_zh for c in cats}
    ending = len(os.path.commonprefix([n[::-1] for n in names.values()]))
    return {c: (n, n[:len(n) - ending]) if len(n) - ending >= 2 else (n,) for c, n in names.items()}


def _match(frame: gpd.GeoDataFrame, points: np.ndarray, wanted: list[list[str]], why: tuple[np.ndarray, np.ndarray],
           metres: tuple[float, float], reg: Registry) -> gpd.GeoDataFrame:
    """The component each event names, else the nearest of the wanted categories within the radius.

    `why` holds the reason and outcome code of each event decided so far ("" where undecided);
    `metres` the search radius and the location error.
    """
    reason, outcome = why
    (radius, gps_m), current = metres, reg.components
    found = np.full(len(frame), -1)
    metres_to = np.full(len(frame), np.nan)
    confidence = np.full(len(frame), np.nan)
    ids = frame["component_id"].to_numpy(dtype=object)
    # a named component needs no location, but a row whose times cannot be read stays a bad row
    named = pd.notna(ids) & frame["times_ok"].to_numpy(dtype=bool)
    at = pd.Index(current["component_id"]).get_indexer(ids[named])
    rows = np.flatnonzero(named)
    reason[rows] = np.where(at >= 0, "", [_reason("unknown_component", component=i) for i in ids[named]])
    outcome[rows] = np.where(at >= 0, "matched", "unknown_component")
    rows, at = rows[at >= 0], at[at >= 0]
    found[rows], confidence[rows] = at, 1.0
    placed = np.array([p is not None for p in points[rows]], dtype=bool)
    metres_to[rows[placed]] = shapely.distance(points[rows[placed]], current.geometry.to_numpy()[at[placed]])
    ask = np.flatnonzero((reason == "") & ~named & np.array([bool(w) for w in wanted]))
    # components a little beyond the radius are not picked, but they make a pick near its edge less sure
    ev, comp, distance = near(current, points[ask], radius + 3 * gps_m, [wanted[e] for e in ask])
    ev = ask[ev]
    within = distance <= radius
    first = np.r_[True, ev[1:] != ev[:-1]] if len(ev) else np.array([], bool)
    nearby = _nearby(ev[within], comp[within], distance[within], first[within], current, len(frame))
    picked = first & within
    found[ev[picked]] = comp[picked]
    metres_to[ev[picked]] = distance[picked]
    candidates = np.bincount(ev[within], minlength=len(frame))
    # the likelihood of each candidate under Gaussian location error, relative to the nearest's
    weight = np.exp(-(distance ** 2 - distance[np.maximum.accumulate(np.where(first, np.arange(len(ev)), 0))] ** 2)
                    / (2 * gps_m ** 2)) if len(ev) else distance
    confidence[ev[picked]] = 1.0 / np.bincount(ev, weights=weight, minlength=len(frame))[ev[picked]]
    names = reg.catalog.to_frame().set_index("code")["name_zh"]
    for e in ask[found[ask] < 0]:
        what = list_text([names.get(c, c) for c in wanted[e][:3]]) + ("…" if len(wanted[e]) > 3 else "")
        reason[e] = _reason("no_component", what=what, radius=radius)
        outcome[e] = "no_component"
    out = pd.DataFrame({
        "row": frame["row"].to_numpy(), "event_id": frame["event_id"].to_numpy(dtype=object),
        "created_at": frame["created_at"].to_numpy(), "closed_at": frame["closed_at"].to_numpy(),
        "channel": frame["channel"].to_numpy(dtype=object), "event_type": frame["event_type"].to_numpy(dtype=object),
        "description": frame["description"].to_numpy(dtype=object),
        "closing_unit": frame["closing_unit"].to_numpy(dtype=object),
        "categories": [" ".join(w) for w in wanted]})
    hit = found >= 0
    for column in ("component_id", "category", "category_name", "owner", "owner_code", "maintainer",
                   "maintainer_code", "department"):
        values = np.full(len(frame), None, dtype=object)
        values[hit] = current[column].take(found[hit]).to_numpy(dtype=object)
        out[column] = values
    out["distance_m"] = np.round(metres_to, 2)
    out["candidates"] = candidates
    out["nearby"] = nearby
    out["confidence"] = np.round(confidence, 3)
    placed = np.array([p is not None for p in points])
    cells = reg.district.locate(points[placed]) if placed.any() else pd.DataFrame()
    for column in ("grid", "community", "street"):
        values = np.full(len(frame), None, dtype=object)
        if placed.any():
            values[placed] = cells[column].to_numpy(dtype=object)
        out[column] = values
    out["reason"] = reason
    out["outcome"] = np.where(found >= 0, "matched", outcome)
    return gpd.GeoDataFrame(out, geometry=list(points), crs=settings.default_crs)


def _nearby(ev: np.ndarray, comp: np.ndarray, distance: np.ndarray, first: np.ndarray, current: pd.DataFrame,
            n: int) -> np.ndarray:
    """Up to three candidates of each event, nearest first: ``id category distance m maintainer``."""
    rank = np.arange(len(ev)) - np.maximum.accumulate(np.where(first, np.arange(len(ev)), 0)) if len(ev) else ev
    keep = rank < 3
    ids, cats = current["component_id"].to_numpy(dtype=object), current["category_name"].to_numpy(dtype=object)
    units = current["maintainer"].fillna(current["owner"]).to_numpy(dtype=object)
    out = np.full(n, "", dtype=object)
    for e, c, d in zip(ev[keep], comp[keep], distance[keep]):
        said = f"{ids[c]} {cats[c]} {d:.1f} m {units[c] or ''}".strip()
        out[e] = f"{out[e]}; {said}" if out[e] else said
    return out


def closing_figures(result: pd.DataFrame, *, by: str = "maintainer") -> pd.DataFrame:
    """Events received, closed within one and three days, and the median time to close, per group.

    Parameters
    ----------
    result : DataFrame
        What :func:`dispatch` returned.
    by : {"maintainer", "unit", "owner", "department", "street", "category_name", "event_type"}
        The group; events without one (no component found, no location) are counted under "—".

    Returns
    -------
    pandas.DataFrame
        ``events, closed, within_1d, within_3d, share_1d, share_3d, median_hours`` per group,
        most events first; shares are of the closed events.
    """
    groups = ("maintainer", "unit", "owner", "department", "street", "category_name", "event_type")
    if by not in groups:
        raise UsageError(_("--by {by!r}: use one of {known}.").format(by=by, known=", ".join(groups)))
    hours = (pd.to_datetime(result["closed_at"]) - pd.to_datetime(result["created_at"])).dt.total_seconds() / 3600
    frame = pd.DataFrame({"group": result[by].fillna("—"), "hours": hours})
    table = frame.groupby("group").agg(events=("hours", "size"), closed=("hours", "count"),
                                       within_1d=("hours", lambda h: int((h <= 24).sum())),
                                       within_3d=("hours", lambda h: int((h <= 72).sum())),
                                       median_hours=("hours", "median"))
    table["share_1d"] = (table["within_1d"] / table["closed"].where(table["closed"] > 0)).round(4)
    table["share_3d"] = (table["within_3d"] / table["closed"].where(table["closed"] > 0)).round(4)
    table["median_hours"] = table["median_hours"].round(1)
    return table.sort_values("events", ascending=False)[
        ["events", "closed", "within_1d", "within_3d", "share_1d", "share_3d", "median_hours"]].rename_axis(by)


def repeated_components(result: pd.DataFrame, *, min_events: int = 5, days: int = 30) -> pd.DataFrame:
    """Components reported at least `min_events` times within `days` days (the same cover, again and again).

    Returns
    -------
    pandas.DataFrame
        ``component_id, category_name, maintainer, events, first, last`` for the busiest
        window of each such component, most events first.
    """
    hits = result[result["component_id"].notna() & result["created_at"].notna()]
    hits = hits.sort_values(["component_id", "created_at"])
    rows = []
    for component, group in hits.groupby("component_id", sort=False):
        times = group["created_at"].to_numpy()
        if len(times) < min_events:
            continue
        ends = np.searchsorted(times, times + np.timedelta64(days, "D"), side="right")
        counts = ends - np.arange(len(times))
        best = int(np.argmax(counts))
        if counts[best] >= min_events:
            rows.append({"component_id": component, "category_name": group["category_name"].iloc[0],
                         "maintainer": group["maintainer"].iloc[0], "events": int(counts[best]),
                         "first": times[best], "last": times[ends[best] - 1]})
    columns = ["component_id", "category_name", "maintainer", "events", "first", "last"]
    return pd.DataFrame(rows, columns=columns).sort_values("events", ascending=False, ignore_index=True)


def unmatched_cells(result: pd.DataFrame, reg: Registry) -> gpd.GeoDataFrame:
    """Grid cells with component events that found no registered component: gaps in the registry.

    Returns
    -------
    geopandas.GeoDataFrame
        ``grid, community, street, unmatched`` and the cell polygon, most first.
    """
    missed = result[(result["outcome"] == "no_component") & result["grid"].notna()]
    counts = missed.groupby("grid").size().rename("unmatched")
    cells = reg.district.grid.set_index("code").join(counts, how="inner")
    names = dict(zip(reg.district.communities["code"], reg.district.communities["name"]))
    streets = dict(zip(reg.district.streets["code"], reg.district.streets["name"]))
    out = gpd.GeoDataFrame({"grid": cells.index, "community": cells["community_code"].map(names).to_numpy(),
                            "street": cells["street_code"].map(streets).to_numpy(),
                            "unmatched": cells["unmatched"].to_numpy()},
                           geometry=cells.geometry.to_numpy(), crs=reg.district.crs)
    return out.sort_values("unmatched", ascending=False, ignore_index=True)
