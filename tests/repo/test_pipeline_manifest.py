"""The pipeline's KubeRay RayJob (deploy/pipeline-rayjob.yaml, `python -m serve.manifest --pipeline`): the committed
file is the rendered one, the head and every worker mount the same shared claim at the same path, where the entrypoint
runs the project and puts compute.scratch, every container has Ray's token authentication on with its token as a file
copied from the service's Secret, and the image and sizes are the ones asked for. Static: no Kubernetes, no Ray. Each
check is a function returning its problems, also run on broken manifests so it can fail."""
from __future__ import annotations

import copy
import shlex
import stat
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from scoring.ray_runtime import AUTH_MODE, TOKEN_PATH, ensure_token
from serve import manifest

from ..conftest import REPO

IMAGE = "registry.example/credit-scoring-pipeline:abc"


def load(text: str) -> dict[str, Any]:
    documents = list(yaml.safe_load_all(text))
    assert len(documents) == 1, "the pipeline manifest is one RayJob"
    return documents[0]


def committed() -> dict[str, Any]:
    return load(manifest.PIPELINE_MANIFEST.read_text())


def ray_pods(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The pod specs of the Ray nodes: the head and each worker group."""
    cluster = job["spec"]["rayClusterSpec"]
    pods = {"head": cluster["headGroupSpec"]["template"]["spec"]}
    for group in cluster["workerGroupSpecs"]:
        pods[f"worker {group['groupName']}"] = group["template"]["spec"]
    return pods


def all_pods(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {**ray_pods(job), "submitter": job["spec"]["submitterPodTemplate"]["spec"]}


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


def claim_mounts(pod: dict[str, Any]) -> set[tuple[str, str]]:
    """(claim, mount path) of each PersistentVolumeClaim the pod's Ray container mounts."""
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod.get("volumes", [])
              if "persistentVolumeClaim" in v}
    return {(claims[m["name"]], m["mountPath"]) for m in pod["containers"][0].get("volumeMounts", [])
            if m["name"] in claims}


def under(path: str, folder: str) -> bool:
    return PurePosixPath(folder) in (PurePosixPath(path), *PurePosixPath(path).parents)


def entrypoint_settings(entrypoint: str) -> tuple[str, dict[str, str]]:
    """The folder `dvc --cd` runs in and the params that `-S key=value` sets."""
    words = shlex.split(entrypoint)
    assert words[:2] == ["dvc", "--cd"] and words[3:5] == ["exp", "run"], entrypoint
    sets = [words[i + 1] for i, word in enumerate(words) if word == "-S"]
    return words[2], dict(item.split("=", 1) for item in sets)


def shared_volume_problems(job: dict[str, Any]) -> list[str]:
    """The head and every worker mount one and the same claim at one path; the project, its scratch folder and the
    PYTHONPATH of every Ray node are on it."""
    problems = []
    mounts = {name: claim_mounts(pod) for name, pod in ray_pods(job).items()}
    for name, found in mounts.items():
        if len(found) != 1:
            problems.append(f"{name}: mounts {sorted(found)}, not exactly one shared claim")
    if len({frozenset(found) for found in mounts.values()}) != 1:
        problems.append(f"the Ray nodes mount different claims or paths: {mounts}")
    if problems:
        return problems
    (_, shared), = next(iter(mounts.values()))
    project, params = entrypoint_settings(job["spec"]["entrypoint"])
    if not under(project, shared):
        problems.append(f"the entrypoint runs the project in {project}, not on the shared volume {shared}")
    if not under(params.get("compute.scratch", ""), shared):
        problems.append(f"compute.scratch {params.get('compute.scratch')!r} is not on the shared volume {shared}")
    for name, pod in ray_pods(job).items():
        if env_of(pod["containers"][0]).get("PYTHONPATH") != project:
            problems.append(f"{name}: PYTHONPATH is not the shared project {project} (Ray workers import scoring)")
    return problems


