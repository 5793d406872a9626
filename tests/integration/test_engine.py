"""The service's scoring graph equals the batch path: same features, same probabilities, same SHAP values."""
import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression

from scoring import features
from scoring.data.io import read_prepared
from scoring.model import explain, training
from scoring.model.registry import ScoringModel
from scoring.serving.engine import ScoringEngine

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=[("xgboost", 4), ("xgboost", 3), ("logreg", None)],
                ids=["xgboost-depth4", "xgboost-depth3", "logreg"])
def setup(request, small_dataset):
    """Depth 4: SHAP from XGBoost's pred_contribs; depth 3: from the tables (`treeshap`); logreg: its own."""
    name, depth = request.param
    tables = read_prepared(small_dataset)
    history = features.history_features(tables)
    apps = tables["application_train"]
    X, y = features.build_features(apps, history), apps.TARGET.to_numpy()
    p = training.TrainParams(models=(name,))
    pipeline = training.build_pipeline(name, *training.split_columns(X), p, float(y.mean()))
    if name == "xgboost":
        pipeline.set_params(model__n_estimators=50, model__max_depth=depth)
    pipeline.fit(X, y)
    calibrator = IsotonicRegression(out_of_bounds="clip").fit(pipeline.predict_proba(X)[:, 1], y)
    model = training.CalibratedScorer(pipeline, calibrator, name)
    model.reference_ = np.asarray(pipeline.named_steps["prep"].transform(X), dtype=float).mean(axis=0)
    engine = ScoringEngine(ScoringModel(model, 0.09, "test"), history)
    assert (engine.tabulated is not None) == (depth == 3)
    return engine, model, tables["application_test"].head(300), history


def columns_of(apps: pd.DataFrame) -> dict:
    return {name: apps[name].to_numpy() for name in features.APPLICATION_INPUTS}


def test_batch_scores_equal_the_pipeline(setup):
    engine, model, apps, history = setup
    scores = engine.score(columns_of(apps), apps.SK_ID_CURR.to_numpy())
    expected = model.predict_proba(features.build_features(apps, history))[:, 1]
    np.testing.assert_allclose(scores.probability, expected, rtol=1e-6)
    np.testing.assert_array_equal(scores.refused, expected >= 0.09)


def test_one_applicant_equals_its_batch_row_and_shap(setup):
    engine, model, apps, history = setup
    batch = engine.score(columns_of(apps), apps.SK_ID_CURR.to_numpy())
    for row in (0, 42, 299):
        one = engine.score(columns_of(apps.iloc[[row]]), apps.SK_ID_CURR.to_numpy()[[row]])
        assert one.probability[0] == pytest.approx(batch.probability[row])
        np.testing.assert_allclose(one.contributions[0], batch.contributions[row], atol=1e-6)
    X = features.build_features(apps.iloc[:20], history)
    expected, _ = explain.contributions(model, X)
    np.testing.assert_allclose(batch.contributions[:20], expected[engine.fields].to_numpy(), atol=1e-5)


def test_unknown_applicant_and_reasons(setup):
    engine, _, apps, _ = setup
    scores = engine.score(columns_of(apps.iloc[[0]]), np.array([999_999_999]))
    assert scores.values["BURO_SK_ID_BUREAU_COUNT"][0] == 0
    reasons = engine.reasons(scores, 0, k=4)
    assert len(reasons) == 4 and all(r.feature in engine.fields for r in reasons)
    assert abs(reasons[0].contribution) >= abs(reasons[-1].contribution)
    assert reasons[0].sentence.startswith(f"{reasons[0].feature} = ")
