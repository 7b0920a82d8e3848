"""The history of a training run: every logged number of every step, by name (a column per quantity)."""
from __future__ import annotations

import csv
import io

import numpy as np

__all__ = ["History"]


class History:
    """Every logged quantity, one value per step: ``history["k"]`` is a list of floats."""

    def __init__(self, columns: dict | None = None):
        self.columns: dict[str, list[float]] = {k: list(v) for k, v in (columns or {}).items()}

    def append(self, row: dict) -> None:
        n = len(self)
        for key, value in row.items():
            col = self.columns.setdefault(key, [float("nan")] * n)
            col.append(float(value))
        for key, col in self.columns.items():  # a column missing from this row
            if len(col) < n + 1:
                col.append(float("nan"))

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self.columns:
            raise KeyError(f"history has no column {key!r}; it has {sorted(self.columns)}")
        return np.asarray(self.columns[key], dtype=np.float64)

    def __contains__(self, key: str) -> bool:
        return key in self.columns

    def keys(self):
        return self.columns.keys()

    def to_dict(self) -> dict:
        return {k: list(v) for k, v in self.columns.items()}

    def to_csv(self) -> str:
        buf = io.StringIO()
        keys = list(self.columns)
        w = csv.writer(buf)
        w.writerow(keys)
        for row in zip(*(self.columns[k] for k in keys)):
            w.writerow([repr(v) for v in row])
        return buf.getvalue()
