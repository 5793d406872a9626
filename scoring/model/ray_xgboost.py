"""The chosen XGBoost refitted on Ray Train (`compute.backend: ray`): data-parallel over `compute.train_workers`
workers, each reading its shard of the feature file through Ray Data, XGBoost's own distributed training between
them (Ray sets up its communicator); the rows are never gathered into one worker.

The preprocessing is fitted in the stage's process (on the rows the candidates were compared on) and applied in the
read tasks; the tree count is the one the search chose (`rounds`), scaled as the local refit scales it. The result
is the same scikit-learn pipeline as a local fit (`prep`, then the early-stopped XGBoost classifier loaded from the
trained booster), so calibration, serving and its SHAP tables do not know where it was trained. Each worker takes
half a CPU, so that Ray Data's read tasks always find one (on a 2-CPU node, two whole-CPU workers starve them).
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from imblearn.pipeline import Pipeline
from sklearn.base import clone

from scoring import ray_runtime
from scoring.model.boosters import constrain, refit_rounds
from scoring.settings import ComputeSettings

logger = logging.getLogger(__name__)
TARGET = "TARGET"
MODEL_FILE = "model.ubj"


def encoded_batch(table: pa.Table, prep: Any) -> pd.DataFrame:
    """A block of the feature file through the fitted preprocessing: float32 columns x0..xn and TARGET."""
    frame = table.to_pandas()  # strings as objects with None, as the preprocessing was fitted on
    encoded = np.asarray(prep.transform(frame.drop(columns=[TARGET])), dtype=np.float32)
    out = pd.DataFrame(encoded, columns=[f"x{i}" for i in range(encoded.shape[1])])
    out[TARGET] = frame[TARGET].to_numpy()
    return out


def train_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: its shard as a DMatrix, `xgboost.train` in lockstep with the others; rank 0 reports
    the booster as the checkpoint."""
    import ray.train
    import xgboost

    shard = ray.train.get_dataset_shard("train").materialize().to_pandas()
    # Ray Data hands missing values back as nulls: NaN again, as the local fit sees them
    encoded = shard.drop(columns=[TARGET]).to_numpy(dtype=np.float32, na_value=np.nan)
    data = xgboost.DMatrix(encoded, label=shard[TARGET].to_numpy(dtype=np.float32), missing=np.nan)
    booster = xgboost.train(config["params"], data, num_boost_round=config["rounds"])
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = None
        if ray.train.get_context().get_world_rank() == 0:
            booster.save_model(os.path.join(folder, MODEL_FILE))
            checkpoint = ray.train.Checkpoint.from_directory(folder)
        ray.train.report({}, checkpoint=checkpoint)


def booster_params(model: Any) -> tuple[dict[str, Any], int]:
    """(xgboost.train parameters, rounds) of the early-stopped classifier, one thread a worker."""
    if not model.rounds:
        raise ValueError("compute.backend ray refits XGBoost with the tree count of the search: set "
                         "train.early_stopping_each_fold to false in params.yaml")
    params = {**model.get_xgb_params(), "objective": "binary:logistic", "nthread": 1}
    params.pop("n_estimators", None)
    return params, min(model.n_estimators, refit_rounds(model.rounds))


def refit(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, features_files: list[Path],
          compute: ComputeSettings) -> Pipeline:
    """The chosen XGBoost pipeline fitted on every row of `features_files` on Ray (`compute.address`, or a
    single-node Ray for the time of this call); its encoder is fitted here, on `X` (a sample of those rows)."""
    if set(pipeline.named_steps) != {"prep", "model"}:
        raise ValueError("compute.backend ray: a resampling train.imbalance (undersample, smote) is not supported "
                         "on Ray; use class_weight or none")
    prep = clone(pipeline.named_steps["prep"]).fit(X, y)
    model = constrain(clone(pipeline.named_steps["model"]), len(prep.get_feature_names_out()))
    params, rounds = booster_params(model)
    with ray_runtime.session(compute.address):
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.xgboost import XGBoostTrainer

        if compute.scratch:
            Path(compute.scratch).mkdir(parents=True, exist_ok=True)
        storage = Path(tempfile.mkdtemp(prefix="ray-train-", dir=compute.scratch or None))
        try:
            data = ray.data.read_parquet([str(file.resolve()) for file in features_files]).map_batches(
                encoded_batch, batch_format="pyarrow", fn_kwargs={"prep": prep})
            trainer = XGBoostTrainer(
                train_worker, train_loop_config={"params": params, "rounds": rounds}, datasets={"train": data},
                scaling_config=ScalingConfig(num_workers=compute.train_workers, resources_per_worker={"CPU": 0.5}),
                run_config=RunConfig(storage_path=str(storage), name="xgboost"))
            logger.info("ray: XGBoost on %d workers, %d rounds", compute.train_workers, rounds)
            result = trainer.fit()
            with result.checkpoint.as_directory() as folder:
                model.load_model(os.path.join(folder, MODEL_FILE))
        finally:
            shutil.rmtree(storage, ignore_errors=True)
    model.inner_rounds_, model.inner_auc_ = model.rounds, float("nan")
    return Pipeline([("prep", prep), ("model", model)])
