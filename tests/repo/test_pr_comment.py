"""The pull-request comment (tools/pr_metrics_diff.py): the drift paragraph reads the head's reports/drift.json; the
metric verdicts weigh each move against the head's bootstrap interval."""
import json

from tools.pr_metrics_diff import drift_summary, interval_summary


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


def head_metrics(auc: float, cost: float, auc_span=(0.72, 0.76), cost_span=(0.50, 0.56)) -> dict:
    return {"auc": auc, "business_cost": cost, "intervals": {
        "confidence": 0.95, "auc": {"value": auc, "low": auc_span[0], "high": auc_span[1]},
        "business_cost": {"value": cost, "low": cost_span[0], "high": cost_span[1]}}}


def test_a_move_inside_the_interval_is_no_change():
    summary = interval_summary({"auc": 0.735, "business_cost": 0.540}, head_metrics(0.745, 0.530))
    assert summary.count("no change (within the interval)") == 2
    assert "0.7350 -> 0.7450 (+0.0100)" in summary and "[0.7200, 0.7600]" in summary


def test_a_move_beyond_the_interval_is_better_or_worse():
    summary = interval_summary({"auc": 0.70, "business_cost": 0.60}, head_metrics(0.745, 0.530))
    assert "AUC: 0.7000 -> 0.7450 (+0.0450); head's 95% interval [0.7200, 0.7600]: **better**" in summary
    assert "business cost per applicant: 0.6000 -> 0.5300 (-0.0700)" in summary
    worse = interval_summary({"auc": 0.78, "business_cost": 0.45}, head_metrics(0.745, 0.530))
    assert worse.count("**worse**") == 2


def test_without_intervals_nothing_is_judged():
    assert interval_summary({"auc": 0.7}, {"auc": 0.8}).startswith("No interval")
