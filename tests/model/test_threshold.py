"""The threshold stage's figures (stages/threshold.py) on out-of-fold scores pooled over CV repeats."""
import numpy as np
import pandas as pd
import pytest

from scoring.settings import CostSettings, IntervalSettings
from stages.threshold import threshold_report

COST = CostSettings(fn=10.0, fp=1.0)
BOOT = IntervalSettings(bootstrap=200, confidence=0.95, seed=0)


@pytest.fixture(scope="module")
def oof():
    """Three repeats of 20,000 applicants whose `proba` is calibrated by construction (TARGET drawn from it); a
    sharper candidate (`raw_sharp`) and a useless one (`raw_noise`)."""
    rng = np.random.default_rng(0)
    n, repeats = 20_000, 3
    risk = rng.beta(1, 10, n)
    y = (rng.random(n) < risk).astype(int)
    frames = []
    for repeat in range(repeats):
        jitter = np.clip(risk + rng.normal(0, 0.01, n), 0, 1)
        frames.append(pd.DataFrame({"row": np.arange(n), "repeat": repeat, "fold": rng.integers(0, 5, n),
                                    "TARGET": y, "proba": jitter, "raw_sharp": jitter,
                                    "raw_noise": rng.random(n)}))
    return pd.concat(frames, ignore_index=True)


def test_a_calibrated_model_sits_near_the_cost_ratio_and_is_stable_over_repeats(oof):
    report = threshold_report(oof, COST, BOOT)
    assert report["calibrated_threshold"] == pytest.approx(1 / 11, abs=1e-5)
    assert report["threshold"] == pytest.approx(1 / 11, abs=0.02)
    assert max(report["threshold_by_repeat"]) - min(report["threshold_by_repeat"]) < 0.03
    interval = report["oof_business_cost_interval"]
    assert interval["low"] < report["oof_business_cost"] < interval["high"]
    assert interval["high"] - interval["low"] < 0.05


def test_each_candidate_has_a_cost_interval_and_a_verdict_against_the_chosen_one(oof):
    report = threshold_report(oof, COST, BOOT)
    sharp, noise = report["models_cost"]["sharp"], report["models_cost"]["noise"]
    assert sharp["min_cost"]["value"] == pytest.approx(report["oof_business_cost"], abs=0.01)
    assert not sharp["cheaper_beyond_noise"] and not noise["cheaper_beyond_noise"]
    assert noise["vs_chosen"]["low"] > 0       # the useless candidate costs more beyond the noise
    assert report["models_min_cost"]["noise"] == noise["min_cost"]["value"]
    cheaper = threshold_report(oof.assign(proba=oof["raw_noise"]), COST, BOOT)
    assert cheaper["models_cost"]["sharp"]["cheaper_beyond_noise"]
