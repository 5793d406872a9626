"""A real `dvc repro` of the pipeline in a copy of the repository, on small generated data."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ..conftest import REPO

pytestmark = pytest.mark.integration


def project_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split()
    return [f for f in listed if (REPO / f).is_file()]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The repository's files in a fresh git repository, with a small data size."""
    root = tmp_path_factory.mktemp("project")
    for name in project_files():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, root / name)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["synthetic"].update(n_applicants=1500, n_test=300)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


def dvc(project: Path, *args: str) -> subprocess.CompletedProcess:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    return subprocess.run([f"{bin_dir}/dvc", *args], cwd=project, capture_output=True, text=True, env=env,
                          timeout=900)


def test_repro_builds_the_prepared_tables_then_is_a_no_op(project):
    first = dvc(project, "repro")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Running stage 'generate'" in first.stdout and "Running stage 'prepare'" in first.stdout
    apps = pd.read_parquet(project / "data/prepared/application_train.parquet")
    assert len(apps) == 1500
    assert (project / "reports/validation.md").read_text().startswith("# Data validation: PASSED")
    assert (project / "dvc.lock").exists()

    started = time.perf_counter()
    second = dvc(project, "repro")
    elapsed = time.perf_counter() - started
    assert second.returncode == 0
    assert "Running stage" not in second.stdout
    assert "up to date" in second.stdout
    print(f"no-op dvc repro: {elapsed:.2f} s")


def test_changing_the_source_reruns_prepare_only(project):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["source"] = "kaggle"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run = dvc(project, "repro")
    assert "Running stage 'generate'" not in run.stdout
    assert run.returncode != 0  # data/raw holds no Kaggle file in the copy
    assert "application_train: file is required" in run.stderr + run.stdout
    assert (project / "data/prepared/application_train.parquet").exists()  # earlier outputs kept
