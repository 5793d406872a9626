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
"""
from __future__ import annotations

import argparse
import copy
import logging
from pathlib import Path
from typing import Any

import yaml

from scoring.ray_runtime import AUTH_MODE, QUIET
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


def node_environment() -> list[dict[str, Any]]:
    """The same variables on the head and every worker (Ray reads the ingress switches on each node), and Ray's
    token authentication on, its token from the cluster's Secret (never in the manifest)."""
    plain = {**QUIET, **FAST_INGRESS, **timeout_environment(), AUTH_MODE: "token"}
    token = {"name": "RAY_AUTH_TOKEN", "valueFrom": {"secretKeyRef": {"name": TOKEN_SECRET, "key": "auth_token"}}}
    return [*({"name": key, "value": value} for key, value in sorted(plain.items())), token]


def container(name: str, image: str, cpus: int, memory: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "image": image, "imagePullPolicy": "IfNotPresent", "workingDir": IMAGE_ROOT,
            "env": node_environment(), "ports": ports,
            "resources": {"requests": {"cpu": str(cpus), "memory": memory},
                          "limits": {"cpu": str(cpus), "memory": memory}}}


def rayservice(config: dict[str, Any], image: str = DEFAULT_IMAGE, name: str = "credit-scoring") -> dict[str, Any]:
    """The RayService custom resource (apiVersion ray.io/v1): a head that routes and one worker pod per replica
    (max_replicas_per_node: 1), never fewer (no replica is a single point of failure), up to four when the cluster
    autoscales."""
    served = cluster_serve_config(config)
    _, _, options = application_settings(served)
    cpus = int(options.get("ray_actor_options", {}).get("num_cpus", 1))
    workers = int(options.get("num_replicas", 1))
    port = int(served["http_options"].get("port", 8000))
    head_ports = [{"containerPort": 6379, "name": "gcs"}, {"containerPort": 8265, "name": "dashboard"},
                  {"containerPort": port, "name": "serve"}]
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": name}},
        "spec": {
            "serveConfigV2": yaml.safe_dump(served, sort_keys=False),
            "rayClusterConfig": {
                "rayVersion": RAY_VERSION,
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
              "# Deploy: kubectl apply -f deploy/rayservice.yaml (KubeRay operator >= 1.1 installed).\n")
    return header + yaml.dump(rayservice(load_config(config_path), image), Dumper=BlockDumper, sort_keys=False,
                              width=120)


def main(argv: list[str] | None = None) -> None:
    configure_logging()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--image", default=DEFAULT_IMAGE, help="the service's container image (deploy/Dockerfile)")
    parser.add_argument("--output", type=Path, default=MANIFEST)
    ns = parser.parse_args(argv)
    ns.output.parent.mkdir(parents=True, exist_ok=True)
    ns.output.write_text(render(ns.config, ns.image))
    logger.info("wrote %s (image %s)", ns.output, ns.image)


if __name__ == "__main__":
    main()
