"""Realised performance: outcome files are read whatever people drop, joined to the production log's last score of
each applicant, and the verdict follows the figures and their intervals (stable when the outcomes behave as at
training, degraded or retrain recommended when they do not, insufficient below the minimum)."""
from __future__ import annotations

import importlib
import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from app.monitoring import summary
from scoring.model import intervals
from scoring.monitoring import performance as perf
from scoring.monitoring import production_log as pl
from scoring.settings import ProductionLogSettings

from ..conftest import REPO, SETTINGS

P = replace(SETTINGS.performance, bootstrap=200, min_outcomes=300)
COST = SETTINGS.cost
THRESHOLD = 0.09


def population(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated probabilities (a credit-like spread) and outcomes drawn from them."""
    rng = np.random.default_rng(seed)
    probability = rng.beta(1.2, 12, n)
    return probability, (rng.random(n) < probability).astype("int8")


def frame_of(probability: np.ndarray, target: np.ndarray, periods: list[str] | None = None) -> pd.DataFrame:
    n = len(probability)
    return pd.DataFrame({perf.KEY: np.arange(n), "probability": probability, "refused": probability >= THRESHOLD,
                         perf.TARGET: target, "period": periods or ["2026-11-01"] * n})


@pytest.fixture(scope="module")
def training() -> dict:
    """The figures a model has at training on this population (a large sample of it)."""
    probability, target = population(200_000, 0)
    refused = probability >= THRESHOLD
    cost = np.where(refused, (1 - target) * COST.fp, target * COST.fn).mean()
    return {"auc": intervals.auc(target, probability), "business_cost": float(cost), "threshold": THRESHOLD,
            "approval_rate": float((~refused).mean())}


def test_outcomes_from_the_same_population_are_stable(training):
    probability, target = population(5_000, 1)
    report = perf.build_report(frame_of(probability, target), training, COST, P, {})
    assert report["verdict"] == "stable", report["reasons"]
    assert report["overall"]["auc"]["low"] <= training["auc"] <= report["overall"]["auc"]["high"]
    assert report["overall"]["calibration"]["low"] <= 1 <= report["overall"]["calibration"]["high"]


def test_a_model_that_no_longer_ranks_is_retrain_recommended(training):
    probability, _ = population(5_000, 2)
    rng = np.random.default_rng(3)
    target = (rng.random(len(probability)) < rng.permutation(probability)).astype("int8")  # risk unrelated to score
    report = perf.build_report(frame_of(probability, target), training, COST, P, {})
    assert report["verdict"] == "retrain_recommended"
    assert report["overall"]["auc"]["high"] < training["auc"] - P.auc_tolerance
    assert any(reason.startswith("AUC") for reason in report["reasons"])


@pytest.mark.parametrize(("factor", "verdict"), [(1.12, "degraded"), (1.6, "retrain_recommended")])
def test_underestimated_risk_is_a_calibration_finding(training, factor, verdict):
    """Ranking intact, defaults `factor` times the predicted rate: past the tolerance (0.2) a retrain, within it
    degraded (the interval excludes 1)."""
    probability, _ = population(20_000, 4)
    target = (np.random.default_rng(5).random(len(probability)) < probability * factor).astype("int8")
    figures = perf.measure(frame_of(probability, target), COST, P)
    found, reasons = perf.judged(figures, {**training, "business_cost": None}, P)
    assert figures["calibration"]["low"] > 1
    assert found == verdict and [r.split(" ")[0] for r in reasons] == ["observed"]


def test_too_few_outcomes_give_no_verdict(training):
    probability, target = population(P.min_outcomes - 1, 6)
    report = perf.build_report(frame_of(probability, target), training, COST, P, {})
    assert report["verdict"] == perf.INSUFFICIENT and "auc" not in report["overall"]
    assert report["overall"]["n"] == P.min_outcomes - 1


def test_a_decay_in_the_latest_period_is_not_hidden_by_older_ones(training):
    good_p, good_y = population(6_000, 7)
    bad_p, _ = population(1_500, 8)
    bad_y = (np.random.default_rng(9).random(len(bad_p)) < np.random.default_rng(10).permutation(bad_p))
    frame = frame_of(np.r_[good_p, bad_p], np.r_[good_y, bad_y.astype("int8")],
                     ["2026-09-01"] * len(good_p) + ["2026-10-01"] * len(bad_p))
    report = perf.build_report(frame, training, COST, P, {})
    assert [row["verdict"] for row in report["periods"]] == ["stable", "retrain_recommended"]
    assert report["verdict"] == "retrain_recommended" and report["reasons"][0].startswith("period 2026-10-01")


def test_outcome_files_are_read_whatever_people_drop(tmp_path):
    (tmp_path / "a.csv").write_text("SK_ID_CURR,TARGET\n1,0\n2,1\n3,2\nx,1\n4.5,0\n,1\n5,1\n")
    pd.DataFrame({"SK_ID_CURR": [2, 6], "TARGET": [0, 1]}).to_parquet(tmp_path / "b.parquet")
    (tmp_path / "c.csv").write_text("id,outcome\n7,1\n")
    (tmp_path / "notes.txt").write_text("not an outcome file")
    outcomes = perf.read_outcomes(tmp_path)
    assert outcomes.frame.set_index("SK_ID_CURR")["TARGET"].to_dict() == {1: 0, 2: 0, 5: 1, 6: 1}  # b wins for 2
    assert outcomes.files == 3 and outcomes.bad_rows == 4 + 1
    assert perf.read_outcomes(tmp_path / "absent").frame.empty


def test_each_applicant_is_joined_on_its_last_production_score_by_period(tmp_path):
    now = [pd.Timestamp("2026-10-31T23:59:00Z").timestamp()]
    log = pl.ProductionLog(tmp_path, ProductionLogSettings(64, 60, 30, 20), clock=lambda: now[0])
    for probability, day, traffic in ((0.2, "2026-10-31T23:59:00Z", "production"),
                                      (0.6, "2026-11-02T10:00:00Z", "production"),
                                      (0.9, "2026-11-03T10:00:00Z", "test")):
        now[0] = pd.Timestamp(day).timestamp()
        scores = SimpleNamespace(probability=np.full(2, probability),
                                 decisions=np.array(["refused" if probability > 0.5 else "granted"] * 2, dtype=object))
        log.batch(pd.DataFrame({"SK_ID_CURR": [10, 11 if probability < 0.5 else 12]}), scores, "1", traffic)
    log.close()
    last = perf.last_scores(tmp_path).set_index("SK_ID_CURR")
    assert sorted(last.index) == [10, 11, 12]  # the test traffic's 0.9 is not a production score
    assert last.loc[10, "probability"] == 0.6 and bool(last.loc[10, "refused"]) and not last.loc[11, "refused"]
    joined = perf.joined(last.reset_index(), pd.DataFrame({"SK_ID_CURR": [10, 11, 99], "TARGET": [1, 0, 1]}), "month")
    assert joined.set_index("SK_ID_CURR")["period"].to_dict() == {10: "2026-11-01", 11: "2026-10-01"}


def project(root: Path, outcomes: pd.DataFrame | None = None) -> Path:
    """A project folder with params.yaml, training figures, an empty production log and these outcomes."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["paths"].update({"reports": "reports", "production": "production", "outcomes": "outcomes"})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for folder in ("reports", "production", "outcomes"):
        (root / folder).mkdir()
    (root / "reports" / "metrics.json").write_text(json.dumps({"auc": 0.75, "business_cost": 0.55,
                                                               "threshold": THRESHOLD}))
    if outcomes is not None:
        outcomes.to_csv(root / "outcomes" / "first.csv", index=False)
    return root


def test_the_stage_says_so_when_there_is_nothing_to_measure(tmp_path, monkeypatch):
    """Empty folders (a fresh clone): `dvc repro` completes, the verdict says outcomes are missing, and the app's
    monitoring section reads it."""
    root = project(tmp_path, pd.DataFrame({"SK_ID_CURR": [1, 2], "TARGET": [0, 1]}))
    monkeypatch.chdir(root)
    monkeypatch.setenv("MPLCONFIGDIR", str(root / ".matplotlib"))
    stage = importlib.import_module("stages.performance")
    stage.main()
    report = json.loads((root / "reports" / "performance.json").read_text())
    assert report["verdict"] == perf.INSUFFICIENT and report["outcomes"] == 2 and report["joined"] == 0
    assert (root / "reports" / "performance" / "performance_by_period.png").exists()
    facts = summary(root)
    assert facts["verdict"] == perf.INSUFFICIENT and facts["outcomes"] == 0 and facts["drifted"] is None
