"""The drift stage on generated data with the generator's drift on and off, on a production log, on Kaggle's own
application_test vs application_train (../shared), and its MLflow mirror.

Each project is built with the package's own functions (generate, contract types, features, a small XGBoost) into a
temporary folder; the stage script runs there on its own params.yaml.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml

from scoring import features
from scoring.data.io import read_raw_table, to_storage_types
from scoring.monitoring import drift
from scoring.settings import Paths
from scoring.synthetic.dataset import generate_dataset

from ..conftest import REPO, SETTINGS, SMALL, fit_model, shared_file

pytestmark = pytest.mark.integration

SIZE = {"n_applicants": 8_000, "n_test": 3_000, "seed": 5, "chunk_size": 20_000}
"""3,000 current rows: unshifted fields stay under 0.05 (threshold 0.1), shifted ones above 0.2 (seeds 1-6)."""
SHIFTED_FIELDS = {"AMT_INCOME_TOTAL", "DAYS_BIRTH", "EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3",
                  "ORGANIZATION_TYPE"}
SHIFTED_FEATURES = ["EXT_SOURCE_MEAN", "EXT_SOURCE_MAX", "EXT_SOURCE_2", "AGE_YEARS", "AMT_INCOME_TOTAL",
                    "ORGANIZATION_TYPE"]
"""Model features that are shifted fields or summaries of them (PSI 0.45-1.0 here). Ratios with income move less
(CREDIT_TO_INCOME about 0.17: the credit's own spread dilutes a x1.35 income) and are left out of the check."""
STEADY_FEATURES = ["AMT_CREDIT", "CREDIT_TO_GOODS", "DAYS_EMPLOYED", "NAME_EDUCATION_TYPE", "OCCUPATION_TYPE",
                   "INST_PAID_SHARE_MEAN", "BURO_DAYS_CREDIT_MEAN"]
"""Model features the generator's drift leaves alone (amount asked, employment, education, histories)."""




def write_features(out: Path, apps: dict[str, pd.DataFrame], history: pd.DataFrame) -> None:
    """featurize's outputs: train / holdout (with TARGET), test, history."""
    train = apps["application_train"]
    labelled = features.build_features(train, history)
    fit, holdout = features.split_holdout(labelled, train.set_index("SK_ID_CURR")["TARGET"], 0.2, 0)
    out.mkdir(parents=True)
    fit.to_parquet(out / "train.parquet")
    holdout.to_parquet(out / "holdout.parquet")
    features.build_features(apps["application_test"], history).to_parquet(out / "test.parquet")
    history.to_parquet(out / "history.parquet")


def build_data(base: Path, drift_on: bool) -> Path:
    """prepared/, features/, models/model.joblib of a generated data set (the pipeline's inputs to drift)."""
    p = replace(SMALL, **SIZE, drift=replace(SMALL.drift, enabled=drift_on))
    generate_dataset(p, base / "synthetic", progress=False)
    tables = {path.stem: to_storage_types(pd.read_parquet(path), path.stem)
              for path in (base / "synthetic").glob("*.parquet") if path.stem != "oracle"}
    (base / "prepared").mkdir()
    for name in ("application_train", "application_test"):
        tables[name].to_parquet(base / "prepared" / f"{name}.parquet", index=False)
    write_features(base / "features", tables, features.history_features(tables))
    fit = pd.read_parquet(base / "features" / "train.parquet")
    (base / "models").mkdir()
    joblib.dump(fit_model("xgboost", fit.drop(columns="TARGET"), fit["TARGET"].to_numpy(), n_estimators=60,
                          max_depth=3), base / "models" / "model.joblib")
    return base


@pytest.fixture(scope="module")
def drifted_data(tmp_path_factory) -> Path:
    return build_data(tmp_path_factory.mktemp("drift_on"), drift_on=True)


@pytest.fixture(scope="module")
def steady_data(tmp_path_factory) -> Path:
    return build_data(tmp_path_factory.mktemp("drift_off"), drift_on=False)


def make_project(root: Path, data: Path, tracking: bool = False) -> Path:
    """A project folder for the stage: params.yaml pointing at `data`, its own reports/ and production log folder."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["paths"].update({name: str(data / name) for name in ("synthetic", "prepared", "features", "models")})
    params["paths"].update({"reports": str(root / "reports"), "production": str(root / "production")})
    params["tracking"].update({"enabled": tracking, "uri": f"sqlite:///{root}/mlflow.db",
                               "artifacts": str(root / "mlruns")})
    params["drift"]["psi_top_features"] = len(SHIFTED_FEATURES + STEADY_FEATURES)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    importance = pd.DataFrame({"feature": SHIFTED_FEATURES + STEADY_FEATURES,
                               "mean_abs_shap": np.linspace(1, 0.1, len(SHIFTED_FEATURES + STEADY_FEATURES))})
    (root / "reports" / "evaluate").mkdir(parents=True)
    importance.to_csv(root / "reports" / "evaluate" / "shap_importance.csv", index=False)
    return root


def run_stage(root: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """stages/drift.py's main() in `root` (in process: Evidently is imported once per session)."""
    spec = importlib.util.spec_from_file_location("stage_drift", REPO / "stages" / "drift.py")
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    with monkeypatch.context() as m:
        m.chdir(root)
        m.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        m.setenv("MPLCONFIGDIR", str(root / ".matplotlib"))
        stage.main()
    return json.loads((root / "reports" / "drift.json").read_text())


def log_lines(apps: pd.DataFrame, proba: np.ndarray) -> list[str]:
    """The service's production log format: one scored applicant per line."""
    lines = []
    for (_, row), p in zip(apps.iterrows(), proba):
        applicant = {k: (None if pd.isna(v) else v) for k, v in row.items()}
        applicant["SK_ID_CURR"] = None if len(lines) % 25 == 0 else applicant["SK_ID_CURR"]
        lines.append(json.dumps({"ts": f"2026-11-25T10:{len(lines) % 60:02d}:00.000+00:00", "model_version": "5",
                                 "applicant": applicant, "probability": float(p),
                                 "decision": "refused" if p >= 0.1 else "granted"}))
    return lines


@pytest.fixture(scope="module")
def drifted_run(drifted_data, tmp_path_factory) -> tuple[Path, dict]:
    root = make_project(tmp_path_factory.mktemp("project_on"), drifted_data, tracking=True)
    with pytest.MonkeyPatch.context() as monkeypatch:
        return root, run_stage(root, monkeypatch)


def test_drift_on_flags_the_shifted_fields_and_only_them(drifted_run):
    root, report = drifted_run
    assert set(report["drifted_columns"]) == SHIFTED_FIELDS
    assert report["n_drifted"] == len(SHIFTED_FIELDS) and report["n_columns"] == len(SETTINGS.drift.columns)
    assert report["dataset_drift"] == 0  # 6 of 24 fields, under the 0.5 share
    assert report["drifted_features"] == SHIFTED_FEATURES
    psi = {r["feature"]: r["psi"] for r in report["features_psi"]}
    assert max(psi[f] for f in STEADY_FEATURES) < 0.05 and min(psi[f] for f in SHIFTED_FEATURES) > 0.4, psi
    assert report["prediction_drift"] == 1
    assert report["mean_probability_current"] > report["mean_probability_reference"] + 0.02
    assert report["production"] == {"rows": 0}
    assert sorted(p.name for p in (root / "reports" / "drift").iterdir()) == [
        "column_drift.png", "drift_report.html", "feature_psi.png", "score_distribution.png"]
    assert (root / "reports" / "drift" / "drift_report.html").stat().st_size > 100_000


@pytest.fixture(scope="module")
def steady_run(steady_data, drifted_data, tmp_path_factory) -> tuple[Path, dict]:
    """Undrifted training and application_test data, plus a production log of 500 applicants from the drifted
    population (two files, and one line cut short as by a crash)."""
    root = make_project(tmp_path_factory.mktemp("project_off"), steady_data)
    apps = pd.read_parquet(drifted_data / "prepared" / "application_test.parquet").head(500)
    lines = log_lines(apps, np.full(len(apps), 0.08))
    (root / "production").mkdir()
    (root / "production" / "requests-1.jsonl").write_text("\n".join(lines[:300]) + "\n")
    (root / "production" / "requests-2.jsonl").write_text("\n".join(lines[300:]) + "\n" + lines[0][:40] + "\n")
    with pytest.MonkeyPatch.context() as monkeypatch:
        return root, run_stage(root, monkeypatch)


def test_drift_off_flags_nothing(steady_run):
    _, report = steady_run
    assert report["drifted_columns"] == [] and report["n_drifted"] == 0 and report["dataset_drift"] == 0
    assert max(c["score"] for c in report["columns"]) < 0.07
    assert report["drifted_features"] == [] and report["psi_max"] < 0.05
    assert report["prediction_drift"] == 0 and report["prediction_psi"] < 0.05


def test_production_log_is_read_and_tested_on_its_own(steady_run):
    """The logged applicants come from the drifted population: their section flags the shifted fields, while the
    application_test section (undrifted) flags none."""
    root, report = steady_run
    production = report["production"]
    assert production["rows"] == 500 and production["files"] == 2 and production["skipped_lines"] == 1
    assert production["model_versions"] == ["5"] and production["mean_probability_logged"] == pytest.approx(0.08)
    assert SHIFTED_FIELDS <= set(production["drifted_columns"])
    assert set(SHIFTED_FEATURES) <= set(production["drifted_features"])
    assert production["prediction_drift"] == 1
    assert production["mean_probability_current"] > report["mean_probability_current"]
    assert (root / "reports" / "drift" / "drift_report_production.html").exists()


def test_drift_run_is_mirrored_to_mlflow(drifted_run):
    from mlflow import MlflowClient

    root, report = drifted_run
    client = MlflowClient(tracking_uri=f"sqlite:///{root}/mlflow.db")
    experiment = client.get_experiment_by_name("credit-scoring")
    runs = client.search_runs([experiment.experiment_id], "tags.stage = 'drift'")
    assert len(runs) == 1
    run = runs[0]
    assert run.data.metrics["share_drifted"] == report["share_drifted"]
    assert run.data.metrics["prediction_psi"] == report["prediction_psi"]
    assert run.data.metrics["production.rows"] == 0
    assert run.data.params["drift.psi_threshold"] == "0.2"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"drift.json", "drift"} <= artifacts
    assert "drift/drift_report.html" in {a.path for a in client.list_artifacts(run.info.run_id, "drift")}


