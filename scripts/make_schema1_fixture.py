"""Make ``tests/data/schema1.gpkg.gz``: a registry written by citygrid as it was before schema 2.

The registry is made by the code of commit ``fc1705f`` (the last with the first GeoPackage
layout), checked out into a temporary worktree and run there, so the fixture is what an
earlier citygrid really wrote, not a reconstruction by today's code. A district of 300
components, one ingest (new, updated and retired components), one allow-list entry.

Run from the repository root: ``python scripts/make_schema1_fixture.py``.
"""

import gzip
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "fc1705f9a4fde1043b683eb4c2952a3636d1ad59"
TARGET = ROOT / "tests" / "data" / "schema1.gpkg.gz"

MAKE = """
import sys
from citygrid import synth
from citygrid.registry import Registry

district = synth.make_district(seed=21, n_components=300, reserve=40)
reg = Registry.create(sys.argv[1], district)
batch = synth.make_batch(district, new=10, updated=12, retired=3, seed=22)
assert reg.ingest(batch, source="2026-W01 schema 1").accepted
reg.allow(reg.components["component_id"].iloc[0], "owner.conflict", "schema 1 allow-list entry")
"""


def main() -> None:
    """Check the old commit out beside this one, make the registry with it, keep it compressed."""
    with tempfile.TemporaryDirectory(prefix="citygrid-schema1-") as folder:
        tree = Path(folder) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), COMMIT], check=True)
        try:
            out = Path(folder) / "schema1.gpkg"
            subprocess.run([sys.executable, "-c", MAKE, str(out)], check=True,
                           env={"PYTHONPATH": str(tree / "src"), "PATH": "/usr/bin:/bin", "CITYGRID_LANG": "en"})
            TARGET.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "rb") as raw, open(TARGET, "wb") as file, \
                    gzip.GzipFile(fileobj=file, mode="wb", compresslevel=9, mtime=0) as packed:
                shutil.copyfileobj(raw, packed)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True)
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
