"""Nobody gets into the service's Ray cluster without its token: Ray's token authentication stays on, and everything
else the service listens on is on loopback.

Through 127.0.0.1 only (tests send nothing to any other address): the dashboard agent's job route, which would run a
shell command as the service's user, refuses a job without the token (401) and, with it, gets as far as reading the
request (400 for a body that is not a job), so the 401 is the authentication's doing. Every listening socket of the
service's processes (serve.run's process tree) is listed: each one is on loopback or, on all interfaces, a gRPC
server of Ray that answers UNAUTHENTICATED to a call without the token (and not with it); none is bound to the
machine's own address only (README, "Security"); the Prometheus exporters, which answer without a token, are on
loopback; HAProxy's admin socket is its owner's only and its stats page is gone."""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from scoring.ray_runtime import authorization_header

pytestmark = pytest.mark.integration
JOB_ROUTE = "/api/job_agent/jobs/"
GRPC_PROBES = (
    "/ray.rpc.NodeInfoGcsService/GetAllNodeInfo",   # GCS
    "/ray.rpc.NodeManagerService/GetNodeStats",     # raylet, node manager
    "/ray.rpc.ObjectManagerService/Pull",           # raylet, object manager
    "/ray.rpc.CoreWorkerService/NumPendingTasks",   # every worker: driver, actors, replicas
    "/ray.rpc.ReporterService/GetTraceback",        # dashboard agent
    "/ray.serve.ASGIService/HandleRequest",         # a Serve replica's inter-deployment server
    "/ray.rpc.RayletDriver/ClusterInfo",            # the Ray Client server (the two-node cluster's head)
)
"""One known method per kind of Ray gRPC server: an unknown one is UNIMPLEMENTED before any authentication."""
ONLY_ON_MACHINE_ADDRESS: set[str] = set()
"""Processes of serve.run allowed to listen on the machine's own address only (not reachable through 127.0.0.1):
none, since serve.run runs Ray as a single node on 127.0.0.1 (README, "Security")."""


@dataclass(frozen=True)
class Listener:
    ip: str
    port: int
    process: str

    @property
    def loopback(self) -> bool:
        address = ipaddress.ip_address(self.ip)
        mapped = getattr(address, "ipv4_mapped", None)
        return (mapped or address).is_loopback

    @property
    def everywhere(self) -> bool:
        return self.ip in ("0.0.0.0", "::")


