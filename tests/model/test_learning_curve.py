"""`tools.model_study --learning-curve`: the chosen model on growing shares of each fold's training rows, the AUC a
doubling of the rows adds, the rows a target AUC would take on that line, and its figure."""
import math

from tools import model_study


def test_the_learning_curve_grows_with_the_rows_and_projects_a_target(small_data, tmp_path):
    apps = small_data.tables["application_train"]
    result = model_study.study(apps, ["logreg"], 2, learning_curve=True, target_auc=0.99, oof_repeats=1)
    curve = result["learning_curve"]
    sizes = curve["sizes"]
    assert [size["share"] for size in sizes] == list(model_study.SIZES)
    folds = model_study.settings_with(None, None)[1].oof_folds
    assert abs(sizes[-1]["rows"] - len(apps) * (folds - 1) / folds) <= 1        # each fold's training rows
    assert [size["rows"] for size in sizes] == [int(sizes[-1]["rows"] * share) for share in model_study.SIZES]
    assert sizes[-1]["against_all_rows"] == 0
    assert sizes[0]["cv_auc"] < sizes[-1]["cv_auc"] and curve["auc_per_doubling"] > 0   # a quarter of the rows: less
    for size in sizes:
        assert abs(size["cv_auc"] - sizes[-1]["cv_auc"] - size["against_all_rows"]) < 2e-5
    projection = curve["projection"]
    assert abs(projection["doublings"] - (0.99 - sizes[-1]["cv_auc"]) / curve["auc_per_doubling"]) < 0.02
    assert math.isclose(projection["rows"], sizes[-1]["rows"] * 2 ** projection["doublings"], rel_tol=0.01)
    figure = model_study.learning_curve_plot(curve, tmp_path / "learning_curve.png")
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 10_000
