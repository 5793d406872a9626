"""Benchmark of the monitoring loop on the embedded data: replay -> drift -> outcomes -> performance verdict.

    python bench/loop.py [--url http://127.0.0.1:8000 --production data/production] [--rows 2000] [--json FILE]

With --url (the service `make run` started, its log folder in --production, default params.yaml's), the loop runs
against it. Without, it starts `serve.baseline` (the same ScoringService and HTTP layer, plain uvicorn) on a free
127.0.0.1 port with a log folder of its own, and stops it at the end. Steps: `serve.replay` sends `--rows` drifted
applicants; the drift stage runs on the log; `serve.replay --outcomes` writes their outcomes; the performance stage
measures them. The stages run as processes in a throwaway project whose params.yaml points at this repository's
pipeline outputs (`dvc repro` first), as `dvc repro drift performance` would. Prints each step's seconds, the drifted
fields and the verdict.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from drift import project, run_stage  # noqa: E402

from scoring.ray_runtime import free_port  # noqa: E402
from scoring.settings import load_settings  # noqa: E402
from serve.loopback import wait_until_answering  # noqa: E402


@contextmanager
def baseline_service(production: Path, log: Path) -> Iterator[str]:
    """serve.baseline on the pipeline's model, logging to `production`; stopped on exit."""
    port = free_port()
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, "-m", "serve.baseline", "--pipeline-model", "--port", str(port),
                                    "--production-log", str(production)], cwd=REPO, stdout=output, stderr=output)
        try:
            wait_until_answering(f"http://127.0.0.1:{port}/health", 120, lambda: process.poll() is None, log)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def loop(url: str, rows: int, production: Path, root: Path) -> dict[str, Any]:
    """replay -> drift -> outcomes -> performance on the service at `url` (its log in `production`)."""
    project(root, production, root / "outcomes")
    first_id = 4_000_001 + int(time.time()) % 100_000 * 10  # new applicants on every run
    args = ["--rows", str(rows), "--first-id", str(first_id), "--seed", "7"]
    steps = {"replay": timed([sys.executable, "-m", "serve.replay", "--url", url, *args])}
    steps["drift"] = run_stage("drift", root)[0]
    steps["outcomes"] = timed([sys.executable, "-m", "serve.replay", "--outcomes", "--outcomes-dir",
                               str(root / "outcomes"), *args])
    steps["performance"] = run_stage("performance", root)[0]
    drift_report = json.loads((root / "reports" / "drift.json").read_text())["production"]
    performance = json.loads((root / "reports" / "performance.json").read_text())
    return {"rows": rows, "steps_s": {k: round(v, 1) for k, v in steps.items()},
            "total_s": round(sum(steps.values()), 1), "rows_logged": drift_report.get("rows_logged"),
            "drifted_columns": drift_report.get("drifted_columns"), "verdict": performance["verdict"],
            "reasons": performance["reasons"], "joined": performance.get("joined")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running service (default: start serve.baseline for the run)")
    parser.add_argument("--production", type=Path, help="its log folder (default: params.yaml's)")
    parser.add_argument("--rows", type=int, default=2_000)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.url:
            production = args.production or load_settings(REPO / "params.yaml").under(REPO).paths.production
            result = loop(args.url.rstrip("/"), args.rows, production, root / "project")
        else:
            (root / "production").mkdir()
            started = time.perf_counter()
            with baseline_service(root / "production", root / "service.log") as url:
                start_s = time.perf_counter() - started
                result = {**loop(url, args.rows, root / "production", root / "project"),
                          "service_start_s": round(start_s, 1)}
    print(" ".join(f"{k} {v:.1f} s" for k, v in result["steps_s"].items()) + f"; total {result['total_s']:.1f} s")
    print(f"drifted: {result['drifted_columns']}; verdict: {result['verdict']} {result['reasons']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
