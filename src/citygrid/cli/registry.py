"""Commands that read or keep the registry: stats, owner, export, history, allow, backup and verify."""

from __future__ import annotations

from pathlib import Path

import typer

from citygrid._i18n import N_, _
from citygrid.cli._app import (
    AS_JSON,
    REGISTRY,
    app,
    command,
    console,
    fail,
    flag,
    guard,
    h,
    missing,
    open_registry,
    option,
    print_json,
    row,
    say,
    table,
)

_HEADERS = {"count": N_("count"), "share": N_("share"), "category": N_("category"), "street": N_("street"),
            "community": N_("community"), "owner": N_("owner"), "maintainer": N_("maintainer"),
            "department": N_("department"), "status": N_("status"), "grid": N_("grid cell")}
"""How `citygrid stats` heads its columns, in the language in use (``--json`` keeps the field names)."""


@command(app)
def stats(registry: str = REGISTRY,
          by: str = option("category", "--by", help_text=N_(
              "Count by category, street, community, owner, maintainer, department, status or grid.")),
          as_json: bool = AS_JSON) -> None:
    """Count components.

    Example: citygrid stats -r pingshan.gpkg --by street
    """
    with guard():
        counts = open_registry(registry).stats(by)
    rows = counts.rename_axis(by).reset_index().to_dict("records")  # each column keeps its type
    if as_json:
        print_json(rows)
        return
    out = table(_("components by {by}").format(by=_(_HEADERS.get(by, by))),
                [(_(_HEADERS.get(c, c)), "right" if c in ("count", "share") else "left")
                 for c in (by, *counts.columns)])
    for record in rows:
        row(out, *[f"{v:.1%}" if c == "share" else f"{v:,}" if c == "count" else v for c, v in record.items()])
    console.print(out)


@command(app)
def owner(x: float = typer.Argument(..., help=h(N_("Longitude (or easting)."))),
          y: float = typer.Argument(..., help=h(N_("Latitude (or northing)."))),
          registry: str = REGISTRY,
          crs: str = option("EPSG:4326", "--crs", help_text=N_("CRS of x y; 'gcj02' for Amap coordinates.")),
          radius: float = option(10.0, "--radius", help_text=N_("Search radius in metres.")),
          as_json: bool = AS_JSON) -> None:
    """Whose is this? Components near a point with owner, maintainer and grid cell.

    Example: citygrid owner 114.3512 22.7013 -r pingshan.gpkg
    """
    with guard():
        found = open_registry(registry).owner_at(x, y, crs=crs, radius=radius)
    if as_json:
        from citygrid.lookup import owner_answer

        print_json(owner_answer(found))
        raise typer.Exit(0)
    say(_("grid cell at the point: {grid} ({street})").format(grid=found.attrs.get("grid"),
                                                               street=found.attrs.get("street")))
    if found.empty:
        say(_("no component within {radius:g} m").format(radius=radius))
    line = _("{distance:6.1f} m  {id} {kind}  owner {owner} · maintainer {maintainer} · department {department} · "
             "grid cell {grid}")
    for rec in found.itertuples():
        say(line.format(distance=rec.distance_m, id=rec.component_id, kind=rec.category_name, owner=rec.owner,
                        maintainer=rec.maintainer, department=rec.department, grid=rec.grid))
    raise typer.Exit(0)


@command(app)
def export(registry: list[str] = option(..., "--registry", "-r", help_text=N_(
               "The registry: a GeoPackage path or a postgresql:// URL (several with --partitioned).")),
           output: Path = option(..., "--output", "-o", help_text=N_(
               "The file to write: .gpkg .shp .geojson .csv .xlsx or .parquet.")),
           street: str = option(None, "--street", help_text=N_("Only this street (name or code).")),
           department: str = option(None, "--department", help_text=N_(
               "Only the components of this responsible department or owner (name or code).")),
           category: str = option(None, "--category", help_text=N_("Only this category (code or name).")),
           fields: str = option("citygrid", "--fields", help_text=N_("Field names: citygrid, cjt214 or gbt47678.")),
           partitioned: bool = flag("--partitioned", N_(
               "Write a folder of GeoParquet 1.1 partitioned by admin_code, street_code and category, for "
               "Sedona/Spark (-r may be given several times).")),
           as_json: bool = AS_JSON) -> None:
    """Write an extract for another system.

    Example: citygrid export -r pingshan.gpkg --street 马峦街道 -o m.shp
    """
    with guard():
        if partitioned:
            from citygrid.scale import export_dataset

            files = [export_dataset([open_registry(r) for r in registry], output)]
        else:
            if len(registry) > 1:
                from citygrid.errors import UsageError

                raise UsageError(_("one --registry for an extract; several only with --partitioned."))
            files = open_registry(registry[0]).export(output, street=street, department=department,
                                                      category=category, fields=fields)
    if as_json:
        print_json({"files": [str(p) for p in files]})
        return
    for path in files:
        say(_("written {path}").format(path=path))


