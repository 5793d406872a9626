"""The scoring API's HTTP layer: routes, query parameters, content negotiation and status codes, around the domain's
`ScoringService` (validate, score, answer, log).

`ScoringApi.handle(method, path, body, content_type, query, accept, traffic)` turns one raw request into a `Reply`
(status, body, media type, headers); the Ray Serve deployment (`serve/app.py`) and the benchmark's plain-uvicorn
baseline (`serve/baseline.py`) both call it. Every refusal is a 4xx naming the field and the rule (404, 405 with
`Allow`, 413, 415, 422); a bug is a logged 500 that says the request was not scored. Both POST routes take JSON (no
Content-Type: JSON), `/score/batch` also Parquet and Arrow streams; any other Content-Type is a 415. `?reasons=k` is
ASCII digits, given once; the `X-Traffic` header (production, test, preview) says what the request is, for the log.
`POST /score/batch` answers JSON by default, or a table (Arrow stream or Parquet) when the client's Accept asks for
one: the answers then go out as columns, never as one Python object per applicant.
"""
from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs

import orjson

from scoring.monitoring.production_log import ProductionLog
from scoring.serving.bodies import media_type, unsupported_type
from scoring.serving.request_schema import (
    ARROW_TYPES,
    JSON,
    MAX_BODY_BYTES,
    PARQUET_TYPES,
    TRAFFIC_HEADER,
    RequestError,
    problem,
)
from scoring.serving.service import Answers, ScoringService
from scoring.serving.traffic import TRAFFIC
from scoring.settings import ReasonSettings, load_settings
from serve import openapi

logger = logging.getLogger(__name__)
ROUTES = {"/score": "POST", "/score/batch": "POST", "/health": "GET", "/model": "GET", "/openapi.json": "GET",
          "/docs": "GET", "/": "GET"}


@dataclass(frozen=True)
class Reply:
    """One answer. `headers`: besides Content-Type (`media_type`), e.g. a 405's `Allow`."""

    status: int
    body: bytes
    media_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)


class ScoreRequest(NamedTuple):
    """One `POST /score` request as Ray Serve's batching hands it over (serve/app.py): the raw body and query, the
    Content-Type and `X-Traffic` headers (None when absent)."""

    body: bytes
    query: str
    content_type: str | None = None
    traffic: str | None = None


def json_reply(payload: Any, status: int = 200) -> Reply:
    return Reply(status, orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY))


def error_reply(error: RequestError) -> Reply:
    return Reply(error.status, orjson.dumps(error.body()), JSON, error.headers)


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
    log = ProductionLog(folder, settings.production_log) if folder is not None else None
    return ScoringApi(ScoringService.from_settings(settings, prefer_registry=registry, log=log), settings.reasons)


