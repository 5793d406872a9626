"""Features: application ratios plus per-applicant aggregates of the five history tables.

One code path for training, batch scoring and the API: `application_columns` (NumPy, any number of applicants) and
`HistoryLookup.rows` (the per-applicant lookup table written by `history_features` at featurize and loaded by the
service), joined by `feature_columns`. `build_features` wraps them for tables. Nothing here looks at TARGET.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from scoring import contract

logger = logging.getLogger(__name__)
KEY = "SK_ID_CURR"
EXT_SOURCES = ["EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"]
DROPPED = ["TARGET", *(f"FLAG_DOCUMENT_{i}" for i in (2, 4, 5, 7, 9, 10, 12, 15, 17, 19, 20, 21))]
"""Documents almost nobody provides carry no signal (the best kernels drop them too)."""


DAYS_PER_YEAR = 365.25


def years_before(days: Any) -> Any:
    """Kaggle's day counts (negative: days before the application) as years (positive): the age of DAYS_BIRTH."""
    return -days / DAYS_PER_YEAR


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return (numerator / denominator.replace(0, np.nan)).astype("float64")


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise ratio, missing where the denominator is 0 or missing (no warnings, any length)."""
    numerator, denominator = np.asarray(numerator, dtype="float64"), np.asarray(denominator, dtype="float64")
    safe = np.where(denominator == 0, np.nan, denominator)
    return numerator / safe


def categorical_columns(table: str = "application_train") -> list[str]:
    return [c.name for c in contract.table(table).columns if c.kind == "category"]


CATEGORICAL = frozenset(categorical_columns())
APPLICATION_INPUTS = [c for c in contract.table("application_test").names if c not in DROPPED and c != KEY]
"""The application fields the model reads (Kaggle's columns less the key, TARGET and the empty documents)."""
NUMERIC_INPUTS = [name for name in APPLICATION_INPUTS if name not in CATEGORICAL]
CATEGORICAL_INPUTS = [name for name in APPLICATION_INPUTS if name in CATEGORICAL]


def ext_source_summary(ext: np.ndarray) -> dict[str, np.ndarray]:
    """Mean, min, max, standard deviation (n-1), product and missing count of the three EXT_SOURCE (rows x 3)."""
    present = ~np.isnan(ext)
    count = present.sum(axis=1)
    total = np.where(present, ext, 0.0).sum(axis=1)
    mean = _divide(total, count)
    squares = np.where(present, (ext - mean[:, None]) ** 2, 0.0).sum(axis=1)
    return {
        "EXT_SOURCE_MEAN": mean,
        "EXT_SOURCE_MIN": np.where(count > 0, np.where(present, ext, np.inf).min(axis=1), np.nan),
        "EXT_SOURCE_MAX": np.where(count > 0, np.where(present, ext, -np.inf).max(axis=1), np.nan),
        "EXT_SOURCE_STD": np.sqrt(np.where(count > 1, _divide(squares, count - 1), np.nan)),
        "EXT_SOURCE_PROD": np.where(count == 3, np.prod(np.where(present, ext, 1.0), axis=1), np.nan),
        "EXT_SOURCE_MISSING": (3 - count).astype("int8"),
    }


def application_columns(cols: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The applicant's own features from raw application fields, with NumPy only.

    `cols` maps each field of APPLICATION_INPUTS to an array of any length (one applicant in the service, a whole
    table in training). DAYS_EMPLOYED's 365243 (pensioners, unemployed) becomes missing, with a flag.
    """
    # All numeric fields converted in one call (a row of the service converts 92 one-element lists at once).
    numbers = np.array([cols[name] for name in NUMERIC_INPUTS], dtype="float64").reshape(len(NUMERIC_INPUTS), -1)
    converted: dict[str, np.ndarray] = dict(zip(NUMERIC_INPUTS, numbers))
    for name in CATEGORICAL_INPUTS:
        values = np.asarray(cols[name], dtype=object)
        if len(values) > 16 or not all(isinstance(v, str) for v in values):
            # plain strings, None for missing: one-hot encoding and the API see the same
            values = np.where(pd.isna(values), None, values)
        converted[name] = values
    out = {name: converted[name] for name in APPLICATION_INPUTS}  # the contract's column order, as before
    days_employed = out["DAYS_EMPLOYED"]
    anomaly = days_employed == contract.DAYS_SENTINEL
    out["DAYS_EMPLOYED"] = np.where(anomaly, np.nan, days_employed)
    out.update({
        "DAYS_EMPLOYED_ANOMALY": anomaly.astype("int8"),
        "CREDIT_TO_INCOME": _divide(out["AMT_CREDIT"], out["AMT_INCOME_TOTAL"]),
        "ANNUITY_TO_INCOME": _divide(out["AMT_ANNUITY"], out["AMT_INCOME_TOTAL"]),
        "ANNUITY_TO_CREDIT": _divide(out["AMT_ANNUITY"], out["AMT_CREDIT"]),
        "CREDIT_TO_GOODS": _divide(out["AMT_CREDIT"], out["AMT_GOODS_PRICE"]),
        "INCOME_PER_PERSON": _divide(out["AMT_INCOME_TOTAL"], out["CNT_FAM_MEMBERS"]),
        "AGE_YEARS": years_before(out["DAYS_BIRTH"]),
        "EMPLOYED_TO_AGE": _divide(out["DAYS_EMPLOYED"], out["DAYS_BIRTH"]),
        "PHONE_CHANGE_TO_AGE": _divide(out["DAYS_LAST_PHONE_CHANGE"], out["DAYS_BIRTH"]),
    })
    out.update(ext_source_summary(np.column_stack([out[name] for name in EXT_SOURCES])))
    return out


def application_features(apps: pd.DataFrame) -> pd.DataFrame:
    """application_columns on a table, indexed by SK_ID_CURR."""
    return build_features(apps, pd.DataFrame(index=pd.Index([], name=KEY)))


def _aggregate(frame: pd.DataFrame, by: str, spec: dict[str, list[str]], prefix: str) -> pd.DataFrame:
    grouped = frame.groupby(by, observed=True).agg(spec)
    grouped.columns = [f"{prefix}_{col}_{fn}".upper() for col, fn in grouped.columns]
    return grouped


def bureau_features(bureau: pd.DataFrame, balance: pd.DataFrame | None) -> pd.DataFrame:
    """Credits reported by other institutions: volume, debt, overdue amounts and monthly delinquency."""
    b = bureau.assign(
        ACTIVE=(bureau["CREDIT_ACTIVE"] == "Active").astype("int8"),
        DEBT_TO_CREDIT=_ratio(bureau["AMT_CREDIT_SUM_DEBT"], bureau["AMT_CREDIT_SUM"]),
        OVERDUE=(bureau["CREDIT_DAY_OVERDUE"] > 0).astype("int8"),
    )
    if balance is not None and len(balance):
        status = balance["STATUS"].astype("object")
        late = status.isin(["1", "2", "3", "4", "5"])
        monthly = pd.DataFrame({"SK_ID_BUREAU": balance["SK_ID_BUREAU"], "LATE": late.astype("int8"),
                                "SEVERE": status.isin(["3", "4", "5"]).astype("int8"), "MONTHS": 1})
        per_credit = monthly.groupby("SK_ID_BUREAU").agg(BB_MONTHS=("MONTHS", "sum"), BB_LATE_SHARE=("LATE", "mean"),
                                                         BB_SEVERE=("SEVERE", "max"))
        b = b.join(per_credit, on="SK_ID_BUREAU")
    spec = {
        "SK_ID_BUREAU": ["count"], "ACTIVE": ["mean", "sum"], "DAYS_CREDIT": ["min", "max", "mean"],
        "DAYS_CREDIT_ENDDATE": ["max"], "CREDIT_DAY_OVERDUE": ["max", "mean"], "OVERDUE": ["sum"],
        "AMT_CREDIT_SUM": ["sum", "mean", "max"], "AMT_CREDIT_SUM_DEBT": ["sum", "mean"],
        "AMT_CREDIT_SUM_OVERDUE": ["sum", "max"], "AMT_CREDIT_MAX_OVERDUE": ["max", "mean"],
        "DEBT_TO_CREDIT": ["mean", "max"], "CNT_CREDIT_PROLONG": ["sum"], "DAYS_CREDIT_UPDATE": ["mean"],
    }
    if "BB_MONTHS" in b:
        spec.update({"BB_MONTHS": ["sum"], "BB_LATE_SHARE": ["mean", "max"], "BB_SEVERE": ["max"]})
    return _aggregate(b, KEY, spec, "BURO")


def previous_features(prev: pd.DataFrame) -> pd.DataFrame:
    """Earlier Home Credit applications: how many, how often refused, how much asked versus granted."""
    status = prev["NAME_CONTRACT_STATUS"].astype("object")
    p = prev.assign(
        APPROVED=(status == "Approved").astype("int8"),
        REFUSED=(status == "Refused").astype("int8"),
        APP_TO_CREDIT=_ratio(prev["AMT_APPLICATION"], prev["AMT_CREDIT"]),
        DAYS_LAST_DUE_1ST_VERSION=prev["DAYS_LAST_DUE_1ST_VERSION"].where(
            prev["DAYS_LAST_DUE_1ST_VERSION"] != contract.DAYS_SENTINEL),
    )
    spec = {
        "SK_ID_PREV": ["count"], "APPROVED": ["mean", "sum"], "REFUSED": ["mean", "sum"],
        "AMT_APPLICATION": ["mean", "max"], "AMT_CREDIT": ["mean", "max"], "APP_TO_CREDIT": ["mean", "min"],
        "AMT_ANNUITY": ["mean"], "CNT_PAYMENT": ["mean", "sum"], "DAYS_DECISION": ["max", "mean"],
        "DAYS_LAST_DUE_1ST_VERSION": ["max"],
    }
    return _aggregate(p, KEY, spec, "PREV")


def pos_features(pos: pd.DataFrame) -> pd.DataFrame:
    p = pos.assign(LATE=(pos["SK_DPD"] > 0).astype("int8"))
    spec = {"MONTHS_BALANCE": ["count", "max"], "SK_DPD": ["max", "mean"], "SK_DPD_DEF": ["max", "mean"],
            "LATE": ["mean"], "CNT_INSTALMENT_FUTURE": ["mean"], "SK_ID_PREV": ["nunique"]}
    return _aggregate(p, KEY, spec, "POS")


def installments_features(inst: pd.DataFrame) -> pd.DataFrame:
    """Instalment history: days late (positive) or early, and how much of each instalment was paid."""
    days_late = inst["DAYS_ENTRY_PAYMENT"] - inst["DAYS_INSTALMENT"]
    i = inst.assign(
        DAYS_LATE=days_late.clip(lower=0), DAYS_EARLY=(-days_late).clip(lower=0),
        LATE=(days_late > 0).astype("int8"),
        PAID_SHARE=_ratio(inst["AMT_PAYMENT"], inst["AMT_INSTALMENT"]),
        UNDERPAID=(inst["AMT_INSTALMENT"] - inst["AMT_PAYMENT"]).clip(lower=0),
    )
    spec = {"NUM_INSTALMENT_NUMBER": ["count"], "DAYS_LATE": ["max", "mean", "sum"], "DAYS_EARLY": ["mean"],
            "LATE": ["mean", "sum"], "PAID_SHARE": ["mean", "min"], "UNDERPAID": ["sum", "mean", "max"],
            "AMT_PAYMENT": ["sum", "mean"], "AMT_INSTALMENT": ["sum"]}
    return _aggregate(i, KEY, spec, "INST")


def credit_card_features(cards: pd.DataFrame) -> pd.DataFrame:
    c = cards.assign(
        UTILISATION=_ratio(cards["AMT_BALANCE"], cards["AMT_CREDIT_LIMIT_ACTUAL"]),
        LATE=(cards["SK_DPD"] > 0).astype("int8"),
        PAYMENT_TO_MIN=_ratio(cards["AMT_PAYMENT_CURRENT"], cards["AMT_INST_MIN_REGULARITY"]),
    )
    spec = {"MONTHS_BALANCE": ["count"], "AMT_BALANCE": ["mean", "max"], "AMT_CREDIT_LIMIT_ACTUAL": ["max"],
            "UTILISATION": ["mean", "max"], "AMT_DRAWINGS_CURRENT": ["mean", "sum"], "SK_DPD": ["max", "mean"],
            "LATE": ["mean"], "PAYMENT_TO_MIN": ["mean"], "CNT_DRAWINGS_CURRENT": ["mean"]}
    return _aggregate(c, KEY, spec, "CC")


HISTORY_SOURCES = {"BURO": "bureau + bureau_balance", "PREV": "previous applications", "POS": "POS / cash loans",
                   "INST": "instalment payments", "CC": "credit card balance",
                   "HAS": "history coverage (which tables have rows)"}
"""The prefix each history table's aggregates carry, and the table it names; other fields are the application's."""


def field_family(field: str) -> str:
    """Which source a feature comes from, read from its prefix."""
    return HISTORY_SOURCES.get(field.split("_", 1)[0], "application (own fields and ratios)")


HISTORY_BUILDERS: dict[str, tuple[tuple[str, ...], Callable[..., pd.DataFrame]]] = {
    "bureau": (("bureau", "bureau_balance"), bureau_features),
    "previous": (("previous_application",), previous_features),
    "pos": (("POS_CASH_balance",), pos_features),
    "installments": (("installments_payments",), installments_features),
    "credit_card": (("credit_card_balance",), credit_card_features),
}


COVERAGE_FLAGS = {"bureau": "HAS_BUREAU", "previous_application": "HAS_PREVIOUS", "POS_CASH_balance": "HAS_POS",
                  "installments_payments": "HAS_INSTALMENTS", "credit_card_balance": "HAS_CREDIT_CARD"}
"""Per applicant, 1 when the table has rows for them, 0 when it has none; no column when the table is absent (not
collected for anyone: then nobody's 0 would mean "no credit there")."""
PREVIOUS_NOT_COLLECTED = "PREV_NOT_COLLECTED"
"""1 when the applicant's POS, instalment or card rows name loans (SK_ID_PREV) that previous_application does not
hold: their previous applications were not (all) collected, so HAS_PREVIOUS = 0 is not "no earlier loan"."""
PREVIOUS_CHILDREN = ("POS_CASH_balance", "installments_payments", "credit_card_balance")
ZERO_WHEN_ABSENT = frozenset(COVERAGE_FLAGS.values()) | {PREVIOUS_NOT_COLLECTED}
"""Columns that are 0, not missing, for an applicant without a row in the lookup (like the counts)."""


def history_coverage(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Which history tables have rows for each applicant seen in any of them (see COVERAGE_FLAGS), and whether their
    previous applications were collected (PREVIOUS_NOT_COLLECTED, when the data can tell).

    What the data can tell: a table absent from the data was collected for nobody; loans seen in POS, instalment or
    card rows but missing from previous_application show previous applications that were not collected. What it
    cannot: whether an applicant without bureau rows has no credit elsewhere or was never looked up at the bureau
    (nothing else names bureau credits by applicant), and the same for an applicant without any Home Credit row.
    """
    flags = {name: pd.Series(1.0, index=pd.Index(tables[table][KEY].unique(), name=KEY))
             for table, name in COVERAGE_FLAGS.items() if table in tables}
    children = [tables[t][[KEY, "SK_ID_PREV"]] for t in PREVIOUS_CHILDREN if t in tables]
    if "previous_application" in tables and children:
        loans = pd.concat(children, ignore_index=True)
        orphans = loans.loc[~loans["SK_ID_PREV"].isin(tables["previous_application"]["SK_ID_PREV"]), KEY]
        flags[PREVIOUS_NOT_COLLECTED] = pd.Series(1.0, index=pd.Index(orphans.unique(), name=KEY))
    if not flags:
        return pd.DataFrame(index=pd.Index([], name=KEY, dtype="int64"))
    return pd.DataFrame(flags).fillna(0.0).rename_axis(KEY)


def history_features(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The per-applicant lookup table: every history aggregate, one row per SK_ID_CURR seen in any table.

    A table that is absent (real data may lack some) gives no columns; the model then trains without them.
    """
    parts = []
    for inputs, builder in HISTORY_BUILDERS.values():
        if inputs[0] not in tables:
            logger.warning("no %s table: its features are left out", inputs[0])
            continue
        parts.append(builder(*(tables.get(t) for t in inputs)))
    coverage = history_coverage(tables)
    if len(coverage.columns):
        parts.append(coverage)
    if not parts:
        return pd.DataFrame(index=pd.Index([], name=KEY, dtype="int64"))
    history = pd.concat(parts, axis=1, join="outer").astype("float64")
    history.index.name = KEY
    return history


def holdout_split(ids: np.ndarray, target: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The stratified split of the labelled applicants' ids into (fit, holdout), each in its drawn order (the
    holdout is only used by evaluate): the rows of `split_holdout`, from the ids and labels alone."""
    from sklearn.model_selection import train_test_split

    fit, holdout = train_test_split(np.asarray(ids), test_size=fraction, stratify=np.asarray(target),
                                    random_state=seed)
    return fit, holdout


def split_holdout(features: pd.DataFrame, target: pd.Series, fraction: float, seed: int
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`holdout_split` applied to a feature table, TARGET added as its last column."""
    labelled = features.assign(TARGET=target.reindex(features.index).to_numpy())
    fit, holdout = holdout_split(labelled.index.to_numpy(), labelled["TARGET"].to_numpy(), fraction, seed)
    return labelled.loc[fit], labelled.loc[holdout]


@dataclass(frozen=True)
class HistoryLookup:
    """The per-applicant history aggregates as an array, looked up by SK_ID_CURR (one id or a million)."""

    index: pd.Index
    values: np.ndarray
    columns: list[str]

    @classmethod
    def from_frame(cls, history: pd.DataFrame) -> HistoryLookup:
        return cls(pd.Index(history.index), history.to_numpy(dtype="float64"), list(history.columns))

    @cached_property
    def positions(self) -> dict[Any, int]:
        """SK_ID_CURR -> row, for the service's one-applicant lookups (a hash lookup, no pandas call)."""
        return {key: i for i, key in enumerate(self.index.tolist())}

    @cached_property
    def counts(self) -> np.ndarray:
        """The counts and coverage flags: 0 for an applicant without a row."""
        return np.array([name.endswith("_COUNT") or name in ZERO_WHEN_ABSENT for name in self.columns], dtype=bool)

    def row_of(self, ids: np.ndarray) -> np.ndarray:
        """Each id's row in the lookup, -1 for an applicant without history: a hash lookup for a few ids,
        pandas' indexer for many."""
        ids = np.asarray(ids)
        if len(ids) <= 16:
            return np.array([self.positions.get(key, -1) for key in ids.tolist()], dtype=np.intp)
        return self.index.get_indexer(ids)

    def found(self, ids: np.ndarray) -> np.ndarray:
        return self.row_of(ids) >= 0

    def rows(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """History columns for `ids`: missing for an unknown applicant (a first-time customer); a count and a
        coverage flag are 0 wherever the applicant has no row in that table."""
        position = self.row_of(ids)
        known = position >= 0
        values = np.full((len(position), len(self.columns)), np.nan)
        values[known] = self.values[position[known]]
        values[:, self.counts] = np.nan_to_num(values[:, self.counts], nan=0.0)
        return dict(zip(self.columns, values.T))


def feature_columns(own: Mapping[str, Any], ids: np.ndarray, history: HistoryLookup) -> dict[str, np.ndarray]:
    """Own features plus history, as column arrays: the single code path of training, batch and the service."""
    return {**own, **history.rows(ids)}


def build_features(apps: pd.DataFrame, history: pd.DataFrame | HistoryLookup, protected: Sequence[str] = ()
                   ) -> pd.DataFrame:
    """Model input for any number of applications, as a table indexed by SK_ID_CURR.

    `protected` (params.yaml `protected.fields`, e.g. CODE_GENDER) are left out: never model inputs, they stay in
    the raw applications, where evaluate measures fairness by them."""
    unknown = sorted(set(protected) - set(APPLICATION_INPUTS))
    if unknown:
        raise ValueError(f"protected field(s) {unknown} are not application fields the model could read: fix "
                         "params.yaml protected.fields")
    ids = apps[KEY].to_numpy()
    own = application_columns({name: apps[name].to_numpy() for name in APPLICATION_INPUTS})
    lookup = history if isinstance(history, HistoryLookup) else HistoryLookup.from_frame(history)
    columns = feature_columns(own, ids, lookup)
    return pd.DataFrame({k: v for k, v in columns.items() if k not in protected}, index=pd.Index(ids, name=KEY))


def align(X: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The model's columns in the model's order; a history table absent at scoring time leaves its columns missing."""
    missing = [c for c in columns if c not in X.columns]
    if missing:
        logger.warning("%d model feature(s) absent from the input (missing history tables?), e.g. %s",
                       len(missing), missing[:3])
    return X.reindex(columns=columns)
