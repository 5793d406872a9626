"""Derive the data contract's plausibility bounds from the envelopes of Kaggle's real rows.

Writes `BOUNDS` in `scoring/contract.py` (between its BEGIN/END BOUNDS markers): per table, the (min, max) of every
number whose domain rule leaves a side open (amounts and counts have no natural maximum, days counted backwards no
minimum). Only derived numbers are written, never rows. Run by hand when the shared rows or the rule change:

    python -m tools.envelopes                  # the envelopes and the bounds they give, nothing written
    python -m tools.envelopes --write          # write BOUNDS into scoring/contract.py
    python -m tools.envelopes --check          # exit 1 when scoring/contract.py is not what the rows give

Sources:
- every real row in ../shared/data/home-credit: the application samples (application_train.csv, coherent10k/,
  idrange_100002_100999/: 13,872 training applicants) and the complete application_test.csv.gz (48,744 rows); the
  history samples (bureau, bureau_balance, previous_application, POS_CASH_balance, installments_payments,
  credit_card_balance, with coherent10k/ and idrange_100002_100999/ where they have the table);
- `KAGGLE_FULL_TRAIN`: extremes of Kaggle's full application_train.csv (307,511 rows) as published by the
  competition's public exploratory analyses (`application_train.describe()` in Kaggle notebooks and EDA write-ups;
  the figures agree across them). The samples do not hold them: their largest income is 4.41 million, the full
  file's 117 million.

Margin rule (the same words are in scoring/contract.py beside BOUNDS):
- applications: the open side gets the smallest 1-2-5 number (1, 2, 5, 10, 20, 50, ...) at or above twice the largest
  magnitude known (the real rows' envelope widened by the published extremes), so that Kaggle's full files pass with
  room to spare: AMT_INCOME_TOTAL 117,000,000 -> 500,000,000, CNT_CHILDREN 20 -> 50. Time spans stop at 100 years,
  the oldest applicant (DAYS_BIRTH >= -100 years): DAYS_* >= -36,600, OWN_CAR_AGE <= 100.
- history tables: the same rounding of 100 times the largest magnitude in the samples, which hold 0.1% to 4% of
  Kaggle's rows and whose extremes fall far short of the full files' (as the applications show, 4.41 million
  against 117 million): caps against absurd values (overflow, unit errors), not plausibility ranges. A column with
  no sign rule gets a symmetric range.
- a side the domain closes (amounts >= 0, days <= 0, shares 0-1, ratings 1-3, ...) keeps its domain value.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path

import pandas as pd

from scoring import contract

logger = logging.getLogger("envelopes")
REPO = Path(__file__).resolve().parents[1]
CONTRACT = REPO / "scoring" / "contract.py"
SHARED = Path(os.environ.get("HOME_CREDIT_SHARED", REPO.parent / "shared" / "data" / "home-credit"))
BEGIN, END = "# BEGIN BOUNDS (tools/envelopes.py)", "# END BOUNDS (tools/envelopes.py)"

Envelope = dict[str, tuple[float, float]]
"""Column -> (smallest, largest) value seen, missing values and 'not applicable' sentinels left out."""
Bounds = dict[str, tuple[float, float]]

APPLICATION_FILES = (
    "application_train.csv", "coherent10k/application_train.csv.gz",
    "idrange_100002_100999/application_train.csv.gz", "application_test.csv.gz",
)
HISTORY_FILES: dict[str, tuple[str, ...]] = {
    "bureau": ("bureau.csv", "coherent10k/bureau.csv.gz"),
    "bureau_balance": ("bureau_balance.csv", "coherent10k/bureau_balance.csv.gz"),
    "previous_application": ("previous_application.csv", "idrange_100002_100999/previous_application.csv.gz"),
    "POS_CASH_balance": ("POS_CASH_balance.csv",),
    "installments_payments": ("installments_payments.csv",),
    "credit_card_balance": ("credit_card_balance.csv", "coherent10k/credit_card_balance.csv.gz"),
}
KAGGLE_FULL_TRAIN: dict[str, tuple[float | None, float | None]] = {
    "AMT_INCOME_TOTAL": (None, 117_000_000), "AMT_CREDIT": (None, 4_050_000), "AMT_ANNUITY": (None, 258_025.5),
    "AMT_GOODS_PRICE": (None, 4_050_000), "CNT_CHILDREN": (None, 19), "CNT_FAM_MEMBERS": (None, 20),
    "DAYS_BIRTH": (-25_229, -7_489), "DAYS_EMPLOYED": (-17_912, None), "DAYS_REGISTRATION": (-24_672, None),
    "DAYS_ID_PUBLISH": (-7_197, None), "OWN_CAR_AGE": (None, 91), "DAYS_LAST_PHONE_CHANGE": (-4_292, None),
    "OBS_30_CNT_SOCIAL_CIRCLE": (None, 348), "DEF_30_CNT_SOCIAL_CIRCLE": (None, 34),
    "OBS_60_CNT_SOCIAL_CIRCLE": (None, 344), "DEF_60_CNT_SOCIAL_CIRCLE": (None, 24),
    "AMT_REQ_CREDIT_BUREAU_HOUR": (None, 4), "AMT_REQ_CREDIT_BUREAU_DAY": (None, 9),
    "AMT_REQ_CREDIT_BUREAU_WEEK": (None, 8), "AMT_REQ_CREDIT_BUREAU_MON": (None, 27),
    "AMT_REQ_CREDIT_BUREAU_QRT": (None, 261), "AMT_REQ_CREDIT_BUREAU_YEAR": (None, 25),
}
"""Published (min, max) of Kaggle's full application_train; None where no figure is used (DAYS_EMPLOYED's minimum
leaves out its 365243 sentinel)."""
APPLICATION_FACTOR = 2
HISTORY_FACTOR = 100


def nice_ceiling(value: float) -> float:
    """The smallest number of the 1-2-5 series (..., 0.5, 1, 2, 5, 10, 20, ...) at or above `value` > 0."""
    if not value > 0:
        raise ValueError(f"a bound needs a positive magnitude, got {value}")
    exponent = math.floor(math.log10(value))
    for power in (exponent - 1, exponent, exponent + 1):
        for mantissa in (1, 2, 5):
            candidate = mantissa * 10**power if power >= 0 else mantissa / 10**-power
            if candidate >= value:
                return candidate
    raise AssertionError("unreachable: 10^(exponent + 1) > value")


def span_limit(name: str) -> float | None:
    """Longest magnitude of an application time span: 100 years, in days or (OWN_CAR_AGE) in years."""
    if name.startswith("DAYS_"):
        return contract.YEAR_DAYS * contract.MAX_SPAN_YEARS
    return contract.MAX_SPAN_YEARS if name == "OWN_CAR_AGE" else None


def is_open(col: contract.Column) -> bool:
    """A number (not a key) whose domain rule leaves a side of its range open."""
    return col.kind in ("int", "float") and (col.min is None or col.max is None)


def envelope(frame: pd.DataFrame, table: contract.Table) -> Envelope:
    """Smallest and largest value of each numeric column of `frame`, without missing values and sentinels."""
    out: Envelope = {}
    for col in table.columns:
        if col.kind == "category" or col.name not in frame:
            continue
        values = pd.to_numeric(frame[col.name], errors="raise").dropna()
        sentinels = {col.sentinel, contract.DAYS_SENTINEL if col.max == contract.DAYS_SENTINEL else None} - {None}
        values = values[~values.isin(sentinels)]
        if len(values):
            out[col.name] = (float(values.min()), float(values.max()))
    return out


def merge(*envelopes: Envelope) -> Envelope:
    """The envelope of all of them: the smallest minimum and the largest maximum of each column."""
    out: Envelope = {}
    for env in envelopes:
        for name, (lo, hi) in env.items():
            old_lo, old_hi = out.get(name, (lo, hi))
            out[name] = (min(lo, old_lo), max(hi, old_hi))
    return out


def widen(env: Envelope, known: dict[str, tuple[float | None, float | None]]) -> Envelope:
    """`env` stretched to the known extremes (a side without a figure stays as it is)."""
    out = dict(env)
    for name, (lo, hi) in known.items():
        old_lo, old_hi = out[name]
        out[name] = (old_lo if lo is None else min(lo, old_lo), old_hi if hi is None else max(hi, old_hi))
    return out


def derive(domain: contract.Table, env: Envelope, factor: int, spans: bool = False) -> Bounds:
    """(min, max) of every open column of `domain`: the margin rule applied to the envelope (see the docstring)."""
    out: Bounds = {}
    for col in domain.columns:
        if not is_open(col):
            continue
        if col.name not in env:
            raise ValueError(f"{domain.name}.{col.name}: no real value to derive a bound from")
        lo, hi = env[col.name]
        bound = nice_ceiling(factor * max(abs(lo), abs(hi)))
        limit = span_limit(col.name) if spans else None
        bound = bound if limit is None else min(bound, limit)
        out[col.name] = (col.min if col.min is not None else -bound, col.max if col.max is not None else bound)
    return out


def read_numbers(shared: Path, files: tuple[str, ...], table: contract.Table) -> list[pd.DataFrame]:
    """The numeric columns of each file (a file may lack some: application_test has no TARGET)."""
    numeric = {c.name for c in table.columns if c.kind != "category"}
    return [pd.read_csv(shared / name, usecols=lambda c: c in numeric) for name in files]


def real_envelopes(shared: Path) -> dict[str, Envelope]:
    """Per contract table ("application" for both application tables): the envelope of every real row in `shared`."""
    apps = contract.DOMAIN_TABLES["application_train"]
    out = {"application": merge(*(envelope(f, apps) for f in read_numbers(shared, APPLICATION_FILES, apps)))}
    for name, files in HISTORY_FILES.items():
        domain = contract.DOMAIN_TABLES[name]
        out[name] = merge(*(envelope(f, domain) for f in read_numbers(shared, files, domain)))
    return out


def derive_all(envelopes: dict[str, Envelope]) -> dict[str, Bounds]:
    """BOUNDS from the real envelopes: the applications' widened by Kaggle's published full-file extremes."""
    apps = contract.DOMAIN_TABLES["application_train"]
    out = {"application": derive(apps, widen(envelopes["application"], KAGGLE_FULL_TRAIN), APPLICATION_FACTOR,
                                 spans=True)}
    for name in HISTORY_FILES:
        out[name] = derive(contract.DOMAIN_TABLES[name], envelopes[name], HISTORY_FACTOR)
    return out


def outside(table: contract.Table, env: Envelope) -> list[str]:
    """Columns of `table` whose envelope does not lie within their range: each would fail a real row."""
    problems = []
    for col in table.columns:
        if col.name not in env:
            continue
        lo, hi = env[col.name]
        if (col.min is not None and lo < col.min) or (col.max is not None and hi > col.max):
            problems.append(f"{table.name}.{col.name}: real values {lo:g} to {hi:g}, contract {col.range_text()}")
    return problems


def literal(value: float) -> str:
    """A bound as a Python literal: 500_000_000, -36_600, 0.5."""
    return f"{int(value):_}" if float(value).is_integer() else repr(float(value))


def render(bounds: dict[str, Bounds]) -> str:
    """The BOUNDS block of scoring/contract.py, markers included."""
    lines = [BEGIN, "BOUNDS: dict[str, dict[str, tuple[float, float]]] = {"]
    for table, columns in bounds.items():
        lines.append(f'    "{table}": {{')
        lines += [f'        "{name}": ({literal(lo)}, {literal(hi)}),' for name, (lo, hi) in columns.items()]
        lines.append("    },")
    return "\n".join([*lines, "}", END])


def current_block(text: str) -> str:
    """The BOUNDS block of the contract's source, markers included."""
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end]


