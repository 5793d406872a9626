"""MLflow mirror of a pipeline run, and the `credit-scoring` registry with its champion / challenger aliases.

reports/metrics.json stays the canonical record (DVC tracks it); MLflow gets a copy of the run: flattened params,
metrics, reports, the model with its signature, the threshold, the git commit and the DVC experiment name.
The `champion` alias moves to a new version only if that version has a lower business cost than the current
champion on the same evaluation data: the champion is re-scored on this run's holdout, so the comparison is fair
even when the data changed.
"""
from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from scoring.settings import TrackingSettings, rooted_uri

logger = logging.getLogger(__name__)
MODEL_NAME = "credit-scoring"
CHAMPION, CHALLENGER = "champion", "challenger"


def resolve_uri(p: TrackingSettings) -> str:
    """MLFLOW_TRACKING_URI wins; a relative SQLite path is made absolute (DVC may run stages elsewhere)."""
    return rooted_uri(os.environ.get("MLFLOW_TRACKING_URI", p.uri), Path.cwd())


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:500]
    return out


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def numeric_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update(numeric_metrics(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def setup(p: TrackingSettings) -> Any:
    import mlflow

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(resolve_uri(p))
    if mlflow.get_experiment_by_name(p.experiment) is None:
        mlflow.create_experiment(p.experiment, artifact_location=Path(p.artifacts).resolve().as_uri())
    mlflow.set_experiment(p.experiment)
    return mlflow


def log_run(p: TrackingSettings, params: dict[str, Any], metrics: dict[str, Any], model: Any, example: pd.DataFrame,
            artifacts: list[Path], eval_cost: Callable[[Any, float], float]) -> dict[str, Any]:
    """One MLflow run: params, metrics, artifacts, model (registered); then the alias decision."""
    mlflow = setup(p)
    from mlflow.models import infer_signature

    with mlflow.start_run(run_name=os.environ.get("DVC_EXP_NAME") or None) as run:
        mlflow.set_tags({"git_commit": git_commit(), "dvc_experiment": os.environ.get("DVC_EXP_NAME", "workspace"),
                         "model_family": getattr(model, "model_name", "")})
        mlflow.log_params(flatten(params))
        mlflow.log_metrics(numeric_metrics(metrics))
        for path in artifacts:
            if path.is_dir():
                mlflow.log_artifacts(str(path), artifact_path=path.name)
            elif path.exists():
                mlflow.log_artifact(str(path))
        signature = infer_signature(example, model.predict_proba(example)[:, 1])
        info = mlflow.sklearn.log_model(model, name="model", signature=signature, input_example=example.head(2),
                                        registered_model_name=MODEL_NAME, serialization_format="cloudpickle")
        version = info.registered_model_version
    alias = assign_alias(version, metrics["business_cost"], metrics["threshold"], eval_cost)
    logger.info("MLflow run %s, %s version %s -> %s (%s)", run.info.run_id, MODEL_NAME, version, alias,
                resolve_uri(p))
    return {"run_id": run.info.run_id, "version": int(version), "alias": alias}


def assign_alias(version: str | int, cost: float, threshold: float, eval_cost: Callable[[Any, float], float]) -> str:
    """champion if this version beats the current champion's cost on this holdout, else challenger."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    client.set_model_version_tag(MODEL_NAME, str(version), "threshold", str(threshold))
    client.set_model_version_tag(MODEL_NAME, str(version), "business_cost", str(cost))
    try:
        current = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    except MlflowException:
        current = None
    if current is not None and str(current.version) != str(version):
        try:
            champion = mlflow.sklearn.load_model(f"models:/{MODEL_NAME}@{CHAMPION}")
            champion_cost = eval_cost(champion, float(current.tags.get("threshold", 0.5)))
        except Exception as error:  # a champion that cannot score this data cannot stay champion
            logger.warning("current champion (version %s) cannot be scored on this holdout: %s", current.version, error)
            champion_cost = float("inf")
        if champion_cost <= cost:
            client.set_registered_model_alias(MODEL_NAME, CHALLENGER, str(version))
            logger.info("champion v%s keeps its place: cost %.4f <= %.4f", current.version, champion_cost, cost)
            return CHALLENGER
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, str(version))
    return CHAMPION
