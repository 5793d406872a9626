"""DVC stage `train`: tune and estimate the candidate models on repeated folds, keep one, calibrate it.

oof.parquet holds one row per training applicant and repeat of the CV (`row`, `repeat`, `fold`, TARGET), the chosen
model's calibrated out-of-fold probability (`proba`) and every candidate's raw out-of-fold score (`raw_<model>`),
from which the threshold stage computes costs.
"""
from __future__ import annotations

import json
import logging
from functools import partial

import joblib
import pandas as pd

from scoring.model import ray_xgboost, training
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
    blend = training.rank_blend(candidates, y, p)
    if blend is not None:
        logger.info("rank blend of %s: %+.4f AUC (se %.4f) over the best alone: %s", " + ".join(blend["members"]),
                    blend["gain"], blend["se"], "beyond the noise (not served yet)" if blend["beyond_noise"]
                    else "within the noise, not kept")
    raw_oof = training.out_of_fold_scores(candidates, y, p)
    on_ray = settings.compute.backend == "ray" and chosen.model == "xgboost"
    refit = partial(ray_xgboost.refit, features_file=paths.train_features, compute=settings.compute)
    model, oof = training.fit_final(chosen, chosen.oof, X, y, p, refit=refit if on_ray else None)
    paths.models.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, paths.model)
    raw_oof.assign(proba=oof.ravel()).to_parquet(paths.oof)
    paths.train_report.write_text(json.dumps(training.comparison_table(candidates, chosen, p, blend), indent=1))
    logger.info("kept %s -> %s", chosen.model, paths.model)


if __name__ == "__main__":
    main()
