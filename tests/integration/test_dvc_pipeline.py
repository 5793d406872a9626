"""Real `dvc repro` / `dvc exp run` of the whole pipeline in a copy of the repository, on small generated data."""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from tools.pr_metrics_diff import metrics_diff, use_small_params

from ..conftest import REPO

pytestmark = pytest.mark.integration
STAGES = ("generate", "prepare", "featurize", "train", "threshold", "evaluate")
SERVING_FIGURES = "reports/serving.json"


def project_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split()
    # reports/ holds outputs, except the serving benchmark's figures: measured by hand, an input of the deck
    return [f for f in listed if (REPO / f).is_file() and (not f.startswith("reports/") or f == SERVING_FIGURES)]


def edit_params(root: Path, change) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    change(params)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=root, check=True,
                   capture_output=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The repository's files in a fresh git repository (one commit), with a small data size and grids."""
    root = tmp_path_factory.mktemp("project")
    for name in project_files():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, root / name)
    use_small_params(root)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "copy")
    return root


def dvc(project: Path, *args: str) -> subprocess.CompletedProcess:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "MLFLOW_TRACKING_URI": f"sqlite:///{project}/mlflow.db", "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run([f"{bin_dir}/dvc", *args], cwd=project, capture_output=True, text=True, env=env,
                          timeout=1200)


def ran(result: subprocess.CompletedProcess) -> list[str]:
    return [s for s in STAGES if f"Running stage '{s}'" in result.stdout]


def test_repro_builds_everything_then_is_a_no_op(project):
    first = dvc(project, "repro")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert ran(first) == list(STAGES)
    assert len(pd.read_parquet(project / "data/prepared/application_train.parquet")) == 1500
    assert (project / "reports/validation.md").read_text().startswith("# Data validation: PASSED")
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert {"auc", "business_cost", "threshold", "oracle_auc", "pr_auc", "brier"} <= set(metrics)
    assert 0.5 < metrics["auc"] <= metrics["oracle_auc"] + 0.05
    assert metrics["business_cost"] <= metrics["business_cost_at_0_5"]
    for name in ("model_card.md", "shap_summary.png", "roc.csv", "confusion.csv", "local_explanations.json"):
        assert (project / "reports/evaluate" / name).exists(), name
    assert list((project / "reports/evaluate").glob("lime_*.png"))
    for key in ("auc", "business_cost"):   # bootstrap intervals around the holdout figures
        interval = metrics["intervals"][key]
        assert interval["low"] < metrics[key] < interval["high"], (key, interval)
    train = json.loads((project / "reports/train.json").read_text())
    assert train["protocol"]["repeats"] == 2 and train["chosen"] in train["models"]
    card = (project / "reports/evaluate/model_card.md").read_text()
    boosted = train["chosen"] in ("xgboost", "lightgbm")
    decreasing = yaml.safe_load((project / "params.yaml").read_text())["train"]["decreasing"]
    assert decreasing and train["decreasing"] == (decreasing if boosted else [])
    assert ("Monotone: raising EXT_SOURCE_1" in card) == boosted
    threshold = json.loads((project / "reports/threshold.json").read_text())
    assert threshold["repeats"] == 2 and len(threshold["threshold_by_repeat"]) == 2
    interval = threshold["oof_business_cost_interval"]
    assert interval["low"] <= threshold["oof_business_cost"] <= interval["high"]
    oof = pd.read_parquet(project / "data/models/oof.parquet")
    assert len(oof) == 2 * oof["row"].nunique() and {"repeat", "fold", "proba", "TARGET"} <= set(oof.columns)
    served_and_measured_models(project, metrics, train, card)

    started = time.perf_counter()
    second = dvc(project, "repro")
    elapsed = time.perf_counter() - started
    assert second.returncode == 0 and ran(second) == []
    print(f"no-op dvc repro: {elapsed:.2f} s")


