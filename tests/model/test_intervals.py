"""Bootstrap intervals and corrected paired differences (scoring/model/intervals.py), against plain computations."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from scoring.model import intervals
from scoring.model.evaluation import holdout_metrics
from scoring.settings import CostSettings, IntervalSettings


@pytest.fixture(scope="module")
def scores():
    rng = np.random.default_rng(0)
    y = rng.random(3000) < 0.1
    score = np.round(rng.normal(y * 0.8, 1.0), 2)   # rounded: ties, counted half as sklearn does
    return y.astype(int), score


def test_weighted_auc_is_sklearns_auc_and_a_bootstrap_draw_is_a_resample(scores):
    y, score = scores
    assert intervals.auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    rows = np.random.default_rng(1).integers(0, len(y), len(y))
    counts = np.bincount(rows, minlength=len(y)).astype(float)
    drawn = intervals.weighted_auc(y, score, counts[None, :])[0]
    assert drawn == pytest.approx(roc_auc_score(y[rows], score[rows]), abs=1e-12)


def test_intervals_hold_their_value_and_narrow_with_more_rows(scores):
    y, score = scores
    small = intervals.auc_interval(y[:600], score[:600], 300, 0.95, 0)
    large = intervals.auc_interval(y, score, 300, 0.95, 0)
    assert small.value in small and large.value in large
    assert large.high - large.low < small.high - small.low
    cost = intervals.mean_interval(np.where(y == 1, 10.0, 0.0), 300, 0.95, 0)
    assert cost.low < cost.value < cost.high and cost.value == pytest.approx(10 * y.mean())


def test_pooled_repeats_drawn_by_applicant_are_not_narrower_than_one_repeat(scores):
    """Three copies of the same applicants are no more information than one: drawn by applicant, the interval
    stays as wide."""
    y, score = scores
    one = intervals.auc_interval(y, score, 300, 0.95, 0)
    pooled = intervals.auc_interval(np.tile(y, 3), np.tile(score, 3), 300, 0.95, 0,
                                    groups=np.tile(np.arange(len(y)), 3))
    assert pooled.high - pooled.low == pytest.approx(one.high - one.low, rel=0.05)


def test_paired_difference_is_corrected_for_shared_training_rows():
    rng = np.random.default_rng(0)
    a = rng.normal(0.74, 0.01, 15)
    b = a - 0.002 + rng.normal(0, 0.002, 15)
    d = intervals.paired_difference(a, b, 1 / 5)
    plain = np.std(a - b, ddof=1) / np.sqrt(15)
    assert d.mean == pytest.approx(np.mean(a - b)) and d.se > plain
    assert d.se == pytest.approx(np.sqrt((1 / 15 + 0.25) * np.var(a - b, ddof=1)))


def test_holdout_metrics_carry_their_intervals(scores):
    y, score = scores
    proba = 1 / (1 + np.exp(-(score - 2.5)))
    metrics = holdout_metrics(y, proba, 0.09, CostSettings(fn=10.0, fp=1.0), IntervalSettings(200, 0.9, 0))
    for key in ("auc", "business_cost"):
        interval = metrics["intervals"][key]
        assert interval["value"] == pytest.approx(metrics[key], abs=1e-5)
        assert interval["low"] < metrics[key] < interval["high"]
    assert metrics["intervals"]["confidence"] == 0.9
    assert "intervals" not in holdout_metrics(y, proba, 0.09, CostSettings(fn=10.0, fp=1.0))
