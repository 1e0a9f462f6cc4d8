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

COLUMNS = ("row", "event_id", "component_id", "distance_m", "candidates", "confidence", "owner", "owner_code",
           "maintainer", "maintainer_code", "department", "category", "category_name", "grid", "community",
           "street", "outcome", "reason", "event_type", "channel", "created_at", "closed_at")
"""The columns of the dispatch file, in order."""


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
    max_rows: int = MAX_ROWS, as_json: bool = AS_JSON,
) -> None:
    """Send each hotline event to the component and the unit that must act, or say why there is none.

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
            result = reg.dispatch(events, radius=radius, gps_m=gps_m, coords=coords, event_types=event_types)
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
    outcomes = result.loc[result["outcome"] != "matched", "outcome"].value_counts()
    sure = int((result["confidence"] >= 0.9).sum())
    if as_json:
        print_json({"events": len(result), "matched": matched, "confident": sure,
                    "coordinates": result.attrs["coordinates"], "outcomes": outcomes.to_dict(),
                    "output": str(output), **({"map": str(map_file)} if map_file else {})})
        return
    say(_("{n:,} events, {matched:,} sent to a component's unit, {sure:,} of them with confidence ≥ 0.9 (coordinates "
          "read as {coords}); written to {path}").format(n=len(result), matched=matched, sure=sure,
                                                         coords=result.attrs["coordinates"], path=output))
    first = result.drop_duplicates("outcome").set_index("outcome")["reason"]
    for outcome, count in outcomes.items():
        example = first[outcome] if outcome != "no_component" else _("no component of the kind within the radius")
        say(f"  {count:,} × {example}")