def token_problems(job: dict[str, Any], secret: str) -> list[str]:
    """Every container of every pod (head, workers, submitter) has RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH in a
    volume that the pod's init container fills from `secret`; KubeRay is told the same Secret; no token in the
    manifest itself."""
    problems = []
    options = job["spec"]["rayClusterSpec"].get("authOptions", {})
    if options != {"mode": "token", "secretName": secret}:
        problems.append(f"rayClusterSpec.authOptions is {options}, not token mode with the Secret {secret}")
    for name, pod in all_pods(job).items():
        secrets = {v["name"] for v in pod.get("volumes", []) if v.get("secret", {}).get("secretName") == secret}
        filled = {}  # volume -> where an init container that reads the Secret writes it
        for init in pod.get("initContainers", []):
            mounts = {m["name"]: m["mountPath"] for m in init.get("volumeMounts", [])}
            if secrets & set(mounts):
                filled.update({volume: path for volume, path in mounts.items() if volume not in secrets})
        for container in pod["containers"]:
            env = env_of(container)
            where = f"{name}/{container['name']}"
            if env.get(AUTH_MODE) != "token":
                problems.append(f"{where}: {AUTH_MODE} is {env.get(AUTH_MODE)!r}, not 'token'")
            token_file = env.get(TOKEN_PATH)
            mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
            if not token_file or not any(mounts.get(volume) == path and under(token_file, path)
                                         for volume, path in filled.items()):
                problems.append(f"{where}: {TOKEN_PATH}={token_file!r} is not in a volume filled from {secret}")
            if "RAY_AUTH_TOKEN" in env and not isinstance(env["RAY_AUTH_TOKEN"], dict):
                problems.append(f"{where}: a literal token in the manifest")
    return problems


def test_committed_pipeline_manifest_is_the_rendered_one():
    assert manifest.PIPELINE_MANIFEST == REPO / "deploy" / "pipeline-rayjob.yaml"
    assert manifest.PIPELINE_MANIFEST.read_text() == manifest.render_pipeline(), \
        "deploy/pipeline-rayjob.yaml is behind serve/manifest.py: run `python -m serve.manifest --pipeline`"


def test_it_is_one_rayjob_of_kuberay():
    job = committed()
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    assert job["spec"]["rayClusterSpec"]["rayVersion"] == manifest.RAY_VERSION
    assert job["spec"]["shutdownAfterJobFinishes"] is True
    assert job["spec"]["rayClusterSpec"]["workerGroupSpecs"], "no worker group"


def test_head_and_every_worker_share_one_claim_at_one_path():
    job = committed()
    assert shared_volume_problems(job) == []
    assert {claim for pod in ray_pods(job).values() for claim, _ in claim_mounts(pod)} == {manifest.SHARED_CLAIM}


