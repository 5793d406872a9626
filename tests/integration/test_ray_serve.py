"""The real Ray Serve application on 127.0.0.1: same answers as in-process scoring, 4xx for bad input (never a 500),
still answering afterwards and under 64 concurrent clients, and the production log written by the replica; bodies
over their cap refused (413) as soon as the cap is passed, chunked ones included, without the replica keeping them;
a client that sends half a request and stalls cut by the ingress's timeouts."""
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest

from scoring.monitoring.production_log import read_production_log
from scoring.serving import request_schema
from serve.api import build_api
from serve.loopback import INGRESS_TIMEOUTS_S, RETRY_AFTER_S

from ..conftest import SETTINGS
from .test_ray_auth import haproxy_files, replica_processes, service_processes

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def applicants(tiny_project):
    return pd.read_parquet(tiny_project / SETTINGS.paths.prepared_table("application_test")).head(64)


@pytest.fixture(scope="module")
def in_process(tiny_project):
    return build_api(tiny_project, registry=False, production_log=False)


def test_served_answers_equal_in_process_scoring(live_service, applicants, in_process):
    url = live_service.url
    bodies = request_schema.records(applicants)
    with httpx.Client(base_url=url, timeout=30) as client:
        for body in bodies[:10]:
            served = client.post("/score", json=body)
            assert served.status_code == 200, served.text
            local = json.loads(in_process.handle("POST", "/score", json.dumps(body).encode()).body)
            assert served.json() == local
        batch = client.post("/score/batch", json={"applicants": bodies}, params={"reasons": 2})
        assert batch.status_code == 200
        assert [r["probability"] for r in batch.json()["results"][:10]] == [
            json.loads(in_process.handle("POST", "/score", json.dumps(b).encode()).body)["probability"]
            for b in bodies[:10]]


def test_bad_requests_are_refused_and_the_service_keeps_answering(live_service, applicants):
    url = live_service.url
    good = request_schema.records(applicants.head(1))[0]
    bad_bodies = [
        {**good, "AMT_INCOME_TOTAL": -1}, {**good, "CODE_GENDER": "Q"}, {**good, "EXTRA": 1},
        {k: v for k, v in good.items() if k != "AMT_CREDIT"}, {**good, "AMT_CREDIT": "much"},
    ]
    with httpx.Client(base_url=url, timeout=30) as client:
        for body in bad_bodies:
            answer = client.post("/score", json=body)
            assert answer.status_code == 422 and answer.json()["detail"][0]["rule"], answer.text
        raw = json.dumps(good).replace(f'"AMT_ANNUITY": {json.dumps(good["AMT_ANNUITY"])}', '"AMT_ANNUITY": NaN')
        assert client.post("/score", content=raw).status_code == 422
        assert client.post("/score", content=b"{broken").status_code == 422
        assert client.post("/score", content=b"x" * (2 * 1024 * 1024)).status_code == 413
        assert client.get("/nowhere").status_code == 404
        assert client.get("/health").json()["status"] == "ok"
        assert client.post("/score", json=good).status_code == 200


def test_64_concurrent_clients_all_answered_each_with_its_own_score(live_service, applicants, in_process):
    """Concurrent requests are scored together in the replica (@serve.batch): every client still gets its own
    applicant's answer, with the reasons count it asked for."""
    url = live_service.url
    bodies = request_schema.records(applicants)
    asks = [(body, i % 4) for i, body in enumerate(bodies * 2)]

    def score(ask):
        body, reasons = ask
        with httpx.Client(base_url=url, timeout=60) as client:
            return client.post("/score", json=body, params={"reasons": reasons})

    with ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(score, asks))
    assert [a.status_code for a in answers] == [200] * len(answers)
    for (body, reasons), answer in zip(asks, answers):
        local = in_process.handle("POST", "/score", json.dumps(body).encode(), query=f"reasons={reasons}")
        assert answer.json() == json.loads(local.body)


def test_openapi_docs_and_model(live_service):
    url = live_service.url
    with httpx.Client(base_url=url, timeout=30) as client:
        spec = client.get("/openapi.json").json()
        assert "Applicant" in spec["components"]["schemas"]
        assert "text/html" in client.get("/docs").headers["content-type"]
        model = client.get("/model").json()
        assert 0 < model["threshold"] < 1 and model["features"]


def test_the_replica_writes_the_production_log(live_service, applicants):
    url, log_dir = live_service.url, live_service.log_dir
    body = request_schema.records(applicants.iloc[[5]])[0]
    httpx.post(f"{url}/score", json=body, timeout=30).raise_for_status()
    logged = read_production_log(log_dir).applicants
    assert body["SK_ID_CURR"] in set(logged["SK_ID_CURR"].dropna().astype("int64"))


