"""The compiled SHAP values of a random forest are shap's TreeExplainer numbers, row for row, missing values too."""
import pickle

import numpy as np
import pytest
import shap
from sklearn.ensemble import RandomForestClassifier

from scoring.serving.forestshap import BLOCK_ROWS, ForestShap, gauss_legendre


def data(n_rows: int = 400, n_features: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features))
    X[:, 3] = np.round(X[:, 3])                                   # ties at split values
    logit = X[:, 0] - 0.8 * X[:, 1] * (X[:, 2] > 0) + 0.5 * X[:, 3] + 0.3 * X[:, 4:].sum(axis=1)
    y = (rng.random(n_rows) < 1 / (1 + np.exp(1.5 - logit))).astype(int)
    X[rng.random(X.shape) < 0.1] = np.nan                          # missing values follow missing_go_to_left
    return X, y


def forest(depth: int | None, n_trees: int = 12, seed: int = 0, **extra) -> tuple[RandomForestClassifier, np.ndarray]:
    X, y = data(seed=seed)
    params = {"min_samples_leaf": 3, "class_weight": "balanced_subsample", **extra}
    return RandomForestClassifier(n_estimators=n_trees, max_depth=depth, random_state=seed, n_jobs=1,
                                  **params).fit(X, y), X


def reference(model: RandomForestClassifier, X: np.ndarray) -> np.ndarray:
    return np.asarray(shap.TreeExplainer(model).shap_values(X, check_additivity=False))[..., 1]


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 8, 10])
def test_equal_to_shap_tree_explainer(depth):
    model, X = forest(depth)
    assert max(e.tree_.max_depth for e in model.estimators_) == depth
    engine = ForestShap.from_forest(model)
    np.testing.assert_allclose(engine.contributions(X), reference(model, X), rtol=0, atol=1e-9)


def test_repeated_features_and_twigs_are_both_exercised():
    """Two features and deep trees: most splits reuse a feature split above (shap unwinds it), most leaf pairs are
    twigs; without class weights or bootstrap."""
    X, y = data()
    X = X[:, :2]
    model = RandomForestClassifier(n_estimators=8, max_depth=9, min_samples_leaf=2, bootstrap=False, max_features=1,
                                   random_state=1).fit(X, y)
    engine = ForestShap.from_forest(model)
    assert (engine.nodes.prev >= 0).mean() > 0.3 and engine.nodes.twig.any()
    assert ((engine.nodes.prev >= 0) & (engine.nodes.feature < 0)).any()  # leaves under a repeated feature
    np.testing.assert_allclose(engine.contributions(X), reference(model, X), rtol=0, atol=1e-9)


def test_base_value_plus_contributions_is_predict_proba():
    model, X = forest(None, n_trees=20)
    engine = ForestShap.from_forest(model)
    X_new = data(n_rows=300, seed=7)[0]
    X_new[:50, 5] = np.nan                                          # missing in a column complete at training too
    total = engine.expected_value + engine.contributions(X_new).sum(axis=1)
    np.testing.assert_allclose(total, model.predict_proba(X_new)[:, 1], rtol=0, atol=1e-9)
    np.testing.assert_allclose(engine.contributions(X_new), reference(model, X_new), rtol=0, atol=1e-9)


def test_groups_sum_their_features():
    model, X = forest(6)
    groups = np.zeros((12, 3))
    groups[np.arange(12), [0, 1, 2, 0, 1, 2, 2, 2, 0, 0, 1, 1]] = 1
    grouped = ForestShap.from_forest(model, groups).contributions(X)
    assert grouped.shape == (len(X), 3)
    np.testing.assert_allclose(grouped, reference(model, X) @ groups, rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="one 1 per row"):
        ForestShap.from_forest(model, groups[:, :2])                 # column 2's features in no group


def test_one_row_batches_and_threads_give_the_same_values():
    model, X = forest(8)
    engine = ForestShap.from_forest(model)
    rows = np.concatenate([X, X])[:4 * BLOCK_ROWS + 5]             # several blocks of rows, the last one partial
    batch = engine.contributions(rows, threads=1)
    for i in (0, BLOCK_ROWS, len(rows) - 1):
        np.testing.assert_allclose(engine.contributions(rows[[i]], threads=1)[0], batch[i], rtol=0, atol=1e-15)
    np.testing.assert_allclose(engine.contributions(rows, threads=2), batch, rtol=0, atol=1e-15)      # rows split
    np.testing.assert_allclose(engine.contributions(rows[:3], threads=2), batch[:3], rtol=0, atol=1e-12)  # trees
    assert engine.contributions(rows[:0]).shape == (0, 12)


def test_single_leaf_trees_only_give_their_value_to_the_base():
    """A split must lower the impurity enough: some bootstrap samples have none; a constant input, no tree has."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(30, 3)), np.zeros(30, dtype=int)
    y[[4, 17]] = 1
    model = RandomForestClassifier(n_estimators=30, max_depth=2, min_impurity_decrease=0.02, random_state=0).fit(X, y)
    leaves = [e.tree_.node_count == 1 for e in model.estimators_]
    assert any(leaves) and not all(leaves)
    engine = ForestShap.from_forest(model)
    np.testing.assert_allclose(engine.contributions(X), reference(model, X), rtol=0, atol=1e-9)
    np.testing.assert_allclose(engine.expected_value + engine.contributions(X).sum(axis=1),
                               model.predict_proba(X)[:, 1], rtol=0, atol=1e-9)
    constant = RandomForestClassifier(n_estimators=5, random_state=0).fit(np.ones_like(X), rng.integers(0, 2, 30))
    engine = ForestShap.from_forest(constant)
    assert np.array_equal(engine.contributions(X[:10]), np.zeros((10, 3)))
    assert engine.expected_value == pytest.approx(constant.predict_proba(X[:1])[0, 1], abs=1e-12)


def test_pickled_engine_explains_the_same():
    model, X = forest(5)
    engine = ForestShap.from_forest(model)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(engine)).contributions(X), engine.contributions(X))


def test_only_binary_forests_and_matching_columns():
    X, _ = data()
    three = RandomForestClassifier(n_estimators=2, random_state=0).fit(np.nan_to_num(X), np.arange(len(X)) % 3)
    with pytest.raises(ValueError, match="binary"):
        ForestShap.from_forest(three)
    model, X = forest(3)
    with pytest.raises(ValueError, match="12 columns"):
        ForestShap.from_forest(model).contributions(X[:, :5])


def test_quadrature_integrates_polynomials_of_degree_2n_minus_1_exactly():
    quad = gauss_legendre(4)
    for degree in range(8):
        assert quad.weights @ quad.points ** degree == pytest.approx(1 / (degree + 1), abs=1e-14)
    assert quad.weights @ quad.points ** 8 != pytest.approx(1 / 9, abs=1e-8)
