"""Benchmark of the service's hardening: what it listens on, oversized requests, capacity, a paced load, a lost replica.

    python bench/hardening.py [--sections sockets,oversized,capacity,load,kill] [--duration 60] [--share 0.8]
                              [--json FILE]

Starts the service itself (serve.run, the pipeline's model: `dvc repro` first, a production log of its own) on free
127.0.0.1 ports, and prints figures:

* sockets: every listening socket of serve.run's process tree and what a call without Ray's token through 127.0.0.1
  got (gRPC: the status of a known method of each kind of Ray server; HTTP: GET /metrics and GET /).
* oversized: each kind of oversized request (a declared Content-Length over the cap, chunked bodies without one,
  small Parquet and Arrow bodies of 1M rows, a JSON batch of 100,001 applicants, a 2 MiB `POST /score`): status,
  seconds to the answer (for chunked bodies also after the cap was passed), the replica's RSS growth (peak while it
  ran, and one second after; the largest over the replicas, `ray::ServeReplica:...`).
* capacity: requests/s of `POST /score` with wrk, 16 connections for 10 s (bench/serve.py's measure), with the
  config's replicas (2) and with one.
* load: an open-loop load paced at `--share` (80%) of that capacity for `--duration` s (wrk2-like, in Python with
  uvloop: each request has its due time, its latency counts from then, so a stall is not hidden): errors, p50/p99.
* kill: the same paced load at half the capacity, one replica SIGKILLed 10 s in: requests lost, longest wait, time
  until the replacement answered, and whether each answered request is in the production log exactly once.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scoring.monitoring.production_log import read_production_log  # noqa: E402
from scoring.ray_runtime import free_port  # noqa: E402
from scoring.serving import request_schema  # noqa: E402
from scoring.settings import configure_logging, load_settings  # noqa: E402
from serve.loopback import wait_until_answering  # noqa: E402
from tests.integration.test_ray_auth import (  # noqa: E402  (the same listing and probes as the test)
    GRPC_PROBES,
    Listener,
    grpc_status,
    listeners,
    replica_processes,
    service_processes,
)

logger = logging.getLogger("bench.hardening")
WRK_SCRIPT = """
local bodies = {}
for line in io.lines("%s") do bodies[#bodies + 1] = line end
local i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "/score", {["Content-Type"] = "application/json", ["X-Traffic"] = "test"}, bodies[i])
end
"""
ARROW, PARQUET = "application/vnd.apache.arrow.stream", "application/vnd.apache.parquet"


# ---- the service ----------------------------------------------------------------------------------------------------
@dataclass
class Service:
    process: subprocess.Popen
    port: int
    log_dir: Path
    token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_service(work: Path, name: str, replicas: int | None = None) -> Service:
    port, log_dir, token = free_port(), work / f"log-{name}", work / f"token-{name}"
    command = [sys.executable, "-m", "serve.run", "--pipeline-model", "--port", str(port), "--production-log",
               str(log_dir), *(["--replicas", str(replicas)] if replicas else [])]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_TOKEN_PATH": str(token)}
    output = work / f"{name}.log"
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=output.open("w"), stderr=subprocess.STDOUT)
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/health", 300, lambda: process.poll() is None, output)
    except (RuntimeError, TimeoutError):
        stop_service(process)
        raise
    logger.info("%s: serve.run pid %d on port %d", name, process.pid, port)
    return Service(process, port, log_dir, token.read_text().strip())


def stop_service(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(90)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running(work: Path, name: str, replicas: int | None = None):
    service = start_service(work, name, replicas)
    try:
        yield service
    finally:
        stop_service(service.process)


# ---- sockets --------------------------------------------------------------------------------------------------------
def http_status(port: int, path: str) -> str:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        return str(connection.getresponse().status)
    except (OSError, http.client.HTTPException) as error:
        return type(error).__name__
    finally:
        connection.close()


def unauthenticated_answer(listener: Listener) -> str:
    """What a call without the token got: gRPC statuses of the known methods, else HTTP statuses."""
    statuses = {method.rsplit("/", 2)[-2].split(".")[-1] + "/" + method.rsplit("/", 1)[-1]:
                grpc_status(listener.port, method) for method in GRPC_PROBES}
    if any(status not in ("UNAVAILABLE", "UNKNOWN") for status in statuses.values()):
        known = {name: status for name, status in statuses.items() if status != "UNIMPLEMENTED"}
        return "gRPC " + (", ".join(f"{name}: {status}" for name, status in known.items()) or "UNIMPLEMENTED")
    return f"HTTP GET /metrics {http_status(listener.port, '/metrics')}, GET / {http_status(listener.port, '/')}"


def sockets_section(service: Service) -> list[dict[str, Any]]:
    rows = []
    for listener in listeners(service_processes(service.process.pid)):
        rows.append({"address": listener.ip, "port": listener.port, "process": listener.process,
                     "unauthenticated": unauthenticated_answer(listener)})
    print(f"\n{'address':<18}{'port':>6}  {'process':<48}unauthenticated call through 127.0.0.1")
    for row in rows:
        print(f"{row['address']:<18}{row['port']:>6}  {row['process'][:47]:<48}{row['unauthenticated']}")
    return rows


# ---- oversized requests ---------------------------------------------------------------------------------------------
class MemoryWatch:
    """The replicas' RSS sampled every 5 ms from another thread: baseline, peak, and one second after."""

    def __init__(self, service_pid: int):
        self.processes = replica_processes(service_pid)
        self.base = self.sample()
        self.peak = dict(self.base)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)

    def sample(self) -> dict[int, int]:
        out = {}
        for process in self.processes:
            with contextlib.suppress(psutil.Error):
                out[process.pid] = process.memory_info().rss
        return out

    def watch(self) -> None:
        while not self.done.is_set():
            for pid, rss in self.sample().items():
                self.peak[pid] = max(self.peak.get(pid, 0), rss)
            time.sleep(0.005)

    def __enter__(self) -> MemoryWatch:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        time.sleep(1.0)
        self.done.set()
        self.thread.join()
        self.after = self.sample()

    def growth_mib(self) -> tuple[float, float]:
        """(peak growth, growth one second after), the largest over the replicas, MiB."""
        peak = max((self.peak[pid] - self.base[pid]) / 2**20 for pid in self.base)
        after = max((self.after.get(pid, self.base[pid]) - self.base[pid]) / 2**20 for pid in self.base)
        return round(peak, 1), round(after, 1)


