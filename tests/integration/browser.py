"""A headless Chromium driven over the Chrome DevTools Protocol (websockets' sync client): open a page, wait until a
JavaScript condition holds, read the DOM, take a screenshot. Chromium's own `--screenshot --virtual-time-budget`
does not wait for a Streamlit page: its content arrives over a websocket that virtual time does not wait for."""
from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
"""Debian's package by default; CI on GitHub's runners points it at their preinstalled Chrome."""
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--remote-debugging-address=127.0.0.1")


class Browser:
    """One Chromium process with one page; use as a context manager (the process is always stopped)."""

    def __init__(self, width: int = 1400, height: int = 2000, binary: Path = CHROMIUM):
        self.profile = tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True)
        self.process = subprocess.Popen(
            [str(binary), *FLAGS, "--remote-debugging-port=0", f"--user-data-dir={self.profile.name}",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.ids = itertools.count(1)
        self.width, self.height = width, height
        try:
            self.socket = connect(self.page_socket(), max_size=64 * 2**20, open_timeout=30)
        except BaseException:
            self.stop()
            raise

    def page_socket(self, timeout: float = 30) -> str:
        """The page's DevTools websocket (Chromium writes its port to DevToolsActivePort once it listens)."""
        port_file = Path(self.profile.name) / "DevToolsActivePort"
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.process.returncode}")
            if port_file.exists() and port_file.read_text().strip():
                port = port_file.read_text().split()[0]
                try:
                    pages = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
                except httpx.HTTPError:
                    pages = []
                for page in pages:
                    if page.get("type") == "page":
                        return page["webSocketDebuggerUrl"]
            time.sleep(0.2)
        raise TimeoutError(f"chromium's DevTools did not answer within {timeout} s")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def open(self, url: str) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height, deviceScaleFactor=1,
                  mobile=False)
        self.call("Page.navigate", url=url)

    def wait_for(self, condition: str, timeout: float = 60, settle: float = 1.5) -> None:
        """Until the JavaScript `condition` is true, then `settle` seconds more (charts finish drawing)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.evaluate(f"Boolean({condition})"):
                time.sleep(settle)
                return
            time.sleep(0.3)
        text = self.evaluate("document.body ? document.body.innerText.slice(0, 2000) : ''")
        raise TimeoutError(f"the page did not satisfy {condition!r} within {timeout} s; it shows:\n{text}")

    def fit_height(self, scroller: str) -> None:
        """Make the viewport as tall as the scrolling element's content, so one screenshot holds the whole page."""
        height = self.evaluate(f"(document.querySelector({json.dumps(scroller)}) || document.body).scrollHeight")
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=max(int(height or 0), self.height),
                  deviceScaleFactor=1, mobile=False)

    def dom(self) -> str:
        return self.evaluate("document.documentElement.outerHTML")

    def text(self) -> str:
        return self.evaluate("document.body.innerText")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def stop(self) -> None:
        """Chromium and every helper process it started (its own session), then its profile: a helper still
        writing there would make the folder's removal fail."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        time.sleep(0.2)
        self.profile.cleanup()

    def close(self) -> None:
        try:
            self.socket.close()
        finally:
            self.stop()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
