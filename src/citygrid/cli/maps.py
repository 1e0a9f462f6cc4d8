"""``citygrid map …``: HTML maps of a category, a street, the district, the grid or a batch's issues."""

from __future__ import annotations

from pathlib import Path

import typer

from citygrid._i18n import N_, _
from citygrid.cli._app import (
    AS_JSON,
    REGISTRY,
    command,
    flag,
    guard,
    h,
    map_app,
    open_registry,
    option,
    print_json,
    say,
)

OUTPUT = option(..., "--output", "-o", help_text=N_("The HTML file to write."))
BASEMAP = option(None, "--basemap", help_text=N_(
    "Background tiles: none (default, works offline; CITYGRID_BASEMAP changes it), osm, tianditu-vec, tianditu-img, "
    "amap or an intranet tile URL with {z}/{x}/{y}."))
ASSETS = option(None, "--assets", help_text=N_(
    "Link Leaflet from this folder or URL (relative to the map, or 'cdn') instead of embedding it in the file."))
INLINE = flag("--inline", N_("With --assets: embed that Leaflet in the file."))
COLUMN = option(None, "--column", help_text=N_(
    "Colour by status, category, owner, department, maintainer, street or community."))
KEY = option(None, "--tianditu-key", envvar="CITYGRID_TIANDITU_KEY", help_text=N_(
    "Tianditu user key, for --basemap tianditu-vec or tianditu-img."))


def _save(page, output: Path) -> None:
    """Save a map page, a failure to write it being one clear error."""
    from citygrid.errors import writing

    with writing(output):
        page.save(output)


def _written(output: Path, as_json: bool, **facts) -> None:
    """Say where a map went (as JSON with --json)."""
    if as_json:
        print_json({"map": str(output), "bytes": output.stat().st_size, **facts})
    elif "issues" in facts:
        say(_("map of {n:,} issues written to {path}").format(n=facts["issues"], path=output))
    else:
        say(_("map written to {path}").format(path=output))


def _options(basemap: str | None, assets: str | None, inline: bool, key: str | None, column: str | None = None) -> dict:
    chosen = {"basemap": basemap, "assets": assets, "inline": inline, "tianditu_key": key, "column": column}
    return {k: v for k, v in chosen.items() if v is not None}


@command(map_app, "category")
def map_category(code: str = typer.Argument(..., help=h(N_("Category code or Chinese name."))),
                 registry: str = REGISTRY, output: Path = OUTPUT, column: str = COLUMN, basemap: str = BASEMAP,
                 assets: str = ASSETS, inline: bool = INLINE, tianditu_key: str = KEY,
                 as_json: bool = AS_JSON) -> None:
    """Map one category, coloured by status.

    Example: citygrid map category 0101 -r pingshan.gpkg -o 0101.html
    """
    from citygrid import maps

    with guard():
        _save(maps.category_map(open_registry(registry), code,
                                **_options(basemap, assets, inline, tianditu_key, column)), output)
    _written(output, as_json)


@command(map_app, "street")
def map_street(name: str = typer.Argument(..., help=h(N_("Street name or code."))),
               registry: str = REGISTRY, output: Path = OUTPUT, column: str = COLUMN, basemap: str = BASEMAP,
               assets: str = ASSETS, inline: bool = INLINE, tianditu_key: str = KEY,
               as_json: bool = AS_JSON) -> None:
    """Map one street, a layer per category.

    Example: citygrid map street 马峦街道 -r pingshan.gpkg -o maluan.html
    """
    from citygrid import maps

    with guard():
        _save(maps.street_map(open_registry(registry), name,
                              **_options(basemap, assets, inline, tianditu_key, column)), output)
    _written(output, as_json)


@command(map_app, "district")
def map_district(registry: str = REGISTRY, output: Path = OUTPUT, column: str = COLUMN, basemap: str = BASEMAP,
                 assets: str = ASSETS, inline: bool = INLINE, tianditu_key: str = KEY,
                 as_json: bool = AS_JSON) -> None:
    """Map every current component of the district in one page.

    Example: citygrid map district -r pingshan.gpkg -o pingshan.html
    """
    from citygrid import maps

    with guard():
        _save(maps.district_map(open_registry(registry),
                                **_options(basemap, assets, inline, tianditu_key, column)), output)
    _written(output, as_json)


@command(map_app, "grid")
def map_grid(street: str = typer.Argument(None, help=h(N_("Street name or code (default: the whole district)."))),
             registry: str = REGISTRY, output: Path = OUTPUT, basemap: str = BASEMAP, assets: str = ASSETS,
             inline: bool = INLINE, tianditu_key: str = KEY, as_json: bool = AS_JSON) -> None:
    """Map the unit grid cells, a layer per community; the search box finds a cell by code.

    Example: citygrid map grid 马峦街道 -r pingshan.gpkg -o grid.html
    """
    from citygrid import maps

    with guard():
        _save(maps.grid_map(open_registry(registry), street, **_options(basemap, assets, inline, tianditu_key)),
              output)
    _written(output, as_json)


@command(map_app, "issues")
def map_issues(batch: Path = typer.Argument(..., help=h(N_(
                   "A survey batch, or a report written by --report (.gpkg)."))),
               registry: str = REGISTRY, output: Path = OUTPUT, basemap: str = BASEMAP, assets: str = ASSETS,
               inline: bool = INLINE, tianditu_key: str = KEY, as_json: bool = AS_JSON) -> None:
    """Map the issues of a batch.

    Example: citygrid map issues batch.shp -r pingshan.gpkg -o issues.html
    """
    from citygrid import maps
    from citygrid.validation import Report
    from citygrid.validation import validate as run_validation

    with guard():
        reg = open_registry(registry)
        report = Report.read(batch) if batch.name.endswith(".issues.gpkg") else run_validation(batch, registry=reg)
        _save(maps.issues_map(report, district=reg.district, **_options(basemap, assets, inline, tianditu_key)),
              output)
    _written(output, as_json, issues=len(report))
