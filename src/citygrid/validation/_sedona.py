"""The rules that join, as Spark SQL for Apache Sedona: each beside its rule, gathered in :data:`SEDONA`.

:func:`citygrid.scale.check` runs them on a dataset through temporary views it makes first:
``cg_c`` (the components, with ``row`` and ``admin_code``), ``cg_grid``, ``cg_streets``,
``cg_communities``, ``cg_boundary`` (each with ``admin_code``), ``cg_catalog``, ``cg_units`` and
``cg_meta`` (``admin_code, layout, id_length, name``). A rule's function takes the session and
gives its findings as ``rule, severity, component_id, row, message, admin_code, wkb``, the codes
and findings of the local rule of the same code (``tests/test_scale.py`` holds both to the same
rows). No module here imports pyspark: the session is handed in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

__all__ = ["LOCATED", "PROBE", "SEDONA", "finding", "query", "sedona"]

SEDONA: dict[str, Callable[[Any], pd.DataFrame]] = {}
"""Each rule that Sedona runs, by code: the function that finds it in the views."""


def sedona(code: str) -> Callable[[Callable[[Any], pd.DataFrame]], Callable[[Any], pd.DataFrame]]:
    """Register the Spark SQL of the rule `code` (written beside the rule itself)."""
    def register(find: Callable[[Any], pd.DataFrame]) -> Callable[[Any], pd.DataFrame]:
        SEDONA[code] = find
        return find

    return register


def finding(rule: str, where: str, message: str, joins: str = "", geometry: str = "c.geometry") -> str:
    """A query giving one finding of `rule` per component of ``cg_c`` where `where` holds."""
    return (f"SELECT '{rule}' AS rule, 'error' AS severity, c.component_id, c.row, {message} AS message, "
            f"c.admin_code, ST_AsBinary({geometry}) AS wkb FROM cg_c c {joins} WHERE {where}")


def query(spark: Any, sql: str) -> pd.DataFrame:
    """The rows of a Spark SQL query as a pandas frame."""
    return spark.sql(sql).toPandas()


LOCATED = ("c.geometry IS NOT NULL AND NOT ST_IsEmpty(c.geometry) AND abs(ST_XMin(c.geometry)) < 1e15 "
            "AND abs(ST_XMax(c.geometry)) < 1e15 AND abs(ST_YMin(c.geometry)) < 1e15 "
            "AND abs(ST_YMax(c.geometry)) < 1e15")
PROBE = "CASE WHEN GeometryType(c.geometry) = 'POINT' THEN c.geometry ELSE ST_PointOnSurface(c.geometry) END"
