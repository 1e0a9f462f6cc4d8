"""The named reads of the bookkeeping tables, written once for every SQL backend.

A registry keeps beside its components the tables that say how it came to be: the batches
merged, every change (history), old identifiers (aliases), the allow-list, the catalog and
the units. Both SQL backends hold them under the same names and columns; this mixin reads
them with SQL that SQLite and PostgreSQL both run, so :class:`citygrid.Registry` asks for
*what* it needs (``read_history(ids)``) and never writes SQL of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

__all__ = ["BOOK_COLUMNS", "BOOK_TABLES", "BookkeepingReads"]

BOOK_COLUMNS = {"citygrid_batches": "*",
                "citygrid_history": ("change_id, batch_id, component_id, action, field, old_value, new_value, "
                                     "changed_at"),
                "citygrid_aliases": "alias, component_id, kind",
                "citygrid_allow": "component_id, rule, note, added_at"}
"""The bookkeeping tables a copy carries over whole, in the columns every backend shares."""

BOOK_TABLES = tuple(BOOK_COLUMNS)


class BookkeepingReads:
    """Named reads over :meth:`_rows`, which a backend implements.

    ``_mark`` is the backend's parameter placeholder (``?`` for SQLite, ``%s`` for psycopg).
    """

    _mark = "?"

    def _rows(self, sql: str, params: tuple = ()) -> pd.DataFrame:
        """The rows of a read-only query as a frame (implemented by the backend)."""
        raise NotImplementedError

    def read_catalog(self) -> pd.DataFrame:
        """The registry's category catalog, one row per category."""
        return self._rows("SELECT * FROM citygrid_catalog").drop(columns="fid", errors="ignore")

    def read_units(self) -> pd.DataFrame:
        """The units (departments, owners, maintainers) with their codes."""
        return self._rows("SELECT * FROM citygrid_units").drop(columns="fid", errors="ignore")

    def read_batches(self) -> pd.DataFrame:
        """Every batch ever merged, in order (the initial load is batch 1)."""
        return self._rows("SELECT * FROM citygrid_batches ORDER BY batch_id")

    def read_history(self, component_ids: Sequence[str]) -> pd.DataFrame:
        """Every recorded change of the given identifiers, with its batch's source, oldest first."""
        marks = ", ".join([self._mark] * len(component_ids)) or "NULL"
        return self._rows(
            "SELECT h.change_id, h.batch_id, b.source, h.component_id, h.action, h.field, h.old_value, "
            "h.new_value, h.changed_at FROM citygrid_history h LEFT JOIN citygrid_batches b USING (batch_id) "
            f"WHERE h.component_id IN ({marks}) ORDER BY h.change_id", tuple(component_ids))

    def read_changes_since(self, at: str) -> pd.DataFrame:
        """The changes recorded after `at` (UTC, ``YYYY-MM-DDTHH:MM:SS.ffffff``), newest last."""
        return self._rows("SELECT change_id, batch_id, component_id, action, field, old_value FROM citygrid_history "
                          f"WHERE changed_at > {self._mark} ORDER BY change_id", (at,))

    def resolve_alias(self, alias: str) -> str | None:
        """The identifier a component carries now that once was `alias`, or None."""
        rows = self._rows(f"SELECT component_id FROM citygrid_aliases WHERE alias = {self._mark}", (alias,))
        return str(rows["component_id"].iloc[0]) if len(rows) else None

    def read_allowed(self) -> pd.DataFrame:
        """The allow-list: ``component_id, rule, note, added_at``, oldest first."""
        return self._rows("SELECT component_id, rule, note, added_at FROM citygrid_allow ORDER BY added_at")

    def read_bookkeeping(self) -> dict[str, pd.DataFrame]:
        """Batches, history, aliases and allow-list whole, for a lossless copy."""
        return {table: self._rows(f"SELECT {columns} FROM {table}") for table, columns in BOOK_COLUMNS.items()}