class ScoringApi:
    def __init__(self, service: ScoringService, reasons: ReasonSettings):
        self.service = service
        self.reasons = reasons
        self.started = time.time()

    def handle(self, method: str, path: str, body: bytes = b"", content_type: str | None = None,
               query: str = "", accept: str | None = None, traffic: str | None = None) -> Reply:
        """Route one request (`traffic`: the X-Traffic header)."""
        try:
            return self.route(method.upper(), path.rstrip("/") or "/", body, content_type, query, accept, traffic)
        except RequestError as error:
            return error_reply(error)
        except Exception:
            logger.exception("internal error on %s %s", method, path)
            return internal_error_reply()

    def route(self, method: str, path: str, body: bytes, content_type: str | None, query: str,
              accept: str | None, traffic: str | None) -> Reply:
        check_method(method, path)
        if path == "/score":
            applicant = self.service.parse_one(json_body(body, content_type))
            return json_reply(self.service.score_applicants([applicant], [self.reasons_wanted(query)],
                                                            [traffic_kind(traffic)])[0])
        if path == "/score/batch":
            return self.batch_reply(body, content_type, query, accept, traffic_kind(traffic))
        if path == "/health":
            return json_reply({"status": "ok", "model_version": self.service.info["version"],
                               "uptime_s": round(time.time() - self.started, 1)})
        if path == "/model":
            return json_reply(self.service.info)
        if path == "/openapi.json":
            return json_reply(openapi.openapi(self.reasons))
        return Reply(200, openapi.docs_page(self.reasons).encode(), "text/html; charset=utf-8")

    def batch_reply(self, body: bytes, content_type: str | None, query: str, accept: str | None,
                    traffic: str) -> Reply:
        if len(body) > MAX_BODY_BYTES:
            return too_large_reply()
        answer_type = table_answer_type(accept)
        answers = self.service.score_batch(body, content_type, self.reasons_wanted(query), traffic)
        if answer_type is None:
            records = answers.records()
            return json_reply({"count": len(records), "results": records})
        return Reply(200, table_bytes(answers, answer_type), answer_type)

    def score_requests(self, requests: list[ScoreRequest | tuple]) -> list[Reply]:
        """Several `POST /score` requests answered together (each a `ScoreRequest`, or a (body, query) tuple): each
        is checked on its own and gets the reply `handle` would give it alone; the valid ones share one engine
        call."""
        replies: list[Reply | None] = [None] * len(requests)
        valid: list[tuple[int, dict[str, Any], int, str]] = []
        for index, request in enumerate(requests):
            body, query, content_type, traffic = ScoreRequest(*request)
            try:
                valid.append((index, self.service.parse_one(json_body(body, content_type)), self.reasons_wanted(query),
                              traffic_kind(traffic)))
            except RequestError as error:
                replies[index] = error_reply(error)
        if valid:
            try:
                results = [json_reply(r) for r in self.service.score_applicants(
                    [v[1] for v in valid], [v[2] for v in valid], [v[3] for v in valid])]
            except Exception:
                logger.exception("internal error on POST /score (%d requests together)", len(valid))
                results = [internal_error_reply()] * len(valid)
            for (index, *_), reply in zip(valid, results):
                replies[index] = reply
        return replies

    def reasons_wanted(self, query: str) -> int:
        """`?reasons=k`: ASCII digits, 0 to the maximum of params.yaml, given at most once (absent: the default);
        anything else is a 422 naming the parameter."""
        values = parse_qs(query, keep_blank_values=True).get("reasons") if query else None
        if not values:
            return self.reasons.default
        text = values[0]
        if len(values) > 1:
            raise RequestError(422, [problem("reasons", "query parameter given more than once", "&".join(values))])
        if not (text.isascii() and text.isdigit() and len(text) <= 6 and int(text) <= self.reasons.max):
            raise RequestError(422, [problem("reasons", f"query parameter must be an integer from 0 to "
                                                        f"{self.reasons.max}, in ASCII digits", text)])
        return int(text)


def check_method(method: str, path: str) -> None:
    """404 for an unknown path, 405 (with `Allow`) for another method than the route's."""
    allowed = ROUTES.get(path)
    if allowed is None:
        raise RequestError(404, [problem("path", f"no such endpoint {path}; see /docs", path)])
    if method != allowed:
        raise RequestError(405, [problem("method", f"{method} is not allowed on {path}; allowed: {allowed}", method)],
                           {"Allow": allowed})


def json_body(body: bytes, content_type: str | None) -> bytes:
    """The body of `POST /score`: JSON, or no Content-Type at all (taken as JSON); anything else is a 415."""
    if media_type(content_type) != JSON:
        raise RequestError(415, [unsupported_type(media_type(content_type), (JSON,))])
    return body


def traffic_kind(header: str | None) -> str:
    """The X-Traffic header: one of TRAFFIC, production when absent; any other value is a 422."""
    if header is None:
        return TRAFFIC[0]
    kind = header.strip()
    if kind not in TRAFFIC:
        raise RequestError(422, [problem(TRAFFIC_HEADER, f"header must be one of: {', '.join(TRAFFIC)}", header)])
    return kind


def table_answer_type(accept: str | None) -> str | None:
    """The table media type the client accepts first (Arrow stream or Parquet), None for JSON."""
    for item in (accept or "").split(","):
        kind = item.split(";")[0].strip().lower()
        if kind in ARROW_TYPES or kind in PARQUET_TYPES:
            return kind
    return None


def table_bytes(answers: Answers, kind: str) -> bytes:
    """The answers as one Arrow stream (LZ4-compressed buffers, which every Arrow reader decodes) or Parquet file,
    column by column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(answers.columns())
    sink = io.BytesIO()
    if kind in PARQUET_TYPES:
        pq.write_table(table, sink)
    else:
        with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="lz4")) as writer:
            writer.write_table(table)
    return sink.getvalue()
