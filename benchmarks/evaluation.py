"""The evaluation: RESULTS.md from the rows of a run, each case beside its target (met or not)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from cases import FAULTS_PER_SHAPE
from harness import machine

# --- targets (the guide's section 6) -------------------------------------------------------

def _median(rows: dict[str, dict], name: str) -> float | None:
    row = rows.get(name)
    return None if row is None or row["median"] != row["median"] else row["median"]


def _at_most(name: str, limit: float, text: str) -> Callable[[dict[str, dict]], tuple[str, bool | None]]:
    return lambda rows: (text, None if _median(rows, name) is None else _median(rows, name) < limit)


def _ratio(name: str, other: str, limit: float, text: str) -> Callable[[dict[str, dict]], tuple[str, bool | None]]:
    def check(rows: dict[str, dict]) -> tuple[str, bool | None]:
        ours, theirs = _median(rows, name), _median(rows, other)
        return text, None if ours is None or not theirs else ours <= limit * theirs
    return check


def _fact(name: str, key: str, limit: float, text: str) -> Callable[[dict[str, dict]], tuple[str, bool | None]]:
    def check(rows: dict[str, dict]) -> tuple[str, bool | None]:
        value = rows.get(name, {}).get("extra", {}).get(key)
        return text, None if not isinstance(value, (int, float)) else value < limit
    return check


def _both(*checks: Callable) -> Callable[[dict[str, dict]], tuple[str, bool | None]]:
    def check(rows: dict[str, dict]) -> tuple[str, bool | None]:
        said = [c(rows) for c in checks]
        verdicts = [v for _, v in said]
        return "; ".join(t for t, _ in said), None if None in verdicts else all(verdicts)
    return check


def _same_findings(rows: dict[str, dict]) -> tuple[str, bool | None]:
    local, sedona = (rows.get(n, {}).get("extra", {}).get("issue set sha256")
                     for n in ("check_city_local", "check_city_sedona"))
    return "the same issues as in memory", None if not (local and sedona) else local == sedona


TARGETS: dict[str, Callable[[dict[str, dict]], tuple[str, bool | None]]] = {
    "open_registry_cold": _ratio("open_registry_cold", "open_plain_arrow", 1.0, "≤ 1.0× the plain Arrow read"),
    "open_registry": _ratio("open_registry", "open_plain_arrow", 0.5, "≤ 0.5× the plain Arrow read"),
    "validate_registry": _at_most("validate_registry", 10, "< 10 s"),
    "ingest_10k": _at_most("ingest_10k", 3, "< 3 s"),
    "owner_at": _fact("owner_at", "p95 ms", 5, "p95 < 5 ms"),
    "category_map": _both(_at_most("category_map", 1.5, "build < 1.5 s"), _fact("category_map", "MB", 6, "< 6 MB"),
                          _fact("category_map", "render s", 3, "renders < 3 s")),
    "write_all_maps": _at_most("write_all_maps", 90, "< 90 s"),
    "district_map": _fact("district_map", "render s", 5, "drawn < 5 s"),
    "cli_help": _at_most("cli_help", 1, "< 1 s"),
    "cli_validate_1m": _both(_at_most("cli_validate_1m", 40, "< 40 s"),
                             lambda rows: ("peak < 1.5 GiB", None if "cli_validate_1m" not in rows
                                           else rows["cli_validate_1m"]["peak_mb"] < 1536)),
    "cli_validate_5m": lambda rows: ("completes, every row checked", None if "cli_validate_5m" not in rows
                                     else rows["cli_validate_5m"]["extra"].get("rows") == 5_000_000),
    "pg_open": _ratio("pg_open", "open_registry", 1.5, "≤ 1.5× the GeoPackage"),
    "pg_open_cold": _ratio("pg_open_cold", "open_registry_cold", 1.5, "≤ 1.5× the GeoPackage"),
    "pg_ingest_10k": _ratio("pg_ingest_10k", "ingest_10k", 1.5, "≤ 1.5× the GeoPackage"),
    "pg_cli_ingest_10k": _ratio("pg_cli_ingest_10k", "cli_ingest_10k", 1.5, "≤ 1.5× the GeoPackage"),
    "pg_owner_at": _fact("pg_owner_at", "p95 ms", 5, "p95 < 5 ms"),
    "check_city_sedona": _same_findings,
    "serve_load": _both(_fact("serve_load", "errors", 1, "no errors"),
                        _fact("serve_load", "memory growth after 10 s %", 10, "memory flat (< 10 % growth after 10 s)"),
                        lambda rows: ("state unchanged", rows.get("serve_load", {}).get("extra", {}).get(
                            "state unchanged"))),
}
"""What each case is held to; a case without one is measured beside the plain way only."""


def target(name: str, rows: dict[str, dict]) -> str:
    """The target of case `name` and whether this run met it, as a table cell."""
    if name not in TARGETS:
        return ""
    text, verdict = TARGETS[name](rows)
    return f"{text}: " + {True: "**met**", False: "**not met**", None: "not measured"}[verdict]


def write_results(rows: list[dict], n: int, path: Path) -> None:
    ours: dict[str, float] = {}
    for r in rows:  # the first citygrid row of a group is what the others compare with
        if r["way"].startswith("citygrid"):
            ours.setdefault(r["group"], r["median"])
    lines = [
        "# Benchmark results",
        "",
        f"Written by `python benchmarks/run.py --n {n}` on {dt.date.today().isoformat()}.",
        "",
        f"Machine: {machine()}.",
        "",
        "Each row ran in a fresh process; *ratio* = this row's median / citygrid's median in the "
        "same group (above 1: citygrid is faster).",
        "",
        "| work | way | runs | min s | median s | peak MB | ratio | target | facts |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    by_name = {r["name"]: r for r in rows}
    for r in rows:
        r["table"] = r["extra"].pop("_table", [])
        r["told"] = r["extra"].pop("_told", [])
        ratio = "" if r["group"] not in ours or r["median"] == ours[r["group"]] else \
            f"{r['median'] / ours[r['group']]:.2f}"
        facts = ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in r["extra"].items())
        lines.append(f"| {r['group']} | {r['way']} | {r['repeat']} | {r['min']:.2f} | {r['median']:.2f} | "
                     f"{r['peak_mb']:.0f} | {ratio} | {target(r['name'], by_name)} | {facts} |")
    scores = [row for r in rows for row in r["table"]]
    if scores:
        lines += [
            "",
            "## Validation on faults citygrid did not make",
            "",
            f"`tests/faults.py` perturbed real rows of this registry, {FAULTS_PER_SHAPE} times per shape "
            "(see its docstring), and decided from the district's polygons what each fault must raise. "
            "*found*: faults the rule reported; *false*: findings on rows that should not raise that rule. "
            "A fault may raise several rules (a point moved 2 km: `geom.moved_far` and "
            "`topology.grid_mismatch`).",
            "",
            "| rule | scenario | faults | found | findings | false | recall | precision |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for s in sorted(scores, key=lambda s: (s["rule"], s["scenario"])):
            lines.append(f"| `{s['rule']}` | {s['scenario']} | {s['faults']} | {s['found']} | {s['findings']} | "
                         f"{s['false']} | {_share(s['recall'])} | {_share(s['precision'])} |")
    for r in rows:
        if r["told"]:
            lines += [
                "",
                f"## What an event tells: {r['group']}",
                "",
                "Among the events that give a place (the apps'; repeats left out): dispatch's own figures "
                "(the component first, and among its up to three candidates), then what any matching by place "
                "can reach at best with what each event tells (its place and the categories of its sub type), "
                "computed from the truth and the geometry alone: *right component*, the share of component "
                "events whose component is the nearest of those categories within the radius; *right "
                "maintainer*, the share whose nearest one is maintained (else owned) by the component's unit; "
                "*unregistered flagged*, the share of unregistered events with no registered one of those "
                "categories within it.",
                "",
                "| radius m | right component | right maintainer | unregistered flagged |",
                "|---|---|---|---|",
                *(f"| {t['radius_m']} | {t['right component']} | {t['right maintainer']} | "
                  f"{t['unregistered flagged']} |" for t in r["told"]),
            ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _share(value: float) -> str:
    return "–" if value != value else f"{value:.3f}"


