"""Rule declarations and the engine that runs them (rules are data, the engine runs them)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from citygrid import settings
from citygrid._arrays import NONE, Positions, joined_rows
from citygrid._i18n import _
from citygrid.admin import District
from citygrid.catalog import Catalog

SEVERITIES = ("error", "warning", "info")
"""An error blocks a merge; a warning asks for a look; an info says how a value was read."""


def present(geoms: np.ndarray) -> np.ndarray:
    """Geometries that exist and are not empty.

    ``POINT (NaN NaN)`` is empty too, as the GeoPackage standard and PostGIS store an empty point.
    """
    filled = np.where(pd.isna(geoms), shapely.Point(), geoms)
    out = ~shapely.is_empty(filled)
    points = np.flatnonzero(out & (shapely.get_type_id(filled) == 0))
    if len(points):
        xy = shapely.get_coordinates(filled[points])  # one row per point
        out[points[np.isnan(xy).all(axis=1)]] = False
    return out


def located(ctx: Context) -> np.ndarray:
    """Rows whose geometry places the component: present, with finite coordinates only.

    ``geom.invalid`` reports the others (NaN or infinite coordinates); location rules skip them.
    """
    def compute() -> np.ndarray:
        ok = present(ctx.geoms)
        coords, index = shapely.get_coordinates(ctx.geoms[ok], return_index=True)
        broken = np.unique(index[~np.isfinite(coords).all(axis=1)])
        ok[np.flatnonzero(ok)[broken]] = False
        return ok

    return ctx.memo("located", compute)


@dataclass(frozen=True)
class Rule:
    """One validation rule.

    Attributes
    ----------
    code : str
        Stable code, e.g. ``"geom.invalid"`` (users filter on it).
    family : str
        The part before the dot.
    severity : {"error", "warning", "info"}
        Default severity; an error blocks an ingest.
    doc : str
        What the rule catches.
    check : callable
        ``check(ctx) -> Findings``.
    needs : tuple of str
        What the rule needs besides the batch: ``"district"``, ``"registry"``.
    whole : bool
        The rule looks at the batch as a whole (rows against each other, or the batch's
        notes as a whole); it runs once on the columns of :data:`WHOLE_COLUMNS`. Every other
        rule judges each row on its own and runs on a batch part by part.
    """

    code: str
    family: str
    severity: str
    doc: str
    check: Callable[[Context], Findings] = field(repr=False)
    needs: tuple[str, ...] = ()
    whole: bool = False

    @property
    def scope(self) -> str:
        """``"grid"`` for rules on the unit grid (registry validation), else ``"batch"``."""
        return "grid" if self.family == "grid" else "batch"


@dataclass
class Findings:
    """What one rule found: positions in the batch (or grid) and a message each.

    ``field`` names the field (one for all, or one per finding) whose cell the finding is
    about, so that the report can give its column letter; ``"geometry"`` stands for the
    coordinate columns. ``whole`` marks findings about the batch as a whole among findings
    about rows (they get no row).
    """

    pos: np.ndarray
    message: np.ndarray
    geometry: np.ndarray | None = None
    component_id: np.ndarray | None = None
    layer: str = "batch"
    field: str | np.ndarray | None = None
    whole: np.ndarray | None = None

    @classmethod
    def none(cls) -> Findings:
        return cls(np.array([], dtype=int), np.array([], dtype=object))


RULES: dict[str, Rule] = {}


WHOLE_COLUMNS = ("component_id", "category", "grid", "status", "action", "row")
"""The columns (besides geometry) that rules on a batch as a whole read: a large batch is kept whole in these only."""


def rule(code: str, severity: str, doc: str, *, needs: tuple[str, ...] = (), whole: bool = False):
    """Register a rule function under a stable code (`whole`: see :class:`Rule`)."""
    def register(func: Callable[[Context], Findings]) -> Callable[[Context], Findings]:
        RULES[code] = Rule(code, code.split(".")[0], severity, doc, func, needs, whole)
        return func

    return register


@dataclass
class Context:
    """Everything rules read: the canonical batch and what it is checked against."""

    frame: gpd.GeoDataFrame
    catalog: Catalog
    district: District | None = None
    registry: gpd.GeoDataFrame | None = None
    tolerances: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    admin_code: str | None = None
    layout: str | None = None
    registry_positions: Positions | None = None
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False)

    def by_category(self, attr: str, categories: np.ndarray | None = None) -> np.ndarray:
        """The catalog's `attr` (e.g. ``"name_zh"``) of each category, given by either code.

        Default: of the batch's rows. None where the category is unknown.
        """
        table = self.memo(("by_category", attr), lambda: {
            code: getattr(c, attr) for c in self.catalog for code in (c.code, c.code_2026)})
        categories = self.values("category") if categories is None else categories
        return pd.Series(categories, dtype=object).map(table).to_numpy(dtype=object)

    def tolerance(self, categories: np.ndarray) -> np.ndarray:
        """Duplicate tolerance in metres per row (catalog value unless overridden)."""
        out = self.by_category("tolerance_m", categories).astype(float)
        for key, value in self.tolerances.items():
            cat = self.catalog[key]
            out[pd.Series(categories, dtype=object).isin([cat.code, cat.code_2026]).to_numpy()] = float(value)
        return out

    @property
    def geoms(self) -> np.ndarray:
        return self.frame.geometry.to_numpy()

    @property
    def known_district(self) -> District:
        """The district, for a rule that needs it (the engine runs such a rule only when there is one)."""
        if self.district is None:
            raise AssertionError("a rule that needs the district ran without one")
        return self.district

    @property
    def known_registry(self) -> gpd.GeoDataFrame:
        """The registry's components, for a rule that needs them (run only when there are some)."""
        if self.registry is None:
            raise AssertionError("a rule that needs the registry ran without one")
        return self.registry

    def values(self, column: str) -> np.ndarray:
        """A batch column as an object array, converted once per context.

        A text column's value repeated in many rows (a category, a grid cell) is one object for
        all of them: a million rows of 136 categories hold 136 strings, not a million. Identifiers,
        one per row, are converted as they are.
        """
        def compute() -> np.ndarray:
            series = self.frame[column]
            if column == "component_id" or not isinstance(series.dtype, pd.StringDtype):
                return series.to_numpy(dtype=object)
            codes, uniques = pd.factorize(series)
            return np.append(np.asarray(uniques, dtype=object), series.dtype.na_value)[codes]  # -1: missing

        return self.memo(("values", column), compute)

    def probes(self) -> np.ndarray:
        """A point inside each geometry: points as they are, others a point on their surface.

        None where the geometry is missing or has non-finite coordinates.
        """
        def compute() -> np.ndarray:
            geoms = np.where(located(self), self.geoms, NONE)
            other = ~np.isin(shapely.get_type_id(geoms), (-1, 0))
            geoms[other] = shapely.point_on_surface(geoms[other])
            return geoms

        return self.memo("probes", compute)

    def ids(self, pos: np.ndarray) -> np.ndarray:
        """The component ids of rows `pos` as an object array, converted for those rows alone."""
        return self.frame["component_id"].take(pos).to_numpy(dtype=object)

    def label(self, pos: np.ndarray) -> list[str]:
        """How a message names rows `pos`: their component id, else their batch row."""
        ids, rows = self.ids(pos), self.frame["row"].to_numpy()[pos]
        nameless, row = _("a component without id"), _("batch row {row}")
        return [str(i) if not pd.isna(i) else nameless if pd.isna(r) else row.format(row=int(r))
                for i, r in zip(ids, rows)]

    def memo(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per context under `key` (for results several rules share)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def twins(self) -> np.ndarray:
        """Position in ``registry`` of each batch row's component id, -1 where it has none."""
        def compute() -> np.ndarray:
            if self.registry is None:
                return np.full(len(self.frame), -1)
            find = self.registry_positions or Positions(self.registry["component_id"].to_numpy(dtype=object))
            return find(self.values("component_id"))

        return self.memo("twins", compute)

    def current_twins(self) -> np.ndarray:
        """:meth:`twins`, with -1 also where the registered component is retired.

        Reusing a retired id is ``id.duplicate``; the retired component's owner and place
        are no yardstick for the row.
        """
        def compute() -> np.ndarray:
            twins = self.twins()
            if self.registry is None or "retired_at" not in self.registry or not len(self.registry):  # no twins
                return twins
            retired = self.registry["retired_at"].notna().to_numpy()
            return np.where((twins >= 0) & retired[np.maximum(twins, 0)], -1, twins)

        return self.memo("current_twins", compute)


class Messages:
    """The issues' messages as the rules wrote them, a block per rule and part, read by key when shown.

    A report of millions of issues lists a thousand in a terminal or a JSON answer: the messages
    of the others are counted, never copied into the order of the report. A key is a message's
    place in the blocks taken end to end. A block is kept compressed (zstd in Arrow's IPC format:
    the messages of one rule repeat its sentence, so 400 MB of text keep in about 30 MB) and
    opened only when its messages are asked for.

    Examples
    --------
    >>> m = Messages()
    >>> m.add(["a", "b"]).tolist(), m.add(["c"]).tolist()
    ([0, 1], [2])
    >>> m.take(np.array([2, 0])).tolist()
    ['c', 'a']
    """

    _OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")

    def __init__(self) -> None:
        self._blocks: list[pa.Buffer] = []
        self._starts = [0]

    def add(self, texts: Any) -> np.ndarray:
        """Keep `texts` (a sequence of str); their keys."""
        block = pa.record_batch([pa.array(np.asarray(texts, dtype=object), type=pa.large_string())], ["message"])
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, block.schema, options=self._OPTIONS) as stream:
            stream.write_batch(block)
        start = self._starts[-1]
        self._blocks.append(sink.getvalue())
        self._starts.append(start + block.num_rows)
        return np.arange(start, start + block.num_rows, dtype=np.int64)

    def take(self, keys: np.ndarray) -> pd.arrays.ArrowStringArray:
        """The messages of `keys`, in their order, as one Arrow string column (each block opened once)."""
        keys = np.asarray(keys, dtype=np.int64)
        block = np.searchsorted(np.asarray(self._starts), keys, side="right") - 1
        order = np.argsort(block, kind="stable")
        blocks, firsts = np.unique(block[order], return_index=True)
        ends = np.append(firsts[1:], len(order))
        pieces = [self._open(b).take(pa.array(keys[order[a:z]] - self._starts[b]))
                  for b, a, z in zip(blocks, firsts, ends)]
        joined = pa.concat_arrays(pieces) if pieces else pa.array([], pa.large_string())
        del pieces
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return pd.array(joined.take(pa.array(back)), dtype="str")

    def _open(self, block: int) -> pa.Array:
        return pa.ipc.open_stream(self._blocks[block]).read_all().column(0).combine_chunks()


