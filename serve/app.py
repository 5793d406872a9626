"""The Ray Serve application: one plain `__call__` deployment around `scoring.serving.service.ScoringService`.

The whole graph (validate -> features -> score -> explain -> decide -> log: `serve/api.py` around
`scoring.serving.service`) runs in one replica: it costs about two milliseconds, of the order of one hop between
deployments, so splitting it would only add latency (bench/serve.py).
Concurrent `POST /score` requests are scored together (`@serve.batch`, up to `batch_size`, no added wait): each is
validated and answered on its own, but the features, the model and its SHAP values run once for all of them, so
NumPy's and XGBoost's per-call costs are paid once per batch instead of once per request.
No FastAPI ingress: it measured 5-10x slower here than a plain deployment (../shared/STACK.md); the OpenAPI document
and the docs page are served by the service itself. `build_app` is the Serve config's import path (serve/config.yaml).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from scoring.serving.request_schema import MAX_BODY_BYTES
from scoring.settings import configure_logging
from serve.api import Reply, build_api, too_large_reply

logger = logging.getLogger(__name__)


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
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            reply = too_large_reply()
        elif self.batched and request.method == "POST" and request.url.path.rstrip("/") == "/score":
            reply = await self.score_together((await request.body(), request.url.query))
        else:
            body = await request.body()
            reply = self.api.handle(request.method, request.url.path, body, request.headers.get("content-type"),
                                    request.url.query, request.headers.get("accept"))
        return Response(reply.body, status_code=reply.status, media_type=reply.media_type)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.0)
    async def score_together(self, requests: list[tuple[bytes, str]]) -> list[Reply]:
        """The `POST /score` requests waiting at this moment; no wait for more (a lone request goes at once)."""
        return self.api.score_requests(requests)


def build_app(args: dict[str, Any]) -> serve.Application:
    """The application for `serve run/deploy serve/config.yaml` and for serve/run.py."""
    return CreditScoring.bind(**args)
