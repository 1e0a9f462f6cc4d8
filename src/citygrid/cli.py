"""The ``citygrid`` command: the daily work of a data team.

Exit codes: 0 clean (or accepted), 1 issues found (errors) or batch rejected, 2 cannot read
input, bad usage, or the registry is busy. Errors are one line on stderr; ``--debug``
shows the traceback.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Keep a district's component registry (城市部件): build, validate, ingest, map, look up.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
map_app = typer.Typer(help="Write an HTML map (category, street or issues).", no_args_is_help=True)
app.add_typer(map_app, name="map")
console = Console()
errors = Console(stderr=True)
_state = {"debug": False}

REGISTRY = typer.Option(..., "--registry", "-r", help="The registry: a GeoPackage path or a postgresql:// URL.")


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks.")) -> None:
    """citygrid: a city's component registry (城市部件)."""
    _state["debug"] = debug


def _fail(exc: BaseException) -> None:
    if _state["debug"]:
        raise exc
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    errors.print(f"[bold red]error:[/] {text}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@contextmanager
def _guard():
    from citygrid.errors import CitygridError

    try:
        yield
    except CitygridError as exc:
        _fail(exc)


def _save(page, output: Path) -> None:
    """Save a map page, a failure to write it being one clear error."""
    from citygrid.errors import writing

    with writing(output):
        page.save(output)


def _open(path: str, timeout: float = 10.0):
    from citygrid.registry import open_registry

    return open_registry(path, timeout=timeout)


def _print_json(data) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=1, default=str) + "\n")


def _read_options(crs: str | None, encoding: str | None, gcj02: bool, layer: str | None) -> dict:
    return {k: v for k, v in {"crs": crs, "encoding": encoding, "gcj02": gcj02 or None, "layer": layer}.items()
            if v is not None}


def _report_table(report) -> None:
    summary = report.summary()
    if summary.empty:
        console.print(f"[green]clean[/]: {report.checked:,} features, no issue")
        return
    table = Table(title=f"{report.checked:,} features checked")
    table.add_column("rule")
    table.add_column("errors", justify="right")
    table.add_column("warnings", justify="right")
    for rule, row in summary.iterrows():
        table.add_row(str(rule), str(row["error"]), str(row["warning"]))
    console.print(table)
    for rec in report.issues.head(10).itertuples():
        where = f"row {rec.row}" if not _missing(rec.row) else (rec.component_id or "")
        console.print(f"  {rec.severity} {rec.rule} {where}: {rec.message}", highlight=False, markup=False)
    if len(report) > 10:
        console.print(f"  … and {len(report) - 10:,} more (write them all with --report FILE)")


def _missing(value) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


BATCH_CRS = typer.Option(None, "--crs", help="CRS of a batch without one (e.g. EPSG:4326).")
BATCH_ENCODING = typer.Option(None, "--encoding", help="Text encoding (default: .cpg or detected).")
BATCH_GCJ02 = typer.Option(False, "--gcj02", help="The coordinates are GCJ-02 (from Amap): shift them back.")
BATCH_LAYER = typer.Option(None, "--layer", help="Layer of a multi-layer file.")