def real_project(root: Path, steady_data: Path) -> Paths:
    """Kaggle's 10,000 coherent training applicants vs its complete application_test (48,744), application fields
    only on both sides (the test applicants have no history rows here), scored by the generated data's model."""
    tables = {name: to_storage_types(read_raw_table(shared_file(relative), name), name) for name, relative in (
        ("application_train", "coherent10k/application_train.csv.gz"),
        ("application_test", "application_test.csv.gz"))}
    (root / "prepared").mkdir(parents=True)
    for name, frame in tables.items():
        frame.to_parquet(root / "prepared" / f"{name}.parquet", index=False)
    write_features(root / "features", tables, pd.DataFrame(index=pd.Index([], name=features.KEY, dtype="int64")))
    shutil.copytree(steady_data / "models", root / "models")
    (root / "reports" / "evaluate").mkdir(parents=True)
    pd.DataFrame({"feature": ["EXT_SOURCE_MEAN", "EXT_SOURCE_2", "EXT_SOURCE_3", "CREDIT_TO_GOODS", "DAYS_EMPLOYED",
                              "AGE_YEARS", "ANNUITY_TO_INCOME", "CREDIT_TO_INCOME", "AMT_CREDIT", "NAME_CONTRACT_TYPE"],
                  "mean_abs_shap": np.linspace(1, 0.1, 10)}).to_csv(root / "reports/evaluate/shap_importance.csv",
                                                                    index=False)
    return replace(
        SETTINGS.paths, **{name: root / name for name in ("prepared", "features", "models", "reports", "production")})


