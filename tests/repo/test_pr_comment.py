"""The drift paragraph of the pull-request comment (tools/pr_metrics_diff.py) reads the head's reports/drift.json."""
import json

from tools.pr_metrics_diff import drift_summary


def test_drift_summary_names_what_moved(tmp_path):
    (tmp_path / "drift.json").write_text(json.dumps({
        "rows": 5000, "n_columns": 24, "n_drifted": 2, "drifted_columns": ["AMT_INCOME_TOTAL", "DAYS_BIRTH"],
        "drifted_features": ["EXT_SOURCE_MEAN"], "prediction_psi": 0.1234, "prediction_drift": 1}))
    summary = drift_summary(tmp_path)
    assert "5,000 rows" in summary and "2 of 24 application fields drifted" in summary
    assert "(`AMT_INCOME_TOTAL`, `DAYS_BIRTH`)" in summary and "`EXT_SOURCE_MEAN`" in summary
    assert "prediction PSI 0.1234 (prediction drift)" in summary


def test_drift_summary_without_drift_or_without_report(tmp_path):
    (tmp_path / "drift.json").write_text(json.dumps({
        "rows": 10, "n_columns": 3, "n_drifted": 0, "drifted_columns": [], "drifted_features": [],
        "prediction_psi": 0.001, "prediction_drift": 0}))
    summary = drift_summary(tmp_path)
    assert "0 of 3 application fields drifted (none)" in summary and "(prediction drift)" not in summary
    assert drift_summary(tmp_path / "absent").startswith("No drift report")
