"""Derive the generator's calibration numbers from the real Kaggle rows in ../shared.

Writes `scoring/synthetic/resources/calibration.json`: per table and column the missing rate, 101 percentiles of numeric
columns (or category frequencies), and the per-applicant history counts. Only derived numbers are written, never
rows. Run by hand when the shared samples change:

    python tools/calibrate.py --shared ../shared/data/home-credit
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

logger = logging.getLogger("calibrate")
OUT = Path(__file__).resolve().parents[1] / "scoring" / "synthetic" / "resources" / "calibration.json"

SOURCES: dict[str, list[str]] = {
    "application_train": [
        "coherent10k/application_train.csv.gz",
        "idrange_100002_100999/application_train.csv.gz",
        "application_train.csv",
    ],
    "bureau": ["coherent10k/bureau.csv.gz"],
    "bureau_balance": ["coherent10k/bureau_balance.csv.gz"],
    "previous_application": ["idrange_100002_100999/previous_application.csv.gz", "previous_application.csv"],
    "POS_CASH_balance": ["POS_CASH_balance.csv"],
    "installments_payments": ["installments_payments.csv"],
    "credit_card_balance": ["coherent10k/credit_card_balance.csv.gz"],
}
KEYS = {"SK_ID_CURR", "SK_ID_BUREAU", "SK_ID_PREV"}


def read_table(shared: Path, files: list[str]) -> pd.DataFrame:
    frames = [pd.read_csv(shared / f) for f in files]
    return pd.concat(frames, ignore_index=True).drop_duplicates()


def describe_column(s: pd.Series) -> dict:
    out: dict = {"missing": round(float(s.isna().mean()), 5)}
    values = s.dropna()
    if s.dtype == object:
        freq = values.value_counts(normalize=True)
        out["kind"] = "category"
        out["freq"] = {str(k): round(float(v), 6) for k, v in freq.items()}
        return out
    integral = bool(len(values) == 0 or np.all(np.mod(values, 1) == 0))
    out["kind"] = "int" if pd.api.types.is_integer_dtype(s) else "float"
    out["integral"] = integral
    qs = np.percentile(values, np.arange(101)) if len(values) else np.zeros(101)
    out["quantiles"] = [float(f"{q:.6g}") for q in qs]
    return out


def count_histogram(counts: pd.Series, cap: int) -> list[float]:
    """Share of parents with 0..cap children (the last bin holds cap and more)."""
    clipped = counts.clip(upper=cap)
    hist = np.bincount(clipped.to_numpy(), minlength=cap + 1).astype(float)
    return [round(float(v), 6) for v in hist / hist.sum()]


def history_shapes(shared: Path) -> dict:
    apps = pd.read_csv(shared / "coherent10k/application_train.csv.gz", usecols=["SK_ID_CURR"])
    bureau = pd.read_csv(shared / "coherent10k/bureau.csv.gz", usecols=["SK_ID_CURR", "SK_ID_BUREAU"])
    bb = pd.read_csv(shared / "coherent10k/bureau_balance.csv.gz", usecols=["SK_ID_BUREAU"])
    cc = pd.read_csv(shared / "coherent10k/credit_card_balance.csv.gz", usecols=["SK_ID_CURR", "SK_ID_PREV"])
    ids = pd.read_csv(shared / "idrange_100002_100999/application_train.csv.gz", usecols=["SK_ID_CURR"])
    prev = pd.read_csv(shared / "idrange_100002_100999/previous_application.csv.gz", usecols=["SK_ID_CURR"])
    per_app = bureau.groupby("SK_ID_CURR").size().reindex(apps.SK_ID_CURR, fill_value=0)
    bb_months = bb.groupby("SK_ID_BUREAU").size()
    cards = cc.groupby("SK_ID_CURR").SK_ID_PREV.nunique().reindex(apps.SK_ID_CURR, fill_value=0)
    card_months = cc.groupby("SK_ID_PREV").size()
    prev_per_app = prev.groupby("SK_ID_CURR").size().reindex(ids.SK_ID_CURR, fill_value=0)
    return {
        "bureau_per_applicant": count_histogram(per_app, 40),
        "bureau_share_with_balance": round(float(bureau.SK_ID_BUREAU.isin(bb_months.index).mean()), 5),
        "balance_months_per_bureau": count_histogram(bb_months, 97)[1:],
        "cards_per_applicant": count_histogram(cards, 3),
        "months_per_card": count_histogram(card_months, 96)[1:],
        "previous_per_applicant": count_histogram(prev_per_app, 40),
    }


def ratio_quantiles(shared: Path) -> dict[str, list[float]]:
    """Joint structure the marginals miss: credit term and credit-to-goods ratio of the applications."""
    apps = pd.read_csv(shared / "coherent10k/application_train.csv.gz")
    ratios = {
        "credit_over_annuity": apps.AMT_CREDIT / apps.AMT_ANNUITY,
        "credit_over_goods": apps.AMT_CREDIT / apps.AMT_GOODS_PRICE,
    }
    return {k: describe_column(v.replace([np.inf, -np.inf], np.nan))["quantiles"] for k, v in ratios.items()}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data/home-credit"))
    args = parser.parse_args()
    tables = {}
    for table, files in SOURCES.items():
        df = read_table(args.shared, files)
        logger.info("%s: %d rows from %s", table, len(df), files)
        tables[table] = {
            "rows_seen": len(df),
            "columns": {c: describe_column(df[c]) for c in df.columns if c not in KEYS},
            "order": list(df.columns),
        }
    calibration = {"tables": tables, "histories": history_shapes(args.shared), "ratios": ratio_quantiles(args.shared)}
    OUT.write_text(json.dumps(calibration, indent=1))
    logger.info("wrote %s (%.0f KiB)", OUT, OUT.stat().st_size / 1024)


if __name__ == "__main__":
    main()
