"""Batch scoring: a file of applicants in, probability, decision and top reasons out.

    python -m scoring.serving.batch --input applicants.csv --output scores.csv [--history-dir DIR] [--reasons 3]

The input has Kaggle's application columns (TARGET optional). History comes from --history-dir (Kaggle-named
secondary tables) or else the lookup table written by featurize. Rows that break the contract are not scored and
are listed in `<output stem>.errors.csv` with the column and rule they break.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from scoring import features
from scoring.data.io import find_table_file, read_raw_table
from scoring.data.row_checks import SchemaError, row_problems
from scoring.model import explain
from scoring.model.registry import ScoringModel, load_scoring_model

logger = logging.getLogger(__name__)
HISTORY_TABLES = ("bureau", "bureau_balance", "previous_application", "POS_CASH_balance", "installments_payments",
                  "credit_card_balance")


def read_applicants(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, low_memory=False)


def load_history(history_dir: Path | None, lookup: Path) -> pd.DataFrame:
    if history_dir is not None:
        tables = {}
        for name in HISTORY_TABLES:
            if (path := find_table_file(history_dir, name)) is not None:
                tables[name] = read_raw_table(path, name)
        return features.history_features(tables)
    if lookup.exists():
        return pd.read_parquet(lookup)
    logger.warning("no history (no --history-dir and no %s): history features are missing", lookup)
    return pd.DataFrame(index=pd.Index([], name="SK_ID_CURR"))


def reasons_table(model: ScoringModel, X: pd.DataFrame, k: int) -> pd.DataFrame:
    """Top-k reasons per applicant, as columns reason_1..k (vectorised SHAP, chunked for memory)."""
    parts = []
    for start in range(0, len(X), 5000):
        contribs, _ = explain.contributions(model.model, X.iloc[start:start + 5000])
        order = np.argsort(-contribs.abs().to_numpy(), axis=1)[:, :k]
        names = contribs.columns.to_numpy()[order]
        values = np.take_along_axis(contribs.to_numpy(), order, axis=1)
        parts.append(pd.DataFrame({f"reason_{i + 1}": [f"{n} ({'+' if v > 0 else '-'}{abs(v):.3f})"
                                                       for n, v in zip(names[:, i], values[:, i])]
                                   for i in range(k)}, index=contribs.index))
    return pd.concat(parts) if parts else pd.DataFrame(index=X.index)


def score_applicants(apps: pd.DataFrame, history: pd.DataFrame, model: ScoringModel, k: int = 3
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scores of the valid rows, problems of the invalid ones)."""
    table = "application_train" if "TARGET" in apps.columns else "application_test"
    problems = row_problems(apps, table)
    valid = apps.drop(index=apps.index[problems["row"].unique()]) if len(problems) else apps
    X = features.align(features.build_features(valid, history), list(model.model.feature_names_in_))
    proba = model.model.predict_proba(X)[:, 1]
    scores = pd.DataFrame({"probability": proba, "decision": np.where(proba >= model.threshold, "refused", "granted"),
                           "threshold": model.threshold}, index=X.index)
    if k > 0:
        scores = scores.join(reasons_table(model, X, k))
    return scores.reset_index(), problems


def main(argv: list[str] | None = None) -> int:
    from scoring.config import configure_logging, load_params, paths_from

    parser = argparse.ArgumentParser(description="Score a file of applicants with the champion model.")
    parser.add_argument("--input", type=Path, required=True, help="CSV or Parquet in Kaggle's application schema")
    parser.add_argument("--output", type=Path, required=True, help="CSV or Parquet to write")
    parser.add_argument("--history-dir", type=Path, help="folder with the applicants' bureau, previous... tables")
    parser.add_argument("--reasons", type=int, default=3, help="top reasons per applicant (0: none, faster)")
    parser.add_argument("--no-registry", action="store_true", help="use the DVC outputs, not the MLflow champion")
    args = parser.parse_args(argv)
    configure_logging()
    params = load_params()
    model = load_scoring_model(params, prefer_registry=not args.no_registry)
    history = load_history(args.history_dir, paths_from(params).features / "history.parquet")
    try:
        scores, problems = score_applicants(read_applicants(args.input), history, model, args.reasons)
    except SchemaError as error:
        logger.error("%s", error)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    (scores.to_parquet if args.output.suffix == ".parquet" else scores.to_csv)(args.output, index=False)
    if len(problems):
        errors = args.output.with_name(f"{args.output.stem}.errors.csv")
        problems.to_csv(errors, index=False)
        logger.warning("%d row(s) break the contract and were not scored: see %s", problems["row"].nunique(), errors)
    logger.info("scored %d applicants with %s (threshold %.3f): %d refused -> %s", len(scores), model.source,
                model.threshold, int((scores["decision"] == "refused").sum()), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
