"""A throwaway PostgreSQL + PostGIS cluster for the tests (Debian's packages)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class Cluster:
    """initdb + pg_ctl on a free local port; as root, run as the ``postgres`` user."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise RuntimeError("PostgreSQL server binaries are not installed (apt-get install postgresql postgis)")
        self.bin = Path(found[-1]).parent
        version = self.bin.parent.name
        if not glob.glob(f"/usr/share/postgresql/{version}/extension/postgis.control"):
            raise RuntimeError(f"PostGIS for PostgreSQL {version} is not installed (apt-get install postgis)")
        self.dir = Path(tempfile.mkdtemp(prefix="citygrid-pg-"))
        self.port = _free_port()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--locale=C.UTF-8")
        self.start()

    def start(self) -> None:
        """Start the server (again: after :meth:`crash` it recovers from its write-ahead log)."""
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-w", "-l", str(self.dir / "log"), "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def crash(self) -> None:
        """Stop the server at once, as a crash would: no checkpoint, every session cut."""
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "stop")

    def _run(self, tool: str, *args: str) -> None:
        out = subprocess.run([*self._as, str(self.bin / tool), *args], capture_output=True, text=True, timeout=120)
        if out.returncode:
            raise RuntimeError(f"{tool} failed: {out.stderr.strip()[-500:]}")

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            if (self.dir / "data" / "postmaster.pid").exists():
                self.crash()
        finally:
            time.sleep(0.2)
            shutil.rmtree(self.dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
