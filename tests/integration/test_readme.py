"""The README's commands, run: every command of every ```bash block of README.md is either executed here (in a copy
of the project with small params, set up as the README says, from a plain shell: PATH without the venv) or listed in
NOT_RUN with the reason. A new README command fails `test_every_readme_command_is_run_or_excused` until it is mapped;
an example that stops working fails its test.

Commands are matched by their words (shlex, comments dropped). A runnable form may differ from the README's text only
where the text needs something this machine has not (a free port instead of 8000, a file of applicants made from
the pipeline's own test applicants, the generated tables standing in for Kaggle's download).
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import psutil
import pytest
import yaml

from scoring.ray_runtime import free_port
from tools.pr_metrics_diff import use_small_params

from ..conftest import REPO
from .conftest import copy_project

pytestmark = pytest.mark.integration
PLAIN_PATH = "/usr/bin:/bin"
STAMP = ".test-setup-done"
"""Stands for `make setup`'s stamp: the copy links the repository's venv, which a test must never reinstall."""

NOT_RUN = {
    "make run": "sets up .venv (tests never rebuild the shared venv) and keeps the service and the app running; its "
                "parts are run here: `dvc repro` (pipeline block), `make serve` and `make app`",
    "make test": "the whole test suite, of which this test is a part",
    "kaggle competitions download -c home-credit-default-risk -p data/raw":
        "needs Kaggle credentials and the network; the generated tables stand in for the download",
    "unzip data/raw/home-credit-default-risk.zip -d data/raw && rm data/raw/home-credit-default-risk.zip":
        "needs the download above",
    "dvc repro && docker build -f deploy/Dockerfile -t credit-scoring . && docker run -p 127.0.0.1:8000:8000 "
    "credit-scoring": "no Docker on this machine (tests/repo checks the Dockerfile); `dvc repro` is run above",
    ".venv/bin/python -m serve.cluster up --pipeline-model":
        "a two-node Ray cluster (~3.4 GiB): tests/integration/test_multinode.py runs `python -m serve.cluster` up, "
        "status and down",
    ".venv/bin/python -m serve.cluster status": "see serve.cluster up",
    "docker build -f deploy/pipeline.Dockerfile -t registry.example/credit-scoring-pipeline:v1 . && docker push "
    "registry.example/credit-scoring-pipeline:v1": "no Docker and no registry on this machine",
    "kubectl create -f /tmp/pipeline-rayjob.yaml": "no Kubernetes cluster here; tests/repo/test_pipeline_manifest.py "
                                                   "checks the manifest, test_kuberay_manifest_command renders it",
    "kubectl get rayjob credit-scoring-pipeline": "see kubectl create",
    "kubectl logs -f job/credit-scoring-pipeline": "see kubectl create",
    ".venv/bin/python -m serve.cluster down": "see serve.cluster up",
}


def words(command: str) -> str:
    """A command's words joined by one space: how commands are matched (quotes, comments, line breaks aside)."""
    return " ".join(shlex.split(command.replace("\\\n", " "), comments=True))


