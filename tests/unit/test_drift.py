"""The drift monitor's pure parts: PSI, the fields as tested, Evidently's verdicts, the settings."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from scoring.monitoring import drift
from scoring.monitoring.psi import binned_shares, psi

from ..conftest import SETTINGS


def test_psi_is_zero_for_the_same_sample_and_grows_with_the_shift():
    rng = np.random.default_rng(0)
    reference = pd.Series(rng.normal(size=20_000))
    shifts = [psi(reference, pd.Series(rng.normal(shift, size=5_000))) for shift in (0.0, 0.25, 0.5, 1.0)]
    assert psi(reference, reference) == pytest.approx(0.0, abs=1e-12)
    assert shifts[0] < 0.01 < shifts[1] < 0.2 < shifts[2] < shifts[3]


def test_psi_counts_missing_values_and_new_categories():
    assert psi(pd.Series([1.0, 2.0, 3.0, 4.0] * 50), pd.Series([1.0, 2.0, np.nan, np.nan] * 50)) > 1
    categories = pd.Series(["a", "b"] * 100)
    assert psi(categories, pd.Series(["a", "b"] * 100)) == pytest.approx(0.0)
    assert psi(categories, pd.Series(["a", "b", "c", "c"] * 50)) > 1


def test_binned_shares_use_the_reference_deciles_and_a_missing_bin():
    reference = pd.Series(np.arange(1000, dtype=float))
    ref, cur = binned_shares(reference, pd.Series([5.0, 995.0, np.nan, np.nan]), bins=10)
    assert ref == pytest.approx([0.1] * 10 + [0.0])
    assert cur.tolist() == [0.25] + [0.0] * 8 + [0.25, 0.5]


def test_application_fields_treat_kaggle_sentinels_as_missing():
    apps = pd.DataFrame({"DAYS_EMPLOYED": [-100, 365243], "REGION_RATING_CLIENT": [-1, 2],
                         "CODE_GENDER": pd.Categorical(["F", None], categories=["F", "M", "XNA"])})
    fields = drift.application_fields(apps, ["DAYS_EMPLOYED", "REGION_RATING_CLIENT", "CODE_GENDER"])
    assert fields["DAYS_EMPLOYED"].tolist()[0] == -100 and np.isnan(fields["DAYS_EMPLOYED"].iloc[1])
    assert np.isnan(fields["REGION_RATING_CLIENT"].iloc[0])
    assert fields["CODE_GENDER"].tolist() == ["F", None]


def _metric(metric_id: str, column: str, method: str, value: float) -> dict:
    return {"id": metric_id, "value": value,
            "config": {"type": "evidently:metric_v2:ValueDrift", "column": column, "method": method, "threshold": 0.1}}


def test_parse_snapshot_takes_evidently_verdicts():
    result = {"metrics": [{"id": "c", "value": {"count": 1, "share": 0.5},
                           "config": {"type": "evidently:metric_v2:DriftedColumnsCount"}},
                          _metric("a", "AMT_CREDIT", "Wasserstein distance (normed)", 0.31),
                          _metric("b", "CODE_GENDER", "K-S p_value", 0.4)],
              "tests": [{"id": "lt", "metric_config": {"metric_id": "c"}, "status": "FAIL"},
                        {"id": "drift", "metric_config": {"metric_id": "a"}, "status": "FAIL"},
                        {"id": "drift", "metric_config": {"metric_id": "b"}, "status": "SUCCESS"}]}
    records = drift.parse_snapshot(result)
    assert [(r["column"], r["score"], r["drifted"]) for r in records] == [("AMT_CREDIT", 0.31, True),
                                                                         ("CODE_GENDER", 0.4, False)]
    with pytest.raises(RuntimeError, match="include_tests"):
        drift.parse_snapshot({**result, "tests": []})


def test_drift_columns_must_be_application_fields():
    assert drift.checked(SETTINGS.drift) == SETTINGS.drift
    assert drift.checked(replace(SETTINGS.drift, columns=("AMT_CREDIT",))).columns == ("AMT_CREDIT",)
    with pytest.raises(ValueError, match="TARGET"):
        drift.checked(replace(SETTINGS.drift, columns=("AMT_CREDIT", "TARGET")))
