"""The ``citygrid`` command.

Exit codes: 0 clean, 1 issues found or batch rejected, 2 cannot read input or usage error.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from citygrid import synth

app = typer.Typer(
    help="Keep a district's component registry: build, validate, ingest, map.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()


@app.callback()
def main() -> None:
    """citygrid: a city's component registry (城市部件)."""


@app.command()
def demo(
    out: Path = typer.Option(Path("citygrid-demo"), "--out", help="Folder for the results."),
    small: bool = typer.Option(False, "--small", help="20,000 components instead of 420,000."),
    seed: int = typer.Option(0, help="Seed of the synthetic district."),
) -> None:
    """Build the sample district (Pingshan outline, 420k components) and save it.

    Example: ``citygrid demo --small --out /tmp/demo``
    """
    n = 20_000 if small else 420_000
    steps: list[tuple[str, float]] = []
    start = time.perf_counter()
    with console.status(f"Generating a district with {n:,} components…"):
        district = synth.make_district(seed=seed, n_components=n)
    steps.append(("generate district", time.perf_counter() - start))
    path = out / "district.gpkg"
    start = time.perf_counter()
    with console.status(f"Writing {path}…"):
        layers = district.to_file(path)
    steps.append(("write GeoPackage", time.perf_counter() - start))

    table = Table(title=f"{district.name} ({district.code}) sample district")
    table.add_column("street")
    table.add_column("communities", justify="right")
    table.add_column("grid cells", justify="right")
    table.add_column("components", justify="right")
    per_street = district.components.groupby("street").size()
    cells = district.grid.groupby("street_code").size()
    comms = district.communities.groupby("street_code").size()
    for row in district.streets.itertuples():
        table.add_row(row.name, str(comms.get(row.code, 0)), f"{cells.get(row.code, 0):,}",
                      f"{per_street.get(row.name, 0):,}")
    console.print(table)
    console.print(f"{len(district.components):,} components in "
                  f"{district.components['category'].nunique()} categories; layers: "
                  + ", ".join(f"{k} {v:,}" for k, v in layers.items()))
    for label, seconds in steps:
        console.print(f"  {label}: {seconds:.1f} s")
    console.print(f"Saved to {path.resolve()}")
