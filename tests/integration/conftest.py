"""One small pipeline run shared by the story deliverables' tests (notebook, deck).

The repository's files are copied into a temporary folder, the small settings of tools/small_params.yaml are
merged into its params.yaml, and `dvc repro` builds every output there once per test session.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from scoring.ray_runtime import free_port
from scoring.settings import TRACE_ENV
from serve.loopback import wait_until_answering
from tools.pr_metrics_diff import use_small_params

from ..conftest import REPO
from .test_dvc_pipeline import project_files


def copy_project(root: Path) -> None:
    for name in project_files():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, root / name)


TRACE_DIR = ".params-trace"
"""Where each stage of the small pipeline writes the params keys it read (scoring.settings' trace)."""


def repro(root: Path) -> None:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db", "MLFLOW_DISABLE_TELEMETRY": "true",
           "MPLCONFIGDIR": str(root / ".cache" / "matplotlib"), TRACE_ENV: str(root / TRACE_DIR)}
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    done = subprocess.run([f"{bin_dir}/dvc", "repro"], cwd=root, capture_output=True, text=True, env=env,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="session")
def small_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project whose pipeline outputs (data/, reports/) come from a small `dvc repro`."""
    root = tmp_path_factory.mktemp("story")
    copy_project(root)
    use_small_params(root)
    repro(root)
    return root


def stop_process(process: subprocess.Popen, timeout: float = 60) -> None:
    import signal

    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class LiveService:
    url: str
    log_dir: Path       # its production log
    pid: int            # serve.run's process: Ray and the replicas are its descendants
    token_path: Path    # Ray's token (RAY_AUTH_TOKEN_PATH) of this service's cluster


@pytest.fixture(scope="session")
def live_service(tiny_project: Path, tmp_path_factory: pytest.TempPathFactory):
    """The real Ray Serve application (serve/run.py, HAProxy ingress, Ray's token authentication on with a token
    of its own) on a free 127.0.0.1 port, serving the tiny project's model; stopped (Ray included) at the end of
    the session."""
    port = free_port()
    log_dir = tmp_path_factory.mktemp("production")
    token_path = tmp_path_factory.mktemp("ray-auth") / "auth_token"
    log = tmp_path_factory.mktemp("serve-logs") / "serve.log"
    output = open(log, "w")  # noqa: SIM115
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_TOKEN_PATH": str(token_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "serve.run", "--pipeline-model", "--port", str(port), "--project-root",
         str(tiny_project), "--production-log", str(log_dir)], cwd=REPO, env=env, stdout=output, stderr=output)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{url}/health", 180, lambda: process.poll() is None, log)
        yield LiveService(url, log_dir, process.pid, token_path)
    finally:
        stop_process(process)
        output.close()