def run(ctx: Context, codes: list[str], severities: dict[str, str]) -> tuple[gpd.GeoDataFrame, Messages]:
    """Run the rules `codes` over `ctx`: :func:`issues` of their findings, and the messages they keyed."""
    messages = Messages()
    return issues([findings(ctx, codes, severities, messages)], codes, severities), messages


def findings(ctx: Context, codes: list[str], severities: dict[str, str], messages: Messages, *,
             whole: bool | None = None) -> pd.DataFrame:
    """What the rules `codes` find in `ctx`, as compact columns (text in Arrow strings), in the order of `codes`.

    With `whole` True or False, only the rules of `codes` whose :attr:`Rule.whole` is that run.
    ``order`` is each issue's rule's place in `codes`: it stands for the rule and its severity
    until :func:`issues` names them, and puts findings made on parts of a batch in the order
    one run on the whole batch gives. The messages go into `messages`; column ``message`` holds
    their keys.
    """
    parts = []
    ids = ctx.frame["component_id"]
    rows = ctx.frame["row"].to_numpy() if "row" in ctx.frame else np.arange(1, len(ctx.frame) + 1)
    for order, code in enumerate(codes):
        spec = RULES[code]
        if whole is not None and spec.whole != whole:
            continue
        if "district" in spec.needs and ctx.district is None:
            continue
        if "registry" in spec.needs and ctx.registry is None:
            continue
        found = spec.check(ctx)
        if len(found.pos) == 0:
            continue
        pos = np.asarray(found.pos, dtype=int)
        if found.layer == "batch":
            geometry = found.geometry if found.geometry is not None else ctx.geoms[pos]
            comp = found.component_id if found.component_id is not None else ids.take(pos)  # no object per row
            row = rows[pos] if found.whole is None else np.where(found.whole, None, rows[pos].astype(object))
        else:
            geometry = found.geometry
            comp = found.component_id
            row = np.full(len(pos), None, dtype=object)
        parts.append(pd.DataFrame({  # sheet and column as categories: a few names for millions of issues
            "component_id": pd.array(comp, dtype="str"),
            "sheet": pd.Categorical(np.full(len(pos), ctx.notes.get("sheet"), dtype=object)),
            "row": pd.array(row, dtype="Int64"), "column": pd.Categorical(_letters(ctx.notes, found.field, len(pos))),
            "message": messages.add(found.message), "geometry": geometry,
            "order": np.full(len(pos), order, dtype=np.int16),
        }))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ("component_id", "row", "geometry")}).assign(
            sheet=pd.Categorical([]), column=pd.Categorical([]), message=pd.Series(dtype=np.int64),
            order=pd.Series(dtype=np.int16))
    return pd.concat(parts, ignore_index=True)


