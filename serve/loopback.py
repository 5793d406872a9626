"""Keep Ray Serve's HAProxy ingress on loopback and out of other instances' way.

Ray 2.60 renders HAProxy's Prometheus and stats listeners as `bind :9101` and `bind *:8404`: every interface, fixed
ports (a second instance on the machine fails to start). Its fallback Python proxy listens on 8500 (HTTP) and
9500 (gRPC) with SO_REUSEPORT, so two instances on one machine can silently take each other's requests (seen here:
a service logged 86 of the 240 requests it answered while a second instance ran). `haproxy_environment` gives
each run free ports and its own files; `bind_haproxy_to_loopback` (a Ray worker setup hook, so it runs in the
process that renders the config) binds those listeners to 127.0.0.1. The HTTP listener itself follows
`http_options.host` (127.0.0.1 by default).
"""
from __future__ import annotations

import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
