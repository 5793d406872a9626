"""The scoring service on a real two-node Ray cluster on this machine (`python -m serve.cluster`): a head and a worker
started by `ray start`, one replica on each, answers equal to in-process scoring, requests served by both replicas,
and nothing of the cluster left once it is down, whatever happened before."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import psutil
import pytest

from scoring.monitoring.production_log import read_log_lines
from scoring.serving import request_schema
from serve.api import build_api
from serve.cluster import ClusterState, cluster_processes

from ..conftest import REPO, SETTINGS
from .test_ray_auth import (
    assert_jobs_need_the_token,
    assert_only_named_ports_off_loopback,
    assert_open_ports_need_the_token,
    listeners,
)
from .test_replica_loss import LOG_NAME

pytestmark = pytest.mark.integration


def cluster_command(action: str, run_dir: Path, *options: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.run([sys.executable, "-m", "serve.cluster", action, "--run-dir", str(run_dir), *options],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def kill_left_overs(state: ClusterState | None) -> None:
    """The safety net behind `down`: nothing of the two nodes' sessions may outlive the tests."""
    if state is None:
        return
    left = cluster_processes(state)
    for process in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(left, timeout=30)


@dataclass(frozen=True)
class Cluster:
    run_dir: Path
    state: ClusterState
    report: dict[str, Any]
    log_dir: Path


@pytest.fixture(scope="module")
def cluster(tiny_project: Path, tmp_path_factory: pytest.TempPathFactory):
    """`up` on free ports, serving the small pipeline's model with a production log. Brought down at the end even
    when `up` or a test failed."""
    run_dir = tmp_path_factory.mktemp("cluster")
    log_dir = tmp_path_factory.mktemp("production-multinode")
    state = None
    try:
        up = cluster_command("up", run_dir, "--pipeline-model", "--project-root", str(tiny_project),
                             "--production-log", str(log_dir), "--requests", "200", "--clients", "4")
        state = ClusterState.load(run_dir)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-5000:]
        yield Cluster(run_dir, state, json.loads((run_dir / "report.json").read_text()), log_dir)
    finally:
        state = ClusterState.load(run_dir) or state
        try:
            cluster_command("down", run_dir, timeout=180)
        finally:
            kill_left_overs(state)


@pytest.fixture(scope="module")
def applicants(tiny_project: Path) -> pd.DataFrame:
    return pd.read_parquet(tiny_project / SETTINGS.paths.prepared_table("application_test")).head(40)


def cluster_status(run_dir: Path) -> dict[str, Any]:
    done = cluster_command("status", run_dir, "--json", timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_both_nodes_refuse_a_job_without_the_clusters_token(cluster):
    token = cluster.run_dir / "ray_auth_token"
    assert token.stat().st_mode & 0o777 == 0o600
    processes = cluster_processes(cluster.state)
    for node in cluster.state.nodes:  # each node has its own dashboard agent
        assert_jobs_need_the_token([p for p in processes if os.getsid(p.pid) == node.pid], token)


CLUSTER_ONLY_ON_MACHINE_ADDRESS = {"ray::RuntimeEnvAgent"}
"""Named in README ("Security"): each node's runtime-env agent listens on the node's address only (Ray 2.60 binds it
there, and a node of a cluster has the machine's address), so 127.0.0.1 cannot reach it; it requires the token."""
CLUSTER_EXPORTERS = frozenset({"python3.11", "python", "ray::DashboardAgent"})
"""Processes whose Prometheus exporters answer on 0.0.0.0 without the token on a cluster node (the autoscaler's and
the dashboard's on the head, each node's agent): Ray 2.60 puts them on loopback only for a loopback node."""


def test_every_listener_of_the_cluster_requires_the_token_or_is_named(cluster):
    found = listeners(cluster_processes(cluster.state))
    assert {"gcs_server", "raylet", "ray::RuntimeEnvAgent"} <= {s.process for s in found}
    assert_only_named_ports_off_loopback(found, CLUSTER_ONLY_ON_MACHINE_ADDRESS)
    assert_open_ports_need_the_token(found, (cluster.run_dir / "ray_auth_token").read_text().strip(), CLUSTER_EXPORTERS)


def test_two_nodes_with_one_replica_each(cluster):
    status = cluster_status(cluster.run_dir)
    assert status["running"] and status["applications"] == {"credit-scoring": "RUNNING"}
    nodes = {node["node_id"]: node for node in status["nodes"]}
    assert len(nodes) == 2 and sorted(node["head"] for node in nodes.values()) == [False, True]
    replicas = status["replicas"]
    assert len(replicas) == 2 and {r["node_id"] for r in replicas} == set(nodes)
    # Each replica is a process of its own node's `ray start` session: the head's replica under the head's raylet,
    # the other under the worker's.
    sessions = {node.name: node.pid for node in cluster.state.nodes}
    for replica in replicas:
        assert os.getsid(replica["pid"]) == sessions["head" if replica["head"] else "worker"]
    assert {r["node_id"] for r in cluster.report["replicas"]} == set(nodes)


def test_answers_equal_in_process_scoring(cluster, tiny_project, applicants):
    in_process = build_api(tiny_project, registry=False, production_log=False)
    with httpx.Client(base_url=cluster.state.url, timeout=30) as client:
        for body in request_schema.records(applicants.head(5)):
            served = client.post("/score", json=body)
            assert served.status_code == 200, served.text
            local = json.loads(in_process.handle("POST", "/score", json.dumps(body).encode()).body)
            assert served.json() == local
            assert 0 <= served.json()["probability"] < 1  # isotonic calibration of the tiny model reaches 0


def logged_requests(log_dir: Path) -> Counter:
    """Lines of each replica's production log, by process id (its files are `requests-[<start>-]<pid>[-<n>].jsonl`,
    plain or gzip)."""
    counts: Counter = Counter()
    for path in log_dir.glob("requests-*"):
        if match := LOG_NAME.match(path.name):
            counts[int(match["pid"])] += len(read_log_lines(path)[0])
    return counts


def test_requests_are_served_by_both_replicas(cluster, applicants):
    bodies = request_schema.records(applicants)
    before = logged_requests(cluster.log_dir)

    def score(body: dict[str, Any]) -> int:
        with httpx.Client(base_url=cluster.state.url, timeout=30) as client:
            return client.post("/score", json=body).status_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(score, bodies)) == [200] * len(bodies)
    served = logged_requests(cluster.log_dir) - before
    replica_pids = {replica["pid"] for replica in cluster.report["replicas"]}
    assert set(served) == replica_pids, f"requests by replica process: {served}"
    assert sum(served.values()) == len(bodies) and min(served.values()) > 0


def test_up_measured_the_service(cluster):
    measured = cluster.report["measurement"]
    assert measured["sequential_requests"] == 200 and measured["p50_ms"] > 0 and measured["concurrent_rps"] > 0
    assert cluster.report["ingress"] == "haproxy"


def test_down_leaves_no_process_of_the_cluster(cluster):
    done = cluster_command("down", cluster.run_dir, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert cluster_processes(cluster.state) == []
    assert not any(Path(node.temp_dir).exists() for node in cluster.state.nodes)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{cluster.state.url}/health", timeout=2)
    assert cluster_status(cluster.run_dir) == {"running": False}
