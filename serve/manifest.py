"""The KubeRay RayService manifest of the scoring service, rendered from serve/config.yaml (the local Serve config).

    python -m serve.manifest [--image IMAGE] [--output deploy/rayservice.yaml]

One source of settings: the application, its arguments and its deployment options (replicas, CPUs, concurrency) are
serve/config.yaml's; only what a cluster needs differs, and it is set here in one place: the HTTP host (0.0.0.0
behind the cluster's own service, instead of loopback), the project root inside the container image
(deploy/Dockerfile), the registry (the image carries the pipeline's model, not an MLflow store) and the
high-throughput ingress variables and the ingress timeouts that Ray reads from variables (serve/loopback.py's
INGRESS_TIMEOUTS_S: client silence, replica answer, connect), set on every node as Ray asks, and Ray's token
authentication, its token read from a Kubernetes Secret. The rest of serve/loopback.py's HAProxy hardening is a
rewrite of Ray's config template in the job's worker setup hook, which a RayService's controller does not run: on
Kubernetes, `timeout http-request`, the 503 answers with Retry-After and the admin socket's mode stay Ray's
(the cluster's own ingress sits in front). deploy/rayservice.yaml is this output for the
default image; a test fails when it falls behind serve/config.yaml, and the CI deploy job renders it again for the
image it has just built.

    python -m serve.manifest --pipeline [--image IMAGE] [--workers N --worker-cpus C --worker-memory M ...]

The pipeline itself (not the service) as a KubeRay RayJob: deploy/pipeline-rayjob.yaml. Its entrypoint runs
`dvc exp run -S compute.backend=ray ...` in the project checkout on a ReadWriteMany PersistentVolumeClaim that the
head and every worker mount at the same path (data/ and the `compute.scratch` folder on it), with the same Ray
token authentication as the service (the same Secret). The token reaches every container as a file
(RAY_AUTH_TOKEN_PATH), as scoring/ray_runtime.py expects: a Kubernetes Secret volume's files belong to root, or to
the pod's fsGroup with group read added (0440), which `ensure_token` rightly refuses, so an init container copies
the Secret's key into a memory-backed volume as this user's own 0600 file. KubeRay (>= 1.6: authOptions.secretName)
is told the same Secret, for its own calls to the dashboard (job submission and status). The image is
deploy/pipeline.Dockerfile's: the pipeline's dependencies, not the code, which is on the shared volume.
"""
from __future__ import annotations

import argparse
import copy
import logging
from pathlib import Path
from typing import Any

import yaml

from scoring.ray_runtime import AUTH_MODE, QUIET, TOKEN_PATH
from scoring.settings import configure_logging
from serve.loopback import timeout_environment
from serve.run import CONFIG, FAST_INGRESS, application_settings, load_config

logger = logging.getLogger("serve.manifest")
IMAGE_ROOT = "/srv/scoring"
"""Where deploy/Dockerfile puts the project (package, params.yaml, the pipeline's serving outputs)."""
DEFAULT_IMAGE = "ghcr.io/pret-a-depenser/credit-scoring:latest"
MANIFEST = Path(__file__).resolve().parents[1] / "deploy" / "rayservice.yaml"
RAY_VERSION = "2.60.0"


class BlockDumper(yaml.SafeDumper):
    """Multi-line strings as YAML literal blocks: serveConfigV2 stays readable in the manifest."""


BlockDumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def cluster_serve_config(config: dict[str, Any]) -> dict[str, Any]:
    """serve/config.yaml as a cluster runs it: same application and deployment options, cluster-only overrides."""
    out = copy.deepcopy(config)
    out["http_options"] = {**out.get("http_options", {}), "host": "0.0.0.0"}
    out["proxy_location"] = "EveryNode"
    app = out["applications"][0]
    app["args"] = {**app.get("args", {}), "project_root": IMAGE_ROOT, "registry": False}
    for deployment in app.get("deployments", []):
        deployment.setdefault("max_replicas_per_node", 1)
    return out


TOKEN_SECRET = "credit-scoring-ray-token"
"""The Kubernetes Secret holding Ray's token (key `auth_token`); the deploy job creates it once, at random."""


TOKEN_KEY = "auth_token"
AUTH_OPTIONS = {"mode": "token", "secretName": TOKEN_SECRET}
"""KubeRay's own view of the token (>= 1.6): the operator reads the Secret for its calls to the dashboard (health,
Serve status, job submission), which the cluster refuses without it."""