def service_processes(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def command_line(process: psutil.Process) -> str:
    """The process's command line ("" once it has gone)."""
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def process_name(process: psutil.Process) -> str:
    """As Ray titles its workers (`ray::ServeReplica:app:Deployment`), else the executable's name."""
    title = command_line(process)
    if title.startswith("ray::"):
        return title.split()[0]
    try:
        return process.name()
    except psutil.Error:
        return ""


def replica_processes(pid: int) -> list[psutil.Process]:
    """The service's Serve replicas (`ray::ServeReplica:...`)."""
    return [p for p in service_processes(pid) if command_line(p).startswith("ray::ServeReplica")]


def listeners(processes: list[psutil.Process]) -> list[Listener]:
    """Every listening TCP socket of these processes."""
    names = {p.pid: process_name(p) for p in processes}
    return sorted({Listener(c.laddr.ip, c.laddr.port, names[c.pid]) for c in psutil.net_connections("inet")
                   if c.status == psutil.CONN_LISTEN and c.pid in names}, key=lambda s: (s.process, s.port))


def loopback_listeners(processes: list[psutil.Process], name: str) -> list[int]:
    """The ports on which the process named `name` (as Ray titles its workers) listens on 127.0.0.1."""
    return sorted(s.port for s in listeners(processes) if name in s.process and s.ip == "127.0.0.1")


def grpc_status(port: int, method: str, token: str | None = None) -> str:
    """The gRPC status of a call with an empty message to 127.0.0.1:port, with or without Ray's token."""
    import grpc

    metadata = [("authorization", f"Bearer {token}")] if token else None
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            channel.unary_unary(method)(b"", timeout=5, metadata=metadata)
        except grpc.RpcError as error:
            return error.code().name
    return "OK"


def unauthenticated_calls(port: int, token: str) -> dict[str, tuple[str, str]]:
    """Each probe method's status through 127.0.0.1, without and with the token."""
    return {method: (grpc_status(port, method), grpc_status(port, method, token)) for method in GRPC_PROBES}


def answers_metrics(port: int) -> bool:
    """GET /metrics answers 200 without any token (a Prometheus exporter)."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def assert_jobs_need_the_token(processes: list[psutil.Process], token_path: Path) -> None:
    ports = loopback_listeners(processes, "DashboardAgent")
    assert ports, "the Ray cluster has no dashboard agent listening on 127.0.0.1"
    answers = {}
    for port in ports:  # the agent's HTTP port among its listeners (gRPC, metrics exporter): the one with job routes
        try:
            answers[port] = httpx.post(f"http://127.0.0.1:{port}{JOB_ROUTE}", timeout=5,
                                       json={"entrypoint": "touch /tmp/ray-auth-test-should-never-exist"})
        except httpx.HTTPError:
            continue
    http_ports = [port for port, answer in answers.items() if answer.status_code not in (404, 405)]
    assert http_ports, f"no job route among the agent's ports {ports}"
    for port in http_ports:
        assert answers[port].status_code == 401, answers[port].text
        authorised = httpx.post(f"http://127.0.0.1:{port}{JOB_ROUTE}", json={"not_a_job": 1}, timeout=5,
                                headers=authorization_header({"RAY_AUTH_TOKEN_PATH": str(token_path)}))
        assert authorised.status_code == 400, authorised.text


def assert_open_ports_need_the_token(found: list[Listener], token: str, exporters: frozenset[str] = frozenset()
                                     ) -> None:
    """Each listener on all interfaces is a Ray gRPC server that refuses a call without the token, not with it, or a
    Prometheus exporter of one of the `exporters` processes (allowed there because Ray gives no way to move it)."""
    for listener in (s for s in found if s.everywhere):
        if listener.process in exporters and answers_metrics(listener.port):
            continue
        calls = unauthenticated_calls(listener.port, token)
        refused = [method for method, (without, _) in calls.items() if without == "UNAUTHENTICATED"]
        assert refused, f"{listener}: no probe was refused for want of the token: {calls}"
        assert all(without != "OK" for without, _ in calls.values()), f"{listener} answered without the token"
        assert all(calls[method][1] != "UNAUTHENTICATED" for method in refused), f"{listener}: {calls}"


def unreachable_through_loopback(found: list[Listener]) -> list[Listener]:
    """Listeners on one other address only: neither loopback, nor all interfaces, nor the same port of the same
    process bound on loopback as well."""
    reachable = {(s.process, s.port) for s in found if s.loopback or s.everywhere}
    return [s for s in found if not s.loopback and not s.everywhere and (s.process, s.port) not in reachable]


def assert_only_named_ports_off_loopback(found: list[Listener], named: set[str]) -> None:
    """The processes of the listeners that 127.0.0.1 cannot reach: exactly the named ones."""
    elsewhere = unreachable_through_loopback(found)
    assert {s.process for s in elsewhere} == named, f"listening on another address only: {elsewhere}"


@pytest.fixture(scope="module")
def service_listeners(live_service) -> list[Listener]:
    return listeners(service_processes(live_service.pid))


def test_the_job_agent_refuses_a_job_without_the_token(live_service):
    assert_jobs_need_the_token(service_processes(live_service.pid), live_service.token_path)


def test_the_token_file_is_private_to_its_owner(live_service):
    assert live_service.token_path.stat().st_mode & 0o777 == 0o600
    assert len(live_service.token_path.read_text().strip()) == 64


def test_every_listener_is_on_loopback_or_requires_the_token(live_service, service_listeners):
    processes = {s.process for s in service_listeners}
    assert {"gcs_server", "raylet", "haproxy", "ray::DashboardAgent"} <= processes, processes
    assert any(s.process.startswith("ray::ServeReplica") for s in service_listeners)
    assert_only_named_ports_off_loopback(service_listeners, ONLY_ON_MACHINE_ADDRESS)
    assert_open_ports_need_the_token(service_listeners, live_service.token_path.read_text().strip())
    # Ray's own control plane is on loopback (single-node Ray, serve/run.py): only the replicas' inter-deployment
    # gRPC servers, hard-coded on [::] in Ray 2.60, listen on every interface.
    assert {s.process for s in service_listeners if s.everywhere} <= {
        s.process for s in service_listeners if s.process.startswith("ray::ServeReplica")}


def test_ray_grpc_on_loopback_refuses_calls_without_the_token(live_service, service_listeners):
    """Loopback is not a reason to let anyone in: the GCS and the raylet refuse a local caller without the token."""
    token = live_service.token_path.read_text().strip()
    for name, method in (("gcs_server", GRPC_PROBES[0]), ("raylet", GRPC_PROBES[1])):
        statuses = {grpc_status(s.port, method) for s in service_listeners if s.process == name}
        assert "UNAUTHENTICATED" in statuses and "OK" not in statuses, (name, statuses)
        assert any(grpc_status(s.port, method, token) == "OK" for s in service_listeners if s.process == name)


def test_metrics_exporters_answer_on_loopback_only(service_listeners):
    exporters = [s for s in service_listeners if answers_metrics(s.port)]
    names = {s.process for s in exporters}
    assert {"haproxy", "ray::DashboardAgent"} <= names and len(exporters) >= 4, exporters
    assert all(s.loopback for s in exporters), exporters


def haproxy_files(processes: list[psutil.Process]) -> tuple[Path, str]:
    """HAProxy's rendered config (the `-f` of its command line) and its text."""
    command = next(p.cmdline() for p in processes if p.name() == "haproxy")
    config = Path(command[command.index("-f") + 1])
    return config, config.read_text()


def test_haproxy_admin_socket_is_private_and_stats_are_off(live_service, service_listeners):
    config, text = haproxy_files(service_processes(live_service.pid))
    socket_line = next(line.split() for line in text.splitlines() if line.strip().startswith("stats socket"))
    admin = Path(socket_line[2])
    assert socket_line[3:5] == ["mode", "600"] and admin.stat().st_mode & 0o777 == 0o600
    assert config.parent.parent.stat().st_mode & 0o777 == 0o700  # the folder of HAProxy's sockets
    assert "listen stats" not in text and "stats enable" not in text
    with socket.socket(socket.AF_UNIX) as client:  # the owner (this user) still reaches it
        client.connect(str(admin))
        client.sendall(b"show info\n")
        assert b"Name: HAProxy" in client.recv(4096)
