"""A real MLflow store (SQLite in a temporary folder): runs, registry versions and the champion alias."""
import json
from dataclasses import replace

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.isotonic import IsotonicRegression

from scoring.model import tracking, training

from ..conftest import SETTINGS, train_settings

pytestmark = pytest.mark.integration


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    p = replace(SETTINGS.tracking, enabled=True, uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="test",
                artifacts=str(tmp_path / "mlruns"))
    yield p
    mlflow.set_tracking_uri(None)


def tiny_model() -> tuple[training.CalibratedScorer, pd.DataFrame]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"EXT_SOURCE_2": rng.random(300), "CODE_GENDER": rng.choice(["F", "M"], 300)})
    y = (rng.random(300) < 0.3 * (1 - X.EXT_SOURCE_2)).astype(int)
    p = train_settings(models=("logreg",))
    pipeline = training.build_pipeline("logreg", ["EXT_SOURCE_2"], ["CODE_GENDER"], p, float(y.mean())).fit(X, y)
    calibrator = IsotonicRegression(out_of_bounds="clip").fit(pipeline.predict_proba(X)[:, 1], y)
    return training.CalibratedScorer(pipeline, calibrator, "logreg"), X


def log(store, tmp_path, cost: float, champion_cost: float) -> dict:
    """One run whose model costs `cost` on the holdout while the current champion costs `champion_cost` (the gate's
    scoring through each version's registered model is tests/integration/test_registered_model.py's)."""
    model, X = tiny_model()
    metrics = {"auc": 0.7, "business_cost": cost, "threshold": 0.09, "confusion": {"tp": 1}}
    report = tmp_path / "metrics.json"
    report.write_text(json.dumps(metrics))
    params = {"cost": {"fn": 10, "fp": 1}, "train": {"models": ["logreg"]}}

    def log_model():
        return mlflow.sklearn.log_model(model, name="model", registered_model_name=tracking.MODEL_NAME,
                                        serialization_format="cloudpickle")

    def cost_of(uri: str) -> float:
        return champion_cost if uri == tracking.champion_uri() else cost

    return tracking.log_run(store, params, metrics, log_model, [report], cost_of, {"model_family": "logreg"})


def test_champion_moves_only_when_beaten_on_cost(store, tmp_path):
    first = log(store, tmp_path, cost=0.50, champion_cost=0.0)
    assert (first["version"], first["alias"]) == (1, "champion")
    worse = log(store, tmp_path, cost=0.60, champion_cost=0.50)
    assert (worse["version"], worse["alias"]) == (2, "challenger")
    client = MlflowClient()
    assert client.get_model_version_by_alias(tracking.MODEL_NAME, "champion").version in (1, "1")
    better = log(store, tmp_path, cost=0.40, champion_cost=0.50)
    assert (better["version"], better["alias"]) == (3, "champion")
    assert client.get_model_version_by_alias(tracking.MODEL_NAME, "champion").version in (3, "3")


def test_run_holds_params_metrics_artifacts_and_a_loadable_model(store, tmp_path):
    result = log(store, tmp_path, cost=0.5, champion_cost=0.0)
    run = MlflowClient().get_run(result["run_id"])
    assert run.data.params["cost.fn"] == "10" and run.data.metrics["business_cost"] == 0.5
    assert run.data.metrics["confusion.tp"] == 1 and len(run.data.tags["git_commit"]) > 0
    assert [a.path for a in MlflowClient().list_artifacts(result["run_id"]) if a.path == "metrics.json"]
    loaded = mlflow.sklearn.load_model(f"models:/{tracking.MODEL_NAME}@champion")
    _, X = tiny_model()
    np.testing.assert_allclose(loaded.predict_proba(X), tiny_model()[0].predict_proba(X))


def test_relative_sqlite_paths_are_made_absolute(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = tracking.resolve_uri(replace(SETTINGS.tracking, uri="sqlite:///mlflow.db"))
    assert uri.startswith("sqlite:////") and uri.endswith("/mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/m.db")
    assert tracking.resolve_uri(SETTINGS.tracking) == "sqlite:////elsewhere/m.db"
