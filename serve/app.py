"""The Ray Serve application: one plain `__call__` deployment around `scoring.serving.service.ScoringService`.

The whole graph (validate -> features -> score -> explain -> decide -> log: `serve/api.py` around
`scoring.serving.service`) runs in one replica: it costs about two milliseconds, of the order of one hop between
deployments, so splitting it would only add latency (bench/serve.py).
Concurrent `POST /score` requests are scored together (`@serve.batch`, up to `batch_size`, no added wait): each is
validated and answered on its own, but the features, the model and its SHAP values run once for all of them, so
NumPy's and XGBoost's per-call costs are paid once per batch instead of once per request.
No FastAPI ingress: it measured 5-10x slower here than a plain deployment (../shared/STACK.md); the OpenAPI document
and the docs page are served by the service itself. `build_app` is the Serve config's import path (serve/config.yaml).
Bodies are read as a stream (`read_body`) with a cap (MAX_BODY_BYTES for /score/batch, MAX_SINGLE_BODY_BYTES for
the rest): a declared Content-Length over it is refused before a byte is read, a chunked body as soon as it passes it;
a chunked body is kept in memory up to SPOOL_BYTES, then in a temporary file, so a refused one never weighs on the
replica's memory (a 300 MiB chunked body, read whole, took a replica from 732 to 1,331 MiB, and it stayed at 1,032;
now: +16 MiB at most, bench/hardening.py). An accepted body is handed over in one allocation, not copied.
"""
from __future__ import annotations

import io
import logging
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from scoring.serving.request_schema import MAX_BODY_BYTES, MAX_SINGLE_BODY_BYTES, TRAFFIC_HEADER, RequestError, problem
from scoring.settings import configure_logging
from serve.api import Reply, ScoreRequest, build_api, error_reply, too_large_reply

logger = logging.getLogger(__name__)
SPOOL_BYTES = 8 * 2**20
"""A chunked body (no Content-Length) beyond this goes to a temporary file while it is read."""


def is_batch(path: str) -> bool:
    return path.rstrip("/") == "/score/batch"


def too_large(path: str) -> Reply:
    if is_batch(path):
        return too_large_reply()
    return error_reply(RequestError(413, [problem("body", f"larger than {MAX_SINGLE_BODY_BYTES} bytes; one applicant "
                                                          "is a few kB (use /score/batch for many)")]))


def declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


def spill(buffer: io.BytesIO) -> BinaryIO:
    """A temporary file holding what `buffer` held (a chunked body grown past SPOOL_BYTES)."""
    spooled = tempfile.TemporaryFile()  # noqa: SIM115 - closed by read_body
    spooled.write(buffer.getbuffer())
    buffer.close()
    return spooled


def contents(buffer: BinaryIO) -> bytes:
    """All of it, in one allocation (BytesIO hands over its own buffer; a file is read back at its size)."""
    if isinstance(buffer, io.BytesIO):
        return buffer.getvalue()
    buffer.seek(0)
    return buffer.read()


async def read_body(request: Request, cap: int) -> bytes | None:
    """The body, or None as soon as it is known to pass `cap` bytes (declared, or streamed that far). A declared
    length bounds the body (the HTTP server holds the client to it): in memory; a chunked one is spilled to a
    temporary file past SPOOL_BYTES."""
    declared = declared_length(request)
    if declared is not None and declared > cap:
        return None
    buffer: BinaryIO = io.BytesIO()
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                return None
            if declared is None and size > SPOOL_BYTES and isinstance(buffer, io.BytesIO):
                buffer = spill(buffer)
            buffer.write(chunk)
        return contents(buffer)
    finally:
        buffer.close()


@serve.deployment(name="CreditScoring", ray_actor_options={"num_cpus": 1}, max_ongoing_requests=64)
class CreditScoring:
    def __init__(self, project_root: str = ".", params: str = "params.yaml", registry: bool = True,
                 production_log: str | bool | None = None, batch_size: int = 16):
        configure_logging()
        self.api = build_api(Path(project_root), params, registry, production_log)
        self.batched = batch_size > 1
        if self.batched:
            self.score_together.set_max_batch_size(batch_size)

    async def __call__(self, request: Request) -> Response:
        path = request.url.path
        body = await read_body(request, MAX_BODY_BYTES if is_batch(path) else MAX_SINGLE_BODY_BYTES)
        if body is None:
            reply = too_large(path)
        elif self.batched and request.method == "POST" and path.rstrip("/") == "/score":
            reply = await self.score_together(ScoreRequest(body, request.url.query, request.headers.get(
                "content-type"), request.headers.get(TRAFFIC_HEADER)))
        else:
            reply = self.api.handle(request.method, path, body, request.headers.get("content-type"),
                                    request.url.query, request.headers.get("accept"),
                                    request.headers.get(TRAFFIC_HEADER))
        return Response(reply.body, status_code=reply.status, media_type=reply.media_type, headers=reply.headers)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.0)
    async def score_together(self, requests: list[ScoreRequest]) -> list[Reply]:
        """The `POST /score` requests waiting at this moment; no wait for more (a lone request goes at once)."""
        return self.api.score_requests(requests)


def build_app(args: dict[str, Any]) -> serve.Application:
    """The application for `serve run/deploy serve/config.yaml` and for serve/run.py."""
    return CreditScoring.bind(**args)