def send_and_time(port: int, head: bytes, chunks: list[bytes] | Any, cap: int | None = None) -> dict[str, Any]:
    """Send the head, then the body chunks from another thread while the answer is awaited: seconds to the answer
    from the first byte sent, and after the body passed `cap` bytes (chunked bodies)."""
    import socket

    sent = {"bytes": 0, "cap_at": None}
    with socket.create_connection(("127.0.0.1", port), timeout=120) as client:
        started = time.perf_counter()
        client.sendall(head)

        def send() -> None:
            with contextlib.suppress(OSError):
                for chunk in chunks:
                    client.sendall(chunk)
                    sent["bytes"] += len(chunk)
                    if cap is not None and sent["cap_at"] is None and sent["bytes"] > cap:
                        sent["cap_at"] = time.perf_counter()

        threading.Thread(target=send, daemon=True).start()
        first = client.recv(65536)
        answered = time.perf_counter()
    status = int(first.split(b" ", 2)[1]) if first.startswith(b"HTTP/") else first[:40].decode(errors="replace")
    out = {"status": status, "seconds": round(answered - started, 3), "body_sent_mib": round(sent["bytes"] / 2**20)}
    if sent["cap_at"] is not None:
        out["seconds_after_cap"] = round(answered - sent["cap_at"], 3)
    return out


