"""serve/replay.py against the real Ray Serve service: every replayed applicant is scored and lands in the
production log, and the drifted replay carries the generator's shift (what the next drift stage will see)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring.monitoring.production_log import read_production_log
from scoring.ray_runtime import free_port
from scoring.synthetic.outcomes import replayed_applicants
from serve import replay

from ..conftest import REPO, SETTINGS

pytestmark = pytest.mark.integration
ROWS = 120


def logged_replay(log_dir, first_id: int, last_id: int):
    applicants = read_production_log(log_dir).applicants
    return applicants[applicants["SK_ID_CURR"].between(first_id, last_id)]


def test_replayed_traffic_is_scored_and_logged_with_its_drift(live_service):
    url, log_dir = live_service.url, live_service.log_dir
    before = len(read_production_log(log_dir).applicants)
    steady = replay.replay(url, ROWS, drift=False, clients=4, seed=11, params_path=REPO / "params.yaml",
                           progress=False, first_id=3_000_001)
    drifted = replay.replay(url, ROWS, drift=True, clients=4, seed=12, params_path=REPO / "params.yaml",
                            progress=False, first_id=3_100_001)
    for summary in (steady, drifted):
        assert (summary["sent"], summary["scored"], summary["failed"]) == (ROWS, ROWS, 0), summary
        assert 0 < summary["mean_probability"] < 1
    assert len(read_production_log(log_dir).applicants) == before + 2 * ROWS

    plain = logged_replay(log_dir, steady["first_id"], steady["last_id"])
    shifted = logged_replay(log_dir, drifted["first_id"], drifted["last_id"])
    assert len(plain) == len(shifted) == ROWS
    income_ratio = shifted["AMT_INCOME_TOTAL"].median() / plain["AMT_INCOME_TOTAL"].median()
    assert 1.15 < income_ratio < 1.6, income_ratio  # params.yaml: income_factor 1.35
    assert shifted["DAYS_BIRTH"].mean() > plain["DAYS_BIRTH"].mean() + 3 * 365  # six years younger on average
    assert shifted["EXT_SOURCE_2"].mean() < plain["EXT_SOURCE_2"].mean() - 0.05


def test_a_service_that_is_down_is_named():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SystemExit, match=f"the scoring service at {url} does not answer /health"):
        replay.replay(url, 5, drift=True, params_path=REPO / "params.yaml", progress=False)


def test_outcomes_are_those_of_the_replayed_applicants(tmp_path):
    """`--outcomes` with the replay's arguments: one outcome per replayed SK_ID_CURR, drawn from the applicants'
    true probability of default (the same on every run), shifted or not."""
    args = ["--outcomes", "--rows", "3000", "--seed", "11", "--first-id", "3000001",
            "--params", str(REPO / "params.yaml")]
    first = replay.main([*args, "--outcomes-dir", str(tmp_path / "a")])
    again = replay.main([*args, "--outcomes-dir", str(tmp_path / "b")])
    outcomes = pd.read_csv(first["outcomes"])
    assert outcomes["SK_ID_CURR"].tolist() == list(range(3_000_001, 3_003_001))
    assert outcomes.equals(pd.read_csv(again["outcomes"]))
    applicants = replayed_applicants(SETTINGS.data.synthetic, 3000, True, 11, 3_000_001)
    expected = applicants["TRUE_PD"].sum()
    assert abs(outcomes["TARGET"].sum() - expected) < 4 * np.sqrt(expected)  # Bernoulli draws of TRUE_PD
    sent = replay.replay_applicants(SETTINGS.data.synthetic, 3000, True, 11, 3_000_001)
    assert sent.equals(applicants.drop(columns="TRUE_PD"))  # what the service was sent
