"""Run the scoring service on a real two-node Ray cluster on this machine: a head and a worker started by `ray start`.

    python -m serve.cluster up [--pipeline-model] [--project-root P] [--port N] [--requests 500] [--clients 4]
    python -m serve.cluster status [--json]
    python -m serve.cluster down

`up` starts a head (`ray start --head`, 1 CPU, no dashboard) and a worker node (`ray start --address`, 1 CPU), each
in its own session and temp dir under /tmp and on free ports, deploys the application of serve/config.yaml (its
num_replicas, 2, and max_replicas_per_node 1: one replica per node; its health-check, queue and shutdown settings;
the ingress timeouts of serve/loopback.py on both nodes) from a short-lived driver, waits for /health,
logs the node of each replica and measures the service (p50 of sequential POST /score, then requests/s with a few
concurrent clients). Process ids, temp dirs and addresses are in `.run/cluster/state.json`, the
measurement in `.run/cluster/report.json`. `down` ends each node's `ray start --block` process (which stops its
raylet, GCS, agents and workers), then anything left in those two sessions, and removes the temp dirs. `ray stop` is
not used: it stops every Ray process of the machine, other users' included.
Addresses: Ray 2.60 replaces a loopback `--node-ip-address` by the machine's own address
(`services.resolve_ip_for_localhost`), so both nodes register under it (serve/run.py's single-node switch,
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, would refuse the second node); its GCS, raylets, workers and agents' gRPC servers
listen on all interfaces and require Ray's token, its runtime-env agents listen on the machine's address only (and
require the token), and its Prometheus exporters (autoscaler, dashboard, each node's agent) answer on 0.0.0.0 without
it (README, "Security"). The HTTP ingress binds 127.0.0.1 (http_options.host). All traffic stays on this machine.
Authentication: Ray's token authentication is on (scoring/ray_runtime.py); the token is generated once in the run folder
(`.run/cluster/ray_auth_token`, mode 0600) and given to both nodes and to the driver.
Ingress: the HAProxy fast ingress of serve/run.py (FAST_INGRESS, set on both nodes) runs on the head and forwards to
the replicas' direct-ingress ports on both nodes; `--default-proxy` keeps Ray's Python proxy (head only as well).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from scoring.ray_runtime import QUIET, free_port, token_environment
from scoring.serving import request_schema
from scoring.settings import configure_logging, load_settings
from serve.loopback import haproxy_environment, wait_until_answering
from serve.run import (
    FAST_INGRESS,
    REPLICA_DRAINING_S,
    add_application_options,
    application_args,
    application_overrides,
    application_settings,
    deploy,
    load_config,
    runtime_env,
)

logger = logging.getLogger("serve.cluster")
ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = ROOT / ".run" / "cluster"
RAY = str(Path(sys.executable).with_name("ray"))
REPLICA_PREFIX = "SERVE_REPLICA::"
OBJECT_STORE_BYTES = 256 * 2**20
DRAIN_TIMEOUT_S = 10
"""How long a node waits on SIGTERM for its work to move elsewhere (Ray's default 30 s; here there is nowhere)."""


@dataclass
class Node:
    """One `ray start --block` process: the leader of its own session, so everything it starts can be found."""
    name: str
    pid: int
    temp_dir: str
    log: str


@dataclass
class ClusterState:
    gcs_address: str
    http_port: int
    fast_ingress: bool
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def save(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "state.json").write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, run_dir: Path) -> ClusterState | None:
        path = run_dir / "state.json"
        if not path.exists():
            return None
        raw = json.loads(path.read_text())
        return cls(**{**raw, "nodes": [Node(**node) for node in raw["nodes"]]})


# ---- nodes ----------------------------------------------------------------------------------------------------------
def node_environment(temp_dir: Path, fast_ingress: bool) -> dict[str, str]:
    """Quiet Ray, free ports for the autoscaler's and the dashboard's exporters (fixed 44217/44227 otherwise); with the
    fast ingress, its switches and HAProxy's own files, free ports and timeouts (every node needs them).
    HAProxy adds a 56-character node id to the folder of its sockets, hence the short names."""
    env = {**os.environ, **QUIET, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": str(DRAIN_TIMEOUT_S),
           "AUTOSCALER_METRIC_PORT": str(free_port()), "DASHBOARD_METRIC_PORT": str(free_port())}
    if fast_ingress:
        env.update({**FAST_INGRESS, **haproxy_environment(temp_dir / "hp"),
                    "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": str(REPLICA_DRAINING_S)})
    return env


