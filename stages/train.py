"""DVC stage `train`: tune and estimate the candidate models on repeated folds, keep one, calibrate it.

With `compute.backend: ray` the candidates are compared on a stratified sample of `compute.train_sample` training
rows (the search and repeated CV cost grows with rows times candidates times folds, and past ~50,000 rows the
estimate's noise no longer decides the choice); a chosen XGBoost is then refitted on every row on Ray Train.

oof.parquet holds one row per training applicant and repeat of the CV (`row`, `repeat`, `fold`, TARGET), the chosen
model's calibrated out-of-fold probability (`proba`) and every candidate's raw out-of-fold score (`raw_<model>`),
from which the threshold stage computes costs.
"""
from __future__ import annotations

import json
import logging
from functools import partial

import joblib

from scoring.data.feature_table import read_features
from scoring.model import ray_xgboost, training
from scoring.settings import configure_logging, load_settings

logger = logging.getLogger("stages.train")


def main() -> None:
    configure_logging()
    settings = load_settings()
    paths, p, compute = settings.paths, settings.train, settings.compute
    on_ray = compute.backend == "ray"
    fit = read_features(paths.train_features, compute.train_sample if on_ray else 0, p.seed)
    if on_ray:
        logger.info("ray: candidates compared on %d training rows (compute.train_sample: %d)", len(fit),
                    compute.train_sample)
    X, y = fit.drop(columns="TARGET"), fit["TARGET"].to_numpy()
    candidates = training.compare_models(X, y, p)
    chosen = training.choose(candidates, p)
    blend = training.rank_blend(candidates, y, p)
    if blend is not None:
        logger.info("rank blend of %s: %+.4f AUC (se %.4f) over the best alone: %s", " + ".join(blend["members"]),
                    blend["gain"], blend["se"], "beyond the noise (not served yet)" if blend["beyond_noise"]
                    else "within the noise, not kept")
    raw_oof = training.out_of_fold_scores(candidates, y, p)
    refit = None
    if on_ray and chosen.model == "xgboost":
        refit = partial(ray_xgboost.refit, features_file=paths.train_features, compute=compute)
    elif on_ray:
        logger.warning("ray: %s is fitted here, on the %d rows it was compared on: only XGBoost trains on Ray",
                       chosen.model, len(fit))
    model, oof = training.fit_final(chosen, chosen.oof, X, y, p, refit=refit)
    paths.models.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, paths.model)
    raw_oof.assign(proba=oof.ravel()).to_parquet(paths.oof)
    paths.train_report.write_text(json.dumps(training.comparison_table(candidates, chosen, p, blend), indent=1))
    logger.info("kept %s -> %s", chosen.model, paths.model)


if __name__ == "__main__":
    main()
