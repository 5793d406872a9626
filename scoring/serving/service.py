"""The scoring service's graph, independent of the web server: validate, features, score, explain, decide, log.

`ScoringService.handle(method, path, body, ...)` takes the raw HTTP request and gives back a `Reply`; the Ray Serve
deployment (`serve/app.py`) and the plain-uvicorn baseline of the benchmark (`serve/baseline.py`) both call it, so
they serve the same code. No DataFrame is built for one applicant: validation is pydantic's (compiled), features and
scores are NumPy (`scoring.serving.engine`), answers are serialised by orjson.
"""
from __future__ import annotations

import io
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs

import numpy as np
import orjson
import pandas as pd
from pydantic import ValidationError

from scoring import features
from scoring.data import row_checks
from scoring.model import explain
from scoring.model.registry import ScoringModel, load_scoring_model
from scoring.serving import request_schema
from scoring.serving.engine import Scores, ScoringEngine
from scoring.serving.request_schema import RequestError, problem

logger = logging.getLogger(__name__)

JSON = "application/json"
MAX_BODY_BYTES = 256 * 1024 * 1024
"""Largest body accepted (a 100,000-applicant JSON batch is about 200 MB); larger ones get 413."""
MAX_SINGLE_BODY_BYTES = 1024 * 1024
DEFAULT_REASONS = 5
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/parquet", "application/x-parquet")
ARROW_TYPES = ("application/vnd.apache.arrow.stream",)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    media_type: str = JSON


def json_reply(payload: Any, status: int = 200) -> Reply:
    return Reply(status, orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY))


def internal_error_reply() -> Reply:
    """A bug must not take the service down: the caller logs it with its traceback, the client gets this 500."""
    return json_reply({"detail": [problem("server", "internal error (logged); the request was not scored")]}, 500)


class ProductionLog:
    """What the service saw and answered, for the drift stage: JSON lines for single requests, one Parquet file
    per batch. One file per process (replicas never share a file), appended line by line. The file is made at the
    first request: a service that answered nothing leaves nothing, so the drift stage has no reason to rerun."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"requests-{os.getpid()}.jsonl"
        self.lines: BinaryIO | None = None

    def single(self, applicant: dict[str, Any], probability: float, decision: str, version: str | None) -> None:
        record = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "model_version": version,
                  "applicant": applicant, "probability": probability, "decision": decision}
        if self.lines is None:
            self.lines = open(self.path, "ab", buffering=0)  # noqa: SIM115 - kept open while the service runs
        self.lines.write(orjson.dumps(record) + b"\n")

    def batch(self, frame: pd.DataFrame, scores: Scores, version: str | None) -> None:
        logged = frame.assign(probability=scores.probability,
                              decision=np.where(scores.refused, "refused", "granted"),
                              model_version=version, ts=datetime.now(UTC).isoformat(timespec="milliseconds"))
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        logged.to_parquet(self.directory / f"batch-{stamp}-{os.getpid()}.parquet", index=False)

    def close(self) -> None:
        if self.lines is not None:
            self.lines.close()


def json_friendly(column: np.ndarray) -> np.ndarray:
    """An object array of Python scalars (NumPy to Python, NaN and missing to None), converted in one call."""
    column = np.asarray(column)
    listed = column.astype(object)
    listed[pd.isna(column)] = None
    return listed


def picked_values(scores: Scores, rows: np.ndarray, top: np.ndarray) -> np.ndarray:
    """The value of each picked field (rows x k), gathered and converted field by field, not reason by reason."""
    values = np.empty(top.shape, dtype=object)
    for j in np.unique(top).tolist():
        at_row, at_rank = np.nonzero(top == j)
        values[at_row, at_rank] = json_friendly(np.asarray(scores.values[scores.fields[j]])[rows[at_row]])
    return values


def reasons_of(scores: Scores, rows: np.ndarray | range, k: int) -> list[list[dict[str, Any]]]:
    """The k fields that moved each applicant's score the most, in either direction, with a readable sentence."""
    if k <= 0:
        return [[] for _ in rows]
    rows = np.asarray(rows)
    contributions = scores.contributions[rows]
    k = min(k, contributions.shape[1])
    top = np.argpartition(-np.abs(contributions), k - 1, axis=1)[:, :k]
    picked = np.take_along_axis(contributions, top, axis=1)
    order = np.argsort(-np.abs(picked), axis=1)
    top, picked = np.take_along_axis(top, order, axis=1), np.take_along_axis(picked, order, axis=1)
    fields = np.asarray(scores.fields, dtype=object)[top].tolist()
    values = picked_values(scores, rows, top).tolist()
    return [[{"feature": f, "value": v, "contribution": r, "sentence": explain.describe(f, v, c)}
             for f, v, c, r in zip(f_row, v_row, c_row, r_row)]
            for f_row, v_row, c_row, r_row in zip(fields, values, picked.tolist(), np.round(picked, 5).tolist())]