def agent_port_options() -> list[str]:
    """Free ports for what would otherwise take fixed ones (52365, 10001...) and clash with another Ray here."""
    options = ["--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--metrics-export-port",
               "--runtime-env-agent-port"]
    return [value for option in options for value in (option, str(free_port()))]


def start_node(name: str, options: list[str], run_dir: Path, fast_ingress: bool) -> Node:
    temp_dir = Path(tempfile.mkdtemp(prefix=f"ray{name[0]}-", dir="/tmp"))  # short: HAProxy's sockets < 98 chars
    log = run_dir / f"{name}.log"
    command = [RAY, "start", *options, "--num-cpus", "1", "--temp-dir", str(temp_dir), "--object-store-memory",
               str(OBJECT_STORE_BYTES), "--disable-usage-stats", *agent_port_options(), "--block"]
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=node_environment(temp_dir, fast_ingress), stdout=output,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    logger.info("started the %s node: pid %d, temp dir %s", name, process.pid, temp_dir)
    return Node(name, process.pid, str(temp_dir), str(log))


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for_log_line(node: Node, text: str, timeout: float = 120) -> None:
    """`ray start` prints 'Ray runtime started.' once its node is up; it exits (non-zero) when it failed."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in Path(node.log).read_text(errors="replace"):
            return
        if not alive(node.pid):
            raise RuntimeError(f"the {node.name} node stopped while starting; see {node.log}")
        time.sleep(0.5)
    raise TimeoutError(f"the {node.name} node did not start within {timeout:.0f} s; see {node.log}")


# ---- processes of the cluster ---------------------------------------------------------------------------------------
def cluster_processes(state: ClusterState) -> list[psutil.Process]:
    """Every live process of the two sessions, and any process whose command line names one of their temp dirs."""
    sessions = {node.pid for node in state.nodes}
    temp_dirs = [node.temp_dir for node in state.nodes]
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            in_session = os.getsid(process.pid) in sessions
            names_dir = any(d in arg for arg in process.info["cmdline"] or [] for d in temp_dirs)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
        if in_session or names_dir:
            found.append(process)
    return found


def end_nodes(nodes: list[Node], timeout: float = 60) -> None:
    """SIGTERM to each `ray start --block`: it drains its node (DRAIN_TIMEOUT_S at most), stops the node's processes,
    and its reaper kills the rest of its group; SIGKILL to the group of one that ignores it."""
    started = time.time()
    processes = []
    for node in nodes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(node.pid)
            process.send_signal(signal.SIGTERM)
            processes.append(process)
    _, still_alive = psutil.wait_procs(processes, timeout=timeout)
    for process in still_alive:
        logger.warning("`ray start` (pid %d) ignored SIGTERM for %.0f s: killing its group", process.pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    logger.info("stopped %d node(s) in %.1f s", len(processes), time.time() - started)


def stop_cluster(state: ClusterState, timeout: float = 30) -> None:
    """The application first (replicas end cleanly), then both nodes; then SIGKILL whatever of those sessions
    outlived them; the temp dirs are removed."""
    shutdown_application(state)
    end_nodes(state.nodes)
    deadline = time.time() + timeout
    while (left := cluster_processes(state)) and time.time() < deadline:
        time.sleep(0.5)
    for process in left:
        logger.warning("killing left-over process %d (%s)", process.pid, " ".join(process.info["cmdline"] or [])[:80])
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(left, timeout=10)
    for node in state.nodes:
        shutil.rmtree(node.temp_dir, ignore_errors=True)


# ---- the application, from a short-lived driver -------------------------------------------------------------------
class Driver:
    """`ray.init(address=...)` for the time of a `with`: the Serve controller is detached, the app outlives it."""

    def __init__(self, state: ClusterState, runtime_env: dict[str, Any] | None = None):
        self.state, self.runtime_env = state, runtime_env

    def __enter__(self) -> Driver:
        import ray

        ray.init(address=self.state.gcs_address, logging_level=logging.WARNING, runtime_env=self.runtime_env,
                 log_to_driver=False)
        return self

    def __exit__(self, *_: object) -> None:
        import ray

        ray.shutdown()


def deployment_runtime_env(state: ClusterState) -> dict[str, Any]:
    """As serve/run.py: the quiet and ingress switches for the job's actors."""
    return runtime_env({**QUIET, **(FAST_INGRESS if state.fast_ingress else {})})


def shutdown_application(state: ClusterState) -> None:
    """`serve.shutdown()` while both nodes are up; best effort: `down` must work on a half-started cluster too."""
    if len(state.nodes) < 2 or not all(alive(node.pid) for node in state.nodes):
        return
    started = time.time()
    try:
        with Driver(state):
            from ray import serve

            serve.shutdown()
        logger.info("Serve shut down in %.1f s", time.time() - started)
    except Exception:
        logger.exception("could not shut Serve down; stopping the nodes anyway")