def replica_memory_mib(pid: int) -> dict[int, float]:
    """RSS of each replica of the service (`ray::ServeReplica:...`), by process id."""
    return {p.pid: p.memory_info().rss / 2**20 for p in replica_processes(pid)}


def raw_request(port: int, head: bytes, body_chunks=(), timeout: float = 60) -> tuple[bytes, float, str | None]:
    """Send a request's head, then its body chunks from another thread while the answer is awaited (an early answer
    must be read, not lost to a write error); (the answer's first bytes, seconds to them, the sender's error)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as client:
        client.sendall(head)
        error: list[str] = []

        def send() -> None:
            try:
                for chunk in body_chunks:
                    client.sendall(chunk)
            except OSError as failure:
                error.append(type(failure).__name__)

        started = time.perf_counter()
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        answer = read_answer(client)
        return answer, time.perf_counter() - started, error[0] if error else None


def read_answer(client: socket.socket) -> bytes:
    """An HTTP answer's head and its Content-Length of body (or what came before the connection closed)."""
    answer = b""
    try:
        while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < content_length(answer):
            chunk = client.recv(65536)
            if not chunk:
                break
            answer += chunk
    except OSError as failure:
        answer += type(failure).__name__.encode()
    return answer


def content_length(answer: bytes) -> int:
    for line in answer.partition(b"\r\n\r\n")[0].lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def chunks(total_mib: int):
    piece = b"x" * 2**20
    for _ in range(total_mib):
        yield b"%x\r\n" % len(piece) + piece + b"\r\n"
    yield b"0\r\n\r\n"


def test_oversized_bodies_are_refused_as_soon_as_they_pass_the_cap(live_service):
    port = int(live_service.url.rsplit(":", 1)[1])
    before = replica_memory_mib(live_service.pid)
    declared = (f"POST /score/batch HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                f"Content-Length: {request_schema.MAX_BODY_BYTES + 1}\r\n\r\n").encode()
    answer, seconds, _ = raw_request(port, declared)  # the head alone: refused before any byte of the body
    assert answer.startswith(b"HTTP/1.1 413") and seconds < 1, answer[:200]
    chunked = (b"POST /score/batch HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
    cap_mib = request_schema.MAX_BODY_BYTES // 2**20
    answer, seconds, _ = raw_request(port, chunked, chunks(cap_mib + 44))
    assert answer.startswith(b"HTTP/1.1 413") and b"larger than" in answer, answer[:300]
    single = chunked.replace(b"/score/batch", b"/score")
    answer, _, _ = raw_request(port, single, chunks(3))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    after = replica_memory_mib(live_service.pid)
    growth = {pid: after[pid] - before[pid] for pid in after if pid in before}
    assert growth and max(growth.values()) < 50, f"replica RSS growth in MiB: {growth}"
    assert httpx.get(f"{live_service.url}/health", timeout=10).status_code == 200


def test_a_stalled_client_is_cut_by_the_ingress_timeouts(live_service):
    """Half a head: cut after `timeout http-request` (408); a whole head and half a body: after `timeout client`."""
    port = int(live_service.url.rsplit(":", 1)[1])
    half_head = b"POST /score HTTP/1.1\r\nHost: t\r\nContent-Type: appl"
    half_body = b"POST /score HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n{"
    with ThreadPoolExecutor(2) as pool:
        head_cut, body_cut = pool.map(lambda head: raw_request(port, head), (half_head, half_body))
    assert head_cut[0].startswith(b"HTTP/1.1 408"), head_cut[0][:200]
    assert INGRESS_TIMEOUTS_S["http-request"] - 0.5 < head_cut[1] < INGRESS_TIMEOUTS_S["http-request"] + 3
    assert INGRESS_TIMEOUTS_S["client"] - 0.5 < body_cut[1] < INGRESS_TIMEOUTS_S["client"] + 3, body_cut
    assert httpx.get(f"{live_service.url}/health", timeout=10).status_code == 200


def test_the_ingress_fails_fast_with_503_and_retry_after(live_service):
    """HAProxy's timeouts and its answer when no replica can answer (none up, one died with the request, or it took
    longer than `timeout server`): 503 with Retry-After, never a fallback that parks the request."""
    _, text = haproxy_files(service_processes(live_service.pid))
    for name, seconds in INGRESS_TIMEOUTS_S.items():
        assert f"timeout {name} {seconds}s" in text
    errorfiles = {line.split()[1]: Path(line.split()[2]) for line in text.splitlines()
                  if line.strip().startswith("errorfile")}
    assert set(errorfiles) == {"502", "503", "504"} and len(set(errorfiles.values())) == 1
    answer = errorfiles["503"].read_bytes()
    assert answer.startswith(b"HTTP/1.1 503 ") and f"Retry-After: {RETRY_AFTER_S}".encode() in answer
    assert " backup" not in text, "no fallback server: with no replica up, HAProxy answers 503 at once"
