import numpy as np
import pytest

from scoring.model.cost import business_cost, cost_curve, min_cost, pick_threshold
from scoring.settings import CostSettings

TEN_TO_ONE = CostSettings(fn=10.0, fp=1.0)


def test_business_cost_counts_missed_defaults_ten_times():
    y = np.array([1, 0, 0, 1])
    refused = np.array([True, True, False, False])  # one refused good client, one granted defaulter
    assert business_cost(y, refused, TEN_TO_ONE) == pytest.approx((10 + 1) / 4)
    assert business_cost(y, y.astype(bool), TEN_TO_ONE) == 0.0


def test_cost_curve_matches_a_plain_loop():
    rng = np.random.default_rng(0)
    proba = rng.random(500)
    y = (rng.random(500) < proba).astype(int)
    thresholds = np.linspace(0, 1, 51)
    curve = cost_curve(y, proba, thresholds, TEN_TO_ONE)
    for t, cost, approval in zip(thresholds, curve["cost"], curve["approval_rate"]):
        assert cost == pytest.approx(business_cost(y, proba >= t, TEN_TO_ONE))
        assert approval == pytest.approx(np.mean(proba < t))


def test_threshold_separating_a_clean_case():
    proba = np.array([0.05, 0.2, 0.6, 0.9])
    y = np.array([0, 0, 1, 1])
    threshold, cost = pick_threshold(y, proba, TEN_TO_ONE)
    assert cost == 0.0
    assert 0.2 < threshold <= 0.6


def test_expensive_misses_push_the_threshold_down():
    proba = np.array([0.1, 0.3, 0.35, 0.8])
    y = np.array([0, 1, 0, 1])
    cheap, _ = pick_threshold(y, proba, CostSettings(fn=1, fp=10))
    dear, _ = pick_threshold(y, proba, CostSettings(fn=10.0, fp=1.0))
    assert dear <= 0.3 < cheap


def test_calibrated_probabilities_give_the_bayes_threshold():
    """With calibrated probabilities, refusing pays off once p * fn > (1 - p) * fp, i.e. p > fp / (fn + fp)."""
    rng = np.random.default_rng(1)
    proba = rng.beta(1, 8, 200_000)
    y = (rng.random(len(proba)) < proba).astype(int)
    threshold, _ = pick_threshold(y, proba, TEN_TO_ONE)
    assert threshold == pytest.approx(1 / 11, abs=0.015)


def test_min_cost_ignores_the_scale_of_scores():
    rng = np.random.default_rng(2)
    proba = rng.random(300)
    y = (rng.random(300) < proba).astype(int)
    assert min_cost(y, proba, TEN_TO_ONE) == pytest.approx(min_cost(y, proba**3, TEN_TO_ONE), abs=0.02)


def test_a_stretch_of_equal_decisions_gives_its_middle():
    """Scores 0.2 and 0.6 only: every threshold in (0.2, 0.6] makes the same decisions; the threshold is the middle
    of that stretch, not its edge, and its cost is the stretch's."""
    proba = np.array([0.2, 0.2, 0.6, 0.6, 0.6])
    y = np.array([0, 0, 1, 0, 1])
    threshold, cost = pick_threshold(y, proba, TEN_TO_ONE)
    assert threshold == pytest.approx(0.4, abs=0.001)
    assert cost == pytest.approx(business_cost(y, proba >= threshold, TEN_TO_ONE)) == pytest.approx(1 / 5)
