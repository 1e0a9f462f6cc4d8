"""``citygrid dispatch``: hotline events to the component and the unit that must act."""

from __future__ import annotations

from pathlib import Path

import typer

from citygrid._i18n import N_, _
from citygrid.cli._app import (
    AS_JSON,
    MAX_ROWS,
    REGISTRY,
    app,
    command,
    console,
    flag,
    guard,
    h,
    open_registry,
    option,
    print_json,
    read_options,
    say,
)

COLUMNS = ("row", "event_id", "unit", "unit_source", "confidence", "alternatives", "history_unit", "component_id",
           "category", "category_name", "distance_m", "candidates", "nearby", "owner", "owner_code", "maintainer",
           "maintainer_code", "department", "grid", "community", "street", "outcome", "reason", "event_type",
           "main_type", "component_event", "channel", "created_at", "closed_at", "closing_unit", "repeat_of", "flags")
"""The columns of the dispatch file, in order: the answer first, then how it was found, then the event."""


@command(app)
def dispatch(
    events: Path = typer.Argument(..., help=h(N_("Hotline events: CSV or XLSX export (id, time, type, lon/lat …).")),
    ),
    registry: str = REGISTRY,
    output: Path = option(..., "--output", "-o", help_text=N_("One row per event: .csv or .xlsx.")),
    map_file: Path = option(None, "--map", help_text=N_("Also write a map of the events (HTML).")),
    gcj02: bool = flag("--gcj02", N_("Locations are GCJ-02 (WeChat, Amap).")),
    bd09: bool = flag("--bd09", N_("Locations are BD-09 (Baidu).")),
    radius: float = option(10.0, "--radius", help_text=N_("Metres searched around each event.")),
    gps_m: float = option(3.0, "--gps-m", min=0.01, help_text=N_(
        "Location error of the events (metres, standard deviation per axis); it weighs the confidence column.")),
    event_types: Path = option(None, "--event-types", help_text=N_(
        "Your own event type → category table (CSV: code, name_zh, categories).")),
    history: Path = option(None, "--history", help_text=N_(
        "Closed events to learn which unit acts where (an export with its dispose units), or routes saved by "
        "citygrid routes.")),
    unit_aliases: Path = option(None, "--unit-aliases", help_text=N_(
        "CSV of unit names as events say them and the registry's (name, unit), for renamed agencies.")),
    max_rows: int = MAX_ROWS, as_json: bool = AS_JSON,
) -> None:
    """Send each hotline event to the component and the unit that must act, or say why there is none.

    Every event gets a row with a unit or a reason: exit 0; exit 2 if the events cannot be read.

    Example: citygrid dispatch events.csv -r pingshan.gpkg -o dispatch.csv --map dispatch.html
    """
    import pandas as pd

    from citygrid import maps
    from citygrid._text import spreadsheet_safe
    from citygrid.errors import UsageError, replacing

    with guard():
        if gcj02 and bd09:
            raise UsageError(_("give --gcj02 or --bd09, not both."))
        if output.suffix.lower() not in (".csv", ".xlsx"):
            raise UsageError(_("--output {name!r}: write .csv or .xlsx.").format(name=output.name))
        read_options(None, None, False, None, max_rows)
        reg = open_registry(registry)
        with console.status(_("Dispatching {name}…").format(name=events.name)):
            coords = "gcj02" if gcj02 else "bd09" if bd09 else "auto"
            result = reg.dispatch(events, radius=radius, gps_m=gps_m, coords=coords, event_types=event_types,
                                  history=history, unit_aliases=unit_aliases)
        table = spreadsheet_safe(pd.DataFrame(result[list(COLUMNS)]))
        with replacing(output) as partial:
            if output.suffix.lower() == ".csv":
                table.to_csv(partial, index=False, encoding="utf-8-sig")
            else:
                table.to_excel(partial, index=False, sheet_name="dispatch", engine="openpyxl")
        if map_file is not None:
            with replacing(map_file) as partial:
                maps.events_map(reg, result).save(partial)
    matched = int((result["outcome"] == "matched").sum())
    routed = int((result["outcome"] == "routed").sum())
    outcomes = result.loc[~result["outcome"].isin(["matched", "routed"]), "outcome"].value_counts()
    sure = int(((result["outcome"] == "matched") & (result["confidence"] >= 0.9)).sum())
    unmatched = result.attrs["unmatched_units"]
    if as_json:
        read_as = result.attrs["coordinates"] if result.attrs["placed"] else None
        print_json({"events": len(result), "matched": matched, "confident": sure, "routed": routed,
                    "coordinates": read_as, "outcomes": outcomes.to_dict(), "unmatched_units": unmatched,
                    "output": str(output), **({"map": str(map_file)} if map_file else {})})
        return
    places = (_("coordinates read as {coords}").format(coords=result.attrs["coordinates"]) if result.attrs["placed"]
              else _("no event gives a place"))
    say(_("{n:,} events, {matched:,} sent to a component's unit, {sure:,} of them with confidence ≥ 0.9 ({places}); "
          "written to {path}").format(n=len(result), matched=matched, sure=sure, places=places, path=output))
    if routed:
        say(_("  {n:,} sent to the unit past events of their kind and area went to").format(n=routed))
    first = result.drop_duplicates("outcome").set_index("outcome")["reason"]
    alike = {"no_component": _("no component of the kind within the radius"),
             "repeat": _("repeat of an earlier event (the same in every column but its id): answered once"),
             "no_route": _("no closed event of its type in the history: route it by hand")}
    for outcome, count in outcomes.items():
        say(f"  {count:,} × {alike.get(outcome, first[outcome])}")
    tests = int(result["flags"].astype(bool).sum())
    if tests:
        say(_("{n:,} events closed by a test unit: flagged in the flags column").format(n=tests))
    if unmatched:
        say(_("unit names that match no unit of the registry (map them with --unit-aliases): {names}").format(
            names=", ".join(f"{name} ({n:,})" for name, n in list(unmatched.items())[:20])))


@command(app)
def routes(
    history: Path = typer.Argument(..., help=h(N_("Closed events: an export with its dispose units (CSV or XLSX)."))),
    output: Path = option(..., "--output", "-o", help_text=N_("The routing table to write (.csv).")),
    min_events: int = option(5, "--min-events", min=1, help_text=N_(
        "Fewest past events a community (then a street) needs before its own route is used.")),
    as_json: bool = AS_JSON,
) -> None:
    """Learn which unit acts on which kind of event where, from closed events; a CSV a dispatcher can edit.

    Example: citygrid routes events-2025.csv -o routes.csv, then citygrid dispatch new.csv -r pingshan.gpkg -o
    out.csv --history routes.csv
    """
    from citygrid.dispatch import learn_routes
    from citygrid.errors import UsageError

    with guard():
        if output.suffix.lower() != ".csv":
            raise UsageError(_("--output {name!r}: write .csv.").format(name=output.name))
        table = learn_routes(history, min_events=min_events)
        table.to_csv(output)
    counts = table.routes["level"].value_counts()
    if as_json:
        print_json({"routes": len(table.routes), "by_level": counts.to_dict(), "output": str(output)})
        return
    say(_("{n:,} routes ({levels}) written to {path}").format(
        n=len(table.routes), levels=", ".join(f"{_(level)} {k:,}" for level, k in counts.items()), path=output))
