"""Benchmark: the scoring service on Ray Serve against a plain-uvicorn baseline serving the same graph code.

    python bench/serve.py [--duration 10] [--batch 50000] [--no-batching] [--default-proxy] [--json FILE]

Both serve `scoring.serving.service.ScoringService` (validation, features, score, SHAP reasons, decision, production
log) with the pipeline's own model (`dvc repro` first). Load: sequential requests for p50/p99, then wrk (C, cheap enough
not to be the bottleneck) with 16 and 64 keep-alive connections; then the batch endpoint with an Arrow body.
Prints a table, the Ray/baseline throughput ratio and the memory of the Ray processes, and writes the figures to
reports/serving.json (the deck's serving slide reads them). `--no-batching` adds Ray Serve with `batch_size: 1`
(what scoring concurrent requests together buys), `--default-proxy` Ray's own Python proxy instead of HAProxy.
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import logging
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scoring.ray_runtime import free_port  # noqa: E402
from scoring.serving import request_schema  # noqa: E402
from scoring.settings import configure_logging, load_settings  # noqa: E402
from serve.loopback import wait_until_answering  # noqa: E402

logger = logging.getLogger("bench.serve")
WRK_SCRIPT = """
local bodies = {}
for line in io.lines("%s") do bodies[#bodies + 1] = line end
local i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "/score", {["Content-Type"] = "application/json", ["X-Traffic"] = "test"}, bodies[i])
end
"""


def start(command: list[str], port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/health", 240, lambda: process.poll() is None, log)
    except (RuntimeError, TimeoutError) as error:
        stop(process)
        raise SystemExit(f"{' '.join(command)}: {error}") from None
    return process


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


def tree_memory_mib(process: subprocess.Popen) -> float:
    """RSS of the process and all its descendants (Ray: raylet, GCS, controller, replica, HAProxy...)."""
    root = psutil.Process(process.pid)
    total = 0
    for p in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total / 2**20


def sequential(port: int, bodies: list[bytes], n: int = 500) -> dict[str, float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for i in range(n + 50):
        started = time.perf_counter()
        connection.request("POST", "/score", bodies[i % len(bodies)],
                           {"Content-Type": "application/json", "X-Traffic": "test"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"status {response.status} on a valid applicant")
        if i >= 50:  # warm-up excluded
            times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": statistics.median(times), "p99_ms": float(np.percentile(times, 99))}


def parse_ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1000.0}[unit]


def wrk(port: int, script: Path, connections: int, duration: int) -> dict[str, float]:
    done = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "5s", "--latency",
                           "-s", str(script), f"http://127.0.0.1:{port}/score"],
                          capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", done).group(1))
    # Anchored: a "+/- Stdev" column such as "71.50%" must not pass for the 50% line of the distribution.
    p50 = parse_ms(re.search(r"^\s+50%\s+(\S+)", done, re.MULTILINE).group(1))
    p99 = parse_ms(re.search(r"^\s+99%\s+(\S+)", done, re.MULTILINE).group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", done)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", done)
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99,
            "errors": sum(int(x) for x in errors.groups()) if errors else 0,
            "timeouts": int(errors.group(4)) if errors else 0, "non_2xx": int(non_2xx.group(1)) if non_2xx else 0}


ARROW = "application/vnd.apache.arrow.stream"


def batch_rate(port: int, body: bytes, n: int, reasons: int, repeats: int = 3, accept: str = "application/json"
               ) -> float:
    """Applicants per second of one `POST /score/batch` (an Arrow body), the best of `repeats`."""
    best = 0.0
    for _ in range(repeats):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        started = time.perf_counter()
        connection.request("POST", f"/score/batch?reasons={reasons}", body,
                           {"Content-Type": ARROW, "Accept": accept, "X-Traffic": "test"})
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise SystemExit(f"batch status {response.status}: {payload[:300]!r}")
        best = max(best, n / (time.perf_counter() - started))
    return best


def test_applicants(n: int) -> pd.DataFrame:
    paths = load_settings(REPO / "params.yaml").under(REPO).paths
    return pd.read_parquet(paths.prepared_table(request_schema.APPLICANT_TABLE))


def arrow_body(apps: pd.DataFrame, n: int) -> bytes:
    rows = apps.sample(n, replace=len(apps) < n, random_state=0).drop(columns="TARGET", errors="ignore")
    repeated = rows["SK_ID_CURR"].duplicated().to_numpy()  # ids must be unique in a batch: repeats become new ids
    rows.loc[repeated, "SK_ID_CURR"] = 10_000_000 + np.arange(repeated.sum())
    table = pa.Table.from_pandas(rows.reset_index(drop=True), preserve_index=False)
    sink = io.BytesIO()  # LZ4-compressed buffers, as a client sending 50,000 applicants would (48 MB -> ~12 MB)
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="lz4")) as writer:
        writer.write_table(table)
    return sink.getvalue()


def measure(name: str, command: list[str], port: int, work: Path, bodies: list[bytes], script: Path,
            batch: bytes, n_batch: int, duration: int) -> dict[str, Any]:
    logger.info("starting %s", name)
    process = start(command, port, work / f"{name}.log")
    try:
        result: dict[str, Any] = {"sequential": sequential(port, bodies)}
        for connections in (16, 64):
            result[f"c{connections}"] = wrk(port, script, connections, duration)
        result["batch_no_reasons_per_s"] = batch_rate(port, batch, n_batch, 0)
        result["batch_3_reasons_per_s"] = batch_rate(port, batch, n_batch, 3, repeats=1)
        result["batch_3_reasons_arrow_per_s"] = batch_rate(port, batch, n_batch, 3, repeats=2, accept=ARROW)
        result["memory_mib"] = tree_memory_mib(process)
        logger.info("%s: %s", name, json.dumps(result))
        return result
    finally:
        stop(process)


def report(results: dict[str, dict[str, Any]]) -> None:
    print(f"\n{'path':<28}{'seq p50':>9}{'seq p99':>9}{'16c req/s':>11}{'16c p50':>9}{'64c req/s':>11}"
          f"{'64c p99':>9}{'errors':>8}{'batch/s':>10}{'+reasons':>10}{'arrow':>10}{'MiB':>7}")
    for name, r in results.items():
        errors = r["c16"]["errors"] + r["c64"]["errors"] + r["c16"]["non_2xx"] + r["c64"]["non_2xx"]
        print(f"{name:<28}{r['sequential']['p50_ms']:>9.2f}{r['sequential']['p99_ms']:>9.2f}{r['c16']['rps']:>11.0f}"
              f"{r['c16']['p50_ms']:>9.2f}{r['c64']['rps']:>11.0f}{r['c64']['p99_ms']:>9.2f}{errors:>8}"
              f"{r['batch_no_reasons_per_s']:>10.0f}{r['batch_3_reasons_per_s']:>10.0f}"
              f"{r.get('batch_3_reasons_arrow_per_s', float('nan')):>10.0f}{r['memory_mib']:>7.0f}")
    base = results["uvicorn baseline"]
    for name, r in results.items():
        if name != "uvicorn baseline":
            print(f"{name}: {r['c16']['rps'] / base['c16']['rps']:.2f}x the baseline's throughput at 16 clients, "
                  f"{r['c64']['rps'] / base['c64']['rps']:.2f}x at 64")


def main() -> None:
    configure_logging()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of each wrk run")
    parser.add_argument("--batch", type=int, default=50_000, help="applicants in the batch request")
    parser.add_argument("--default-proxy", action="store_true", help="also measure Ray's default Python proxy")
    parser.add_argument("--json", type=Path, default=REPO / "reports" / "serving.json",
                        help="where the figures go (read by the deck); default reports/serving.json")
    parser.add_argument("--no-batching", action="store_true", help="also measure Ray Serve scoring one at a time")
    ns = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    apps = test_applicants(ns.batch)
    bodies = [json.dumps(body).encode() for body in request_schema.records(apps.head(1000))]
    (work / "bodies.jsonl").write_bytes(b"\n".join(bodies) + b"\n")
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT % (work / "bodies.jsonl"))
    batch = arrow_body(apps, ns.batch)
    python = sys.executable
    targets = {
        "uvicorn baseline": lambda port: [python, "-m", "serve.baseline", "--pipeline-model", "--port", str(port),
                                          "--production-log", str(work / "log-baseline")],
        "Ray Serve (HAProxy ingress)": lambda port: [python, "-m", "serve.run", "--pipeline-model", "--port",
                                                     str(port), "--production-log", str(work / "log-ray")],
    }
    if ns.no_batching:
        targets["Ray Serve, one at a time"] = lambda port: [
            python, "-m", "serve.run", "--pipeline-model", "--batch-size", "1", "--port", str(port),
            "--production-log", str(work / "log-ray-single")]
    if ns.default_proxy:
        targets["Ray Serve (default proxy)"] = lambda port: [
            python, "-m", "serve.run", "--pipeline-model", "--default-proxy", "--port", str(port),
            "--production-log", str(work / "log-ray-default")]
    results = {}
    for name, command in targets.items():
        port = free_port()
        results[name] = measure(name, command(port), port, work, bodies, script, batch, ns.batch, ns.duration)
    report(results)
    summary = {"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} cores, {platform.machine()}",
               "baseline": "uvicorn baseline", "served": "Ray Serve (HAProxy ingress)", "duration_s": ns.duration,
               "batch_rows": ns.batch, "results": results}
    ns.json.write_text(json.dumps(summary, indent=1) + "\n")
    logger.info("figures written to %s", ns.json)


if __name__ == "__main__":
    main()