@app.command()
def validate(
    batch: Path = typer.Argument(..., help="Survey batch: .shp .gpkg .geojson .csv .xlsx …"),
    registry: str = typer.Option(None, "--registry", "-r",
                                 help="Check against this registry too (path or postgresql:// URL)."),
    report: Path = typer.Option(None, "--report", help="Write every issue: .json .csv .gpkg or .html."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    crs: str = BATCH_CRS, encoding: str = BATCH_ENCODING, gcj02: bool = BATCH_GCJ02, layer: str = BATCH_LAYER,
) -> None:
    """Check a survey batch; exit 1 if it has errors.

    Example: ``citygrid validate batch.shp --registry pingshan.gpkg --report issues.html``
    """
    from citygrid.validation import validate as run_validation

    with _guard():
        reg = _open(registry) if registry else None
        with console.status(f"Validating {batch.name}…"):
            result = run_validation(batch, registry=reg, **_read_options(crs, encoding, gcj02, layer))
        if report:
            result.to_file(report)
        if as_json:
            _print_json(result.to_dict())
        else:
            _report_table(result)
            if report:
                console.print(f"report written to {report}")
    raise typer.Exit(0 if result.ok else 1)


@app.command()
def ingest(
    batch: Path = typer.Argument(..., help="Survey batch to merge."),
    registry: str = REGISTRY,
    source: str = typer.Option(None, "--source", help="Where the batch comes from (default: its file name)."),
    user: str = typer.Option(None, "--user", help="Who merges it."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and plan only."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
    wait: float = typer.Option(10.0, "--wait", help="Seconds to wait while another process writes."),
    crs: str = BATCH_CRS, encoding: str = BATCH_ENCODING, gcj02: bool = BATCH_GCJ02, layer: str = BATCH_LAYER,
) -> None:
    """Validate a batch and merge it, all or nothing; exit 1 if rejected.

    Example: ``citygrid ingest batch.gpkg --registry pingshan.gpkg --source "2026-W48 contractor A"``
    """
    with _guard():
        reg = _open(registry, timeout=wait)
        with console.status(f"Ingesting {batch.name}…"):
            result = reg.ingest(batch, source=source or batch.name, user=user, dry_run=dry_run,
                                **_read_options(crs, encoding, gcj02, layer))
    outcome = {"accepted": result.accepted, "batch_id": result.batch_id, "created": result.created,
               "updated": result.updated, "retired": result.retired, "unchanged": result.unchanged,
               "seconds": round(result.seconds, 2), "dry_run": dry_run}
    if as_json:
        _print_json({**outcome, "report": result.report.to_dict() if result.report is not None else None})
    elif result.accepted:
        verb = "would merge" if dry_run else f"merged as batch {result.batch_id}"
        console.print(f"[green]accepted[/], {verb}: {result.created:,} new, {result.updated:,} updated, "
                      f"{result.retired:,} retired, {result.unchanged:,} unchanged ({result.seconds:.1f} s)")
    else:
        console.print("[red]rejected[/]: nothing was written")
        _report_table(result.report)
    raise typer.Exit(0 if result.accepted else 1)


MAP_OUT = typer.Option(..., "--output", "-o", help="The HTML file to write.")
MAP_BASEMAP = typer.Option("osm", "--basemap", help="osm, tianditu-vec, tianditu-img, amap, none or a tile URL.")
MAP_ASSETS = typer.Option(None, "--assets", help="Folder or URL of leaflet.js/css (offline intranet).")
MAP_INLINE = typer.Option(False, "--inline", help="Embed Leaflet in the file (one self-contained HTML).")


def _map_options(basemap: str, assets: str | None, inline: bool) -> dict:
    return {"basemap": basemap, "assets": assets, "inline": inline}


@map_app.command("category")
def map_category(code: str = typer.Argument(..., help="Category code or Chinese name."), registry: str = REGISTRY,
                 output: Path = MAP_OUT, basemap: str = MAP_BASEMAP, assets: str = MAP_ASSETS,
                 inline: bool = MAP_INLINE) -> None:
    """Map one category.

    Example: ``citygrid map category 0101 -r pingshan.gpkg -o 0101.html``
    """
    from citygrid import maps

    with _guard():
        _save(maps.category_map(_open(registry), code, **_map_options(basemap, assets, inline)), output)
    console.print(f"map written to {output}")


@map_app.command("street")
def map_street(name: str = typer.Argument(..., help="Street name or code."), registry: str = REGISTRY,
               output: Path = MAP_OUT, basemap: str = MAP_BASEMAP, assets: str = MAP_ASSETS,
               inline: bool = MAP_INLINE) -> None:
    """Map one street.

    Example: ``citygrid map street 马峦街道 -r pingshan.gpkg -o maluan.html``
    """
    from citygrid import maps

    with _guard():
        _save(maps.street_map(_open(registry), name, **_map_options(basemap, assets, inline)), output)
    console.print(f"map written to {output}")


@map_app.command("issues")
def map_issues(batch: Path = typer.Argument(..., help="A survey batch, or a report written by --report (.gpkg)."),
               registry: str = REGISTRY, output: Path = MAP_OUT, basemap: str = MAP_BASEMAP,
               assets: str = MAP_ASSETS, inline: bool = MAP_INLINE) -> None:
    """Map the issues of a batch.

    Example: ``citygrid map issues batch.shp -r pingshan.gpkg -o issues.html``
    """
    from citygrid import maps
    from citygrid.validation import Report
    from citygrid.validation import validate as run_validation

    with _guard():
        reg = _open(registry)
        report = Report.read(batch) if batch.name.endswith(".issues.gpkg") else run_validation(batch, registry=reg)
        _save(maps.issues_map(report, outline=reg.district.boundary, **_map_options(basemap, assets, inline)), output)
    console.print(f"map of {len(report):,} issues written to {output}")


@app.command()
def stats(registry: str = REGISTRY,
          by: str = typer.Option("category", "--by", help="category, street, community, owner, maintainer, "
                                                          "department, status or grid"),
          as_json: bool = typer.Option(False, "--json")) -> None:
    """Count components.

    Example: ``citygrid stats -r pingshan.gpkg --by street``
    """
    with _guard():
        table = _open(registry).stats(by)
    rows = table.rename_axis(by).reset_index().to_dict("records")  # each column keeps its type
    if as_json:
        _print_json(rows)
        return
    out = Table(title=f"components by {by}")
    for column in (by, *table.columns):
        out.add_column(column, justify="right" if column in ("count", "share") else "left")
    for row in rows:
        out.add_row(*[f"{v:.1%}" if c == "share" else f"{v:,}" if c == "count" else str(v) for c, v in row.items()])
    console.print(out)


@app.command()
def owner(x: float = typer.Argument(..., help="Longitude (or easting)."),
          y: float = typer.Argument(..., help="Latitude (or northing)."),
          registry: str = REGISTRY,
          crs: str = typer.Option("EPSG:4326", "--crs", help="CRS of x y; 'gcj02' for Amap coordinates."),
          radius: float = typer.Option(10.0, "--radius", help="Search radius in metres."),
          as_json: bool = typer.Option(False, "--json")) -> None:
    """Whose is this? Components near a point with owner, maintainer and grid cell.

    Example: ``citygrid owner 114.3512 22.7013 -r pingshan.gpkg``
    """
    with _guard():
        found = _open(registry).owner_at(x, y, crs=crs, radius=radius)
    if as_json:
        _print_json({"grid": found.attrs.get("grid"), "street": found.attrs.get("street"),
                     "components": found.to_dict("records")})
    else:
        console.print(f"grid cell at the point: {found.attrs.get('grid')} ({found.attrs.get('street')})")
        if found.empty:
            console.print(f"no component within {radius:g} m")
        for rec in found.itertuples():
            console.print(f"{rec.distance_m:6.1f} m  {rec.component_id} {rec.category_name}  权属 {rec.owner} · "
                          f"养护 {rec.maintainer} · 主管 {rec.department} · 网格 {rec.grid}", highlight=False)
    raise typer.Exit(0)


@app.command()
def export(registry: str = REGISTRY,
           output: Path = typer.Option(..., "--output", "-o", help=".gpkg .shp .geojson .csv or .parquet"),
           street: str = typer.Option(None, "--street"), department: str = typer.Option(None, "--department"),
           category: str = typer.Option(None, "--category"),
           fields: str = typer.Option("citygrid", "--fields", help="citygrid, cjt214 or gbt47678 field names")) -> None:
    """Write an extract for another system.

    Example: ``citygrid export -r pingshan.gpkg --street 马峦街道 -o m.shp``
    """
    with _guard():
        files = _open(registry).export(output, street=street, department=department, category=category,
                                       fields=fields)
    for path in files:
        console.print(f"written {path}")


@app.command()
def history(component_id: str = typer.Argument(..., help="Identifier (old 16-digit ids are resolved)."),
            registry: str = REGISTRY, as_json: bool = typer.Option(False, "--json")) -> None:
    """Every change of a component.

    Example: ``citygrid history 4403100101000001 -r pingshan.gpkg``
    """
    from citygrid.errors import NotFound

    with _guard():
        table = _open(registry).history(component_id)
        if table.empty:
            raise NotFound(f"no history for {component_id!r}: it is not in the registry.")
    if as_json:
        _print_json(table.to_dict("records"))
        return
    for rec in table.itertuples():
        change = "" if _missing(rec.field) else f" {rec.field}: {rec.old_value} → {rec.new_value}"
        console.print(f"{rec.changed_at[:19]} batch {rec.batch_id} ({rec.source}) {rec.action}{change}",
                      highlight=False, markup=False)


@app.command()
def allow(component_id: str = typer.Argument(..., help="Identifier of the component."),
          rule: str = typer.Argument(..., help="Rule code, e.g. geom.moved_far."),
          registry: str = REGISTRY, note: str = typer.Option("", "--note", help="Why; kept with the entry.")) -> None:
    """Put a known exception on the allow-list: the rule is no longer reported for the component.

    Example: ``citygrid allow 4403100101000001 geom.moved_far -r pingshan.gpkg --note 道路改造迁移``
    """
    with _guard():
        _open(registry).allow(component_id, rule, note)
    console.print(f"allowed: {rule} for {component_id}", highlight=False, markup=False)


@app.command()
def demo(
    out: Path = typer.Option(Path("citygrid-demo"), "--out", help="Folder for the results."),
    small: bool = typer.Option(False, "--small", help="20,000 components instead of 420,000."),
    seed: int = typer.Option(0, help="Seed of the synthetic district."),
) -> None:
    """Build the sample district registry, validate it and write every map.

    Example: ``citygrid demo --small --out /tmp/demo``
    """
    from citygrid import maps, synth
    from citygrid.errors import MissingFile
    from citygrid.registry import Registry

    n = 20_000 if small else 420_000
    steps: list[tuple[str, float]] = []

    def step(label: str):
        @contextmanager
        def timed():
            start = time.perf_counter()
            with console.status(f"{label}…"):
                yield
            steps.append((label, time.perf_counter() - start))
            console.print(f"  {label}: {steps[-1][1]:.1f} s")
        return timed()

    with _guard():
        out.mkdir(parents=True, exist_ok=True)
        with step(f"generate a district with {n:,} components"):
            district = synth.sample_district() if small and seed == synth.SAMPLE_SEED else \
                synth.make_district(seed=seed, n_components=n)
        path = out / "registry.gpkg"
        with step(f"create the registry {path}"):
            reg = Registry.create(path, district=district, overwrite=True)
        with step("validate the whole registry and its grid"):
            report = reg.validate()
            report.to_file(out / "validation.html")
        with step("write every category and street map"):
            try:
                assets = {"assets": str(maps.find_leaflet())}
            except MissingFile:
                assets = {}
            index = maps.write_all(reg, out / "maps", **assets)
    table = Table(title=f"{district.name} ({district.code}) sample registry")
    for column in ("street", "communities", "grid cells", "components"):
        table.add_column(column, justify="left" if column == "street" else "right")
    per_street = reg.components.groupby("street").size()
    cells = district.grid.groupby("street_code").size()
    comms = district.communities.groupby("street_code").size()
    for row in district.streets.itertuples():
        table.add_row(row.name, str(comms.get(row.code, 0)), f"{cells.get(row.code, 0):,}",
                      f"{per_street.get(row.name, 0):,}")
    console.print(table)
    console.print(f"{len(reg.components):,} components in {reg.components['category'].nunique()} categories; "
                  f"validation: {len(report)} issue(s)")
    console.print(f"registry: {path.resolve()}")
    console.print(f"report:   {(out / 'validation.html').resolve()}")
    console.print(f"maps:     {index.resolve()}")
    console.print(f"total {sum(s for _, s in steps):.1f} s")


if __name__ == "__main__":
    app()
