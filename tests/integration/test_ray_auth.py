"""Nobody gets into the service's Ray cluster without its token: Ray's token authentication stays on.

Through 127.0.0.1 only (tests send nothing to any other address), the dashboard agent's job route, which would run a
shell command as the service's user, refuses a job without the token (401) and, with it, gets as far as reading the
request (400 for a body that is not a job), so the 401 is the authentication's doing."""
from __future__ import annotations

from pathlib import Path

import httpx
import psutil
import pytest

from serve.ray_auth import authorization_header

pytestmark = pytest.mark.integration
JOB_ROUTE = "/api/job_agent/jobs/"


def service_processes(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def loopback_listeners(processes: list[psutil.Process], name: str) -> list[int]:
    """The ports on which the process named `name` (as Ray titles its workers) listens on 127.0.0.1."""
    wanted = {p.pid for p in processes if name in " ".join(p.cmdline())}
    return sorted(c.laddr.port for c in psutil.net_connections("inet")
                  if c.status == psutil.CONN_LISTEN and c.pid in wanted and c.laddr.ip == "127.0.0.1")


def assert_jobs_need_the_token(processes: list[psutil.Process], token_path: Path) -> None:
    ports = loopback_listeners(processes, "DashboardAgent")
    assert ports, "the Ray cluster has no dashboard agent listening on 127.0.0.1"
    answers = {}
    for port in ports:  # the agent's HTTP port among its listeners: the one that answers HTTP
        try:
            answers[port] = httpx.post(f"http://127.0.0.1:{port}{JOB_ROUTE}", timeout=5,
                                       json={"entrypoint": "touch /tmp/ray-auth-test-should-never-exist"})
        except httpx.HTTPError:
            continue
    http_ports = [port for port, answer in answers.items() if answer.status_code != 404]
    assert http_ports, f"no job route among the agent's ports {ports}"
    for port in http_ports:
        assert answers[port].status_code == 401, answers[port].text
        authorised = httpx.post(f"http://127.0.0.1:{port}{JOB_ROUTE}", json={"not_a_job": 1}, timeout=5,
                                headers=authorization_header({"RAY_AUTH_TOKEN_PATH": str(token_path)}))
        assert authorised.status_code == 400, authorised.text


def test_the_job_agent_refuses_a_job_without_the_token(live_service):
    assert_jobs_need_the_token(service_processes(live_service.pid), live_service.token_path)


def test_the_token_file_is_private_to_its_owner(live_service):
    assert live_service.token_path.stat().st_mode & 0o777 == 0o600
    assert len(live_service.token_path.read_text().strip()) == 64