def readme_commands(text: str) -> list[str]:
    """Each command of each ```bash block as written (continuation lines and multi-line quotes kept together)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        pending = ""
        for line in block.splitlines():
            pending = f"{pending}\n{line}" if pending else line
            try:
                found = words(pending)
            except ValueError:  # an open quote: the command goes on
                continue
            if found:
                commands.append(pending)
            pending = ""
        assert not pending, f"unterminated command in README.md: {pending[:80]}"
    return commands


def block_after(heading: str) -> list[str]:
    """The commands of the first ```bash block after `heading` in the README."""
    text = (REPO / "README.md").read_text()
    start = text.index(heading)
    return readme_commands(text[start:text.index("```", text.index("```bash", start) + 7) + 3])


README_COMMANDS = readme_commands((REPO / "README.md").read_text())
PIPELINE = block_after("## Pipeline (")
MLFLOW = block_after("### MLflow") + block_after("To serve the champion with MLflow's own server")
BATCH = block_after("### Batch scoring")
SERVICE = [c for c in README_COMMANDS if c.startswith(("make serve", "curl -s -X POST 'http://127.0.0.1:8000/score"))]
APP = [c for c in README_COMMANDS if c.startswith("make app")]
KUBERAY = [c for c in block_after("**On Kubernetes (KubeRay).**") if words(c) not in {words(n) for n in NOT_RUN}]
REAL_DATA = [c for c in block_after("**Kaggle's files (real data).**") if words(c) not in {words(n) for n in NOT_RUN}]


class Project:
    """A copy of the project after the README's setup, and the README's commands run in it from a plain shell."""

    def __init__(self, root: Path):
        self.root = root
        self.env = {"HOME": os.environ.get("HOME", str(root)), "PATH": PLAIN_PATH, "DVC_NO_ANALYTICS": "1",
                    "MLFLOW_DISABLE_TELEMETRY": "true", "GX_ANALYTICS_ENABLED": "false",
                    "RAY_USAGE_STATS_ENABLED": "0", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
                    "MPLCONFIGDIR": str(root / ".cache" / "matplotlib")}

    def run(self, command: str, timeout: float = 1800, check: bool = True) -> subprocess.CompletedProcess:
        (self.root / STAMP).touch()
        if command.startswith("make "):
            command = f"{command} STAMP={STAMP}"
        done = subprocess.run(["bash", "-c", command], cwd=self.root, capture_output=True, text=True, env=self.env,
                              timeout=timeout)
        assert done.returncode == 0 or not check, failure(command, done)
        return done

    def start(self, command: str, log: str) -> subprocess.Popen:
        (self.root / STAMP).touch()
        if command.startswith("make "):
            command = f"{command} STAMP={STAMP}"
        with open(self.root / log, "w") as out:
            return subprocess.Popen(["bash", "-c", command.rstrip().removesuffix("&")], cwd=self.root, env=self.env,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def failure(command: str, done: subprocess.CompletedProcess) -> str:
    """The command and the end of what it said: for a stage that failed, its error and the stage's name."""
    return f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def raw_files(root: Path) -> dict:
    """What dvc.lock records of data/raw (the `raw` stage's output): md5, size, nfiles."""
    return yaml.safe_load((root / "dvc.lock").read_text())["stages"]["raw"]["outs"][0]


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the command's whole process group (make and what it started), then SIGKILL after a minute."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def left_running(root: Path, seconds: float = 30) -> list[str]:
    """The command lines of live processes still working in `root` once `seconds` have passed (what a stopped
    command started and did not stop: the service's HAProxy, for one, outlived `make serve` once)."""
    deadline = time.monotonic() + seconds
    while True:
        left = []
        for process in psutil.process_iter(["cwd", "cmdline", "status"]):
            if process.info["cwd"] == str(root) and process.info["status"] != psutil.STATUS_ZOMBIE:
                left.append(" ".join(process.info["cmdline"] or [])[:200])
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(1)


def wait_for(url: str, process: subprocess.Popen, log: Path, seconds: float = 300) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{url}: the process ended\n{log.read_text()[-3000:]}"
        try:
            answer = httpx.get(url, timeout=5)
            if answer.status_code == 200:
                return answer
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise AssertionError(f"{url} did not answer in {seconds:.0f} s\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    root = tmp_path_factory.mktemp("readme")
    copy_project(root)
    use_small_params(root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["tracking"]["enabled"] = True  # the README's MLflow commands need a registered champion
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / ".venv").symlink_to(Path(sys.prefix))
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "copy"]):
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=root, check=True)
    return Project(root)


def test_every_readme_command_is_run_or_excused():
    assert README_COMMANDS, "no ```bash block found in README.md"
    ran = {words(c) for c in (*PIPELINE, *MLFLOW, *BATCH, *SERVICE, *APP, *REAL_DATA, *KUBERAY)}
    excused = {words(c) for c in NOT_RUN}
    written = {words(c) for c in README_COMMANDS}
    unmapped = sorted(written - ran - excused)
    assert not unmapped, f"README commands neither run by tests/integration/test_readme.py nor in NOT_RUN: {unmapped}"
    assert not excused - written, f"NOT_RUN names commands no longer in README.md: {sorted(excused - written)}"
    assert len(MLFLOW) == 3 and len(BATCH) == 1 and len(SERVICE) == 2 and len(APP) == 1 and len(REAL_DATA) == 4
    assert len(KUBERAY) == 1


def test_kuberay_manifest_command(project):
    """The RayJob of the README's KubeRay block, rendered with its options: that image on every container, that many
    workers of that size, the pipeline on Ray in the shared checkout."""
    out = Path(shlex.split(KUBERAY[0])[-1])
    out.unlink(missing_ok=True)
    project.run(KUBERAY[0])
    job = yaml.safe_load(out.read_text())
    out.unlink()
    args = shlex.split(KUBERAY[0])
    image, workers = args[args.index("--image") + 1], int(args[args.index("--workers") + 1])
    cluster = job["spec"]["rayClusterSpec"]
    group = cluster["workerGroupSpecs"][0]
    assert group["replicas"] == workers
    worker = group["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"] == {"cpu": args[args.index("--worker-cpus") + 1],
                                             "memory": args[args.index("--worker-memory") + 1]}
    pods = [cluster["headGroupSpec"]["template"]["spec"], group["template"]["spec"],
            job["spec"]["submitterPodTemplate"]["spec"]]
    assert {c["image"] for pod in pods for c in pod["containers"] + pod["initContainers"]} == {image}
    assert "compute.backend=ray" in job["spec"]["entrypoint"]


def test_pipeline_commands(project):
    """`dvc repro` (and its no-op), metrics, plots, the two experiments (SMOTE included), `dvc exp show`."""
    assert words(PIPELINE[0]) == ".venv/bin/dvc repro"
    outputs, failed = {}, []
    for command in PIPELINE:  # every command runs, so that one failure does not hide the next (the SMOTE example)
        outputs[words(command)] = done = project.run(command, check=False)
        if done.returncode != 0:
            failed.append(failure(command, done))
        elif "exp run" in command:
            assert "Ran experiment(s)" in done.stdout + done.stderr, command
    assert not failed, "\n\n".join(failed)
    assert "business_cost" in outputs[".venv/bin/dvc metrics show"].stdout
    assert (project.root / "dvc_plots/index.html").exists()
    train = json.loads((project.root / "reports/train.json").read_text())
    assert train["chosen"] == "xgboost", "the SMOTE experiment (train.model=xgboost) is the workspace's last run"


