"""The scoring service's graph, independent of any web server: validate, score, answer, log.

`ScoringService` takes request bodies as bytes and gives answers as plain data, or raises `RequestError` (an HTTP
status and the problems, each naming the field and the rule). The HTTP layer (`serve/api.py`: routes, status codes,
the OpenAPI document) calls it from the Ray Serve deployment (`serve/app.py`) and from the benchmark's plain-uvicorn
baseline, so both serve the same code. Scoring is the engine's (`scoring.serving.engine`), the same as evaluate's,
drift's and batch scoring's. No DataFrame is built for one applicant: validation is pydantic's (compiled), features
and scores are NumPy.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from pydantic import ValidationError

from scoring import features
from scoring.model.registry import ScoringModel, load_scoring_model
from scoring.serving import request_schema
from scoring.serving.bodies import (
    WHOLE,
    batch_repeated_keys,
    binary_frame,
    check_batch_shape,
    media_type,
    repeated_ids,
    repeated_keys,
    too_many_values,
    unsupported_type,
    value_budget,
    whole_problems,
)
from scoring.serving.engine import Scores, ScoringEngine
from scoring.serving.request_schema import (
    BATCH_TYPES,
    JSON,
    MAX_BATCH,
    MAX_PROBLEMS,
    MAX_SINGLE_BODY_BYTES,
    JsonShape,
    RequestError,
    problem,
)
from scoring.serving.traffic import TRAFFIC
from scoring.settings import ReasonSettings, Settings

logger = logging.getLogger(__name__)


class DecisionLog(Protocol):
    """Where the service records what it scored (the production log of `scoring.monitoring`)."""

    def singles(self, applicants: list[dict[str, Any]], probabilities: list[float], decisions: list[str],
                version: str | None, traffic: list[str]) -> None: ...

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
        request_schema.json_shape(b"{}")  # compiles (or loads from numba's cache) the JSON pass now, not at a request

    @classmethod
    def from_settings(cls, settings: Settings, prefer_registry: bool = True,
                      log: DecisionLog | None = None) -> ScoringService:
        """The champion (or the pipeline's model) and its history lookup (the registered one, or featurize's)."""
        scoring = load_scoring_model(settings, prefer_registry=prefer_registry)
        history = pd.read_parquet(scoring.history or settings.paths.history)
        logger.info("serving %s (version %s, threshold %.3f), %d applicants with history", scoring.source,
                    scoring.version, scoring.threshold, len(history))
        return cls(scoring, history, settings.reasons, log)

    # ---- one applicant ------------------------------------------------------------------------------------------
    def parse_one(self, body: bytes) -> dict[str, Any]:
        """One applicant's JSON body, every rule of the contract checked, each field given once (413/422 otherwise)."""
        if len(body) > MAX_SINGLE_BODY_BYTES:
            raise RequestError(413, [problem("body", f"larger than {MAX_SINGLE_BODY_BYTES} bytes; one applicant "
                                                     "is a few kB (use /score/batch for many)")])
        shape = request_schema.json_shape(body, spans=False)
        if shape.tokens > value_budget(1):
            raise RequestError(422, [too_many_values(shape.tokens, 1)])
        try:
            applicant = self.single.validate_json(body)
        except ValidationError as error:
            raise RequestError(422, request_schema.problems_from(error)[:MAX_PROBLEMS]) from None
        if shape.top_keys != len(applicant.model_fields_set):
            raise RequestError(422, repeated_keys(body))
        values = applicant.__dict__
        if broken := [problem(name, WHOLE, value) for name in request_schema.whole_columns()
                      if (value := values[name]) is not None and not float(value).is_integer()]:
            raise RequestError(422, broken)
        return values

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
            self.log.singles(applicants, [r["probability"] for r in results], [r["decision"] for r in results],
                             self.info["version"], traffic or [TRAFFIC[0]] * len(applicants))
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
        """The applicants of a batch as a table, every rule of the contract checked, SK_ID_CURR unique in every
        format; 415 for another media type, 413 past the limits, 422 listing the problems (the first 1,000)."""
        if kind not in BATCH_TYPES:
            raise RequestError(415, [unsupported_type(kind, BATCH_TYPES)])
        if kind == JSON:  # pydantic's ranges are compiled; whole numbers are checked here, exactly
            frame = self.json_frame(body)
            problems = whole_problems(frame)
        else:  # the contract's row checks: the same rules as batch scoring's
            frame, problems = binary_frame(body, kind)
        problems += repeated_ids(frame["SK_ID_CURR"])
        problems.sort(key=lambda p: p.get("applicant", -1))
        if problems:
            raise RequestError(422, problems[:MAX_PROBLEMS])
        return frame

    def json_frame(self, body: bytes) -> pd.DataFrame:
        """A JSON batch: its shape measured first (413 past MAX_BATCH applicants without reading them), then pydantic,
        then each field given once per applicant."""
        objects = body.count(b"{") - 1
        if objects > MAX_BATCH:  # no string of the contract holds '{': each applicant is one '{' (see the tests)
            raise RequestError(413, [problem("applicants", f"{objects:,} JSON objects: at most {MAX_BATCH:,} "
                                                           "applicants per request (split the batch)")])
        shape = request_schema.json_shape(body, MAX_BATCH)
        check_batch_shape(shape)
        try:
            batch = self.batch_model.model_validate_json(body)
        except ValidationError as error:
            raise RequestError(422, self.batch_problems(body, shape, error)) from None
        given = np.array([len(applicant.model_fields_set) for applicant in batch.applicants])
        if shape.top_keys != 1 or not np.array_equal(shape.spans[:, 2], given):
            raise RequestError(422, batch_repeated_keys(body, shape, given))
        names = list(request_schema.applicant_model().model_fields)
        return pd.DataFrame.from_records([applicant.__dict__ for applicant in batch.applicants], columns=names)

    def batch_problems(self, body: bytes, shape: JsonShape, error: ValidationError) -> list[dict[str, Any]]:
        """Pydantic stopped at the first applicant in error (`fail_fast`): the others are checked one by one, from
        their bytes, until MAX_PROBLEMS problems are listed."""
        problems = request_schema.problems_from(error, batch=True)
        failed = [p["applicant"] for p in problems if "applicant" in p]
        if not failed or shape.top_keys != 1:
            return problems[:MAX_PROBLEMS]
        for index in range(failed[0] + 1, len(shape.spans)):
            if len(problems) >= MAX_PROBLEMS:
                break
            start, end, _ = shape.spans[index]
            try:
                self.single.validate_json(body[start:end])
            except ValidationError as more:
                problems += request_schema.problems_from(more, applicant=index)
        return problems[:MAX_PROBLEMS]
