"""Array helpers shared by the data paths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import ArrayLike
from pandas.api.types import union_categoricals

NONE = np.array(None)
"""None as a 0-d object array: what ``np.where`` puts where a value is missing (numpy's stubs take no bare None)."""


def isin(values: ArrayLike, universe: ArrayLike) -> np.ndarray:
    """Membership by hashing, in Arrow: no Python object per value.

    Fast for large string columns, where pandas' Arrow-string ``isin`` converts the
    universe one scalar at a time.

    Examples
    --------
    >>> isin(pd.Series(["a", None, "c"], dtype="str"), ["c", "d"]).tolist()
    [False, False, True]
    >>> isin(np.array([None, None], dtype=object), ["c"]).tolist()
    [False, False]
    """
    given = pa.array(values, from_pandas=True)
    if pa.types.is_null(given.type):  # nothing but missing values: none is in anything
        return np.zeros(len(given), dtype=bool)
    found = pc.is_in(given, value_set=pa.array(universe, type=given.type, from_pandas=True), skip_nulls=True)
    return found.to_numpy(zero_copy_only=False)


class Positions:
    """Where values sit in an array of keys (first occurrence; -1 if absent), by hashing.

    Build once, look up many times; object arrays, since pandas' Arrow-string indexes
    are slow to build and to search at 420k keys.

    Examples
    --------
    >>> Positions(["a", "b", "a"])(["b", "c", "a"]).tolist()
    [1, -1, 0]
    >>> Positions([])(["a"]).tolist()
    [-1]
    """

    def __init__(self, keys: ArrayLike) -> None:
        index = pd.Index(np.asarray(keys, dtype=object), dtype=object)
        self._at = np.arange(len(index))
        if not index.is_unique:
            self._at = np.flatnonzero(~index.duplicated())
            index = index[self._at]
        self._index = index

    def __call__(self, values: ArrayLike) -> np.ndarray:
        found = self._index.get_indexer(pd.Index(np.asarray(values, dtype=object), dtype=object))
        if not len(self._at):
            return found  # all -1
        return np.where(found >= 0, self._at[np.maximum(found, 0)], -1)


def one_chunk(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with each Arrow-string column held in one chunk (the others as they are).

    Arrow takes rows from a column of several chunks by joining the chunks first: picking 50
    rows of a 420,000-row column in two chunks costs 0.46 ms, in one 0.005 ms, so every
    ``iloc`` of a few rows of the registry paid 9 ms. Joining the chunks once costs about
    20 ms at 420,000 components.

    Examples
    --------
    >>> two = pd.DataFrame({"a": pd.arrays.ArrowStringArray(pa.chunked_array([["x"], ["y"]]))})
    >>> one_chunk(two)["a"].array.__arrow_array__().num_chunks
    1
    """
    joined = {}
    for name in frame.columns:
        values = frame[name].array
        if isinstance(values, pd.arrays.ArrowStringArray):
            chunks = values.__arrow_array__()
            if chunks.num_chunks > 1:
                joined[name] = pd.Series(type(values)(pa.chunked_array([chunks.combine_chunks()]), dtype=values.dtype),
                                         index=frame.index)
    return frame.assign(**joined) if joined else frame


def joined_rows(pieces: list[pd.Series], at: np.ndarray) -> pd.Series:
    """The rows `at` of `pieces` joined end to end; `pieces` is emptied on the way.

    Arrow takes rows from a text column of several chunks by joining the chunks into a copy
    it holds beside the pieces and the result: three copies of the column at once (1.2 GB for
    the messages of 2.6 million issues). Here the pieces are joined into one chunk and let go
    before the rows are taken: two copies at most. Categorical pieces stay categorical (their
    categories joined); other columns are joined and taken by pandas. Empty pieces are left out.

    Examples
    --------
    >>> pieces = [pd.Series(["a", "b"], dtype="str"), pd.Series(["c"], dtype="str")]
    >>> joined_rows(pieces, np.array([2, 0])).tolist(), pieces
    (['c', 'a'], [])
    >>> joined_rows([pd.Series(pd.Categorical(["x"])), pd.Series(pd.Categorical(["y", None]))], np.array([1, 0])).dtype
    CategoricalDtype(categories=['x', 'y'], ordered=False, categories_dtype=str)
    """
    pieces[:] = [p for p in pieces if len(p)] or pieces[:1]
    if all(isinstance(p.dtype, pd.CategoricalDtype) for p in pieces):
        joined = pd.Series(union_categoricals([p.array for p in pieces]))
        pieces.clear()
        return joined.take(at).reset_index(drop=True)
    alike = len({(type(p.array), p.dtype) for p in pieces}) == 1
    if alike and isinstance(pieces[0].array, pd.arrays.ArrowStringArray):
        kind, dtype = type(pieces[0].array), pieces[0].dtype
        chunks = pa.chunked_array([c for p in pieces for c in p.array.__arrow_array__().chunks],
                                  type=pieces[0].array.__arrow_array__().type)
        pieces.clear()
        whole = chunks.combine_chunks()
        del chunks
        return pd.Series(kind(pa.chunked_array([whole.take(pa.array(at))]), dtype=dtype))
    joined = pd.concat(pieces, ignore_index=True)
    pieces.clear()
    return joined.take(at).reset_index(drop=True)