class ScoringService:
    def __init__(self, scoring: ScoringModel, history: pd.DataFrame, log: ProductionLog | None = None,
                 info: dict[str, Any] | None = None):
        self.engine = ScoringEngine(scoring, history)
        self.scoring = scoring
        self.log = log
        self.info = {"name": "credit-scoring", "version": scoring.version, "source": scoring.source,
                     "alias": scoring.alias, "threshold": scoring.threshold, "model_family": scoring.model.model_name,
                     "metrics": scoring.metrics, "features": self.engine.columns, "fields": self.engine.fields,
                     **(info or {})}
        self.single = request_schema.applicant_adapter()
        self.batch_model = request_schema.batch_model()
        self.categorical = features.CATEGORICAL
        self.started = time.time()

    @classmethod
    def from_params(cls, params: dict[str, Any], root: Path = Path("."), prefer_registry: bool = True,
                    log_dir: Path | None = None) -> ScoringService:
        """The champion (or the pipeline's model), the featurize history lookup, the production log."""
        from scoring.config import paths_from

        cwd = Path.cwd()
        os.chdir(root)  # params hold paths relative to the project root
        try:
            scoring = load_scoring_model(params, prefer_registry=prefer_registry)
            history = pd.read_parquet(paths_from(params).features / "history.parquet")
        finally:
            os.chdir(cwd)
        log = ProductionLog(log_dir) if log_dir is not None else None
        logger.info("serving %s (version %s, threshold %.3f), %d applicants with history", scoring.source,
                    scoring.version, scoring.threshold, len(history))
        return cls(scoring, history, log)

    # ---- HTTP ---------------------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, body: bytes = b"", content_type: str | None = None,
               query: str = "") -> Reply:
        """Route one request; every refusal is a 4xx naming the field and the rule, never a 500."""
        try:
            route = (method.upper(), path.rstrip("/") or "/")
            if route == ("POST", "/score"):
                return json_reply(self.score_one(body, reasons_wanted(query)))
            if route == ("POST", "/score/batch"):
                return json_reply(self.score_batch(body, content_type, reasons_wanted(query)))
            if route == ("GET", "/health"):
                return json_reply({"status": "ok", "model_version": self.info["version"],
                                   "uptime_s": round(time.time() - self.started, 1)})
            if route == ("GET", "/model"):
                return json_reply(self.info)
            if route == ("GET", "/openapi.json"):
                return json_reply(request_schema.openapi())
            if route in (("GET", "/docs"), ("GET", "/")):
                return Reply(200, request_schema.docs_page().encode(), "text/html; charset=utf-8")
            known = {"/score", "/score/batch", "/health", "/model", "/openapi.json", "/docs", "/"}
            if route[1] in known:
                return json_reply({"detail": [problem("method", f"{method} is not allowed on {path}")]}, 405)
            return json_reply({"detail": [problem("path", f"no such endpoint {path}; see /docs")]}, 404)
        except RequestError as error:
            return json_reply(error.body(), error.status)
        except Exception:
            logger.exception("internal error on %s %s", method, path)
            return internal_error_reply()

    # ---- one applicant ------------------------------------------------------------------------------------------
    def score_one(self, body: bytes, k: int = DEFAULT_REASONS) -> dict[str, Any]:
        return self.score_applicants([self.parse_one(body)], [k])[0]

    def parse_one(self, body: bytes) -> dict[str, Any]:
        """One applicant's JSON body, every rule of the contract checked (413/422 otherwise)."""
        if len(body) > MAX_SINGLE_BODY_BYTES:
            raise RequestError(413, [problem("body", f"larger than {MAX_SINGLE_BODY_BYTES} bytes; one applicant "
                                                     "is a few kB (use /score/batch for many)")])
        try:
            return self.single.validate_json(body).__dict__
        except ValidationError as error:
            raise RequestError(422, request_schema.problems_from(error)) from None

    def score_applicants(self, applicants: list[dict[str, Any]], ks: list[int]) -> list[dict[str, Any]]:
        """Validated applicants of `POST /score` requests, scored in one engine call (one for a single request,
        several when Ray Serve batches concurrent ones); `ks[i]` reasons for the i-th."""
        known = np.array([a["SK_ID_CURR"] is not None for a in applicants])
        ids = np.array([int(a["SK_ID_CURR"]) if ok else -1 for a, ok in zip(applicants, known)])
        columns = {name: [a[name] for a in applicants] for name in features.APPLICATION_INPUTS}
        scores = self.engine.score(columns, ids, explain_scores=max(ks) > 0)
        reasons = reasons_of(scores, range(len(applicants)), max(ks))  # top-k of each is a prefix of its top-max
        results = self.results(scores, ids, known, [r[:k] for r, k in zip(reasons, ks)])
        if self.log is not None:
            for applicant, result in zip(applicants, results):
                self.log.single(applicant, result["probability"], result["decision"], self.info["version"])
        return results

    def score_requests(self, requests: list[tuple[bytes, str]]) -> list[Reply]:
        """Several `POST /score` requests (body, query) answered together: each is validated on its own and gets
        the reply `handle` would give it alone; the valid ones share one engine call."""
        replies: list[Reply | None] = [None] * len(requests)
        valid: list[tuple[int, dict[str, Any], int]] = []
        for index, (body, query) in enumerate(requests):
            try:
                valid.append((index, self.parse_one(body), reasons_wanted(query)))
            except RequestError as error:
                replies[index] = json_reply(error.body(), error.status)
        if valid:
            try:
                results = [json_reply(r) for r in self.score_applicants([a for _, a, _ in valid],
                                                                        [k for _, _, k in valid])]
            except Exception:
                logger.exception("internal error on POST /score (%d requests together)", len(valid))
                results = [internal_error_reply()] * len(valid)
            for (index, _, _), reply in zip(valid, results):
                replies[index] = reply
        return replies

    def results(self, scores: Scores, ids: np.ndarray, known: np.ndarray, reasons: list[list[dict[str, Any]]]
                ) -> list[dict[str, Any]]:
        """One answer per scored row, each column converted once (a dict per row is all that is left)."""
        identifiers = [int(i) if ok else None for i, ok in zip(ids.tolist(), known.tolist())]
        found = (known & self.engine.history.found(np.where(known, ids, -1).astype("int64"))).tolist()
        decisions = np.where(scores.refused, "refused", "granted").tolist()
        threshold, version = self.engine.threshold, self.info["version"]
        return [{"SK_ID_CURR": i, "probability": p, "decision": d, "threshold": threshold, "model_version": version,
                 "history_found": f, "reasons": r}
                for i, p, d, f, r in zip(identifiers, np.round(scores.probability, 6).tolist(), decisions, found,
                                         reasons)]

    # ---- many applicants ----------------------------------------------------------------------------------------
    def score_batch(self, body: bytes, content_type: str | None, k: int = DEFAULT_REASONS) -> dict[str, Any]:
        if len(body) > MAX_BODY_BYTES:
            raise RequestError(413, [problem("body", f"larger than {MAX_BODY_BYTES // 2**20} MiB; split the batch")])
        kind = (content_type or JSON).split(";")[0].strip().lower()
        frame = self.batch_frame(body, kind)
        if len(frame) > request_schema.MAX_BATCH:
            raise RequestError(413, [problem("applicants", f"{len(frame):,} applicants; at most "
                                                           f"{request_schema.MAX_BATCH:,} per request")])
        ids = frame["SK_ID_CURR"].to_numpy(dtype="float64")
        known = ~np.isnan(ids)
        columns = {name: frame[name].to_numpy() for name in features.APPLICATION_INPUTS}
        scores = self.engine.score(columns, np.where(known, ids, -1).astype("int64"), explain_scores=k > 0)
        results = self.results(scores, ids, known, reasons_of(scores, np.arange(len(frame)), k))
        if self.log is not None:
            self.log.batch(frame, scores, self.info["version"])
        return {"count": len(results), "results": results}

    def batch_frame(self, body: bytes, kind: str) -> pd.DataFrame:
        """The applicants of a batch as a table, every rule of the contract checked; 422 lists every problem."""
        if kind in PARQUET_TYPES or kind in ARROW_TYPES:
            return self.binary_frame(body, kind)
        if kind != JSON:
            raise RequestError(422, [problem("content-type", f"{kind!r} is not accepted; send {JSON}, "
                                                             f"{PARQUET_TYPES[0]} or {ARROW_TYPES[0]}")])
        try:
            batch = self.batch_model.model_validate_json(body)
        except ValidationError as error:
            problems = request_schema.problems_from(error, batch=True)
            too_many = any(p["field"] == "applicants" and "at most" in p["rule"] for p in problems)
            raise RequestError(413 if too_many else 422, problems[:1000]) from None
        names = list(self.batch_model.model_fields["applicants"].annotation.__args__[0].model_fields)
        rows = [applicant.__dict__ for applicant in batch.applicants]
        return pd.DataFrame.from_records(rows, columns=names)

    def binary_frame(self, body: bytes, kind: str) -> pd.DataFrame:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(io.BytesIO(body)) if kind in PARQUET_TYPES else pa.ipc.open_stream(body).read_all()
        except Exception as error:  # any decoding failure is the client's malformed body
            raise RequestError(422, [problem("body", f"not a readable {kind} file: {error}")]) from None
        frame = table.to_pandas()
        expected = request_schema.applicant_model().model_fields
        extra = [name for name in frame.columns if name not in expected]
        if extra:
            raise RequestError(422, [problem(name, "unknown column (not in the data contract's application "
                                                   "columns)") for name in extra])
        if len(frame) > request_schema.MAX_BATCH:
            raise RequestError(413, [problem("applicants", f"{len(frame):,} rows; at most "
                                                           f"{request_schema.MAX_BATCH:,} per request")])
        if len(frame) == 0:
            raise RequestError(422, [problem("applicants", "the batch is empty")])
        required = [name for name, field in expected.items() if field.is_required()]
        missing = [name for name in required if name not in frame.columns]
        if missing:
            raise RequestError(422, [problem(name, "required column is missing") for name in missing])
        for name in expected:
            if name not in frame.columns:
                frame[name] = None
        checks = frame.drop(columns="SK_ID_CURR").assign(SK_ID_CURR=frame["SK_ID_CURR"])
        problems = row_checks.row_problems(checks, request_schema.APPLICANT_TABLE)
        problems = problems[~((problems["column"] == "SK_ID_CURR") & (problems["rule"] == "must not be missing"))]
        if len(problems):
            raise RequestError(422, [problem(r.column, r.rule, r.value, int(r.row))
                                     for r in problems.head(1000).itertuples()])
        return frame


def reasons_wanted(query: str) -> int:
    """`?reasons=k` (0 to 20); anything else is a 422 naming the parameter."""
    if not query:
        return DEFAULT_REASONS
    values = parse_qs(query).get("reasons")
    if not values:
        return DEFAULT_REASONS
    try:
        k = int(values[0])
    except ValueError:
        k = -1
    if not 0 <= k <= 20:
        raise RequestError(422, [problem("reasons", "query parameter must be an integer from 0 to 20", values[0])])
    return k

