"""The scoring service's graph, independent of any web server: validate, score, answer, log.

`ScoringService` takes request bodies as bytes and gives answers as plain data, or raises `RequestError` (an HTTP
status and the problems, each naming the field and the rule). The HTTP layer (`serve/api.py`: routes, status codes,
the OpenAPI document) calls it from the Ray Serve deployment (`serve/app.py`) and from the benchmark's plain-uvicorn
baseline, so both serve the same code. Scoring is the engine's (`scoring.serving.engine`), the same as evaluate's,
drift's and batch scoring's. No DataFrame is built for one applicant: validation is pydantic's (compiled), features
and scores are NumPy.
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from pydantic import ValidationError

from scoring import features
from scoring.data import row_checks
from scoring.model.registry import ScoringModel, load_scoring_model
from scoring.serving import request_schema
from scoring.serving.engine import Scores, ScoringEngine
from scoring.serving.request_schema import (
    ARROW_TYPES,
    JSON,
    MAX_BATCH,
    MAX_SINGLE_BODY_BYTES,
    PARQUET_TYPES,
    RequestError,
    problem,
)
from scoring.serving.traffic import TRAFFIC
from scoring.settings import ReasonSettings, Settings

logger = logging.getLogger(__name__)


class DecisionLog(Protocol):
    """Where the service records what it scored (the production log of `scoring.monitoring`)."""

    def single(self, applicant: dict[str, Any], probability: float, decision: str, version: str | None,
               traffic: str) -> None: ...

    def batch(self, frame: pd.DataFrame, scores: Scores, version: str | None, traffic: str) -> None: ...


@dataclass(frozen=True)
class Answers:
    """The answers to n applicants, kept as the engine's columns until a form is asked for: records (JSON) or
    columns (a table: Arrow, Parquet)."""

    scores: Scores
    known: np.ndarray      # the applicant gave an SK_ID_CURR
    counts: list[int]      # reasons wanted, per applicant
    threshold: float
    version: str | None

    def records(self) -> list[dict[str, Any]]:
        """One dict per applicant, each column converted once."""
        s = self.scores
        identifiers = [int(i) if ok else None for i, ok in zip(s.ids.tolist(), self.known.tolist())]
        found = (self.known & s.history_found).tolist()
        reasons = s.reasons(max(self.counts, default=0)).records(self.counts)
        return [{"SK_ID_CURR": i, "probability": p, "decision": d, "threshold": self.threshold,
                 "model_version": self.version, "history_found": f, "reasons": r}
                for i, p, d, f, r in zip(identifiers, np.round(s.probability, 6).tolist(), s.decisions.tolist(),
                                         found, reasons)]

    def columns(self) -> dict[str, np.ndarray]:
        """The same answers as columns, the reasons as reason_<i>_* columns (same k for every applicant)."""
        s = self.scores
        return {"SK_ID_CURR": np.where(self.known, s.ids, -1), "probability": np.round(s.probability, 6),
                "decision": s.decisions, "threshold": np.full(len(s), self.threshold),
                "model_version": np.full(len(s), self.version, dtype=object),
                "history_found": self.known & s.history_found,
                **s.reasons(max(self.counts, default=0)).columns()}


class ScoringService:
    def __init__(self, scoring: ScoringModel, history: pd.DataFrame, reasons: ReasonSettings,
                 log: DecisionLog | None = None):
        self.engine = ScoringEngine(scoring.model, scoring.threshold, history)
        self.reason_counts = reasons
        self.log = log
        self.info = {"name": "credit-scoring", "version": scoring.version, "source": scoring.source,
                     "alias": scoring.alias, "threshold": scoring.threshold, "model_family": scoring.model.model_name,
                     "metrics": scoring.metrics, "features": self.engine.columns, "fields": self.engine.fields}
        self.single = request_schema.applicant_adapter()
        self.batch_model = request_schema.batch_model()

    @classmethod
    def from_settings(cls, settings: Settings, prefer_registry: bool = True,
                      log: DecisionLog | None = None) -> ScoringService:
        """The champion (or the pipeline's model) and the featurize history lookup."""
        scoring = load_scoring_model(settings, prefer_registry=prefer_registry)
        history = pd.read_parquet(settings.paths.history)
        logger.info("serving %s (version %s, threshold %.3f), %d applicants with history", scoring.source,
                    scoring.version, scoring.threshold, len(history))
        return cls(scoring, history, settings.reasons, log)

    # ---- one applicant ------------------------------------------------------------------------------------------
    def parse_one(self, body: bytes) -> dict[str, Any]:
        """One applicant's JSON body, every rule of the contract checked (413/422 otherwise)."""
        if len(body) > MAX_SINGLE_BODY_BYTES:
            raise RequestError(413, [problem("body", f"larger than {MAX_SINGLE_BODY_BYTES} bytes; one applicant "
                                                     "is a few kB (use /score/batch for many)")])
        try:
            return self.single.validate_json(body).__dict__
        except ValidationError as error:
            raise RequestError(422, request_schema.problems_from(error)) from None

    def score_applicants(self, applicants: list[dict[str, Any]], counts: list[int],
                         traffic: list[str] | None = None) -> list[dict[str, Any]]:
        """Validated applicants of `POST /score` requests, scored in one engine call (one for a single request,
        several when Ray Serve batches concurrent ones); `counts[i]` reasons for the i-th, `traffic[i]` its kind
        (production by default)."""
        known = np.array([a["SK_ID_CURR"] is not None for a in applicants])
        ids = np.array([int(a["SK_ID_CURR"]) if ok else -1 for a, ok in zip(applicants, known)])
        columns = {name: [a[name] for a in applicants] for name in features.APPLICATION_INPUTS}
        scores = self.engine.score(columns, ids, explain=max(counts) > 0)
        results = self.answers(scores, known, counts).records()
        if self.log is not None:
            kinds = traffic or [TRAFFIC[0]] * len(applicants)
            for applicant, result, kind in zip(applicants, results, kinds):
                self.log.single(applicant, result["probability"], result["decision"], self.info["version"], kind)
        return results

    def answers(self, scores: Scores, known: np.ndarray, counts: list[int]) -> Answers:
        return Answers(scores, known, counts, self.engine.threshold, self.info["version"])

    # ---- many applicants ----------------------------------------------------------------------------------------
    def score_batch(self, body: bytes, content_type: str | None, reasons: int, traffic: str = TRAFFIC[0]) -> Answers:
        """A batch body (JSON, Parquet or Arrow stream), every applicant checked, then scored in one engine call."""
        frame = self.batch_frame(body, media_type(content_type))
        ids = frame["SK_ID_CURR"].to_numpy(dtype="float64")
        known = ~np.isnan(ids)
        columns = {name: frame[name].to_numpy() for name in features.APPLICATION_INPUTS}
        scores = self.engine.score(columns, np.where(known, ids, -1).astype("int64"), explain=reasons > 0)
        if self.log is not None:
            self.log.batch(frame, scores, self.info["version"], traffic)
        return self.answers(scores, known, [reasons] * len(scores))

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
        names = list(request_schema.applicant_model().model_fields)
        rows = [applicant.__dict__ for applicant in batch.applicants]
        return pd.DataFrame.from_records(rows, columns=names)

    def binary_frame(self, body: bytes, kind: str) -> pd.DataFrame:
        frame = decode_table(body, kind)
        expected = request_schema.applicant_model().model_fields
        extra = [name for name in frame.columns if name not in expected]
        if extra:
            raise RequestError(422, [problem(name, "unknown column (not in the data contract's application "
                                                   "columns)") for name in extra])
        if len(frame) > MAX_BATCH:
            raise RequestError(413, [problem("applicants", f"{len(frame):,} rows; at most {MAX_BATCH:,} per "
                                                           "request")])
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


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, without parameters (JSON when absent)."""
    return (content_type or JSON).split(";")[0].strip().lower()


def decode_table(body: bytes, kind: str) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(body)) if kind in PARQUET_TYPES else pa.ipc.open_stream(body).read_all()
    except Exception as error:  # any decoding failure is the client's malformed body
        raise RequestError(422, [problem("body", f"not a readable {kind} file: {error}")]) from None
    return table.to_pandas()
