"""The fitted preprocessing of a model, replayed with NumPy on column arrays (the service's hot path).

`ColumnTransformer.transform` wants a DataFrame and costs milliseconds per call; a request holds one applicant.
`CompiledPreprocessor` reads the fitted parameters (imputer statistics, missing indicators, scaler, one-hot
categories with their infrequent group) and applies exactly the same arithmetic to a mapping of column arrays.
Equality with the fitted transformer is tested on real rows, unseen categories and missing values included.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler


@dataclass
class NumericBlock:
    columns: list[str]
    fill: np.ndarray | None = None          # imputer statistics (None: passthrough, NaN kept)
    indicator: np.ndarray | None = None     # positions whose missingness is appended as 0/1 columns
    mean: np.ndarray | None = None          # scaler
    scale: np.ndarray | None = None

    @property
    def width(self) -> int:
        return len(self.columns) + (len(self.indicator) if self.indicator is not None else 0)

    def write(self, cols: Mapping[str, Any], out: np.ndarray) -> None:
        """The block's columns into `out` (n x width): straight in when nothing is imputed or scaled."""
        plain = self.fill is None and self.indicator is None and self.mean is None
        X = out if plain else np.empty((len(out), len(self.columns)))
        for j, name in enumerate(self.columns):
            X[:, j] = cols[name]
        if plain:
            return
        missing = np.isnan(X[:, self.indicator]) if self.indicator is not None else None
        if self.fill is not None:
            X = np.where(np.isnan(X), self.fill, X)
        if missing is not None:
            X = np.hstack([X, missing.astype(float)])
        if self.mean is not None:
            X = (X - self.mean) / self.scale
        out[:] = X


@dataclass
class OneHotColumn:
    name: str
    positions: dict[Any, int]   # category -> output column within this field's block
    width: int
    other: int | None           # the infrequent / unknown column, if the encoder has one

    def transform(self, values: np.ndarray, fill: str) -> np.ndarray:
        if len(values) > 16:
            return self.transform_many(values, fill)
        out = np.zeros((len(values), self.width))
        for i, value in enumerate(values):
            key = fill if isinstance(value, float) and np.isnan(value) else value  # as SimpleImputer: None stays
            j = self.positions.get(key, self.other)
            if j is not None:
                out[i, j] = 1.0
        return out

    def transform_many(self, values: np.ndarray, fill: str) -> np.ndarray:
        """The same mapping with one hash lookup per row in C (pandas), for batches."""
        values = values.copy()
        values[pd.isna(values) & np.not_equal(values, None)] = fill  # NaN takes the fill value, None stays
        keys = list(self.positions)
        found = pd.Index(keys, dtype=object).get_indexer(values)
        column = np.array([self.positions[k] if self.positions[k] is not None else -1 for k in keys] + [-1])
        column = column[found]  # found == -1 picks the trailing -1: unknown
        if self.other is not None:
            column = np.where(found < 0, self.other, column)
        out = np.zeros((len(values), self.width))
        rows = np.flatnonzero(column >= 0)
        out[rows, column[rows]] = 1.0
        return out


def compile_numeric(transformer: Any, columns: list[str]) -> NumericBlock:
    steps = transformer.steps if isinstance(transformer, Pipeline) else [("only", transformer)]
    block = NumericBlock(list(columns))
    for _, step in steps:
        if step == "passthrough" or (isinstance(step, FunctionTransformer) and step.func is None):
            continue
        if isinstance(step, SimpleImputer):
            block.fill = step.statistics_.astype(float)
            if step.indicator_ is not None:
                block.indicator = np.asarray(step.indicator_.features_)
        elif isinstance(step, StandardScaler):
            block.mean, block.scale = step.mean_, step.scale_
        else:
            raise TypeError(f"cannot compile numeric step {step!r}")
    return block


def compile_one_hot(encoder: OneHotEncoder, columns: list[str]) -> list[OneHotColumn]:
    out = []
    for i, name in enumerate(columns):
        infrequent = set(encoder.infrequent_categories_[i]) if encoder.infrequent_categories_[i] is not None else set()
        frequent = [c for c in encoder.categories_[i] if c not in infrequent]
        positions = {c: j for j, c in enumerate(frequent)}
        other = len(frequent) if infrequent else None
        for c in infrequent:
            positions[c] = other
        out.append(OneHotColumn(name, positions, len(frequent) + (1 if infrequent else 0), other))
    return out


class CompiledPreprocessor:
    """Same output as the fitted ColumnTransformer ('num' then 'cat' block), from column arrays."""

    def __init__(self, prep: ColumnTransformer):
        named = {name: (transformer, list(cols)) for name, transformer, cols in prep.transformers_}
        self.numeric = compile_numeric(*named["num"])
        imputer, encoder = named["cat"][0].steps[0][1], named["cat"][0].steps[-1][1]
        self.fill = imputer.fill_value
        self.categorical = compile_one_hot(encoder, named["cat"][1])
        self.names = list(prep.get_feature_names_out())

    def transform(self, cols: Mapping[str, Any]) -> np.ndarray:
        """The encoded rows, each block written into one preallocated matrix (no stacking copy)."""
        n = len(next(iter(cols.values())))
        width = self.numeric.width
        out = np.empty((n, width + sum(onehot.width for onehot in self.categorical)))
        self.numeric.write(cols, out[:, :width])
        for onehot in self.categorical:
            out[:, width:width + onehot.width] = onehot.transform(np.asarray(cols[onehot.name], dtype=object),
                                                                  self.fill)
            width += onehot.width
        return out