def plain_environment(variables: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": key, "value": value} for key, value in sorted(variables.items())]


def node_environment() -> list[dict[str, Any]]:
    """The same variables on the head and every worker (Ray reads the ingress switches on each node), and Ray's
    token authentication on, its token from the cluster's Secret (never in the manifest)."""
    plain = {**QUIET, **FAST_INGRESS, **timeout_environment(), AUTH_MODE: "token"}
    token = {"name": "RAY_AUTH_TOKEN", "valueFrom": {"secretKeyRef": {"name": TOKEN_SECRET, "key": TOKEN_KEY}}}
    return [*plain_environment(plain), token]


def resources(cpus: int | str, memory: str) -> dict[str, Any]:
    """Requests equal to limits: the scheduler places a pod only where what it uses is free."""
    return {"requests": {"cpu": str(cpus), "memory": memory}, "limits": {"cpu": str(cpus), "memory": memory}}


def container(name: str, image: str, cpus: int, memory: str, ports: list[dict[str, Any]],
              env: list[dict[str, Any]] | None = None, working_dir: str = IMAGE_ROOT) -> dict[str, Any]:
    return {"name": name, "image": image, "imagePullPolicy": "IfNotPresent", "workingDir": working_dir,
            "env": node_environment() if env is None else env, "ports": ports,
            "resources": resources(cpus, memory)}


HEAD_PORTS = [{"containerPort": 6379, "name": "gcs"}, {"containerPort": 8265, "name": "dashboard"}]
"""The head's Ray ports the cluster reaches: the GCS (workers join it) and the dashboard (KubeRay's calls, jobs)."""


def rayservice(config: dict[str, Any], image: str = DEFAULT_IMAGE, name: str = "credit-scoring") -> dict[str, Any]:
    """The RayService custom resource (apiVersion ray.io/v1): a head that routes and one worker pod per replica
    (max_replicas_per_node: 1), never fewer (no replica is a single point of failure), up to four when the cluster
    autoscales."""
    served = cluster_serve_config(config)
    _, _, options = application_settings(served)
    cpus = int(options.get("ray_actor_options", {}).get("num_cpus", 1))
    workers = int(options.get("num_replicas", 1))
    port = int(served["http_options"].get("port", 8000))
    head_ports = [*HEAD_PORTS, {"containerPort": port, "name": "serve"}]
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": name}},
        "spec": {
            "serveConfigV2": yaml.safe_dump(served, sort_keys=False),
            "rayClusterConfig": {
                "rayVersion": RAY_VERSION,
                "authOptions": AUTH_OPTIONS,
                "headGroupSpec": {
                    "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},  # the head routes, never scores
                    "template": {"spec": {"containers": [container("ray-head", image, 1, "2Gi", head_ports)]}},
                },
                "workerGroupSpecs": [{
                    "groupName": "scoring",
                    "replicas": workers, "minReplicas": workers, "maxReplicas": max(workers, 4),
                    "rayStartParams": {"num-cpus": str(cpus)},
                    "template": {"spec": {"containers": [container("ray-worker", image, cpus, "3Gi",
                                                                   [{"containerPort": port, "name": "serve"}])]}},
                }],
            },
        },
    }


def render(config_path: Path = CONFIG, image: str = DEFAULT_IMAGE) -> str:
    header = ("# Generated by `python -m serve.manifest` from serve/config.yaml: edit that file, then run it again.\n"
              "# Deploy: kubectl apply -f deploy/rayservice.yaml (KubeRay operator >= 1.6 installed: authOptions).\n")
    return header + yaml.dump(rayservice(load_config(config_path), image), Dumper=BlockDumper, sort_keys=False,
                              width=120)


PIPELINE_MANIFEST = MANIFEST.with_name("pipeline-rayjob.yaml")
PIPELINE_IMAGE = "ghcr.io/pret-a-depenser/credit-scoring-pipeline:latest"
"""deploy/pipeline.Dockerfile's image: the pipeline's pinned dependencies (requirements.lock), git; no project code."""
SHARED_CLAIM = "credit-scoring-shared"
"""The ReadWriteMany PersistentVolumeClaim holding the project checkout (git clone, then `dvc pull` or the raw data)."""
SHARED_MOUNT = "/shared"
"""Where head and workers mount the claim: the same path on every node, as compute.scratch and data/ require."""
PROJECT_DIR = f"{SHARED_MOUNT}/project"
SCRATCH_DIR = f"{SHARED_MOUNT}/scratch"
TOKEN_SECRET_DIR = "/etc/ray-token-secret"
TOKEN_DIR = "/run/ray-token"
"""The folder of the token file every Ray container reads (RAY_AUTH_TOKEN_PATH): the init container's 0600 copy."""
RUN_AS = 1000
"""The image's user (deploy/pipeline.Dockerfile, like deploy/Dockerfile and Ray's own images: uid 1000)."""
PIPELINE_QUIET = {"DVC_NO_ANALYTICS": "1", "GX_ANALYTICS_ENABLED": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}


