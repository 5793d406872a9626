"""The benchmark's baseline: the same `ScoringService` behind plain uvicorn (one worker, raw ASGI, no framework).

    python -m serve.baseline --port 8001 [--pipeline-model]

Not the product (Ray Serve is): bench/serve.py runs it to measure what Ray Serve costs on top of the graph itself.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from scoring.settings import configure_logging
from serve.api import ScoringApi, build_api


class ScoringASGI:
    def __init__(self, api: ScoringApi):
        self.api = api

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
        accept = headers.get(b"accept", b"").decode() or None
        reply = self.api.handle(scope["method"], scope["path"], b"".join(chunks), content_type,
                                scope.get("query_string", b"").decode(), accept)
        await send({"type": "http.response.start", "status": reply.status,
                    "headers": [(b"content-type", reply.media_type.encode()),
                                *((name.encode(), value.encode()) for name, value in reply.headers.items())]})
        await send({"type": "http.response.body", "body": reply.body})


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    configure_logging()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--pipeline-model", action="store_true")
    parser.add_argument("--production-log", type=Path)
    ns = parser.parse_args(argv)
    api = build_api(Path("."), registry=not ns.pipeline_model,
                    production_log=str(ns.production_log) if ns.production_log else False)
    uvicorn.run(ScoringASGI(api), host="127.0.0.1", port=ns.port, access_log=False, log_level="warning",
                loop="uvloop", http="httptools")


if __name__ == "__main__":
    main()
