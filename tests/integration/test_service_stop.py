"""serve.run leaves nothing behind, however it ends: a start that fails (no model to load) and a stop signal that
comes while the application is still deploying both end with Ray's processes, HAProxy and Ray's folder gone (Ray's
driver would otherwise abort on SIGTERM, and HAProxy, reloaded by Ray Serve outside Ray's own bookkeeping, used to
outlive the service)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from scoring.ray_runtime import free_port

from ..conftest import REPO

pytestmark = pytest.mark.integration

RAY_FOLDERS = Path("/tmp")
"""Where serve.run makes Ray's folder (scoring.ray_runtime.new_temp_dir: /tmp/ray-*)."""


def ray_folders() -> set[Path]:
    return set(RAY_FOLDERS.glob("ray-*"))


def processes_naming(folders: set[Path]) -> list[str]:
    """Command lines of live processes that name one of `folders` (Ray's processes and HAProxy all do)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        line = " ".join(process.info["cmdline"] or [])
        if process.info["status"] != psutil.STATUS_ZOMBIE and any(str(folder) in line for folder in folders):
            found.append(line[:200])
    return found


def launch(project: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    with log.open("w") as output:   # the child keeps its own copy of the file
        return subprocess.Popen([sys.executable, "-m", "serve.run", "--pipeline-model", "--port", str(free_port()),
                                 "--project-root", str(project)], cwd=REPO, env=env, stdout=output,
                                stderr=subprocess.STDOUT)


def wait_for_line(log: Path, text: str, process: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while text not in log.read_text():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)


def test_a_start_that_fails_stops_what_it_started(tmp_path):
    project = tmp_path / "no-model"
    project.mkdir()
    shutil.copy2(REPO / "params.yaml", project / "params.yaml")
    log = tmp_path / "serve.log"
    before = ray_folders()
    process = launch(project, log)
    wait_for_line(log, "Started Serve", process)   # Ray is up: its folder exists
    made = ray_folders() - before   # the tests run one at a time
    assert made, "serve.run made no Ray folder under /tmp"
    assert process.wait(300) != 0
    assert "model.joblib not found" in log.read_text()
    assert not [folder for folder in made if folder.exists()]
    assert not processes_naming(made)


def test_a_stop_signal_while_deploying_leaves_nothing(tiny_project, tmp_path):
    log = tmp_path / "serve.log"
    before = ray_folders()
    process = launch(tiny_project, log)
    wait_for_line(log, "Started Serve", process)   # the application is being deployed now
    made = ray_folders() - before   # the tests run one at a time
    process.send_signal(signal.SIGTERM)
    assert process.wait(120) == 0, log.read_text()[-3000:]
    assert "stopping the scoring service" in log.read_text()
    assert not [folder for folder in made if folder.exists()]
    assert not processes_naming(made)
