"""Where scoring gets its model and threshold: the registry's champion, or the pipeline's own outputs."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib

from scoring.model import tracking

logger = logging.getLogger(__name__)


@dataclass
class ScoringModel:
    model: Any
    threshold: float
    source: str
    version: str | None = None
    alias: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


def from_pipeline(models_dir: Path, reports_dir: Path) -> ScoringModel:
    """The model and threshold that `dvc repro` wrote (train and threshold stages)."""
    model_path, threshold_path = models_dir / "model.joblib", reports_dir / "threshold.json"
    for path in (model_path, threshold_path):
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run `dvc repro` (or `make run`) first")
    threshold = float(json.loads(threshold_path.read_text())["threshold"])
    metrics_path = reports_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    return ScoringModel(joblib.load(model_path), threshold, str(model_path), metrics=numeric(metrics))


def numeric(metrics: dict[str, Any]) -> dict[str, float]:
    return {key: value for key, value in metrics.items() if isinstance(value, (int, float))}


def from_registry(p: tracking.TrackingParams) -> ScoringModel:
    """models:/credit-scoring@champion with the threshold stored on that version."""
    mlflow = tracking.setup(p)
    from mlflow import MlflowClient

    version = MlflowClient().get_model_version_by_alias(tracking.MODEL_NAME, tracking.CHAMPION)
    model = mlflow.sklearn.load_model(f"models:/{tracking.MODEL_NAME}@{tracking.CHAMPION}")
    metrics = MlflowClient().get_run(version.run_id).data.metrics if version.run_id else {}
    return ScoringModel(model, float(version.tags["threshold"]),
                        f"models:/{tracking.MODEL_NAME}@{tracking.CHAMPION}", str(version.version),
                        alias=tracking.CHAMPION, metrics=numeric(metrics))


def load_scoring_model(params: dict[str, Any], prefer_registry: bool = True) -> ScoringModel:
    """The champion when a registry answers, else the DVC outputs; never a made-up model."""
    from scoring.config import paths_from

    p = tracking.TrackingParams(**params.get("tracking", {}))
    if prefer_registry and p.enabled:
        try:
            return from_registry(p)
        except Exception as error:  # any registry failure falls back to the pipeline's files
            logger.warning("no champion in the registry (%s); using the pipeline's outputs", error)
    paths = paths_from(params)
    return from_pipeline(paths.models, paths.reports)