def http_head(path: str, content_type: str, length: int | None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: {content_type}\r\n{framing}\r\n\r\n".encode()


def chunked(total: int, piece: int = 2**20):
    block = b"x" * piece
    for _ in range(total // piece):
        yield b"%x\r\n" % piece + block + b"\r\n"
    yield b"0\r\n\r\n"


def million_rows(applicant: dict[str, Any], kind: str, rows: int = 1_000_000) -> bytes:
    """One applicant repeated `rows` times (constant columns: a small body), as Parquet or a zstd Arrow stream."""
    columns = {name: [value] for name, value in applicant.items() if value is not None}
    table = pa.table(columns).take(np.zeros(rows, dtype="int64"))
    sink = io.BytesIO()
    if kind == PARQUET:
        pq.write_table(table, sink, compression="zstd")
    else:
        options = pa.ipc.IpcWriteOptions(compression="zstd")
        with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
            writer.write_table(table)
    return sink.getvalue()


def oversized_cases(applicant: dict[str, Any]) -> dict[str, tuple[bytes, Any, int | None]]:
    """name -> (head, body chunks, cap for timing after the cap)."""
    cap, single = request_schema.MAX_BODY_BYTES, request_schema.MAX_SINGLE_BODY_BYTES
    json_batch = b'{"applicants": [' + b",".join([b"{}"] * (request_schema.MAX_BATCH + 1)) + b"]}"
    parquet, arrow = million_rows(applicant, PARQUET), million_rows(applicant, ARROW)
    return {
        "batch, declared Content-Length 300 MiB (head only)": (
            http_head("/score/batch", "application/json", 300 * 2**20), [], None),
        "batch, chunked 300 MiB": (http_head("/score/batch", "application/json", None), chunked(300 * 2**20), cap),
        "score, declared Content-Length 2 MiB": (
            http_head("/score", "application/json", 2 * 2**20), [b"x" * 2 * 2**20], None),
        "score, chunked 2 MiB": (http_head("/score", "application/json", None), chunked(2 * 2**20, 2**16), single),
        f"batch, Parquet of 1M rows ({len(parquet) / 2**10:.0f} KiB)": (
            http_head("/score/batch", PARQUET, len(parquet)), [parquet], None),
        f"batch, Arrow stream of 1M rows ({len(arrow) / 2**10:.0f} KiB)": (
            http_head("/score/batch", ARROW, len(arrow)), [arrow], None),
        f"batch, JSON of 100,001 applicants ({len(json_batch) / 2**10:.0f} KiB)": (
            http_head("/score/batch", "application/json", len(json_batch)), [json_batch], None),
    }


def oversized_section(service: Service, applicant: dict[str, Any]) -> dict[str, dict[str, Any]]:
    results = {}
    for name, (head, body, cap) in oversized_cases(applicant).items():
        with MemoryWatch(service.process.pid) as memory:
            result = send_and_time(service.port, head, body, cap)
        result["rss_peak_mib"], result["rss_after_mib"] = memory.growth_mib()
        results[name] = result
        logger.info("%s: %s", name, result)
    print(f"\n{'oversized request':<52}{'status':>7}{'seconds':>9}{'after cap':>10}{'RSS peak':>10}{'after':>8}")
    for name, r in results.items():
        print(f"{name:<52}{r['status']!s:>7}{r['seconds']:>9.3f}{r.get('seconds_after_cap', float('nan')):>10.3f}"
              f"{r['rss_peak_mib']:>10.1f}{r['rss_after_mib']:>8.1f}")
    return results


# ---- capacity (wrk) -------------------------------------------------------------------------------------------------
def parse_ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1000.0}[unit]


def wrk(port: int, script: Path, connections: int = 16, duration: int = 10) -> dict[str, float]:
    done = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "5s", "--latency",
                           "-s", str(script), f"http://127.0.0.1:{port}/score"],
                          capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", done)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", done)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", done).group(1)),
            "p50_ms": parse_ms(re.search(r"^\s+50%\s+(\S+)", done, re.MULTILINE).group(1)),
            "p99_ms": parse_ms(re.search(r"^\s+99%\s+(\S+)", done, re.MULTILINE).group(1)),
            "errors": (sum(int(x) for x in errors.groups()) if errors else 0) + (int(non_2xx.group(1)) if non_2xx
                                                                                 else 0)}


