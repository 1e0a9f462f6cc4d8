"""Commands that check and merge batches: ``validate``, ``ingest``, ``check`` and ``init``."""

from __future__ import annotations

from pathlib import Path

import typer

from citygrid._i18n import N_, _
from citygrid.cli._app import (
    AS_JSON,
    BATCH_COLUMNS,
    BATCH_CRS,
    BATCH_ENCODING,
    BATCH_GCJ02,
    BATCH_LAYER,
    MAX_ISSUES,
    MAX_ROWS,
    REGISTRY,
    REPORT,
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
    report_table,
    row,
    say,
    show,
    table,
)


@command(app)
def validate(
    batch: Path = typer.Argument(..., help=h(N_("Survey batch: .shp .gpkg .geojson .csv .xlsx …"))),
    registry: str = option(None, "--registry", "-r", help_text=N_(
        "Check against this registry too (path or postgresql:// URL).")),
    report: Path = REPORT, as_json: bool = AS_JSON, max_issues: int = MAX_ISSUES,
    crs: str = BATCH_CRS, encoding: str = BATCH_ENCODING, gcj02: bool = BATCH_GCJ02, layer: str = BATCH_LAYER,
    max_rows: int = MAX_ROWS, columns: list[str] = BATCH_COLUMNS,
) -> None:
    """Check a survey batch; exit 1 if it has errors.

    Example: citygrid validate batch.shp --registry pingshan.gpkg --report issues.html
    """
    from citygrid.validation import validate as run_validation

    with guard():
        reg = open_registry(registry) if registry else None
        with console.status(_("Validating {name}…").format(name=batch.name)):
            result = run_validation(batch, registry=reg,
                                    **read_options(crs, encoding, gcj02, layer, max_rows, columns))
        show(result, report, as_json=as_json, max_issues=max_issues)
    raise typer.Exit(0 if result.ok else 1)


@command(app)
def ingest(
    batch: Path = typer.Argument(..., help=h(N_("Survey batch to merge."))),
    registry: str = REGISTRY,
    source: str = option(None, "--source", help_text=N_("Where the batch comes from (default: its file name).")),
    user: str = option(None, "--user", help_text=N_("Who merges it.")),
    dry_run: bool = flag("--dry-run", N_("Validate and plan only.")),
    as_json: bool = AS_JSON, max_issues: int = MAX_ISSUES,
    wait: float = option(10.0, "--wait", help_text=N_("Seconds to wait while another process writes.")),
    crs: str = BATCH_CRS, encoding: str = BATCH_ENCODING, gcj02: bool = BATCH_GCJ02, layer: str = BATCH_LAYER,
    max_rows: int = MAX_ROWS, columns: list[str] = BATCH_COLUMNS,
) -> None:
    """Validate a batch and merge it, all or nothing; exit 1 if rejected.

    Example: citygrid ingest batch.gpkg --registry pingshan.gpkg --source "2026-W48 contractor A"
    """
    with guard():
        reg = open_registry(registry, timeout=wait)
        with console.status(_("Ingesting {name}…").format(name=batch.name)):
            result = reg.ingest(batch, source=source or batch.name, user=user, dry_run=dry_run,
                                **read_options(crs, encoding, gcj02, layer, max_rows, columns))
    outcome = {"accepted": result.accepted, "batch_id": result.batch_id, "created": result.created,
               "updated": result.updated, "retired": result.retired, "unchanged": result.unchanged,
               "seconds": round(result.seconds, 2), "dry_run": dry_run}
    if as_json:
        print_json({**outcome, "report": result.report.to_dict(limit=max_issues or None)
                                  if result.report is not None else None})
    elif result.accepted:
        verb = _("would merge") if dry_run else _("merged as batch {n}").format(n=result.batch_id)
        say((_("accepted"), "green"), _(", {verb}: {created:,} new, {updated:,} updated, {retired:,} retired, "
                                        "{unchanged:,} unchanged ({seconds:.1f} s)").format(
            verb=verb, created=result.created, updated=result.updated, retired=result.retired,
            unchanged=result.unchanged, seconds=result.seconds))
        if result.report is not None and len(result.report):
            report_table(result.report, option="--json --max-issues 0")
    else:
        say((_("rejected"), "red"), _(": nothing was written"))
        report_table(result.report, option="--json --max-issues 0")
    raise typer.Exit(0 if result.accepted else 1)


