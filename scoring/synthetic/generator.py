"""Synthetic Home Credit data with Kaggle's exact schema and a documented latent risk.

Every column's marginal comes from `resources/calibration.json` (percentiles and category frequencies derived from
real rows, see tools/calibrate.py) by quantile mapping. A few latent variables tie the columns together:

* ``r_ext``  - what the external bureaux see: EXT_SOURCE_1..3 are noisy, decreasing readings of it;
* ``r_hist`` - payment behaviour: drives late instalments, under-payments, POS and card days past due, overdue bureau
  credits, refused previous applications and card utilisation (only visible through the secondary tables);
* ``wealth`` - income and loan size; ``r_noise`` - what no data shows.

The true default probability is ``sigmoid(alpha + 0.9 r_ext + 0.7 r_hist + 0.5 r_noise + application effects)``
where the application effects are explicit functions of observable columns (age, employment length, gender,
education, debt burden, loan-to-goods ratio, region rating, car ownership, social-circle defaults); ``alpha`` is
solved so that the default rate matches ``default_rate``. TARGET is drawn from that probability, which is written
beside the data (``TRUE_PD``, never a feature) so evaluation can report the oracle AUC.

Applicants are generated in chunks (own random stream per chunk) so memory stays flat at Kaggle's full size.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd
from scipy.special import expit, ndtr

from scoring import contract
from scoring.settings import SyntheticDrift, SyntheticSettings

logger = logging.getLogger(__name__)
DAYS_PER_MONTH = 30.4


@dataclass
class Latent:
    r_ext: np.ndarray
    r_hist: np.ndarray
    r_noise: np.ndarray
    wealth: np.ndarray


@cache
def calibration() -> dict:
    text = resources.files("scoring.synthetic").joinpath("resources/calibration.json").read_text()
    return json.loads(text)


def _spec(table: str, column: str) -> dict:
    name = "application_train" if table == "application_test" else table
    return calibration()["tables"][name]["columns"][column]


# ---- marginals --------------------------------------------------------------------------------------------------
def quantile_map(quantiles: list[float], u: np.ndarray) -> np.ndarray:
    """Inverse CDF by linear interpolation between the 101 calibrated percentiles."""
    return np.interp(np.clip(u, 0, 1) * 100, np.arange(101), np.asarray(quantiles, dtype=float))


def numeric_from_spec(spec: dict, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = quantile_map(spec["quantiles"], u)
    if spec.get("integral"):
        x = np.round(x)
    x[rng.random(len(u)) < spec["missing"]] = np.nan
    return x


def category_from_spec(spec: dict, u: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Categories by inverse CDF of `u` (so a latent u orders them), plus missing values at the real rate."""
    labels = np.array(list(spec["freq"]), dtype=object)
    cum = np.cumsum(list(spec["freq"].values()))
    out = labels[np.minimum(np.searchsorted(cum / cum[-1], u, side="right"), len(labels) - 1)]
    if rng is not None and spec["missing"] > 0:
        out[rng.random(len(u)) < spec["missing"]] = None
    return out


def sample_counts(histogram: list[float], n: int, rng: np.random.Generator, first: int = 0) -> np.ndarray:
    """Counts drawn from a calibrated histogram whose bin i holds the share of parents with `first + i` children."""
    cum = np.cumsum(histogram)
    return np.searchsorted(cum / cum[-1], rng.random(n), side="right") + first


