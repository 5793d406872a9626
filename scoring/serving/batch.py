"""Batch scoring: a file of applicants in, probability, decision and top reasons out.

    python -m scoring.serving.batch --input applicants.csv --output scores.csv [--history-dir DIR] [--reasons K]

The input has Kaggle's application columns (TARGET optional). History comes from --history-dir (Kaggle-named
secondary tables) or else the lookup table written by featurize. Scoring is the engine's, the service's own, in
chunks (bounded memory, a progress bar). Rows that break the contract are not scored and are listed in
`<output stem>.errors.csv` with the column and rule they break.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from scoring import contract, features
from scoring.data.io import find_table_file, read_raw_table
from scoring.data.row_checks import SchemaError, row_problems
from scoring.model.registry import ScoringModel, load_scoring_model
from scoring.serving.engine import ScoringEngine
from scoring.settings import configure_logging, load_settings

logger = logging.getLogger(__name__)
CHUNK_ROWS = 20_000
"""Applicants scored at once: bounds the memory of the SHAP values (rows x fields)."""


def read_applicants(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, low_memory=False)


def load_history(history_dir: Path | None, lookup: Path) -> pd.DataFrame:
    if history_dir is not None:
        tables = {}
        for name in contract.HISTORY_TABLES:
            if (path := find_table_file(history_dir, name)) is not None:
                tables[name] = read_raw_table(path, name)
        return features.history_features(tables)
    if lookup.exists():
        return pd.read_parquet(lookup)
    logger.warning("no history (no --history-dir and no %s): history features are missing", lookup)
    return pd.DataFrame(index=pd.Index([], name=features.KEY))


def score_table(engine: ScoringEngine, apps: pd.DataFrame, k: int, progress: bool = False) -> pd.DataFrame:
    """SK_ID_CURR, probability, decision, threshold and the top-k reasons (reason_<i>_* columns), in input order."""
    parts = []
    with tqdm(total=len(apps), desc="scoring", unit="applicant", disable=not progress) as bar:
        for start in range(0, len(apps), CHUNK_ROWS):
            chunk = apps.iloc[start:start + CHUNK_ROWS]
            scores = engine.score_table(chunk, explain=k > 0)
            parts.append(pd.DataFrame({features.KEY: chunk[features.KEY].to_numpy(),
                                       "probability": scores.probability, "decision": scores.decisions,
                                       "threshold": engine.threshold, **scores.reasons(k).columns()}))
            bar.update(len(chunk))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[features.KEY, "probability"])


def score_applicants(apps: pd.DataFrame, history: pd.DataFrame, model: ScoringModel, k: int,
                     progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scores of the valid rows, problems of the invalid ones)."""
    table = "application_train" if "TARGET" in apps.columns else "application_test"
    problems = row_problems(apps, table)
    valid = apps.drop(index=apps.index[problems["row"].unique()]) if len(problems) else apps
    engine = ScoringEngine(model.model, model.threshold, history)
    return score_table(engine, valid, k, progress), problems


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    settings = load_settings()
    parser = argparse.ArgumentParser(description="Score a file of applicants with the champion model.")
    parser.add_argument("--input", type=Path, required=True, help="CSV or Parquet in Kaggle's application schema")
    parser.add_argument("--output", type=Path, required=True, help="CSV or Parquet to write")
    parser.add_argument("--history-dir", type=Path, help="folder with the applicants' bureau, previous... tables")
    parser.add_argument("--reasons", type=int, default=settings.reasons.default,
                        help=f"top reasons per applicant, 0 to {settings.reasons.max} (0: none, faster)")
    parser.add_argument("--no-registry", action="store_true", help="use the DVC outputs, not the MLflow champion")
    args = parser.parse_args(argv)
    if not 0 <= args.reasons <= settings.reasons.max:
        parser.error(f"--reasons must be from 0 to {settings.reasons.max}")
    model = load_scoring_model(settings, prefer_registry=not args.no_registry)
    history = load_history(args.history_dir, model.history or settings.paths.history)
    try:
        scores, problems = score_applicants(read_applicants(args.input), history, model, args.reasons,
                                            progress=True)
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
