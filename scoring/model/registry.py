"""Where scoring gets its model and threshold: the registry's champion, or the pipeline's own outputs."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib

from scoring.model import tracking
from scoring.settings import Paths, Settings, TrackingSettings

logger = logging.getLogger(__name__)


@dataclass
class ScoringModel:
    model: Any
    threshold: float
    source: str
    version: str | None = None
    alias: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    history: Path | None = None
    """The history lookup this model was registered with (None: the pipeline's, paths.history)."""


def from_pipeline(paths: Paths) -> ScoringModel:
    """The model and threshold that `dvc repro` wrote (train and threshold stages)."""
    for path in (paths.model, paths.threshold_json):
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run `dvc repro` (or `make run`) first")
    threshold = float(json.loads(paths.threshold_json.read_text())["threshold"])
    metrics = json.loads(paths.metrics_json.read_text()) if paths.metrics_json.exists() else {}
    return ScoringModel(joblib.load(paths.model), threshold, str(paths.model), metrics=numeric(metrics))


def numeric(metrics: dict[str, Any]) -> dict[str, float]:
    return {key: value for key, value in metrics.items() if isinstance(value, (int, float))}


def from_registry(p: TrackingSettings) -> ScoringModel:
    """models:/credit-scoring@champion: the fitted model, threshold and history lookup registered with it (the files
    its pyfunc carries, so the service and `mlflow models serve` score alike)."""
    tracking.setup(p)
    from mlflow import MlflowClient

    version = MlflowClient().get_model_version_by_alias(tracking.MODEL_NAME, tracking.CHAMPION)
    files = tracking.model_files(tracking.version_uri(version.version))
    if missing := {"model", "threshold", "history"} - set(files):
        raise FileNotFoundError(f"{tracking.version_uri(version.version)} lacks the artifact(s) {sorted(missing)}: "
                                "not a whole scorer (registered before scoring.serving.registered_model?)")
    threshold = float(json.loads(files["threshold"].read_text())["threshold"])
    metrics = MlflowClient().get_run(version.run_id).data.metrics if version.run_id else {}
    return ScoringModel(joblib.load(files["model"]), threshold, tracking.champion_uri(), str(version.version),
                        alias=tracking.CHAMPION, metrics=numeric(metrics), history=files["history"])


def load_scoring_model(settings: Settings, prefer_registry: bool = True) -> ScoringModel:
    """The champion when a registry answers, else the DVC outputs; never a made-up model."""
    p = settings.tracking
    if prefer_registry and p.enabled:
        try:
            return from_registry(p)
        except Exception as error:  # any registry failure falls back to the pipeline's files
            logger.warning("no champion in the registry (%s); using the pipeline's outputs", error)
    return from_pipeline(settings.paths)
