"""City and national scale: registries as partitioned GeoParquet, validated on Apache Sedona (Spark).

A district holds 420k components; a city's ten districts about 5 million; the national
platform hundreds of millions. :func:`export_dataset` writes one or many registries
(GeoPackage or PostGIS) as **GeoParquet 1.1**, Hive-partitioned by ``admin_code=`` /
``street_code=`` / ``category=``, with the bbox covering column, and each district's
hierarchy, units and catalog beside them (``_district/``). :func:`read_dataset` reads it
back; ``open_registry(folder)`` opens a one-district dataset read-only. :func:`check`
validates a registry or dataset with the local engine or on Sedona, and gives the same
:class:`~citygrid.validation.Report` and rule codes for the rules that need a join
(:data:`SEDONA_RULES`).

On Sedona the same-category duplicate search does **not** put ``a.category = b.category``
into the distance join: the planner would then fall back to a hash join on the category
with the distance as a mere filter, quadratic within a category (over 250 s at 1M points).
Points are hashed on a grid of their category's tolerance (the duplicate-node approach of
JOSM): each point meets the points of its own and the neighbouring cells through an
equi-join on (category, cell), and the exact distance decides. Lines and polygons go
through Sedona's spatial join, the category filtered after it. A test reads the plans.

Sedona needs its jars (``org.apache.sedona:sedona-spark-shaded-3.5_2.12`` and
``org.datasyslab:geotools-wrapper`` from Maven Central): ``CITYGRID_SEDONA_JARS`` names a
folder holding them (``.ci/run`` fetches them with Maven), else ``spark.jars.packages``
asks Maven Central at start.

Examples
--------
>>> export_dataset(["pingshan.gpkg", "longgang.gpkg"], "shenzhen/")  # doctest: +SKIP
>>> check("shenzhen/", engine="sedona").summary()  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from citygrid import settings
from citygrid._i18n import _
from citygrid.admin import CODE_FORMS
from citygrid.backends.dataset import META, MISSING, dataset_meta, read_dataset
from citygrid.backends.dataset import links as dataset_links
from citygrid.errors import DistrictError, UsageError, require, writing
from citygrid.schema import LAYOUTS
from citygrid.validation import Report
from citygrid.validation._sedona import SEDONA
from citygrid.validation.topology import POINT_PAIRS, SHAPE_JOIN, sedona_tolerances

if TYPE_CHECKING:
    from citygrid.registry import Registry

__all__ = ["PARTITIONS", "SEDONA_RULES", "check", "duplicate_plans", "export_dataset",
           "read_dataset", "sedona_session"]

PARTITIONS = ("admin_code", "street_code", "category")
"""The Hive partition columns of a dataset, in folder order."""
SEDONA_RULES = tuple(SEDONA)
"""The rules :func:`check` runs on Sedona: those that join components with each other or the district, each
written in Spark SQL beside its rule (:data:`citygrid.validation._sedona.SEDONA`)."""
SEDONA_VERSION = "1.8.1"
"""The Sedona release the jars and the Python package are pinned to (for Spark 3.5, Scala 2.12)."""


def _registry(target: Any) -> Registry:
    from citygrid.registry import Registry, open_registry

    return target if isinstance(target, Registry) else open_registry(target)


def export_dataset(registries: Any, out_dir: str | Path) -> Path:
    """Write registries as one Hive-partitioned GeoParquet 1.1 dataset (current components).

    Parameters
    ----------
    registries : Registry, path, URL, or a list of them
        GeoPackage paths, ``postgresql://`` URLs or open registries (one per district).
    out_dir : str or Path
        A new or empty folder.

    Returns
    -------
    Path
        The folder: ``admin_code=…/street_code=…/category=…/part-0.parquet`` with the
        components (a ``bbox`` covering column, EPSG:4547), ``_district/<admin_code>/`` with the
        boundary, streets, communities and grid as GeoParquet and the units and catalog as
        CSV, and ``_citygrid.json`` (districts, layouts, counts).

    Raises
    ------
    UsageError
        If `out_dir` holds files already, or two registries are of one district.
    OutputError
        If it cannot be written.
    """
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise UsageError(_("{path!r} is not empty; export into a new folder (-o).").format(path=str(out)))
    regs = [_registry(r) for r in (registries if isinstance(registries, (list, tuple)) else [registries])]
    codes = [r.admin_code for r in regs]
    if len(set(codes)) < len(codes):
        raise UsageError(_("two registries of one district ({codes}); a dataset holds each district once.").format(
            codes=", ".join(codes)))
    meta: dict[str, Any] = {"format": "citygrid dataset", "geoparquet": "1.1.0", "partitions": list(PARTITIONS),
                            "districts": {}}
    with writing(out):
        for reg in regs:
            comps = reg.components.reset_index(drop=True)
            comps = comps.assign(row=np.arange(1, len(comps) + 1), admin_code=reg.admin_code)
            comps = comps.drop(columns=["retired_at"], errors="ignore")
            for (street, category), part in comps.groupby(["street_code", "category"], dropna=False, sort=False):
                folder = _inside(out / f"admin_code={reg.admin_code}" / f"street_code={_value('street_code', street)}"
                                 / f"category={_value('category', category)}", out)
                folder.mkdir(parents=True, exist_ok=True)
                part.drop(columns=list(PARTITIONS)).to_parquet(folder / "part-0.parquet", write_covering_bbox=True,
                                                               schema_version="1.1.0")
            _write_district(reg, _inside(out / "_district" / reg.admin_code, out))
            meta["districts"][reg.admin_code] = {"name": reg.district.name, "layout": reg.layout,
                                                 "components": len(comps), "source": reg.name}
        (out / META).write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    return out


_PARTITION_FORMS = {"street_code": CODE_FORMS["street"], "category": r"\d{4,5}"}
_HIVE_ESCAPED = frozenset('"#%\'*/:=?\\\x7f{[]^') | frozenset(map(chr, range(32)))
"""The characters Hive and Spark escape in a partition value (``%2F`` for ``/``), and unescape when reading."""


def _value(column: str, value: Any) -> str:
    """A partition folder's value: the code when it is of its form, else escaped as Hive does.

    A value from data never makes a path: ``../x`` becomes ``..%2Fx``, one folder below
    the partition column, which Spark and :func:`read_dataset` read back as ``../x`` (a
    registry edited outside citygrid can hold such a value, and :func:`check` then reports it).
    """
    if pd.isna(value) or str(value) == "":
        return MISSING
    text = str(value)
    if re.fullmatch(_PARTITION_FORMS[column], text):
        return text
    return "".join(f"%{ord(c):02X}" if c in _HIVE_ESCAPED else c for c in text)


def _inside(folder: Path, out: Path) -> Path:
    """`folder`, confirmed to lie inside `out` once resolved."""
    if not folder.resolve().is_relative_to(out.resolve()):
        raise UsageError(_("{path!r} would lie outside {out!r}; nothing is written there.").format(
            path=str(folder), out=str(out)))
    return folder


def _write_district(reg: Registry, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, layer in reg.district.layers().items():
        if name in ("boundary", "streets", "communities", "grid", "roads"):
            layer.to_parquet(folder / f"{name}.parquet", write_covering_bbox=True, schema_version="1.1.0")
    reg.district.units.to_csv(folder / "units.csv", index=False)
    reg.catalog.to_frame().to_csv(folder / "catalog.csv", index=False)


# --- Sedona ---------------------------------------------------------------------------------

def sedona_session(master: str | None = None, *, memory: str = "4g"):
    """A SparkSession with Sedona registered: local (``local[*]``) unless `master` names a cluster.

    Raises
    ------
    MissingDependency
        If pyspark or apache-sedona are not installed (the ``scale`` extra).
    """
    require("pyspark", _("Apache Sedona"), "scale")
    sedona = require("sedona.spark", _("Apache Sedona"), "scale")
    builder = sedona.SedonaContext.builder().master(master or "local[*]").appName("citygrid")
    jars = sorted(glob.glob(os.path.join(os.environ.get("CITYGRID_SEDONA_JARS", ""), "*.jar")))
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    else:
        builder = builder.config("spark.jars.packages",
                                 f"org.apache.sedona:sedona-spark-shaded-3.5_2.12:{SEDONA_VERSION},"
                                 f"org.datasyslab:geotools-wrapper:{SEDONA_VERSION}-33.1")
    local = (master or "local").startswith("local")
    session = (builder.config("spark.ui.enabled", "false").config("spark.driver.memory", memory)
               .config("spark.sql.shuffle.partitions", "16")
               # on one machine, list a dataset's hundreds of partition folders in the driver, not as Spark jobs
               .config("spark.sql.sources.parallelPartitionDiscovery.threshold", "100000" if local else "32")
               .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    return sedona.SedonaContext.create(session)


def check(target: Any, *, engine: str = "local", spark: Any = None, master: str | None = None) -> Report:
    """Validate a whole registry or dataset, on this machine or on Sedona.

    Parameters
    ----------
    target : Registry, path or URL
        A ``.gpkg``, a ``postgresql://`` URL or a dataset folder (:func:`export_dataset`).
    engine : {"local", "sedona"}
        ``local`` runs every rule of registry validation (one district);
        ``sedona`` runs :data:`SEDONA_RULES` on Spark for any number of districts.
    spark : SparkSession, optional
        The user's session (a cluster); default a local one, or `master`.
    master : str, optional
        Spark master URL for a new session (``spark://…``, ``yarn``, ``local[4]``).

    Returns
    -------
    Report
        Rule codes and messages as registry validation gives them; ``component_id`` and
        ``row`` (position in the registry's components) name each finding.
    """
    if engine not in ("local", "sedona"):
        raise UsageError(_("--engine {engine!r}: use local or sedona.").format(engine=engine))
    if engine == "local":
        return _registry(target).validate()
    folder = Path(str(target)) if not hasattr(target, "store") else None
    temporary = None
    if folder is None or not (folder.is_dir() and (folder / META).is_file()):
        import tempfile

        temporary = Path(tempfile.mkdtemp(prefix="citygrid-dataset-")) / "dataset"
        folder = export_dataset(target, temporary)
    try:
        return _sedona_report(folder, spark or sedona_session(master))
    finally:
        if temporary is not None:
            shutil.rmtree(temporary.parent, ignore_errors=True)


def _sedona_report(folder: Path, spark) -> Report:
    meta = dataset_meta(folder)
    links = dataset_links(folder)
    if links:  # Spark would follow them anywhere on the machine
        raise DistrictError(_("{path!r} holds symbolic links (e.g. {link}); a dataset holds none, and none is "
                              "followed: export it again.").format(path=str(folder), link=links[0]))
    views = _views(spark, folder, meta)
    issues = [frame for frame in (find(spark) for find in SEDONA.values()) if len(frame)]
    for view in views:
        spark.catalog.dropTempView(view)
    checked = sum(d["components"] for d in meta["districts"].values())
    columns = ["rule", "severity", "component_id", "row", "message", "admin_code", "wkb"]
    table = pd.concat(issues, ignore_index=True) if issues else pd.DataFrame(columns=columns)
    wkb = [bytes(b) if b is not None else None for b in table.pop("wkb")]  # Spark gives bytearrays
    geometry = shapely.from_wkb(np.array(wkb, dtype=object)) if len(table) else []
    table["row"] = table["row"].astype("Int64")
    table = table.sort_values(["admin_code", "row", "rule"], ignore_index=True)
    return Report(gpd.GeoDataFrame(table, geometry=list(geometry), crs=settings.default_crs),
                  source=str(folder), checked=checked)


def _views(spark, folder: Path, meta: dict) -> list[str]:
    """Temporary views: c (components), grid, streets, communities, boundary, catalog, units, meta."""
    from pyspark.sql import functions

    # read once: a dataset is hundreds of small files per district, and every rule's query would
    # list and open them all again. Cached rather than checkpointed: a cache keeps the columns
    # apart, so each rule reads only its own (a local checkpoint made 420k take 220 s, not 160 s)
    components = spark.read.format("geoparquet").load(str(folder)).drop("bbox").cache()
    components.createOrReplaceTempView("cg_c")
    layers = {"grid": "cg_grid", "streets": "cg_streets", "communities": "cg_communities", "boundary": "cg_boundary"}
    for layer, view in layers.items():
        frames = [spark.read.format("geoparquet").load(str(folder / "_district" / code / f"{layer}.parquet"))
                  .withColumn("admin_code", functions.lit(code)) for code in meta["districts"]]
        union = frames[0]
        for frame in frames[1:]:
            union = union.unionByName(frame, allowMissingColumns=True)
        union.localCheckpoint().createOrReplaceTempView(view)
    tables = {"cg_catalog": "catalog.csv", "cg_units": "units.csv"}
    for view, name in tables.items():
        rows = pd.concat([pd.read_csv(folder / "_district" / code / name, dtype=str, keep_default_na=False)
                          .assign(admin_code=code) for code in meta["districts"]], ignore_index=True)
        spark.createDataFrame(rows).createOrReplaceTempView(view)
    spark.createDataFrame(pd.DataFrame(
        [{"admin_code": code, "layout": d["layout"], "id_length": LAYOUTS[d["layout"]].id_length,
          "name": d["name"]} for code, d in meta["districts"].items()])).createOrReplaceTempView("cg_meta")
    return ["cg_c", *layers.values(), *tables, "cg_meta"]


def duplicate_plans(spark, folder: str | Path) -> dict[str, str]:
    """The physical plans Spark makes for the duplicate search of a dataset (``EXPLAIN``), by kind.

    ``points`` must be a hash join on the tolerance cells, ``shapes`` Sedona's distance join,
    never a hash join on the category with the distance as a filter.
    """
    folder = Path(folder)
    views = _views(spark, folder, dataset_meta(folder))
    reach = sedona_tolerances(spark)
    plans = {kind: spark.sql(sql)._jdf.queryExecution().executedPlan().toString()
             for kind, sql in (("points", POINT_PAIRS), ("shapes", SHAPE_JOIN.format(reach=reach)))}
    for view in views:  # and the components' cache with them
        spark.catalog.dropTempView(view)
    return plans