def check_fit(bounds: dict[str, Bounds], envelopes: dict[str, Envelope]) -> list[str]:
    """Real envelopes (and the published extremes) outside the contract these bounds make: should be none."""
    problems = []
    for name, domain in contract.DOMAIN_TABLES.items():
        key = "application" if name.startswith("application_") else name
        env = widen(envelopes[key], KAGGLE_FULL_TRAIN) if key == "application" else envelopes[key]
        problems += outside(contract.with_bounds(domain, bounds[key]), env)
    return problems


def report(bounds: dict[str, Bounds], envelopes: dict[str, Envelope]) -> None:
    for table, columns in bounds.items():
        for name, (lo, hi) in columns.items():
            real = envelopes[table][name]
            known = KAGGLE_FULL_TRAIN.get(name, (None, None)) if table == "application" else (None, None)
            full = "/".join("?" if k is None else literal(k) for k in known)
            logger.info("%s.%s: real %s to %s%s -> %s to %s", table, name, literal(real[0]), literal(real[1]),
                        "" if full == "?/?" else f" (full file {full})", literal(lo), literal(hi))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED, help="folder of the real Kaggle rows")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="write BOUNDS into scoring/contract.py")
    action.add_argument("--check", action="store_true", help="exit 1 if scoring/contract.py differs")
    args = parser.parse_args(argv)
    envelopes = real_envelopes(args.shared)
    bounds = derive_all(envelopes)
    report(bounds, envelopes)
    if problems := check_fit(bounds, envelopes):
        logger.error("real rows outside the contract (widen the rule):\n%s", "\n".join(problems))
        return 1
    text, block = CONTRACT.read_text(), render(bounds)
    if args.check:
        same = current_block(text) == block
        (logger.info if same else logger.error)("scoring/contract.py BOUNDS %s", "up to date" if same else "differ")
        return 0 if same else 1
    if args.write:
        CONTRACT.write_text(text.replace(current_block(text), block))
        logger.info("wrote BOUNDS of %d tables into %s", len(bounds), CONTRACT.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