@command(app)
def history(component_id: str = typer.Argument(..., help=h(N_("Identifier (old 16-digit ids are resolved)."))),
            registry: str = REGISTRY, as_json: bool = AS_JSON) -> None:
    """Every change of a component.

    Example: citygrid history 4403100101000001 -r pingshan.gpkg
    """
    from citygrid.errors import NotFound

    with guard():
        changes = open_registry(registry).history(component_id)
        if changes.empty:
            raise NotFound(_("no history for {id!r}: it is not in the registry.").format(id=component_id))
    if as_json:
        print_json(changes.to_dict("records"))
        return
    batch = _("{time} batch {batch} ({source}) {action}")
    actions = {"create": _("created"), "update": _("updated"), "retire": _("retired"), "migrate": _("migrated")}
    for rec in changes.itertuples():
        text = batch.format(time=rec.changed_at[:19], batch=rec.batch_id, source=rec.source,
                            action=actions.get(rec.action, rec.action))
        if not missing(rec.field):
            text += f" {rec.field}: {rec.old_value} → {rec.new_value}"
        if not missing(rec.moved_m):
            text += _(" (moved {metres:,.2f} m)").format(metres=rec.moved_m)
        say(text)


@command(app)
def allow(component_id: str = typer.Argument(..., help=h(N_("Identifier of the component."))),
          rule: str = typer.Argument(..., help=h(N_("Rule code, e.g. geom.moved_far."))),
          registry: str = REGISTRY,
          note: str = option("", "--note", help_text=N_("Why; kept with the entry."))) -> None:
    """Put a known exception on the allow-list: the rule is no longer reported for the component.

    Example: citygrid allow 4403100101000001 geom.moved_far -r pingshan.gpkg --note 道路改造迁移
    """
    with guard():
        open_registry(registry).allow(component_id, rule, note)
    say(_("allowed: {rule} for {id}").format(rule=rule, id=component_id))


@command(app)
def backup(registry: str = typer.Argument(..., help=h(N_("The registry: a GeoPackage path or a postgresql:// URL."))),
           dest: Path = typer.Argument(..., help=h(N_("The backup file to write (must not exist)."))),
           as_json: bool = AS_JSON) -> None:
    """Take a consistent copy of a registry while others read and write it.

    Example: citygrid backup pingshan.gpkg backups/pingshan-2026-12-01.gpkg
    """
    with guard():
        written = open_registry(registry).backup(dest)
    if as_json:
        print_json({"backup": str(written), "bytes": written.stat().st_size})
    else:
        say(_("backup written to {path}").format(path=written))


@command(app)
def upgrade(registry: str = typer.Argument(..., help=h(N_("The registry: a GeoPackage path or a postgresql:// URL.")))
            ) -> None:
    """Bring a registry made by an earlier citygrid to this one's schema (opening never does it).

    Example: citygrid upgrade pingshan.gpkg
    """
    from citygrid.backends import upgrade_store

    with guard():
        before, after = upgrade_store(registry)
    if before == after:
        say((_("ok"), "green"), _(": {registry} is at schema {version} already").format(registry=registry,
                                                                                       version=after))
    else:
        say((_("upgraded"), "green"), _(": {registry} from schema {before} to {after}").format(
            registry=registry, before=before, after=after))


@command(app)
def verify(registry: str = typer.Argument(..., help=h(N_("The registry: a GeoPackage path or a postgresql:// URL."))),
           as_json: bool = AS_JSON) -> None:
    """Check the stored registry itself (integrity, spatial indexes, triggers, history); exit 1 if wrong.

    Example: citygrid verify pingshan.gpkg
    """
    with guard():
        problems = open_registry(registry).verify()
    if as_json:
        print_json({"ok": not problems, "problems": problems})
    elif problems:
        for line in problems:
            say(("✗ ", "red"), line)
    else:
        say((_("ok"), "green"), _(": nothing wrong found"))
    raise typer.Exit(1 if problems else 0)


@command(app)
def serve(registry: str = typer.Argument(..., help=h(N_("The registry: a GeoPackage path or a postgresql:// URL."))),
          host: str = option("127.0.0.1", "--host", help_text=N_(
              "Address to listen on: 127.0.0.1 is this machine only; 0.0.0.0 every network it is on.")),
          port: int = option(5000, "--port", min=1, max=65535, help_text=N_("Port to listen on.")),
          url: str = option(None, "--url", help_text=N_(
              "The address clients reach the service at, for the links in its answers (default http://HOST:PORT).")),
          threads: int = option(8, "--threads", min=1, help_text=N_("Requests answered at once.")),
          max_items: int = option(10_000, "--max-items", min=1, help_text=N_(
              "Most features one request may ask for (limit); more is refused."))) -> None:
    """Serve the registry read-only as OGC API – Features (QGIS: Add Layer > Add WFS / OGC API - Features Layer).

    Collections components, streets, communities, grid, catalog; /owner?x=LON&y=LAT answers as citygrid owner.
    On PostGIS, connect as a role that may only read.

    Example: citygrid serve pingshan.gpkg --port 5000
    """
    from citygrid.errors import UsageError, require

    with guard():
        from citygrid.serve import make_app

        waitress = require("waitress", _("citygrid serve"), "serve")
        service = make_app(registry, host=host, port=port, url=url, max_items=max_items)
    address = url or f"http://{host}:{port}"
    say((_("serving"), "green"), _(": {registry} at {address} (Ctrl+C stops)").format(registry=registry,
                                                                                      address=address))
    try:
        waitress.serve(service, host=host, port=port, threads=threads, ident="citygrid", _quiet=True)
    except OSError as exc:
        fail(UsageError(_("--host {host} --port {port}: cannot listen there ({reason}); choose another --port.").format(
            host=host, port=port, reason=exc.strerror or exc)))