def correlated_uniform(driver: np.ndarray, rho: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian copula: a uniform whose normal score has correlation `rho` with the standard-normal `driver`."""
    return ndtr(rho * driver + np.sqrt(1 - rho**2) * rng.standard_normal(len(driver)))


def fill_generic(table: str, n: int, rng: np.random.Generator, skip: set[str]) -> dict[str, np.ndarray]:
    """Independent draws from the calibrated marginal of every column not generated with structure."""
    out: dict[str, np.ndarray] = {}
    for col in contract.table(table).columns:
        if col.name in skip or col.kind == "key":
            continue
        spec = _spec(table, col.name)
        u = rng.random(n)
        out[col.name] = category_from_spec(spec, u, rng) if col.kind == "category" else numeric_from_spec(spec, u, rng)
    return out


def to_frame(table: str, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Columns in contract order with Kaggle's dtypes (ints stay ints where the contract forbids missing values)."""
    frame = pd.DataFrame({name: columns[name] for name in contract.table(table).names})
    for col in contract.table(table).columns:
        if col.kind in ("key", "int", "flag") and not col.nullable:
            frame[col.name] = frame[col.name].astype("int64")
    return frame


# ---- applications -----------------------------------------------------------------------------------------------
def draw_latent(n: int, rng: np.random.Generator) -> Latent:
    return Latent(*(rng.standard_normal(n) for _ in range(4)))


def employment_columns(cols: dict, n: int, rng: np.random.Generator) -> None:
    """Pensioners and the unemployed carry Kaggle's DAYS_EMPLOYED = 365243 and ORGANIZATION_TYPE 'XNA'."""
    not_working = np.isin(cols["NAME_INCOME_TYPE"], ["Pensioner", "Unemployed"])
    birth_spec = _spec("application_train", "DAYS_BIRTH")
    u_age = rng.random(n)
    u_age[not_working] = rng.random(not_working.sum()) * 0.35  # pensioners are old (DAYS_BIRTH most negative)
    cols["DAYS_BIRTH"] = np.round(quantile_map(birth_spec["quantiles"], u_age))
    emp_q = np.asarray(_spec("application_train", "DAYS_EMPLOYED")["quantiles"])
    working_q = emp_q[emp_q < 0]
    employed = quantile_map(list(np.interp(np.linspace(0, len(working_q) - 1, 101), np.arange(len(working_q)),
                                           working_q)), rng.random(n))
    max_days = cols["DAYS_BIRTH"] + 18 * 365  # employed since age 18 at the earliest
    days_employed = np.round(np.maximum(employed, max_days))
    cols["DAYS_EMPLOYED"] = np.where(not_working, contract.DAYS_SENTINEL, np.minimum(days_employed, -1))
    org = cols["ORGANIZATION_TYPE"]
    org[not_working] = "XNA"
    org[~not_working & (org == "XNA")] = "Business Entity Type 3"
    occupation = cols["OCCUPATION_TYPE"]
    occupation[not_working] = None


def amount_columns(cols: dict, latent: Latent, rng: np.random.Generator) -> None:
    """Income and goods price follow wealth; credit and annuity keep Kaggle's credit/goods and term ratios."""
    n = len(latent.wealth)
    income = _spec("application_train", "AMT_INCOME_TOTAL")
    cols["AMT_INCOME_TOTAL"] = np.round(quantile_map(income["quantiles"], correlated_uniform(latent.wealth, 0.85, rng)))
    goods = _spec("application_train", "AMT_GOODS_PRICE")
    goods_price = np.round(quantile_map(goods["quantiles"], correlated_uniform(latent.wealth, 0.5, rng)) / 4500) * 4500
    ratios = calibration()["ratios"]
    credit_over_goods = np.clip(quantile_map(ratios["credit_over_goods"], rng.random(n)), 1.0, 1.4)
    cols["AMT_CREDIT"] = np.round(goods_price * credit_over_goods, 1)
    term = quantile_map(ratios["credit_over_annuity"], rng.random(n))
    cols["AMT_ANNUITY"] = np.round(cols["AMT_CREDIT"] / term, 1)
    cols["AMT_ANNUITY"][rng.random(n) < 4e-5] = np.nan
    revolving = cols["NAME_CONTRACT_TYPE"] == "Revolving loans"
    cols["AMT_GOODS_PRICE"] = np.where(revolving & (rng.random(n) < 0.01), np.nan, goods_price)


def family_columns(cols: dict, latent: Latent, rng: np.random.Generator) -> None:
    n = len(latent.r_ext)
    married = np.isin(cols["NAME_FAMILY_STATUS"], ["Married", "Civil marriage"])
    cols["CNT_FAM_MEMBERS"] = cols["CNT_CHILDREN"] + 1 + married
    no_car = cols["FLAG_OWN_CAR"] == "N"
    cols["OWN_CAR_AGE"] = np.where(no_car, np.nan, np.round(
        quantile_map(_spec("application_train", "OWN_CAR_AGE")["quantiles"], rng.random(n))))
    observed = cols["OBS_30_CNT_SOCIAL_CIRCLE"]
    default_share = expit(-3.0 + 0.5 * latent.r_hist)
    def_30 = rng.binomial(np.nan_to_num(observed).astype(int), default_share).astype(float)
    cols["DEF_30_CNT_SOCIAL_CIRCLE"] = np.where(np.isnan(observed), np.nan, def_30)
    cols["OBS_60_CNT_SOCIAL_CIRCLE"] = observed
    cols["DEF_60_CNT_SOCIAL_CIRCLE"] = np.where(
        np.isnan(observed), np.nan, np.minimum(def_30 + rng.binomial(1, 0.1, n), observed))


def building_columns(cols: dict, rng: np.random.Generator) -> None:
    """The 42 building statistics are missing together (no housing record) and the AVG/MODE/MEDI agree."""
    n = len(cols["CODE_GENDER"])
    specs = {c: _spec("application_train", c) for c in contract.BUILDING_COLUMNS}
    base_missing = min(s["missing"] for s in specs.values())
    no_record = rng.random(n) < base_missing
    for stat in contract.BUILDING_STATS:
        u = rng.random(n)
        extra = (specs[f"{stat}_AVG"]["missing"] - base_missing) / (1 - base_missing)
        missing = no_record | (rng.random(n) < extra)
        for agg in ("AVG", "MODE", "MEDI"):
            spec = specs[f"{stat}_{agg}"]
            values = quantile_map(spec["quantiles"], np.clip(u + rng.normal(0, 0.02, n), 0, 1))
            cols[f"{stat}_{agg}"] = np.where(missing, np.nan, np.round(values, 4))
    total = quantile_map(_spec("application_train", "TOTALAREA_MODE")["quantiles"], rng.random(n))
    cols["TOTALAREA_MODE"] = np.where(no_record, np.nan, np.round(total, 4))
    for name in ("FONDKAPREMONT_MODE", "HOUSETYPE_MODE", "WALLSMATERIAL_MODE", "EMERGENCYSTATE_MODE"):
        cols[name] = np.where(no_record, None, cols[name])


def ext_source_columns(cols: dict, latent: Latent, rng: np.random.Generator, age_years: np.ndarray) -> None:
    """EXT_SOURCE_k: decreasing noisy readings of r_ext (EXT_SOURCE_1 also rises with age, as in Kaggle)."""
    age_z = (age_years - 43) / 12
    drivers = {
        "EXT_SOURCE_1": -0.55 * latent.r_ext + 0.45 * age_z,
        "EXT_SOURCE_2": -0.7 * latent.r_ext,
        "EXT_SOURCE_3": -0.6 * latent.r_ext + 0.15 * age_z,
    }
    for name, driver in drivers.items():
        scale = np.sqrt(np.var(driver) + 1e-12) if len(driver) > 1 else 1.0
        rho = min(0.9, float(scale))
        spec = _spec("application_train", name)
        values = quantile_map(spec["quantiles"], correlated_uniform(driver / max(scale, 1e-6), rho, rng))
        values[rng.random(len(values)) < spec["missing"]] = np.nan
        cols[name] = np.round(values, 6)


def application_effects(cols: dict) -> np.ndarray:
    """Observable part of the log-odds of default, in readable units (documented in the README)."""
    age_years = -cols["DAYS_BIRTH"] / 365.25
    employed = cols["DAYS_EMPLOYED"] != contract.DAYS_SENTINEL
    years_employed = np.where(employed, -cols["DAYS_EMPLOYED"] / 365.25, 0.0)
    burden = cols["AMT_ANNUITY"] / cols["AMT_INCOME_TOTAL"]
    markup = cols["AMT_CREDIT"] / np.where(np.isnan(cols["AMT_GOODS_PRICE"]), cols["AMT_CREDIT"],
                                           cols["AMT_GOODS_PRICE"])
    education = pd.Series(cols["NAME_EDUCATION_TYPE"]).map({
        "Higher education": -0.35, "Academic degree": -0.6, "Lower secondary": 0.3, "Incomplete higher": -0.1,
    }).fillna(0.0).to_numpy()
    return (
        -0.022 * (age_years - 43)
        - 0.06 * np.minimum(years_employed, 15)
        - 0.25 * ~employed
        + 0.3 * (cols["CODE_GENDER"] == "M")
        + education
        + 1.5 * np.nan_to_num(np.clip(burden, 0, 0.6) - 0.15)
        + 2.0 * np.nan_to_num(np.clip(markup - 1.1, -0.1, 0.3))
        + 0.2 * (cols["REGION_RATING_CLIENT_W_CITY"] - 2)
        - 0.2 * (cols["FLAG_OWN_CAR"] == "Y")
        + 0.25 * (np.nan_to_num(cols["DEF_30_CNT_SOCIAL_CIRCLE"]) > 0)
    )


def solve_intercept(logit_wo_alpha: np.ndarray, rate: float) -> float:
    """Intercept giving the wanted mean default probability (bisection: the mean is monotone in alpha)."""
    lo, hi = -15.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if expit(mid + logit_wo_alpha).mean() < rate else (lo, mid)
    return (lo + hi) / 2


def risk_logit(cols: dict, latent: Latent) -> np.ndarray:
    return 0.9 * latent.r_ext + 0.7 * latent.r_hist + 0.5 * latent.r_noise + application_effects(cols)


def generate_application_columns(n: int, latent: Latent, rng: np.random.Generator) -> dict[str, np.ndarray]:
    structured = {
        "TARGET", "DAYS_BIRTH", "DAYS_EMPLOYED", "AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY", "AMT_GOODS_PRICE",
        "CNT_FAM_MEMBERS", "OWN_CAR_AGE", "DEF_30_CNT_SOCIAL_CIRCLE", "OBS_60_CNT_SOCIAL_CIRCLE",
        "DEF_60_CNT_SOCIAL_CIRCLE", "EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3", "TOTALAREA_MODE",
        *contract.BUILDING_COLUMNS,
    }
    cols = fill_generic("application_train", n, rng, structured)
    cols["CNT_CHILDREN"] = np.nan_to_num(cols["CNT_CHILDREN"]).astype(int)
    employment_columns(cols, n, rng)
    amount_columns(cols, latent, rng)
    family_columns(cols, latent, rng)
    building_columns(cols, rng)
    ext_source_columns(cols, latent, rng, -cols["DAYS_BIRTH"] / 365.25)
    return cols


def apply_drift(cols: dict, drift: SyntheticDrift, rng: np.random.Generator) -> None:
    """Shift income, age and EXT_SOURCE, and move a share of applicants to rare (but valid) categories."""
    n = len(cols["CODE_GENDER"])
    cols["AMT_INCOME_TOTAL"] = np.round(cols["AMT_INCOME_TOTAL"] * drift.income_factor)
    younger = np.round(cols["DAYS_BIRTH"] - drift.age_shift_years * 365.25)
    cols["DAYS_BIRTH"] = np.minimum(younger, -18 * 366)
    for name in ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"):
        cols[name] = np.clip(cols[name] + drift.ext_source_shift, 0, 1)
    moved = (rng.random(n) < drift.rare_category_share) & (cols["ORGANIZATION_TYPE"] != "XNA")
    cols["ORGANIZATION_TYPE"][moved] = rng.choice(["Mobile", "Realtor", "Legal Services", "Religion"], moved.sum())


def generate_applications(
    ids: np.ndarray, is_test: np.ndarray, rng: np.random.Generator, alpha: float | None, p: SyntheticSettings
) -> tuple[pd.DataFrame, pd.DataFrame, Latent, float]:
    """One chunk of applicants: (train rows with TARGET, test rows without, latent, intercept).

    `alpha` None solves the intercept on this chunk. Both frames carry TRUE_PD, the oracle column that
    `scoring.synthetic.dataset` splits off before anything is written beside the Kaggle-schema tables.
    """
    latent = draw_latent(len(ids), rng)
    cols = generate_application_columns(len(ids), latent, rng)
    logit = risk_logit(cols, latent)
    alpha = solve_intercept(logit, p.default_rate) if alpha is None else alpha
    cols["TRUE_PD"] = expit(alpha + logit)
    cols["TARGET"] = (rng.random(len(ids)) < cols["TRUE_PD"]).astype(int)
    cols["SK_ID_CURR"] = ids
    train = {k: v[~is_test] for k, v in cols.items()}
    test = {k: v[is_test] for k, v in cols.items()}
    if p.drift.enabled:
        apply_drift(test, p.drift, rng)
    frames = [to_frame(name, part).assign(TRUE_PD=part["TRUE_PD"])
              for name, part in (("application_train", train), ("application_test", test))]
    return frames[0], frames[1], latent, alpha
