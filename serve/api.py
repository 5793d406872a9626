"""The scoring API's HTTP layer: routes, query parameters, content negotiation and status codes, around the domain's
`ScoringService` (validate, score, answer, log).

`ScoringApi.handle(method, path, body, content_type, query, accept)` turns one raw request into a `Reply`; the Ray
Serve deployment (`serve/app.py`) and the benchmark's plain-uvicorn baseline (`serve/baseline.py`) both call it.
Every refusal is a 4xx naming the field and the rule; a bug is a logged 500 that says the request was not scored.
`POST /score/batch` answers JSON by default, or a table (Arrow stream or Parquet) when the client's Accept asks for
one: the answers then go out as columns, never as one Python object per applicant.
"""
from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson

from scoring.monitoring.production_log import ProductionLog
from scoring.serving.request_schema import ARROW_TYPES, JSON, MAX_BODY_BYTES, PARQUET_TYPES, RequestError, problem
from scoring.serving.service import Answers, ScoringService
from scoring.settings import ReasonSettings, load_settings
from serve import openapi

logger = logging.getLogger(__name__)
ROUTES = {"/score": "POST", "/score/batch": "POST", "/health": "GET", "/model": "GET", "/openapi.json": "GET",
          "/docs": "GET", "/": "GET"}


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    media_type: str = JSON


def json_reply(payload: Any, status: int = 200) -> Reply:
    return Reply(status, orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY))


def error_reply(error: RequestError) -> Reply:
    return json_reply(error.body(), error.status)


def internal_error_reply() -> Reply:
    """A bug must not take the service down: the caller logs it with its traceback, the client gets this 500."""
    return json_reply({"detail": [problem("server", "internal error (logged); the request was not scored")]}, 500)


def too_large_reply() -> Reply:
    return error_reply(RequestError(413, [problem("body", f"larger than {MAX_BODY_BYTES // 2**20} MiB; split the "
                                                          "batch")]))


def build_api(project_root: Path, params: str = "params.yaml", registry: bool = True,
              production_log: str | bool | None = None) -> ScoringApi:
    """The service of the project at `project_root`: the champion (or, without `registry`, the pipeline's model),
    the history lookup, and the production log where the drift stage reads it (`production_log` None: params.yaml
    `paths.production`; a folder; False: no log)."""
    root = Path(project_root).resolve()
    settings = load_settings(root / params).under(root)
    folder = settings.paths.production if production_log is None else (root / production_log if production_log
                                                                       else None)
    log = ProductionLog(folder) if folder is not None else None
    return ScoringApi(ScoringService.from_settings(settings, prefer_registry=registry, log=log), settings.reasons)


class ScoringApi:
    def __init__(self, service: ScoringService, reasons: ReasonSettings):
        self.service = service
        self.reasons = reasons
        self.started = time.time()

    def handle(self, method: str, path: str, body: bytes = b"", content_type: str | None = None,
               query: str = "", accept: str | None = None) -> Reply:
        """Route one request."""
        try:
            return self.route(method.upper(), path.rstrip("/") or "/", body, content_type, query, accept)
        except RequestError as error:
            return error_reply(error)
        except Exception:
            logger.exception("internal error on %s %s", method, path)
            return internal_error_reply()

    def route(self, method: str, path: str, body: bytes, content_type: str | None, query: str,
              accept: str | None) -> Reply:
        if ROUTES.get(path) is None:
            raise RequestError(404, [problem("path", f"no such endpoint {path}; see /docs")])
        if ROUTES[path] != method:
            raise RequestError(405, [problem("method", f"{method} is not allowed on {path}")])
        if path == "/score":
            applicant = self.service.parse_one(body)
            return json_reply(self.service.score_applicants([applicant], [self.reasons_wanted(query)])[0])
        if path == "/score/batch":
            return self.batch_reply(body, content_type, query, accept)
        if path == "/health":
            return json_reply({"status": "ok", "model_version": self.service.info["version"],
                               "uptime_s": round(time.time() - self.started, 1)})
        if path == "/model":
            return json_reply(self.service.info)
        if path == "/openapi.json":
            return json_reply(openapi.openapi(self.reasons))
        return Reply(200, openapi.docs_page(self.reasons).encode(), "text/html; charset=utf-8")

    def batch_reply(self, body: bytes, content_type: str | None, query: str, accept: str | None) -> Reply:
        if len(body) > MAX_BODY_BYTES:
            return too_large_reply()
        answer_type = table_answer_type(accept)
        answers = self.service.score_batch(body, content_type, self.reasons_wanted(query))
        if answer_type is None:
            records = answers.records()
            return json_reply({"count": len(records), "results": records})
        return Reply(200, table_bytes(answers, answer_type), answer_type)

    def score_requests(self, requests: list[tuple[bytes, str]]) -> list[Reply]:
        """Several `POST /score` requests (body, query) answered together: each is validated on its own and gets
        the reply `handle` would give it alone; the valid ones share one engine call."""
        replies: list[Reply | None] = [None] * len(requests)
        valid: list[tuple[int, dict[str, Any], int]] = []
        for index, (body, query) in enumerate(requests):
            try:
                valid.append((index, self.service.parse_one(body), self.reasons_wanted(query)))
            except RequestError as error:
                replies[index] = error_reply(error)
        if valid:
            try:
                results = [json_reply(r) for r in self.service.score_applicants([a for _, a, _ in valid],
                                                                                [k for _, _, k in valid])]
            except Exception:
                logger.exception("internal error on POST /score (%d requests together)", len(valid))
                results = [internal_error_reply()] * len(valid)
            for (index, _, _), reply in zip(valid, results):
                replies[index] = reply
        return replies

    def reasons_wanted(self, query: str) -> int:
        """`?reasons=k` (0 to the maximum of params.yaml); anything else is a 422 naming the parameter."""
        values = parse_qs(query).get("reasons") if query else None
        if not values:
            return self.reasons.default
        try:
            k = int(values[0])
        except ValueError:
            k = -1
        if not 0 <= k <= self.reasons.max:
            raise RequestError(422, [problem("reasons", f"query parameter must be an integer from 0 to "
                                                        f"{self.reasons.max}", values[0])])
        return k


def table_answer_type(accept: str | None) -> str | None:
    """The table media type the client accepts first (Arrow stream or Parquet), None for JSON."""
    for item in (accept or "").split(","):
        kind = item.split(";")[0].strip().lower()
        if kind in ARROW_TYPES or kind in PARQUET_TYPES:
            return kind
    return None


def table_bytes(answers: Answers, kind: str) -> bytes:
    """The answers as one Arrow stream or Parquet file, column by column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(answers.columns())
    sink = io.BytesIO()
    if kind in PARQUET_TYPES:
        pq.write_table(table, sink)
    else:
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    return sink.getvalue()
