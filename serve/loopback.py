"""Keep Ray Serve's HAProxy ingress on loopback, out of other instances' way, and hardened.

Ray 2.60 renders HAProxy's Prometheus and stats listeners as `bind :9101` and `bind *:8404`: every interface, fixed
ports (a second instance on the machine fails to start). Its fallback Python proxy listens on 8500 (HTTP) and
9500 (gRPC) with SO_REUSEPORT, so two instances on one machine can silently take each other's requests (seen here:
a service logged 86 of the 240 requests it answered while a second instance ran). `haproxy_environment` gives
each run free ports, its own files in a folder only its owner can enter (0700), and the ingress timeouts;
`bind_haproxy_to_loopback` (a Ray worker setup hook, so it runs in the process that renders the config) rewrites
Ray's config template (`harden_template`): the Prometheus listener on 127.0.0.1, no stats listener at all, the admin
socket 0600 instead of 0666, `timeout http-request` (a client must send its headers within it), 502/503/504 answered
as 503 with `Retry-After` (a replica that died or timed out: try again), and no fallback to Ray's Python proxy when
no replica is up (it parked requests until a replica came back: 24.6 s measured; HAProxy now answers 503 at once).
The HTTP listener itself follows `http_options.host` (127.0.0.1 by default).

`wait_until_answering` is the one wait for a local server (the service, the app, a cluster, a benchmark target):
it polls a health URL and, if the server dies or never answers, says so with the end of the server's log.
"""
from __future__ import annotations

import http.client
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from scoring.ray_runtime import free_port

logger = logging.getLogger(__name__)

INGRESS_TIMEOUTS_S = {"http-request": 10, "client": 15, "server": 60, "connect": 1}
"""HAProxy's timeouts, in seconds. `http-request`: a client has that long to send its request headers (a half-sent
request is cut then, instead of holding a connection open for an hour: Ray's default is `timeout client 3600s` and
no `timeout http-request`); `client`: the longest a client may stay silent while sending its body or reading the
answer; `server`: the longest a request waits for its replica's answer (a batch of 100,000 applicants takes a few
seconds), then 503 with Retry-After; `connect`: a replica that does not accept a connection within it is tried again
on another (replicas are local, or in the same cluster)."""
RETRY_AFTER_S = 1
"""What a 503 of the ingress (no replica up, a replica died with the request, the request timed out) or of a
replica's full queue (serve/config.yaml `backpressure_config`) tells the client to wait before trying again."""
UNAVAILABLE_FILE = "503-retry.http"
UNAVAILABLE_BODY = (b'{"detail":[{"field":"service","rule":"no replica answered (restarting, overloaded or timed out); '
                    b'the request may not have been scored: retry after ' + str(RETRY_AFTER_S).encode() + b' s"}]}')


def timeout_environment() -> dict[str, str]:
    """The ingress timeouts Ray 2.60 reads from variables (every node; the KubeRay manifest sets them too)."""
    return {"RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S": str(INGRESS_TIMEOUTS_S["client"]),
            "RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S": str(INGRESS_TIMEOUTS_S["server"]),
            "RAY_SERVE_HAPROXY_TIMEOUT_CONNECT_S": str(INGRESS_TIMEOUTS_S["connect"])}


def haproxy_environment(run_dir: Path) -> dict[str, str]:
    """Free ports, HAProxy's files in `run_dir` (made 0700: its sockets are nobody else's) and the timeouts."""
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    run_dir.chmod(0o700)
    return {
        # The stats listener is removed from the template (harden_template); its port stays a free loopback one in
        # case a Ray upgrade changes the template and the removal no longer applies.
        "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(run_dir / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(run_dir / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(run_dir),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(run_dir / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(run_dir / "metrics.sock"),
        # The access log goes to a Unix socket nobody reads, as Ray's default UDP target 127.0.0.1:514 was
        # (nothing listens there either), without HAProxy holding a UDP socket bound to 0.0.0.0 for it.
        "RAY_SERVE_HAPROXY_LOG_TARGET": str(run_dir / "access.sock"),
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(free_port()),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(free_port()),
        **timeout_environment(),
    }