def whereabouts(replica: Any) -> tuple[str, int]:
    """Runs inside a replica actor (`__ray_call__`): its node id and process id."""
    import ray

    return ray.get_runtime_context().get_node_id(), os.getpid()


def alive_nodes() -> list[dict[str, Any]]:
    import ray

    return [{"node_id": n["NodeID"], "address": n["NodeManagerAddress"], "cpus": n["Resources"].get("CPU", 0),
             "head": "node:__internal_head__" in n["Resources"]} for n in ray.nodes() if n["Alive"]]


def replica_placement() -> list[dict[str, Any]]:
    """Each live replica of the application, asked where it runs."""
    import ray

    heads = {node["node_id"] for node in alive_nodes() if node["head"]}
    placement = []
    for actor in ray.util.list_named_actors(all_namespaces=True):
        if actor["namespace"] != "serve" or not actor["name"].startswith(REPLICA_PREFIX):
            continue
        handle = ray.get_actor(actor["name"], namespace="serve")
        node_id, pid = ray.get(handle.__ray_call__.remote(whereabouts), timeout=60)
        placement.append({"replica": actor["name"].removeprefix(REPLICA_PREFIX), "node_id": node_id, "pid": pid,
                          "head": node_id in heads})
    return sorted(placement, key=lambda r: (not r["head"], r["replica"]))


# ---- measurement --------------------------------------------------------------------------------------------------
def request_bodies(project_root: Path, params: str = "params.yaml", count: int = 200) -> list[bytes]:
    """Real applicants of the project's prepared test table, as JSON request bodies."""
    import pandas as pd

    paths = load_settings(project_root / params).under(project_root).paths
    frame = pd.read_parquet(paths.prepared_table(request_schema.APPLICANT_TABLE)).head(count)
    return [json.dumps(body).encode() for body in request_schema.records(frame)]