@command(app)
def check(target: str = typer.Argument(..., help=h(N_(
              "A registry (.gpkg or postgresql:// URL) or a dataset folder."))),
          engine: str = option("local", "--engine", help_text=N_(
              "local (this machine, every rule) or sedona (Spark, the rules that join, any number of districts).")),
          master: str = option(None, "--master", help_text=N_(
              "Spark master URL for --engine sedona (default local).")),
          report: Path = REPORT, as_json: bool = AS_JSON, max_issues: int = MAX_ISSUES) -> None:
    """Validate a whole registry or dataset; exit 1 if it has errors.

    Example: citygrid check shenzhen-dataset/ --engine sedona --json
    """
    from citygrid.scale import check as run_check

    with guard():
        result = run_check(target, engine=engine, master=master)
        show(result, report, as_json=as_json, max_issues=max_issues)
    raise typer.Exit(0 if result.ok else 1)


def _layer(name: str, help_text: str, required: bool = False):
    return option(... if required else None, name, help_text=help_text)


@command(app)
def init(
    registry: Path = typer.Argument(..., help=h(N_("The registry to create (.gpkg; must not exist)."))),
    streets: str = _layer("--streets", N_("Street polygons: FILE or FILE#LAYER (.shp .gpkg .gdb .geojson)."), True),
    communities: str = _layer("--communities", N_("Community polygons (a street code column, or found by place)."),
                              True),
    grid: str = _layer("--grid", N_("Unit grid cells (a community code column, or found by place)."), True),
    units: str = _layer("--units", N_("Unit list CSV: code, name_zh, level, kind, maintainer."), True),
    boundary: str = _layer("--boundary", N_("District outline (default: the union of the streets).")),
    roads: str = _layer("--roads", N_("Road centre lines, drawn on maps.")),
    components: str = _layer("--components", N_("Components to load, in any batch format (validated).")),
    code: str = _layer("--code", N_("District division code (default: from the boundary or street codes).")),
    name: str = _layer("--name", N_("District name.")),
    crs: str = _layer("--crs", N_("CRS of layers without one (no .prj), e.g. EPSG:4490.")),
    columns: list[str] = option(None, "--columns", help_text=N_(
        "A header to use, as KIND.FIELD=HEADER (e.g. street.code=JDDM); repeat it.")),
    as_json: bool = AS_JSON,
) -> None:
    """Build a registry from a district's own files: boundary, streets, communities, grid, units, components.

    Example: citygrid init pingshan.gpkg --streets streets.shp --communities communities.geojson --grid grid.gdb
    --units units.csv --components components.shp
    """
    from citygrid.district_files import init_registry
    from citygrid.errors import BatchRejected, UsageError

    with guard():
        mapping = {}
        for item in columns or []:
            key, sep, header = item.partition("=")
            if not sep:
                raise UsageError(_("--columns {item!r}: write KIND.FIELD=HEADER, e.g. street.code=JDDM.").format(
                    item=item))
            mapping[key.strip()] = header.strip()
        try:
            reg, warnings = init_registry(registry, components=components, streets=streets, communities=communities,
                                          grid=grid, units=units, boundary=boundary, roads=roads, code=code,
                                          name=name, crs=crs, columns=mapping)
        except BatchRejected as exc:
            say((_("rejected"), "red"), _(": the components have errors, so no registry was made"))
            report_table(exc.report, option=None)
            raise typer.Exit(1) from None
    district = reg.district
    facts = {"registry": str(registry), "district": f"{district.code} {district.name}",
             "streets": len(district.streets), "communities": len(district.communities),
             "grid_cells": len(district.grid), "components": len(reg.components), "warnings": warnings}
    if as_json:
        print_json(facts)
        return
    for line in warnings:
        say((line, "yellow"))
    say(_("registry {path} made: {district}, {streets} streets, {communities} communities, {cells:,} grid cells, "
          "{components:,} components").format(path=registry, district=facts["district"], streets=facts["streets"],
                                              communities=facts["communities"], cells=facts["grid_cells"],
                                              components=facts["components"]))


@command(app)
def headers(as_json: bool = AS_JSON, markdown: bool = flag(
        "--markdown", N_("Print a Markdown table (the page docs/reference/headers.md is)."))) -> None:
    """List the column headers a batch may use, by the field each is read as.

    Headers are matched without regard to case, full-width letters or surrounding spaces; map any other
    with --columns FIELD=HEADER. Example: citygrid headers
    """
    from citygrid.io import understood_headers
    from citygrid.schema import FIELDS

    found = understood_headers()
    if as_json:
        print_json(found)
        return
    labels = {f.name: f.label_zh for f in FIELDS} | {
        "action": "操作", "longitude": "经度", "latitude": "纬度", "wkt": "WKT"}
    if markdown:
        lines = [f"| {_('field')} | {_('label')} | {_('headers')} |", "|---|---|---|"]
        lines += [f"| `{field}` | {labels[field]} | {', '.join(names)} |" for field, names in found.items()]
        say("\n".join(lines))
        return
    out = table(_("Headers a batch may use"), [(_("field"), "left"), (_("label"), "left"), (_("headers"), "left")])
    for field, names in found.items():
        row(out, field, labels[field], ", ".join(names))
    console.print(out)
