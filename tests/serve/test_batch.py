"""The batch scoring command: the engine's scores, with reasons, for valid rows; invalid rows reported, never
dropped silently; the command line writes both files."""
import joblib
import numpy as np
import pandas as pd
import pytest

from scoring import catalog, features
from scoring.data.row_checks import SchemaError, row_problems
from scoring.model.registry import ScoringModel
from scoring.serving import batch

from ..conftest import SETTINGS, TINY_THRESHOLD


@pytest.fixture(scope="module")
def scoring_model(tiny_project) -> ScoringModel:
    return ScoringModel(joblib.load(tiny_project / SETTINGS.paths.model), TINY_THRESHOLD, "test")


def test_valid_rows_scored_invalid_rows_reported(scoring_model, small_data):
    apps = small_data.tables["application_test"].head(300).copy()
    apps["AMT_CREDIT"] = apps["AMT_CREDIT"].astype(float)
    apps.loc[3, "AMT_CREDIT"] = -5.0
    apps["CODE_GENDER"] = apps["CODE_GENDER"].astype(object)
    apps.loc[5, "CODE_GENDER"] = "Z"
    apps.loc[7, "EXT_SOURCE_2"] = float("inf")
    scores, problems = batch.score_applicants(apps, small_data.history, scoring_model, k=3)
    assert len(scores) == 297 and set(problems["row"]) == {3, 5, 7}
    assert set(problems["rule"]) == {"must be >= 0", "must be one of: F, M, XNA", "must be finite"}
    assert not scores.SK_ID_CURR.isin(apps.SK_ID_CURR.iloc[[3, 5, 7]]).any()
    valid = apps.drop(index=[3, 5, 7])
    expected = scoring_model.model.predict_proba(features.build_features(valid, small_data.history))[:, 1]
    np.testing.assert_allclose(scores.probability, expected, rtol=1e-6)
    assert scores.SK_ID_CURR.tolist() == valid.SK_ID_CURR.tolist()
    assert ((scores.probability >= TINY_THRESHOLD) == (scores.decision == "refused")).all()
    assert [c for c in scores.columns if c.startswith("reason_3")] == [
        "reason_3_feature", "reason_3_value", "reason_3_contribution", "reason_3_sentence", "reason_3_code",
        "reason_3_text"]
    assert (scores.reason_1_contribution.abs() >= scores.reason_3_contribution.abs()).all()
    assert all(s.startswith(t) and not t.startswith(f) for f, t, s in zip(scores.reason_1_feature, scores.reason_1_text,
                                                                          scores.reason_1_sentence))
    assert all(catalog.entry(f).code == c for f, c in zip(scores.reason_1_feature, scores.reason_1_code))
    assert (scores[["reason_1_code", "reason_2_code", "reason_3_code"]].nunique(axis=1) == 3).all()
    texts = pd.concat([scores[f"reason_{i}_text"] for i in (1, 2, 3)])
    assert texts.str.contains(r"\(.+, \d+(st|nd|rd|th) percentile\)$").any()  # placed among the training applicants


def test_chunks_change_nothing(scoring_model, small_data, monkeypatch):
    apps = small_data.tables["application_test"].head(250)
    whole, _ = batch.score_applicants(apps, small_data.history, scoring_model, k=2)
    monkeypatch.setattr(batch, "CHUNK_ROWS", 64)
    chunked, _ = batch.score_applicants(apps, small_data.history, scoring_model, k=2)
    pd.testing.assert_frame_equal(whole, chunked)


def test_missing_column_is_a_schema_error(small_data):
    with pytest.raises(SchemaError, match="missing column.*EXT_SOURCE_2"):
        row_problems(small_data.tables["application_test"].drop(columns="EXT_SOURCE_2"), "application_test")


def test_command_line_writes_scores_and_errors(tiny_project, small_data, tmp_path, monkeypatch):
    apps = small_data.tables["application_test"].head(50).copy()
    apps["TARGET"] = 0
    apps.loc[2, "TARGET"] = 3
    apps.to_csv(tmp_path / "in.csv", index=False)
    monkeypatch.chdir(tiny_project)
    out = tmp_path / "out.parquet"
    assert batch.main(["--input", str(tmp_path / "in.csv"), "--output", str(out), "--no-registry"]) == 0
    scores = pd.read_parquet(out)
    assert len(scores) == 49 and f"reason_{SETTINGS.reasons.default}_feature" in scores.columns
    errors = pd.read_csv(tmp_path / "out.errors.csv")
    assert errors.to_dict("records")[0] | {"value": "3"} == {
        "row": 2, "SK_ID_CURR": apps.SK_ID_CURR[2], "column": "TARGET", "rule": "must be <= 1", "value": "3"}
    with pytest.raises(SystemExit):
        batch.main(["--input", str(tmp_path / "in.csv"), "--output", str(out), "--reasons", "99"])
