"""An exported GeoParquet dataset as a read-only registry store (``open_registry(folder)``).

:func:`citygrid.scale.export_dataset` writes one or many registries as a Hive-partitioned
GeoParquet 1.1 dataset (``admin_code=…/street_code=…/category=…/part-0.parquet``, the
districts beside them in ``_district/``, a description in ``_citygrid.json``). This module
reads it back: :func:`read_dataset` the components, :class:`DatasetStore` one district as a
store. A dataset holds one state: no history, no batches, no writes.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import geopandas as gpd
import pandas as pd

from citygrid import settings
from citygrid._i18n import _
from citygrid.admin import CODE_FORMS, check_codes
from citygrid.errors import AccessDenied, DistrictError, MissingFile, RegistryError, UsageError, writing

if TYPE_CHECKING:

    from citygrid.admin import District
    from citygrid.backends import NewRegistry, Store

__all__ = ["META", "MISSING", "DatasetStore", "dataset_meta", "read_dataset"]

META = "_citygrid.json"
"""The dataset's description file, at its top."""
MISSING = "__HIVE_DEFAULT_PARTITION__"
"""The partition folder value of a missing code, as Hive and Spark write it."""


def guess_can_open(target: object) -> bool:
    """Whether `target` is a folder holding a dataset's description."""
    return (isinstance(target, (str, os.PathLike)) and "://" not in str(target) and Path(target).is_dir()
            and (Path(target) / META).is_file())


def open_store(target: str | Path, *, engine: str = "pyogrio", timeout: float = 10.0) -> DatasetStore:
    """The one-district dataset at `target`, read-only."""
    return DatasetStore(target)


def create(target: str | Path, new: NewRegistry | None, **options: Any) -> Store:
    """Refused: a dataset is exported from registries, never created as one."""
    raise UsageError(_("{path!r} is a GeoParquet dataset; datasets are written by citygrid export --partitioned, "
                       "registries are created elsewhere.").format(path=str(target)))


def upgrade_store(target: str | Path, *, timeout: float = 10.0) -> tuple[int, int]:
    """Refused: a dataset is exported again, never upgraded."""
    raise UsageError(_("{path!r} is a GeoParquet dataset; export it again from its registries instead of upgrading "
                       "it.").format(path=str(target)))


def copy_in(source: Store, target: str | Path, *, timeout: float = 10.0) -> Store:
    """Refused: a dataset is exported from registries, never copied into."""
    return create(target, None)


def files(folder: Path, pattern: str) -> list[Path]:
    """The files below `folder` whose names match `pattern`, symbolic links neither followed nor returned."""
    found = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(root, d)))
        found += [Path(root) / n for n in sorted(names)
                  if fnmatch.fnmatch(n, pattern) and not os.path.islink(os.path.join(root, n))]
    return found


def links(folder: Path) -> list[Path]:
    """Symbolic links below `folder` (a dataset citygrid writes holds none)."""
    found = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        found += [Path(root) / n for n in (*dirs, *names) if os.path.islink(os.path.join(root, n))]
    return found


def dataset_meta(path: Path) -> dict:
    """The dataset's description, its district codes checked: they name folders and Spark's values.

    Raises
    ------
    MissingFile
        If `path` holds no dataset.
    DistrictError
        If the description is damaged or a district code is not 6 digits.
    """
    file = path / META
    if not file.is_file() or file.is_symlink():
        raise MissingFile(_("{path!r} is not a citygrid dataset (no {meta}); write one with citygrid export -r REG -o "
                            "DIR --partitioned.").format(path=str(path), meta=META))
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
        districts = meta["districts"]
        assert isinstance(districts, dict)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise DistrictError(_("{path!r}: {meta} is damaged; export the dataset again.").format(
            path=str(path), meta=META)) from None
    bad = [str(code)[:40] for code in districts if not re.fullmatch(CODE_FORMS["district"], str(code))]
    if bad:
        raise DistrictError(_("{path!r}: district code(s) {codes} in {meta} are not 6 digits; export the dataset "
                              "again from its registries.").format(path=str(path), codes=", ".join(map(repr, bad)),
                                                                   meta=META))
    return meta


def read_dataset(path: str | Path, *, admin_code: str | None = None) -> gpd.GeoDataFrame:
    """The components of a dataset (of one district, or all), partition columns as text.

    Raises
    ------
    MissingFile
        If `path` is not a citygrid dataset.
    """
    path = Path(path)
    meta = dataset_meta(path)
    codes = [admin_code] if admin_code else list(meta["districts"])
    parts = []
    for code in codes:
        folder = path / f"admin_code={code}"
        for file in files(folder, "*.parquet"):
            street, category = file.relative_to(folder).parts[:-1] if len(file.relative_to(folder).parts) == 3 \
                else ("", "")
            if not (street.startswith("street_code=") and category.startswith("category=")):
                continue  # not a partition of the dataset's layout
            frame = gpd.read_parquet(file)
            street, category = unquote(street.split("=", 1)[1]), unquote(category.split("=", 1)[1])
            frame["admin_code"], frame["street_code"] = code, None if street == MISSING else street
            frame["category"] = None if category == MISSING else category
            parts.append(frame)
    if not parts:
        return gpd.GeoDataFrame({"component_id": []}, geometry=[], crs=settings.default_crs)
    out = pd.concat(parts, ignore_index=True).sort_values(["admin_code", "row"], ignore_index=True)
    return gpd.GeoDataFrame(out.drop(columns="bbox", errors="ignore"), geometry="geometry", crs=settings.default_crs)