def pipeline_entrypoint(project: str = PROJECT_DIR, scratch: str = SCRATCH_DIR) -> str:
    """The job's command, run by the job's driver on the head: the DVC pipeline in the shared checkout, its heavy
    work on this cluster (`auto`: the driver's own cluster, RAY_ADDRESS of the job). One command without shell
    operators: KubeRay's submitter pastes the entrypoint into a bash line of its own."""
    return (f"dvc --cd {project} exp run -S compute.backend=ray -S compute.address=auto "
            f"-S compute.scratch={scratch}")


def pipeline_environment(project: str = PROJECT_DIR) -> list[dict[str, Any]]:
    """The variables of every container of the RayJob: Ray's token authentication on, its token in a file
    (scoring/ray_runtime.py reads RAY_AUTH_TOKEN_PATH), the project's package from the shared checkout on every
    node (Ray's workers import `scoring` there), usage reports off."""
    return plain_environment({**QUIET, **PIPELINE_QUIET, AUTH_MODE: "token", TOKEN_PATH: f"{TOKEN_DIR}/{TOKEN_KEY}",
                              "PYTHONPATH": project})


def token_mount() -> dict[str, Any]:
    return {"name": "ray-token", "mountPath": TOKEN_DIR, "readOnly": True}


def shared_mount() -> dict[str, Any]:
    return {"name": "shared", "mountPath": SHARED_MOUNT}


def token_pod(containers: list[dict[str, Any]], image: str, claim: str | None, **spec: Any) -> dict[str, Any]:
    """A pod spec whose containers find Ray's token at RAY_AUTH_TOKEN_PATH, as their user's own 0600 file: the
    Secret is mounted into an init container only (group-readable through fsGroup, the form Kubernetes gives it),
    which copies its key into a memory-backed volume. With `claim`, the shared volume too."""
    volumes = [{"name": "ray-token-secret", "secret": {"secretName": TOKEN_SECRET, "defaultMode": 0o440,
                                                       "items": [{"key": TOKEN_KEY, "path": TOKEN_KEY}]}},
               {"name": "ray-token", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}]
    if claim:
        volumes.append({"name": "shared", "persistentVolumeClaim": {"claimName": claim}})
    copy = {"name": "ray-token", "image": image, "imagePullPolicy": "IfNotPresent",
            "command": ["install", "-m", "600", f"{TOKEN_SECRET_DIR}/{TOKEN_KEY}", f"{TOKEN_DIR}/{TOKEN_KEY}"],
            "volumeMounts": [{"name": "ray-token-secret", "mountPath": TOKEN_SECRET_DIR, "readOnly": True},
                             {"name": "ray-token", "mountPath": TOKEN_DIR}],
            "resources": resources("100m", "64Mi")}
    return {**spec,
            "securityContext": {"runAsUser": RUN_AS, "runAsGroup": RUN_AS, "runAsNonRoot": True, "fsGroup": RUN_AS,
                                "fsGroupChangePolicy": "OnRootMismatch"},
            "initContainers": [copy], "containers": containers, "volumes": volumes}


def pipeline_container(name: str, image: str, cpus: int | str, memory: str,
                       ports: list[dict[str, Any]] | None = None, shared: bool = True) -> dict[str, Any]:
    out = container(name, image, cpus, memory, ports or [], env=pipeline_environment(), working_dir=PROJECT_DIR)
    if not ports:
        del out["ports"]
    if not shared:
        out["workingDir"] = "/tmp"
    out["volumeMounts"] = [token_mount(), *([shared_mount()] if shared else [])]
    return out