def test_mlflow_ui_and_mlflow_models_serve(project):
    ui, serve_cmd, curl = MLFLOW
    port = free_port()
    server = project.start(ui.replace("--port 5000", f"--port {port}"), "mlflow-ui.log")
    try:
        wait_for(f"http://127.0.0.1:{port}/health", server, project.root / "mlflow-ui.log")
    finally:
        stop(server)
    port = free_port()
    server = project.start(serve_cmd.rstrip(" &").replace("--port 5001", f"--port {port}"), "mlflow-serve.log")
    try:
        wait_for(f"http://127.0.0.1:{port}/ping", server, project.root / "mlflow-serve.log")
        answer = json.loads(project.run(curl.replace("127.0.0.1:5001", f"127.0.0.1:{port}")).stdout)
    finally:
        stop(server)
    prediction = answer["predictions"][0]
    assert prediction["decision"] in ("granted", "refused") and 0 <= prediction["probability"] <= 1
    assert prediction["reason_3_feature"] and "reason_4_feature" not in prediction


def test_batch_scoring(project):
    """The README's line with its options filled: a file of the pipeline's test applicants, three reasons."""
    (command,) = BATCH
    apps = pd.read_parquet(project.root / "data/prepared/application_test.parquet").head(50)
    apps.to_csv(project.root / "applicants.csv", index=False)
    shutil.rmtree(project.root / "histories", ignore_errors=True)
    (project.root / "histories").mkdir()
    bureau = pd.read_parquet(project.root / "data/prepared/bureau.parquet")
    bureau[bureau.SK_ID_CURR.isin(apps.SK_ID_CURR)].to_csv(project.root / "histories/bureau.csv", index=False)
    runnable = command.replace("[--history-dir DIR]", "--history-dir histories").replace("[--reasons 3]",
                                                                                         "--reasons 3")
    assert "[" not in runnable, runnable
    project.run(runnable)
    scores = pd.read_csv(project.root / "scores.csv")
    assert scores["SK_ID_CURR"].tolist() == apps["SK_ID_CURR"].tolist()
    assert set(scores["decision"]) <= {"granted", "refused"} and "reason_3_feature" in scores


def test_service_and_curl(project):
    """`make serve` on a free port (the README's 8000 may be taken), then the README's curl against it."""
    serve_cmd, curl = SERVICE
    port = free_port()
    server = project.start(f"make serve API_PORT={port}", "serve.log")
    assert words(serve_cmd) == "make serve"
    try:
        wait_for(f"http://127.0.0.1:{port}/health", server, project.root / "serve.log", seconds=600)
        answer = json.loads(project.run(curl.replace("127.0.0.1:8000", f"127.0.0.1:{port}")).stdout)
    finally:
        stop(server)
    assert answer["decision"] in ("granted", "refused") and len(answer["reasons"]) == 3
    assert not left_running(project.root), left_running(project.root, 0)


def test_app(project):
    (command,) = APP
    assert words(command) == "make app"
    port = free_port()
    app = project.start(f"make app APP_PORT={port}", "app.log")
    try:
        assert wait_for(f"http://127.0.0.1:{port}/_stcore/health", app, project.root / "app.log").text == "ok"
    finally:
        stop(app)
    assert not left_running(project.root), left_running(project.root, 0)


def test_real_data_workflow(project):
    """The generated tables stand in for Kaggle's download (NOT_RUN): the experiment on them, `dvc exp show`, then
    another experiment on other raw files and `dvc exp apply` bringing the first one's files back."""
    raw = project.root / "data/raw"
    for table in ("application_train", "application_test", "bureau", "bureau_balance"):
        shutil.copy(project.root / "data/synthetic" / f"{table}.parquet", raw / f"{table}.parquet")
    record, run, show, apply = REAL_DATA
    project.run(record)
    project.run(run)
    assert "kaggle-full" in project.run(show).stdout
    assert raw_files(project.root)["nfiles"] == 4
    assert not any((project.root / "data/synthetic").iterdir()), "data.source: kaggle generates nothing"
    (raw / "bureau_balance.parquet").unlink()
    project.run(record)
    project.run(".venv/bin/dvc exp run -n without-balance")
    assert raw_files(project.root)["nfiles"] == 3
    project.run(apply)
    assert raw_files(project.root)["nfiles"] == 4
    assert sorted(p.name for p in raw.iterdir()) == sorted(f"{t}.parquet" for t in (
        "application_train", "application_test", "bureau", "bureau_balance"))
    assert yaml.safe_load((project.root / "params.yaml").read_text())["data"]["source"] == "kaggle"
