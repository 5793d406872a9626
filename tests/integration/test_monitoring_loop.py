"""The monitoring loop end to end on the embedded generator, against a live service on 127.0.0.1 (serve.baseline:
the same ScoringService and HTTP layer as Ray Serve, without Ray): a shifted population is replayed and logged, the
drift stage flags it, the generator's outcomes for those applicants arrive (`serve.replay --outcomes`), and the
performance stage measures them and recommends a retrain. Everything started is stopped."""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml

from scoring.model import intervals
from scoring.model.cost import business_cost
from scoring.ray_runtime import free_port
from serve import replay
from serve.loopback import wait_until_answering

from ..conftest import REPO, SETTINGS
from .conftest import stop_process
from .test_drift import build_data, make_project, run_stage

pytestmark = pytest.mark.integration
ROWS, SEED, THRESHOLD = 1_500, 7, 0.09


def training_figures(data: Path, root: Path) -> dict:
    """evaluate's figures for this model on its holdout (reports/metrics.json) and the served threshold."""
    model = joblib.load(data / "models" / "model.joblib")
    holdout = pd.read_parquet(data / "features" / "holdout.parquet")
    y, proba = holdout["TARGET"].to_numpy(), model.predict_proba(holdout.drop(columns="TARGET"))[:, 1]
    metrics = {"auc": intervals.auc(y, proba), "business_cost": business_cost(y, proba >= THRESHOLD, SETTINGS.cost),
               "approval_rate": float((proba < THRESHOLD).mean()), "threshold": THRESHOLD}
    (root / "reports" / "metrics.json").write_text(json.dumps(metrics))
    (root / "reports" / "threshold.json").write_text(json.dumps({"threshold": THRESHOLD}))
    return metrics


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, dict]:
    data = build_data(tmp_path_factory.mktemp("loop_data"), drift_on=False)
    root = make_project(tmp_path_factory.mktemp("loop"), data)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["paths"]["outcomes"] = str(root / "outcomes")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "production").mkdir()
    return root, training_figures(data, root)


@pytest.fixture
def service(project, tmp_path):
    """serve.baseline on a free loopback port, serving the project's model and logging to its production folder."""
    root, port, log = project[0], free_port(), tmp_path / "service.log"
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, "-m", "serve.baseline", "--pipeline-model", "--port", str(port),
                                    "--production-log", str(root / "production")], cwd=root, stdout=output,
                                   stderr=output, env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            wait_until_answering(f"http://127.0.0.1:{port}/health", 120, lambda: process.poll() is None, log)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop_process(process)


def run_performance(root: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    stage = importlib.import_module("stages.performance")
    with monkeypatch.context() as m:
        m.chdir(root)
        m.setenv("MPLCONFIGDIR", str(root / ".matplotlib"))
        stage.main()
    return json.loads((root / "reports" / "performance.json").read_text())


def test_shifted_applicants_are_flagged_then_their_outcomes_recommend_a_retrain(project, service, monkeypatch):
    root, training = project
    sent = replay.replay(service, ROWS, drift=True, clients=4, seed=SEED, params_path=root / "params.yaml",
                         progress=False)
    assert (sent["scored"], sent["failed"]) == (ROWS, 0)
    production = run_stage(root, monkeypatch)["production"]
    assert production["rows_logged"] == ROWS
    assert {"AMT_INCOME_TOTAL", "EXT_SOURCE_2", "DAYS_BIRTH"} <= set(production["drifted_columns"])

    written = replay.main(["--outcomes", "--rows", str(ROWS), "--seed", str(SEED), "--params",
                           str(root / "params.yaml")])
    outcomes = pd.read_csv(written["outcomes"])
    assert len(outcomes) == ROWS and outcomes["SK_ID_CURR"].tolist() == list(range(sent["first_id"],
                                                                                   sent["last_id"] + 1))
    report = run_performance(root, monkeypatch)
    assert report["joined"] == ROWS and report["overall"]["defaults"] == int(outcomes["TARGET"].sum())
    assert report["verdict"] == "retrain_recommended", report["reasons"]
    calibration = report["overall"]["calibration"]
    assert calibration["high"] < 1  # the shift's own mark: risk overstated, whichever figure drives the verdict
    assert any(reason.startswith(("observed / predicted", "AUC", "business cost")) for reason in report["reasons"])
    assert report["overall"]["approval_rate"]["high"] < training["approval_rate"]
    assert np.isclose(report["training"]["auc"], training["auc"])
    assert (root / "reports" / "performance" / "classification_report.html").stat().st_size > 100_000