def rayjob(image: str = PIPELINE_IMAGE, name: str = "credit-scoring-pipeline", claim: str = SHARED_CLAIM,
           workers: int = 2, worker_cpus: int = 4, worker_memory: str = "16Gi", head_cpus: int = 2,
           head_memory: str = "16Gi", ttl_s: int = 600) -> dict[str, Any]:
    """The RayJob custom resource (apiVersion ray.io/v1): a cluster made for one `dvc exp run`, deleted `ttl_s`
    after it ends (outputs stay on the claim). The job's driver runs on the head, which gives Ray no CPU (num-cpus
    0: the stages' own work in the driver keeps the head's cores), so the Ray tasks and the Ray Train workers run on
    `workers` fixed worker pods of `worker_cpus` cores each. Nothing is bound to 0.0.0.0 here: KubeRay starts the
    head's dashboard on it itself (its submitter and its operator reach it through the head Service), behind the
    token like every Ray port."""
    if workers < 1:
        raise ValueError("the pipeline needs at least one worker: the head gives Ray no CPU")
    head = pipeline_container("ray-head", image, head_cpus, head_memory, HEAD_PORTS)
    worker = pipeline_container("ray-worker", image, worker_cpus, worker_memory)
    submitter = pipeline_container("ray-job-submitter", image, 1, "1Gi", shared=False)
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": name}},
        "spec": {
            "entrypoint": pipeline_entrypoint(),
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": ttl_s,
            "submitterPodTemplate": {"spec": token_pod([submitter], image, None, restartPolicy="Never")},
            "rayClusterSpec": {
                "rayVersion": RAY_VERSION,
                "authOptions": AUTH_OPTIONS,
                "headGroupSpec": {
                    "rayStartParams": {"num-cpus": "0"},
                    "template": {"spec": token_pod([head], image, claim)},
                },
                "workerGroupSpecs": [{
                    "groupName": "pipeline",
                    "replicas": workers, "minReplicas": workers, "maxReplicas": workers,
                    "rayStartParams": {"num-cpus": str(worker_cpus)},
                    "template": {"spec": token_pod([worker], image, claim)},
                }],
            },
        },
    }


def render_pipeline(image: str = PIPELINE_IMAGE, **options: Any) -> str:
    claim = options.get("claim", SHARED_CLAIM)
    header = ("# Generated by `python -m serve.manifest --pipeline` (serve/manifest.py): edit it, then run it again.\n"
              f"# Needs: KubeRay operator >= 1.6, the Secret {TOKEN_SECRET} (key {TOKEN_KEY}) that\n"
              f"# deploy/rayservice.yaml uses, the ReadWriteMany claim {claim} holding the project checkout\n"
              f"# in project/ (mounted at {SHARED_MOUNT}).\n"
              "# Run: kubectl create -f deploy/pipeline-rayjob.yaml\n")
    return header + yaml.dump(rayjob(image, **options), Dumper=BlockDumper, sort_keys=False, width=120)


def main(argv: list[str] | None = None) -> None:
    configure_logging()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--image", help=f"the container image (default: {DEFAULT_IMAGE}; with --pipeline: "
                                        f"{PIPELINE_IMAGE}, deploy/pipeline.Dockerfile)")
    parser.add_argument("--output", type=Path,
                        help="default: deploy/rayservice.yaml; with --pipeline: deploy/pipeline-rayjob.yaml")
    pipeline = parser.add_argument_group("the pipeline as a RayJob (--pipeline)")
    pipeline.add_argument("--pipeline", action="store_true", help="render the pipeline's RayJob, not the service")
    pipeline.add_argument("--claim", default=SHARED_CLAIM, help="the ReadWriteMany claim holding the project")
    pipeline.add_argument("--workers", type=int, default=2, help="worker pods")
    pipeline.add_argument("--worker-cpus", type=int, default=4)
    pipeline.add_argument("--worker-memory", default="16Gi")
    pipeline.add_argument("--head-cpus", type=int, default=2, help="the head runs the job's driver (dvc, the stages)")
    pipeline.add_argument("--head-memory", default="16Gi")
    ns = parser.parse_args(argv)
    if ns.pipeline:
        output = ns.output or PIPELINE_MANIFEST
        text = render_pipeline(ns.image or PIPELINE_IMAGE, claim=ns.claim, workers=ns.workers,
                               worker_cpus=ns.worker_cpus, worker_memory=ns.worker_memory, head_cpus=ns.head_cpus,
                               head_memory=ns.head_memory)
    else:
        output = ns.output or MANIFEST
        text = render(ns.config, ns.image or DEFAULT_IMAGE)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    logger.info("wrote %s (image %s)", output, ns.image or (PIPELINE_IMAGE if ns.pipeline else DEFAULT_IMAGE))

if __name__ == "__main__":
    main()
