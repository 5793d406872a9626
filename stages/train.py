"""DVC stage `train`: compare the candidate models, calibrate the chosen one, keep out-of-fold scores.

oof.parquet holds, per training applicant, TARGET, the chosen model's calibrated out-of-fold probability (`proba`)
and every candidate's raw out-of-fold score (`raw_<model>`), from which the threshold stage computes costs.
"""
from __future__ import annotations

import json
import logging

import joblib
import pandas as pd

from scoring.model import training
from scoring.settings import configure_logging, load_settings

logger = logging.getLogger("stages.train")


def main() -> None:
    configure_logging()
    settings = load_settings()
    paths, p = settings.paths, settings.train
    fit = pd.read_parquet(paths.train_features)
    X, y = fit.drop(columns="TARGET"), fit["TARGET"].to_numpy()
    candidates = training.compare_models(X, y, p)
    chosen = training.choose(candidates, p)
    raw_oof = training.out_of_fold_scores(candidates, X, y, p)
    model, oof = training.fit_final(chosen, raw_oof[chosen.model].to_numpy(), X, y, p)
    paths.models.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, paths.model)
    raw_oof.add_prefix("raw_").assign(TARGET=y, proba=oof).to_parquet(paths.oof)
    paths.train_report.write_text(json.dumps(training.comparison_table(candidates, chosen), indent=1))
    logger.info("kept %s -> %s", chosen.model, paths.model)


if __name__ == "__main__":
    main()
