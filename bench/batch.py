"""Benchmark: batch scoring with reasons (`scoring.serving.batch`, the engine's path) for every candidate model.

    python bench/batch.py [--rows 20000] [--reasons 3] [--models logreg random_forest xgboost]

Each candidate is fitted as the train stage would keep it (its pipeline with the best parameters of
reports/train.json, on data/features/train.parquet: run `dvc repro` first), then scores `--rows` applicants of the
prepared application_test table (repeated, new SK_ID_CURR) with `--reasons` reasons each. Prints applicants/s per
model, with and without reasons, and the time of the first call (explainers built on first use).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scoring.model import training  # noqa: E402
from scoring.model.registry import ScoringModel  # noqa: E402
from scoring.serving import batch  # noqa: E402
from scoring.settings import configure_logging, load_settings  # noqa: E402

logger = logging.getLogger("bench.batch")


def fitted(name: str, settings, X: pd.DataFrame, y: np.ndarray) -> training.CalibratedScorer:
    """The candidate with the parameters train.json says the search kept, calibrated on its own scores."""
    best = json.loads(settings.paths.train_report.read_text())["models"].get(name, {}).get("best_params", {})
    p = replace(settings.train, models=(name,))
    pipeline = training.build_pipeline(name, *training.split_columns(X), p, float(y.mean()))
    pipeline.set_params(**{f"model__{k}": v for k, v in best.items()}).fit(X, y)
    raw = pipeline.predict_proba(X)[:, 1]
    model = training.CalibratedScorer(pipeline, training.fit_calibrator(raw, y, settings.train.calibration), name)
    model.reference_ = np.asarray(pipeline.named_steps["prep"].transform(X), dtype=float).mean(axis=0)
    model.quantiles_ = training.reference_quantiles(X)
    return model


def applicants(settings, rows: int) -> pd.DataFrame:
    test = pd.read_parquet(settings.paths.prepared_table("application_test"))
    sample = test.sample(rows, replace=len(test) < rows, random_state=0).reset_index(drop=True)
    sample["SK_ID_CURR"] = np.where(sample["SK_ID_CURR"].duplicated(), 10_000_000 + np.arange(rows),
                                    sample["SK_ID_CURR"])
    return sample


def rate(model: ScoringModel, apps: pd.DataFrame, history: pd.DataFrame, reasons: int) -> tuple[float, float]:
    """(first call's seconds on 100 rows, applicants/s on all of them)."""
    started = time.perf_counter()
    batch.score_applicants(apps.head(100), history, model, reasons)
    first = time.perf_counter() - started
    started = time.perf_counter()
    scores, problems = batch.score_applicants(apps, history, model, reasons)
    assert len(scores) == len(apps) and problems.empty
    return first, len(apps) / (time.perf_counter() - started)


def main() -> None:
    configure_logging()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--reasons", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=list(training.MODELS))
    args = parser.parse_args()
    settings = load_settings(REPO / "params.yaml").under(REPO)
    fit = pd.read_parquet(settings.paths.train_features)
    X, y = fit.drop(columns="TARGET"), fit["TARGET"].to_numpy()
    history, apps = pd.read_parquet(settings.paths.history), applicants(settings, args.rows)
    results = {}
    for name in args.models:
        model = ScoringModel(fitted(name, settings, X, y), 0.09, f"bench {name}")
        first, with_reasons = rate(model, apps, history, args.reasons)
        _, bare = rate(model, apps, history, 0)
        results[name] = {"first_call_s": round(first, 2), f"per_s_{args.reasons}_reasons": round(with_reasons),
                         "per_s_no_reasons": round(bare)}
        logger.info("%s: %s", name, results[name])
    print(f"\n{'model':<15}{'first call s':>13}{f'{args.reasons} reasons/s':>15}{'no reasons/s':>14}")
    for name, r in results.items():
        print(f"{name:<15}{r['first_call_s']:>13}{r[f'per_s_{args.reasons}_reasons']:>15,}{r['per_s_no_reasons']:>14,}")


if __name__ == "__main__":
    main()