@pytest.mark.shared_data
def test_real_kaggle_test_against_train(steady_data, tmp_path):
    paths = real_project(tmp_path, steady_data)
    out = tmp_path / "reports" / "drift"
    out.mkdir()
    report = drift.build_report(paths, SETTINGS.drift, out)
    assert report["rows"] == 48_744 and report["reference_rows"] == 10_000
    assert (out / "drift_report.html").stat().st_size > 100_000
    moved = sorted(report["columns"], key=lambda c: -(c["score"] or 0))
    print("real application_test vs coherent10k train:", [(c["column"], c["stattest"], c["score"], c["drifted"])
                                                         for c in moved[:8]])
    print("PSI:", [(r["feature"], r["psi"]) for r in report["features_psi"]],
          "prediction:", {k: report[k] for k in ("prediction_psi", "prediction_ks", "mean_probability_reference",
                                                 "mean_probability_current")})
    assert "NAME_CONTRACT_TYPE" in report["drifted_columns"]  # revolving loans: 9.2% of train, 0.9% of test


# ---- a hostile log --------------------------------------------------------------------------------------------------

JUNK = (1.8e308, -1.8e308, 4.8e27, 10**30, -1.0, 2.5, float("inf"), float("nan"), "1e400 dollars", "", None, [1],
        {"a": 1}, True, "NOT A CATEGORY")
