"""Keep Ray Serve's HAProxy ingress on loopback and out of other instances' way.

Ray 2.60 renders HAProxy's Prometheus and stats listeners as `bind :9101` and `bind *:8404`: every interface, fixed
ports (a second instance on the machine fails to start). Its fallback Python proxy listens on 8500 (HTTP) and
9500 (gRPC) with SO_REUSEPORT, so two instances on one machine can silently take each other's requests (seen here:
a service logged 86 of the 240 requests it answered while a second instance ran). `haproxy_environment` gives
each run free ports and its own files; `bind_haproxy_to_loopback` (a Ray worker setup hook, so it runs in the
process that renders the config) binds those listeners to 127.0.0.1. The HTTP listener itself follows
`http_options.host` (127.0.0.1 by default).

`free_port` chooses ports outside the kernel's ephemeral range: a port from `bind(0)` comes from the pool that Ray's
workers draw their gRPC servers and outgoing connections from, so one of them can take it before the server it was
chosen for binds it (seen in CI: a core worker listened on the fallback proxy's port 36519, and the service died
with "Failed to bind to address '127.0.0.1:36519'").

`wait_until_answering` is the one wait for a local server (the service, the app, a cluster, a benchmark target):
it polls a health URL and, if the server dies or never answers, says so with the end of the server's log.
"""
from __future__ import annotations

import http.client
import random
import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# Between Ray's fixed ports (6379, 8265, 10001, workers 10002-19999 where set) and the ports Ray Serve's replicas
# take for direct ingress (HTTP 30000-31000, gRPC 40000-41000), and below the ephemeral range.
CHOSEN_PORTS = range(20000, 30000)
_handed_out: set[int] = set()
_random = random.Random()


def ephemeral_ports(settings: Path = EPHEMERAL_RANGE_FILE) -> range:
    """The ports the kernel hands out for `bind(0)` and outgoing connections (Linux's default where unreadable)."""
    try:
        low, high = (int(value) for value in settings.read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(attempts: int = 500) -> int:
    """A port free on 127.0.0.1 now that the kernel never hands out by itself and this process has not handed out
    before, so only another explicit choice can take it before its server binds it."""
    ephemeral = ephemeral_ports()
    candidates = [port for port in CHOSEN_PORTS if port not in ephemeral and port not in _handed_out]
    for port in _random.sample(candidates, min(attempts, len(candidates))):
        if is_free(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free 127.0.0.1 port among {attempts} tried outside the ephemeral range "
                       f"{ephemeral.start}-{ephemeral.stop - 1}")


def haproxy_environment(run_dir: Path) -> dict[str, str]:
    run_dir.mkdir(parents=True, exist_ok=True)
    return {
        "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(run_dir / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(run_dir / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(run_dir),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(run_dir / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(run_dir / "metrics.sock"),
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(free_port()),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(free_port()),
    }


def bind_haproxy_to_loopback() -> None:
    """Worker setup hook: rewrite the two all-interface binds of the HAProxy config template."""
    try:
        from ray.serve._private import haproxy
    except ImportError:
        return
    haproxy.HAPROXY_CONFIG_TEMPLATE = (
        haproxy.HAPROXY_CONFIG_TEMPLATE
        .replace("bind :{{ config.metrics_port }}", "bind 127.0.0.1:{{ config.metrics_port }}")
        .replace("bind *:{{ config.stats_port }}", "bind 127.0.0.1:{{ config.stats_port }}")
    )


def answers(url: str, timeout: float = 2) -> bool:
    """GET `url` answers 200 (plain http.client: no proxy from the environment comes between)."""
    parts = urlsplit(url)
    try:
        connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
        connection.request("GET", parts.path or "/")
        return connection.getresponse().status == 200
    except OSError:
        return False


def log_tail(log: Path | None, lines: int = 60) -> str:
    """The last lines of a server's log, for an error message: a server that dies must say why."""
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last {len(text)} lines of {log} ---\n" + "\n".join(text)


def wait_until_answering(url: str, timeout: float, running: Callable[[], bool] | None = None,
                         log: Path | None = None) -> None:
    """Until GET `url` answers 200: RuntimeError as soon as `running()` is false (the server died), TimeoutError
    after `timeout` seconds; both end with the tail of `log`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if answers(url):
            return
        if running is not None and not running():
            raise RuntimeError(f"the server stopped before answering {url}{log_tail(log)}")
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s{log_tail(log)}")
