"""The real-data lane (`make real`, `make real-app-only`) in a copy of the project: the visible real Kaggle rows of
../shared in data/raw, the pipeline as a DVC experiment, its figures; DVC records the raw files of each experiment
(dvc.lock, the `raw` stage) and `dvc exp apply` brings them back. Skipped where ../shared is absent."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tools.pr_metrics_diff import use_small_params
from tools.real_data import SHARED

from .conftest import copy_project

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]
STAMP = ".test-setup-done"
"""Stands for `make setup`'s stamp: the copy uses the repository's venv, which the test must never reinstall."""
# REAL_TARGET=evaluate: up to the model's figures; drift and deck (other lanes' work) are left out, for time. Their
# outputs, never made in this copy, are then the only ones `dvc exp apply` cannot check out.


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    if not (SHARED / "application_train.csv").exists():
        pytest.skip(f"real Kaggle rows not available ({SHARED})")
    root = tmp_path_factory.mktemp("real_lane")
    copy_project(root)
    use_small_params(root)
    (root / ".venv").symlink_to(Path(sys.prefix))
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "copy"]):
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=root, check=True)
    return root


def make(root: Path, target: str) -> subprocess.CompletedProcess:
    (root / STAMP).touch()
    env = {**os.environ, "PATH": "/usr/bin:/bin", "DVC_NO_ANALYTICS": "1", "HOME_CREDIT_SHARED": str(SHARED)}
    return subprocess.run(["make", "--no-print-directory", target, f"STAMP={STAMP}", "REAL_TARGET=evaluate"],
                          cwd=root, capture_output=True, text=True, env=env, timeout=2400)


def experiment(run: subprocess.CompletedProcess) -> str:
    found = re.search(r"Ran experiment\(s\): (\S+)", run.stdout + run.stderr)
    assert found, run.stdout[-2000:]
    return found.group(1)


def raw_record(root: Path) -> dict:
    """What dvc.lock records of data/raw, the `raw` stage's output."""
    return yaml.safe_load((root / "dvc.lock").read_text())["stages"]["raw"]["outs"][0]


@pytest.fixture(scope="module")
def experiments() -> dict[str, str]:
    """The name of each lane's DVC experiment, as the tests run them."""
    return {}


def test_make_real_runs_the_pipeline_on_the_real_rows(project, experiments):
    run = make(project, "real")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    experiments["real"] = experiment(run)
    assert re.search(r"holdout \([\d,]+ applicants\): AUC 0\.\d+", run.stdout), run.stdout[-2000:]
    assert raw_record(project)["nfiles"] == 6, "application_train, application_test and four history tables"
    validation = json.loads((project / "reports/validation.json").read_text())
    assert validation["passed"]
    coverage = validation["history_coverage"]["application_train"]
    assert coverage["applicants"] == 12_703 and 0.5 < coverage["tables"]["bureau"]["share"] < 1
    assert json.loads((project / "reports/metrics.json").read_text())["auc"] > 0.65


def test_application_only_then_apply_brings_the_raw_files_back(project, experiments):
    if "real" not in experiments:
        pytest.skip("needs test_make_real_runs_the_pipeline_on_the_real_rows's experiment")
    run = make(project, "real-app-only")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert raw_record(project)["nfiles"] == 2
    history = pd.read_parquet(project / "data/features/history.parquet")
    assert history.shape[1] == 0, "no history table: no history feature and no coverage flag"
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    dvc = str(project / ".venv/bin/dvc")
    applied = subprocess.run([dvc, "exp", "apply", experiments["real"]], cwd=project, capture_output=True,
                             text=True, env=env)
    failed = applied.stderr.split("Checkout failed for following targets:")[-1].split("Is your cache")[0].split()
    assert applied.returncode == 0 or not [t for t in failed if t.startswith("data/")], applied.stderr[-2000:]
    assert raw_record(project)["nfiles"] == 6
    assert sorted(p.name for p in (project / "data/raw").iterdir()) == sorted(
        f"{t}.csv.gz" if t != "application_train" else "application_train.csv"
        for t in ("application_train", "application_test", "bureau", "bureau_balance", "credit_card_balance",
                  "previous_application"))
