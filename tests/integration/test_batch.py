"""The batch scoring command: valid rows scored with reasons, invalid rows reported, never dropped silently."""
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression

from scoring import features
from scoring.data.io import read_prepared
from scoring.data.row_checks import SchemaError, row_problems
from scoring.model import training
from scoring.model.registry import ScoringModel
from scoring.serving import batch

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def scoring_model(small_dataset):
    tables = read_prepared(small_dataset)
    apps = tables["application_train"]
    history = features.history_features(tables)
    X = features.build_features(apps, history)
    y = apps.TARGET.to_numpy()
    p = training.TrainParams(models=("xgboost",))
    pipeline = training.build_pipeline("xgboost", *training.split_columns(X), p, float(y.mean()))
    pipeline.set_params(model__n_estimators=60).fit(X, y)
    calibrator = IsotonicRegression(out_of_bounds="clip").fit(pipeline.predict_proba(X)[:, 1], y)
    return ScoringModel(training.CalibratedScorer(pipeline, calibrator, "xgboost"), 0.09, "test"), history, tables


def test_valid_rows_scored_invalid_rows_reported(scoring_model):
    model, history, tables = scoring_model
    apps = tables["application_test"].head(300).copy()
    apps["AMT_CREDIT"] = apps["AMT_CREDIT"].astype(float)
    apps.loc[3, "AMT_CREDIT"] = -5.0
    apps["CODE_GENDER"] = apps["CODE_GENDER"].astype(object)
    apps.loc[5, "CODE_GENDER"] = "Z"
    apps.loc[7, "EXT_SOURCE_2"] = float("inf")
    scores, problems = batch.score_applicants(apps, history, model, k=3)
    assert len(scores) == 297 and set(problems["row"]) == {3, 5, 7}
    assert set(problems["rule"]) == {"must be >= 0", "must be one of: F, M, XNA", "must be finite"}
    assert not scores.SK_ID_CURR.isin(apps.SK_ID_CURR.iloc[[3, 5, 7]]).any()
    expected = model.model.predict_proba(features.build_features(apps.drop(index=[3, 5, 7]), history))[:, 1]
    pd.testing.assert_series_equal(scores.probability, pd.Series(expected, name="probability"), check_index=False)
    assert ((scores.probability >= 0.09) == (scores.decision == "refused")).all()
    assert scores.reason_1.str.match(r"^\w+ \([+-]\d").all()


def test_missing_column_is_a_schema_error(scoring_model):
    _, _, tables = scoring_model
    with pytest.raises(SchemaError, match="missing column.*EXT_SOURCE_2"):
        row_problems(tables["application_test"].drop(columns="EXT_SOURCE_2"), "application_test")


def test_command_line_writes_scores_and_errors(scoring_model, tmp_path, monkeypatch):
    model, history, tables = scoring_model
    monkeypatch.setattr(batch, "load_scoring_model", lambda params, prefer_registry: model)
    monkeypatch.setattr(batch, "load_history", lambda directory, lookup: history)
    apps = tables["application_test"].head(50).copy()
    apps["TARGET"] = 0
    apps.loc[2, "TARGET"] = 3
    apps.to_csv(tmp_path / "in.csv", index=False)
    monkeypatch.chdir(batch.Path(__file__).resolve().parents[2])
    assert batch.main(["--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.parquet")]) == 0
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == 49
    errors = pd.read_csv(tmp_path / "out.errors.csv")
    assert errors.to_dict("records")[0] | {"value": "3"} == {
        "row": 2, "SK_ID_CURR": apps.SK_ID_CURR[2], "column": "TARGET", "rule": "must be <= 1", "value": "3"}