def issues(parts: list[pd.DataFrame], codes: list[str], severities: dict[str, str]) -> gpd.GeoDataFrame:
    """Findings of :func:`findings` as one report frame: batch-level issues first, then by row, in rule order.

    `codes` and `severities` are those the findings were made with. Column ``message`` holds
    the messages' keys (see :class:`Messages`); ``rule``, ``severity``, ``sheet`` and ``column`` are
    categorical.

    The frames of `parts` are emptied as their columns are put together (memory for one column at a time).

    `parts` are the findings on a batch whole, or on its parts in order and then on the whole.
    """
    rows = np.concatenate([p["row"].to_numpy(dtype="float64", na_value=-1.0) for p in parts])
    order = np.concatenate([p.pop("order").to_numpy(dtype=np.int16) for p in parts])
    at = np.lexsort((np.arange(len(rows)), order, rows))
    order = order[at]
    columns = {"rule": _categorical(codes, order),  # a byte or two an issue (see Report.issues)
               "severity": _categorical([severities.get(c, RULES[c].severity) for c in codes], order)}
    columns |= {name: joined_rows([p.pop(name) for p in parts], at)  # a column at a time: memory for one
                for name in ("component_id", "sheet", "row", "column", "message", "geometry")}
    found = pd.DataFrame(columns)
    found["row"] = found["row"].astype("Int64")
    return gpd.GeoDataFrame(found, geometry="geometry", crs=settings.default_crs)


def _categorical(named: list[str], keys: np.ndarray) -> pd.Categorical:
    """``named[k]`` for each key `k`, as a categorical whose categories sort as the names do.

    Examples
    --------
    >>> _categorical(["warn", "error"], np.array([0, 1, 0])).tolist()
    ['warn', 'error', 'warn']
    """
    names = sorted(set(named))
    return pd.Categorical.from_codes(np.array([names.index(n) for n in named], dtype=np.int16)[keys], names)


def _letters(notes: dict[str, Any], field: str | np.ndarray | None, n: int) -> np.ndarray:
    """The spreadsheet column letter of each finding's field (``"H,I"`` for a pair of coordinates), None if unknown."""
    letters = dict(notes.get("letters") or {})
    columns = notes.get("coordinate_columns") or ()
    if columns and all(c in letters for c in columns):
        letters["geometry"] = ",".join(letters[c] for c in columns)
    fields = np.full(n, field, dtype=object) if field is None or isinstance(field, str) else np.asarray(field)
    return np.array([letters.get(f) if f is not None else None for f in fields], dtype=object)
