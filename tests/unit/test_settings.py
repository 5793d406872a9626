"""Settings: params.yaml read into typed sections, every default there (none in code), errors that name the key,
the catalog's paths, and the trace of the keys a process reads (what the dvc.yaml check relies on)."""
import copy
from pathlib import Path

import pytest

from scoring import settings as s

RAW = {
    "paths": {name: f"data/{name}" for name in ("raw", "synthetic", "prepared", "features", "models", "reports",
                                                "production", "outcomes")},
    "data": {"source": "synthetic", "synthetic": {
        "n_applicants": 10, "n_test": 5, "seed": 1, "default_rate": 0.08, "chunk_size": 10,
        "drift": {"enabled": False, "income_factor": 1.3, "age_shift_years": -6, "ext_source_shift": -0.1,
                  "rare_category_share": 0.1}}},
    "compute": {"backend": "local", "address": "", "buckets": 4, "scratch": "", "train_workers": 2,
                "train_sample": 0},
    "split": {"holdout_fraction": 0.2, "seed": 1},
    "train": {"models": ["logreg"], "model": "auto", "imbalance": "none", "cv_folds": 3, "oof_folds": 5,
              "oof_repeats": 1, "noise_se": 2.0, "search": "quick", "search_draws": {"quick": 1, "thorough": 2},
              "early_stopping": {"inner_folds": 3, "patience": 20, "max_rounds": 100},
              "early_stopping_each_fold": False,
              "calibration": "isotonic", "seed": 1, "n_jobs": 1, "grids": {}, "decreasing": ["EXT_SOURCE_2"],
              "release": "all_labelled"},
    "cost": {"fn": 10, "fp": 1},
    "threshold": {"bootstrap": 100, "confidence": 0.95, "seed": 1},
    "evaluate": {"bootstrap": 100, "confidence": 0.95, "seed": 1},
    "reasons": {"default": 5, "max": 20},
    "protected": {"fields": ["CODE_GENDER"], "age_bands": [18, 30, 100]},
    "fairness": {"min_approval_ratio": 0.8, "max_opportunity_gap": 0.1, "max_calibration_gap": 0.05,
                 "min_group_size": 10, "gated": {"CODE_GENDER": ["approval_ratio"]}, "bootstrap": 10,
                 "confidence": 0.95, "seed": 1},
    "drift": {"columns": ["AMT_CREDIT"], "stattest": None, "num_stattest": None, "cat_stattest": None,
              "stattest_threshold": None, "drift_share": 0.5, "psi_top_features": 3, "psi_threshold": 0.2,
              "psi_bins": 10, "sample_size": None, "min_rows": 10, "out_of_contract_share": 0.0, "seed": 1},
    "performance": {"period": "month", "min_outcomes": 10, "bootstrap": 50, "confidence": 0.95, "auc_tolerance": 0.05,
                    "cost_tolerance": 0.15, "calibration_tolerance": 0.2, "seed": 1},
    "production_log": {"max_file_mb": 64, "max_file_minutes": 60, "retention_days": 30, "max_total_gb": 20},
    "tracking": {"enabled": False, "uri": "sqlite:///mlflow.db", "experiment": "e", "artifacts": "mlruns"},
}


def changed(path: str, value) -> dict:
    raw = copy.deepcopy(RAW)
    *parents, leaf = path.split(".")
    node = raw
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[leaf]
    else:
        node[leaf] = value
    return raw


def test_sections_are_typed():
    settings = s.settings_from(RAW)
    assert settings.train.models == ("logreg",) and isinstance(settings.cost.fn, float)
    assert settings.train.decreasing == ("EXT_SOURCE_2",)
    assert settings.paths.model == Path("data/models/model.joblib") and settings.drift.sample_size is None
    assert settings.data.synthetic.drift.age_shift_years == -6.0


@pytest.mark.parametrize(("path", "value", "message"), [
    ("train.imbalance", "oversample", "train.imbalance must be one of"),
    ("train.release", "everything", "train.release must be one of"),
    ("train.models", ["logreg", "catboost"], r"train.models\[1\] must be one of"),
    ("cost.fn", "ten", "cost.fn must be a number"),
    ("train.cv_folds", 2.5, "train.cv_folds must be an int"),
    ("tracking.enabled", "yes", "tracking.enabled must be a bool"),
    ("split.seed", KeyError, r"split: missing key\(s\) \['seed'\]"),
    ("drift.psi_treshold", 0.2, r"drift: unknown key\(s\) \['psi_treshold'\]"),
])
def test_a_bad_key_is_named(path, value, message):
    with pytest.raises(s.SettingsError, match=message):
        s.settings_from(changed(path, value))


def test_the_projects_params_yaml_is_complete():
    repo = Path(__file__).resolve().parents[2]
    settings = s.load_settings(repo / "params.yaml")
    assert settings.reasons.default <= settings.reasons.max


def test_reads_are_traced_leaf_by_leaf():
    settings = s.settings_from(RAW)
    s._read_keys.clear()
    _ = settings.train.cv_folds, settings.paths.model, settings.data.synthetic.drift.enabled
    assert s.keys_read() == {"train.cv_folds", "paths.models", "data.synthetic.drift.enabled"}


def test_under_a_root_every_relative_path_moves():
    settings = s.settings_from(RAW).under(Path("/srv/p"))
    assert settings.paths.history == Path("/srv/p/data/features/history.parquet")
    assert settings.tracking.uri == "sqlite:////srv/p/mlflow.db" and settings.tracking.artifacts == "/srv/p/mlruns"
