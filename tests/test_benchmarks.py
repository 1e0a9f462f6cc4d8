"""The benchmarks' evaluation holds each case to its target from the guide: met, not met, or not measured."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from cases import CASES
from evaluation import TARGETS, target


def _row(name: str, median: float, peak_mb: float = 100.0, **extra) -> dict:
    return {"name": name, "median": median, "peak_mb": peak_mb, "extra": extra}


def test_every_target_names_a_case():
    assert set(TARGETS) <= set(CASES)


def test_targets_say_met_not_met_or_not_measured():
    rows = {r["name"]: r for r in [_row("ingest_10k", 2.4), _row("pg_ingest_10k", 4.0), _row("owner_at", 0.002,
                                                                                                 **{"p95 ms": 6.1}),
                                   _row("cli_validate_1m", 35.0, peak_mb=2000.0)]}
    assert target("ingest_10k", rows) == "< 3 s: **met**"
    assert target("pg_ingest_10k", rows) == "≤ 1.5× the GeoPackage: **not met**"  # 4.0 > 1.5 × 2.4
    assert target("owner_at", rows) == "p95 < 5 ms: **not met**"
    assert target("cli_validate_1m", rows) == "< 40 s; peak < 1.5 GiB: **not met**"
    assert target("pg_open", rows) == "≤ 1.5× the GeoPackage: not measured"
    assert target("generate", rows) == ""
    failed = {"ingest_10k": _row("ingest_10k", float("nan"))}
    assert target("ingest_10k", failed).endswith("not measured")


def test_the_peak_of_a_case_counts_the_command_it_ran():
    """A case that runs `citygrid …` is held to the command's memory, not to the few MB of the process waiting."""
    import subprocess

    from harness import peak_mb

    before = peak_mb()
    subprocess.run([sys.executable, "-c", "b = bytearray(400 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"],
                   check=True)
    assert peak_mb() >= max(before, 400)
