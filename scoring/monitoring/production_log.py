"""The scoring service's production log: written by the service (`ProductionLog`), read back by the drift stage.

One folder (`paths.production`), one file per service process: JSON lines for single requests, one object per
scored applicant, `{"ts": ISO time, "model_version": "5", "applicant": {application fields, SK_ID_CURR may be null},
"probability": 0.12, "decision": "granted" | "refused"}`; and Parquet files for batches, the batch's application
fields plus the same four columns.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson
import pandas as pd

from scoring import contract
from scoring.serving.engine import Scores
from scoring.serving.traffic import TRAFFIC

logger = logging.getLogger(__name__)
LOG_FIELDS = ("ts", "model_version", "probability", "decision", "traffic")
APPLICATION = contract.table("application_test")


class ProductionLog:
    """What the service saw and answered: JSON lines for single requests, one Parquet file per batch. One file per
    process (replicas never share a file), appended line by line. The file is made at the first request: a service
    that answered nothing leaves nothing, so the drift stage has no reason to rerun."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"requests-{os.getpid()}.jsonl"
        self.lines: BinaryIO | None = None

    def single(self, applicant: dict[str, Any], probability: float, decision: str, version: str | None,
               traffic: str = TRAFFIC[0]) -> None:
        record = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "model_version": version,
                  "applicant": applicant, "probability": probability, "decision": decision, "traffic": traffic}
        if self.lines is None:
            self.lines = open(self.path, "ab", buffering=0)  # noqa: SIM115 - kept open while the service runs
        self.lines.write(orjson.dumps(record) + b"\n")

    def batch(self, frame: pd.DataFrame, scores: Scores, version: str | None, traffic: str = TRAFFIC[0]) -> None:
        logged = frame.assign(probability=scores.probability, decision=scores.decisions, model_version=version,
                              ts=datetime.now(UTC).isoformat(timespec="milliseconds"), traffic=traffic)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        logged.to_parquet(self.directory / f"batch-{stamp}-{os.getpid()}.parquet", index=False)

    def close(self) -> None:
        if self.lines is not None:
            self.lines.close()


@dataclass(frozen=True)
class LoggedApplicants:
    applicants: pd.DataFrame
    """Contract application columns plus ts, model_version, probability and decision, one row per scored applicant."""
    files: int
    skipped_lines: int


def read_log_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Scored applicants of one JSON-lines file; a line that is not one (a write cut short) is skipped and counted."""
    records, skipped = [], 0
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                applicant = entry["applicant"]
                if not isinstance(applicant, dict):
                    raise TypeError(f"'applicant' is a {type(applicant).__name__}, not an object")
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                skipped += 1
                logger.warning("%s:%d: not a scored applicant (%s): skipped", path, number, error)
                continue
            records.append({**applicant, **{k: entry.get(k) for k in LOG_FIELDS}})
    return records, skipped


def read_production_log(directory: Path) -> LoggedApplicants:
    """What the scoring service logged in `directory`: JSON lines (`*.jsonl`, one scored applicant per line:
    {"ts", "model_version", "applicant": {application fields}, "probability", "decision"}) and batch files
    (`*.parquet`: the batch's application fields plus the same four columns). Absent or empty: no rows."""
    columns = [*APPLICATION.names, *LOG_FIELDS]
    frames, skipped = [], 0
    paths = sorted(directory.glob("*.jsonl")) + sorted(directory.glob("*.parquet")) if directory.is_dir() else []
    for path in paths:
        if path.suffix == ".jsonl":
            records, bad = read_log_lines(path)
            skipped += bad
            frames.append(pd.DataFrame.from_records(records).reindex(columns=columns))
        else:
            frames.append(pd.read_parquet(path).reindex(columns=columns))
    frames = [f for f in frames if len(f)]
    applicants = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    production = applicants["traffic"].isna() | (applicants["traffic"] == TRAFFIC[0])  # older logs: production
    logger.info("production log %s: %d scored applicants in %d file(s) (%d of test or preview traffic left out), "
                "%d line(s) skipped", directory, int(production.sum()), len(paths), int((~production).sum()), skipped)
    return LoggedApplicants(applicants[production].reset_index(drop=True), len(paths), skipped)


def _share(value: float) -> float | None:
    return round(float(value), 4) if np.isfinite(value) else None


def production_details(log: LoggedApplicants) -> dict[str, Any]:
    """What the service itself said: files, skipped lines, model versions, logged probabilities and decisions."""
    frame = log.applicants
    logged = pd.to_numeric(frame["probability"], errors="coerce")
    timestamps = frame["ts"].dropna().astype(str)
    return {"files": log.files, "skipped_lines": log.skipped_lines,
            "model_versions": sorted({str(v) for v in frame["model_version"].dropna()}),
            "first_ts": timestamps.min() if len(timestamps) else None,
            "last_ts": timestamps.max() if len(timestamps) else None,
            "mean_probability_logged": _share(logged.mean()) if logged.notna().any() else None,
            "refused_share": _share((frame["decision"] == "refused").mean())}
