"""``citygrid demo``: the sample district's registry, its validation report and every map."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from citygrid._i18n import N_, _
from citygrid.cli._app import AS_JSON, app, command, console, errors, flag, guard, option, print_json, row, say, table


@command(app)
def demo(
    out: Path = option(Path("citygrid-demo"), "--out", help_text=N_("Folder for the results.")),
    small: bool = flag("--small", N_("20,000 components instead of 420,000.")),
    seed: int = option(0, "--seed", help_text=N_("Seed of the synthetic district.")),
    as_json: bool = AS_JSON,
) -> None:
    """Build the sample district registry, validate it and write every map.

    Example: citygrid demo --small --out /tmp/demo
    """
    from rich.progress import Progress

    from citygrid import maps, synth
    from citygrid.registry import Registry

    n = 20_000 if small else 420_000
    steps: dict[str, float] = {}

    @contextmanager
    def step(key: str, label: str) -> Iterator[None]:
        start = time.perf_counter()
        say(f"  {label}…", err=as_json)  # with --json, stdout holds the JSON alone
        yield
        steps[key] = time.perf_counter() - start
        say(_("  {step}: {seconds:.1f} s").format(step=label, seconds=steps[key]), err=as_json)

    with guard():
        out.mkdir(parents=True, exist_ok=True)
        with step("generate", _("generate a district with {n:,} components").format(n=n)):
            district = synth.sample_district() if small and seed == synth.SAMPLE_SEED else \
                synth.make_district(seed=seed, n_components=n)
        path = out / "registry.gpkg"
        with step("create", _("create the registry {path}").format(path=path)):
            reg = Registry.create(path, district=district, overwrite=True)
        with step("validate", _("validate the whole registry and its grid")):
            report = reg.validate()
            report.to_file(out / "validation.html")
        with step("maps", _("write every category and street map")), \
                Progress(console=errors if as_json else console, transient=True) as bar:
            task = bar.add_task(_("maps"), total=None)
            index = maps.write_all(reg, out / "maps", progress=lambda done, total, name: bar.update(
                task, completed=done, total=total, description=f"{_('maps')} {name}"))
    if as_json:
        print_json({"registry": str(path.resolve()), "report": str((out / "validation.html").resolve()),
                    "maps": str(index.resolve()), "components": len(reg.components),
                    "categories": int(reg.components["category"].nunique()), "issues": len(report),
                    "steps": {key: round(seconds, 2) for key, seconds in steps.items()}})
        return
    out_table = table(_("{district} ({code}) sample registry").format(district=district.name, code=district.code),
                      [(_("street"), "left"), (_("communities"), "right"), (_("grid cells"), "right"),
                       (_("components"), "right")])
    per_street = reg.components.groupby("street").size()
    cells = district.grid.groupby("street_code").size()
    comms = district.communities.groupby("street_code").size()
    for street in district.streets.itertuples():
        row(out_table, street.name, comms.get(street.code, 0), f"{cells.get(street.code, 0):,}",
            f"{per_street.get(street.name, 0):,}")
    console.print(out_table)
    say(_("{n:,} components in {categories} categories; validation: {issues} issue(s)").format(
        n=len(reg.components), categories=reg.components["category"].nunique(), issues=len(report)))
    say(_("registry: {path}").format(path=path.resolve()))
    say(_("report:   {path}").format(path=(out / "validation.html").resolve()))
    say(_("maps:     {path}").format(path=index.resolve()))
    say(_("total {seconds:.1f} s").format(seconds=sum(steps.values())))
