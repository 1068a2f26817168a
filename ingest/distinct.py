"""A batch's column by its distinct values: a check or a conversion runs once per distinct value and is spread
back over the rows. A million meter readings name a handful of metrics, operators and regions, so checking
those columns costs a hash of each cell instead of a Python call per cell."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import numpy as np
import pandas as pd


class Distinct:
    """`uniques[codes]` is the column; `codes` says, per row, which distinct value it holds."""

    __slots__ = ("codes", "uniques")

    def __init__(self, codes: np.ndarray, uniques: np.ndarray) -> None:
        self.codes = codes
        self.uniques = uniques

    @classmethod
    def of(cls, values: pd.Series | np.ndarray) -> Distinct:
        """The distinct values of a column. Missing values are values too, each kind its own (None, NaN,
        pd.NA: pandas would merge them into NaN)."""
        cells = np.asarray(values, dtype=object)
        codes, found = pd.factorize(cells)
        uniques = list(found)
        missing = np.flatnonzero(codes < 0)
        kinds: dict[type, int] = {}
        for pos in missing:  # rare: judged one by one
            kind = type(cells[pos])
            if kind not in kinds:
                kinds[kind] = len(uniques)
                uniques.append(cells[pos])
            codes[pos] = kinds[kind]
        out = np.empty(len(uniques), dtype=object)
        for i, u in enumerate(uniques):  # one by one: a cell that is a sequence stays one value
            out[i] = u
        return cls(codes, out)

    def map(self, fn: Callable[[Any], Any], dtype: Any = object) -> np.ndarray:
        """fn of each row's value, called once per distinct value."""
        return self._each(fn, dtype)[self.codes]

    def isin(self, allowed: Collection[Any]) -> np.ndarray:
        """Per row, whether its value is one of `allowed`."""
        return self.map(allowed.__contains__, bool)

    def converted(self, fn: Callable[[Any], Any]) -> Distinct:
        """The column with fn applied to each value (the same rows share a value as before)."""
        return Distinct(self.codes, self._each(fn, object))

    def _each(self, fn: Callable[[Any], Any], dtype: Any) -> np.ndarray:
        """fn of each distinct value, in the order of `uniques`."""
        out = np.empty(len(self.uniques), dtype=dtype)
        for i, u in enumerate(self.uniques):
            out[i] = fn(u)
        return out

    def values(self) -> np.ndarray:
        """The column, one value per row."""
        return self.uniques[self.codes]

    def __len__(self) -> int:
        return len(self.codes)
