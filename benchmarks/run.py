"""Benchmarks of citygrid beside the plain geopandas way, on the synthetic district.

Usage::

    python benchmarks/run.py [--n 420000] [--only NAME ...] [--repeat 3] [--districts 10] [--city-n 525000]
                             [--out FILE]

Each case (``cases.py``) runs in a fresh Python process (``harness.py``), so its peak memory
is its own, several times; ``evaluation.py`` rewrites ``benchmarks/RESULTS.md`` whole with
min/median seconds, peak resident memory, for plain-way rows the ratio plain / citygrid, and
each case's target from the guide, met or not.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # cases, harness, evaluation beside this script

from cases import (
    CASES,
    CITY_DISTRICTS,
    CITY_N,
    HERE,
    ONCE,
    _city,
    _prepare,
    _prepare_faults,
    _prepare_pg,
)
from evaluation import write_results
from harness import child, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=420_000, help="components in the district")
    parser.add_argument("--only", nargs="*", choices=sorted(CASES), help="run only these cases")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--districts", type=int, default=CITY_DISTRICTS, help="districts of the synthetic city")
    parser.add_argument("--city-n", type=int, default=CITY_N, help="components generated per district of the city")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if (args.districts, args.city_n) != (CITY_DISTRICTS, CITY_N):  # the cases run in child processes: from there
        os.environ["CITYGRID_BENCH_DISTRICTS"], os.environ["CITYGRID_BENCH_CITY_N"] = map(str, (args.districts,
                                                                                             args.city_n))
        os.execv(sys.executable, [sys.executable, *sys.argv])
    if args.case:
        child(args.case, args.n)
        return
    names = args.only or list(CASES)
    if any(CASES[name][3] for name in names):
        _prepare(args.n)
    if any(name.startswith("validate_faulty") for name in names):
        _prepare_faults(args.n)
    if any(name.startswith("check_city") for name in names):
        sys.path.insert(0, str(HERE.parent / "tests"))  # the fault generator writes the city's faults
        _city()  # made here, so that no case's peak memory counts making the city
    cluster = None
    if any(name.startswith("pg_") for name in names):
        sys.path.insert(0, str(HERE.parent / "tests"))
        from postgres import Cluster

        cluster = Cluster()
        os.environ["CITYGRID_BENCH_PG"] = cluster.url("").rstrip("/")
        _prepare_pg(args.n)
    rows = []
    try:
        for name in names:
            row = run(name, args.n, 1 if name in ONCE else args.repeat)
            rows.append(row)
            print(f"{row['group']:<24} {row['way']:<44} min {row['min']:7.2f} s  median {row['median']:7.2f} s"
                  f"  peak {row['peak_mb']:6.0f} MB", flush=True)
    finally:
        if cluster is not None:
            cluster.stop()
    write_results(rows, args.n, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