def _read_district(path: Path, code: str, name: str) -> District:
    from citygrid.admin import District

    folder = path / "_district" / code
    layers = {p.stem: gpd.read_parquet(p) for p in files(folder, "*.parquet")}
    boundary = layers["boundary"].geometry.iloc[0]
    units = pd.read_csv(folder / "units.csv", dtype=str, keep_default_na=False)
    district = District(code=code, name=name, boundary=boundary, streets=layers["streets"],
                        communities=layers["communities"], grid=layers["grid"], units=units,
                        roads=layers.get("roads"))
    return check_codes(district, source=str(folder))


class DatasetStore:
    """A one-district dataset as a read-only registry store (``open_registry(folder)``).

    Reads components, the district, its units and catalog from the dataset; batches and the
    allow-list are empty and history is refused (a dataset holds one state); every write
    raises :class:`~citygrid.errors.AccessDenied` with :attr:`read_only` as its message.
    """

    kind = "GeoParquet dataset"
    checks_state = False
    engine = "pyogrio"
    timeout = 0.0

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        meta = dataset_meta(self.path)
        if len(meta["districts"]) != 1:
            raise RegistryError(_("{name} holds {n} districts; open_registry takes one. Check the whole dataset with "
                                  "citygrid check.").format(name=self.name, n=len(meta["districts"])))
        (self.admin_code, self._info), = meta["districts"].items()
        self.read_only = _("{name} is a GeoParquet dataset, read-only: change the registries it was exported from, "
                           "then export again.").format(name=self.name)

    def meta(self) -> dict[str, str]:
        """The district's code and name and the identifier layout."""
        return {"layout": self._info["layout"], "admin_code": self.admin_code, "district_name": self._info["name"],
                "crs": settings.default_crs}

    def state(self) -> str:
        """A digest of the part files' names, times and sizes: a new export is a new state."""
        parts = files(self.path, "*.parquet")
        stamp = [f"{f}:{os.stat(f).st_mtime_ns}:{os.stat(f).st_size}" for f in parts]
        return "dataset:" + hashlib.sha256("\n".join(stamp).encode()).hexdigest()[:32]

    def read_components(self, state: str, columns: Sequence[str] | None = None) -> gpd.GeoDataFrame:
        """The components (current: a dataset holds no retired ones; only `columns`, when given)."""
        from citygrid.schema import conform

        frame = read_dataset(self.path, admin_code=self.admin_code).drop(columns=["row", "admin_code"])
        frame["retired_at"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ms]")
        frame = conform(frame) if "version" not in frame else frame
        return frame if columns is None else frame[list(columns)]

    def read_near(self, ids: Any, geoms: Any, categories: Any, reach: Any) -> None:
        """Nothing: a dataset takes no merges."""

    def hidden_near(self, geoms: Any, categories: Any, reach: Any) -> None:
        """Nothing: a dataset holds no row-level security."""

    def read_district(self) -> District:
        """The district kept in ``_district/<admin_code>/``."""
        return _read_district(self.path, self.admin_code, self._info["name"])

    def _table(self, name: str) -> pd.DataFrame:
        return pd.read_csv(self.path / "_district" / self.admin_code / name, dtype=str, keep_default_na=False)

    def read_catalog(self) -> pd.DataFrame:
        """The catalog exported beside the components."""
        return self._table("catalog.csv")

    def read_units(self) -> pd.DataFrame:
        """The units exported beside the components (``name_zh`` as the stores name it)."""
        return self._table("units.csv").rename(columns={"name": "name_zh"})

    def read_batches(self) -> pd.DataFrame:
        """None: a dataset holds one exported state."""
        return pd.DataFrame(columns=["batch_id", "source", "user", "started_at", "finished_at", "created", "updated",
                                     "retired", "unchanged", "kind"])

    def _no_history(self, *args: Any) -> pd.DataFrame:
        raise UsageError(_("{name} is a GeoParquet dataset: it keeps the components as they were exported, not "
                           "their history; ask the registries it was exported from.").format(name=self.name))

    read_history = read_changes_since = _no_history

    def resolve_alias(self, alias: str) -> str | None:
        """None: a dataset keeps no old identifiers."""
        return None

    def read_allowed(self) -> pd.DataFrame:
        """Empty: the allow-list stays with the registries."""
        return pd.DataFrame(columns=["component_id", "rule", "note", "added_at"])

    def read_bookkeeping(self) -> dict[str, pd.DataFrame]:
        """Refused: a dataset keeps no history to copy."""
        return self._no_history()

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise AccessDenied(self.read_only)

    reserve_serials = write = keep = write_migration = allow = _refuse

    def backup(self, dest: Path) -> Path:
        """A copy of the dataset folder."""
        with writing(dest):
            shutil.copytree(self.path, dest)
        return Path(dest)

    def verify(self) -> list[str]:
        """Every part file readable as GeoParquet, and no symbolic link; nothing else is kept in a dataset."""
        problems = [_("{path}: a symbolic link, which a dataset never holds (it is not followed)").format(path=link)
                    for link in links(self.path)]
        for file in files(self.path, "*.parquet"):
            try:
                import pyarrow.parquet as pq

                pq.read_metadata(file)
            except Exception as exc:  # any damage to a part file is a finding
                problems.append(f"{file}: {exc}")  # the reader's own words on the damage
        return problems