def capacity(service: Service, script: Path) -> dict[str, Any]:
    wrk(service.port, script, duration=3)  # warm-up
    result = wrk(service.port, script)
    result["memory_mib"] = round(sum(p.memory_info().rss for p in service_processes(service.process.pid)
                                     if p.is_running()) / 2**20)
    return result


# ---- paced load -----------------------------------------------------------------------------------------------------
@dataclass
class Paced:
    """An open-loop load: request i is due at start + i / rate, sent on an idle keep-alive connection (a new one if
    none is idle), and its latency counts from its due time."""
    port: int
    bodies: list[bytes]   # JSON applicants without SK_ID_CURR, "{" stripped: b'"NAME_CONTRACT_TYPE": ...}'
    rate: float
    duration: float
    first_id: int = 10**13
    max_connections: int = 256
    samples: list[tuple[int, int | str, float]] = field(default_factory=list)  # (SK_ID_CURR, status, s from due)
    dues: list[float] = field(default_factory=list)  # seconds from the start, in the order of `samples`
    open: int = 0
    opened: int = 0
    lags: list[float] = field(default_factory=list)
    refusals: Counter = field(default_factory=Counter)
    cpu_s: float = 0.0

    def request(self, i: int) -> tuple[int, bytes]:
        ident = self.first_id + i
        body = b'{"SK_ID_CURR": %d, ' % ident + self.bodies[i % len(self.bodies)]
        return ident, (b"POST /score HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                       b"Content-Length: %d\r\n\r\n" % len(body)) + body

    async def exchange(self, connection: tuple[Any, Any], payload: bytes, due: float) -> tuple[int, bool]:
        """(the answer's status, whether the connection may carry another request); a refusal's first words are
        counted in `refusals`, the delay between the due time and the sending in `lags`."""
        reader, writer = connection
        self.lags.append(time.perf_counter() - due)
        writer.write(payload)
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        body = await reader.readexactly(int(length.group(1))) if length else b""
        if not length and re.search(rb"(?i)\r\ntransfer-encoding:\s*chunked", head):
            body = await read_chunks(reader)
        status = int(head.split(b" ", 2)[1])
        if status != 200:
            self.refusals[f"{status} {body[:48].decode(errors='replace')}"] += 1
        return status, not re.search(rb"(?i)\r\nconnection:\s*close", head)

    async def connect(self, idle: asyncio.Queue) -> tuple[Any, Any]:
        """An idle keep-alive connection, a new one while fewer than `max_connections` are open, else the next one
        to come back."""
        if not idle.empty():
            return idle.get_nowait()
        if self.open < self.max_connections:
            self.open += 1
            self.opened += 1
            try:
                return await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                self.open -= 1
                raise
        return await idle.get()

    async def send(self, payload: bytes, idle: asyncio.Queue, due: float) -> int:
        connection = await self.connect(idle)
        try:
            status, reusable = await self.exchange(connection, payload, due)
        except BaseException:
            self.close(connection)
            raise
        if reusable:
            idle.put_nowait(connection)
        else:
            self.close(connection)
        return status

    def close(self, connection: tuple[Any, Any]) -> None:
        connection[1].close()
        self.open -= 1

    async def one(self, i: int, due: float, idle: asyncio.Queue) -> None:
        """Request i, given until 10 s after its due time."""
        ident, payload = self.request(i)
        status: int | str
        try:
            status = await asyncio.wait_for(self.send(payload, idle, due), max(0.1, due + 10 - time.perf_counter()))
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as error:
            status = type(error).__name__
        self.samples.append((ident, status, time.perf_counter() - due))
        self.dues.append(i / self.rate)

    async def run(self) -> None:
        idle: asyncio.Queue = asyncio.Queue()
        tasks = set()
        started = time.perf_counter()
        for i in range(int(self.rate * self.duration)):
            due = started + i / self.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.ensure_future(self.one(i, due, idle))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        while not idle.empty():
            self.close(idle.get_nowait())

    def summary(self) -> dict[str, Any]:
        latencies = np.array([seconds for _, _, seconds in self.samples]) * 1000
        statuses = Counter(str(status) for _, status, _ in self.samples)
        return {"rate_asked": round(self.rate, 1), "requests": len(self.samples),
                "rate_done": round(len(self.samples) / self.duration, 1), "statuses": dict(statuses),
                "errors": len(self.samples) - statuses["200"], "p50_ms": round(float(np.percentile(latencies, 50)), 2),
                "p99_ms": round(float(np.percentile(latencies, 99)), 2), "max_ms": round(float(latencies.max()), 1),
                "connections": self.opened, "send_lag_p99_ms": round(float(np.percentile(self.lags, 99)) * 1000, 2),
                "generator_cpu_share": round(self.cpu_s / self.duration, 2), "refusals": dict(self.refusals),
                "p99_ms_by_10s": self.windows()}

    def windows(self, width: float = 10) -> list[float]:
        """p99 latency (ms) of the requests due in each `width`-second window: a stall shows where it happened."""
        by_window: dict[int, list[float]] = {}
        for (_, _, seconds), due in zip(self.samples, self.dues):
            by_window.setdefault(int(due // width), []).append(seconds * 1000)
        return [round(float(np.percentile(by_window[k], 99)), 1) for k in sorted(by_window)]


async def read_chunks(reader: Any) -> bytes:
    """A chunked body."""
    body = b""
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        body += (await reader.readexactly(size + 2))[:-2]
    await reader.readuntil(b"\r\n")
    return body


def paced(port: int, bodies: list[bytes], rate: float, duration: float, first_id: int = 10**13) -> Paced:
    import uvloop

    load = Paced(port, bodies, rate, duration, first_id)
    cpu = time.process_time()
    uvloop.run(load.run())
    load.cpu_s = time.process_time() - cpu
    return load


def load_section(service: Service, bodies: list[bytes], rate: float, duration: float) -> dict[str, Any]:
    result = paced(service.port, bodies, rate, duration).summary()
    print(f"\npaced load at {rate:.0f} req/s for {duration:.0f} s: {result['requests']} requests "
          f"({result['rate_done']}/s), errors {result['errors']} {result['statuses']}, p50 {result['p50_ms']} ms, "
          f"p99 {result['p99_ms']} ms, max {result['max_ms']} ms (latency from the due time; sending lagged "
          f"{result['send_lag_p99_ms']} ms at p99; the generator used {result['generator_cpu_share']:.0%} of a core); "
          f"p99 by 10 s: {result['p99_ms_by_10s']}")
    return result


# ---- a lost replica -------------------------------------------------------------------------------------------------
def kill_section(service: Service, bodies: list[bytes], rate: float, duration: float = 40,
                 kill_after: float = 10) -> dict[str, Any]:
    before = {p.pid for p in replica_processes(service.process.pid)}
    first_id = 2 * 10**13
    state: dict[str, Any] = {}

    def killer() -> None:
        time.sleep(kill_after)
        victim = min(before)
        state["killed_at"] = time.time()
        os.kill(victim, signal.SIGKILL)
        while time.time() - state["killed_at"] < duration - kill_after and "replacement_s" not in state:
            if new_writer(service.log_dir, before):
                state["replacement_s"] = round(time.time() - state["killed_at"], 1)
            time.sleep(0.2)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    load = paced(service.port, bodies, rate, duration, first_id)
    thread.join()
    result = load.summary()
    answered = [ident for ident, status, _ in load.samples if status == 200]
    ids = read_production_log(service.log_dir).applicants["SK_ID_CURR"].dropna().astype("int64")
    lines = Counter(int(i) for i in ids if i >= first_id)
    result.update(replacement_answering_s=state.get("replacement_s"),
                  answered_logged_once=sum(lines[i] == 1 for i in answered), answered=len(answered),
                  unanswered_logged=sum(1 for ident, status, _ in load.samples if status != 200 and lines[ident]))
    print(f"\nreplica SIGKILLed at {kill_after:.0f} s of a {rate:.0f} req/s paced load: {result['requests']} requests, "
          f"lost {result['errors']} {result['statuses']}, max wait {result['max_ms']} ms, p99 {result['p99_ms']} ms, "
          f"replacement answering after {result['replacement_answering_s']} s, answered and logged once "
          f"{result['answered_logged_once']}/{result['answered']}, refusals {result['refusals']}")
    return result


def new_writer(log_dir: Path, before: set[int]) -> bool:
    """A process other than the original replicas has written single requests to the production log."""
    pattern = re.compile(r"^requests-(?:\d{8}T\d+Z?-)?(\d+)(?:-\d+)?\.jsonl")
    return any(int(m.group(1)) not in before for p in log_dir.glob("requests-*")
               if (m := pattern.match(p.name)) and p.stat().st_size > 0)


# ---- main -----------------------------------------------------------------------------------------------------------
def test_applicants(n: int = 1000) -> list[dict[str, Any]]:
    paths = load_settings(REPO / "params.yaml").under(REPO).paths
    return request_schema.records(pd.read_parquet(paths.prepared_table(request_schema.APPLICANT_TABLE)).head(n))


def main() -> None:
    configure_logging()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default="sockets,oversized,capacity,load,kill")
    parser.add_argument("--duration", type=float, default=60, help="seconds of the paced load")
    parser.add_argument("--share", type=float, default=0.8, help="the paced load's share of the measured capacity")
    parser.add_argument("--rate", type=float, help="the paced load's rate (requests/s) instead of a share")
    parser.add_argument("--kill-rate", type=float, help="the kill section's rate (default: half the capacity)")
    parser.add_argument("--json", type=Path, help="write the figures there too")
    ns = parser.parse_args()
    sections = set(ns.sections.split(","))
    work = Path(tempfile.mkdtemp(prefix="bench-hardening-"))
    applicants = test_applicants()
    plain = [json.dumps({k: v for k, v in a.items() if k != "SK_ID_CURR"}).encode() for a in applicants]
    (work / "bodies.jsonl").write_bytes(b"\n".join(json.dumps(a).encode() for a in applicants) + b"\n")
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT % (work / "bodies.jsonl"))
    bodies = [body[1:] for body in plain]
    figures: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count()}
    if "capacity" in sections:
        with running(work, "one-replica", replicas=1) as service:
            figures["capacity_1_replica"] = capacity(service, script)
    with running(work, "service") as service:
        if "sockets" in sections:
            figures["sockets"] = sockets_section(service)
        if "oversized" in sections:
            figures["oversized"] = oversized_section(service, applicants[0])
        if sections & {"capacity", "load", "kill"}:
            figures["capacity_2_replicas"] = capacity(service, script)
            rps = figures["capacity_2_replicas"]["rps"]
            print(f"\ncapacity (wrk, 16 connections): 2 replicas {rps:.0f} req/s" + (
                f", 1 replica {figures['capacity_1_replica']['rps']:.0f} req/s" if "capacity_1_replica" in figures
                else ""))
        if "load" in sections:
            figures["load"] = load_section(service, bodies, ns.rate or ns.share * rps, ns.duration)
        if "kill" in sections:
            figures["kill"] = kill_section(service, bodies, ns.kill_rate or rps / 2)
    logger.info("figures: %s", json.dumps(figures, default=str))
    if ns.json:
        ns.json.write_text(json.dumps(figures, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