def post_many(url: str, bodies: list[bytes], count: int, offset: int = 0) -> list[float]:
    """`count` sequential POST /score on one keep-alive connection; each latency in ms."""
    import httpx

    latencies = []
    with httpx.Client(base_url=url, timeout=30, headers={"content-type": "application/json"}) as client:
        for i in range(offset, offset + count):
            start = time.perf_counter()
            client.post("/score", content=bodies[i % len(bodies)]).raise_for_status()
            latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def measure(url: str, bodies: list[bytes], requests: int, clients: int) -> dict[str, float]:
    """p50/p95 of `requests` sequential requests, then requests/s of `clients` concurrent clients (same total)."""
    post_many(url, bodies, 20)  # warm-up
    sequential = post_many(url, bodies, requests)
    per_client = max(1, requests // clients)
    errors: list[BaseException] = []

    def client_run(k: int) -> None:
        try:
            post_many(url, bodies, per_client, k * per_client)
        except Exception as error:  # reported after the run
            errors.append(error)

    threads = [threading.Thread(target=client_run, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} of {clients} clients failed; first: {errors[0]!r}")
    quantiles = statistics.quantiles(sequential, n=20)
    return {"sequential_requests": requests, "p50_ms": round(statistics.median(sequential), 2),
            "p95_ms": round(quantiles[18], 2), "sequential_rps": round(requests / (sum(sequential) / 1000), 1),
            "clients": clients, "concurrent_requests": per_client * clients,
            "concurrent_rps": round(per_client * clients / elapsed, 1)}


# ---- commands -----------------------------------------------------------------------------------------------------
def up(run_dir: Path, config: dict[str, Any], overrides: dict[str, Any], replicas: int, port: int | None,
       fast_ingress: bool, requests: int, clients: int) -> dict[str, Any]:
    """Start both nodes, deploy, report placement and measurement; on any failure bring everything down."""
    previous = ClusterState.load(run_dir)
    if previous is not None and cluster_processes(previous):
        raise SystemExit(f"a cluster of {run_dir} is still running: `python -m serve.cluster down` first")
    state = ClusterState("", port or free_port(), fast_ingress)
    args = application_args(config, overrides)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "report.json").unlink(missing_ok=True)
    try:
        start_nodes(state, run_dir)
        with Driver(state, deployment_runtime_env(state)):
            deploy(config, args, {"num_replicas": replicas, "max_replicas_per_node": 1}, port=state.http_port)
            report = {"nodes": alive_nodes(), "replicas": replica_placement()}
        wait_until_answering(f"{state.url}/health", 120)
        report.update(url=state.url, gcs_address=state.gcs_address,
                      ingress="haproxy" if fast_ingress else "ray proxy")
        if requests:
            bodies = request_bodies(Path(args["project_root"]), args.get("params", "params.yaml"))
            report["measurement"] = measure(state.url, bodies, requests, clients)
    except BaseException:
        logger.error("bringing the cluster down after a failure; node logs: %s", [n.log for n in state.nodes])
        down(run_dir, state)
        raise
    (run_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def start_nodes(state: ClusterState, run_dir: Path) -> None:
    """Head first (GCS on a free port), then the worker joining it; the state is saved as soon as a node exists."""
    gcs_port = free_port()
    state.gcs_address = f"127.0.0.1:{gcs_port}"
    head = start_node("head", ["--head", "--node-ip-address", "127.0.0.1", "--port", str(gcs_port),
                               "--include-dashboard", "false", "--ray-client-server-port", str(free_port())],
                      run_dir, state.fast_ingress)
    state.nodes.append(head)
    state.save(run_dir)
    wait_for_log_line(head, "Ray runtime started.")
    worker = start_node("worker", ["--address", state.gcs_address, "--node-ip-address", "127.0.0.1"], run_dir,
                        state.fast_ingress)
    state.nodes.append(worker)
    state.save(run_dir)
    wait_for_log_line(worker, "Ray runtime started.")


def down(run_dir: Path, state: ClusterState | None = None) -> None:
    state = state or ClusterState.load(run_dir)
    if state is None:
        logger.info("no cluster state in %s: nothing to stop", run_dir)
        return
    stop_cluster(state)
    (run_dir / "state.json").unlink(missing_ok=True)
    logger.info("cluster stopped: %d node(s), no process of theirs left", len(state.nodes))


def status(run_dir: Path) -> dict[str, Any]:
    state = ClusterState.load(run_dir)
    if state is None or not all(alive(node.pid) for node in state.nodes):
        left = len(cluster_processes(state)) if state else 0
        return {"running": False, **({"processes_left": left} if left else {})}
    with Driver(state):
        from ray import serve

        applications = {name: app.status for name, app in serve.status().applications.items()}
        return {"running": True, "url": state.url, "gcs_address": state.gcs_address, "nodes": alive_nodes(),
                "replicas": replica_placement(), "applications": applications,
                "node_processes": {node.name: node.pid for node in state.nodes}}


def log_report(report: dict[str, Any]) -> None:
    for node in report.get("nodes", []):
        logger.info("node %s (%s, %s CPU)%s", node["node_id"], node["address"], node["cpus"],
                    " head" if node["head"] else "")
    for replica in report.get("replicas", []):
        logger.info("replica %s: pid %d on node %s (%s)", replica["replica"], replica["pid"], replica["node_id"],
                    "head" if replica["head"] else "worker")
    if "measurement" in report:
        logger.info("measured: %s", report["measurement"])


def configured_replicas(config: dict[str, Any]) -> int:
    """serve/config.yaml's num_replicas; two nodes hold at most two (one per node)."""
    replicas = int(application_settings(config)[2].get("num_replicas", 1))
    if replicas > 2:
        raise SystemExit(f"serve/config.yaml asks for {replicas} replicas; two nodes hold two (--replicas 1 or 2)")
    return replicas


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("up", "down", "status"))
    add_application_options(parser)
    parser.add_argument("--port", type=int, help="HTTP port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--replicas", type=int, choices=(1, 2), help="at most one per node (default: the config's)")
    parser.add_argument("--requests", type=int, default=500, help="requests of the measurement (0: none)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients of the measurement")
    parser.add_argument("--run-dir", type=Path, default=RUN_DIR, help="where the state and node logs are")
    parser.add_argument("--json", action="store_true", help="status: print JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    configure_logging()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    ns = parse_args(argv)
    # Both nodes, the driver and `down` share one token (0600, in the run folder): nothing else gets in.
    os.environ.update(token_environment(ns.run_dir / "ray_auth_token"))
    if ns.action == "down":
        down(ns.run_dir)
    elif ns.action == "status":
        report = status(ns.run_dir)
        if ns.json:
            print(json.dumps(report, indent=2))
        else:
            log_report(report)
            logger.info("running: %s %s", report["running"], report.get("applications", ""))
    else:
        config = load_config(ns.config)
        report = up(ns.run_dir, config, application_overrides(ns), ns.replicas or configured_replicas(config), ns.port,
                    not ns.default_proxy, ns.requests, ns.clients)
        log_report(report)
        logger.info("scoring service on 2 nodes: %s/score; stop with `python -m serve.cluster down`", report["url"])


if __name__ == "__main__":
    main()
