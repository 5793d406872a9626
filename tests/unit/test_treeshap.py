"""The tabulated SHAP values are XGBoost's own `pred_contribs`, row for row, missing values included."""
import json

import numpy as np
import pytest
import xgboost

from scoring.serving.treeshap import TabulatedShap, Tree, leaf_contributions, shapley_weights


def fitted_booster(depth: int, n_trees: int = 40, seed: int = 0, **extra) -> tuple[xgboost.Booster, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, 6))
    X[rng.random(X.shape) < 0.2] = np.nan                 # missing values take each node's default direction
    X[:, 5] = np.round(X[:, 5])                            # ties at split values
    logit = np.nan_to_num(X[:, 0]) - 0.8 * np.nan_to_num(X[:, 1]) * (np.nan_to_num(X[:, 2]) > 0) + 0.3 * X[:, 5]
    y = (rng.random(600) < 1 / (1 + np.exp(-np.nan_to_num(logit)))).astype(int)
    model = xgboost.XGBClassifier(n_estimators=n_trees, max_depth=depth, learning_rate=0.3, random_state=seed,
                                  n_jobs=1, **extra).fit(X, y)
    return model.get_booster(), X


def reference(booster: xgboost.Booster, X: np.ndarray) -> np.ndarray:
    return booster.predict(xgboost.DMatrix(X), pred_contribs=True)[:, :-1]


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_equal_to_pred_contribs(depth):
    booster, X = fitted_booster(depth)
    tabulated = TabulatedShap.from_booster(booster)
    assert tabulated is not None
    np.testing.assert_allclose(tabulated.contributions(X), reference(booster, X), atol=2e-6)


def test_one_row_equals_its_batch_row_and_chunks_do_not_matter():
    booster, X = fitted_booster(3)
    tabulated = TabulatedShap.from_booster(booster)
    rows = np.repeat(X, 3, axis=0)                        # 1,800 rows: more than one chunk
    batch = tabulated.contributions(rows)
    for i in (0, 599, 1799):
        np.testing.assert_array_equal(tabulated.contributions(rows[[i]])[0], batch[i])


def test_grouped_into_fields_equals_summed_features():
    booster, X = fitted_booster(3)
    groups = np.zeros((6, 2))
    groups[[0, 2, 4], 0] = groups[[1, 3, 5], 1] = 1
    grouped = TabulatedShap.from_booster(booster, groups).contributions(X)
    np.testing.assert_allclose(grouped, reference(booster, X) @ groups, atol=2e-6)


def test_pruned_deeper_trees_are_tabulated_and_large_ones_are_not():
    pruned, X = fitted_booster(6, min_child_weight=20)    # depth 6 allowed; few splits survive the weight limit
    trees = [Tree.from_json(t) for t in json.loads(pruned.save_raw("json"))["learner"]["gradient_booster"]["model"]
             ["trees"]]
    assert max(len(path) for tree in trees for _, path in tree.paths()) > 3  # deeper than depth 3...
    assert max(len(tree.internal) for tree in trees) <= 8                    # ...but small enough for the tables
    np.testing.assert_allclose(TabulatedShap.from_booster(pruned).contributions(X), reference(pruned, X), atol=2e-6)
    large, _ = fitted_booster(6)
    assert TabulatedShap.from_booster(large) is None      # the caller keeps pred_contribs


def test_leaf_shares_sum_to_the_leaf_value_minus_its_expectation():
    """Efficiency, leaf by leaf: the shares of a pattern sum to value * (prod hot - prod cold)."""
    cold = np.array([0.3, 0.6, 0.8])
    table = leaf_contributions(2.0, cold)
    for pattern in range(8):
        hot = np.array([(pattern >> j) & 1 for j in range(3)])
        assert table[pattern].sum() == pytest.approx(2.0 * (hot.prod() - cold.prod()))
    assert shapley_weights(3).tolist() == pytest.approx([1 / 3, 1 / 6, 1 / 3])


def test_dart_and_linear_boosters_are_left_to_pred_contribs():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(200, 3)), rng.integers(0, 2, 200)
    for booster in ("dart", "gblinear"):
        model = xgboost.XGBClassifier(n_estimators=5, max_depth=2, booster=booster, n_jobs=1).fit(X, y)
        assert TabulatedShap.from_booster(model.get_booster()) is None
