"""The registered MLflow model is the whole scorer: raw applications in, the service's probability, decision and
reasons out, from MLflow's own loader and MLflow's own server (`mlflow models serve`, on 127.0.0.1, stopped at the
end); the champion gate scores each version through its own registered model, whatever its features."""
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import httpx
import joblib
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from scoring import contract, features
from scoring.model import tracking
from scoring.model.cost import business_cost
from scoring.ray_runtime import free_port
from scoring.serving import request_schema
from scoring.serving.batch import score_table
from scoring.serving.engine import ScoringEngine
from scoring.serving.registered_model import VALIDATED, engine_from, log_scorer, pyfunc_decisions, raw_rows
from serve.api import build_api
from serve.loopback import wait_until_answering

from ..conftest import SETTINGS, TINY_THRESHOLD, fit_model
from .conftest import stop_process

pytestmark = pytest.mark.integration
HOLDOUT = 600


@pytest.fixture(scope="module")
def holdout(small_data) -> pd.DataFrame:
    """Raw labelled applications (TARGET included), as the evaluate stage hands them to the gate."""
    return small_data.tables["application_train"].tail(HOLDOUT).reset_index(drop=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """An empty MLflow store (SQLite) that MLFLOW_TRACKING_URI points at for this module."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    before = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ.update(MLFLOW_TRACKING_URI=uri, MLFLOW_DISABLE_TELEMETRY="true")
    yield replace(SETTINGS.tracking, enabled=True, uri=uri, experiment="test", artifacts=str(root / "mlruns"))
    mlflow.set_tracking_uri(None)
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


def register(store, files: dict[str, Path], holdout: pd.DataFrame, family: str) -> dict:
    """What the evaluate stage does: one run, the whole scorer registered, the gate on the raw holdout."""
    y = holdout["TARGET"].to_numpy()
    threshold = json.loads(files["threshold"].read_text())["threshold"]
    return tracking.log_run(
        store, {"train": {"model": family}}, {"business_cost": 0.0, "threshold": threshold},
        lambda: log_scorer(files, holdout.head(5), 5, tracking.MODEL_NAME), [],
        lambda uri: business_cost(y, pyfunc_decisions(uri, holdout), SETTINGS.cost), {"model_family": family})


def project_files(root: Path) -> dict[str, Path]:
    paths = SETTINGS.under(root).paths
    return {"model": paths.model, "threshold": paths.threshold_json, "history": paths.history}


@pytest.fixture(scope="module")
def champion(store, tiny_project, holdout) -> dict:
    return register(store, project_files(tiny_project), holdout, "xgboost")


def test_the_registered_model_answers_like_the_engine(champion, tiny_project, tiny_model, small_data, holdout):
    assert champion["alias"] == "champion"
    model = mlflow.pyfunc.load_model(tracking.champion_uri())
    answers = model.predict(raw_rows(holdout), params={"reasons": 3})
    engine = ScoringEngine(tiny_model, TINY_THRESHOLD, small_data.history)
    scores = engine.score_table(holdout, explain=True)
    np.testing.assert_allclose(answers["probability"], scores.probability, rtol=0, atol=1e-12)
    assert answers["decision"].tolist() == scores.decisions.tolist()
    assert set(answers["decision"]) == {"granted", "refused"} and (answers["threshold"] == TINY_THRESHOLD).all()
    assert answers["reason_3_feature"].tolist() == scores.reasons(3).columns()["reason_3_feature"].tolist()
    assert "reason_4_feature" not in answers
    assert "reason_5_feature" in model.predict(raw_rows(holdout.head(2)))  # the signature's default: reasons.default
    assert "reason_1_feature" not in model.predict(raw_rows(holdout.head(2)), params={"reasons": 0})


def test_the_signature_is_the_raw_application_schema(champion, holdout):
    meta = mlflow.models.get_model_info(tracking.champion_uri())
    inputs = {spec.name: spec for spec in meta.signature.inputs.inputs}
    assert list(inputs) == contract.table("application_test").names and "TARGET" not in inputs
    assert inputs["AMT_CREDIT"].required and not inputs["EXT_SOURCE_1"].required
    assert meta.signature.params.to_dict() == [{"name": "reasons", "type": "long", "default": 5, "shape": None}]
    served = Path(mlflow.artifacts.download_artifacts(f"{tracking.champion_uri()}/serving_input_example.json"))
    split = json.loads(served.read_text())["dataframe_split"]
    example = pd.DataFrame(split["data"], columns=split["columns"])
    assert list(example.columns) == contract.table("application_test").names and len(example) == 5


def test_rows_that_break_the_contract_are_refused_by_name(champion, holdout):
    model = mlflow.pyfunc.load_model(tracking.champion_uri())
    bad = raw_rows(holdout.head(3)).assign(AMT_CREDIT=[1.0, -5.0, 2.0])
    with pytest.raises(MlflowException, match=r"row 1 \(AMT_CREDIT\): must be >= 0"):
        model.predict(bad)
    optional_left_out = raw_rows(holdout.head(3)).drop(columns=["EXT_SOURCE_1", "OWN_CAR_AGE"])
    assert len(model.predict(optional_left_out)) == 3


def test_mlflow_models_serve_answers_like_the_service(champion, store, tiny_project, holdout, tmp_path):
    """MLflow's own server for models:/credit-scoring@champion against the Ray Serve service's HTTP layer (in
    process, reading the same registry): the same probability and decision for every applicant."""
    applicants = raw_rows(holdout.head(25))
    service = build_api(tiny_project, registry=True, production_log=False)
    assert service.service.info["version"] == str(champion["version"])
    bodies = request_schema.records(applicants)
    local = json.loads(service.handle("POST", "/score/batch", json.dumps({"applicants": bodies}).encode(),
                                      query="reasons=0").body)["results"]
    port = free_port()
    log = open(tmp_path / "mlflow-serve.log", "w")  # noqa: SIM115
    bin_dir = Path(sys.executable).parent  # MLflow starts `uvicorn` from PATH (the README says so too)
    env = {**os.environ, "MLFLOW_TRACKING_URI": store.uri, "MLFLOW_DISABLE_TELEMETRY": "true",
           "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    server = subprocess.Popen([str(bin_dir / "mlflow"), "models", "serve", "-m",
                               tracking.champion_uri(), "--env-manager", "local", "--host", "127.0.0.1", "--port",
                               str(port)], env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/ping", 180, lambda: server.poll() is None,
                             tmp_path / "mlflow-serve.log")
        body = {"dataframe_records": bodies, "params": {"reasons": 2}}
        served = httpx.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=60)
        assert served.status_code == 200, served.text
        predictions = served.json()["predictions"]
        bad = httpx.post(f"http://127.0.0.1:{port}/invocations", timeout=60,
                         json={"dataframe_records": [{**bodies[0], "AMT_CREDIT": -1}]})
    finally:
        stop_process(server)
        log.close()
    assert [p["SK_ID_CURR"] for p in predictions] == [r["SK_ID_CURR"] for r in local]
    np.testing.assert_allclose([p["probability"] for p in predictions], [r["probability"] for r in local],
                               rtol=0, atol=1e-6)
    assert [p["decision"] for p in predictions] == [r["decision"] for r in local]
    assert all(p["reason_2_feature"] for p in predictions)
    assert bad.status_code == 400 and "AMT_CREDIT" in bad.text


@pytest.fixture(scope="module")
def application_only(tmp_path_factory, small_data) -> dict[str, Path]:
    """A second pipeline's files: a model trained on the application fields only, no history lookup."""
    root = tmp_path_factory.mktemp("application_only")
    files = project_files(root)
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    own = [c for c in small_data.X.columns if c not in small_data.history.columns]
    joblib.dump(fit_model("xgboost", small_data.X[own], small_data.y, n_estimators=30, max_depth=2), files["model"])
    files["threshold"].write_text(json.dumps({"threshold": TINY_THRESHOLD}))
    pd.DataFrame(index=pd.Index([], name=features.KEY, dtype="int64")).to_parquet(files["history"])
    return files


def test_the_gate_compares_models_with_different_features_on_the_same_raw_holdout(
        champion, store, application_only, holdout):
    """The champion uses history features, the challenger the application only: each is scored through its own
    registered model on the same raw applications (no 'columns are missing', no infinite cost), and the cheaper
    one holds the alias."""
    y = holdout["TARGET"].to_numpy()
    costs = {uri: business_cost(y, pyfunc_decisions(uri, holdout), SETTINGS.cost)
             for uri in (tracking.champion_uri(),)}
    second = register(store, application_only, holdout, "xgboost-application-only")
    client = MlflowClient()
    version = client.get_model_version(tracking.MODEL_NAME, str(second["version"]))
    champion_cost = float(version.tags["champion_cost_on_same_holdout"])
    assert np.isfinite(champion_cost) and champion_cost == pytest.approx(costs[tracking.champion_uri()])
    cost = float(version.tags["business_cost"])
    assert second["alias"] == ("champion" if cost < champion_cost else "challenger")
    holder = client.get_model_version_by_alias(tracking.MODEL_NAME, "champion").version
    assert str(holder) == str(second["version"] if cost < champion_cost else champion["version"])


def test_a_version_carrying_its_validated_model_is_measured_by_it(store, tiny_project, application_only, holdout):
    """train.release: all_labelled registers the served model (fitted on the holdout too) with the model fitted
    without the holdout as `validated`: the gate measures the version by the latter, while the version serves the
    former."""
    files = {**project_files(tiny_project), VALIDATED: application_only["model"]}
    version = register(store, files, holdout, "xgboost-released")
    uri = tracking.version_uri(version["version"])
    raw = raw_rows(holdout)
    validated = engine_from(application_only["model"], files["threshold"], files["history"])
    expected = score_table(validated, raw, 0)["decision"].to_numpy() == "refused"
    served = mlflow.pyfunc.load_model(uri).predict(raw, params={"reasons": 0})["decision"].to_numpy() == "refused"
    measured = pyfunc_decisions(uri, holdout)
    assert np.array_equal(measured, expected) and not np.array_equal(measured, served)
    tags = MlflowClient().get_model_version(tracking.MODEL_NAME, str(version["version"])).tags
    assert float(tags["business_cost"]) == pytest.approx(business_cost(holdout["TARGET"].to_numpy(), expected,
                                                                       SETTINGS.cost))
