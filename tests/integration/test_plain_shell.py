"""`dvc repro` and `dvc exp run` from a plain shell: the venv not activated, no venv on PATH (issue #13).

A copy of the project (git init'd, small params) set up as the README says (`make setup`: the venv), then DVC
called as `.venv/bin/dvc` with PATH=/usr/bin:/bin. The stages find the project's Python through
stages/python, in the workspace and in the copies `dvc exp run --temp` makes; a failing stage leaves the last good
reports and tables in place.
"""
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tools.pr_metrics_diff import use_small_params

from ..conftest import REPO
from .conftest import copy_project

pytestmark = pytest.mark.integration
PLAIN_PATH = "/usr/bin:/bin"
KEPT = ("reports/metrics.json", "reports/train.json", "reports/threshold.json", "reports/evaluate/model_card.md",
        "data/prepared/application_train.parquet", "data/features/history.parquet")
"""Outputs of the last good run that a failing prepare must not touch."""
TARGET = "evaluate"
"""The stages up to the model's evaluation (drift and deck, other lanes' work, are left out: faster, and this test
is about running the stages, not about them). tests/integration/test_readme.py runs the README's `dvc repro`."""


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=root, check=True,
                   capture_output=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The project after the README's setup: .venv (the repository's, linked), one commit; no data/raw (the `raw`
    stage makes it)."""
    root = tmp_path_factory.mktemp("plain_shell")
    copy_project(root)
    use_small_params(root)
    (root / ".venv").symlink_to(Path(sys.prefix))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "copy")
    return root


def plain_dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    """`.venv/bin/dvc ...` with a PATH that holds no Python of the project (as after `git clone` + `make setup`)."""
    env = {"HOME": os.environ.get("HOME", str(root)), "PATH": PLAIN_PATH, "DVC_NO_ANALYTICS": "1",
           "MLFLOW_DISABLE_TELEMETRY": "true", "GX_ANALYTICS_ENABLED": "false",
           "MPLCONFIGDIR": str(root / ".cache" / "matplotlib")}
    return subprocess.run([str(root / ".venv" / "bin" / "dvc"), *args], cwd=root, capture_output=True, text=True,
                          env=env, timeout=1500)


def ran(result: subprocess.CompletedProcess) -> list[str]:
    return [line.split("'")[1] for line in result.stdout.splitlines() if line.startswith("Running stage '")]


def digests(root: Path) -> dict[str, str]:
    return {name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in KEPT}


def test_plain_path_has_no_project_python():
    found = subprocess.run(["sh", "-c", "command -v python python3 || true"], env={"PATH": PLAIN_PATH},
                           capture_output=True, text=True).stdout.split()
    assert str(REPO / ".venv") not in " ".join(found) and sys.prefix not in " ".join(found)


def test_repro_from_a_plain_shell(project):
    run = plain_dvc(project, "repro", TARGET)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    core = ["raw", "generate", "prepare", "featurize", "train", "threshold", "evaluate"]
    assert set(core) <= set(ran(run)), ran(run)
    assert (project / "reports/validation.md").read_text().startswith("# Data validation: PASSED")
    started = time.perf_counter()
    again = plain_dvc(project, "repro", TARGET)
    elapsed = time.perf_counter() - started
    assert again.returncode == 0 and ran(again) == []
    print(f"no-op dvc repro from a plain shell: {elapsed:.2f} s")


def test_exp_run_in_the_workspace_and_in_a_temporary_copy(project):
    git(project, "add", "-A")
    git(project, "commit", "-qm", "repro")
    workspace = plain_dvc(project, "exp", "run", TARGET, "-S", "cost.fn=5")
    assert workspace.returncode == 0, workspace.stdout[-3000:] + workspace.stderr[-3000:]
    assert ran(workspace)[:2] == ["threshold", "evaluate"] and "train" not in ran(workspace)
    temporary = plain_dvc(project, "exp", "run", "--temp", TARGET, "-S", "cost.fn=4", "-n", "cost-4")
    assert temporary.returncode == 0, temporary.stdout[-3000:] + temporary.stderr[-3000:]
    assert "cost-4" in plain_dvc(project, "exp", "show", "--json").stdout


def test_a_failing_stage_keeps_the_last_good_reports(project):
    """data.source=kaggle with an empty data/raw: prepare fails with the rule it broke; nothing is deleted."""
    git(project, "checkout", "-q", "--", "params.yaml")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "exp", "--allow-empty")
    assert plain_dvc(project, "repro", TARGET).returncode == 0
    before = digests(project)
    failed = plain_dvc(project, "exp", "run", TARGET, "-S", "data.source=kaggle")
    assert failed.returncode != 0 and "prepare" in ran(failed)
    assert "application_train: file is required" in failed.stdout + failed.stderr
    assert "ModuleNotFoundError" not in failed.stdout + failed.stderr
    assert digests(project) == before, "a failing prepare changed the last good outputs"
    assert not any((project / "data/synthetic").iterdir()), "data.source: kaggle generates nothing"
    report = (project / "reports/validation.md").read_text()
    assert report.startswith("# Data validation: FAILED") and "file is required" in report
    assert yaml.safe_load((project / "params.yaml").read_text())["data"]["source"] == "kaggle"


def fake_program(path: Path, log: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\necho "$(basename "$0") $*" >> {log}\n'
                    f'case "$*" in *"-m venv"*) mkdir -p .venv/bin && cp "$0" .venv/bin/python && '
                    f'cp "$0" .venv/bin/pip ;; *"install --quiet uv=="*) cp "$0" .venv/bin/uv ;; esac\n')
    path.chmod(0o755)


@pytest.mark.parametrize("venv_exists", [True, False])
def test_make_setup_creates_the_venv_only_when_absent(tmp_path, venv_exists):
    """An existing venv is updated in place (uv, at the lock file's version, installs the lock file), never
    re-created over."""
    for name in ("Makefile", "requirements.lock", "pyproject.toml"):
        (tmp_path / name).write_bytes((REPO / name).read_bytes())
    log = tmp_path / "calls.log"
    fake_program(tmp_path / "bin" / "python3.11", log)
    if venv_exists:
        for name in ("python", "pip", "uv"):
            fake_program(tmp_path / ".venv" / "bin" / name, log)
    done = subprocess.run(["make", "--no-print-directory", "setup", f"PYTHON={tmp_path / 'bin' / 'python3.11'}"],
                          cwd=tmp_path, capture_output=True, text=True, env={"PATH": PLAIN_PATH}, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = log.read_text().splitlines()
    assert any(call.startswith("python3.11 -m venv") for call in calls) is not venv_exists
    uv = next(line for line in (REPO / "requirements.lock").read_text().splitlines() if line.startswith("uv=="))
    assert f"pip install --quiet {uv}" in calls
    assert any(call.startswith("uv pip install") and "-r requirements.lock" in call for call in calls)
    assert any(call.startswith("uv pip install") and "--no-deps -e ." in call for call in calls)
    assert list((tmp_path / ".venv").glob(".installed-*"))
