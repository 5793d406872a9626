"""Delivery files: the workflows pass actionlint, the code passes ruff, the RayService manifest is the one rendered
from serve/config.yaml (and Ray accepts its Serve config), and the image copies what the service reads."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scoring.settings import dvc_outputs
from serve import manifest
from serve.run import CONFIG, application_settings, argument_parser, load_config

from ..conftest import REPO, SETTINGS

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: it is pinned in pyproject.toml; run `make setup`")
    return str(path)


def run(*cmd: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def test_workflows_pass_actionlint():
    done = run(tool("actionlint"), "-no-color")
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    """The check above can fail: an undefined job dependency and a bad expression are reported."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: [nowhere]\n    steps:\n"
        "      - run: echo ${{ github.no_such_thing( }}\n")
    done = run(tool("actionlint"), "-no-color", str(broken), cwd=tmp_path)
    assert done.returncode == 1 and "nowhere" in done.stdout, done.stdout + done.stderr


def test_code_passes_ruff():
    done = run(tool("ruff"), "check", ".", "--output-format", "concise")
    assert done.returncode == 0, done.stdout + done.stderr


def test_committed_manifest_is_rendered_from_the_serve_config():
    assert manifest.MANIFEST.read_text() == manifest.render(), \
        "deploy/rayservice.yaml is behind serve/config.yaml: run `python -m serve.manifest`"


def test_the_cluster_runs_the_local_application_and_ray_accepts_it():
    from ray.serve.schema import ServeDeploySchema

    local = load_config(CONFIG)
    spec = yaml.safe_load(manifest.MANIFEST.read_text())["spec"]
    served = yaml.safe_load(spec["serveConfigV2"])
    ServeDeploySchema.parse_obj(served)  # raises on an option Ray does not know
    app, args, options = application_settings(served)
    local_app, local_args, local_options = application_settings(local)
    assert (app["import_path"], app["name"]) == (local_app["import_path"], local_app["name"])
    assert {k: v for k, v in options.items() if k != "max_replicas_per_node"} == local_options
    assert args == {**local_args, "project_root": manifest.IMAGE_ROOT, "registry": False}
    assert served["http_options"] == {**local["http_options"], "host": "0.0.0.0"}
    workers = spec["rayClusterConfig"]["workerGroupSpecs"][0]
    assert workers["replicas"] == local_options.get("num_replicas", 1)
    assert workers["rayStartParams"]["num-cpus"] == str(local_options["ray_actor_options"]["num_cpus"])


def test_a_config_edit_reaches_the_manifest(tmp_path):
    config = load_config(CONFIG)
    config["applications"][0]["deployments"][0]["num_replicas"] = 3
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    rendered = yaml.safe_load(manifest.render(path, image="registry.example/scoring:abc"))
    assert rendered["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["replicas"] == 3
    assert "num_replicas: 3" in rendered["spec"]["serveConfigV2"]
    containers = [group["template"]["spec"]["containers"][0] for group in
                  (rendered["spec"]["rayClusterConfig"]["headGroupSpec"],
                   *rendered["spec"]["rayClusterConfig"]["workerGroupSpecs"])]
    for container in containers:
        assert container["image"] == "registry.example/scoring:abc"
        env = {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}
        assert env["RAY_SERVE_ENABLE_HA_PROXY"] == env["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
        assert env["RAY_AUTH_MODE"] == "token"
        assert env["RAY_AUTH_TOKEN"] == {"secretKeyRef": {"name": manifest.TOKEN_SECRET, "key": "auth_token"}}
    assert rendered["spec"]["rayClusterConfig"]["authOptions"] == {"mode": "token", "secretName": manifest.TOKEN_SECRET}


def dockerfile_copies() -> list[tuple[list[str], str]]:
    copies = []
    for line in (REPO / "deploy" / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            *sources, target = line.split()[1:]
            copies.append((sources, target))
    return copies


def test_the_image_copies_what_the_service_reads_and_nothing_the_ignore_file_drops():
    paths = SETTINGS.paths
    served = {str(path) for path in (paths.model, paths.history, paths.threshold_json, paths.metrics_json)}
    sources = {source.rstrip("/") for group, _ in dockerfile_copies() for source in group}
    assert served <= sources, "the Dockerfile misses a file the service reads"
    outputs = [out for written in dvc_outputs(yaml.safe_load((REPO / "dvc.yaml").read_text()), paths).values()
               for out in written]
    for source in sources:
        made_by_dvc = any(source == out or source.startswith(out + "/") for out in outputs)
        assert (REPO / source).exists() or made_by_dvc, f"COPY {source}: neither in git nor a dvc.yaml output"
    kept = {line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
            if line.startswith("!")}
    assert sources <= kept, f"excluded by .dockerignore: {sources - kept}"
    text = (REPO / "deploy" / "Dockerfile").read_text()
    assert f"WORKDIR {manifest.IMAGE_ROOT}" in text and "pip install -r requirements-serve.lock" in text


def test_the_images_command_is_one_serve_run_accepts():
    command = re.search(r'^CMD (\[.*\])$', (REPO / "deploy" / "Dockerfile").read_text(), re.M)
    args = yaml.safe_load(command[1])
    assert args[:3] == ["python", "-m", "serve.run"]
    options = argument_parser().parse_args(args[3:])  # exits (fails the test) on an option it does not know
    assert options.host == "0.0.0.0" and options.pipeline_model and str(options.project_root) == manifest.IMAGE_ROOT


AUTH_OFF = re.compile(r"RAY_AUTH_MODE\W{0,6}" + "dis" + "abled")
"""Ray's token authentication switched off (spelt in two pieces so that this file does not say it)."""


def test_no_file_switches_rays_token_authentication_off():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    offenders = [name for name in tracked if (REPO / name).is_file()
                 and AUTH_OFF.search((REPO / name).read_text(errors="replace"))]
    assert not offenders, f"{offenders} switch Ray's token authentication off (RAY_AUTH_MODE): it must stay on"
