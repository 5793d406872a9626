"""The one scoring engine, for every candidate model: its probabilities equal the fitted sklearn pipeline's on the
same applicants, its SHAP values equal the libraries' own, one applicant equals its row of a batch, and the base
value plus the contributions is the model's raw output."""
import numpy as np
import pandas as pd
import pytest

from scoring import features
from scoring.model.explain import source_columns
from scoring.serving.engine import ScoringEngine

from ..conftest import TINY_THRESHOLD, fit_model
from .conftest import reference_contributions

CASES = {"xgboost-tables": ("xgboost", {"n_estimators": 40, "max_depth": 3}),
         "xgboost-pred-contribs": ("xgboost", {"n_estimators": 40, "max_depth": 4}),
         "logreg": ("logreg", {}),
         "random-forest": ("random_forest", {"n_estimators": 20, "max_depth": 6}),
         "lightgbm": ("lightgbm", {"n_estimators": 40, "num_leaves": 15})}


def library_contributions(model, X: pd.DataFrame) -> pd.DataFrame:
    """The libraries' own SHAP values per field: shap's TreeExplainer for LightGBM (one log-odds array for a
    binary booster), the serve lane's reference for the other families."""
    if model.model_name != "lightgbm":
        return reference_contributions(model, X)
    import shap

    prep = model.pipeline.named_steps["prep"]
    Xt = np.asarray(prep.transform(X), dtype=float)
    values = np.asarray(shap.TreeExplainer(model.pipeline.named_steps["model"].booster_).shap_values(Xt))
    values = values[1] if values.ndim == 3 else values
    columns = source_columns(list(prep.get_feature_names_out()), list(X.columns))
    return pd.DataFrame(values, index=X.index, columns=columns).T.groupby(level=0, sort=False).sum().T


@pytest.fixture(scope="module", params=list(CASES))
def setup(request, small_data):
    name, options = CASES[request.param]
    model = fit_model(name, small_data.X, small_data.y, **options)
    engine = ScoringEngine(model, TINY_THRESHOLD, small_data.history)
    if name == "xgboost":
        assert (engine.explainer.tabulated is not None) == (options["max_depth"] == 3)
    return engine, model, small_data.tables["application_test"].head(300), small_data.history


def test_scores_equal_the_fitted_pipeline(setup):
    engine, model, apps, history = setup
    scores = engine.score_table(apps)
    expected = model.predict_proba(features.build_features(apps, history))[:, 1]
    np.testing.assert_allclose(scores.probability, expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(scores.refused, expected >= TINY_THRESHOLD)
    np.testing.assert_array_equal(scores.history_found, apps.SK_ID_CURR.isin(history.index).to_numpy())


def test_shap_values_equal_the_libraries_and_add_up_to_the_raw_output(setup):
    engine, model, apps, history = setup
    scores = engine.score_table(apps.head(40))
    expected = library_contributions(model, features.build_features(apps.head(40), history))
    np.testing.assert_allclose(scores.contributions, expected[engine.fields].to_numpy(), atol=2e-5)
    np.testing.assert_allclose(scores.base_values, scores.base_values[0], atol=1e-4)


def test_one_applicant_equals_its_batch_row(setup):
    engine, _, apps, _ = setup
    batch = engine.score_table(apps)
    for row in (0, 42, 299):
        one = engine.score_table(apps.iloc[[row]])
        assert one.probability[0] == pytest.approx(batch.probability[row])
        np.testing.assert_allclose(one.contributions[0], batch.contributions[row], atol=1e-6)


def test_an_unknown_applicant_has_no_history_and_counts_of_zero(setup):
    engine, _, apps, _ = setup
    scores = engine.score_table(apps.iloc[[0]].assign(SK_ID_CURR=999_999_999))
    assert not scores.history_found[0] and scores.values["BURO_SK_ID_BUREAU_COUNT"][0] == 0
    reasons = scores.reasons(4)
    assert reasons.fields.shape == (1, 4) and set(reasons.fields[0]) <= set(engine.fields)
    assert np.all(np.diff(np.abs(reasons.contributions[0])) <= 0)


def test_without_a_threshold_it_scores_but_does_not_decide(setup):
    engine, model, apps, history = setup
    blind = ScoringEngine(model, None, history)
    scores = blind.score_table(apps.head(5), explain=False)
    np.testing.assert_allclose(scores.probability, engine.score_table(apps.head(5)).probability)
    with pytest.raises(ValueError, match="without a threshold"):
        _ = scores.decisions


def test_features_of_a_table_are_the_training_features(setup):
    engine, _, apps, history = setup
    scores = engine.score_table(apps.head(50), explain=False)
    built = features.align(features.build_features(apps.head(50), history), engine.columns)
    pd.testing.assert_frame_equal(scores.feature_frame(engine.columns), built, check_dtype=False)
