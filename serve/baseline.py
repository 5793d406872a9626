"""The benchmark's baseline: the same `ScoringService` behind plain uvicorn (one worker, raw ASGI, no framework).

    python -m serve.baseline --port 8001 [--pipeline-model]

Not the product (Ray Serve is): bench/serve.py runs it to measure what Ray Serve costs on top of the graph itself.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from scoring.serving import service as scoring_service


class ScoringASGI:
    def __init__(self, service: scoring_service.ScoringService):
        self.service = service

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").decode() or None
        reply = self.service.handle(scope["method"], scope["path"], b"".join(chunks), content_type,
                                    scope.get("query_string", b"").decode())
        await send({"type": "http.response.start", "status": reply.status,
                    "headers": [(b"content-type", reply.media_type.encode())]})
        await send({"type": "http.response.body", "body": reply.body})


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    from scoring.config import configure_logging, load_params

    configure_logging()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--pipeline-model", action="store_true")
    parser.add_argument("--production-log", type=Path)
    ns = parser.parse_args(argv)
    service = scoring_service.ScoringService.from_params(load_params(), prefer_registry=not ns.pipeline_model,
                                                         log_dir=ns.production_log)
    uvicorn.run(ScoringASGI(service), host="127.0.0.1", port=ns.port, access_log=False, log_level="warning",
                loop="uvloop", http="httptools")


if __name__ == "__main__":
    main()
