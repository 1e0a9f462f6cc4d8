"""The harness: each case in a fresh Python process, timed, with its own peak memory."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cases import CASES, HERE


def peak_mb() -> float:
    """Peak resident memory of this process or of the largest command it ran (what a user of the
    command pays): VmHWM, which unlike ru_maxrss is not inherited from the parent across fork and
    exec, and the children's ru_maxrss."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            own = int(line.split()[1]) / 1024
    return max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def child(name: str, n: int) -> None:
    sys.path.insert(0, str(HERE.parent / "tests"))  # the fault generator of the validation cases
    import fiona  # noqa: F401  (imports are not part of the timed work)
    import geopandas  # noqa: F401
    import pyogrio  # noqa: F401

    import citygrid  # noqa: F401

    start = time.perf_counter()
    extra = CASES[name][2](n)
    seconds = extra.pop("_seconds", time.perf_counter() - start)
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb(), "extra": extra}))


def run(name: str, n: int, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, str(HERE / "run.py"), "--case", name, "--n", str(n)],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:  # shown in the table (and here), and the other cases still run
            print(f"benchmark {name} failed:\n{out.stderr[-3000:]}", file=sys.stderr)
            last = out.stderr.strip().splitlines()[-1:] or [f"exit code {out.returncode}"]
            runs.append({"seconds": float("nan"), "peak_mb": float("nan"), "extra": {"FAILED": last[0][:200]}})
            break
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    times = [r["seconds"] for r in runs]
    return {"name": name, "group": CASES[name][0], "way": CASES[name][1], "min": min(times),
            "median": statistics.median(times), "peak_mb": max(r["peak_mb"] for r in runs),
            "extra": runs[-1]["extra"], "repeat": repeat}


def machine() -> str:
    import geopandas
    import pyogrio
    import shapely

    cpu = "unknown CPU"
    if Path("/proc/cpuinfo").exists():
        names = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                 if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Python {platform.python_version()}, "
            f"geopandas {geopandas.__version__}, shapely {shapely.__version__}, "
            f"pyogrio {pyogrio.__version__}")