STATS_LISTENER = """listen stats
  bind *:{{ config.stats_port }}
  stats enable
  stats uri {{ config.stats_uri }}
  stats refresh 1s
"""
FALLBACK_SERVER = ("    server {{ backend.fallback_server.name }} {{ backend.fallback_server.host }}:"
                   "{{ backend.fallback_server.port }} check backup\n")
HTTP_REQUEST_TIMEOUT = ("{% if config.timeout_http_request_s is not none %}timeout http-request "
                        "{{ config.timeout_http_request_s }}s{% endif %}")


def template_rewrites(unavailable_file: str) -> list[tuple[str, str]]:
    """(what Ray 2.60's template says, what it becomes), each expected exactly where Ray puts it."""
    return [
        ("bind :{{ config.metrics_port }}", "bind 127.0.0.1:{{ config.metrics_port }}"),
        ("bind *:{{ config.stats_port }}", "bind 127.0.0.1:{{ config.stats_port }}"),
        (STATS_LISTENER.replace("*:", "127.0.0.1:"), ""),
        ("stats socket {{ config.socket_path }} mode 666 ", "stats socket {{ config.socket_path }} mode 600 "),
        (HTTP_REQUEST_TIMEOUT, f"timeout http-request {INGRESS_TIMEOUTS_S['http-request']}s"),
        *((f"errorfile {code} {{{{ config.error_file_path }}}}", f"errorfile {code} {unavailable_file}")
          for code in (502, 503, 504)),
        (FALLBACK_SERVER, "    # no fallback to Ray's Python proxy: with no replica up, HAProxy answers 503 at once\n"),
    ]


def harden_template(template: str, unavailable_file: str) -> str:
    """Ray's HAProxy config template with `template_rewrites` applied; one that no longer matches is logged (the
    tests read the rendered config and fail on it)."""
    for old, new in template_rewrites(unavailable_file):
        if old not in template:
            logger.warning("HAProxy template: %r not found; Ray's template changed, this rewrite is lost", old[:60])
        template = template.replace(old, new)
    return template


def write_unavailable_file(folder: Path) -> Path:
    """HAProxy's answer for 502/503/504: a 503 with Retry-After and a JSON body like the API's refusals."""
    path = folder / UNAVAILABLE_FILE
    head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: {RETRY_AFTER_S}"
            f"\r\nCache-Control: no-cache\r\nContent-Length: {len(UNAVAILABLE_BODY)}\r\n\r\n").encode()
    if not path.exists() or path.read_bytes() != head + UNAVAILABLE_BODY:
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".{UNAVAILABLE_FILE}.{os.getpid()}"
        staging.write_bytes(head + UNAVAILABLE_BODY)
        staging.replace(path)
    return path


def bind_haproxy_to_loopback() -> None:
    """Worker setup hook (every Ray worker of the job runs it; it matters in the HAProxyManager's): Ray's HAProxy
    config template rewritten by `harden_template`, the 503 answer written beside HAProxy's config."""
    try:
        from ray.serve._private import haproxy
        from ray.serve._private.constants import RAY_SERVE_HAPROXY_CONFIG_FILE_LOC
    except ImportError:
        return
    try:
        unavailable = write_unavailable_file(Path(RAY_SERVE_HAPROXY_CONFIG_FILE_LOC).parent)
    except OSError:
        logger.exception("could not write HAProxy's 503 answer: keeping Ray's error pages")
        unavailable = Path("{{ config.error_file_path }}")
    haproxy.HAPROXY_CONFIG_TEMPLATE = harden_template(haproxy.HAPROXY_CONFIG_TEMPLATE, str(unavailable))


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
