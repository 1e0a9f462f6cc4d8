"""Settings of citygrid: documented module globals.

Change them at run time (``citygrid.settings.default_crs = ...``) or, where noted,
through an environment variable read at import.

Attributes
----------
default_crs : str
    CRS every registry, district and normalised batch is kept in: CGCS2000 3-degree
    Gauss-Krüger zone with central meridian 114°E, in metres (``EPSG:4547``).
geographic_crs : str
    CGCS2000 geographic CRS (``EPSG:4490``), what Chinese authorities publish.
web_crs : str
    WGS84 geographic CRS (``EPSG:4326``), what OSM-based web maps use.
gcj02_tolerance_m : float
    Largest error accepted when inverting a GCJ-02 conversion (metres).
grid_tolerance_m : float
    How far (metres) a component's point may lie outside the grid cell, street or
    community it claims and still be in it: coordinates rounded to 6 decimals of a degree,
    as many CSV and Excel exports carry them, move a point by up to 6 cm. A line or polygon
    is also in the cell that holds at least half of it (its length or area), whichever
    point stands for it.
tianditu_key : str or None
    Tianditu (天地图) user key; environment variable ``CITYGRID_TIANDITU_KEY``.
synchronous : str
    How a GeoPackage registry commits (SQLite's ``PRAGMA synchronous``): ``"FULL"`` by
    default, so that a merge that returned survives a power cut (about 0.4 s more on a 10k
    ingest into 420k components, ``benchmarks/RESULTS.md``); ``"NORMAL"`` keeps every
    registry consistent but may lose the last merge in a power cut; environment variable
    ``CITYGRID_SYNCHRONOUS``.
timezone : str
    The district's time zone (``Asia/Shanghai``, all of China): times with a UTC offset are
    converted to it, times without one are taken as its local time.
max_rows : int
    Most rows read from a table (CSV, Excel): a bigger one is refused in one line, not read
    into memory (``--max-rows``; environment variable ``CITYGRID_MAX_ROWS``). 5,000,000 by default.
max_columns : int
    Most columns of a table (1,000): a one-line file of a million commas is refused at once.
max_line_bytes : int
    Longest line of a CSV file (1 MB).
max_table_bytes : int
    Largest CSV file read (2 GiB); GeoPackage or GeoParquet carry more.
max_unzip_ratio : float
    Largest ratio of an Excel file's unpacked to packed size (100; real workbooks pack 5 to 20
    times): a few hundred kilobytes that unpack into a million rows are refused.
language : str
    What citygrid says things in: ``"en"`` or ``"zh"`` (issue messages, errors, reports,
    maps, the command's output). Environment variable ``CITYGRID_LANG``, else the locale
    (``LC_ALL``, ``LC_MESSAGES``, ``LANG``: ``zh_CN.UTF-8`` means Chinese), else English.
batch_part_rows : int
    Rows of a batch validated at a time (100,000): each row's own rules run part by part, the
    rules on the batch as a whole on a few of its columns, so that a batch of millions of rows
    is checked in bounded memory. The report is the same whatever the value.
cache_dir : str
    Where a client keeps the components of a shared (PostGIS) registry between opens, per
    database and role, keyed on the database's state: ``$CITYGRID_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/citygrid``, else ``~/.cache/citygrid``; an empty value keeps none.
basemap : str
    Background tiles of maps when none is asked for: ``"none"`` (the default: a map
    draws with no network, over the district's own outlines, grid and roads),
    ``"osm"``, ``"tianditu-vec"``, ``"tianditu-img"``, ``"amap"`` or an intranet tile
    URL; environment variable ``CITYGRID_BASEMAP``.
"""

from __future__ import annotations

import os

default_crs: str = "EPSG:4547"
geographic_crs: str = "EPSG:4490"
web_crs: str = "EPSG:4326"
gcj02_tolerance_m: float = 0.01
grid_tolerance_m: float = 0.1
tianditu_key: str | None = os.environ.get("CITYGRID_TIANDITU_KEY") or None
synchronous: str = os.environ.get("CITYGRID_SYNCHRONOUS") or "FULL"
basemap: str = os.environ.get("CITYGRID_BASEMAP") or "none"
cache_dir: str = os.environ.get("CITYGRID_CACHE_DIR", os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "citygrid"))
timezone: str = "Asia/Shanghai"
max_rows: int = int(os.environ.get("CITYGRID_MAX_ROWS") or 5_000_000)
max_columns: int = 1_000
max_line_bytes: int = 1_000_000
max_table_bytes: int = 2 * 1024**3
max_unzip_ratio: float = 100.0
batch_part_rows: int = 100_000
language: str = "zh" if next((os.environ[k] for k in ("CITYGRID_LANG", "LC_ALL", "LC_MESSAGES", "LANG")
                               if os.environ.get(k)), "").lower().startswith("zh") else "en"
