"""DVC stage `train`: tune and estimate the candidate models on repeated folds, keep one, calibrate it.

With `compute.backend: ray` the candidates are compared on a stratified sample of `compute.train_sample` training
rows (the search and repeated CV cost grows with rows times candidates times folds, and past ~50,000 rows the
estimate's noise no longer decides the choice); a chosen XGBoost is then refitted on every row on Ray Train.

validated.joblib is the chosen model fitted on the training rows, which evaluate measures on the holdout; model.joblib
is the one every scorer serves: with `train.release: all_labelled` the same procedure (configuration, round count,
calibrator) fitted again on the training rows and the holdout (`training.release_fit`), else the validated model.

oof.parquet holds one row per training applicant and repeat of the CV (`row`, `repeat`, `fold`, TARGET), the chosen
model's calibrated out-of-fold probability (`proba`) and every candidate's raw out-of-fold score (`raw_<model>`),
from which the threshold stage computes costs.
"""
from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from scoring.data.feature_table import read_features
from scoring.model import ray_xgboost, training
from scoring.settings import ComputeSettings, Paths, configure_logging, load_settings

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
    refit, rows = None, None
    if on_ray and chosen.model == "xgboost":
        refit = partial(ray_xgboost.refit, features_files=[paths.train_features], compute=compute)
        rows = row_count([paths.train_features])
    elif on_ray:
        logger.warning("ray: %s is fitted here, on the %d rows it was compared on: only XGBoost trains on Ray",
                       chosen.model, len(fit))
    model, oof = training.fit_final(chosen, chosen.oof, X, y, p, refit=refit, rows=rows)
    paths.models.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, paths.validated_model)
    served = released(model, chosen, X, y, paths, compute) if p.release == "all_labelled" else model
    joblib.dump(served, paths.model)
    raw_oof.assign(proba=oof.ravel()).to_parquet(paths.oof)
    report = training.comparison_table(candidates, chosen, p, blend)
    report["release"] = {"rule": p.release, "validated_rows": model.rows_, "served_rows": served.rows_}
    paths.train_report.write_text(json.dumps(report, indent=1))
    logger.info("kept %s -> %s (fitted on %s applicants; %s on %s, measured by evaluate)", chosen.model, paths.model,
                f"{served.rows_:,}", paths.validated_model, f"{model.rows_:,}")


def released(validated: training.CalibratedScorer, chosen: training.Candidate, X: pd.DataFrame, y: np.ndarray,
             paths: Paths, compute: ComputeSettings) -> training.CalibratedScorer:
    """`train.release: all_labelled`: the chosen procedure fitted again on the rows the validated model was fitted
    on (`X`, `y`) and the holdout; on Ray Train for an XGBoost with `compute.backend: ray`, as the validated model
    was (on every row of both files; `X` is then the sample its encoder is fitted on)."""
    if compute.backend == "ray" and chosen.model == "xgboost":
        files = [paths.train_features, paths.holdout_features]
        rows = row_count(files)
        logger.info("release: xgboost refitted on Ray on all %s labelled applicants...", f"{rows:,}")
        refit = partial(ray_xgboost.refit, features_files=files, compute=compute)
        return training.release_fit(validated, chosen, X, y, refit, rows)
    holdout = read_features(paths.holdout_features)
    if set(holdout.columns) != {*X.columns, "TARGET"}:
        raise ValueError(f"{paths.holdout_features} and {paths.train_features} have different feature columns: "
                         "run `dvc repro featurize`")
    X_all = pd.concat([X, holdout[X.columns]])
    y_all = np.concatenate([y, holdout["TARGET"].to_numpy()])
    logger.info("release: %s refitted on all %s labelled applicants (training rows and holdout)...", chosen.model,
                f"{len(X_all):,}")
    return training.release_fit(validated, chosen, X_all, y_all)


def row_count(files: list[Path]) -> int:
    return sum(pq.ParquetFile(file).metadata.num_rows for file in files)


if __name__ == "__main__":
    main()
