"""Bring the scoring service and the Streamlit app up in the background, or down again (what `make run` ends with).

    python -m serve.stack up [--api-port 8000] [--app-port 8501]
    python -m serve.stack down
    python -m serve.stack status

Both bind 127.0.0.1. Their process ids and logs are in `.run/`; `down` stops them (Ray included, through the
service's own SIGTERM handler).
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from scoring.settings import configure_logging
from serve.loopback import answers, wait_until_answering

logger = logging.getLogger("serve.stack")
ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / ".run"


def launch(name: str, command: list[str], env: dict[str, str]) -> int:
    RUN.mkdir(exist_ok=True)
    log = (RUN / f"{name}.log").open("w")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    (RUN / f"{name}.pid").write_text(str(process.pid))
    return process.pid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def wait_for(name: str, pid: int, port: int, path: str, timeout: float) -> None:
    try:
        wait_until_answering(f"http://127.0.0.1:{port}{path}", timeout, lambda: alive(pid), RUN / f"{name}.log")
    except (RuntimeError, TimeoutError) as error:
        raise SystemExit(f"{name}: {error}") from None


def up(api_port: int, app_port: int) -> None:
    if answers(f"http://127.0.0.1:{api_port}/health"):
        raise SystemExit(f"something already answers on 127.0.0.1:{api_port}: `make stop` (or choose API_PORT=...)")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    api = launch("service", [sys.executable, "-m", "serve.run", "--port", str(api_port)], env)
    logger.info("starting the scoring service (Ray Serve)...")
    wait_for("service", api, api_port, "/health", 300)
    app_env = {**env, "SCORING_API_URL": f"http://127.0.0.1:{api_port}", "PROJECT_ROOT": str(ROOT)}
    app = launch("app", [sys.executable, "-m", "streamlit", "run", "app/streamlit_app.py", "--server.headless",
                         "true", "--server.address", "127.0.0.1", "--server.port", str(app_port),
                         "--browser.gatherUsageStats", "false"], app_env)
    logger.info("starting the Streamlit app...")
    wait_for("app", app, app_port, "/_stcore/health", 120)
    print(f"\n  scoring API   http://127.0.0.1:{api_port}/score   (reference: http://127.0.0.1:{api_port}/docs)"
          f"\n  app           http://127.0.0.1:{app_port}"
          f"\n  logs          {RUN}/service.log, {RUN}/app.log"
          f"\n  stop both     make stop\n")


def down() -> None:
    for name in ("app", "service"):
        pid_file = RUN / f"{name}.pid"
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text())
        if alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.time() + 60
            while alive(pid) and time.time() < deadline:
                time.sleep(0.5)
            if alive(pid):
                os.killpg(pid, signal.SIGKILL)
            logger.info("stopped %s (pid %d)", name, pid)
        pid_file.unlink()


def status() -> None:
    for name in ("service", "app"):
        pid_file = RUN / f"{name}.pid"
        pid = int(pid_file.read_text()) if pid_file.exists() else None
        print(f"{name}: {'running, pid ' + str(pid) if pid and alive(pid) else 'not running'}")


def main(argv: list[str] | None = None) -> None:
    configure_logging()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--app-port", type=int, default=8501)
    ns = parser.parse_args(argv)
    {"up": lambda: up(ns.api_port, ns.app_port), "down": down, "status": status}[ns.action]()


if __name__ == "__main__":
    main()
