"""Ports for the service's listeners: free, on 127.0.0.1, and never from the kernel's ephemeral pool (where Ray's
workers take theirs between the choice and the bind), nor from the ports Ray Serve gives its replicas."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from scoring import ray_runtime
from serve import loopback


def test_chosen_ports_are_free_distinct_and_outside_the_ephemeral_range():
    ephemeral = ray_runtime.ephemeral_ports()
    ports = [ray_runtime.free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert not [port for port in ports if port in ephemeral or port not in ray_runtime.CHOSEN_PORTS]
    for port in ports[:5]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_port_in_use_is_never_chosen(monkeypatch: pytest.MonkeyPatch):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        busy = held.getsockname()[1]
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            spare = other.getsockname()[1]
        monkeypatch.setattr(ray_runtime, "CHOSEN_PORTS", [busy, spare])
        monkeypatch.setattr(ray_runtime, "ephemeral_ports", lambda: range(0))
        monkeypatch.setattr(ray_runtime, "_handed_out", set())
        assert ray_runtime.free_port() == spare
        with pytest.raises(RuntimeError, match="no free 127.0.0.1 port"):
            ray_runtime.free_port()  # the spare one is handed out, the other is busy


def test_the_ephemeral_range_is_read_from_the_kernels_setting(tmp_path: Path):
    setting = tmp_path / "ip_local_port_range"
    setting.write_text("40000\t50000\n")
    assert ray_runtime.ephemeral_ports(setting) == range(40000, 50001)
    assert ray_runtime.ephemeral_ports(tmp_path / "absent") == range(32768, 61000)


def test_waiting_ends_when_the_server_answers_and_says_why_when_it_died(tmp_path: Path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", ray_runtime.free_port()), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        loopback.wait_until_answering(f"{url}/health", 10, lambda: True)
        assert not loopback.answers(f"{url}/missing")
        log = tmp_path / "server.log"
        log.write_text("starting\nOSError: address already in use\n")
        with pytest.raises(RuntimeError, match="(?s)stopped before answering.*address already in use"):
            loopback.wait_until_answering(f"{url}/missing", 10, lambda: False, log)
        with pytest.raises(TimeoutError, match="did not answer within 1 s"):
            loopback.wait_until_answering(f"{url}/missing", 1)
    finally:
        server.shutdown()
        server.server_close()
