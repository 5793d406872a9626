"""An OpenAPI-driven fuzzer against the live Ray Serve service: schemathesis (its CLI, in a process of its own)
generates requests from /openapi.json, valid and invalid ones (coverage and fuzzing phases, every check: no server
error, statuses, content types, headers and bodies as documented, valid data accepted, invalid data refused, 405
with Allow for other methods), all marked `X-Traffic: test`. Zero failures and zero 5xx: the document states what
the service does, and bad input never breaks it; and none of it lands in the production traffic monitoring reads.

This module is also the fuzzer's hooks module (SCHEMATHESIS_HOOKS): see `map_body`.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from scoring.monitoring.production_log import read_production_log
from scoring.serving.request_schema import TRAFFIC_HEADER

from ..conftest import REPO

pytestmark = pytest.mark.integration
logger = logging.getLogger(__name__)
EXAMPLES = 100
"""Fuzzed cases per operation (besides the coverage phase's): about 3,000 requests, a minute or two on 2 cores."""
SEED = 20261203

if os.environ.get("SCHEMATHESIS_HOOKS") == __name__:  # loaded by the fuzzer, not by pytest
    import schemathesis

    @schemathesis.hook
    def map_body(context: Any, body: Any) -> Any:
        """An SK_ID_CURR given twice in a batch is refused (422), a rule JSON Schema cannot state (the document
        says it in words): a repeated one is dropped from generated batches (the field is optional), so that
        schema-valid batches are valid and invalid ones stay invalid."""
        operation = getattr(context, "operation", None)
        if getattr(operation, "path", None) != "/score/batch" or not isinstance(body, dict):
            return body
        seen = set()
        for applicant in body.get("applicants") if isinstance(body.get("applicants"), list) else []:
            key = applicant.get("SK_ID_CURR") if isinstance(applicant, dict) else None
            if isinstance(key, int | float) and not isinstance(key, bool):
                if key in seen:
                    applicant["SK_ID_CURR"] = None
                seen.add(key)
        return body


def responses(ndjson: Path) -> Counter:
    """(method, path, generation mode, status) of every request the fuzzer sent, from its NDJSON events."""
    seen: Counter = Counter()
    for line in ndjson.read_text().splitlines():
        event = json.loads(line).get("ScenarioFinished")
        if event is None:
            continue
        recorder = event["recorder"]
        for case_id, interaction in recorder.get("interactions", {}).items():
            case = recorder["cases"][case_id]["value"]
            mode = (case.get("meta") or {}).get("generation", {}).get("mode")
            status = (interaction.get("response") or {}).get("status_code")
            seen[(case["method"], case["path"], mode, status)] += 1
    return seen


def run_fuzzer(url: str, out: Path) -> subprocess.CompletedProcess:
    fuzzer = Path(sys.executable).parent / "schemathesis"
    assert fuzzer.exists(), f"{fuzzer} not found: schemathesis is a development dependency (pyproject.toml)"
    command = [str(fuzzer), "run", f"{url}/openapi.json",
               "--checks", "all", "--mode", "all", "--max-examples", str(EXAMPLES), "--seed", str(SEED),
               "--header", f"{TRAFFIC_HEADER}: test", "--workers", "1", "--request-timeout", "60",
               "--report", "json,ndjson", "--report-dir", str(out)]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": __name__, "PYTHONPATH": str(REPO),
           "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def test_an_openapi_fuzzer_finds_no_server_error_and_no_schema_violation(live_service, tmp_path):
    before = len(read_production_log(live_service.log_dir).applicants)
    done = run_fuzzer(live_service.url, tmp_path)
    report = json.loads(next(tmp_path.glob("*.json")).read_text())
    seen = responses(next(tmp_path.glob("*.ndjson")))
    server_errors = {key: n for key, n in seen.items() if key[3] is None or key[3] >= 500}
    statuses: Counter = Counter()
    for (_, _, _, status), n in seen.items():
        statuses[status] += n
    logger.info("fuzzer: %d requests, statuses %s, %d failure(s)", sum(seen.values()), dict(statuses),
                len(report["failures"]))
    assert done.returncode == 0 and report["failures"] == [] and report["test_cases"]["with_failures"] == 0, (
        done.stdout[-6000:] + done.stderr[-2000:])
    assert server_errors == {}
    assert sum(seen.values()) > 1000 and {200, 405, 415, 422} <= set(statuses), statuses
    assert {("POST", "/score", "positive", 200), ("POST", "/score/batch", "positive", 200)} <= set(seen)
    assert len(read_production_log(live_service.log_dir).applicants) == before  # all of it was test traffic
