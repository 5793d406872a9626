"""Start the scoring service locally from serve/config.yaml and keep it up until Ctrl-C (or SIGTERM).

    python -m serve.run [--config serve/config.yaml] [--host 127.0.0.1] [--port 8000] [--pipeline-model] [--replicas N]
                        [--default-proxy]

Ray starts in this process (no dashboard, no usage statistics, token authentication on: scoring/ray_runtime.py); the
HTTP ingress binds 127.0.0.1. By default the
high-throughput ingress (HAProxy, `RAY_SERVE_ENABLE_HA_PROXY=1`, `RAY_SERVE_THROUGHPUT_OPTIMIZED=1`) replaces Ray's
Python proxy: it measured ~5x faster here (bench/serve.py); `--default-proxy` keeps Ray's own.

A single-node Ray on loopback (`LOOPBACK_NODE`): Ray 2.60 takes the machine's address as the node's address even
when told 127.0.0.1 (`services.resolve_ip_for_localhost`), and then binds GCS, raylet and worker gRPC servers on
every interface, its agents on that address and three Prometheus exporters on 0.0.0.0. Its switch for single-node
machines, `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` (the default on Windows and macOS: "no multi-node cluster"), makes
the node's address 127.0.0.1, and all of those bind 127.0.0.1 instead (tests/integration/test_ray_auth.py lists
them). Only Serve's inter-deployment gRPC server of each replica still binds `[::]` (hard-coded in Ray 2.60); it
requires Ray's token. The autoscaler's and the dashboard's exporters get free ports instead of the fixed
44217/44227, and Ray's temp folder (which Ray makes 0777) is made 0700 once Ray is up.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import psutil
import yaml

from scoring.ray_runtime import QUIET, local_node_environment, new_temp_dir, start_local
from scoring.settings import configure_logging
from serve.loopback import haproxy_environment

logger = logging.getLogger("serve.run")
CONFIG = Path(__file__).with_name("config.yaml")
FAST_INGRESS = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}
REPLICA_DRAINING_S = 2
"""How long a stopping replica of the fast ingress keeps answering (Ray's default 30 s, for a cloud load balancer to
notice; the HAProxy here checks every 250 ms and stops sending at once): stopping would otherwise take 35 s."""


def load_config(path: Path = CONFIG) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def application_settings(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(application entry, its args, the CreditScoring deployment options) of the config."""
    app = config["applications"][0]
    deployment = next(d for d in app.get("deployments", []) if d["name"] == "CreditScoring")
    options = {k: v for k, v in deployment.items() if k != "name"}
    return app, dict(app.get("args", {})), options