def served_and_measured_models(project: Path, metrics: dict, train: dict, card: str) -> None:
    """train.release: all_labelled (the default): the served model is fitted on the training rows and the holdout,
    the holdout's figures are the validated model's (fitted without it)."""
    holdout = pd.read_parquet(project / "data/features/holdout.parquet")
    n_train = len(pd.read_parquet(project / "data/features/train.parquet", columns=["TARGET"]))
    assert train["release"] == {"rule": "all_labelled", "validated_rows": n_train,
                                "served_rows": n_train + len(holdout)}
    served, validated = (joblib.load(project / "data/models" / name) for name in ("model.joblib", "validated.joblib"))
    X, y = holdout.drop(columns="TARGET"), holdout["TARGET"].to_numpy()
    measured = validated.predict_proba(X)[:, 1]
    assert metrics["auc"] == pytest.approx(roc_auc_score(y, measured), abs=1e-4)
    assert not np.allclose(served.predict_proba(X)[:, 1], measured)
    assert f"refitted on all {n_train + len(holdout):,} labelled applicants" in card


def test_changing_the_cost_reruns_threshold_and_evaluate_only(project):
    before = json.loads((project / "reports/threshold.json").read_text())
    edit_params(project, lambda p: p["cost"].update(fn=3.0))
    run = dvc(project, "repro")
    assert run.returncode == 0, run.stderr[-3000:]
    assert ran(run) == ["threshold", "evaluate"]
    after = json.loads((project / "reports/threshold.json").read_text())
    assert after["threshold"] > before["threshold"]  # cheaper missed defaults: refuse less


def test_metrics_diff_and_experiments(project):
    diff = dvc(project, "metrics", "diff", "--md")
    assert diff.returncode == 0 and "business_cost" in diff.stdout
    git(project, "add", "-A")
    git(project, "commit", "-qm", "cost 3")
    exp = dvc(project, "exp", "run", "-S", "train.model=logreg", "-S", "train.release=training_rows",
              "-n", "logreg-only")
    assert exp.returncode == 0, exp.stderr[-3000:]
    assert "train" in ran(exp) and "featurize" not in ran(exp)
    show = dvc(project, "exp", "show", "--json")
    assert "logreg-only" in show.stdout
    train = json.loads((project / "reports/train.json").read_text())
    assert train["chosen"] == "logreg" and train["release"]["served_rows"] == train["release"]["validated_rows"]
    served, validated = (joblib.load(project / "data/models" / name) for name in ("model.joblib", "validated.joblib"))
    X = pd.read_parquet(project / "data/features/holdout.parquet").drop(columns="TARGET")
    assert np.array_equal(served.predict_proba(X), validated.predict_proba(X))
    assert "refitted on all" not in (project / "reports/evaluate/model_card.md").read_text()


def test_a_missing_source_fails_prepare_and_keeps_outputs(project):
    edit_params(project, lambda p: p["data"].update(source="kaggle"))
    run = dvc(project, "repro")
    assert run.returncode != 0 and ran(run) == ["generate", "prepare"]  # generate: kaggle empties its folder
    assert "application_train: file is required" in run.stderr + run.stdout
    assert (project / "data/prepared/application_train.parquet").exists()


def test_pull_request_metric_diff(tmp_path_factory):
    """tools/pr_metrics_diff.py on a two-commit repository: base, then a head that changes the cost."""
    root = tmp_path_factory.mktemp("pr")
    for name in project_files():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, root / name)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    edit_params(root, lambda p: p["cost"].update(fn=4.0))
    git(root, "commit", "-qam", "head: missed defaults cost 4")
    report = metrics_diff(root, "HEAD~1")
    assert report.startswith("### Metrics of this pull request against `HEAD~1`")
    rows = {line.split("|")[2].strip(): line for line in report.splitlines() if line.startswith("| reports/")}
    assert "threshold" in rows and "business_cost" in rows, report
    assert "auc" not in rows  # same model, same holdout: only the cost-dependent metrics moved
    drifted = re.search(r"\*\*Drift\*\* .*: (\d+) of (\d+) application fields drifted", report)
    assert drifted and int(drifted[2]) > 0 and int(drifted[1]) <= int(drifted[2]), report
