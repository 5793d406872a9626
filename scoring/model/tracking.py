"""MLflow mirror of a pipeline run, and the `credit-scoring` registry with its champion / challenger aliases.

reports/metrics.json stays the canonical record (DVC tracks it); MLflow gets a copy of the run: flattened params,
metrics, reports, the registered model (the whole scorer: `scoring.serving.registered_model`, which the evaluate
stage hands over as `log_model`, since this layer cannot import serving), the threshold, the git commit and the DVC
experiment name. The `champion` alias moves to a new version only if that version has a lower business cost than
the current champion on the same raw holdout: both are scored through their own registered model (raw applications
in, decisions at each version's own threshold out, with each version's own history lookup), so the comparison is
fair whatever features, data or threshold each was trained with.
"""
from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def log_run(p: TrackingSettings, params: dict[str, Any], metrics: dict[str, Any], log_model: Callable[[], Any],
            artifacts: list[Path], cost_of: Callable[[str], float], tags: dict[str, str] | None = None,
            blocked: str | None = None) -> dict[str, Any]:
    """One MLflow run: params, metrics, artifacts, the registered model (`log_model()`, in the run: MLflow's
    ModelInfo); then the alias decision, `cost_of(model_uri)` being a version's business cost on this holdout.
    `blocked` (why, e.g. a failed fairness gate) keeps the version from becoming champion."""
    mlflow = setup(p)
    with mlflow.start_run(run_name=os.environ.get("DVC_EXP_NAME") or None) as run:
        mlflow.set_tags({"git_commit": git_commit(), "dvc_experiment": os.environ.get("DVC_EXP_NAME", "workspace"),
                         **(tags or {})})
        mlflow.log_params(flatten(params))
        mlflow.log_metrics(numeric_metrics(metrics))
        for path in artifacts:
            if path.is_dir():
                mlflow.log_artifacts(str(path), artifact_path=path.name)
            elif path.exists():
                mlflow.log_artifact(str(path))
        version = log_model().registered_model_version
    alias = assign_alias(version, metrics["threshold"], cost_of, blocked)
    logger.info("MLflow run %s, %s version %s -> %s (%s)", run.info.run_id, MODEL_NAME, version, alias,
                resolve_uri(p))
    return {"run_id": run.info.run_id, "version": int(version), "alias": alias}


def version_uri(version: str | int) -> str:
    return f"models:/{MODEL_NAME}/{version}"


def champion_uri() -> str:
    return f"models:/{MODEL_NAME}@{CHAMPION}"


def assign_alias(version: str | int, threshold: float, cost_of: Callable[[str], float],
                 blocked: str | None = None) -> str:
    """champion if this version's cost on this holdout is below the current champion's on the same holdout, else
    challenger. Each is scored through its own registered model. A `blocked` version (a failed gate: the reason,
    kept as its `champion_blocked` tag) is challenger whatever its cost."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    cost = cost_of(version_uri(version))
    client.set_model_version_tag(MODEL_NAME, str(version), "threshold", str(threshold))
    client.set_model_version_tag(MODEL_NAME, str(version), "business_cost", str(cost))
    if blocked:
        client.set_model_version_tag(MODEL_NAME, str(version), "champion_blocked", blocked)
        client.set_registered_model_alias(MODEL_NAME, CHALLENGER, str(version))
        logger.warning("v%s stays challenger: %s", version, blocked)
        return CHALLENGER
    try:
        current = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    except MlflowException:
        current = None
    if current is not None and str(current.version) != str(version):
        try:
            champion_cost = cost_of(champion_uri())
        except Exception as error:  # a champion that cannot score raw applications cannot stay champion
            logger.warning("current champion (version %s) cannot score this holdout: %s", current.version, error)
            champion_cost = float("inf")
        client.set_model_version_tag(MODEL_NAME, str(version), "champion_cost_on_same_holdout", str(champion_cost))
        if champion_cost <= cost:
            client.set_registered_model_alias(MODEL_NAME, CHALLENGER, str(version))
            logger.info("champion v%s keeps its place: cost %.4f <= %.4f (v%s) on this holdout", current.version,
                        champion_cost, cost, version)
            return CHALLENGER
        logger.info("v%s becomes champion: cost %.4f < %.4f (v%s) on this holdout", version, cost, champion_cost,
                    current.version)
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, str(version))
    return CHAMPION


def model_files(model_uri: str) -> dict[str, Path]:
    """The files a registered scorer carries (its pyfunc artifacts: model, threshold, history), downloaded here."""
    import mlflow
    from mlflow.models import Model

    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    spec = Model.load(str(local / "MLmodel")).flavors["python_function"].get("artifacts", {})
    return {name: local / entry["path"] for name, entry in spec.items()}