def application_args(config: dict[str, Any], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The app's arguments of the config with these overrides, its project root made absolute (for every node)."""
    args = {**application_settings(config)[1], **(overrides or {})}
    args["project_root"] = str(Path(args.get("project_root", ".")).resolve())
    return args


def runtime_env(env_vars: dict[str, str]) -> dict[str, Any]:
    """The job's environment for its actors: these variables, and HAProxy's listeners kept on 127.0.0.1."""
    return {"env_vars": env_vars, "worker_process_setup_hook": "serve.loopback.bind_haproxy_to_loopback"}


def deploy(config: dict[str, Any], args: dict[str, Any], deployment_overrides: dict[str, Any] | None = None,
           host: str | None = None, port: int | None = None) -> str:
    """Serve's ingress and the config's application with these arguments (Ray is up); return the base URL."""
    from ray import serve

    from serve.app import CreditScoring  # here, not at the top: the manifest renderer imports this module without Ray

    app_entry, _, options = application_settings(config)
    options.update(deployment_overrides or {})
    http = config.get("http_options", {})
    host, port = host or http.get("host", "127.0.0.1"), int(port or http.get("port", 8000))
    serve.start(proxy_location=config.get("proxy_location", "HeadOnly"),
                http_options={**http, "host": host, "port": port})
    try:
        serve.run(CreditScoring.options(**options).bind(**args), name=app_entry["name"],
                  route_prefix=app_entry.get("route_prefix", "/"))
    except RuntimeError as failure:   # Serve's own message names no cause: the replicas' error is in its status
        raise RuntimeError(f"{failure}\n{deployment_messages(app_entry['name'])}") from failure
    return f"http://{host}:{port}"


def deployment_messages(app_name: str) -> str:
    """What Serve says of each deployment of the application (a replica's constructor error, for one)."""
    from ray import serve

    application = serve.status().applications.get(app_name)
    if application is None:
        return f"Serve has no status for {app_name!r}"
    return "\n".join(f"{name}: {status.message}" for name, status in application.deployments.items())


def ingress_environment(temp_dir: Path, fast_ingress: bool) -> dict[str, str]:
    """The fast ingress's switches, HAProxy's files, ports and timeouts (serve/loopback.py)."""
    if not fast_ingress:
        return {}
    return {**FAST_INGRESS, **haproxy_environment(temp_dir / "haproxy"),
            "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": str(REPLICA_DRAINING_S)}


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_on(signum: int, _frame: Any) -> None:
    """A stop signal: unwinds through `main`, which then stops what was started, however far the start got."""
    raise SystemExit(128 + signum)


def start(temp_dir: Path, config: dict[str, Any], port: int | None = None, fast_ingress: bool = True,
          num_cpus: int | None = None, overrides: dict[str, Any] | None = None,
          deployment_overrides: dict[str, Any] | None = None, host: str | None = None) -> str:
    """Start Ray in `temp_dir` and the application; return the base URL. The caller calls `stop(temp_dir)`, also
    when this raises (a replica that cannot load the model, say)."""
    ingress = ingress_environment(temp_dir, fast_ingress)
    local_node_environment(ingress)
    start_local(temp_dir, num_cpus,
                runtime_env({key: os.environ[key] for key in (*QUIET, *ingress) if key in os.environ}))
    for sig in STOP_SIGNALS:   # again after Ray's start: its driver installs a SIGTERM handler that aborts the process
        signal.signal(sig, exit_on)
    return deploy(config, application_args(config, overrides), deployment_overrides, host, port)


def stop(temp_dir: Path, timeout: float = 10) -> None:
    """The application and Ray; then any process that outlived them and names Ray's folder, and the folder.
    HAProxy is such a process: Ray Serve reloads it by starting a new one (`-sf <old pid>`), which Ray's shutdown
    does not know, so it used to outlive the service, re-parented to init."""
    import ray
    from ray import serve

    if ray.is_initialized():   # else serve.shutdown() would start a Ray to look for Serve in
        serve.shutdown()
        ray.shutdown()
    left = [process for process in psutil.process_iter(["cmdline"])
            if any(str(temp_dir) in arg for arg in process.info["cmdline"] or [])]
    for process in left:
        logger.info("stopping left-over process %d (%s)", process.pid, " ".join(process.info["cmdline"])[:80])
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(left, timeout=timeout)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    shutil.rmtree(temp_dir, ignore_errors=True)


def add_application_options(parser: argparse.ArgumentParser) -> None:
    """What serve.run and serve.cluster both let the command line change: the model, project, log and ingress."""
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--pipeline-model", action="store_true", help="serve data/models, not the MLflow champion")
    parser.add_argument("--project-root", type=Path, help="where params.yaml and the pipeline outputs are")
    parser.add_argument("--production-log", help="folder of the production log ('' to switch it off)")
    parser.add_argument("--default-proxy", action="store_true", help="Ray's Python proxy instead of HAProxy")


def application_overrides(ns: argparse.Namespace) -> dict[str, Any]:
    """The application arguments that those options change."""
    overrides: dict[str, Any] = {"registry": False} if ns.pipeline_model else {}
    if ns.project_root is not None:
        overrides["project_root"] = str(ns.project_root)
    if ns.production_log is not None:
        overrides["production_log"] = ns.production_log or False
    return overrides


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", help="address to bind (default: serve/config.yaml's, 127.0.0.1); 0.0.0.0 in a "
                                       "container")
    parser.add_argument("--port", type=int)
    parser.add_argument("--replicas", type=int)
    add_application_options(parser)
    parser.add_argument("--batch-size", type=int, help="concurrent POST /score requests scored together (1: none)")
    return parser


def main(argv: list[str] | None = None) -> None:
    configure_logging()
    ns = argument_parser().parse_args(argv)
    overrides = application_overrides(ns)
    if ns.batch_size is not None:
        overrides["batch_size"] = ns.batch_size
    deployment = {"num_replicas": ns.replicas} if ns.replicas else {}
    temp_dir = new_temp_dir()
    for sig in STOP_SIGNALS:
        signal.signal(sig, exit_on)
    try:
        url = start(temp_dir, load_config(ns.config), ns.port, not ns.default_proxy, overrides=overrides,
                    deployment_overrides=deployment, host=ns.host)
        logger.info("scoring service ready: %s/score (API reference %s/docs)", url, url)
        while True:
            signal.pause()
    except SystemExit:
        logger.info("stopping the scoring service")
    finally:
        for sig in STOP_SIGNALS:   # a second signal would cut the stop short and leave Ray's processes running
            signal.signal(sig, signal.SIG_IGN)
        stop(temp_dir)


if __name__ == "__main__":
    main()