def test_the_shared_volume_check_can_fail():
    job = committed()
    moved = copy.deepcopy(job)
    worker = moved["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    next(m for m in worker["volumeMounts"] if m["name"] == "shared")["mountPath"] = "/elsewhere"
    assert any("different claims or paths" in p for p in shared_volume_problems(moved))
    unmounted = copy.deepcopy(job)
    worker = unmounted["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    worker["volumeMounts"] = [m for m in worker["volumeMounts"] if m["name"] != "shared"]
    assert any("not exactly one shared claim" in p for p in shared_volume_problems(unmounted))
    local_scratch = copy.deepcopy(job)
    local_scratch["spec"]["entrypoint"] = local_scratch["spec"]["entrypoint"].replace(
        f"compute.scratch={manifest.SCRATCH_DIR}", "compute.scratch=/tmp/scratch")
    assert any("compute.scratch" in p for p in shared_volume_problems(local_scratch))


def test_the_entrypoint_runs_the_pipeline_on_this_ray_cluster():
    job = committed()
    entrypoint = job["spec"]["entrypoint"]
    project, params = entrypoint_settings(entrypoint)
    assert project == manifest.PROJECT_DIR
    assert params["compute.backend"] == "ray" and params["compute.address"] == "auto"
    assert params["compute.scratch"] == manifest.SCRATCH_DIR
    compute = yaml.safe_load((REPO / "params.yaml").read_text())["compute"]
    assert {key.split(".", 1)[1] for key in params} <= set(compute), "dvc exp run -S needs keys params.yaml has"
    assert not set(entrypoint) & set(";&|<>`$()\\'\"\n"), \
        "KubeRay's submitter pastes the entrypoint into its own bash line: no shell syntax in it"


def test_every_container_has_token_auth_from_the_services_secret():
    serving = yaml.safe_load(manifest.MANIFEST.read_text())
    head = serving["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    secret = env_of(head)["RAY_AUTH_TOKEN"]["secretKeyRef"]["name"]
    assert secret == manifest.TOKEN_SECRET
    job = committed()
    assert token_problems(job, secret) == []
    assert len([c for pod in all_pods(job).values() for c in pod["containers"]]) == 3


def test_the_token_check_can_fail():
    job = committed()
    assert any("authOptions" in p for p in token_problems(job, "another-secret"))
    off = copy.deepcopy(job)
    worker = off["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    worker["env"] = [item for item in worker["env"] if item["name"] != AUTH_MODE]
    assert any(f"ray-worker: {AUTH_MODE}" in p for p in token_problems(off, manifest.TOKEN_SECRET))
    elsewhere = copy.deepcopy(job)
    head = elsewhere["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    next(item for item in head["env"] if item["name"] == TOKEN_PATH)["value"] = "/home/ray/.ray/auth_token"
    assert any(f"ray-head: {TOKEN_PATH}" in p for p in token_problems(elsewhere, manifest.TOKEN_SECRET))
    literal = copy.deepcopy(job)
    submitter = literal["spec"]["submitterPodTemplate"]["spec"]["containers"][0]
    submitter["env"].append({"name": "RAY_AUTH_TOKEN", "value": "0123abcd"})
    assert any("literal token" in p for p in token_problems(literal, manifest.TOKEN_SECRET))


def test_the_init_containers_copy_is_a_token_file_the_project_accepts(tmp_path):
    """The init container's command, run here on a Secret file as Kubernetes gives it with fsGroup (0440): the
    copy is this user's 0600 file, which scoring/ray_runtime.py's `ensure_token` accepts (it refuses the Secret's)."""
    pod = ray_pods(committed())["head"]
    command = pod["initContainers"][0]["command"]
    source, target = Path(command[-2]), Path(command[-1])
    assert source.parent == Path(manifest.TOKEN_SECRET_DIR) and target.parent == Path(manifest.TOKEN_DIR)
    secret = tmp_path / "secret" / source.name
    secret.parent.mkdir()
    secret.write_text("f" * 64)
    secret.chmod(0o440)
    with pytest.raises(PermissionError):
        ensure_token(secret)
    copied = tmp_path / "token" / target.name
    copied.parent.mkdir()
    subprocess.run([*command[:-2], str(secret), str(copied)], check=True)
    assert stat.S_IMODE(copied.stat().st_mode) == 0o600 and copied.read_text() == "f" * 64
    assert ensure_token(copied) == copied


def test_image_and_sizes_are_the_ones_asked_for(tmp_path):
    out = tmp_path / "pipeline.yaml"
    manifest.main(["--pipeline", "--image", IMAGE, "--output", str(out), "--workers", "3", "--worker-cpus", "8",
                   "--worker-memory", "32Gi", "--head-memory", "24Gi", "--claim", "team-rwx"])
    text = out.read_text()
    assert text == manifest.render_pipeline(IMAGE, claim="team-rwx", workers=3, worker_cpus=8,
                                            worker_memory="32Gi", head_memory="24Gi")
    job = load(text)
    images = {c["image"] for pod in all_pods(job).values() for c in (*pod["containers"], *pod["initContainers"])}
    assert images == {IMAGE}
    group = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == 3
    assert group["rayStartParams"]["num-cpus"] == "8"
    worker = group["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"] == worker["resources"]["requests"] == {"cpu": "8", "memory": "32Gi"}
    head = ray_pods(job)["head"]["containers"][0]
    assert head["resources"]["limits"]["memory"] == "24Gi"
    assert job["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert {claim for pod in ray_pods(job).values() for claim, _ in claim_mounts(pod)} == {"team-rwx"}
    assert shared_volume_problems(job) == [] and token_problems(job, manifest.TOKEN_SECRET) == []


def test_no_worker_is_refused():
    with pytest.raises(ValueError, match="at least one worker"):
        manifest.rayjob(workers=0)


def test_nothing_is_bound_to_every_address_by_the_manifest():
    """KubeRay itself starts the head's dashboard on 0.0.0.0 (its submitter and operator reach it through the head
    Service); the manifest adds no other such bind, and switches none of Ray's authentication off."""
    text = manifest.PIPELINE_MANIFEST.read_text()
    assert "0.0.0.0" not in text and "dashboard-host" not in text
    job = committed()
    starts = [job["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"],
              *(g["rayStartParams"] for g in job["spec"]["rayClusterSpec"]["workerGroupSpecs"])]
    assert all(set(params) <= {"num-cpus"} for params in starts), starts