"""What a fuzzer puts in a field (the standard library's JSON writes 10**30 exactly, inf and nan as bare tokens)."""
BROKEN = {"DAYS_REGISTRATION": 1.8e308, "CNT_CHILDREN": 4.8e27, "AMT_CREDIT": float("inf"),
          "AMT_REQ_CREDIT_BUREAU_MON": 1.8e308, "ORGANIZATION_TYPE": "NOT A CATEGORY"}
"""Values an older service accepted and logged (the issue's log): the writer takes whatever it is given."""


def fuzzed(body: dict, rng: np.random.Generator) -> bytes:
    out = dict(body)
    for name in rng.choice(sorted(out), rng.integers(1, 4), replace=False):
        out[name] = JUNK[rng.integers(len(JUNK))]
    return json.dumps(out).encode()


def at_the_bounds(body: dict, rng: np.random.Generator) -> dict:
    """The applicant with every bounded number at its contract minimum or maximum: legal, and extreme."""
    from scoring import contract

    out = dict(body)
    for col in contract.table("application_test").columns:
        if col.is_numeric and col.min is not None and col.max is not None and col.name != "SK_ID_CURR":
            out[col.name] = col.min if rng.random() < 0.5 else col.max
    return out


def hostile_log(root: Path, apps: pd.DataFrame) -> dict:
    """Fuzzed, extreme and test requests through the service's own HTTP layer (in process), then what an older
    service logged; returns what was logged as production traffic."""
    import orjson

    from scoring.monitoring import production_log as pl
    from scoring.serving import request_schema
    from serve.api import build_api

    api = build_api(root, registry=False, production_log=str(root / "production"))
    bodies, rng, logged = request_schema.records(apps.head(900)), np.random.default_rng(3), {"service": 0, "test": 0}
    for i, body in enumerate(bodies):
        kind, raw = ("test", orjson.dumps(body)) if i % 9 == 0 else (None, fuzzed(body, rng) if i % 3 else
                                                                      orjson.dumps(at_the_bounds(body, rng)))
        reply = api.handle("POST", "/score", raw, "application/json", "reasons=0", None, kind)
        assert reply.status < 500, reply.body[:300]
        logged["test" if kind else "service"] += reply.status == 200
    api.service.log.close()
    older = pl.ProductionLog(root / "production")
    frame = apps.iloc[900:1100].reset_index(drop=True).astype({name: object for name in BROKEN})
    for i, (name, value) in enumerate(BROKEN.items()):
        frame.loc[i::len(BROKEN), name] = value
    for part in (frame.iloc[:150], frame.iloc[150:]):  # an Arrow stream (keeps infinities), JSON lines (writes null)
        scores = SimpleNamespace(probability=np.full(len(part), 0.07),
                                 decisions=np.array(["granted"] * len(part), dtype=object))
        older.batch(part.reset_index(drop=True), scores, "4")
    older.close()
    return {**logged, "older": len(frame)}


def test_the_stage_completes_on_a_hostile_log_and_counts_what_the_contract_refuses(steady_data, tmp_path,
                                                                                      monkeypatch):
    root = make_project(tmp_path, steady_data)
    (root / "reports" / "threshold.json").write_text(json.dumps({"threshold": 0.09}))
    apps = pd.read_parquet(steady_data / "prepared" / "application_test.parquet").drop(columns="TARGET",
                                                                                        errors="ignore")
    logged = hostile_log(root, apps)
    assert logged["service"] > 150 and logged["test"] == 100
    report = run_stage(root, monkeypatch)
    production = report["production"]
    assert production["rows_logged"] == logged["service"] + logged["older"] == production["rows"]
    assert production["rows_left_out"] == logged["test"]
    assert production["first_ts"] <= production["last_ts"] and "n_columns" in production
    json.dumps(report, allow_nan=False)  # every figure finite or null: DVC and MLflow read it
    shares = production["out_of_contract"]
    assert set(shares) == set(BROKEN)  # the service refused every fuzzed value: only the older rows break it
    rows = production["rows_logged"]
    assert shares["CNT_CHILDREN"] == pytest.approx(40 / rows, abs=1e-5)  # 30 Arrow rows, 10 JSON lines
    assert shares["AMT_CREDIT"] == pytest.approx(30 / rows, abs=1e-5)  # JSON lines write an infinity as null
    assert shares["DAYS_REGISTRATION"] >= 30 / rows - 1e-5  # (a JSON line writes it as the float32 it is stored as)
    assert set(production["out_of_contract_fields"]) == set(BROKEN) and production["data_quality_drift"] == 1
    assert (root / "reports" / "drift" / "drift_report_production.html").exists()
