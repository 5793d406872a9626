"""`train.release: all_labelled`: the served model is the chosen procedure refitted on every labelled applicant,
with the validated model's calibrator; `tools.model_study --release` measures what that is worth."""
import numpy as np
import pytest

from scoring.model import training
from tools import model_study

from ..conftest import train_settings


@pytest.fixture(scope="module")
def chosen(small_data) -> training.Candidate:
    p = train_settings(models=("xgboost",), oof_repeats=1, grids={"xgboost": {"max_depth": [2]}},
                       early_stopping={"inner_folds": 3, "patience": 20, "max_rounds": 200})
    X, y = small_data.X.iloc[:4000], small_data.y[:4000]
    return training.tune_and_estimate("xgboost", X, y, p)


def test_the_released_model_is_the_chosen_procedure_on_every_row_with_the_validated_calibrator(small_data, chosen):
    p = train_settings(models=("xgboost",), oof_repeats=1)
    X, y = small_data.X.iloc[:4000], small_data.y[:4000]
    validated, _ = training.fit_final(chosen, chosen.oof, X, y, p)
    everyone, labels = small_data.X.iloc[:5000], small_data.y[:5000]
    released = training.release_fit(validated, chosen, everyone, labels)
    assert (validated.rows_, released.rows_) == (4000, 5000)
    assert released.calibrator is validated.calibrator and released.model_name == "xgboost"
    booster, refitted = validated.pipeline.named_steps["model"], released.pipeline.named_steps["model"]
    width_dependent = ("missing", "monotone_constraints")             # NaN; one-hot width of the rows seen
    same = {k: v for k, v in booster.get_params().items() if k not in width_dependent}
    assert {k: v for k, v in refitted.get_params().items() if k not in width_dependent} == same
    assert refitted.get_booster().num_boosted_rounds() == booster.get_booster().num_boosted_rounds()
    unseen = small_data.X.iloc[5000:]
    assert not np.allclose(released.predict_proba(unseen), validated.predict_proba(unseen))
    assert released.quantiles_["AMT_CREDIT"].tolist() == training.reference_quantiles(everyone)["AMT_CREDIT"].tolist()


def test_the_release_study_compares_both_models_on_the_outer_folds(small_data):
    """`python -m tools.model_study --release` on generated applicants (logreg: seconds): the validated and released
    models' AUC, cost and mean probability on the same outer folds, and their paired differences."""
    apps = small_data.tables["application_train"]
    result = model_study.study(apps, ["logreg"], 2, release=True, oof_repeats=1)
    release = result["release"]
    assert set(release) == {"auc", "business_cost", "mean_probability"}
    for figure in release.values():
        assert figure["difference"] == pytest.approx(figure["released"] - figure["validated"], abs=2e-5)
        assert figure["interval_95"][0] <= figure["difference"] <= figure["interval_95"][1]
    chosen_auc = result["train"]["models"]["logreg"]["cv_auc"]
    assert abs(release["auc"]["validated"] - chosen_auc) < 0.02 and release["auc"]["released"] > 0.6
    assert abs(release["mean_probability"]["difference"]) < 0.01   # the calibrator carries over
    y = apps["TARGET"].to_numpy()
    assert abs(release["mean_probability"]["released"] - y.mean()) < 0.02
