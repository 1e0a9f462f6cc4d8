"""Array helpers shared by the data paths."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


def isin(values: ArrayLike, universe: ArrayLike) -> np.ndarray:
    """Membership by hashing.

    Fast for large string columns, where pandas' Arrow-string ``isin`` converts the
    universe one scalar at a time.
    """
    universe = pd.Series(np.asarray(universe, dtype=object), dtype=object)
    return pd.Series(np.asarray(values, dtype=object), dtype=object).isin(universe).to_numpy()
