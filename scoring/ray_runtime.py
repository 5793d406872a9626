"""Ray as this project runs it: token authentication always on, ports that nothing else takes, a local node on
loopback. Used by the scoring service (serve/) and by the pipeline's `ray` backend (scoring/data/distributed.py).

Ray's token authentication, always on: every Ray process this project starts needs the token to be talked to.

Ray 2.59+ turns token authentication on by default for a local `ray.init()`; `ray start` (the two-node cluster)
needs a token prepared beforehand. This project never relies on defaults here: it sets `RAY_AUTH_MODE=token` and
points `RAY_AUTH_TOKEN_PATH` at a token file of its own, generated once with 256 random bits and readable by its
owner only (0600), in `.run/` (ignored by git) or wherever the caller says (tests use a temporary folder).
Without the token, Ray's control plane refuses: the dashboard agent's job routes answer 401, the GCS and raylet
gRPC services reject the call.

`free_port` chooses ports outside the kernel's ephemeral range: a port from `bind(0)` comes from the pool that Ray's
workers draw their gRPC servers and outgoing connections from, so one of them can take it before the server it was
chosen for binds it (seen in CI: a core worker listened on the fallback proxy's port 36519, and the service died
with "Failed to bind to address '127.0.0.1:36519'").
"""
from __future__ import annotations

import logging
import os
import random
import secrets
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

AUTH_MODE = "RAY_AUTH_MODE"
TOKEN_PATH = "RAY_AUTH_TOKEN_PATH"
DEFAULT_TOKEN_FILE = Path(__file__).resolve().parents[1] / ".run" / "ray_auth_token"


def ensure_token(path: Path) -> Path:
    """The token file at `path`, generated if absent; a file others can read is refused (fix: chmod 600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_hex(32))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PermissionError(f"Ray's token file {path} is readable by others (mode {mode:o}): chmod 600 {path}")
    return path


def token_environment(path: Path | None = None) -> dict[str, str]:
    """The variables that make a Ray process require (and present) the token: RAY_AUTH_MODE=token and the file.

    An explicit RAY_AUTH_TOKEN_PATH of the caller's environment wins over `path`."""
    chosen = Path(os.environ.get(TOKEN_PATH) or path or DEFAULT_TOKEN_FILE)
    return {AUTH_MODE: "token", TOKEN_PATH: str(ensure_token(chosen))}


def authorization_header(environment: dict[str, str]) -> dict[str, str]:
    """The HTTP header Ray's dashboard and its agents accept, for the token of `environment`."""
    return {"Authorization": f"Bearer {Path(environment[TOKEN_PATH]).read_text().strip()}"}


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


QUIET = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0"}
LOOPBACK_NODE = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
"""Single-node Ray: the node's address is 127.0.0.1 and Ray's own servers bind it (serve/run.py's docstring)."""


def new_temp_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))


def local_node_environment(extra: dict[str, str] | None = None) -> None:
    """This process's environment for a local node, set before `import ray` reads it: quiet, these extra variables
    (unless the caller's environment sets them), the node on loopback with free ports for the two exporters Ray
    puts on fixed ones, and the token (whatever the caller's environment says about authentication)."""
    for key, value in {**QUIET, **(extra or {})}.items():
        os.environ.setdefault(key, value)
    os.environ.update({**LOOPBACK_NODE, "AUTOSCALER_METRIC_PORT": str(free_port()),
                       "DASHBOARD_METRIC_PORT": str(free_port())})
    os.environ.update(token_environment())


def start_local(temp_dir: Path, num_cpus: int | None = None, runtime_env: dict[str, Any] | None = None) -> None:
    """A single-node Ray in this process (after `local_node_environment`): no dashboard, Ray's temp folder 0700."""
    import ray

    ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False,
             logging_level=logging.WARNING, _temp_dir=str(temp_dir), runtime_env=runtime_env)
    temp_dir.chmod(0o700)  # Ray made it 0777; everything in it is this user's


def connect(address: str, num_cpus: int | None = None) -> Path | None:
    """Ray for the pipeline: an existing cluster at `address` (its token file named by RAY_AUTH_TOKEN_PATH, or this
    project's), or, when `address` is empty, a single-node Ray started in this process on 127.0.0.1. The caller
    ends it with `ray.shutdown()` (a local node stops with it), then removes the local node's temp folder (returned;
    None for a cluster). Call it before this process imports Ray: Ray reads the authentication mode on import."""
    if address:
        os.environ.update(token_environment())
        import ray

        ray.init(address=address, logging_level=logging.WARNING)
        return None
    local_node_environment()
    temp_dir = new_temp_dir()
    start_local(temp_dir, num_cpus)
    return temp_dir


@contextmanager
def session(address: str, num_cpus: int | None = None) -> Iterator[None]:
    """Ray for the time of a `with` block (`connect`), then shut down: a local node stops and its folder goes."""
    local_node = connect(address, num_cpus)
    import ray

    try:
        yield
    finally:
        ray.shutdown()
        if local_node is not None:
            shutil.rmtree(local_node, ignore_errors=True)
